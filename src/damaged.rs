//! Purging forgotten data from `damaged/`, what `repair` set aside.
//!
//! `repair` copies every record of a damaged pack that still verifies into a
//! new pack and keeps the damaged file under `damaged/repair-<time>/packs/`.
//! Those files still hold the bytes of every snapshot they served, so
//! `forget` (which promises the forgotten data is gone from disk) rewrites
//! them after its catalog commit. Each damaged pack is cut into records,
//! found by their header check (as `repair` does) or at the offsets an old
//! catalog kept beside them gives, and gaps; then, with the catalog as it
//! is after the forget:
//!
//! - a record whose blob is indexed stays (a snapshot still uses that data;
//!   its indexed copy lives in `packs/`);
//! - a record whose payload verifies but is not indexed is zeroed: `repair`
//!   copied every verifying record, so it was indexed once and gc dropped
//!   it because no snapshot reaches it any more;
//! - a record that does not verify is zeroed if its blob is one this forget
//!   removed, or if no snapshot is marked damaged (then nothing anywhere
//!   lacks data, so those bytes are nobody's only copy);
//! - nonzero bytes in no record (a record whose header is lost and that no
//!   old catalog places): zeroed likewise only if no snapshot is damaged.
//!
//! What is left is reported with its offsets (`forget` then exits 1): it may
//! be data of the forgotten snapshots, or the only trace of what a damaged
//! snapshot lacks, and only the admin can tell. Zeroing keeps every offset,
//! so old catalogs still place the remaining records. A rewrite goes
//! through a temporary file, fsync and rename (`durable::commit_file`): a
//! crash leaves the old file or the new one, and the next forget finishes
//! the job.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::catalog::Catalog;
use crate::durable;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::pack::format::{self, RecordHeader, FOOTER_BYTES, HEADER_BYTES, RECORD_HEADER_BYTES};
use crate::pack::BlobKind;
use crate::repair::{pack_id_of, repair_dirs, verify_known};

/// Bytes of one damaged pack that a purge left in place.
#[derive(Clone, Debug)]
pub struct DamagedLeft {
    pub path: PathBuf,
    /// `[start, end)` byte ranges.
    pub ranges: Vec<(u64, u64)>,
}

impl DamagedLeft {
    pub fn bytes(&self) -> u64 {
        self.ranges.iter().map(|(a, b)| b - a).sum()
    }
}

/// What [`purge`] did.
#[derive(Debug, Default)]
pub struct PurgeReport {
    /// Damaged pack files rewritten with bytes zeroed.
    pub packs_rewritten: u64,
    pub bytes_zeroed: u64,
    /// What may still hold forgotten data.
    pub left: Vec<DamagedLeft>,
}

/// One record of a damaged pack: `[start, end)` covers header and payload.
struct Region {
    start: usize,
    end: usize,
    id: Id,
    intact: bool,
}

