//! `check --remote`: does the remote hold everything its newest pointer
//! promises? Every object the pointer and its catalog image name must be
//! listed, with the size its plaintext implies. With `read_data`, packs
//! (all, or a random subset) and journals are downloaded and opened
//! (authenticated), each pack's id and every record verified, and each
//! blob the image indexes found at its offset with its id, kind and
//! lengths.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::catalog::Catalog;
use crate::error::Result;
use crate::id::PackId;
use crate::pack::{self, ExpectedRecord};
use crate::progress::Progress;

use super::object::SEGMENT_BYTES;
use super::pointer::{DATA_DIR, IMAGE_DIR, JOURNAL_DIR};
use super::{parallel, Remote};

/// What `check --remote` found.
#[derive(Debug, Default)]
pub struct RemoteCheckReport {
    pub pushed_ns: i64,
    pub snapshots: u64,
    /// Objects the pointer and image reference (packs, journals, image).
    pub objects: u64,
    pub packs_read: u64,
    pub bytes_read: u64,
    pub journals_read: u64,
    pub problems: Vec<String>,
}

/// The sealed size of a plaintext of `len` bytes.
fn sealed_len(len: u64) -> u64 {
    super::object::sealed_len(len, SEGMENT_BYTES)
}

/// Check `remote`; `read_data` reads `subset_percent` % of the packs
/// (chosen at random; 100: all) and every journal.
pub fn check(
    remote: &Remote,
    tmp_dir: &std::path::Path,
    read_data: bool,
    subset_percent: f64,
    progress: &Progress,
) -> Result<RemoteCheckReport> {
    let pointer = remote.require_pointer()?;
    let mut report = RemoteCheckReport {
        pushed_ns: pointer.pushed_ns,
        snapshots: pointer.snapshots,
        ..Default::default()
    };
    let img = super::fetch::fetch_image(remote, &pointer, tmp_dir)?;
    let r = (|| {
        let image = Catalog::open_immutable(&img)?;
        let packs = image.all_packs()?;
        let mut listed: HashMap<String, u64> = HashMap::new();
        for d in [DATA_DIR, IMAGE_DIR, JOURNAL_DIR] {
            listed.extend(remote.list(d)?);
        }
        report.objects = packs.len() as u64
            + pointer.journals.len() as u64
            + 1
            + u64::from(pointer.delta.is_some());
        let mut expect = |object: &str, plain: Option<u64>| match listed.get(object) {
            None => report.problems.push(format!("missing object {object}")),
            Some(&n) => {
                if let Some(p) = plain {
                    if n != sealed_len(p) {
                        report.problems.push(format!(
                            "object {object} has {n} bytes, expected {} for its {p} bytes of plaintext",
                            sealed_len(p)
                        ));
                    }
                }
            }
        };
        expect(&pointer.image.object, None);
        if let Some(d) = &pointer.delta {
            expect(&d.object, None);
        }
        for j in &pointer.journals {
            expect(&j.object, Some(j.bytes));
        }
        for (id, size) in &packs {
            expect(&remote.pack_object(id), Some(*size));
        }
        if !read_data {
            return Ok(());
        }
        for j in &pointer.journals {
            let mut buf = Vec::new();
            match remote.download(&j.object, &mut buf) {
                Ok(_) => {
                    let d = crate::journal::decode(&buf);
                    if let Some(p) = d.damage {
                        report
                            .problems
                            .push(format!("journal {} ({}): {p}", j.file, j.object));
                    }
                    report.journals_read += 1;
                }
                Err(e) => report.problems.push(e.to_string()),
            }
        }
        let chosen = choose(&packs, subset_percent);
        progress.expect(chosen.len() as u64, chosen.iter().map(|p| p.1).sum());
        let problems = Mutex::new(Vec::new());
        let read = Mutex::new((0u64, 0u64));
        let image = Mutex::new(image);
        // Two at a time: each pack is held whole in memory to verify it.
        parallel(&chosen, 2, |(id, _)| {
            let object = remote.pack_object(id);
            let mut bytes = Vec::new();
            if let Err(e) = remote.download(&object, &mut bytes) {
                problems.lock().expect("poisoned").push(e.to_string());
                return Ok(());
            }
            let n = bytes.len() as u64;
            let found = verify(&bytes, id, &image.lock().expect("poisoned"));
            if let Err(p) = found {
                problems
                    .lock()
                    .expect("poisoned")
                    .push(format!("pack {id} ({object}): {p}"));
            }
            let mut r = read.lock().expect("poisoned");
            r.0 += 1;
            r.1 += n;
            progress.add(1, n);
            Ok(())
        })?;
        report
            .problems
            .extend(problems.into_inner().expect("poisoned"));
        (report.packs_read, report.bytes_read) = read.into_inner().expect("poisoned");
        Ok(())
    })();
    let _ = std::fs::remove_file(&img);
    r.map(|()| report)
}

/// A whole pack against the image's index.
fn verify(bytes: &[u8], id: &PackId, image: &Catalog) -> std::result::Result<(), String> {
    let (pid, records) = pack::verify_pack(bytes).map_err(|e| e.detail())?;
    if pid != *id {
        return Err(format!("holds pack {pid}"));
    }
    let at: HashMap<u64, pack::RecordHeader> = records.into_iter().collect();
    for row in image.blobs_in_pack(id).map_err(|e| e.detail())? {
        let (offset, expected): (u64, ExpectedRecord) = ExpectedRecord::located(row);
        match at.get(&offset) {
            Some(h) if h.agrees_with(&expected) => {}
            _ => return Err(format!("blob {} is not at offset {offset}", expected.id)),
        }
    }
    Ok(())
}

/// `percent` % of `packs` (at least one when there are any), at random.
fn choose(packs: &[(PackId, u64)], percent: f64) -> Vec<(PackId, u64)> {
    if percent >= 100.0 {
        return packs.to_vec();
    }
    let want =
        ((packs.len() as f64 * percent / 100.0).ceil() as usize).clamp(1, packs.len().max(1));
    let mut v = packs.to_vec();
    // Fisher–Yates with OS randomness.
    for i in (1..v.len()).rev() {
        let r = u64::from_le_bytes(super::crypto::random::<8>());
        v.swap(i, (r % (i as u64 + 1)) as usize);
    }
    v.truncate(want);
    v
}
