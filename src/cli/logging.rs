//! Diagnostics on stderr through `tracing`: warnings by default, `-v` for
//! info → debug → trace, `-q` for errors only. Results stay on stdout.
//!
//! One line per event, `wsnap: LEVEL: message`. When stderr is not a
//! terminal (cron appends it to a log file) each line starts with the local
//! time and the pid, so overlapping runs can be told apart:
//! `2026-11-27T03:05:00.012+01:00 wsnap[4242]: warning: …`.
//! Lines are written around a progress bar, never through it.

use std::fmt;
use std::io::{self, IsTerminal, Write};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// The most detailed level shown for `-v` given `verbose` times (or `-q`).
pub fn level(verbose: u8, quiet: bool) -> Level {
    match (quiet, verbose) {
        (true, _) => Level::ERROR,
        (false, 0) => Level::WARN,
        (false, 1) => Level::INFO,
        (false, 2) => Level::DEBUG,
        (false, _) => Level::TRACE,
    }
}

/// Install the stderr logger for the rest of the process.
pub fn init(verbose: u8, quiet: bool) {
    let format = LineFormat {
        timestamps: !io::stderr().is_terminal(),
        pid: std::process::id(),
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level(verbose, quiet))
        .with_writer(Stderr)
        .event_format(format)
        .try_init();
}

struct LineFormat {
    timestamps: bool,
    pid: u32,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if self.timestamps {
            let now = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
            write!(w, "{now} wsnap[{}]: ", self.pid)?;
        } else {
            write!(w, "wsnap: ")?;
        }
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(w, "{level}: ")?;
        ctx.format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// stderr, written with any progress bar hidden for the moment.
struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Stderr;
    fn make_writer(&'a self) -> Stderr {
        Stderr
    }
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // The fmt layer hands over each formatted line in one call.
        super::progress::suspended(|| io::stderr().lock().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}
