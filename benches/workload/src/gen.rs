//! The workload: a seeded research-platform root (`<user>/<project>/`) and
//! its tick-by-tick edits, plus the floor (every distinct file content ever
//! written, after excludes, raw and zstd-3 compressed).
//!
//! Everything is a function of (seed, scale, workspaces, tick): the same
//! arguments write the same bytes. Only what changes in a tick is rewritten.

use crate::rng::Rng;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const USERS: &[&str] = &[
    "alice", "bob", "carol", "dmitri", "eunji", "fatima", "gustavo", "hana", "ivan", "jun", "kofi",
    "lena", "mateo", "nadia", "olga", "priya",
];
const PROJECTS: &[&str] = &[
    "eeg-decoding",
    "climate-ensemble",
    "protein-fold",
    "lidar-slam",
    "genome-assembly",
    "llm-finetune",
    "fluid-sim",
    "survey-nlp",
    "mri-segmentation",
    "quantum-chem",
    "traffic-forecast",
    "bird-song",
];
const WORDS: &[&str] = &[
    "the",
    "model",
    "data",
    "loss",
    "we",
    "observe",
    "that",
    "signal",
    "noise",
    "baseline",
    "training",
    "epoch",
    "subject",
    "trial",
    "result",
    "figure",
    "table",
    "shows",
    "mean",
    "variance",
    "significant",
    "increase",
    "decrease",
    "under",
    "condition",
    "control",
    "sample",
    "batch",
    "layer",
    "attention",
    "gradient",
    "sensor",
    "region",
    "cluster",
    "temperature",
    "pressure",
    "sequence",
    "alignment",
    "protein",
    "residue",
    "energy",
    "spectrum",
    "frequency",
    "band",
    "power",
    "analysis",
    "method",
    "approach",
    "is",
    "are",
    "with",
    "for",
    "and",
    "of",
    "in",
    "on",
    "to",
    "a",
    "by",
    "from",
];
const IDENT: &[&str] = &[
    "x", "y", "df", "model", "loss", "batch", "cfg", "params", "data", "out", "result", "idx",
    "mask", "signal", "weights", "grad", "lr", "epoch", "subject", "trial", "spec", "freq",
    "window", "score",
];

/// Where the floor is: distinct contents, and the bytes users really wrote.
#[derive(Default, Clone, Debug)]
pub struct Floor {
    seen: HashSet<[u8; 32]>,
    /// Distinct file contents ever seen (after excludes).
    pub contents: u64,
    pub raw: u64,
    pub zstd: u64,
    /// Like `raw`/`zstd`, but an append or an in-place edit of a known file
    /// counts only the bytes written (what a perfect delta store would keep).
    pub delta_raw: u64,
    pub delta_zstd: u64,
}

fn zstd_len(data: &[u8]) -> u64 {
    zstd::bulk::compress(data, 3)
        .map(|v| v.len() as u64)
        .unwrap_or(data.len() as u64)
}

struct Counter(u64);
impl Write for Counter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Floor {
    /// Records a file content; `delta` is what was written if it was an
    /// append or in-place edit of an existing file.
    pub fn add(&mut self, content: &[u8], delta: Option<&[u8]>) {
        if !self.seen.insert(*blake3::hash(content).as_bytes()) {
            return;
        }
        self.contents += 1;
        self.raw += content.len() as u64;
        let z = zstd_len(content);
        self.zstd += z;
        match delta {
            Some(d) => {
                self.delta_raw += d.len() as u64;
                self.delta_zstd += zstd_len(d);
            }
            None => {
                self.delta_raw += content.len() as u64;
                self.delta_zstd += z;
            }
        }
    }

