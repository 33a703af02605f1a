//! Records of damaged packs: what `repair` saves and what `forget` purges
//! from the packs `repair` set aside.
//!
//! A pack that does not verify whole is cut into records found again by
//! their header check (after a bad header the next one is searched byte by
//! byte; a false match of the 4-byte check is caught by the payload hash),
//! records an old catalog places where no header is found any more (their
//! payload still hashes to their id, see [`verify_known`]), and gaps.

use std::collections::HashSet;

use crate::id::Id;
use crate::pack::format::{
    decode_payload, Compression, ExpectedRecord, RecordHeader, FOOTER_BYTES, FOOTER_MAGIC,
    HEADER_BYTES, RECORD_HEADER_BYTES,
};

/// One record of a damaged pack: `[start, end)` covers header and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: usize,
    pub end: usize,
    pub id: Id,
    /// Its payload decompresses and hashes to `id`.
    pub intact: bool,
}

/// Records of a damaged pack that still verify: (header offset, header).
pub fn salvage(bytes: &[u8]) -> Vec<(usize, RecordHeader)> {
    find(bytes, false)
        .into_iter()
        .map(|(start, h, _)| (start, h))
        .collect()
}

/// The payload of the record whose header `h` is at `offset` of `bytes` (as
/// [`salvage`] or [`salvage_known`] found it).
pub fn payload<'a>(bytes: &'a [u8], offset: usize, h: &RecordHeader) -> &'a [u8] {
    let p = offset + RECORD_HEADER_BYTES;
    &bytes[p..p + h.stored_len as usize]
}

/// Records a catalog placed at `known` (header offset, what it holds) that
/// [`salvage`] did not find (their header is damaged), whose payload still
/// hashes to their id: (header offset, a rebuilt header).
pub fn salvage_known(
    bytes: &[u8],
    found: &[(usize, RecordHeader)],
    known: &[(u64, ExpectedRecord)],
) -> Vec<(usize, RecordHeader)> {
    let have: HashSet<Id> = found.iter().map(|(_, h)| h.id).collect();
    let mut out = Vec::new();
    for (offset, e) in known {
        if have.contains(&e.id) {
            continue;
        }
        if let Some(h) = verify_known(bytes, *offset, e) {
            out.push((*offset as usize, h));
        }
    }
    out
}

/// The header of the record a catalog says is at `offset`, if the payload
/// there decodes and hashes to its id (the compression flag is in the
/// header only, so both are tried).
pub fn verify_known(bytes: &[u8], offset: u64, e: &ExpectedRecord) -> Option<RecordHeader> {
    let p = usize::try_from(offset)
        .ok()?
        .checked_add(RECORD_HEADER_BYTES)?;
    let q = p.checked_add(e.stored_len as usize)?;
    let payload = bytes.get(p..q)?;
    [Compression::None, Compression::Zstd]
        .into_iter()
        .filter(|c| *c == Compression::Zstd || e.raw_len == e.stored_len)
        .map(|compression| RecordHeader {
            kind: e.kind,
            compression,
            raw_len: e.raw_len,
            stored_len: e.stored_len,
            id: e.id,
        })
        .find(|h| decode_payload(h, payload).is_ok())
}

/// Every record of a damaged pack, intact or not: by header check, then at
/// the offsets `known` gives where no record was found.
pub fn regions(bytes: &[u8], known: &[(u64, ExpectedRecord)]) -> Vec<Region> {
    let mut out: Vec<Region> = find(bytes, true)
        .into_iter()
        .map(|(start, h, intact)| Region {
            start,
            end: start + RECORD_HEADER_BYTES + h.stored_len as usize,
            id: h.id,
            intact,
        })
        .collect();
    for (offset, e) in known {
        let Ok(start) = usize::try_from(*offset) else {
            continue;
        };
        let end = start + RECORD_HEADER_BYTES + e.stored_len as usize;
        if end > bytes.len() || out.iter().any(|r| r.start < end && start < r.end) {
            continue;
        }
        let intact = verify_known(bytes, *offset, e).is_some();
        out.push(Region {
            start,
            end,
            id: e.id,
            intact,
        });
    }
    out.sort_by_key(|r| r.start);
    out
}

/// Byte ranges in no region, leaving out the pack header and a footer
/// (neither holds blob data: magic, version, count, the pack's own id).
pub fn gaps(bytes: &[u8], regions: &[Region]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = HEADER_BYTES.min(bytes.len());
    let end = body_end(bytes);
    for r in regions {
        if r.start > pos {
            out.push((pos, r.start.min(end)));
        }
        pos = pos.max(r.end);
    }
    if pos < end {
        out.push((pos, end));
    }
    out.retain(|(a, b)| a < b);
    out
}

