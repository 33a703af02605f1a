//! Writes small seed corpora for the fuzz targets into `seeds/<target>/`,
//! encoding real structures with the library itself.
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds
//!
//! Output is deterministic; re-running overwrites the same files.

use std::fs;
use std::path::{Path, PathBuf};

use wsnap::pack::format::{
    compress, encode_pack_header, BlobKind, Compression, Footer, RecordHeader,
};
use wsnap::tree::{Entry, EntryKind, FileContent, Tree};
use wsnap::{ChunkId, Id, PackId, TreeId};

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    fs::create_dir_all(&d).unwrap();
    assert!(bytes.len() < 10 * 1024, "seed {target}/{name} too big");
    fs::write(d.join(name), bytes).unwrap();
}

fn entry(name: &[u8], kind: EntryKind) -> Entry {
    let size = match &kind {
        EntryKind::File {
            content: FileContent::Chunks(chunks),
        } => chunks.len() as u64 * 4096,
        EntryKind::File { .. } => 1 << 24,
        EntryKind::Symlink { target } => target.len() as u64,
        EntryKind::Dir { .. } => 0,
    };
    Entry {
        name: name.to_vec(),
        flags: 0,
        mode: 0o644,
        mtime_ns: 1_764_151_200_123_456_789,
        ctime_ns: 1_764_151_201_000_000_000,
        inode: 424242,
        uid: 1000,
        gid: 1000,
        size,
        kind,
    }
}

fn record(kind: BlobKind, raw: &[u8]) -> Vec<u8> {
    let (compression, stored) = compress(raw, 3);
    let h = RecordHeader {
        kind,
        compression,
        raw_len: raw.len() as u32,
        stored_len: stored.len() as u32,
        id: Id::of(raw),
    };
    let mut out = h.encode().to_vec();
    out.extend_from_slice(&stored);
    out
}

fn pack(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = encode_pack_header().to_vec();
    for r in records {
        out.extend_from_slice(r);
    }
    let footer = Footer {
        record_count: records.len() as u64,
        pack_id: PackId(Id::of(&out)),
    };
    out.extend_from_slice(&footer.encode());
    out
}

fn main() {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds"));

    // Trees.
    let empty = Tree::default().encode();
    let mut changed = entry(b"log.txt", EntryKind::File { content: FileContent::Chunks(vec![]) });
    changed.flags = wsnap::tree::FLAG_CHANGED_DURING_READ;
    changed.mode = 0o600;
    let full = Tree::from_unsorted(vec![
        entry(
            b"data.bin",
            EntryKind::File {
                content: FileContent::Chunks(vec![ChunkId(Id::of(b"chunk-1")), ChunkId(Id::of(b"chunk-2"))]),
            },
        ),
        entry(b"src", EntryKind::Dir { tree: TreeId(Id::of(b"subtree")) }),
        entry(b"latest", EntryKind::Symlink { target: b"../runs/2026-11-26".to_vec() }),
        entry("r\u{e9}sum\u{e9} \x01".as_bytes(), EntryKind::File { content: FileContent::Chunks(vec![ChunkId(Id::of(b"c"))]) }),
        changed,
    ])
    .encode();
    let single = Tree {
        entries: vec![entry(b"a", EntryKind::Dir { tree: TreeId(Id::of(b"a")) })],
    }
    .encode();
    write(&dir, "tree_decode", "empty", &empty);
    write(&dir, "tree_decode", "mixed", &full);
    write(&dir, "tree_decode", "single_dir", &single);
    // A large directory's index (tree version 2) and one of its pieces.
    let big: Vec<Entry> = (0..1500u32)
        .map(|i| entry(format!("f{i:05}").as_bytes(), EntryKind::File { content: FileContent::Chunks(vec![ChunkId(Id::of(&i.to_le_bytes()))]) }))
        .collect();
    let (index, pieces) = wsnap::tree::split::split(big);
    write(&dir, "tree_index_decode", "index", &index.bytes);
    write(&dir, "tree_index_decode", "piece", &pieces[0].bytes);

    // Records (header + stored payload).
    let text = b"hello, wsnap\n".to_vec();
    let repetitive: Vec<u8> = b"0123456789abcdef".iter().copied().cycle().take(2000).collect();
    let r_plain = record(BlobKind::Chunk, &text);
    let r_zstd = record(BlobKind::Chunk, &repetitive);
    let r_tree = record(BlobKind::Tree, &full);
    let r_empty = record(BlobKind::Chunk, b"");
    assert_eq!(r_zstd[1], Compression::Zstd as u8, "seed should be compressed");
    write(&dir, "pack_record_decode", "plain", &r_plain);
    write(&dir, "pack_record_decode", "zstd", &r_zstd);
    write(&dir, "pack_record_decode", "tree", &r_tree);
    write(&dir, "pack_record_decode", "empty_blob", &r_empty);

    // Whole packs.
    write(&dir, "pack_scan", "empty_pack", &pack(&[]));
    write(&dir, "pack_scan", "one_record", &pack(&[r_plain.clone()]));
    write(&dir, "pack_scan", "three_records", &pack(&[r_plain, r_zstd, r_tree]));

    // Paths inside a snapshot.
    for (name, p) in [
        ("simple", &b"src/main.rs"[..]),
        ("dots", b"./a//b/./c/"),
        ("parent", b"a/../b"),
        ("nul", b"a\0b"),
        ("absolute", b"/runs/2026/out.csv"),
    ] {
        write(&dir, "restore_path", name, p);
    }

    // Times.
    for (name, t) in [
        ("latest", "latest"),
        ("local_seconds", "2026-03-04 05:06:07"),
        ("local_minutes", "2026-03-04T05:06"),
        ("local_fraction", "2026-03-04 05:06:07.123456789"),
        ("backup_name", "20260304_050607"),
        ("rfc3339_z", "2026-11-26T10:00:00Z"),
        ("rfc3339_offset", "1970-01-01T01:00:01+01:00"),
    ] {
        write(&dir, "time_parse", name, t.as_bytes());
    }
    println!("seeds written to {}", dir.display());
}
