//! Parsing and printing snapshot times.
//!
//! Accepted: `latest`, RFC 3339 (`2026-11-26T10:00:00Z`, with offset), and in
//! local time `YYYY-mm-dd HH:MM[:SS]` (also with `T`), and the old backup
//! names' `YYYYmmdd_HHMMSS`. Times are nanoseconds since the Unix epoch.
//!
//! And the times people type:
//! - `now`; a time ago: `45m ago`, `2 hours ago`, `1h30m ago`, `-45m`
//!   (units as `humantime` reads them; a day is 24 hours);
//! - a day alone, `YYYY-mm-dd`, `today` or `yesterday`: the **end** of that
//!   local day (23:59:59.999999999), so `--at 2026-11-30` is "as of that
//!   day": the day's last snapshot, or the newest before it;
//! - `today HH:MM[:SS]`, `yesterday HH:MM[:SS]`: that local time.
//!
//! Local times at a DST change (the rule, also in README.md "TIME"):
//! - a wall-clock time in the repeated hour (clocks turned back) means the
//!   **earlier** of its two instants, as GNU `date` does; a warning on stderr
//!   names both instants and how to pick the other (an RFC 3339 offset);
//! - a wall-clock time in the skipped hour (clocks turned forward) is an
//!   error (exit 2) that says which hour was skipped.
//!
//! chrono's `Local` returns the two candidates of a repeated hour ordered by
//! UTC offset, not by instant (so `earliest()` is the *later* instant in
//! zones east of UTC), and reports the instant of the change itself as a
//! repeated time; [`resolve_local`] therefore orders the candidates itself
//! and keeps only those that map back to the wall-clock time given.

use chrono::{
    DateTime, FixedOffset, Local, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc,
};

use crate::error::{Error, Result};

/// A point in time chosen by the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSpec {
    Latest,
    At(i64),
}

/// How far in the future `snapshot --time` may be without
/// `--allow-future-time`: room for clocks that disagree a little.
pub const MAX_FUTURE_SKEW_NS: i64 = 5 * 60 * 1_000_000_000;

const LOCAL_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y%m%d_%H%M%S",
];

/// What a local wall-clock time means in the local zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalTime {
    /// One instant.
    Single(DateTime<FixedOffset>),
    /// In a repeated hour: the earlier and the later instant.
    Ambiguous(DateTime<FixedOffset>, DateTime<FixedOffset>),
    /// In a skipped hour: the offsets before and after the change.
    Skipped(FixedOffset, FixedOffset),
}

/// Parse a TIME argument. A local time in a repeated hour is logged as a
/// warning naming both instants (see the module doc for the rule).
pub fn parse(s: &str) -> Result<TimeSpec> {
    parse_at(s, now_ns())
}

