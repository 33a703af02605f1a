//! `check` finds damage: every flipped byte and every truncation of a pack
//! is reported by `check --read-data`, and restore degrades to the files
//! that use the damaged data.

mod common;

use common::*;

/// A store with a few workspaces and two snapshots each.
fn damaged_copies_base() -> TestEnv {
    let env = TestEnv::new();
    for (user, seed) in [("alice", 1u64), ("bob", 2)] {
        let ws = env.ws(user, "p");
        write(&ws.join("random.bin"), &random_bytes(seed, 300 * KIB));
        write(&ws.join("text.csv"), &repeated(b"a,b,c,1.5\n", 200 * KIB));
        write(&ws.join("small.txt"), b"hello");
    }
    env.snapshot(&[]);
    append(&env.ws("alice", "p").join("small.txt"), b" again");
    env.snapshot(&[]);
    env
}

#[test]
fn clean_store_checks_ok() {
    let env = damaged_copies_base();
    for read_data in [false, true] {
        let out = check(&env, read_data);
        assert_eq!(out.code, 0, "{out}");
        assert_eq!(out.json()["ok"], true);
    }
}

#[test]
fn every_flipped_byte_and_truncation_is_found() {
    let env = damaged_copies_base();
    let packs = pack_files(&env.store);
    assert!(!packs.is_empty());
    let mut injected = 0;
    let mut detected = 0;
    let mut seed = 0x9e3779b97f4a7c15u64;
    for round in 0..40 {
        let copy = TestEnv::new();
        copy_tree(&env.store, &copy.store);
        let victims = pack_files(&copy.store);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let victim = &victims[(seed % victims.len() as u64) as usize];
        let mut bytes = std::fs::read(victim).unwrap();
        if round % 5 == 4 {
            let cut = (seed >> 8) as usize % bytes.len();
            bytes.truncate(cut);
        } else {
            let at = (seed >> 8) as usize % bytes.len();
            bytes[at] ^= 1 << (seed % 8);
        }
        std::fs::write(victim, &bytes).unwrap();
        injected += 1;
        let out = check(&copy, true);
        if out.code == 1 && out.json()["ok"] == false {
            detected += 1;
        } else {
            panic!("damage {round} in {} not found:\n{out}", victim.display());
        }
    }
    eprintln!("check --read-data: {detected} of {injected} injected corruptions found");
    assert_eq!(detected, injected);
}

#[test]
fn damaged_chunk_fails_only_its_files() {
    let env = damaged_copies_base();
    // Find the pack holding bob's random file (stored raw: its bytes are
    // in the pack) and flip one byte of it.
    let needle = &random_bytes(2, 300 * KIB)[1000..1064];
    let mut hit = false;
    for p in pack_files(&env.store) {
        let mut bytes = std::fs::read(&p).unwrap();
        if let Some(pos) = bytes.windows(needle.len()).position(|w| w == needle) {
            bytes[pos] ^= 0xff;
            std::fs::write(&p, &bytes).unwrap();
            hit = true;
        }
    }
    assert!(hit, "bob's random bytes are stored raw in some pack");
    let out = check(&env, true);
    assert_eq!(out.code, 1);
    let findings = out.json()["findings"].to_string();
    assert!(findings.contains("bob/p: /random.bin"), "{findings}");

    let target = env.path("restored");
    let mut c = env.cmd();
    c.args(["restore", "bob/p", "--at", "latest", "--to"])
        .arg(&target);
    let out = run(&mut c);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("random.bin"), "{out}");
    assert!(!target.join("random.bin").exists());
    assert_eq!(std::fs::read(target.join("small.txt")).unwrap(), b"hello");
    assert!(target.join("text.csv").exists());
}