    /// Like [`Floor::add`] for a file too big to hold: read from disk.
    pub fn add_path(&mut self, path: &Path, delta: Option<&[u8]>) {
        let mut h = blake3::Hasher::new();
        let mut f = File::open(path).expect("open for floor");
        let mut buf = vec![0u8; 1 << 20];
        let mut len = 0u64;
        loop {
            let n = f.read(&mut buf).expect("read for floor");
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            len += n as u64;
        }
        if !self.seen.insert(*h.finalize().as_bytes()) {
            return;
        }
        let mut c = Counter(0);
        zstd::stream::copy_encode(File::open(path).expect("open"), &mut c, 3).expect("zstd");
        self.contents += 1;
        self.raw += len;
        self.zstd += c.0;
        match delta {
            Some(d) => {
                self.delta_raw += d.len() as u64;
                self.delta_zstd += zstd_len(d);
            }
            None => {
                self.delta_raw += len;
                self.delta_zstd += c.0;
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Text,
    Csv,
    Notebook,
    Npy,
    Figure,
    Log,
    Sqlite,
    Big,
}

#[derive(Clone, Debug)]
struct FileRec {
    rel: Vec<u8>,
    kind: Kind,
}

/// One `<user>/<project>` workspace and the files the workload knows in it.
pub struct Ws {
    pub user: String,
    pub project: String,
    files: Vec<FileRec>,
    next_run: u32,
    weight: f64,
}

impl Ws {
    pub fn name(&self) -> String {
        format!("{}/{}", self.user, self.project)
    }
}

/// Workload size knobs.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub seed: u64,
    pub scale: f64,
    pub workspaces: usize,
    pub big_mib: f64,
}

/// What one tick did.
#[derive(Default, Debug, Clone)]
pub struct TickSummary {
    pub active: Vec<String>,
    pub files_written: u64,
    pub bytes_written: u64,
    pub added: u64,
    pub deleted: u64,
    pub renamed: u64,
    pub big_edit: bool,
    pub big_change: bool,
}

/// The workspace root and everything needed to advance it.
pub struct Workload {
    pub root: PathBuf,
    pub opts: Options,
    pub ws: Vec<Ws>,
    pub floor: Floor,
    pub excluded_files: u64,
    pub excluded_bytes: u64,
    sum: TickSummary,
}

fn sentence(r: &mut Rng, lo: usize, hi: usize) -> String {
    let n = r.range(lo, hi);
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        let w = *r.pick(WORDS);
        s.push_str(w);
    }
    s.push('.');
    s
}

fn py_line(r: &mut Rng) -> String {
    let a = *r.pick(IDENT);
    let b = *r.pick(IDENT);
    match r.below(6) {
        0 => format!("    {a} = {b}.mean(axis={})", r.below(3)),
        1 => format!("    {a} = np.clip({b} * {:.4}, 0, 1)", r.f64()),
        2 => format!("    logger.info(\"{} %s\", {a})", sentence(r, 2, 6)),
        3 => format!("    for {a} in range({}):", r.range(1, 500)),
        4 => format!("        {a}[{b}] += {:.6}", r.gauss()),
        _ => format!("    # {}", sentence(r, 3, 12)),
    }
}

fn text_file(r: &mut Rng, ext: &str, target: usize) -> Vec<u8> {
    let mut s = String::with_capacity(target + 100);
    match ext {
        "py" => s.push_str(
            "import numpy as np\nimport logging\n\nlogger = logging.getLogger(__name__)\n",
        ),
        "tex" => s.push_str(&format!("\\section{{{}}}\n", sentence(r, 2, 5))),
        "md" => s.push_str(&format!("# {}\n", sentence(r, 2, 6))),
        _ => {}
    }
    let mut f = 0;
    while s.len() < target {
        let line = match ext {
            "py" if r.chance(0.1) => {
                f += 1;
                format!(
                    "\ndef {}_{f}({}, {}=None):",
                    r.pick(IDENT),
                    r.pick(IDENT),
                    r.pick(IDENT)
                )
            }
            "py" => py_line(r),
            "yaml" => format!("{}_{}: {:.5}", r.pick(IDENT), r.below(100), r.f64()),
            _ => sentence(r, 5, 18),
        };
        s.push_str(&line);
        s.push('\n');
    }
    s.into_bytes()
}

fn csv_row(r: &mut Rng, ncol: usize, i: usize) -> String {
    let mut row = format!("S{:02},{i}", r.range(1, 41));
    for _ in 0..ncol {
        row.push_str(&format!(",{:.6}", r.gauss()));
    }
    row
}

fn csv_file(r: &mut Rng, target: usize) -> Vec<u8> {
    let ncol = r.range(4, 12);
    let mut s = String::from("subject,trial");
    for i in 0..ncol {
        s.push_str(&format!(",{}_{i}", r.pick(IDENT)));
    }
    s.push('\n');
    let mut i = 0;
    while s.len() < target {
        s.push_str(&csv_row(r, ncol, i));
        s.push('\n');
        i += 1;
    }
    s.into_bytes()
}

fn notebook(r: &mut Rng, ncells: usize) -> Vec<u8> {
    let mut cells = Vec::new();
    for i in 0..ncells {
        if r.chance(0.3) {
            let src: Vec<String> = (0..r.range(1, 4))
                .map(|_| sentence(r, 4, 14) + "\n")
                .collect();
            cells.push(serde_json::json!({"cell_type": "markdown", "metadata": {}, "source": src}));
        } else {
            let src: Vec<String> = (0..r.range(2, 12))
                .map(|_| py_line(r).trim().to_string() + "\n")
                .collect();
            let mut outs = Vec::new();
            if r.chance(0.5) {
                let text: Vec<String> = (0..r.range(1, 30))
                    .map(|_| format!("{:.6}\n", r.gauss()))
                    .collect();
                outs.push(
                    serde_json::json!({"output_type": "stream", "name": "stdout", "text": text}),
                );
            }
            if r.chance(0.12) {
                let n = r.range(2000, 16000);
                let blob: String = r.bytes(n).iter().map(|b| format!("{b:02x}")).collect();
                outs.push(
                    serde_json::json!({"output_type": "display_data", "metadata": {},
                    "data": {"image/png": blob}}),
                );
            }
            cells.push(
                serde_json::json!({"cell_type": "code", "execution_count": i + 1,
                "metadata": {}, "outputs": outs, "source": src}),
            );
        }
    }
    let nb = serde_json::json!({"cells": cells, "metadata": {"kernelspec": {"name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5});
    serde_json::to_vec_pretty(&nb).expect("json")
}

/// `.npy` of float32 that compresses some: a smooth signal plus noise,
/// rounded to 1/256, so the low mantissa bits are mostly zero.
fn npy(r: &mut Rng, n: usize) -> Vec<u8> {
    let mut hdr = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({n},), }}");
    while (hdr.len() + 11) % 64 != 0 {
        hdr.push(' ');
    }
    hdr.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(hdr.len() as u16).to_le_bytes());
    out.extend_from_slice(hdr.as_bytes());
    let (f, ph) = (r.f64() * 0.05, r.f64() * 6.0);
    for i in 0..n {
        let v = (i as f64 * f + ph).sin() * 3.0 + r.gauss() * 0.5;
        out.extend_from_slice(&(((v * 256.0).round() / 256.0) as f32).to_le_bytes());
    }
    out
}

/// A figure: PNG signature + incompressible bytes (compressed image data).
fn figure(r: &mut Rng, size: usize) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend(r.bytes(size.saturating_sub(8)));
    v
}

/// Checkpoint-like weights: float32 with the low 16 bits zero (bf16 in f32),
/// about half compressible.
fn weights(r: &mut Rng, buf: &mut [u8]) {
    for c in buf.chunks_mut(8) {
        let v = r.u64() & 0xFFFF_0000_FFFF_0000;
        let b = v.to_le_bytes();
        c.copy_from_slice(&b[..c.len()]);
    }
}

fn mkparent(p: &Path) {
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).expect("mkdir");
    }
}