/// [`parse`] with `now_ns` as the present (for relative times and days).
pub fn parse_at(s: &str, now_ns: i64) -> Result<TimeSpec> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("latest") {
        return Ok(TimeSpec::Latest);
    }
    if t.eq_ignore_ascii_case("now") {
        return Ok(TimeSpec::At(now_ns));
    }
    if let Some(ago) = relative(t) {
        let d = ago.map_err(|why| Error::invalid("time", format!("{s:?}: {why}")))?;
        let d = i64::try_from(d.as_nanos())
            .map_err(|_| Error::invalid("time", format!("{s:?} is out of range")))?;
        return Ok(TimeSpec::At(now_ns.saturating_sub(d)));
    }
    if let Some(local) = day_words(t, now_ns) {
        return parse_at(&local, now_ns);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return to_ns(dt.with_timezone(&Utc), s).map(TimeSpec::At);
    }
    for f in LOCAL_FORMATS {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, f) {
            let candidates = Local
                .from_local_datetime(&naive)
                .map(|dt| dt.fixed_offset());
            let zone = Zone {
                offset_at: &|utc| Local.from_utc_datetime(&utc.naive_utc()).offset().fix(),
                offset_near: &|n| {
                    Local
                        .from_local_datetime(n)
                        .earliest()
                        .map(|dt| dt.offset().fix())
                },
            };
            let local = match resolve_local(&naive, candidates, &zone) {
                LocalTime::Single(dt) => dt,
                LocalTime::Ambiguous(earlier, later) => {
                    tracing::warn!(
                        "time {s:?} is ambiguous: local clocks showed it twice (DST ended), \
                         at {} and at {}; using the earlier, {}; give an RFC 3339 time \
                         with its offset to choose",
                        rfc3339(&earlier),
                        rfc3339(&later),
                        rfc3339(&earlier),
                    );
                    earlier
                }
                LocalTime::Skipped(before, after) => {
                    return Err(Error::invalid(
                        "time",
                        format!(
                            "{s:?} does not exist in local time: clocks jumped from \
                             UTC{before} to UTC{after} (DST) and skipped it; give a time \
                             outside the skipped hour, or an RFC 3339 time with an offset"
                        ),
                    ))
                }
            };
            return to_ns(local.with_timezone(&Utc), s).map(TimeSpec::At);
        }
    }
    Err(Error::invalid(
        "time",
        format!(
            "{s:?}: use 'YYYY-mm-dd HH:MM[:SS]' or 'YYYY-mm-dd' (local), RFC 3339 \
             ('2026-11-26T10:00:00Z'), 'YYYYmmdd_HHMMSS', '45m ago', 'today', \
             'yesterday 17:00', 'now' or 'latest'"
        ),
    ))
}

/// [`parse`] for the start of a range (`list --since`): a day alone
/// (`2026-11-30`, `today`, `yesterday`) is its **first** instant (local
/// midnight), so `--since yesterday --until yesterday` is all of yesterday.
/// Every other form means what it means for [`parse`].
pub fn parse_since(s: &str) -> Result<TimeSpec> {
    parse_since_at(s, now_ns())
}

/// [`parse_since`] with `now_ns` as the present.
pub fn parse_since_at(s: &str, now_ns: i64) -> Result<TimeSpec> {
    let t = s.trim();
    match day_words(t, now_ns) {
        Some(local) if !t.contains(char::is_whitespace) => {
            let day = local.split_once(' ').map_or(local.as_str(), |(d, _)| d);
            parse_at(&format!("{day} 00:00:00"), now_ns)
        }
        _ => parse_at(s, now_ns),
    }
}

/// `45m ago`, `2 hours ago`, `-45m`: how long ago. `None` when `t` is not
/// written as a time ago; `Some(Err)` when it is but the duration is not
/// one `humantime` reads.
fn relative(t: &str) -> Option<std::result::Result<std::time::Duration, String>> {
    let lower = t.to_ascii_lowercase();
    let span = match (lower.strip_suffix("ago"), lower.strip_prefix('-')) {
        (Some(span), _) => span,
        (None, Some(span)) if span.starts_with(|c: char| c.is_ascii_digit()) => span,
        _ => return None,
    };
    // humantime reads `2hours` and `1h 30m`; people also write `2 hours`.
    let mut compact = String::new();
    for word in span.split_whitespace() {
        let glue = word.starts_with(|c: char| c.is_ascii_alphabetic());
        if !compact.is_empty() && !glue {
            compact.push(' ');
        }
        compact.push_str(word);
    }
    if compact.is_empty() {
        return Some(Err("say how long ago, e.g. '45m ago' or '-2h'".into()));
    }
    Some(humantime::parse_duration(&compact).map_err(|e| {
        format!("{e}; write a time ago as '45m ago', '2 hours ago', '1h30m ago' or '-45m'")
    }))
}

