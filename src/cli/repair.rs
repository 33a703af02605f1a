//! `repair`: rebuild the catalog from the packs and journals; what was
//! saved, damaged and lost, as lines or `--json`.

use std::io::{self, Write};
use std::path::Path;

use wsnap::escape;
use wsnap::repair::{self, KEPT_CATALOG_COPIES};
use wsnap::{timespec, Result};

use super::flags;
use super::output::{self, exit};

/// `repair [--force]`.
pub fn run(store_dir: &Path, lock_wait: &str, force: bool, json: bool) -> Result<u8> {
    let r = repair::repair(store_dir, flags::parse_duration(lock_wait)?, force)?;
    let damaged = r.snapshots.iter().filter(|s| s.damaged).count();
    // Anything damaged or lost, listed below: exit 1.
    let code = exit::ok_or_partial(
        r.lost.is_empty()
            && damaged == 0
            && r.damaged_packs.is_empty()
            && r.journal_problems.is_empty(),
    );
    if json {
        return Ok(output::emit(
            code,
            serde_json::json!({
                "packs": r.packs,
                "blobs": r.blobs,
                "missing_refs": r.missing_refs,
                "damaged_packs": r.damaged_packs.iter().map(|d| serde_json::json!({
                    "path": d.path.display().to_string(),
                    "problem": d.problem,
                    "records_saved": d.records_saved,
                    "moved_to": d.moved_to.display().to_string(),
                })).collect::<Vec<_>>(),
                "snapshots": r.snapshots.iter().map(output::snapshot_json).collect::<Vec<_>>(),
                "lost": r.lost.iter().map(output::snapshot_json).collect::<Vec<_>>(),
                "journal_problems": r.journal_problems,
                "moved_aside": r.moved_aside.as_ref().map(|p| p.display().to_string()),
                "params_from": r.params_from,
                "salvaged_by_old_catalog": r.salvaged_by_old_catalog,
                "old_catalogs_removed": r.old_catalogs_removed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            }),
        ));
    }
    let mut out = io::stdout().lock();
    for d in &r.damaged_packs {
        let _ = writeln!(
            out,
            "damaged pack {}: {}; {} intact records copied to a new pack; file moved to {}",
            escape::path(&d.path),
            d.problem,
            d.records_saved,
            escape::path(&d.moved_to)
        );
    }
    for p in &r.journal_problems {
        let _ = writeln!(out, "problem: {p}");
    }
    for s in r.snapshots.iter().filter(|s| s.damaged) {
        let _ = writeln!(
            out,
            "DAMAGED snapshot {} of {} at {}: some of its data is in no pack; restore recovers the rest",
            s.id.0.short(),
            s.workspace,
            timespec::format_local(s.time_ns)
        );
    }
    for s in &r.lost {
        let _ = writeln!(
            out,
            "LOST snapshot {} of {} at {}: its root tree is in no pack (its journal record is kept under damaged/)",
            s.id.0.short(),
            s.workspace,
            timespec::format_local(s.time_ns)
        );
    }
    if let Some(p) = &r.moved_aside {
        let _ = writeln!(
            out,
            "old catalog, journals and damaged files kept in {}",
            escape::path(p)
        );
    }
    if r.salvaged_by_old_catalog > 0 {
        let _ = writeln!(
            out,
            "{} records with a damaged header saved at the offsets the old catalog gave",
            r.salvaged_by_old_catalog
        );
    }
    for p in &r.old_catalogs_removed {
        let _ = writeln!(
            out,
            "removed old catalog copy {} (the newest {} are kept)",
            escape::path(p),
            KEPT_CATALOG_COPIES
        );
    }
    let _ = writeln!(
        out,
        "repair: {} packs, {} blobs indexed; {} snapshots recovered ({} damaged), {} lost; parameters from {}",
        r.packs,
        r.blobs,
        r.snapshots.len(),
        damaged,
        r.lost.len(),
        r.params_from
    );
    Ok(code)
}