/// Records found by their header check, in file order: (header offset,
/// header, payload verifies). A record whose payload does not verify is
/// kept (and skipped over) with `keep_damaged`; otherwise the search goes
/// on at the next byte.
fn find(bytes: &[u8], keep_damaged: bool) -> Vec<(usize, RecordHeader, bool)> {
    let end = body_end(bytes);
    let mut out = Vec::new();
    let mut pos = HEADER_BYTES.min(bytes.len());
    while pos + RECORD_HEADER_BYTES <= end {
        // Cheap filter before the header check's hash: kind and compression
        // codes (zeroed bytes, most of a purged file, fail here).
        let plausible = (1..=3).contains(&bytes[pos]) && bytes[pos + 1] <= 1;
        let found = plausible
            .then(|| RecordHeader::decode(&bytes[pos..pos + RECORD_HEADER_BYTES]).ok())
            .flatten()
            .and_then(|h| {
                let p = pos + RECORD_HEADER_BYTES;
                let q = p.checked_add(h.stored_len as usize)?;
                (q <= end).then(|| (h, decode_payload(&h, &bytes[p..q]).is_ok(), q))
            })
            .filter(|(_, intact, _)| *intact || keep_damaged);
        match found {
            Some((h, intact, next)) => {
                out.push((pos, h, intact));
                pos = next;
            }
            None => pos += 1,
        }
    }
    out
}

/// Where records may end: before an intact-looking footer, else the end.
fn body_end(bytes: &[u8]) -> usize {
    if bytes.len() >= HEADER_BYTES + FOOTER_BYTES
        && bytes[bytes.len() - FOOTER_BYTES..].starts_with(FOOTER_MAGIC)
    {
        bytes.len() - FOOTER_BYTES
    } else {
        bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::PackId;
    use crate::pack::format::{encode_pack_header, new_record, BlobKind, Footer};

    /// A whole pack of `blobs` (compressible ones are stored compressed),
    /// with each record's offset and header.
    fn pack_of(blobs: &[Vec<u8>]) -> (Vec<u8>, Vec<(usize, RecordHeader)>) {
        let mut bytes = encode_pack_header().to_vec();
        let mut records = Vec::new();
        for raw in blobs {
            let (h, payload) = new_record(BlobKind::Chunk, Id::of(raw), raw, 3);
            records.push((bytes.len(), h));
            bytes.extend_from_slice(&h.encode());
            bytes.extend_from_slice(&payload);
        }
        let footer = Footer {
            record_count: records.len() as u64,
            pack_id: PackId(Id::of(&bytes)),
        };
        bytes.extend_from_slice(&footer.encode());
        (bytes, records)
    }

    fn blobs() -> Vec<Vec<u8>> {
        vec![
            b"abc".repeat(100),
            (0..=255u8).cycle().take(700).collect(),
            b"z".to_vec(),
        ]
    }

    fn expected(h: &RecordHeader) -> ExpectedRecord {
        ExpectedRecord {
            id: h.id,
            kind: h.kind,
            stored_len: h.stored_len,
            raw_len: h.raw_len,
        }
    }

    #[test]
    fn an_intact_pack_is_salvaged_whole_without_gaps() {
        let (bytes, records) = pack_of(&blobs());
        assert_eq!(salvage(&bytes), records);
        let regions = regions(&bytes, &[]);
        assert_eq!(regions.len(), 3);
        assert!(regions.iter().all(|r| r.intact));
        assert_eq!(gaps(&bytes, &regions), vec![]);
        for (offset, h) in &records {
            let raw = decode_payload(h, payload(&bytes, *offset, h)).unwrap();
            assert_eq!(Id::of(&raw), h.id);
        }
    }

    #[test]
    fn a_damaged_payload_loses_its_record_only() {
        let (mut bytes, records) = pack_of(&blobs());
        let (offset, h) = records[1];
        bytes[offset + RECORD_HEADER_BYTES + 5] ^= 0xff;
        assert_eq!(salvage(&bytes), vec![records[0], records[2]]);
        let r = regions(&bytes, &[]);
        assert_eq!(
            r.iter().map(|r| r.intact).collect::<Vec<_>>(),
            [true, false, true]
        );
        assert_eq!(r[1].id, h.id);
        assert_eq!(verify_known(&bytes, offset as u64, &expected(&h)), None);
    }

    #[test]
    fn a_damaged_header_is_found_again_where_a_catalog_places_it() {
        let (mut bytes, records) = pack_of(&blobs());
        let (offset, h) = records[0];
        bytes[offset + 2] ^= 0xff; // reserved field: the header check fails
        let found = salvage(&bytes);
        assert_eq!(found, vec![records[1], records[2]]);
        let known: Vec<(u64, ExpectedRecord)> = records
            .iter()
            .map(|(o, h)| (*o as u64, expected(h)))
            .collect();
        assert_eq!(salvage_known(&bytes, &found, &known), vec![(offset, h)]);
        let r = regions(&bytes, &known);
        assert_eq!(r.len(), 3);
        assert!(r.iter().all(|r| r.intact));
        // Without the catalog, the record is a gap.
        assert_eq!(
            gaps(&bytes, &regions(&bytes, &[])),
            vec![(offset, records[1].0)]
        );
    }

    #[test]
    fn gaps_leave_out_header_footer_and_records() {
        let mut bytes = vec![7u8; 200];
        bytes[200 - FOOTER_BYTES..200 - FOOTER_BYTES + 8].copy_from_slice(FOOTER_MAGIC);
        let r = Region {
            start: 40,
            end: 100,
            id: Id([0; 32]),
            intact: true,
        };
        assert_eq!(
            gaps(&bytes, &[r]),
            vec![(HEADER_BYTES, 40), (100, 200 - FOOTER_BYTES)]
        );
        assert_eq!(gaps(&bytes[..90], &[]), vec![(HEADER_BYTES, 90)]);
    }
}
