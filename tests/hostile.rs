//! Hostile store contents, crafted through the library API: names with
//! `..`, `/`, NUL, absolute paths, enormous lengths and counts in trees,
//! chunk lists, pack records and journals are rejected with an error, never
//! a panic or a huge allocation; and a store holding such a tree never makes
//! `restore` or `ls` write (or read) outside the target.

mod common;

use std::fs;

use common::*;
use wsnap::catalog::{Catalog, PendingTree};
use wsnap::pack::format::{self, Compression, RecordHeader};
use wsnap::pack::BlobKind;
use wsnap::tree::Tree;
use wsnap::{Id, SnapshotId, SnapshotRow, SnapshotStats, Store, TreeId, WorkspaceName};

/// A tree blob with one entry, encoded by hand (the encoder refuses bad
/// names): `kind` 1 file with no chunks, 2 dir pointing at `child`, 3
/// symlink to `target`.
fn raw_tree(name: &[u8], kind: u8, child: Option<Id>, target: &[u8]) -> Vec<u8> {
    let mut b = b"WTRE".to_vec();
    b.push(1);
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&(name.len() as u16).to_le_bytes());
    b.extend_from_slice(name);
    b.push(kind);
    b.push(0); // flags
    b.extend_from_slice(&0o644u32.to_le_bytes());
    b.extend_from_slice(&0i64.to_le_bytes()); // mtime
    b.extend_from_slice(&0i64.to_le_bytes()); // ctime
    b.extend_from_slice(&0u64.to_le_bytes()); // inode
    b.extend_from_slice(&0u32.to_le_bytes()); // uid
    b.extend_from_slice(&0u32.to_le_bytes()); // gid
    b.extend_from_slice(&0u64.to_le_bytes()); // size
    match kind {
        1 => {
            b.push(0);
            b.extend_from_slice(&0u32.to_le_bytes());
        }
        2 => b.extend_from_slice(&child.unwrap().0),
        _ => {
            b.extend_from_slice(&(target.len() as u32).to_le_bytes());
            b.extend_from_slice(target);
        }
    }
    b
}

const HOSTILE_NAMES: [&[u8]; 8] = [
    b"..",
    b".",
    b"a/../../evil",
    b"/etc/passwd",
    b"evil\0.txt",
    b"",
    b"../evil",
    b"sub/evil",
];

#[test]
fn hostile_names_are_rejected_by_the_tree_decoder() {
    for name in HOSTILE_NAMES {
        for kind in [1, 3] {
            let raw = raw_tree(name, kind, None, b"x");
            let err = Tree::decode(&raw).expect_err(&format!("{name:?} accepted"));
            assert!(err.to_string().contains("corrupt"), "{err}");
        }
    }
    let long = vec![b'a'; 1025];
    assert!(Tree::decode(&raw_tree(&long, 1, None, b"")).is_err());
    // The same entry with a decent name decodes: the rejections are about
    // the names, not the encoding.
    assert!(Tree::decode(&raw_tree(b"fine.txt", 1, None, b"")).is_ok());
    assert!(Tree::decode(&raw_tree(b"link", 3, None, b"../../anywhere")).is_ok());
}

