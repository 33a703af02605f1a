//! The dashboard's chart: the store's size and the bytes added per tick
//! over the last 24 hours, 7 or 30 days, drawn as SVG on the server (no
//! script).
//!
//! A *tick* is one snapshot run. The catalog does not say which snapshots
//! one run made, so ticks are found from the snapshots' recorded times:
//! the bytes added are summed per minute, and a run of consecutive minutes
//! that hold snapshots is one tick (a cron run every 5 minutes that takes
//! under 4 leaves an empty minute before the next). Memory is one entry
//! per minute that has snapshots, at most 30 days' worth (43,200): rows
//! older than that are counted past as they are read, never kept.
//!
//! The store's size at a tick is *estimated*: today's pack bytes minus
//! what every later tick added. What prune freed since is not known, so
//! older points read high by that much; the chart says so.

use std::collections::BTreeMap;

use maud::{html, Markup};

use crate::human;

const MINUTE_NS: i64 = 60 * 1_000_000_000;
const DAY_NS: i64 = 24 * 60 * MINUTE_NS;

/// The chart's time ranges: name and length.
pub const RANGES: &[(&str, i64)] = &[("24h", DAY_NS), ("7d", 7 * DAY_NS), ("30d", 30 * DAY_NS)];

/// Bytes added per minute of recorded time, and what was read so far.
#[derive(Clone, Debug, Default)]
pub struct Ticks {
    /// The highest snapshot row number read.
    pub last_row: i64,
    /// Minute (time / 60 s) → bytes added, snapshots.
    minutes: BTreeMap<i64, (u64, u64)>,
    /// The store's pack bytes now.
    pub pack_bytes: u64,
    /// Minutes before this one are not kept ([`Ticks::trim`]).
    oldest_minute: Option<i64>,
}

/// One tick: when its first snapshot was recorded, the bytes its
/// snapshots added, how many there were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    pub time_ns: i64,
    pub added: u64,
    pub snapshots: u64,
}

impl Ticks {
    pub fn add(&mut self, row: i64, time_ns: i64, added: u64) {
        self.last_row = self.last_row.max(row);
        let minute = time_ns.div_euclid(MINUTE_NS);
        if self.oldest_minute.is_some_and(|o| minute < o) {
            return;
        }
        let m = self.minutes.entry(minute).or_default();
        m.0 += added;
        m.1 += 1;
    }

    /// Forget minutes older than the longest range, and from now on do
    /// not keep them: called before rows are read, it bounds the map by
    /// the range (at most 43,200 minutes, plus any in the future) however
    /// many older snapshots the store holds.
    pub fn trim(&mut self, now_ns: i64) {
        let oldest = (now_ns - RANGES[RANGES.len() - 1].1).div_euclid(MINUTE_NS);
        self.oldest_minute = Some(self.oldest_minute.map_or(oldest, |o| o.max(oldest)));
        self.minutes = self.minutes.split_off(&oldest);
    }

    /// Every tick from `from_ns` on, oldest first.
    pub fn since(&self, from_ns: i64) -> Vec<Tick> {
        let mut out: Vec<Tick> = Vec::new();
        let mut prev_minute = i64::MIN;
        for (&m, &(added, n)) in self.minutes.range(from_ns.div_euclid(MINUTE_NS)..) {
            match out.last_mut() {
                Some(t) if m == prev_minute + 1 => {
                    t.added += added;
                    t.snapshots += n;
                }
                _ => out.push(Tick {
                    time_ns: m * MINUTE_NS,
                    added,
                    snapshots: n,
                }),
            }
            prev_minute = m;
        }
        out
    }

    /// Bytes added from `from_ns` on (every tick, in or after the range).
    fn added_since(&self, from_ns: i64) -> u64 {
        self.minutes
            .range(from_ns.div_euclid(MINUTE_NS)..)
            .map(|(_, &(a, _))| a)
            .sum()
    }
}

const W: f64 = 900.0;
const H: f64 = 180.0;
const LEFT: f64 = 80.0;
const BOTTOM: f64 = 24.0;

