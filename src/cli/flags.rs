//! Option groups and value parsers the commands share: which snapshot
//! (`--at`/`--snapshot`), snapshot and retention options, workspace names,
//! durations, sizes. The command tree itself is in `args.rs`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use wsnap::select::Selector;
use wsnap::status::MinFree;
use wsnap::{timespec, Error, Result, WorkspaceName};

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    /// Workspace root holding <user>/<project>/ directories
    #[arg(long, env = "SCITEX_WORKSPACE_ROOT", default_value = "/app/data/users")]
    pub root: PathBuf,
    /// Only this workspace (USER/PROJECT); repeatable
    #[arg(long = "workspace", value_name = "USER/PROJECT")]
    pub workspaces: Vec<OsString>,
    /// Extra exclude pattern (gitignore syntax); repeatable
    #[arg(long = "exclude", value_name = "PATTERN")]
    pub excludes: Vec<String>,
    /// Record this snapshot time instead of now (see TIME formats in `ls --help`);
    /// at most 5 minutes in the future unless --allow-future-time
    #[arg(long)]
    pub time: Option<String>,
    /// Accept a --time more than 5 minutes in the future (imports, tests): such
    /// a snapshot is every later `--at latest` until real time passes it
    #[arg(long, requires = "time")]
    pub allow_future_time: bool,
    /// Wait this long for another run's lock (e.g. 30s, 5m), then exit 75
    #[arg(long, default_value = "0s")]
    pub lock_wait: String,
    /// Read every file again, ignoring the stat cache for this run (stores
    /// again what the store lost or found damaged, while the files exist)
    #[arg(long)]
    pub reread: bool,
    /// After a successful snapshot, apply retention (see the keep flags) in
    /// the same run and lock
    #[arg(long)]
    pub prune: bool,
    /// Then push to remote NAME (or the only remote), as `wsnap push`: a
    /// failed push makes the run exit non-zero, the snapshot stays
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    pub push: Option<String>,
    #[command(flatten)]
    pub retention: RetentionArgs,
    #[arg(long, help = super::output::JSON_HELP)]
    pub json: bool,
}

/// Retention flags. With none given: keep-last $SCITEX_MAX_SNAPSHOTS, else 288.
#[derive(Args, Debug)]
pub struct RetentionArgs {
    /// Keep the N newest snapshots of each workspace
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u64>,
    /// Keep snapshots taken within DURATION before now (e.g. 24h, 7d; a unit
    /// is required)
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<String>,
    /// Keep the newest snapshot of each of the last N hours
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u64>,
    /// … of each of the last N days
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u64>,
    /// … of each of the last N ISO weeks
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u64>,
    /// … of each of the last N months
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u64>,
    /// Rewrite packs whose unused share exceeds PERCENT
    #[arg(long, value_name = "PERCENT", default_value_t = wsnap::gc::DEFAULT_MAX_UNUSED_PERCENT)]
    pub max_unused: f64,
}