fn write_file(p: &Path, data: &[u8]) {
    mkparent(p);
    fs::write(p, data).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
}

fn rel_path(ws: &Path, rel: &[u8]) -> PathBuf {
    ws.join(OsStr::from_bytes(rel))
}

impl Workload {
    fn n(&self, x: f64, mult: f64) -> usize {
        ((x * self.opts.scale * mult).round() as usize).max(1)
    }

    fn ws_path(&self, i: usize) -> PathBuf {
        self.root.join(&self.ws[i].user).join(&self.ws[i].project)
    }

    /// Writes an included file, records it in the floor and (if new) in the
    /// workspace's file list.
    fn put(&mut self, wi: usize, rel: &[u8], kind: Kind, data: &[u8], delta: Option<&[u8]>) {
        let p = rel_path(&self.ws_path(wi), rel);
        write_file(&p, data);
        self.floor.add(data, delta);
        self.sum.files_written += 1;
        self.sum.bytes_written += delta.map_or(data.len(), <[u8]>::len) as u64;
        let files = &mut self.ws[wi].files;
        if !files.iter().any(|f| f.rel == rel) {
            files.push(FileRec {
                rel: rel.to_vec(),
                kind,
            });
        }
    }

    fn put_excluded(&mut self, wi: usize, rel: &str, data: &[u8]) {
        write_file(&self.ws_path(wi).join(rel), data);
        self.excluded_files += 1;
        self.excluded_bytes += data.len() as u64;
    }

    /// Creates the root (which must not exist or be empty).
    pub fn init(root: &Path, opts: Options) -> Workload {
        fs::create_dir_all(root).expect("create root");
        assert!(
            fs::read_dir(root).expect("read root").next().is_none(),
            "{} is not empty",
            root.display()
        );
        let mut names: Vec<(String, String)> = Vec::new();
        let mut i = 0;
        while names.len() < opts.workspaces {
            let u = USERS[i % USERS.len()].to_string();
            let p = PROJECTS[(i * 5 + i / USERS.len()) % PROJECTS.len()].to_string();
            // workspace 3 is a fork of workspace 2: same project, another user
            let p = if names.len() == 3 {
                names[2].1.clone()
            } else {
                p
            };
            if !names.contains(&(u.clone(), p.clone())) {
                names.push((u, p));
            }
            i += 1;
        }
        let ws = names
            .into_iter()
            .enumerate()
            .map(|(i, (user, project))| Ws {
                user,
                project,
                files: Vec::new(),
                next_run: 0,
                weight: 1.0 / (1.0 + 0.35 * i as f64),
            })
            .collect();
        let mut w = Workload {
            root: root.to_path_buf(),
            opts,
            ws,
            floor: Floor::default(),
            excluded_files: 0,
            excluded_bytes: 0,
            sum: TickSummary::default(),
        };
        for i in 0..w.ws.len() {
            if i == 3 && w.ws.len() > 3 {
                w.init_fork(3, 2);
            } else {
                w.init_ws(i);
            }
        }
        w.sum = TickSummary::default();
        w
    }

