//! The bytes of a journal file, and only here: a header holding the store's
//! fixed parameters, then one record per committed snapshot row; every
//! field is laid out in *Snapshot journal* in `docs/FORMAT.md`.
//!
//! ```text
//! header  "WSNJ" version reserved params… check[8]   HEADER_BYTES (v1) or
//!                                                    HEADER_V2_BYTES (v2) long
//! record  u32:len payload[len] check[8]              len ≤ MAX_RECORD_BYTES
//! ```
//!
//! [`decode`] never panics: it stops at the first record that does not
//! check out (a checksum, or fields that do not hash to the record's
//! snapshot id), and tells a torn tail (a crash's cut append) from damage.

use crate::chunker::{ChunkTier, ChunkerParams, LargeFileTiers, MAX_TIERS};
use crate::codec::{Reader, Writer as Enc};
use crate::error::{Error, Format, Location, Object, Problem, Result};
use crate::id::{SnapshotId, TreeId};
use crate::model::{snapshot_id, SnapshotRow, SnapshotStats, StoreParams};
use crate::workspace::WorkspaceName;

/// The first bytes of every journal file.
pub const JOURNAL_MAGIC: &[u8; 4] = b"WSNJ";
/// Version 1: the first journal format (came with catalog format 2).
/// Version 2 (issue 18, catalog format 4): the header adds the store's
/// chunk tiers for large files; written only by stores that have tiers, so
/// every other store's journals stay version 1, byte for byte.
pub const JOURNAL_VERSION: u8 = 2;
/// Bytes of a version-1 file header.
pub const HEADER_BYTES: usize = 4 + 1 + 3 + 4 * 3 + 4 + 8 + 8;
/// Bytes of a version-2 file header: version 1's fields, then
/// `u8:tier_count u8[3]:reserved` and `MAX_TIERS` tiers of
/// `u64:from u32:min u32:avg u32:max` (unused ones zero), then the check.
pub const HEADER_V2_BYTES: usize = HEADER_BYTES + 4 + MAX_TIERS * 20;

/// The length of the header `bytes` start with, by its version byte.
fn header_len(bytes: &[u8]) -> usize {
    match bytes.get(4) {
        Some(2) => HEADER_V2_BYTES,
        _ => HEADER_BYTES,
    }
}
/// Largest record payload: two names of at most 1024 bytes plus fixed fields.
pub const MAX_RECORD_BYTES: u32 = 4096;
const CHECK_BYTES: usize = 8;

/// File header: the store's fixed parameters, so a repaired catalog gets the
/// chunker of the data it indexes.
/// Version 1 for a store without chunk tiers, else version 2.
pub fn encode_header(params: &StoreParams) -> Vec<u8> {
    let tiers = params.large_files.tiers();
    let mut e = Enc::with_capacity(HEADER_V2_BYTES);
    e.bytes(JOURNAL_MAGIC);
    e.u8(if tiers.is_empty() { 1 } else { 2 });
    e.bytes(&[0, 0, 0]);
    e.u32(params.chunker.min_bytes);
    e.u32(params.chunker.avg_bytes);
    e.u32(params.chunker.max_bytes);
    e.u32(params.zstd_level as u32);
    e.u64(params.pack_target_bytes);
    if !tiers.is_empty() {
        e.u8(tiers.len() as u8);
        e.bytes(&[0, 0, 0]);
        for i in 0..MAX_TIERS {
            let (from, p) = tiers.get(i).map_or((0, [0; 3]), |t| {
                let p = t.params;
                (t.from_bytes, [p.min_bytes, p.avg_bytes, p.max_bytes])
            });
            e.u64(from);
            p.iter().for_each(|&v| e.u32(v));
        }
    }
    let check = blake3::hash(&e.buf);
    e.bytes(&check.as_bytes()[..CHECK_BYTES]);
    e.buf
}

