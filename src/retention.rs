//! Retention policy: which snapshots of one workspace to keep.
//!
//! Pure: (snapshot times, policy, now) → keep/forget with reasons, tested
//! with tables. Semantics follow restic and borg: each tier walks the
//! snapshots newest first and keeps the newest snapshot of each of its last
//! N periods (hour, day, ISO week, month, in local time); `keep-last N`
//! keeps the N newest; `keep-within D` keeps everything taken at or after
//! `now - D`. Tiers combine as a union. The newest snapshot is always kept.
//!
//! `keep-within` is anchored on now, not on the newest snapshot (restic and
//! borg anchor it on the newest): one snapshot with a time far in the future
//! would otherwise make every real snapshot "older than D" and forget them.
//! The CLI refuses counts of 0 and durations without a unit; the library
//! keeps its plain meaning (0 keeps none by that tier).

use chrono::{Datelike, Local, TimeZone, Timelike};

/// How many snapshots to keep, per workspace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeepPolicy {
    pub last: Option<u64>,
    pub within_ns: Option<i64>,
    pub hourly: Option<u64>,
    pub daily: Option<u64>,
    pub weekly: Option<u64>,
    pub monthly: Option<u64>,
}

impl KeepPolicy {
    /// True when no tier is set (the caller substitutes its default).
    pub fn is_empty(&self) -> bool {
        *self == KeepPolicy::default()
    }
}

/// The decision for one snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision<T> {
    pub item: T,
    pub time_ns: i64,
    pub keep: bool,
    /// Why it is kept ("last", "daily", "newest", …); empty when forgotten.
    pub reasons: Vec<&'static str>,
}

#[derive(Clone, Copy)]
enum Period {
    Hour,
    Day,
    Week,
    Month,
}

fn bucket(ns: i64, p: Period) -> (i32, u32, u32, u32) {
    let t = Local.timestamp_nanos(ns);
    match p {
        Period::Hour => (t.year(), t.month(), t.day(), t.hour()),
        Period::Day => (t.year(), t.month(), t.day(), 0),
        Period::Week => {
            let w = t.iso_week();
            (w.year(), w.week(), 0, 0)
        }
        Period::Month => (t.year(), t.month(), 0, 0),
    }
}