/// `today`, `yesterday` (with an optional `HH:MM[:SS]`) and a date alone,
/// as the local time they stand for: a day alone is its last instant.
fn day_words(t: &str, now_ns: i64) -> Option<String> {
    let lower = t.to_ascii_lowercase();
    let (day, rest) = match lower.split_once(char::is_whitespace) {
        Some((d, r)) => (d.to_string(), r.trim().to_string()),
        None => (lower.clone(), String::new()),
    };
    let today = Local.timestamp_nanos(now_ns).date_naive();
    let date = match day.as_str() {
        "today" => today,
        "yesterday" => today.pred_opt()?,
        _ if rest.is_empty() => chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d").ok()?,
        _ => return None,
    };
    let time = if rest.is_empty() {
        "23:59:59.999999999".to_string()
    } else {
        rest
    };
    Some(format!("{} {time}", date.format("%Y-%m-%d")))
}

/// What [`resolve_local`] asks of a time zone.
pub struct Zone<'a> {
    /// The zone's offset at an instant.
    pub offset_at: &'a dyn Fn(DateTime<Utc>) -> FixedOffset,
    /// The zone's offset at a local time, if it exists.
    pub offset_near: &'a dyn Fn(&NaiveDateTime) -> Option<FixedOffset>,
}

/// Decide what `naive` means from the zone's candidates for it. Pure: the
/// candidates come from `TimeZone::from_local_datetime`; a candidate whose
/// instant does not show `naive` on the zone's wall clock is dropped (chrono
/// maps the first instant after a gap, or the instant of a change, to a
/// time on the wrong side of it), and the rest are ordered by instant. With
/// none left the time was skipped: the offsets before and after are the
/// zone's two hours either side.
pub fn resolve_local(
    naive: &NaiveDateTime,
    candidates: LocalResult<DateTime<FixedOffset>>,
    zone: &Zone,
) -> LocalTime {
    let mut found: Vec<DateTime<FixedOffset>> = match candidates {
        LocalResult::Single(a) => vec![a],
        LocalResult::Ambiguous(a, b) => vec![a, b],
        LocalResult::None => Vec::new(),
    };
    found.retain(|dt| {
        let utc = dt.with_timezone(&Utc);
        utc.with_timezone(&(zone.offset_at)(utc)).naive_local() == *naive
    });
    found.sort_by_key(|dt| dt.with_timezone(&Utc));
    found.dedup_by_key(|dt| dt.with_timezone(&Utc));
    match found[..] {
        [one] => LocalTime::Single(one),
        [earlier, .., later] => LocalTime::Ambiguous(earlier, later),
        [] => {
            let near = |n: Option<NaiveDateTime>| {
                n.as_ref()
                    .and_then(zone.offset_near)
                    .unwrap_or_else(|| Utc.fix())
            };
            LocalTime::Skipped(
                near(naive.checked_sub_signed(TimeDelta::hours(2))),
                near(naive.checked_add_signed(TimeDelta::hours(2))),
            )
        }
    }
}

/// True for a snapshot time more than [`MAX_FUTURE_SKEW_NS`] after
/// `now_ns`: it would become every workspace's `latest` and outlive real
/// snapshots (the CLI refuses it unless told otherwise).
pub fn too_far_ahead(time_ns: i64, now_ns: i64) -> bool {
    time_ns.saturating_sub(now_ns) > MAX_FUTURE_SKEW_NS
}

