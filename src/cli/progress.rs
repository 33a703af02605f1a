//! Progress bars for long runs, only when stderr is a terminal.
//!
//! The library counts into a [`Progress`]; here a ticker thread draws those
//! counts ten times a second while the work runs, then the bar is cleared.
//! With stderr not a terminal (cron, tests, a pipe) or with `-q`, no bar
//! and no thread exist at all.

use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use wsnap::progress::{Progress, ProgressCounts};

use super::output::size;

/// The bar being drawn, so log lines can be written around it.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Whether bars are wanted (set once from `-q` before any command runs).
static ENABLED: AtomicBool = AtomicBool::new(true);

pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Run `f` with a progress counter, drawing it as `what` on a terminal.
/// `unit` names what `done` counts ("files", "packs").
pub fn run<T>(what: &str, unit: &'static str, f: impl FnOnce(&Progress) -> T) -> T {
    let progress = Progress::default();
    if !ENABLED.load(Ordering::Relaxed) || !io::stderr().is_terminal() {
        return f(&progress);
    }
    // Styled while hidden, so the first frame drawn is already ours.
    let bar = ProgressBar::hidden();
    bar.set_prefix(what.to_string());
    let mut known = None;
    draw(&bar, &mut known, progress.counts(), unit);
    bar.set_draw_target(ProgressDrawTarget::stderr());
    *ACTIVE.lock().expect("progress bar lock") = Some(bar.clone());
    let done = AtomicBool::new(false);
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                draw(&bar, &mut known, progress.counts(), unit);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let out = f(&progress);
        done.store(true, Ordering::Relaxed);
        out
    });
    *ACTIVE.lock().expect("progress bar lock") = None;
    bar.finish_and_clear();
    out
}

fn draw(bar: &ProgressBar, known: &mut Option<bool>, c: ProgressCounts, unit: &str) {
    let has_total = c.bytes_total > 0;
    if *known != Some(has_total) {
        let template = if has_total {
            "{prefix} [{bar:30}] {bytes}/{total_bytes}  {msg}  eta {eta}"
        } else {
            "{spinner} {prefix}: {msg}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("valid progress template")
                .progress_chars("=> "),
        );
        *known = Some(has_total);
    }
    if has_total {
        bar.set_length(c.bytes_total);
        bar.set_position(c.bytes_done.min(c.bytes_total));
        bar.set_message(format!("{}/{} {unit}", c.done, c.total));
    } else {
        bar.set_message(format!("{} {unit}, {}", c.done, size(c.bytes_done)));
        bar.tick();
    }
}

/// Run `write` with the current bar (if any) hidden.
pub fn suspended<T>(write: impl FnOnce() -> T) -> T {
    let bar = ACTIVE.lock().map(|b| b.clone()).unwrap_or(None);
    match bar {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}
