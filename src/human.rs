//! Sizes, durations and times as people read them (`1.5 KiB`, `2h 5m`,
//! `2026-11-27 03:05:00`): the one formatter for the library's messages
//! (`status`, errors) and every command's output.

use chrono::{Local, TimeZone};

/// `1.5 KiB`-style sizes, as every command prints them.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// `2h 5m`-style durations, to the second.
pub fn duration(ns: i64) -> String {
    let secs = (ns.max(0) / 1_000_000_000) as u64;
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

/// `YYYY-mm-dd HH:MM:SS` in local time, from nanoseconds since the epoch.
pub fn local_time(ns: i64) -> String {
    Local
        .timestamp_nanos(ns)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(5 << 30), "5.0 GiB");
        assert_eq!(duration(-1), "0s");
        assert_eq!(duration(7_500_000_000_000), "2h 5m");
    }
}