/// Decide for the snapshots of one workspace. Order of the output: newest
/// first. Input order does not matter.
/// `now_ns` anchors `keep-within`.
pub fn decide<T: Clone>(
    snapshots: &[(T, i64)],
    policy: &KeepPolicy,
    now_ns: i64,
) -> Vec<Decision<T>> {
    let mut order: Vec<usize> = (0..snapshots.len()).collect();
    // Newest first; ties keep input order (the caller passes commit order).
    order.sort_by(|&a, &b| snapshots[b].1.cmp(&snapshots[a].1).then(b.cmp(&a)));
    let mut out: Vec<Decision<T>> = order
        .iter()
        .map(|&i| Decision {
            item: snapshots[i].0.clone(),
            time_ns: snapshots[i].1,
            keep: false,
            reasons: Vec::new(),
        })
        .collect();
    if out.is_empty() {
        return out;
    }
    out[0].reasons.push("newest");
    if let Some(n) = policy.last {
        for d in out.iter_mut().take(n as usize) {
            d.reasons.push("last");
        }
    }
    if let Some(w) = policy.within_ns {
        for d in out.iter_mut() {
            if d.time_ns >= now_ns.saturating_sub(w) {
                d.reasons.push("within");
            }
        }
    }
    let tiers = [
        (policy.hourly, Period::Hour, "hourly"),
        (policy.daily, Period::Day, "daily"),
        (policy.weekly, Period::Week, "weekly"),
        (policy.monthly, Period::Month, "monthly"),
    ];
    for (count, period, name) in tiers {
        let Some(n) = count else { continue };
        let mut kept = 0;
        let mut last_bucket = None;
        for d in out.iter_mut() {
            if kept >= n {
                break;
            }
            let b = bucket(d.time_ns, period);
            if last_bucket != Some(b) {
                d.reasons.push(name);
                last_bucket = Some(b);
                kept += 1;
            }
        }
    }
    for d in out.iter_mut() {
        d.keep = !d.reasons.is_empty();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;

    /// A local-time instant, so hour/day buckets are the ones a person sees.
    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        Local
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    fn kept(times: &[i64], p: KeepPolicy) -> Vec<i64> {
        kept_at(times, p, times.iter().copied().max().unwrap_or(0))
    }

    fn kept_at(times: &[i64], p: KeepPolicy, now: i64) -> Vec<i64> {
        let snaps: Vec<(usize, i64)> = times.iter().copied().enumerate().collect();
        let mut k: Vec<i64> = decide(&snaps, &p, now)
            .into_iter()
            .filter(|d| d.keep)
            .map(|d| d.time_ns)
            .collect();
        k.sort();
        k
    }

    #[test]
    fn keep_last_and_newest() {
        let t: Vec<i64> = (0..10)
            .map(|i| at(2026, 1, 1, 0, 0) + i * 5 * MIN)
            .collect();
        assert_eq!(
            kept(
                &t,
                KeepPolicy {
                    last: Some(3),
                    ..Default::default()
                }
            ),
            t[7..].to_vec()
        );
        // keep-last 0 still keeps the newest.
        assert_eq!(
            kept(
                &t,
                KeepPolicy {
                    last: Some(0),
                    ..Default::default()
                }
            ),
            vec![t[9]]
        );
        // An empty policy keeps only the newest.
        assert_eq!(kept(&t, KeepPolicy::default()), vec![t[9]]);
    }

    #[test]
    fn keep_within_is_anchored_on_now() {
        // Hourly snapshots at 00:00 … 09:00.
        let t: Vec<i64> = (0..10).map(|i| at(2026, 1, 1, 0, 0) + i * HOUR).collect();
        let within = |ns| KeepPolicy {
            within_ns: Some(ns),
            ..Default::default()
        };
        let future = at(2099, 1, 1, 0, 0);
        let mut with_future = t.clone();
        with_future.push(future);
        // (times, window, now, kept)
        let cases: Vec<(&[i64], i64, i64, Vec<i64>)> = vec![
            // now = the newest: the last 2 h (inclusive boundary).
            (&t, 2 * HOUR, t[9], t[7..].to_vec()),
            // now 30 min after the newest: hours 08:00 and 09:00.
            (&t, 2 * HOUR, t[9] + 30 * MIN, t[8..].to_vec()),
            // now a day later: nothing is within 2 h, the newest stays.
            (&t, 2 * HOUR, t[9] + DAY, vec![t[9]]),
            (&t, 2 * DAY, t[9] + DAY, t.clone()),
            // A snapshot in 2099 does not push the real ones out.
            (&with_future, 2 * HOUR, t[9], {
                let mut v = t[7..].to_vec();
                v.push(future);
                v
            }),
        ];
        for (i, (times, w, now, want)) in cases.into_iter().enumerate() {
            assert_eq!(kept_at(times, within(w), now), want, "case {i}");
        }
    }

    #[test]
    fn hourly_daily_weekly_monthly() {
        // Every 20 minutes for 3 days.
        let start = at(2026, 3, 2, 0, 0); // a Monday
        let t: Vec<i64> = (0..(3 * 72)).map(|i| start + i * 20 * MIN).collect();
        let hourly = kept(
            &t,
            KeepPolicy {
                hourly: Some(5),
                ..Default::default()
            },
        );
        assert_eq!(hourly.len(), 5);
        // The newest of each of the last 5 hours: minute 40 of each hour.
        for h in &hourly {
            assert_eq!((h - start) % HOUR, 40 * MIN);
        }
        let daily = kept(
            &t,
            KeepPolicy {
                daily: Some(7),
                ..Default::default()
            },
        );
        assert_eq!(daily.len(), 3, "only 3 days exist");
        assert!(daily.iter().all(|d| (d - start) % DAY == DAY - 20 * MIN));
        let weekly = kept(
            &t,
            KeepPolicy {
                weekly: Some(2),
                ..Default::default()
            },
        );
        assert_eq!(weekly, vec![*t.last().unwrap()]);
        let monthly = kept(
            &[
                at(2026, 1, 5, 0, 0),
                at(2026, 1, 20, 0, 0),
                at(2026, 2, 3, 0, 0),
            ],
            KeepPolicy {
                monthly: Some(5),
                ..Default::default()
            },
        );
        assert_eq!(monthly, vec![at(2026, 1, 20, 0, 0), at(2026, 2, 3, 0, 0)]);
    }

    #[test]
    fn tiers_are_a_union() {
        let start = at(2026, 3, 2, 0, 0);
        let t: Vec<i64> = (0..48).map(|i| start + i * HOUR).collect();
        let p = KeepPolicy {
            last: Some(2),
            daily: Some(2),
            ..Default::default()
        };
        // last 2 (hours 46, 47) ∪ newest per day (hours 23 and 47).
        assert_eq!(kept(&t, p), vec![t[23], t[46], t[47]]);
    }

    #[test]
    fn reasons_are_reported() {
        let d = decide(
            &[("a", 1), ("b", 2)],
            &KeepPolicy {
                last: Some(1),
                ..Default::default()
            },
            2,
        );
        assert_eq!(d[0].item, "b");
        assert_eq!(d[0].reasons, vec!["newest", "last"]);
        assert!(!d[1].keep);
    }
}
