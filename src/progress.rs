//! Progress counters for long operations (snapshot, restore, repack,
//! `check --read-data`).
//!
//! The library only counts; whoever called it decides whether and how to
//! show the counts (the CLI draws a bar on a terminal and nothing otherwise).
//! Counters are relaxed atomics, bumped once per file or pack, so keeping
//! them costs nothing measurable when nobody looks.

use std::sync::atomic::{AtomicU64, Ordering};

/// What an operation has done so far, and how much it expects to do.
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU64,
    total: AtomicU64,
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgressCounts {
    /// Units finished: files for snapshot and restore, packs for repack and check.
    pub done: u64,
    /// Units expected; 0 while unknown (a snapshot walk does not count ahead).
    pub total: u64,
    pub bytes_done: u64,
    /// Bytes expected; 0 while unknown.
    pub bytes_total: u64,
}

impl Progress {
    /// Set what the operation expects to do (0 = unknown).
    pub fn expect(&self, total: u64, bytes_total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.bytes_total.store(bytes_total, Ordering::Relaxed);
    }

    /// Count `units` more finished, holding `bytes`.
    pub fn add(&self, units: u64, bytes: u64) {
        self.done.fetch_add(units, Ordering::Relaxed);
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn counts(&self) -> ProgressCounts {
        ProgressCounts {
            done: self.done.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up() {
        let p = Progress::default();
        assert_eq!(p.counts(), ProgressCounts::default());
        p.expect(3, 300);
        p.add(1, 100);
        p.add(2, 50);
        assert_eq!(
            p.counts(),
            ProgressCounts {
                done: 3,
                total: 3,
                bytes_done: 150,
                bytes_total: 300
            }
        );
    }
}
