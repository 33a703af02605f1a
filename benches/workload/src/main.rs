//! `wsnap-bench`: the workload benchmark of issue #4.
//!
//! Builds a seeded research-platform root, advances it in 5-minute ticks,
//! snapshots it after every tick with wsnap and its peers (the old full-copy
//! rsync script, rsync `--link-dest`, restic, borg) as subprocesses, and
//! records time, CPU, peak RSS, store size, a verified restore and a prune
//! per tool, against the floor (every distinct content ever written).
//! `--scaling` measures the no-change tick at 10 k / 100 k / 1 M files
//! instead. See docs/BENCHMARKS.md.

mod gen;
mod proc;
mod report;
mod rng;
mod scaling;
mod tools;

use clap::Parser;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use tools::{Env, Granularity, Kind, Tool};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "wsnap-bench",
    about = "Workload benchmark: wsnap vs restic, borg and rsync over 5-minute ticks"
)]
pub struct Args {
    /// Ticks after the first snapshot (tick 0).
    #[arg(long, default_value_t = 300)]
    ticks: u64,
    /// Snapshots kept per workspace by the final prune.
    #[arg(long, default_value_t = 288)]
    keep: usize,
    /// Size factor: 1.0 is ~1.1 GB, ~51,000 included files over 30 workspaces, a 200 MiB big file.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Number of `<user>/<project>` workspaces.
    #[arg(long, default_value_t = 30)]
    workspaces: usize,
    /// Size of the big file edited in place, MiB (default 200 × scale).
    #[arg(long)]
    big_mib: Option<f64>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Comma-separated subset of wsnap,old-script,link-dest,restic,borg.
    #[arg(long, default_value = "wsnap,old-script,link-dest,restic,borg")]
    tools: String,
    /// Measure every tool's store size every N ticks.
    #[arg(long, default_value_t = 10)]
    du_every: u64,
    /// The wsnap binary (default: target/release/wsnap of this checkout).
    #[arg(long)]
    wsnap: Option<PathBuf>,
    /// Output folder (default target/wsnap-bench/<UTC timestamp>/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// restic and borg: one backup of the whole root per tick, or one per workspace.
    #[arg(long, default_value = "root", value_parser = ["root", "workspace"])]
    peer_granularity: String,
    /// Keep the generated root and the stores after the run (they are large).
    #[arg(long)]
    keep_data: bool,
    /// Old script: keep every full copy on disk even if the disk looks too small.
    #[arg(long)]
    old_copies_on_disk: bool,
    /// Minimum time between the tick's last write and wsnap's start, ms
    /// (wsnap re-reads files changed < 2 s before its parent run: git's racy rule).
    #[arg(long, default_value_t = 2100)]
    settle_ms: u64,
    /// Instead of the tick workload: no-change snapshot scaling.
    #[arg(long)]
    scaling: bool,
    /// File counts for --scaling.
    #[arg(long, default_value = "10000,100000,1000000", value_delimiter = ',')]
    scaling_files: Vec<u64>,
    /// Largest file count at which --scaling runs restic and borg.
    #[arg(long, default_value_t = 100_000)]
    scaling_peers_max: u64,
    /// Repetitions of each no-change run in --scaling (median reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
}

pub fn log(msg: &str) {
    let (_, _, _, h, m, s) = proc::civil(now_secs());
    eprintln!("[wsnap-bench {h:02}:{m:02}:{s:02}] {msg}");
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn repo_root() -> PathBuf {
    // benches/workload -> the checkout
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("checkout root")
}

fn free_bytes(p: &Path) -> u64 {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: statvfs is plain data filled by the call.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path, s valid memory.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return u64::MAX;
    }
    s.f_bavail as u64 * s.f_frsize as u64
}

fn main() {
    let args = Args::parse();
    let repo = repo_root();
    let out = args.out.clone().unwrap_or_else(|| {
        let (y, mo, d, h, mi, s) = proc::civil(now_secs());
        repo.join(format!(
            "target/wsnap-bench/{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}"
        ))
    });
    std::fs::create_dir_all(&out).expect("create output folder");
    let out = out.canonicalize().expect("output folder");
    let wsnap_src = args
        .wsnap
        .clone()
        .unwrap_or_else(|| repo.join("target/release/wsnap"));
    // a private copy: others may rebuild target/release/wsnap while we run
    let wsnap = out.join("wsnap");
    if std::fs::copy(&wsnap_src, &wsnap).is_err() {
        eprintln!(
            "wsnap-bench: no wsnap binary at {}: build it with `cargo build --release` at the checkout root or pass --wsnap PATH",
            wsnap_src.display()
        );
        std::process::exit(2);
    }
    if args.scaling {
        scaling::run_scaling(&args, &out, &wsnap);
        return;
    }
    let code = tick_run(&args, &out, &wsnap, &repo);
    std::process::exit(code);
}