fn decode_header(bytes: &[u8]) -> Result<StoreParams> {
    let mut r = Reader::new(bytes, "journal header");
    let body = r.take(header_len(bytes) - CHECK_BYTES)?;
    let check = r.take(CHECK_BYTES)?;
    let mut r = Reader::new(body, "journal header");
    if r.take(4)? != JOURNAL_MAGIC {
        return Err(Error::corrupt(Problem::BadMagic { what: "journal" }));
    }
    // The version before the checksum: a newer wsnap's header may be laid
    // out (and checked) differently.
    let v = r.u8()?;
    if !(1..=JOURNAL_VERSION).contains(&v) {
        return Err(Error::UnsupportedFormat {
            what: Format::Journal,
            found: i64::from(v),
            supported: 1..=i64::from(JOURNAL_VERSION),
            location: Location::Unknown,
        });
    }
    if &blake3::hash(body).as_bytes()[..CHECK_BYTES] != check {
        return Err(Error::corrupt(Problem::ChecksumMismatch {
            what: "journal header",
        }));
    }
    if r.take(3)? != [0, 0, 0] {
        return Err(r.error("reserved bytes are not zero"));
    }
    let chunker = ChunkerParams {
        min_bytes: r.u32()?,
        avg_bytes: r.u32()?,
        max_bytes: r.u32()?,
    };
    chunker
        .validate()
        .map_err(|_| Error::corrupt_as("journal header: invalid chunker parameters"))?;
    let zstd_level = r.u32()? as i32;
    let pack_target_bytes = r.u64()?;
    let large_files = if v == 1 {
        LargeFileTiers::NONE
    } else {
        let count = r.u8()? as usize;
        if !(1..=MAX_TIERS).contains(&count) {
            return Err(Error::corrupt_as(format!(
                "journal header: {count} chunk tiers (1 to {MAX_TIERS})"
            )));
        }
        if r.take(3)? != [0, 0, 0] {
            return Err(r.error("reserved bytes are not zero"));
        }
        let mut tiers = Vec::new();
        for i in 0..MAX_TIERS {
            let from_bytes = r.u64()?;
            let params = ChunkerParams {
                min_bytes: r.u32()?,
                avg_bytes: r.u32()?,
                max_bytes: r.u32()?,
            };
            if i < count {
                tiers.push(ChunkTier { from_bytes, params });
            } else if from_bytes != 0
                || params.max_bytes != 0
                || params.avg_bytes != 0
                || params.min_bytes != 0
            {
                return Err(r.error("unused tier is not zero"));
            }
        }
        LargeFileTiers::new(&tiers)
            .and_then(|t| t.validate(&chunker).map(|()| t))
            .map_err(|_| Error::corrupt_as("journal header: invalid chunk tiers"))?
    };
    r.finish()?;
    Ok(StoreParams {
        chunker,
        large_files,
        zstd_level,
        pack_target_bytes,
    })
}

/// The smallest record: one-byte user and project names.
pub const MIN_RECORD_BYTES: u64 =
    4 + (32 + 4 + 1 + 4 + 1 + 3 * 8 + 32 + 9 * 8) + CHECK_BYTES as u64;

/// One record: `u32:len payload[len] check[8]`, check = BLAKE3(len ‖ payload).
pub fn encode_record(row: &SnapshotRow) -> Vec<u8> {
    let mut p = Enc::with_capacity(256);
    p.id(&row.id.0);
    p.u32(row.workspace.user.len() as u32);
    p.bytes(&row.workspace.user);
    p.u32(row.workspace.project.len() as u32);
    p.bytes(&row.workspace.project);
    p.i64(row.time_ns);
    p.i64(row.started_ns);
    p.i64(row.finished_ns);
    p.id(&row.root.0);
    let s = row.stats;
    for v in [
        s.files,
        s.dirs,
        s.symlinks,
        s.size_bytes,
        s.bytes_added,
        s.bytes_read,
        s.skipped,
        s.special,
        s.excluded,
    ] {
        p.u64(v);
    }
    let mut e = Enc::with_capacity(p.buf.len() + 12);
    e.u32(p.buf.len() as u32);
    e.bytes(&p.buf);
    let check = blake3::hash(&e.buf);
    e.bytes(&check.as_bytes()[..CHECK_BYTES]);
    e.buf
}