/// The two charts of `range` (a name of [`RANGES`]) ending at `now_ns`.
pub fn charts(t: &Ticks, range_ns: i64, now_ns: i64) -> Markup {
    let from = now_ns - range_ns;
    let ticks = t.since(from);
    // Estimated size after each tick: now minus what later ticks added.
    let mut later = t.added_since(from);
    let sizes: Vec<u64> = ticks
        .iter()
        .map(|k| {
            later -= k.added.min(later);
            t.pack_bytes.saturating_sub(later)
        })
        .collect();
    let x = |ns: i64| LEFT + (ns - from) as f64 / range_ns as f64 * (W - LEFT - 10.0);
    let max_added = ticks.iter().map(|k| k.added).max().unwrap_or(0).max(1);
    let max_size = sizes
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(t.pack_bytes)
        .max(1);
    let y = |v: u64, max: u64| H - BOTTOM - (v as f64 / max as f64) * (H - BOTTOM - 12.0);
    let line: Vec<String> = ticks
        .iter()
        .zip(&sizes)
        .map(|(k, &s)| format!("{:.1},{:.1}", x(k.time_ns), y(s, max_size)))
        .collect();
    html! {
        figure {
            figcaption { "Store size (estimated: today's pack bytes less what later ticks added; what prune freed is not subtracted)" }
            svg id="size-chart" class="chart" viewBox={"0 0 " (W) " " (H)} role="img"
                aria-label="store size per tick" {
                (axes(from, now_ns, max_size))
                @if !line.is_empty() {
                    polyline class="size" points=(line.join(" ")) {}
                }
                @for (k, s) in ticks.iter().zip(&sizes) {
                    circle class="tick size" cx=(format!("{:.1}", x(k.time_ns)))
                        cy=(format!("{:.1}", y(*s, max_size))) r="2" data-time=(k.time_ns) {
                        title { (human::local_time(k.time_ns)) ": " (human::size(*s)) }
                    }
                }
            }
        }
        figure {
            figcaption { "Bytes added per tick (" (ticks.len()) " ticks)" }
            svg id="added-chart" class="chart" viewBox={"0 0 " (W) " " (H)} role="img"
                aria-label="bytes added per tick" {
                (axes(from, now_ns, max_added))
                @for k in &ticks {
                    @let (cx, cy) = (x(k.time_ns), y(k.added, max_added));
                    line class="stem" x1=(format!("{cx:.1}")) x2=(format!("{cx:.1}"))
                        y1=(format!("{:.1}", H - BOTTOM)) y2=(format!("{cy:.1}")) {}
                    circle class="tick added" cx=(format!("{cx:.1}")) cy=(format!("{cy:.1}"))
                        r="2" data-time=(k.time_ns) data-added=(k.added) {
                        title {
                            (human::local_time(k.time_ns)) ": " (human::size(k.added))
                            " in " (k.snapshots) " snapshots"
                        }
                    }
                }
            }
        }
    }
}

fn axes(from: i64, to: i64, max: u64) -> Markup {
    html! {
        line class="axis" x1=(LEFT) y1=(H - BOTTOM) x2=(W - 10.0) y2=(H - BOTTOM) {}
        line class="axis" x1=(LEFT) y1="8" x2=(LEFT) y2=(H - BOTTOM) {}
        text class="label" x="4" y="16" { (human::size(max)) }
        text class="label" x="4" y=(H - BOTTOM) { "0" }
        text class="label" x=(LEFT) y=(H - 6.0) { (human::local_time(from)) }
        text class="label end" x=(W - 10.0) y=(H - 6.0) { (human::local_time(to)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_minutes_are_one_tick() {
        let mut t = Ticks::default();
        let base = 1_000 * MINUTE_NS;
        // A run over two minutes, a gap, a run in one minute.
        t.add(1, base + 10, 5);
        t.add(2, base + MINUTE_NS + 3, 7);
        t.add(3, base + 5 * MINUTE_NS, 1);
        t.add(4, base + 5 * MINUTE_NS + 50, 2);
        let ticks = t.since(0);
        assert_eq!(
            ticks,
            vec![
                Tick {
                    time_ns: base,
                    added: 12,
                    snapshots: 2
                },
                Tick {
                    time_ns: base + 5 * MINUTE_NS,
                    added: 3,
                    snapshots: 2
                },
            ]
        );
        assert_eq!(t.last_row, 4);
        assert_eq!(t.since(base + 2 * MINUTE_NS).len(), 1);
    }

    #[test]
    fn rows_older_than_the_longest_range_are_not_kept_once_trimmed() {
        let now = 100 * DAY_NS;
        let mut t = Ticks::default();
        t.trim(now);
        t.add(1, now - 31 * DAY_NS, 5);
        t.add(2, now - DAY_NS, 7);
        assert_eq!(t.minutes.len(), 1);
        assert_eq!(t.last_row, 2);
        assert_eq!(t.since(0).iter().map(|k| k.added).sum::<u64>(), 7);
    }
}