    fn init_ws(&mut self, wi: usize) {
        let mut r = Rng::new(self.opts.seed, &["init", &self.ws[wi].name()]);
        let mult = [1.6, 1.4, 1.2, 1.0, 1.0, 0.9, 0.8, 0.8, 0.7, 0.6][wi % 10];
        let pkgs = ["core", "io", "models", "train", "eval", "viz"];
        for i in 0..self.n(960.0, mult) {
            let pkg = pkgs[i % pkgs.len()];
            let rel = format!("src/{pkg}/mod_{i:04}.py");
            let d = {
                let n = r.lognorm(8.0, 0.7);
                text_file(&mut r, "py", n)
            };
            self.put(wi, rel.as_bytes(), Kind::Text, &d, None);
        }
        for i in 0..self.n(80.0, mult) {
            let d = {
                let n = r.lognorm(7.6, 0.6);
                text_file(&mut r, "py", n)
            };
            self.put(
                wi,
                format!("tests/test_{i:03}.py").as_bytes(),
                Kind::Text,
                &d,
                None,
            );
        }
        for (dir, ext, n) in [
            ("docs", "md", 30.0),
            ("paper", "tex", 15.0),
            ("config", "yaml", 50.0),
        ] {
            for i in 0..self.n(n, mult) {
                let sz = r.lognorm(7.5, 0.8);
                let d = text_file(&mut r, ext, sz);
                self.put(
                    wi,
                    format!("{dir}/{dir}_{i:03}.{ext}").as_bytes(),
                    Kind::Text,
                    &d,
                    None,
                );
            }
        }
        for i in 0..self.n(100.0, mult) {
            let d = {
                let n = r.lognorm(10.0, 0.7);
                csv_file(&mut r, n)
            };
            self.put(
                wi,
                format!("data/raw/table_{i:03}.csv").as_bytes(),
                Kind::Csv,
                &d,
                None,
            );
        }
        for _ in 0..3 {
            self.results_run(wi, &mut r, 1.0);
        }
        for i in 0..self.n(20.0, mult) {
            let d = {
                let n = r.range(8, 40);
                notebook(&mut r, n)
            };
            self.put(
                wi,
                format!("notebooks/nb_{i:02}.ipynb").as_bytes(),
                Kind::Notebook,
                &d,
                None,
            );
        }
        for i in 0..self.n(10.0, mult) {
            let d = {
                let n = r.range(60_000, 300_000);
                npy(&mut r, n)
            };
            self.put(
                wi,
                format!("arrays/arr_{i:02}.npy").as_bytes(),
                Kind::Npy,
                &d,
                None,
            );
        }
        for i in 0..self.n(420.0, mult) {
            let d = {
                let n = r.lognorm(9.9, 0.6);
                figure(&mut r, n)
            };
            self.put(
                wi,
                format!("figures/fig_{i:03}.png").as_bytes(),
                Kind::Figure,
                &d,
                None,
            );
        }
        let log: String = (0..self.n(2000.0, 1.0))
            .map(|j| format!("[init {j:06}] {}\n", sentence(&mut r, 3, 10)))
            .collect();
        self.put(wi, b"logs/train.log", Kind::Log, log.as_bytes(), None);
        // a name that is not UTF-8 (Latin-1 "résultats")
        let d = csv_file(&mut r, 3000);
        self.put(wi, b"data/r\xe9sultats_\xff.csv", Kind::Csv, &d, None);
        self.init_sqlite(wi, &mut r);
        let wp = self.ws_path(wi);
        std::os::unix::fs::symlink("raw/table_000.csv", wp.join("data/latest.csv"))
            .expect("symlink");
        std::os::unix::fs::symlink("run_000", wp.join("results/current")).expect("symlink");
        if wi == 0 {
            self.init_big(wi, &mut r);
        }
        // excluded: must reach no store
        for i in 0..self.n(100.0, mult) {
            let sz = r.range(200, 6000);
            let d = r.bytes(sz);
            let name = format!(".git/objects/{:02x}/{}", i % 256, hex(&r.bytes(19)));
            self.put_excluded(wi, &name, &d);
        }
        self.put_excluded(wi, ".git/HEAD", b"ref: refs/heads/main\n");
        for i in 0..self.n(30.0, mult) {
            let sz = r.range(500, 8000);
            let d = r.bytes(sz);
            self.put_excluded(
                wi,
                &format!("src/{}/__pycache__/mod_{i:04}.cpython-311.pyc", pkgs[i % 6]),
                &d,
            );
        }
        if wi % 3 == 1 {
            for i in 0..self.n(300.0, 1.0) {
                let d = {
                    let n = r.range(300, 4000);
                    text_file(&mut r, "js", n)
                };
                self.put_excluded(wi, &format!("node_modules/pkg{}/index_{i}.js", i % 17), &d);
            }
        }
        if wi % 4 == 2 {
            for i in 0..self.n(200.0, 1.0) {
                let d = {
                    let n = r.range(500, 6000);
                    text_file(&mut r, "py", n)
                };
                self.put_excluded(
                    wi,
                    &format!(".venv/lib/python3.11/site-packages/p{}/m{i}.py", i % 23),
                    &d,
                );
            }
        }
    }