/// Local time as RFC 3339 to the second (`2026-11-27T03:05:00+01:00`).
pub fn format_rfc3339_secs(ns: i64) -> String {
    Local
        .timestamp_nanos(ns)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

fn rfc3339(dt: &DateTime<FixedOffset>) -> String {
    dt.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

fn to_ns(dt: DateTime<Utc>, s: &str) -> Result<i64> {
    dt.timestamp_nanos_opt()
        .ok_or_else(|| Error::invalid("time", format!("{s:?} is out of range")))
}

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// `YYYY-mm-dd HH:MM:SS` in local time ([`crate::human::local_time`]).
pub fn format_local(ns: i64) -> String {
    crate::human::local_time(ns)
}

/// `YYYY-mm-dd HH:MM:SS +01:00` in local time: the offset tells apart the
/// two passes of a repeated hour (`list`).
pub fn format_local_offset(ns: i64) -> String {
    Local
        .timestamp_nanos(ns)
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

/// RFC 3339 with offset, for JSON.
pub fn format_rfc3339(ns: i64) -> String {
    Local
        .timestamp_nanos(ns)
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntaxes_agree() {
        let a = parse("2026-03-04 05:06:07").unwrap();
        let b = parse("20260304_050607").unwrap();
        let c = parse("2026-03-04T05:06:07").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        let TimeSpec::At(ns) = parse("2026-03-04 05:06").unwrap() else {
            panic!()
        };
        let TimeSpec::At(ns7) = a else { panic!() };
        assert_eq!(ns7 - ns, 7_000_000_000);
        assert_eq!(
            parse("1970-01-01T00:00:01Z").unwrap(),
            TimeSpec::At(1_000_000_000)
        );
        assert_eq!(
            parse("1970-01-01T01:00:01+01:00").unwrap(),
            TimeSpec::At(1_000_000_000)
        );
        assert_eq!(parse("latest").unwrap(), TimeSpec::Latest);
        for bad in [
            "",
            "2026-13-01 00:00",
            "2026-02-30",
            "45m",
            "45 parsecs ago",
            "ago",
            "tomorrow",
            "yesterday 25:00",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_people_type() {
        let now = parse("2026-11-30 12:00:00").unwrap();
        let TimeSpec::At(now) = now else { panic!() };
        let at = |s: &str| match parse_at(s, now).unwrap() {
            TimeSpec::At(ns) => ns,
            TimeSpec::Latest => panic!("{s}"),
        };
        const MIN: i64 = 60_000_000_000;
        assert_eq!(at("now"), now);
        for s in [
            "45m ago",
            "45 min ago",
            "45 minutes ago",
            "-45m",
            " 45M AGO ",
        ] {
            assert_eq!(at(s), now - 45 * MIN, "{s}");
        }
        for s in [
            "2 hours ago",
            "2h ago",
            "1h 60m ago",
            "1h60m ago",
            "-2h",
            "120m ago",
        ] {
            assert_eq!(at(s), now - 120 * MIN, "{s}");
        }
        assert_eq!(at("3 days ago"), now - 3 * 24 * 60 * MIN);
        let day_end = |d: &str| at(&format!("{d} 23:59:59.999999999"));
        assert_eq!(at("today"), day_end("2026-11-30"));
        assert_eq!(at("yesterday"), day_end("2026-11-29"));
        assert_eq!(at("2026-11-30"), day_end("2026-11-30"));
        assert_eq!(at("yesterday 17:00"), at("2026-11-29 17:00"));
        assert_eq!(at("Today 09:30:15"), at("2026-11-30 09:30:15"));
    }

    fn naive(t: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M").unwrap()
    }

    fn fixed(t: &str, offset_h: i32) -> DateTime<FixedOffset> {
        FixedOffset::east_opt(offset_h * 3600)
            .unwrap()
            .from_local_datetime(&naive(t))
            .unwrap()
    }

    #[test]
    fn resolve_local_orders_and_filters_candidates() {
        let cest = FixedOffset::east_opt(2 * 3600).unwrap();
        let cet = FixedOffset::east_opt(3600).unwrap();
        let a = |t| fixed(t, 2); // summer time, the earlier pass
        let b = |t| fixed(t, 1); // winter time, the later pass
        let cases: Vec<(&str, LocalResult<DateTime<FixedOffset>>, LocalTime)> = vec![
            (
                "2026-07-01 12:00",
                LocalResult::Single(a("2026-07-01 12:00")),
                LocalTime::Single(a("2026-07-01 12:00")),
            ),
            // The repeated hour, in either order (chrono's Local puts the
            // smaller offset, the later instant, first).
            (
                "2026-10-25 02:30",
                LocalResult::Ambiguous(b("2026-10-25 02:30"), a("2026-10-25 02:30")),
                LocalTime::Ambiguous(a("2026-10-25 02:30"), b("2026-10-25 02:30")),
            ),
            (
                "2026-10-25 02:30",
                LocalResult::Ambiguous(a("2026-10-25 02:30"), b("2026-10-25 02:30")),
                LocalTime::Ambiguous(a("2026-10-25 02:30"), b("2026-10-25 02:30")),
            ),
            // A candidate that does not show the wall-clock time asked for
            // (the instant of the change itself) is dropped.
            (
                "2026-10-25 03:00",
                LocalResult::Ambiguous(
                    b("2026-10-25 03:00"),
                    a("2026-10-25 03:00").with_timezone(&cet),
                ),
                LocalTime::Single(b("2026-10-25 03:00")),
            ),
            // Two candidates naming one instant are one.
            (
                "2026-10-25 02:30",
                LocalResult::Ambiguous(a("2026-10-25 02:30"), a("2026-10-25 02:30")),
                LocalTime::Single(a("2026-10-25 02:30")),
            ),
            // The skipped hour: offsets from two hours either side.
            (
                "2026-03-29 02:30",
                LocalResult::None,
                LocalTime::Skipped(cet, cest),
            ),
            // chrono maps the first skipped minute to the instant of the
            // change (01:00Z, which the wall clock shows as 03:00).
            (
                "2026-03-29 02:00",
                LocalResult::Single(b("2026-03-29 02:00")),
                LocalTime::Skipped(cet, cest),
            ),
        ];
        // Berlin in 2026: summer time from 03-29 01:00Z to 10-25 01:00Z.
        let offset_at = |utc: DateTime<Utc>| {
            let summer = naive("2026-03-29 01:00").and_utc()..naive("2026-10-25 01:00").and_utc();
            if summer.contains(&utc) {
                cest
            } else {
                cet
            }
        };
        let offset_near = |n: &NaiveDateTime| {
            Some(
                if *n < naive("2026-03-29 02:00") || *n >= naive("2026-10-25 03:00") {
                    cet
                } else {
                    cest
                },
            )
        };
        let zone = Zone {
            offset_at: &offset_at,
            offset_near: &offset_near,
        };
        for (t, candidates, want) in cases {
            assert_eq!(resolve_local(&naive(t), candidates, &zone), want, "{t}");
        }
    }

    /// `list --since`: a day alone is its first instant; other forms are
    /// as for `--at`.
    #[test]
    fn since_takes_a_day_alone_from_its_start() {
        let now = match parse("2026-07-15 12:00").unwrap() {
            TimeSpec::At(ns) => ns,
            TimeSpec::Latest => unreachable!(),
        };
        let at = |s: &str| parse_at(s, now).unwrap();
        let since = |s: &str| parse_since_at(s, now).unwrap();
        assert_eq!(since("2026-07-01"), at("2026-07-01 00:00"));
        assert_eq!(since(" today "), at("2026-07-15 00:00"));
        assert_eq!(since("yesterday"), at("2026-07-14 00:00"));
        for same in [
            "yesterday 17:00",
            "2026-07-01 10:00",
            "45m ago",
            "latest",
            "now",
        ] {
            assert_eq!(since(same), at(same), "{same}");
        }
        assert!(parse_since_at("the day before", now).is_err());
    }

    #[test]
    fn future_times_beyond_the_skew_are_refused() {
        const S: i64 = 1_000_000_000;
        let now = 1_800_000_000 * S;
        for (t, ok) in [
            (now - 365 * 86_400 * S, true),
            (now, true),
            (now + MAX_FUTURE_SKEW_NS, true),
            (now + MAX_FUTURE_SKEW_NS + 1, false),
            (now + 86_400 * S, false),
            (i64::MAX, false),
        ] {
            assert_eq!(!too_far_ahead(t, now), ok, "{t}");
        }
    }
}