#[test]
fn enormous_counts_and_lengths_are_rejected_without_allocating() {
    // A tree claiming 4 billion entries.
    let mut t = b"WTRE\x01".to_vec();
    t.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(Tree::decode(&t).is_err());
    // An entry claiming 4 billion chunk ids.
    let mut t = raw_tree(b"f", 1, None, b"");
    let n = t.len() - 4;
    t[n..].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(Tree::decode(&t).is_err());
    // A symlink target of 4 GiB, and one over the 4096-byte limit.
    for len in [u32::MAX, 4097] {
        let mut t = raw_tree(b"l", 3, None, b"x");
        let n = t.len() - 5;
        t[n..n + 4].copy_from_slice(&len.to_le_bytes());
        assert!(Tree::decode(&t).is_err(), "target length {len}");
    }
    // Chunk lists: zero ids, too many ids.
    for n in [0u32, 513, u32::MAX] {
        let mut l = b"WCLS\x01".to_vec();
        l.extend_from_slice(&n.to_le_bytes());
        l.extend(std::iter::repeat_n(0u8, 32 * 513));
        assert!(wsnap::chunklist::decode(&l).is_err(), "list of {n}");
    }
    // Pack record headers with valid checksums but absurd lengths.
    for (raw, stored, comp) in [
        (u32::MAX, 10, Compression::Zstd),
        (10, u32::MAX, Compression::Zstd),
        (10, 11, Compression::None),
    ] {
        let h = RecordHeader {
            kind: BlobKind::Chunk,
            compression: comp,
            raw_len: raw,
            stored_len: stored,
            id: Id::of(b"x"),
        };
        assert!(RecordHeader::decode(&h.encode()).is_err(), "{raw}/{stored}");
    }
    // A zstd payload whose frame claims far more than raw_len.
    let big = vec![7u8; 1 << 20];
    let (comp, stored) = format::compress(&big, 3);
    assert_eq!(comp, Compression::Zstd);
    let h = RecordHeader {
        kind: BlobKind::Chunk,
        compression: comp,
        raw_len: 100,
        stored_len: stored.len() as u32,
        id: Id::of(&big),
    };
    assert!(format::decode_payload(&h, &stored).is_err());
    // A journal record claiming 4 GiB.
    let mut j = wsnap::journal::encode_header(&wsnap::StoreParams::DEFAULT);
    j.extend_from_slice(&u32::MAX.to_le_bytes());
    j.extend_from_slice(&[0; 64]);
    let d = wsnap::journal::decode(&j);
    assert!(d.damage.is_some() && d.records.is_empty());
}

/// A store whose only snapshot (of `u/p`) has `root` as its root tree,
/// with `blobs` (trees) written into one pack. Returns the snapshot id.
fn store_with_trees(env: &TestEnv, blobs: &[(Vec<u8>, Vec<Id>)], root: Id) -> SnapshotId {
    Store::init(&env.store).unwrap();
    let store = Store::open(&env.store).unwrap();
    let mut w = store.packs().writer();
    let mut offsets = Vec::new();
    for (raw, _) in blobs {
        let h = RecordHeader {
            kind: BlobKind::Tree,
            compression: Compression::None,
            raw_len: raw.len() as u32,
            stored_len: raw.len() as u32,
            id: Id::of(raw),
        };
        offsets.push(w.append(h, raw).unwrap());
    }
    let sealed = w.seal().unwrap().unwrap();
    let mut cat = Catalog::open(&store.catalog_path(), true).unwrap();
    cat.insert_pack(&sealed, 1).unwrap();
    // Children before parents: every reference must be indexed first.
    let trees: Vec<PendingTree> = blobs
        .iter()
        .zip(&offsets)
        .map(|((raw, refs), off)| PendingTree {
            kind: BlobKind::Tree,
            id: Id::of(raw),
            pack: sealed.id,
            offset: *off,
            stored_len: raw.len() as u32,
            raw_len: raw.len() as u32,
            refs: refs.clone(),
        })
        .collect();
    let id = SnapshotId(Id::of(b"hostile snapshot"));
    let row = SnapshotRow {
        id,
        workspace: WorkspaceName::new(b"u", b"p").unwrap(),
        time_ns: 1_000_000_000,
        started_ns: 1_000_000_000,
        finished_ns: 1_000_000_000,
        root: TreeId(root),
        stats: SnapshotStats::default(),
        damaged: false,
    };
    cat.commit_snapshot(&trees, &row, &[], "hostile.wsj")
        .unwrap();
    id
}

