//! Large files (issue 18): a new store cuts files from 256 MiB up into
//! 256 KiB-average chunks (a tenth of the catalog rows), recorded per store
//! as chunk tiers; smaller files keep 32 KiB. The tier is decided from the
//! size before a file is read, so a file that crosses it is stored anew once.
//! Stores made before (no tiers) keep 32 KiB for every file:
//! `compat::an_old_store_cuts_a_large_file_as_before`.

mod common;

use common::*;

/// Sparse size of the large file: above the default tier (256 MiB).
const LARGE: u64 = 300 << 20;
/// 1 MiB random blocks in it: ~16 MiB of distinct content.
const PIECES: u64 = 16;

#[test]
fn a_large_file_gets_the_tier_chunk_size_and_restores_byte_identical() {
    let env = TestEnv::new();
    expect_code(env.cmd().arg("init"), 0);
    let ws = env.ws("u", "p");
    // Below the tier: 8 MiB of random data in 32 KiB-average chunks.
    write(&ws.join("small.bin"), &random_bytes(99, 8 * MIB));
    env.snapshot_ws("u/p", &[]);
    let small = chunk_count(&env);
    assert!((150..400).contains(&small), "8 MiB in {small} chunks");

    let hash = sparse_with_random_blocks(&ws.join("large.bin"), LARGE, PIECES);
    env.snapshot_ws("u/p", &[]);
    // 16 MiB of distinct data in 256 KiB-average chunks (≤ 1 MiB each, so
    // at least 16), a few more where zeros meet data, and the zeros' few:
    // 32 KiB chunks would be ~500.
    let large = chunk_count(&env) - small;
    assert!(
        (16..150).contains(&large),
        "large file in {large} new chunks"
    );

    let out = check(&env, true);
    assert_eq!(out.code, 0, "{out}");
    let back = env.restore_latest("u/p", "back");
    assert_eq!(file_hash(&back.join("large.bin")), hash);
    assert_eq!(
        std::fs::read(back.join("small.bin")).unwrap(),
        random_bytes(99, 8 * MIB)
    );
}

/// The tier is chosen from the size before reading: a file that grows past
/// it is cut anew once (stored again whole); growing within a tier costs
/// only what was added. A store's tiers are set at `init` (small ones here)
/// and survive `repair`.
#[test]
fn a_file_crossing_a_tier_is_stored_again_once() {
    let env = TestEnv::new();
    // Files of 4 MiB or more: 256 KiB-average chunks.
    let mut c = env.cmd();
    c.args(["init", "--chunk-tiers", "1:4194304=65536/262144/1048576"]);
    expect_code(&mut c, 0);
    let ws = env.ws("u", "p");
    let data = random_bytes(7, 8 * MIB);
    let f = ws.join("grows.bin");
    let added = |env: &TestEnv| u(&env.snapshot_ws("u/p", &[]), "added_bytes");

    write(&f, &data[..3 * MIB]);
    added(&env);
    // 3 → 3.5 MiB, still below: only the tail is new.
    write(&f, &data[..3 * MIB + MIB / 2]);
    wait_out_racy_window(&env.root);
    let below = added(&env);
    assert!(
        below < 2 * MIB as u64,
        "growth below the tier added {below}"
    );
    // 3.5 → 5 MiB: crosses the tier, every byte cut anew and stored.
    write(&f, &data[..5 * MIB]);
    wait_out_racy_window(&env.root);
    let crossed = added(&env);
    assert!(
        crossed > 5 * MIB as u64,
        "crossing the tier added {crossed}"
    );
    // 5 → 6 MiB within the tier: the tail again.
    write(&f, &data[..6 * MIB]);
    wait_out_racy_window(&env.root);
    let above = added(&env);
    assert!(
        above < 3 * MIB as u64,
        "growth above the tier added {above}"
    );
    let back = env.restore_latest("u/p", "back");
    assert_eq!(
        std::fs::read(back.join("grows.bin")).unwrap(),
        &data[..6 * MIB]
    );
    assert_eq!(check(&env, true).code, 0);

    // A catalog rebuilt from the journals keeps the tiers (journal header
    // version 2): growing the file costs the tail, not a re-cut at 32 KiB.
    remove_catalog(&env.store);
    repair(&env, 0);
    write(&f, &data[..7 * MIB]);
    wait_out_racy_window(&env.root);
    let repaired = added(&env);
    assert!(
        repaired < 3 * MIB as u64,
        "after repair, growth added {repaired}"
    );
}

/// `init --chunk-tiers` takes `none` or the tiers' canonical text, and
/// refuses anything else naming the value, creating nothing.
#[test]
fn init_chunk_tiers_none_or_refused() {
    let env = TestEnv::new();
    let mut c = env.cmd();
    c.args(["init", "--chunk-tiers", "1:4194304=65536/262144"]);
    let out = run(&mut c);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("chunk tiers"), "{out}");
    assert!(!env.store.exists());

    let mut c = env.cmd();
    c.args(["init", "--chunk-tiers", "none"]);
    expect_code(&mut c, 0);
    let ws = env.ws("u", "p");
    sparse_with_random_blocks(&ws.join("large.bin"), LARGE, PIECES);
    env.snapshot_ws("u/p", &[]);
    let n = chunk_count(&env);
    assert!(n > 400, "no tiers: 16 MiB of data in {n} chunks");
}
