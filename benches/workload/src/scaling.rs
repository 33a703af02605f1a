//! `--scaling`: the no-change tick at 10 k, 100 k and 1 M files. wsnap's
//! no-change snapshot against a bare stat walk (`find -printf`) and, up to
//! `--scaling-peers-max` files, restic's and borg's no-change backups of the
//! same tree. Warm page cache; the median of `--reps` runs.

use crate::proc::{run, Usage};
use crate::report::stats;
use crate::rng::Rng;
use crate::{log, Args};
use serde_json::json;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn build(root: &Path, files: u64, seed: u64) {
    let mut r = Rng::new(seed, &["scaling", &files.to_string()]);
    let per_dir = 100;
    let dirs = files.div_ceil(per_dir);
    let mut left = files;
    let mut buf = vec![0u8; 4096];
    for d in 0..dirs {
        let dir = root.join(format!("user{:02}/project/d{:05}", d % 10, d / 10));
        fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..per_dir.min(left) {
            let len = r.range(200, 1200);
            for b in buf[..len].iter_mut() {
                *b = b'a' + (r.below(26) as u8);
            }
            fs::write(dir.join(format!("f{f:03}.txt")), &buf[..len]).expect("write");
        }
        left -= per_dir.min(left);
    }
}

fn peer(prog: &str, cache: &Path) -> Command {
    let mut c = Command::new(prog);
    c.env("RESTIC_PASSWORD", "wsnap-bench")
        .env("RESTIC_CACHE_DIR", cache.join("restic"))
        .env("BORG_BASE_DIR", cache.join("borg"))
        .env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes");
    c
}