/// A pack damaged between its write and its read-back (a bad disk or
/// page cache, simulated by `WSNAP_FLIP_AT`) is caught before the catalog
/// references it: the run stops with a write error, nothing of it is
/// indexed, the store checks clean, and the next run stores the data.
#[test]
fn pack_damaged_before_read_back_is_never_referenced() {
    let env = TestEnv::new();
    let ws = env.ws("u", "p");
    write(&ws.join("a.bin"), &random_bytes(3, 400 * KIB));
    env.snapshot(&[]);
    write(&ws.join("b.bin"), &random_bytes(4, 400 * KIB));
    let mut c = env.cmd();
    c.env("WSNAP_FLIP_AT", "pack.before_read_back")
        .args(["snapshot", "--root"])
        .arg(&env.root);
    let out = expect_code(&mut c, 4);
    assert!(out.stderr.contains("does not read back"), "{out}");
    assert_eq!(list_json(&env).len(), 1);
    assert_eq!(check(&env, true).code, 0);
    assert_eq!(std::fs::read_dir(env.store.join("tmp")).unwrap().count(), 0);
    env.snapshot(&[]);
    assert_eq!(check(&env, true).code, 0);
    assert_trees_equal(&ws, &env.restore_latest("u/p", "restored"));
}

/// Journals against the catalog: `check` names a snapshot recorded twice,
/// one whose record is gone, and a record of a snapshot the catalog does
/// not have (which `repair` would bring back). The same findings when the
/// records are checked in passes over ranges of the id space (as a store
/// of millions of snapshots is, to bound memory; issue #18).
#[test]
fn journal_mismatches_are_found() {
    let env = damaged_copies_base();
    let jdir = env.store.join("journal");
    let journals = || {
        let mut v: Vec<_> = std::fs::read_dir(&jdir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    let problems = |env: &TestEnv| -> Vec<String> {
        let found = |held: Option<&str>| -> Vec<String> {
            let mut c = env.cmd();
            c.args(["check", "--json"]);
            if let Some(n) = held {
                c.env("WSNAP_CHECK_RECORDS_HELD", n);
            }
            let j = run(&mut c).json();
            let mut p: Vec<String> = j["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["problem"].as_str().unwrap().to_string())
                .collect();
            p.sort();
            p
        };
        let one_pass = found(None);
        // One record at a time: as many passes as records, up to 256.
        assert_eq!(found(Some("1")), one_pass, "in passes");
        one_pass
    };
    let two = journals();
    assert_eq!(two.len(), 2, "one journal per run: {two:?}");
    assert!(problems(&env).is_empty());

    // Recorded twice: a copy of the first run's journal.
    let copy = jdir.join("00000000000000000001-1.wsj");
    std::fs::copy(&two[0], &copy).unwrap();
    let p = problems(&env);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p.iter().all(|m| m.contains("recorded in 2 journals")),
        "{p:#?}"
    );
    std::fs::remove_file(&copy).unwrap();

    // Missing: the second run's journal is gone.
    let saved = std::fs::read(&two[1]).unwrap();
    std::fs::remove_file(&two[1]).unwrap();
    let p = problems(&env);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p.iter()
            .all(|m| m.contains("its record is missing from journal")),
        "{p:#?}"
    );
    std::fs::write(&two[1], &saved).unwrap();
    assert!(problems(&env).is_empty());

    // Not in the catalog: forget alice's newest snapshot, then put back
    // the journal that recorded it.
    let newest = list_json(&env)
        .into_iter()
        .filter(|s| s["user"] == "alice")
        .max_by_key(|s| s["time_ns"].as_i64().unwrap())
        .unwrap();
    let id = newest["id"].as_str().unwrap().to_string();
    let holder = journals()
        .into_iter()
        .find(|j| {
            let b = std::fs::read(j).unwrap();
            let raw = (0..32)
                .map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).unwrap())
                .collect::<Vec<u8>>();
            b.windows(32).any(|w| w == raw.as_slice())
        })
        .expect("a journal holds the snapshot");
    let before = std::fs::read(&holder).unwrap();
    let mut c = env.cmd();
    c.args(["forget", "--snapshot", &id]);
    expect_code(&mut c, 0);
    std::fs::write(&holder, &before).unwrap();
    let p = problems(&env);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].contains(&id[..8]), "{p:#?}");
    assert!(p[0].contains("`repair` would bring it back"), "{p:#?}");
}