fn decode_payload(payload: &[u8]) -> Result<SnapshotRow> {
    let mut r = Reader::new(payload, "journal record");
    let id = SnapshotId(r.id()?);
    let name = |r: &mut Reader<'_>| -> Result<Vec<u8>> {
        let n = r.u32()? as usize;
        Ok(r.take(n)?.to_vec())
    };
    let user = name(&mut r)?;
    let project = name(&mut r)?;
    let workspace = WorkspaceName::new(&user, &project)
        .map_err(|e| Error::corrupt_as(format!("journal record: {e}")))?;
    let time_ns = r.i64()?;
    let started_ns = r.i64()?;
    let finished_ns = r.i64()?;
    let root = TreeId(r.id()?);
    let mut n = [0u64; 9];
    for v in &mut n {
        *v = r.u64()?;
    }
    r.finish()?;
    let row = SnapshotRow {
        id,
        workspace,
        time_ns,
        started_ns,
        finished_ns,
        root,
        stats: SnapshotStats {
            files: n[0],
            dirs: n[1],
            symlinks: n[2],
            size_bytes: n[3],
            bytes_added: n[4],
            bytes_read: n[5],
            skipped: n[6],
            special: n[7],
            excluded: n[8],
        },
        damaged: false,
    };
    let hashed = snapshot_id(&row.workspace, row.time_ns, row.started_ns, &row.root);
    if hashed != id {
        return Err(Error::corrupt(Problem::HashMismatch {
            expected: id.0,
            found: hashed.0,
        })
        .within(Object::Snapshot(id)));
    }
    Ok(row)
}

/// What one journal file holds.
#[derive(Debug, Default)]
pub struct Decoded {
    pub params: Option<StoreParams>,
    pub records: Vec<SnapshotRow>,
    /// Why decoding stopped early, if it did: damage, or a header of a
    /// format version this wsnap does not read. A record cut short at the
    /// very end of a `.open` file is a crash's torn append, not damage.
    pub damage: Option<Error>,
    pub torn_tail: bool,
}

