//! Parsing and printing snapshot times.
//!
//! Accepted: `latest`, RFC 3339 (`2026-11-26T10:00:00Z`, with offset), and in
//! local time `YYYY-mm-dd HH:MM[:SS]` (also with `T`), and the old backup
//! names' `YYYYmmdd_HHMMSS`. Times are nanoseconds since the Unix epoch.

use chrono::{DateTime, Local, LocalResult, NaiveDateTime, TimeZone, Utc};

use crate::error::{Error, Result};

/// A point in time chosen by the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSpec {
    Latest,
    At(i64),
}

const LOCAL_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y%m%d_%H%M%S",
];

/// Parse a TIME argument.
pub fn parse(s: &str) -> Result<TimeSpec> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("latest") {
        return Ok(TimeSpec::Latest);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return to_ns(dt.with_timezone(&Utc), s).map(TimeSpec::At);
    }
    for f in LOCAL_FORMATS {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, f) {
            let local = match Local.from_local_datetime(&naive) {
                LocalResult::Single(dt) => dt,
                // A repeated hour at a DST change: take the earlier instant.
                LocalResult::Ambiguous(a, _) => a,
                LocalResult::None => {
                    return Err(Error::invalid(
                        "time",
                        format!("{s:?} does not exist in local time (DST change)"),
                    ))
                }
            };
            return to_ns(local.with_timezone(&Utc), s).map(TimeSpec::At);
        }
    }
    Err(Error::invalid(
        "time",
        format!(
            "{s:?}: use 'YYYY-mm-dd HH:MM[:SS]' (local), RFC 3339 \
             ('2026-11-26T10:00:00Z'), 'YYYYmmdd_HHMMSS' or 'latest'"
        ),
    ))
}

fn to_ns(dt: DateTime<Utc>, s: &str) -> Result<i64> {
    dt.timestamp_nanos_opt()
        .ok_or_else(|| Error::invalid("time", format!("{s:?} is out of range")))
}

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// `YYYY-mm-dd HH:MM:SS` in local time.
pub fn format_local(ns: i64) -> String {
    Local
        .timestamp_nanos(ns)
        .format("%Y-%m-%d %H:%M:%S")
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
        for bad in ["", "yesterday", "2026-13-01 00:00", "2026-01-01"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