fn have(prog: &str, arg: &str) -> bool {
    Command::new(prog)
        .arg(arg)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

pub fn run_scaling(args: &Args, out: &Path, wsnap: &Path) {
    let logs = out.join("logs");
    fs::create_dir_all(&logs).expect("logs");
    let err = logs.join("scaling.err");
    let null = Path::new("/dev/null");
    let mut results = Vec::new();
    let mut notes = Vec::new();
    let (has_restic, has_borg) = (have("restic", "version"), have("borg", "--version"));
    for &files in &args.scaling_files {
        let base = out.join(format!("scaling-{files}"));
        let _ = fs::remove_dir_all(&base);
        let root = base.join("root");
        let t0 = Instant::now();
        build(&root, files, args.seed);
        log(&format!(
            "{files} files built in {:.1} s",
            t0.elapsed().as_secs_f64()
        ));
        // wsnap reuses a file without reading it only if it is > 2 s older than the parent run
        std::thread::sleep(Duration::from_millis(args.settle_ms));
        let mut walk = Command::new("find");
        walk.arg(&root).args(["-printf", "%s %T@ %C@ %i\\n"]);
        let _ = run(&mut walk, null, &err); // warm the cache
        let mut row = serde_json::Map::new();
        row.insert("files".into(), json!(files));
        let mut measure =
            |name: &str,
             mk: &mut dyn FnMut() -> Command,
             first: bool,
             row: &mut serde_json::Map<String, serde_json::Value>| {
                if first {
                    let (u, e) = run(&mut mk(), &logs.join(format!("{name}.first.out")), &err);
                    if let Some(e) = e {
                        notes.push(format!("{name} first run at {files} files failed: {e}"));
                    }
                    row.insert(format!("{name}_first_s"), json!(u.wall_s));
                    log(&format!("{files} files: {name} first {:.2} s", u.wall_s));
                }
                let mut us: Vec<Usage> = Vec::new();
                for _ in 0..args.reps.max(1) {
                    // SAFETY: sync has no arguments.
                    unsafe { libc::sync() };
                    let (u, e) = run(&mut mk(), &logs.join(format!("{name}.out")), &err);
                    if let Some(e) = e {
                        notes.push(format!("{name} at {files} files failed: {e}"));
                    }
                    us.push(u);
                }
                let (wall, _, _) = stats(&us.iter().map(|u| u.wall_s).collect::<Vec<_>>());
                let (cpu, _, _) = stats(&us.iter().map(|u| u.cpu_s).collect::<Vec<_>>());
                let rss = us.iter().map(|u| u.maxrss_kb).max().unwrap_or(0);
                log(&format!("{files} files: {name} no-change {wall:.3} s wall, {cpu:.3} s CPU = {:.0} files/s", files as f64 / wall));
                row.insert(name.into(), json!({"wall_s": wall, "cpu_s": cpu, "files_per_s": files as f64 / wall, "maxrss_kb": rss,
                "runs": us.iter().map(|u| u.wall_s).collect::<Vec<_>>()}));
            };
        measure(
            "find",
            &mut || {
                let mut c = Command::new("find");
                c.arg(&root).args(["-printf", "%s %T@ %C@ %i\\n"]);
                c
            },
            false,
            &mut row,
        );
        let store = base.join("wsnap-store");
        measure(
            "wsnap",
            &mut || {
                let mut c = Command::new(wsnap);
                c.arg("--store")
                    .arg(&store)
                    .args(["snapshot", "--root"])
                    .arg(&root);
                c
            },
            true,
            &mut row,
        );
        if files <= args.scaling_peers_max {
            let cache = base.join("cache");
            if has_restic {
                let repo = base.join("restic");
                let mut c = peer("restic", &cache);
                c.arg("-r")
                    .arg(&repo)
                    .args(["init", "--repository-version", "2"]);
                let _ = run(&mut c, &logs.join("restic.init.out"), &err);
                measure(
                    "restic",
                    &mut || {
                        let mut c = peer("restic", &cache);
                        c.arg("-r")
                            .arg(&repo)
                            .args(["backup", "--compression", "auto", "--host", "bench"])
                            .arg(&root);
                        c
                    },
                    true,
                    &mut row,
                );
            }
            if has_borg {
                let repo = base.join("borg");
                let mut c = peer("borg", &cache);
                c.args(["init", "-e", "none"]).arg(&repo);
                let _ = run(&mut c, &logs.join("borg.init.out"), &err);
                let mut k = 0;
                measure(
                    "borg",
                    &mut || {
                        k += 1;
                        let mut c = peer("borg", &cache);
                        c.current_dir(&root)
                            .args(["create", "-C", "zstd,3"])
                            .arg(format!("{}::a{k}", repo.display()))
                            .arg(".");
                        c
                    },
                    true,
                    &mut row,
                );
            }
        } else {
            notes.push(format!(
                "restic and borg not run at {files} files (> --scaling-peers-max {})",
                args.scaling_peers_max
            ));
        }
        results.push(serde_json::Value::Object(row));
        if !args.keep_data {
            let _ = fs::remove_dir_all(&base);
        }
    }
    let mut md = String::from("| files | wsnap no-change s | wsnap files/s | wsnap CPU s | `find -printf` s | wsnap / find | restic no-change s | borg no-change s | wsnap first s | wsnap RSS MiB |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in &results {
        let g = |k: &str, f: &str| r[k][f].as_f64();
        let fmt = |x: Option<f64>| x.map_or("–".into(), |v| format!("{v:.3}"));
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {} | {} | {:.2} | {} | {} | {} | {:.1} |",
            r["files"],
            fmt(g("wsnap", "wall_s")),
            g("wsnap", "files_per_s").unwrap_or(f64::NAN),
            fmt(g("wsnap", "cpu_s")),
            fmt(g("find", "wall_s")),
            g("wsnap", "wall_s").unwrap_or(f64::NAN) / g("find", "wall_s").unwrap_or(f64::NAN),
            fmt(g("restic", "wall_s")),
            fmt(g("borg", "wall_s")),
            fmt(r["wsnap_first_s"].as_f64()),
            r["wsnap"]["maxrss_kb"].as_f64().unwrap_or(0.0) / 1024.0,
        );
    }
    for n in &notes {
        let _ = writeln!(md, "\n- {n}");
    }
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let _ = writeln!(md, "\nLoad average at the end: {}", load.trim());
    fs::write(out.join("scaling.md"), &md).expect("write scaling.md");
    fs::write(
        out.join("scaling.json"),
        serde_json::to_vec_pretty(&json!({"results": results, "notes": notes, "reps": args.reps}))
            .expect("json"),
    )
    .expect("write scaling.json");
    println!("{md}");
    log(&format!("wrote {}", out.join("scaling.md").display()));
}