/// Decode a whole journal file. Never panics; stops at the first record that
/// does not check out (its length cannot be trusted past that point).
pub fn decode(bytes: &[u8]) -> Decoded {
    let mut out = Decoded::default();
    let header = header_len(bytes);
    if bytes.len() < header {
        out.torn_tail = true;
        return out;
    }
    match decode_header(&bytes[..header]) {
        Ok(p) => out.params = Some(p),
        Err(e) => {
            out.damage = Some(e);
            return out;
        }
    }
    let mut pos = header;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.len() < 4 {
            out.torn_tail = true;
            break;
        }
        let record = |e: Error| e.within(Object::Record { offset: pos as u64 });
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
        if len > MAX_RECORD_BYTES {
            out.damage = Some(record(Error::corrupt_as(format!("claims {len} bytes"))));
            break;
        }
        let end = 4 + len as usize + CHECK_BYTES;
        if rest.len() < end {
            out.torn_tail = true;
            break;
        }
        let body = &rest[..4 + len as usize];
        if blake3::hash(body).as_bytes()[..CHECK_BYTES] != rest[4 + len as usize..end] {
            out.damage = Some(record(Error::corrupt(Problem::ChecksumMismatch {
                what: "journal record",
            })));
            break;
        }
        match decode_payload(&body[4..]) {
            Ok(row) => out.records.push(row),
            Err(e) => {
                out.damage = Some(record(e));
                break;
            }
        }
        pos += end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Id;
    use proptest::prelude::*;

    fn row(user: &[u8], project: &[u8], t: i64, root: [u8; 32], n: u64) -> SnapshotRow {
        let ws = WorkspaceName::new(user, project).unwrap();
        let root = TreeId(Id(root));
        SnapshotRow {
            id: snapshot_id(&ws, t, t + 1, &root),
            workspace: ws,
            time_ns: t,
            started_ns: t + 1,
            finished_ns: t + 2,
            root,
            stats: SnapshotStats {
                files: n,
                size_bytes: n.wrapping_mul(7),
                ..SnapshotStats::default()
            },
            damaged: false,
        }
    }

    /// A store without chunk tiers (made before catalog version 4).
    fn legacy() -> StoreParams {
        StoreParams {
            large_files: LargeFileTiers::NONE,
            ..StoreParams::DEFAULT
        }
    }

    /// A store without tiers writes the version-1 header it always wrote;
    /// one with tiers the version-2 header, which carries them.
    #[test]
    fn header_version_follows_the_tiers() {
        let v1 = encode_header(&legacy());
        assert_eq!((v1.len(), v1[4]), (HEADER_BYTES, 1));
        let v2 = encode_header(&StoreParams::DEFAULT);
        assert_eq!((v2.len(), v2[4]), (HEADER_V2_BYTES, 2));
        assert_eq!(decode(&v2).params, Some(StoreParams::DEFAULT));
        // A torn version-2 header is a torn tail, not a version-1 header.
        let d = decode(&v2[..HEADER_BYTES + 1]);
        assert!(d.torn_tail && d.params.is_none() && d.damage.is_none());
    }

    /// A version-2 header whose tier count is 0 or above `MAX_TIERS`
    /// (check recomputed) is damage, never read as fewer tiers.
    #[test]
    fn a_tier_count_out_of_range_is_damage() {
        for count in [0u8, MAX_TIERS as u8 + 1, 255] {
            let mut bytes = encode_header(&StoreParams::DEFAULT);
            bytes[HEADER_BYTES - CHECK_BYTES] = count;
            let body = HEADER_V2_BYTES - CHECK_BYTES;
            let check = blake3::hash(&bytes[..body]);
            bytes[body..].copy_from_slice(&check.as_bytes()[..CHECK_BYTES]);
            let d = decode(&bytes);
            assert!(d.params.is_none(), "count {count}");
            assert!(
                matches!(d.damage, Some(Error::Corrupt { .. })),
                "count {count}: {:?}",
                d.damage
            );
        }
    }

    #[test]
    fn the_smallest_record_is_min_record_bytes() {
        let r = row(b"u", b"p", 5, [7; 32], 3);
        assert_eq!(encode_record(&r).len() as u64, MIN_RECORD_BYTES);
        let r = row(b"user", b"project", 5, [7; 32], 3);
        assert!(encode_record(&r).len() as u64 > MIN_RECORD_BYTES);
    }

    proptest! {
        #[test]
        fn round_trip(recs in proptest::collection::vec(
            (proptest::collection::vec(1u8..=255, 1..20), any::<i64>(), any::<[u8; 32]>(), any::<u64>()), 0..8)) {
            let rows: Vec<SnapshotRow> = recs.iter()
                .filter(|(u, ..)| !u.contains(&b'/') && u.as_slice() != b"." && u.as_slice() != b"..")
                .map(|(u, t, root, n)| row(u, b"p", t / 4, *root, *n))
                .collect();
            for params in [StoreParams::DEFAULT, legacy()] {
                let mut bytes = encode_header(&params);
                for r in &rows { bytes.extend_from_slice(&encode_record(r)); }
                let d = decode(&bytes);
                prop_assert_eq!(d.params, Some(params));
                prop_assert!(d.damage.is_none() && !d.torn_tail);
                prop_assert_eq!(&d.records, &rows);
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(&bytes);
        }
    }

    /// A header of a newer journal version: whether its checksum is laid
    /// out as ours (recomputed) or not (left as it was).
    #[test]
    fn a_journal_of_another_version_is_unsupported_not_damaged() {
        for recompute in [true, false] {
            let mut bytes = encode_header(&StoreParams::DEFAULT);
            bytes[4] = JOURNAL_VERSION + 1;
            if recompute {
                let check = blake3::hash(&bytes[..HEADER_BYTES - CHECK_BYTES]);
                bytes[HEADER_BYTES - CHECK_BYTES..HEADER_BYTES]
                    .copy_from_slice(&check.as_bytes()[..CHECK_BYTES]);
            }
            bytes.extend_from_slice(&encode_record(&row(b"a", b"b", 5, [1; 32], 3)));
            let d = decode(&bytes);
            assert!(d.params.is_none() && d.records.is_empty());
            match d.damage {
                Some(Error::UnsupportedFormat {
                    what: Format::Journal,
                    found: 3,
                    supported,
                    location: Location::Unknown,
                }) => assert_eq!(supported, 1..=2),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn torn_tail_and_flipped_byte() {
        let rows = [
            row(b"a", b"b", 5, [1; 32], 3),
            row(b"a", b"c", 6, [2; 32], 4),
        ];
        let mut bytes = encode_header(&StoreParams::DEFAULT);
        for r in &rows {
            bytes.extend_from_slice(&encode_record(r));
        }
        let full = bytes.len();
        let d = decode(&bytes[..full - 3]);
        assert!(d.torn_tail && d.damage.is_none());
        assert_eq!(d.records, rows[..1]);
        for i in HEADER_BYTES..full {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            let d = decode(&b);
            assert!(d.damage.is_some() || d.torn_tail, "flip at {i} undetected");
            assert!(d.records.len() < 2);
        }
    }
}