impl RetentionArgs {
    pub fn options(&self, workspaces: Vec<WorkspaceName>) -> Result<wsnap::gc::PruneOptions> {
        let within_ns = match &self.keep_within {
            None => None,
            Some(d) => Some(i64::try_from(parse_keep_within(d)?.as_nanos()).unwrap_or(i64::MAX)),
        };
        for (flag, n) in [
            ("--keep-last", self.keep_last),
            ("--keep-hourly", self.keep_hourly),
            ("--keep-daily", self.keep_daily),
            ("--keep-weekly", self.keep_weekly),
            ("--keep-monthly", self.keep_monthly),
        ] {
            if n == Some(0) {
                return Err(Error::Invalid {
                    what: flag,
                    detail: "0 is not a count: give N of at least 1 (the newest snapshot \
                             of each workspace is always kept; to drop particular snapshots \
                             use `wsnap forget --snapshot ID`)"
                        .into(),
                });
            }
        }
        let mut policy = wsnap::retention::KeepPolicy {
            last: self.keep_last,
            within_ns,
            hourly: self.keep_hourly,
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
        };
        if policy.is_empty() {
            policy.last = Some(match std::env::var("SCITEX_MAX_SNAPSHOTS") {
                Ok(v) if !v.trim().is_empty() => match v.trim().parse::<u64>() {
                    Ok(0) => {
                        return Err(Error::Invalid {
                            what: "SCITEX_MAX_SNAPSHOTS",
                            detail: "0 would keep only the newest snapshot of each \
                                     workspace: set it to 1 or more, or unset it for 288"
                                .into(),
                        })
                    }
                    Ok(n) => n,
                    Err(_) => {
                        return Err(Error::Invalid {
                            what: "SCITEX_MAX_SNAPSHOTS",
                            detail: format!("{v:?} is not a whole number (e.g. 288)"),
                        })
                    }
                },
                _ => 288,
            });
        }
        if !(0.0..=100.0).contains(&self.max_unused) {
            return Err(Error::Invalid {
                what: "--max-unused",
                detail: format!("{} is not a percentage (0–100)", self.max_unused),
            });
        }
        Ok(wsnap::gc::PruneOptions {
            workspaces,
            policy,
            max_unused_percent: self.max_unused,
            held: Vec::new(),
        })
    }
}

/// Which snapshot: `--at TIME` or `--snapshot ID`.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct Which {
    /// Newest snapshot at or before TIME: 'YYYY-mm-dd HH:MM[:SS]' (local; in an
    /// hour repeated by DST the earlier pass, in a skipped hour an error), RFC
    /// 3339, YYYYmmdd_HHMMSS, '45m ago' / '-45m', 'now', a day alone
    /// ('2026-11-30', 'today', 'yesterday': its end), 'yesterday 17:00', or
    /// 'latest'
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub at: Option<String>,
    /// Snapshot id (or unique prefix of at least 4 hex digits)
    #[arg(long, value_name = "ID")]
    pub snapshot: Option<String>,
}

impl Which {
    /// The TIME or ID as given (for the resolved-snapshot note).
    pub fn given(&self) -> &str {
        self.at
            .as_deref()
            .or(self.snapshot.as_deref())
            .unwrap_or("")
    }

    pub fn selector(&self) -> Result<Selector> {
        match (&self.at, &self.snapshot) {
            (Some(t), _) => Ok(Selector::Time(timespec::parse(t)?)),
            (None, Some(id)) => Ok(Selector::Id(id.clone())),
            (None, None) => Err(Error::Invalid {
                what: "arguments",
                detail: "give --at TIME or --snapshot ID".into(),
            }),
        }
    }
}

pub fn workspace(s: &OsString) -> Result<WorkspaceName> {
    Ok(WorkspaceName::parse(s)?)
}

pub fn path_bytes(p: &Option<OsString>) -> Option<Vec<u8>> {
    p.as_ref().map(|p| p.as_bytes().to_vec())
}

impl SnapshotArgs {
    pub fn options(&self) -> Result<wsnap::snapshot::SnapshotOptions> {
        let time_ns = match &self.time {
            None => None,
            Some(t) => match timespec::parse(t)? {
                timespec::TimeSpec::At(ns) => {
                    if !self.allow_future_time {
                        check_not_future(ns, timespec::now_ns(), t)?;
                    }
                    Some(ns)
                }
                timespec::TimeSpec::Latest => {
                    return Err(Error::Invalid {
                        what: "time",
                        detail: "--time needs a point in time, not 'latest'".into(),
                    })
                }
            },
        };
        Ok(wsnap::snapshot::SnapshotOptions {
            root: self.root.clone(),
            workspaces: self
                .workspaces
                .iter()
                .map(workspace)
                .collect::<Result<_>>()?,
            excludes: self.excludes.clone(),
            time_ns,
            lock_wait: parse_duration(&self.lock_wait)?,
            reread: self.reread,
        })
    }
}