/// Every `damaged/repair-*/packs/*.pack`.
fn damaged_packs(damaged: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for d in repair_dirs(damaged)? {
        let packs = d.join("packs");
        let Ok(entries) = fs::read_dir(&packs) else {
            continue;
        };
        for e in entries {
            let p = e.map_err(|e| Error::store_read(&packs, e))?.path();
            if p.extension().is_some_and(|x| x == "pack") && p.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Rewrite the damaged packs under `store_dir/damaged` so that no byte of
/// data the catalog no longer indexes remains, as far as it can be told
/// apart; `dead` are the blobs the caller's gc just removed. Call it after
/// the gc commit, under the writer lock.
pub fn purge(store_dir: &Path, catalog: &Catalog, dead: &HashSet<Id>) -> Result<PurgeReport> {
    let damaged = store_dir.join("damaged");
    let mut report = PurgeReport::default();
    let packs = damaged_packs(&damaged)?;
    if packs.is_empty() {
        return Ok(report);
    }
    let any_damaged = !catalog.damaged_snapshots()?.is_empty();
    // Old catalogs kept beside the damaged packs place records whose header
    // is lost. One that does not open is simply not used.
    let old: Vec<Catalog> = repair_dirs(&damaged)?
        .iter()
        .map(|d| d.join("catalog.sqlite"))
        .filter(|p| p.is_file())
        .filter_map(|p| Catalog::open_immutable(&p).ok())
        .collect();
    for path in packs {
        let bytes = fs::read(&path).map_err(|e| Error::store_read(&path, e))?;
        let mut known = Vec::new();
        if let Some(id) = pack_id_of(&path) {
            for c in &old {
                known.extend(c.blobs_in_pack(&id).unwrap_or_default());
            }
        }
        let regions = regions(&bytes, &known);
        let mut zero: Vec<(usize, usize)> = Vec::new();
        let mut left: Vec<(usize, usize)> = Vec::new();
        for r in &regions {
            if catalog.has_blob(&r.id)? {
                continue;
            }
            if r.intact || dead.contains(&r.id) || !any_damaged {
                zero.push((r.start, r.end));
            } else {
                left.push((r.start, r.end));
            }
        }
        for (a, b) in gaps(&bytes, &regions) {
            if bytes[a..b].iter().all(|&x| x == 0) {
                continue;
            }
            if any_damaged {
                left.push((a, b));
            } else {
                zero.push((a, b));
            }
        }
        zero.retain(|&(a, b)| bytes[a..b].iter().any(|&x| x != 0));
        if !zero.is_empty() {
            let mut new = bytes;
            for &(a, b) in &zero {
                new[a..b].fill(0);
                report.bytes_zeroed += (b - a) as u64;
            }
            rewrite(&path, &new)?;
            crate::failpoint::crash_point("forget.damaged_rewritten");
            report.packs_rewritten += 1;
        }
        if !left.is_empty() {
            left.sort_unstable();
            report.left.push(DamagedLeft {
                path,
                ranges: left.iter().map(|&(a, b)| (a as u64, b as u64)).collect(),
            });
        }
    }
    Ok(report)
}

/// Records of a damaged pack: by header check, then at the offsets `known`
/// gives (id, kind, offset, stored_len, raw_len) where no record was found.
fn regions(bytes: &[u8], known: &[(Id, BlobKind, u64, u32, u32)]) -> Vec<Region> {
    let body_end = body_end(bytes);
    let mut out = Vec::new();
    let mut pos = HEADER_BYTES.min(bytes.len());
    while pos + RECORD_HEADER_BYTES <= body_end {
        // Cheap filter before the header check's hash: kind and compression
        // codes (zeroed bytes, most of a purged file, fail here).
        let plausible = (1..=3).contains(&bytes[pos]) && bytes[pos + 1] <= 1;
        let found = plausible
            .then(|| RecordHeader::decode(&bytes[pos..pos + RECORD_HEADER_BYTES]).ok())
            .flatten()
            .and_then(|h| {
                let p = pos + RECORD_HEADER_BYTES;
                let q = p.checked_add(h.stored_len as usize)?;
                (q <= body_end).then(|| (h, format::decode_payload(&h, &bytes[p..q]).is_ok(), q))
            });
        match found {
            Some((h, intact, q)) => {
                out.push(Region {
                    start: pos,
                    end: q,
                    id: h.id,
                    intact,
                });
                pos = q;
            }
            None => pos += 1,
        }
    }
    for &(id, kind, offset, stored_len, raw_len) in known {
        let Ok(start) = usize::try_from(offset) else {
            continue;
        };
        let end = start + RECORD_HEADER_BYTES + stored_len as usize;
        if end > bytes.len() || out.iter().any(|r| r.start < end && start < r.end) {
            continue;
        }
        let intact = verify_known(bytes, id, kind, offset, stored_len, raw_len).is_some();
        out.push(Region {
            start,
            end,
            id,
            intact,
        });
    }
    out.sort_by_key(|r| r.start);
    out
}

/// Where records may end: before an intact-looking footer, else the end.
fn body_end(bytes: &[u8]) -> usize {
    if bytes.len() >= HEADER_BYTES + FOOTER_BYTES
        && bytes[bytes.len() - FOOTER_BYTES..].starts_with(format::FOOTER_MAGIC)
    {
        bytes.len() - FOOTER_BYTES
    } else {
        bytes.len()
    }
}

/// Byte ranges in no region, leaving out the pack header and a footer
/// (neither holds blob data: magic, version, count, the pack's own id).
fn gaps(bytes: &[u8], regions: &[Region]) -> Vec<(usize, usize)> {
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

/// Replace `path` with `bytes`: temporary file → fsync → rename → fsync.
fn rewrite(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().expect("a pack file name");
    let tmp = path.with_file_name(format!(".{}.purge.tmp", name.to_string_lossy()));
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::store_write(&tmp, e)),
    }
    let w = |e| Error::store_write(&tmp, e);
    let mut file = durable::create_private_file(&tmp).map_err(w)?;
    file.write_all(bytes).map_err(w)?;
    durable::commit_file(&file, &tmp, path).map_err(|e| Error::store_write(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_leave_out_header_footer_and_records() {
        let mut bytes = vec![7u8; 200];
        bytes[200 - FOOTER_BYTES..200 - FOOTER_BYTES + 8].copy_from_slice(format::FOOTER_MAGIC);
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