#[test]
fn restore_and_ls_of_a_hostile_tree_write_nothing_outside_the_target() {
    for name in HOSTILE_NAMES {
        let env = TestEnv::new();
        // The hostile entry sits one level down, under a decent directory.
        let inner = raw_tree(name, 1, None, b"");
        let inner_id = Id::of(&inner);
        let root = raw_tree(b"dir", 2, Some(inner_id), b"");
        let id = store_with_trees(
            &env,
            &[(inner, vec![]), (root.clone(), vec![inner_id])],
            Id::of(&root),
        );
        let before = paths(env.dir.path());
        let target = env.path("out/target");
        let mut c = env.cmd();
        c.args(["restore", "u/p", "--snapshot", &id.0.to_hex(), "--to"])
            .arg(&target);
        let out = run(&mut c);
        assert_ne!(out.code, 0, "{name:?}: {out}");
        assert!(out.stderr.contains("corrupt"), "{name:?}: {out}");
        let mut c = env.cmd();
        c.args(["ls", "u/p", "--snapshot", &id.0.to_hex(), "dir"]);
        let out = run(&mut c);
        assert_eq!(out.code, 3, "{name:?}: {out}");
        // Nothing appeared anywhere but inside the target.
        let after: Vec<String> = paths(env.dir.path())
            .into_iter()
            .filter(|p| !before.contains(p) && !p.starts_with("out"))
            .filter(|p| !p.starts_with("store/"))
            .collect();
        assert!(after.is_empty(), "{name:?}: created {after:?}");
        assert!(!env.path("evil").exists() && !env.path("out/evil").exists());
        if target.exists() {
            assert!(paths(&target).iter().all(|p| p == "dir"), "{name:?}");
        }
        let _ = fs::remove_dir_all(env.path("out"));
    }
}

/// Issue 18: an index whose pieces do not fit it (a piece's first entry is
/// not the name the index gives, or a "piece" that is itself an index) is
/// corrupt: `restore` and `ls` refuse the directory, and `check
/// --read-data`, which decodes every piece on its own, reports the index.
#[test]
fn an_index_whose_pieces_do_not_fit_is_corrupt() {
    use wsnap::tree::{Piece, TreeIndex};
    let index = |pieces: Vec<(Vec<u8>, &[u8])>| {
        TreeIndex {
            entries: pieces.len() as u64,
            pieces: pieces
                .into_iter()
                .map(|(raw, first)| Piece {
                    tree: TreeId(Id::of(&raw)),
                    entries: 1,
                    first: first.to_vec(),
                })
                .collect(),
        }
        .encode()
    };
    let b = raw_tree(b"b", 1, None, b"");
    let a = raw_tree(b"a", 1, None, b"");
    // Piece 2 starts with "a", the index says "c".
    let misnamed = index(vec![(b.clone(), b"b"), (a.clone(), b"c")]);
    // A piece that is an index.
    let inner = index(vec![(b.clone(), b"b")]);
    let nested = index(vec![(inner.clone(), b"b")]);
    let cases = [
        (
            "misnamed",
            vec![
                (b.clone(), vec![]),
                (a.clone(), vec![]),
                (misnamed.clone(), vec![Id::of(&b), Id::of(&a)]),
            ],
            misnamed,
        ),
        (
            "nested",
            vec![
                (b.clone(), vec![]),
                (inner.clone(), vec![Id::of(&b)]),
                (nested.clone(), vec![Id::of(&inner)]),
            ],
            nested,
        ),
    ];
    for (what, mut blobs, bad) in cases {
        let env = TestEnv::new();
        let root = raw_tree(b"dir", 2, Some(Id::of(&bad)), b"");
        blobs.push((root.clone(), vec![Id::of(&bad)]));
        let id = store_with_trees(&env, &blobs, Id::of(&root));
        let mut c = env.cmd();
        c.args(["restore", "u/p", "--snapshot", &id.0.to_hex(), "--to"])
            .arg(env.path("out"));
        let out = run(&mut c);
        assert_ne!(out.code, 0, "{what}: {out}");
        assert!(out.stderr.contains("corrupt"), "{what}: {out}");
        let mut c = env.cmd();
        c.args(["ls", "u/p", "--snapshot", &id.0.to_hex(), "dir"]);
        assert_eq!(run(&mut c).code, 3, "{what}");
        let out = check(&env, true);
        assert_eq!(out.code, 1, "{what}: {out}");
        assert!(out.stdout.contains(&Id::of(&bad).to_hex()), "{what}: {out}");
    }
}