/// `--keep-within`: a duration with a unit (a bare `5` would be 5 seconds,
/// never what was meant) and not zero.
pub fn parse_keep_within(s: &str) -> Result<Duration> {
    let t = s.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(Error::Invalid {
            what: "--keep-within",
            detail: format!("{s:?} has no unit: write e.g. \"{t}h\" or \"{t}d\" (s, m, h, d, w)"),
        });
    }
    let d = humantime::parse_duration(t).map_err(|e| Error::Invalid {
        what: "--keep-within",
        detail: format!("{s:?}: {e} (e.g. 24h, 7d)"),
    })?;
    if d.is_zero() {
        return Err(Error::Invalid {
            what: "--keep-within",
            detail: format!(
                "{s:?} is empty: give a window such as 24h (the newest snapshot of each \
                 workspace is always kept)"
            ),
        });
    }
    Ok(d)
}

pub fn parse_duration(s: &str) -> Result<Duration> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(t).map_err(|e| Error::Invalid {
        what: "duration",
        detail: format!("{s:?}: {e} (e.g. 30s, 5m, 1h)"),
    })
}

/// Refuse a `--time` more than [`timespec::MAX_FUTURE_SKEW_NS`] after
/// `now_ns` (see [`timespec::too_far_ahead`]), naming the flag that
/// accepts it.
fn check_not_future(time_ns: i64, now_ns: i64, given: &str) -> Result<()> {
    if timespec::too_far_ahead(time_ns, now_ns) {
        return Err(Error::Invalid {
            what: "--time",
            detail: format!(
                "{given:?} ({}) is in the future (now is {}; at most {} min ahead is \
                 accepted for clock skew): it would become the workspace's latest \
                 snapshot; pass --allow-future-time if this is intended",
                timespec::format_rfc3339_secs(time_ns),
                timespec::format_rfc3339_secs(now_ns),
                timespec::MAX_FUTURE_SKEW_NS / 60_000_000_000
            ),
        });
    }
    Ok(())
}

/// `--min-free`: `10%`, `5GiB`, `500M`, `1024` (bytes). K/M/G/T and
/// KiB/MiB/GiB/TiB are powers of 1024; KB/MB/GB/TB powers of 1000.
pub fn parse_min_free(s: &str) -> Result<MinFree> {
    let t = s.trim();
    let bad = || Error::Invalid {
        what: "--min-free",
        detail: format!("{s:?}: give a percentage (10%) or a size (5GiB, 500M, 1024)"),
    };
    if let Some(p) = t.strip_suffix('%') {
        let v: f64 = p.trim().parse().map_err(|_| bad())?;
        if !(0.0..=100.0).contains(&v) {
            return Err(Error::Invalid {
                what: "--min-free",
                detail: format!("{s:?}: a percentage must be between 0 and 100"),
            });
        }
        return Ok(MinFree::Percent(v));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => return Err(bad()),
    };
    Ok(MinFree::Bytes((v * mult) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_free_syntax() {
        assert_eq!(parse_min_free("10%").unwrap(), MinFree::Percent(10.0));
        assert_eq!(parse_min_free("0").unwrap(), MinFree::Bytes(0));
        assert_eq!(parse_min_free("2K").unwrap(), MinFree::Bytes(2048));
        assert_eq!(
            parse_min_free("1.5GiB").unwrap(),
            MinFree::Bytes(1_610_612_736)
        );
        assert_eq!(parse_min_free("3 MB").unwrap(), MinFree::Bytes(3_000_000));
        for bad in ["", "%", "101%", "-1%", "ten", "5 parsecs"] {
            assert!(parse_min_free(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn future_times_beyond_the_skew_are_refused() {
        const S: i64 = 1_000_000_000;
        let now = 1_800_000_000 * S;
        for (t, ok) in [
            (now, true),
            (now + timespec::MAX_FUTURE_SKEW_NS, true),
            (now + timespec::MAX_FUTURE_SKEW_NS + 1, false),
            (i64::MAX, false),
        ] {
            let r = check_not_future(t, now, "t");
            assert_eq!(r.is_ok(), ok, "{t}: {r:?}");
            if let Err(e) = r {
                assert!(e.to_string().contains("--allow-future-time"), "{e}");
            }
        }
    }
}
