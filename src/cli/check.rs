//! `check [--read-data]`: verify the store; findings as lines or `--json`.

use std::io::{self, Write};
use std::path::Path;

use wsnap::check::{self, Recorded};
use wsnap::escape;
use wsnap::{Result, Store};

use super::output::{self, exit, size};
use super::progress;

/// `check [--read-data]`.
pub fn run(store_dir: &Path, read_data: bool, json: bool) -> Result<u8> {
    let store = Store::open(store_dir)?;
    let r = progress::run("check", "packs", |p| {
        check::check_with_progress(&store, read_data, p)
    })?;
    let code = exit::ok_or_partial(r.findings.is_empty());
    if json {
        return Ok(output::emit(
            code,
            serde_json::json!({
                "packs": r.packs,
                "blobs": r.blobs,
                "snapshots": r.snapshots,
                "read_bytes": r.bytes_read,
                "findings": r.findings.iter().map(|f| serde_json::json!({"problem": f.problem, "affects": f.affects})).collect::<Vec<_>>(),
                "orphan_packs": r.orphan_packs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "recorded": match &r.recorded {
                    None => serde_json::Value::Null,
                    Some(Recorded::Done { blobs_unindexed, snapshots_marked }) => serde_json::json!({
                        "blobs_unindexed": blobs_unindexed,
                        "snapshots_marked_damaged": snapshots_marked,
                    }),
                    Some(Recorded::NotRecorded(e)) => serde_json::json!({"error": output::error_json(e)}),
                },
            }),
        ));
    }
    let mut out = io::stdout().lock();
    for f in &r.findings {
        let _ = writeln!(out, "damaged: {}", f.problem);
        for a in &f.affects {
            let _ = writeln!(out, "  breaks {a}");
        }
    }
    for o in &r.orphan_packs {
        let _ = writeln!(
            out,
            "note: pack file unknown to the catalog (removed by the next prune): {}",
            escape::path(o)
        );
    }
    match &r.recorded {
        None => {}
        Some(Recorded::Done {
            blobs_unindexed,
            snapshots_marked,
        }) => {
            let _ = writeln!(
                out,
                "recorded: {blobs_unindexed} damaged blobs left the index and {snapshots_marked} snapshots are marked damaged; \
                 the next snapshot reads the files that held them again and stores them (while the files exist)"
            );
        }
        Some(Recorded::NotRecorded(e)) => {
            let _ = writeln!(
                out,
                "not recorded ({}): later snapshots may still reuse the damaged data; run check again",
                output::message(e)
            );
        }
    }
    let _ = writeln!(
        out,
        "check: {} packs, {} blobs, {} snapshots{}: {}",
        r.packs,
        r.blobs,
        r.snapshots,
        if read_data {
            format!(", {} read and verified", size(r.bytes_read))
        } else {
            String::new()
        },
        if r.findings.is_empty() {
            "no problems found".to_string()
        } else {
            format!("{} problems found", r.findings.len())
        }
    );
    Ok(code)
}
