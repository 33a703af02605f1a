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
use crate::layout;
use crate::pack::salvage::{gaps, regions};
use crate::pack::ExpectedRecord;

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

/// Rewrite the damaged packs under `store_dir/damaged` so that no byte of
/// data the catalog no longer indexes remains, as far as it can be told
/// apart; `dead` are the blobs the caller's gc just removed. Call it after
/// the gc commit, under the writer lock.
pub fn purge(store_dir: &Path, catalog: &Catalog, dead: &HashSet<Id>) -> Result<PurgeReport> {
    let damaged = layout::damaged_dir(store_dir);
    let mut report = PurgeReport::default();
    let packs = layout::damaged_packs(store_dir)?;
    if packs.is_empty() {
        return Ok(report);
    }
    let any_damaged = !catalog.damaged_snapshots()?.is_empty();
    // Old catalogs kept beside the damaged packs place records whose header
    // is lost. One that does not open is simply not used.
    let old: Vec<Catalog> = layout::repair_dirs(&damaged)?
        .iter()
        .map(|d| layout::catalog_path(d))
        .filter(|p| p.is_file())
        .filter_map(|p| Catalog::open_immutable(&p).ok())
        .collect();
    for path in packs {
        let bytes = fs::read(&path).map_err(|e| Error::store_read(&path, e))?;
        let mut known = Vec::new();
        if let Some(id) = layout::pack_id_of(&path) {
            for c in &old {
                let blobs = c.blobs_in_pack(&id).unwrap_or_default();
                known.extend(blobs.into_iter().map(ExpectedRecord::located));
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