    /// The fork: a copy of `src`'s files (minus its big file), a few edited.
    fn init_fork(&mut self, wi: usize, src: usize) {
        let mut r = Rng::new(self.opts.seed, &["fork", &self.ws[wi].name()]);
        let (from, to) = (self.ws_path(src), self.ws_path(wi));
        let files = self.ws[src].files.clone();
        for f in &files {
            let data = fs::read(rel_path(&from, &f.rel)).expect("read fork source");
            self.put(wi, &f.rel, f.kind, &data, None);
        }
        self.ws[wi].next_run = self.ws[src].next_run;
        for l in ["data/latest.csv", "results/current"] {
            let t = fs::read_link(from.join(l)).expect("readlink");
            std::os::unix::fs::symlink(t, to.join(l)).expect("symlink");
        }
        let texts: Vec<Vec<u8>> = files
            .iter()
            .filter(|f| f.kind == Kind::Text)
            .map(|f| f.rel.clone())
            .collect();
        for _ in 0..(texts.len() / 20).max(1) {
            let rel = r.pick(&texts).clone();
            self.edit_text(wi, &rel, &mut r);
        }
        self.put_excluded(wi, ".git/HEAD", b"ref: refs/heads/fork\n");
    }

    fn init_sqlite(&mut self, wi: usize, r: &mut Rng) {
        let p = self.ws_path(wi).join("db/experiments.sqlite");
        mkparent(&p);
        let c = rusqlite::Connection::open(&p).expect("sqlite open");
        c.execute_batch(
            "CREATE TABLE runs(id INTEGER PRIMARY KEY, params TEXT, metric REAL, notes TEXT);",
        )
        .expect("sqlite ddl");
        let n = self.n(3000.0, 1.0);
        sqlite_insert(&c, r, n);
        drop(c);
        self.floor.add_path(&p, None);
        self.ws[wi].files.push(FileRec {
            rel: b"db/experiments.sqlite".to_vec(),
            kind: Kind::Sqlite,
        });
    }

