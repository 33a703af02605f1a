//! The old rsync script's backup directories,
//! `<user>_<project>_<YYYYmmdd_HHMMSS>/`: how their names are read.
//!
//! `import` turns them into snapshots; `store` recognises a directory of
//! them where a store was expected (the default store path held the old
//! copies) and says how to import them instead of only refusing.

use crate::error::Error;
use crate::timespec::{self, TimeSpec};

/// How the time part of a name is written.
pub const TIME_FORMAT: &str = "YYYYmmdd_HHMMSS";

/// Split `<prefix>_<YYYYmmdd>_<HHMMSS>` into the prefix and the time text
/// (14 digits around a `_`; whether they make a date is `parse_time`'s
/// question).
pub fn split_name(name: &[u8]) -> Option<(&[u8], &str)> {
    let ts_len = TIME_FORMAT.len();
    if name.len() < ts_len + 2 || name[name.len() - ts_len - 1] != b'_' {
        return None;
    }
    let (prefix, ts) = (
        &name[..name.len() - ts_len - 1],
        &name[name.len() - ts_len..],
    );
    let ok = ts.iter().enumerate().all(|(i, &c)| {
        if i == 8 {
            c == b'_'
        } else {
            c.is_ascii_digit()
        }
    });
    if !ok || prefix.is_empty() {
        return None;
    }
    Some((prefix, std::str::from_utf8(ts).expect("ascii")))
}

/// The local time a name's `YYYYmmdd_HHMMSS` part (from [`split_name`])
/// stands for, in ns since the epoch; or why it is no time at all, naming
/// the part that is wrong (`month 13 is not 01..12`).
pub fn parse_time(ts: &str) -> Result<i64, String> {
    let num = |range: std::ops::Range<usize>| -> u32 {
        ts.get(range)
            .and_then(|s| s.parse().ok())
            .unwrap_or(u32::MAX)
    };
    let (year, month, day) = (num(0..4) as i32, num(4..6), num(6..8));
    let (hour, minute, second) = (num(9..11), num(11..13), num(13..15));
    let wrong = |what: &str, value: u32, allowed: &str| {
        Err(format!(
            "expected {TIME_FORMAT}, but {what} {value:02} in {ts} is not {allowed}"
        ))
    };
    if !(1..=12).contains(&month) {
        return wrong("month", month, "01..12");
    }
    let days = days_in_month(year, month);
    if !(1..=days).contains(&day) {
        return wrong("day", day, &format!("01..{days} (of {year}-{month:02})"));
    }
    if hour > 23 {
        return wrong("hour", hour, "00..23");
    }
    if minute > 59 {
        return wrong("minute", minute, "00..59");
    }
    if second > 59 {
        return wrong("second", second, "00..59");
    }
    match timespec::parse(ts) {
        Ok(TimeSpec::At(t)) => Ok(t),
        Ok(TimeSpec::Latest) => unreachable!("digits are never 'latest'"),
        // A valid date and time that the local zone skipped (DST).
        Err(Error::Invalid { detail, .. }) => Err(detail),
        Err(e) => Err(e.to_string()),
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_at_the_timestamp() {
        assert_eq!(
            split_name(b"a_b_c_20260102_030405"),
            Some((&b"a_b_c"[..], "20260102_030405"))
        );
        for bad in [
            &b"ab_20260102_030405x"[..],
            b"_20260102_030405",
            b"a_b_2026010_030405",
            b"a_b_20260102-030405",
            b"20260102_030405",
        ] {
            assert_eq!(split_name(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn impossible_times_name_the_wrong_part() {
        assert!(parse_time("20260102_030405").is_ok());
        assert!(parse_time("20240229_000000").is_ok(), "a leap day");
        for (ts, why) in [
            (
                "20261301_120000",
                "expected YYYYmmdd_HHMMSS, but month 13 in 20261301_120000 is not 01..12",
            ),
            ("20260001_120000", "month 00 in"),
            (
                "20260230_120000",
                "day 30 in 20260230_120000 is not 01..28 (of 2026-02)",
            ),
            ("21000229_120000", "day 29 in 21000229_120000 is not 01..28"),
            ("20260100_120000", "day 00"),
            ("20260101_240000", "hour 24"),
            ("20260101_126000", "minute 60"),
            ("20260101_120060", "second 60"),
        ] {
            let got = parse_time(ts).unwrap_err();
            assert!(got.contains(why), "{ts}: {got}");
            assert!(!got.contains("RFC 3339"), "{ts}: {got}");
        }
    }
}