fn tick_run(args: &Args, out: &Path, wsnap: &Path, repo: &Path) -> i32 {
    let started = Instant::now();
    // The checkout's commit now, when the binary under test was copied:
    // commits made during a long run must not relabel it.
    let wsnap_rev = git_rev(repo);
    let mut kinds = Vec::new();
    for t in args
        .tools
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match Kind::parse(t) {
            Some(k) => kinds.push(k),
            None => {
                eprintln!("wsnap-bench: unknown tool {t:?} in --tools (use wsnap,old-script,link-dest,restic,borg)");
                return 2;
            }
        }
    }
    if args.keep == 0 || args.workspaces < 4 || args.scale <= 0.0 {
        eprintln!("wsnap-bench: --keep must be ≥ 1, --workspaces ≥ 4 (one fork pair), --scale > 0");
        return 2;
    }
    let root = out.join("root");
    let stores = out.join("stores");
    let logs = out.join("logs");
    let verify = out.join("verify");
    for d in [&root, &stores, &verify, &out.join("cache")] {
        let _ = std::fs::remove_dir_all(d);
    }
    std::fs::create_dir_all(&logs).expect("logs dir");
    std::fs::create_dir_all(&verify).expect("verify dir");
    std::fs::create_dir_all(&stores).expect("stores dir");

    let mut notes: Vec<String> = Vec::new();
    let mut tools: Vec<Tool> = Vec::new();
    for k in kinds {
        match tools::version(k, wsnap) {
            Some(v) => tools.push(Tool::new(k, stores.join(k.name()), v, args.workspaces)),
            None => {
                let n = format!("{} skipped: not installed", k.name());
                log(&n);
                notes.push(n);
            }
        }
    }

    let opts = gen::Options {
        seed: args.seed,
        scale: args.scale,
        workspaces: args.workspaces,
        big_mib: args.big_mib.unwrap_or(200.0 * args.scale),
    };
    log(&format!(
        "generating the root: seed {} scale {} workspaces {}",
        opts.seed, opts.scale, opts.workspaces
    ));
    let t0 = Instant::now();
    let mut w = gen::Workload::init(&root, opts);
    let (files0, bytes0) = w.included();
    let gen_s = t0.elapsed().as_secs_f64();
    log(&format!(
        "root: {files0} files / {bytes0} bytes included, {} files / {} bytes excluded, generated in {gen_s:.1} s",
        w.excluded_files, w.excluded_bytes
    ));

    let env = Env {
        root: root.clone(),
        logs: logs.clone(),
        cache: out.join("cache"),
        wsnap: wsnap.to_path_buf(),
        granularity: if args.peer_granularity == "workspace" {
            Granularity::Workspace
        } else {
            Granularity::Root
        },
        keep: args.keep,
        base_time: 1_772_409_600, // 2026-03-02T00:00:00Z
        ws: w.ws.iter().map(gen::Ws::name).collect(),
    };
    let mid = args.ticks / 2;
    // The verified workspace: the busiest, which holds the big file.
    let vws = 0usize;

    // The old script's full copies: keep on disk only what prune and restore
    // need if all of them would not fit.
    let need = bytes0 as f64 * 1.1 * (args.ticks + 1) as f64;
    let free = free_bytes(out) as f64;
    if !args.old_copies_on_disk && need > 0.4 * free {
        let prunable = (args.ticks + 1).saturating_sub(args.keep as u64);
        let budget = ((0.3 * free) / (bytes0 as f64 * 1.1)) as u64;
        let oldest_real = prunable.min(budget.saturating_sub(3));
        let n = format!(
            "old-script: {} copies of {} bytes would need {:.1} GB ({:.1} GB free): only the oldest {oldest_real} (of {prunable} pruned), the mid tick and the newest are kept on disk; the others are deleted after their size is recorded, and the store size is the sum over all copies (full copies share nothing)",
            args.ticks + 1,
            bytes0,
            need / 1e9,
            free / 1e9
        );
        log(&n);
        notes.push(n);
        for t in tools.iter_mut().filter(|t| t.kind == Kind::OldScript) {
            t.keep_on_disk = Some(Box::new(move |tick| tick < oldest_real || tick == mid));
        }
    }

    for t in &mut tools {
        if let Err(e) = t.init(&env) {
            notes.push(format!("{}: {e}", t.name()));
        }
    }

    let mut floor_series = vec![(0u64, w.floor.clone())];
    let mut tick_log = Vec::new();
    let mut mut_end = Instant::now();
    let settle = Duration::from_millis(args.settle_ms);
    let n = tools.len();
    for t in 0..=args.ticks {
        if t > 0 {
            let s = w.tick(t);
            mut_end = Instant::now();
            tick_log.push(s);
        }
        if t == mid {
            let st = std::process::Command::new("cp")
                .arg("-a")
                .arg(root.join(&env.ws[vws]))
                .arg(verify.join("mid-copy"))
                .status();
            if !st.map(|s| s.success()).unwrap_or(false) {
                notes.push("cp -a of the mid-tick workspace failed".into());
            }
        }
        let mut line = format!("tick {t}/{}", args.ticks);
        for i in 0..n {
            let ti = (i + t as usize) % n;
            if tools[ti].kind == Kind::Wsnap {
                let since = mut_end.elapsed();
                if since < settle {
                    std::thread::sleep(settle - since);
                }
            }
            // untimed: flush the previous tool's dirty pages on nobody's clock
            // SAFETY: sync has no arguments and cannot fail.
            unsafe { libc::sync() };
            let u = tools[ti].snapshot(&env, t);
            line.push_str(&format!(" {}={:.2}s", tools[ti].name(), u.wall_s));
            if u.failures > 0 {
                line.push_str("(FAILED)");
            }
            if t == 0 {
                tools[ti].first = u;
            } else {
                tools[ti].ticks.push(tools::TickRec { tick: t, usage: u });
            }
        }
        if t % args.du_every.max(1) == 0 || t == args.ticks || t == args.keep as u64 {
            for tool in &mut tools {
                let d = tool.store_du();
                tool.du.push((t, d));
            }
            floor_series.push((t, w.floor.clone()));
            line.push_str(" | sizes");
            for tool in &tools {
                line.push_str(&format!(
                    " {}={:.1}MB",
                    tool.name(),
                    tool.du.last().map_or(0, |d| d.1.allocated) as f64 / 1e6
                ));
            }
        }
        if t % 10 == 0 || t == args.ticks || args.ticks <= 30 {
            line.push_str(&format!(
                " | {:.0}s elapsed",
                started.elapsed().as_secs_f64()
            ));
            log(&line);
        }
    }
    let (files1, bytes1) = w.included();
    log(&format!(
        "after {} ticks: {files1} files / {bytes1} bytes included",
        args.ticks
    ));

    // Restore the verified workspace as it was at the mid tick, per tool.
    for tool in &mut tools {
        let dest = verify.join(format!("restore-{}", tool.name()));
        // SAFETY: as above.
        unsafe { libc::sync() };
        let (u, got) = tool.restore(&env, mid, vws, &dest);
        let cmp = if u.failures > 0 {
            Err("restore failed".to_string())
        } else {
            proc::compare_trees(&verify.join("mid-copy"), &got)
        };
        log(&format!(
            "{} restore of {} at tick {mid}: {:.2} s, {}",
            tool.name(),
            env.ws[vws],
            u.wall_s,
            match &cmp {
                Ok((f, b)) => format!("verified ({f} files, {b} bytes)"),
                Err(e) => format!("NOT verified: {e}"),
            }
        ));
        tool.restore = Some((u, cmp));
        let _ = std::fs::remove_dir_all(&dest);
    }

    // Prune to the newest `keep` per workspace.
    for tool in &mut tools {
        // SAFETY: as above.
        unsafe { libc::sync() };
        tool.prune(&env);
        let d = tool.store_du();
        tool.du_after_prune = Some(d);
        tool.snapshots_after_prune = tool.count_snapshots(&env);
        let s: f64 = tool.prune.iter().map(|p| p.1.wall_s).sum();
        log(&format!(
            "{} prune: {s:.2} s, store now {} bytes",
            tool.name(),
            d.allocated
        ));
    }

    let meta = report::Meta {
        args: args.clone(),
        files0,
        bytes0,
        files1,
        bytes1,
        excluded_files: w.excluded_files,
        excluded_bytes: w.excluded_bytes,
        gen_s,
        total_s: started.elapsed().as_secs_f64(),
        verify_ws: env.ws[vws].clone(),
        mid,
        notes,
        wsnap_rev,
    };
    report::write(out, &meta, &tools, &w.floor, &floor_series, &tick_log);
    if !args.keep_data {
        for d in [&root, &stores, &verify, &out.join("cache")] {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    log(&format!(
        "done in {:.0} s: {}",
        started.elapsed().as_secs_f64(),
        out.join("results.md").display()
    ));
    i32::from(
        tools
            .iter()
            .any(|t| t.restore.as_ref().is_some_and(|r| r.1.is_err())),
    )
}

fn git_rev(repo: &Path) -> String {
    std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