    fn init_big(&mut self, wi: usize, r: &mut Rng) {
        let p = self.ws_path(wi).join("models/checkpoint.bin");
        mkparent(&p);
        let size = (self.opts.big_mib * 1048576.0) as usize;
        let mut f = File::create(&p).expect("create big");
        let mut buf = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len());
            weights(r, &mut buf[..n]);
            f.write_all(&buf[..n]).expect("write big");
            left -= n;
        }
        drop(f);
        self.floor.add_path(&p, None);
        self.ws[wi].files.push(FileRec {
            rel: b"models/checkpoint.bin".to_vec(),
            kind: Kind::Big,
        });
    }

    /// A new `results/run_NNN/` directory of CSVs, figures and an array.
    fn results_run(&mut self, wi: usize, r: &mut Rng, size: f64) {
        let k = self.ws[wi].next_run;
        self.ws[wi].next_run += 1;
        for i in 0..self.n(15.0 * size, 1.0) {
            let d = {
                let n = r.lognorm(9.6, 0.6);
                csv_file(r, n)
            };
            self.put(
                wi,
                format!("results/run_{k:03}/metrics_{i:02}.csv").as_bytes(),
                Kind::Csv,
                &d,
                None,
            );
        }
        for i in 0..self.n(8.0 * size, 1.0) {
            let d = {
                let n = r.lognorm(10.0, 0.5);
                figure(r, n)
            };
            self.put(
                wi,
                format!("results/run_{k:03}/plot_{i:02}.png").as_bytes(),
                Kind::Figure,
                &d,
                None,
            );
        }
        let d = {
            let n = r.range(50_000, 200_000);
            npy(r, n)
        };
        self.put(
            wi,
            format!("results/run_{k:03}/embedding.npy").as_bytes(),
            Kind::Npy,
            &d,
            None,
        );
    }

    fn edit_text(&mut self, wi: usize, rel: &[u8], r: &mut Rng) {
        let p = rel_path(&self.ws_path(wi), rel);
        let Ok(old) = fs::read(&p) else { return };
        let mut lines: Vec<String> = String::from_utf8_lossy(&old)
            .split('\n')
            .map(str::to_string)
            .collect();
        let csv = rel.ends_with(b".csv");
        for _ in 0..r.range(1, 5) {
            let i = r.below(lines.len());
            let new = if csv {
                {
                    let i = r.below(10_000);
                    csv_row(r, lines[0].matches(',').count().saturating_sub(1).max(1), i)
                }
            } else if rel.ends_with(b".py") {
                py_line(r)
            } else {
                sentence(r, 4, 16)
            };
            match r.below(10) {
                0..=5 => lines[i] = new,
                6..=8 => lines.insert(i, new),
                _ if lines.len() > 3 => {
                    lines.remove(i);
                }
                _ => {}
            }
        }
        let kind = if csv { Kind::Csv } else { Kind::Text };
        self.put(wi, rel, kind, lines.join("\n").as_bytes(), None);
    }

    fn append(&mut self, wi: usize, rel: &[u8], kind: Kind, data: &[u8]) {
        let p = rel_path(&self.ws_path(wi), rel);
        OpenOptions::new()
            .append(true)
            .open(&p)
            .and_then(|mut f| f.write_all(data))
            .expect("append");
        let all = fs::read(&p).expect("read appended");
        self.floor.add(&all, Some(data));
        self.sum.files_written += 1;
        self.sum.bytes_written += data.len() as u64;
        let _ = kind;
    }

    fn pick_of(&self, wi: usize, r: &mut Rng, kinds: &[Kind]) -> Option<Vec<u8>> {
        let c: Vec<&FileRec> = self.ws[wi]
            .files
            .iter()
            .filter(|f| kinds.contains(&f.kind))
            .collect();
        (!c.is_empty()).then(|| c[r.below(c.len())].rel.clone())
    }

    /// Advances the root by one 5-minute tick; returns what was done.
    pub fn tick(&mut self, t: u64) -> TickSummary {
        self.sum = TickSummary::default();
        let mut r = Rng::new(self.opts.seed, &["tick", &t.to_string()]);
        // most ticks: nobody or one person is working
        let k = match r.f64() {
            x if x < 0.25 => 0,
            x if x < 0.65 => 1,
            x if x < 0.85 => 2,
            x if x < 0.95 => 3,
            _ => 5,
        };
        let total: f64 = self.ws.iter().map(|w| w.weight).sum();
        let mut active = Vec::new();
        while active.len() < k.min(self.ws.len()) {
            let mut x = r.f64() * total;
            let mut pick = 0;
            for (i, w) in self.ws.iter().enumerate() {
                pick = i;
                x -= w.weight;
                if x < 0.0 {
                    break;
                }
            }
            if !active.contains(&pick) {
                active.push(pick);
            }
        }
        for &wi in &active {
            self.sum.active.push(self.ws[wi].name());
            self.edit_session(wi, t, &mut r);
        }
        if t % 12 == 0 {
            self.big_edit(&mut r);
        }
        if t % 10 == 5 {
            self.churn(r.below(self.ws.len()), t, &mut r);
        }
        if t % 48 == 24 {
            let wi = r.below(self.ws.len());
            self.sum.big_change = true;
            self.sum
                .active
                .push(format!("{} (big change)", self.ws[wi].name()));
            let size = 3.0 + r.f64() * 3.0;
            self.results_run(wi, &mut r, size);
            self.drop_oldest_run(wi);
        }
        std::mem::take(&mut self.sum)
    }

    fn edit_session(&mut self, wi: usize, t: u64, r: &mut Rng) {
        for _ in 0..r.range(1, 5) {
            if let Some(rel) = self.pick_of(wi, r, &[Kind::Text]) {
                self.edit_text(wi, &rel, r);
            }
        }
        let lines: String = (0..r.range(1, 20))
            .map(|_| format!("[tick {t:06}] {}\n", sentence(r, 3, 10)))
            .collect();
        self.append(wi, b"logs/train.log", Kind::Log, lines.as_bytes());
        if r.chance(0.25) {
            if let Some(rel) = self.pick_of(wi, r, &[Kind::Notebook]) {
                let d = {
                    let n = r.range(8, 40);
                    notebook(r, n)
                };
                self.put(wi, &rel, Kind::Notebook, &d, None);
            }
        }
        if r.chance(0.15) {
            if let Some(rel) = self.pick_of(wi, r, &[Kind::Figure]) {
                let d = {
                    let n = r.lognorm(9.9, 0.6);
                    figure(r, n)
                };
                self.put(wi, &rel, Kind::Figure, &d, None);
            }
        }
        if r.chance(0.15) {
            if let Some(rel) = self.pick_of(wi, r, &[Kind::Csv]) {
                let rows: String = (0..r.range(5, 80))
                    .map(|i| csv_row(r, 6, i) + "\n")
                    .collect();
                self.append(wi, &rel, Kind::Csv, rows.as_bytes());
            }
        }
        if r.chance(0.2) {
            let p = self.ws_path(wi).join("db/experiments.sqlite");
            let c = rusqlite::Connection::open(&p).expect("sqlite open");
            {
                let n = r.range(5, 60);
                sqlite_insert(&c, r, n)
            };
            drop(c);
            self.floor.add_path(&p, None);
            self.sum.files_written += 1;
        }
        if r.chance(0.05) && wi == 2 && self.ws.len() > 3 {
            // the fork pulls a file from upstream: identical content
            if let Some(rel) = self.pick_of(2, r, &[Kind::Text]) {
                if let Ok(d) = fs::read(rel_path(&self.ws_path(2), &rel)) {
                    self.put(3, &rel, Kind::Text, &d, None);
                }
            }
        }
        if r.chance(0.15) {
            let sz = r.range(200, 4000);
            let d = r.bytes(sz);
            self.put_excluded(
                wi,
                &format!(".git/objects/{:02x}/{}", r.below(256), hex(&r.bytes(19))),
                &d,
            );
            let sz = r.range(500, 4000);
            let d = r.bytes(sz);
            self.put_excluded(
                wi,
                &format!("src/core/__pycache__/tick_{}.cpython-311.pyc", t % 7),
                &d,
            );
        }
    }

    /// In-place edit of the big file: two regions rewritten, nothing else.
    fn big_edit(&mut self, r: &mut Rng) {
        let Some(wi) = self
            .ws
            .iter()
            .position(|w| w.files.iter().any(|f| f.kind == Kind::Big))
        else {
            return;
        };
        let p = self.ws_path(wi).join("models/checkpoint.bin");
        let size = fs::metadata(&p).expect("stat big").len() as usize;
        let region = ((4.0 * self.opts.scale * 1048576.0) as usize).clamp(65536, size);
        let f = OpenOptions::new().write(true).open(&p).expect("open big");
        let mut all = Vec::new();
        for _ in 0..2 {
            let off = r.below(size - region + 1) & !4095;
            let mut buf = vec![0u8; region];
            weights(r, &mut buf);
            f.write_all_at(&buf, off as u64).expect("pwrite big");
            all.extend_from_slice(&buf);
        }
        drop(f);
        self.floor.add_path(&p, Some(&all));
        self.sum.big_edit = true;
        self.sum.files_written += 1;
        self.sum.bytes_written += all.len() as u64;
    }

    /// Adds, deletes and renames a few files in one workspace.
    fn churn(&mut self, wi: usize, t: u64, r: &mut Rng) {
        for i in 0..r.range(2, 6) {
            let (rel, kind, d) = match r.below(3) {
                0 => (format!("src/core/new_t{t}_{i}.py"), Kind::Text, {
                    let n = r.range(2000, 12000);
                    text_file(r, "py", n)
                }),
                1 => (format!("data/raw/new_t{t}_{i}.csv"), Kind::Csv, {
                    let n = r.range(20000, 120000);
                    csv_file(r, n)
                }),
                _ => (format!("figures/new_t{t}_{i}.png"), Kind::Figure, {
                    let n = r.range(10000, 60000);
                    figure(r, n)
                }),
            };
            self.put(wi, rel.as_bytes(), kind, &d, None);
            self.sum.added += 1;
        }
        let wp = self.ws_path(wi);
        let movable = |f: &FileRec| {
            matches!(
                f.kind,
                Kind::Text | Kind::Csv | Kind::Figure | Kind::Notebook
            )
        };
        for _ in 0..r.range(1, 4) {
            let c: Vec<usize> = (0..self.ws[wi].files.len())
                .filter(|&i| movable(&self.ws[wi].files[i]))
                .collect();
            if c.len() < 10 {
                break;
            }
            let i = c[r.below(c.len())];
            let f = self.ws[wi].files.swap_remove(i);
            fs::remove_file(rel_path(&wp, &f.rel)).expect("delete");
            self.sum.deleted += 1;
        }
        for _ in 0..r.range(1, 3) {
            let c: Vec<usize> = (0..self.ws[wi].files.len())
                .filter(|&i| movable(&self.ws[wi].files[i]))
                .collect();
            if c.is_empty() {
                break;
            }
            let i = c[r.below(c.len())];
            let old = self.ws[wi].files[i].rel.clone();
            let base = old.rsplit(|&b| b == b'/').next().unwrap_or(&old).to_vec();
            let mut new = if r.chance(0.5) {
                b"archive/".to_vec()
            } else {
                old[..old.len() - base.len()].to_vec()
            };
            new.extend_from_slice(format!("renamed_t{t}_").as_bytes());
            new.extend_from_slice(&base);
            let np = rel_path(&wp, &new);
            mkparent(&np);
            fs::rename(rel_path(&wp, &old), &np).expect("rename");
            self.ws[wi].files[i].rel = new;
            self.sum.renamed += 1;
        }
    }

    fn drop_oldest_run(&mut self, wi: usize) {
        let wp = self.ws_path(wi);
        let mut runs: Vec<String> = fs::read_dir(wp.join("results"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().is_dir() && !e.path().is_symlink())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        runs.sort();
        if runs.len() <= 4 {
            return;
        }
        let old = &runs[0];
        let prefix = format!("results/{old}/");
        fs::remove_dir_all(wp.join("results").join(old)).expect("remove run");
        let before = self.ws[wi].files.len();
        self.ws[wi]
            .files
            .retain(|f| !f.rel.starts_with(prefix.as_bytes()));
        self.sum.deleted += (before - self.ws[wi].files.len()) as u64;
    }

    /// Included files and bytes now (walks the root, skipping excludes).
    pub fn included(&self) -> (u64, u64) {
        fn walk(p: &Path, n: &mut (u64, u64)) {
            for e in fs::read_dir(p).into_iter().flatten().flatten() {
                if crate::proc::excluded_name(e.file_name().as_bytes()) {
                    continue;
                }
                let Ok(m) = e.metadata() else { continue };
                if m.is_dir() {
                    walk(&e.path(), n);
                } else if m.is_file() {
                    n.0 += 1;
                    n.1 += m.len();
                }
            }
        }
        let mut n = (0, 0);
        walk(&self.root, &mut n);
        n
    }
}

fn sqlite_insert(c: &rusqlite::Connection, r: &mut Rng, n: usize) {
    let tx = c.unchecked_transaction().expect("tx");
    {
        let mut st = tx
            .prepare("INSERT INTO runs(params, metric, notes) VALUES (?1, ?2, ?3)")
            .expect("prepare");
        for _ in 0..n {
            let params = format!(
                "{{\"lr\": {:.5}, \"batch\": {}}}",
                r.f64() * 0.01,
                1 << r.range(3, 9)
            );
            st.execute(rusqlite::params![params, r.gauss(), sentence(r, 3, 12)])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_hash(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut v = Vec::new();
        fn walk(root: &Path, p: &Path, v: &mut Vec<(PathBuf, Vec<u8>)>) {
            let mut es: Vec<_> = fs::read_dir(p).unwrap().flatten().collect();
            es.sort_by_key(|e| e.file_name());
            for e in es {
                let m = fs::symlink_metadata(e.path()).unwrap();
                let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
                if m.is_dir() {
                    walk(root, &e.path(), v);
                } else if m.is_file() && !rel.ends_with("experiments.sqlite") {
                    v.push((
                        rel,
                        blake3::hash(&fs::read(e.path()).unwrap())
                            .as_bytes()
                            .to_vec(),
                    ));
                }
            }
        }
        walk(root, root, &mut v);
        v
    }

    #[test]
    fn same_seed_same_tree_after_ticks_and_floor_grows() {
        let base = std::env::temp_dir().join(format!("wsnap-bench-gen-{}", std::process::id()));
        let opts = Options {
            seed: 3,
            scale: 0.01,
            workspaces: 5,
            big_mib: 1.0,
        };
        let mut trees = Vec::new();
        let mut floors = Vec::new();
        for k in 0..2 {
            let root = base.join(k.to_string());
            let mut w = Workload::init(&root, opts);
            let f0 = w.floor.raw;
            for t in 1..=30 {
                w.tick(t);
            }
            assert!(w.floor.raw > f0, "ticks must add content");
            assert!(w.floor.delta_raw <= w.floor.raw);
            trees.push(tree_hash(&root));
            floors.push((w.floor.contents, w.floor.delta_raw));
            let nonutf8 = root
                .join(&w.ws[0].user)
                .join(&w.ws[0].project)
                .join(OsStr::from_bytes(b"data/r\xe9sultats_\xff.csv"));
            assert!(nonutf8.is_file());
        }
        assert_eq!(trees[0], trees[1]);
        assert_eq!(floors[0], floors[1]);
        fs::remove_dir_all(&base).unwrap();
    }
}
