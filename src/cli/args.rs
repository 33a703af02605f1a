//! Command-line flags and environment, turned into library options here and
//! nowhere else.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::flags::{RetentionArgs, SnapshotArgs, Which};
use super::output::JSON_HELP;

use wsnap::{Error, Result, WorkspaceName};

/// `wsnap --version`: the package version and the commit built from
/// (`build.rs`), e.g. `0.1.0 (commit 9119759, dirty)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("WSNAP_COMMIT"),
    ")"
);

#[derive(Parser, Debug)]
#[command(
    name = "wsnap",
    version = VERSION,
    about = "Deduplicating snapshots of research workspaces (<root>/<user>/<project>/)",
    after_help = super::output::exit::help()
)]
pub struct Cli {
    /// Store directory
    #[arg(
        long,
        global = true,
        env = "SCITEX_BACKUP_ROOT",
        default_value = "/app/backups/snapshots"
    )]
    pub store: PathBuf,

    /// More log detail on stderr: -v info, -vv debug, -vvv trace
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Log errors only (no warnings) on stderr; results still go to stdout
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// UNSAFE: use a store on a network or FUSE file system (NFS, SMB/CIFS,
    /// FUSE, 9p, Ceph…), where locks and the catalog's WAL may silently fail
    #[arg(
        long,
        global = true,
        env = "WSNAP_UNSAFE_ALLOW_NETWORK_FS",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::SetTrue
    )]
    pub unsafe_allow_network_fs: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create an empty store (idempotent)
    Init {
        /// zstd level for the blobs of this store (1 fastest … 19 smallest).
        /// On 32 KiB chunks level 1 stores ~0.5 % more than level 3 for
        /// ~30 % less CPU (docs/BENCHMARKS.md); an existing store keeps its
        /// level
        #[arg(long, value_name = "LEVEL", default_value_t = wsnap::StoreParams::DEFAULT.zstd_level,
              value_parser = clap::value_parser!(i32).range(1..=19))]
        compression_level: i32,
        /// Chunk sizes for large files, fixed for the store: `none` cuts
        /// every file into 32 KiB-average chunks (as stores made before
        /// catalog version 4 do); else tiers as docs/FORMAT.md writes them,
        /// `1:<from bytes>=<min>/<avg>/<max>[,…]`. Default: files of
        /// 256 MiB or more get 256 KiB-average chunks, of 4 GiB or more
        /// 1 MiB-average ones. An existing store keeps its tiers (or none)
        #[arg(long, value_name = "TIERS", hide_default_value = true,
              default_value_t = wsnap::chunker::LargeFileTiers::DEFAULT.encode())]
        chunk_tiers: String,
    },
    /// Snapshot every workspace under the root (or the ones named)
    Snapshot(SnapshotArgs),
    /// List snapshots: id, time, files, size, bytes added
    #[command(
        long_about = "List snapshots: id, time, files, size, bytes added; by user, project, \
                      then time.\n\n\
                      A USER alone lists every project of that user; USER/PROJECT one \
                      workspace. A user or workspace with no snapshot in the store is an \
                      error (exit 2); one whose snapshots all fall outside --since/--until \
                      lists nothing (exit 0). --since and --until take the TIME forms of \
                      `ls --at` and both include their bound; a day alone ('2026-11-30', \
                      'today', 'yesterday') is its start for --since and its end for \
                      --until, so `--since yesterday --until yesterday` is all of \
                      yesterday. --last N keeps the N newest of each workspace within \
                      those bounds."
    )]
    List {
        /// Only this user's projects (USER) or this workspace (USER/PROJECT)
        #[arg(value_name = "USER | USER/PROJECT")]
        workspace: Option<OsString>,
        /// Only snapshots taken at or after TIME (TIME as for `ls --at`; a day
        /// alone means its start)
        #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
        since: Option<String>,
        /// Only snapshots taken at or before TIME (a day alone means its end)
        #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
        until: Option<String>,
        /// Only the N newest snapshots of each workspace (within --since/--until)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        last: Option<u64>,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// List the entries of a directory (or the root) of a snapshot
    Ls {
        /// USER/PROJECT
        workspace: OsString,
        #[command(flatten)]
        which: Which,
        /// Directory or file inside the snapshot
        path: Option<OsString>,
        /// List the whole subtree (paths relative to PATH)
        #[arg(short = 'R', long)]
        recursive: bool,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Write one file of a snapshot to stdout, verified (for `| grep`, `| less`)
    Cat(super::browse::CatArgs),
    /// Paths matching a glob in one snapshot (default: the latest), or with
    /// --all in every snapshot that has one
    Find(super::browse::FindArgs),
    /// Mount the snapshots read-only as directories (FUSE): snapshots/ with the
    /// old rsync names, workspaces/USER/PROJECT/TIME/ with a `latest` link
    Mount(super::mount::MountArgs),
    /// Unmount a `wsnap mount` (as `fusermount3 -u` does)
    Umount {
        /// Where it is mounted
        mountpoint: PathBuf,
    },
    /// Forget snapshots by retention policy (per workspace), then collect garbage
    Prune {
        /// Only this workspace (USER/PROJECT); repeatable
        #[arg(long = "workspace", value_name = "USER/PROJECT")]
        workspaces: Vec<OsString>,
        #[command(flatten)]
        retention: RetentionArgs,
        /// Show what would be forgotten and the bytes it would free; change nothing
        #[arg(long)]
        dry_run: bool,
        /// Wait this long for another run's lock, then exit 75
        #[arg(long, default_value = "0s")]
        lock_wait: String,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Forget exactly these snapshots and purge their unique data from disk
    Forget {
        /// Snapshot id or unique prefix; repeatable
        #[arg(long = "snapshot", value_name = "ID", required = true)]
        snapshots: Vec<String>,
        /// Show what would be forgotten and the bytes it would free; change nothing
        #[arg(long)]
        dry_run: bool,
        /// Wait this long for another run's lock, then exit 75
        #[arg(long, default_value = "0s")]
        lock_wait: String,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Take paths out of stored snapshots (a leaked secret): each snapshot
    /// that has one gets a new id, the same time and everything else, and
    /// the removed data is purged from disk as `forget` does
    Rewrite(super::rewrite::RewriteArgs),
    /// Rebuild the catalog from the packs and journals (catalog lost or damaged)
    Repair {
        /// Wait this long for another run's lock, then exit 75
        #[arg(long, default_value = "0s")]
        lock_wait: String,
        /// Rebuild even where nothing looks like a wsnap store (no catalog,
        /// no file with a wsnap pack or journal header)
        #[arg(long)]
        force: bool,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Verify the store: catalog against packs; with --read-data every blob.
    /// With --remote NAME: the remote's copy instead
    Check {
        /// Read every pack whole, decompress and re-hash every blob
        #[arg(long)]
        read_data: bool,
        /// Check remote NAME's copy: every object its newest pointer and
        /// catalog image reference exists (with --read-data: is downloaded
        /// and verified)
        #[arg(long, value_name = "NAME")]
        remote: Option<String>,
        /// With --remote --read-data: read only this percentage of the
        /// packs, chosen at random
        #[arg(
            long,
            value_name = "PERCENT",
            requires = "read_data",
            requires = "remote"
        )]
        subset: Option<f64>,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Off-site copies: add, list or remove a remote
    Remote {
        #[command(subcommand)]
        action: RemoteAction,
    },
    /// Upload what remote NAME lacks (packs, journals), then the catalog
    /// image and the pointer to it; delete what no longer counts after the
    /// grace period (NAME may be left out when there is one remote)
    Push {
        /// The remote (see `wsnap remote list`)
        name: Option<String>,
        /// Wait this long for the writer lock (held only while the catalog
        /// image is taken), then exit 75
        #[arg(long, default_value = "10m")]
        lock_wait: String,
        /// Push even if the remote holds another store's copy (its objects
        /// are then deleted after the grace period)
        #[arg(long)]
        force: bool,
        /// Grace period before unreferenced objects are deleted (tests)
        #[arg(long, hide = true, env = "WSNAP_REMOTE_GRACE")]
        grace: Option<String>,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Make a complete local store from remote NAME, in an empty or absent
    /// --store directory (which may hold the remote's configuration)
    Pull {
        /// The remote (see `wsnap remote list`)
        name: String,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Restore a snapshot (or a path in it) into a directory
    Restore {
        /// USER/PROJECT
        workspace: OsString,
        #[command(flatten)]
        which: Which,
        /// Target directory: absent or empty unless --overwrite
        #[arg(long)]
        to: PathBuf,
        /// Restore only this path (created inside the target under its name)
        #[arg(long)]
        path: Option<OsString>,
        /// Restore into a non-empty target, replacing conflicting entries
        #[arg(long)]
        overwrite: bool,
        /// Restore from remote NAME alone (its newest catalog image and the
        /// packs this restore needs, fetched into STORE/cache/NAME/)
        #[arg(long, value_name = "NAME")]
        remote: Option<String>,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Monitoring check: last run, stale or missing workspaces, store size,
    /// free space. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (Nagios)
    Status {
        /// Workspace root holding <user>/<project>/ directories
        #[arg(long, env = "SCITEX_WORKSPACE_ROOT", default_value = "/app/data/users")]
        root: PathBuf,
        /// A workspace's newest snapshot may be this old (and the last run
        /// must have finished this recently)
        #[arg(long, value_name = "DURATION", default_value = "15m")]
        max_age: String,
        /// CRITICAL below this much free space on the store's file system
        /// (10%, 5GiB, 500M)
        #[arg(long, value_name = "SIZE|PERCENT", default_value = "10%")]
        min_free: String,
        /// Also write the figures atomically to FILE in the Prometheus text
        /// format (node_exporter textfile collector)
        #[arg(long, value_name = "FILE")]
        prometheus: Option<PathBuf>,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Logical vs stored size, dedup and compression ratios, and the bytes
    /// only each workspace (or user) references
    #[command(long_about = STATS_LONG_ABOUT)]
    Stats {
        /// Only this workspace (USER/PROJECT) in the per-workspace list; with
        /// --by-user, only this USER in the per-user list
        #[arg(value_name = "USER/PROJECT | USER")]
        workspace: Option<OsString>,
        /// One line per user instead of per workspace: what the user's
        /// projects store together and what only that user references
        #[arg(long)]
        by_user: bool,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Files added, removed, modified, and mode or type changes between two
    /// snapshots
    Diff {
        /// USER/PROJECT
        workspace: OsString,
        /// Snapshot id (prefix) or TIME (as --at: newest at or before)
        from: String,
        /// Snapshot id (prefix) or TIME
        to: String,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Every snapshot in which PATH changed (content, mode, appeared,
    /// disappeared), oldest first
    Log {
        /// USER/PROJECT
        workspace: OsString,
        /// File or directory inside the workspace
        path: OsString,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Serve a read-only admin web page: dashboard, workspaces, browse,
    /// downloads (loopback by default; a token file for anything else)
    Serve(super::serve::ServeArgs),
    /// Import old rsync backups (<user>_<project>_<YYYYmmdd_HHMMSS>/) as snapshots
    ImportRsync(ImportArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
    /// Print the man page wsnap(1) (roff), or with --dir write it and one
    /// page per command (wsnap-restore(1), …) into DIR
    #[command(alias = "man-page")]
    Man {
        /// Write wsnap.1 and every wsnap-COMMAND.1 into DIR (created if absent)
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `stats --help`: what every column means (also README and docs/JSON.md).
const STATS_LONG_ABOUT: &str = "\
Logical vs stored size, dedup and compression ratios, and the bytes only each \
workspace (or, with --by-user, each user) references. Every figure comes from \
the catalog; no pack is read.

Sizes of stored data are pack record bytes: the stored (compressed) payload \
plus its 48-byte record header, each blob counted once however many snapshots \
reference it. A blob is a content chunk or metadata (a directory listing or a \
chunk list).

Per workspace (default):
  SNAPSHOTS    snapshots of the workspace
  LATEST       logical size (sum of file sizes) of its newest snapshot
  UNIQUE       stored bytes of every blob reachable from its snapshots and \
from no other workspace's: what forgetting all of its snapshots would free
  UNIQUE DATA  the file-content part of UNIQUE (directory listings differ \
between workspaces even when their files are identical, since they record \
inodes and times)

Per user (--by-user):
  PROJECTS     the user's workspaces with snapshots
  SNAPSHOTS    snapshots of those workspaces
  LATEST       logical size of the newest snapshot of each project, summed
  STORED       stored bytes of every blob reachable from any of the user's \
snapshots, counted once even when several of the user's projects share it \
(also when other users share it)
  UNIQUE       the part of STORED that no other user's snapshot reaches: what \
forgetting every snapshot of the user would free. Data shared between one \
user's projects is unique to that user; data shared with another user is in \
both users' STORED and in neither's UNIQUE
  UNIQUE DATA  the file-content part of UNIQUE

The sum of UNIQUE over all workspaces (or users) plus the data they share \
is the referenced size; pack bytes beyond it are unreferenced data (removed \
by the next prune) and pack headers.";

/// `wsnap remote …`.
#[derive(Subcommand, Debug)]
pub enum RemoteAction {
    /// Configure remote NAME for this store (s3://BUCKET[/PREFIX] or
    /// file:///PATH) and check it can be reached with its key. Credentials
    /// come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
    /// (/ AWS_SESSION_TOKEN); when set here they are saved, 0600, in
    /// STORE/remotes/NAME.credentials for cron
    Add {
        /// A name for the remote in this store (letters, digits, '-', '_')
        name: String,
        /// Where: s3://BUCKET[/PREFIX] or file:///PATH
        url: String,
        /// S3 endpoint of a server other than AWS (http://HOST:PORT allows
        /// plain HTTP; path-style requests)
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// S3 region (default us-east-1; Garage: its s3_region, e.g. garage)
        #[arg(long, value_name = "R")]
        region: Option<String>,
        /// The remote's key file (64 hex digits, 0600). Without the key the
        /// remote is unreadable: keep a copy off this server
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// Make a new random key (into --key-file, or STORE/remotes/NAME.key)
        #[arg(long)]
        generate_key: bool,
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// The remotes of this store, with their last push
    List {
        #[arg(long, help = JSON_HELP)]
        json: bool,
    },
    /// Forget remote NAME here (its data on the remote and its key file stay)
    Remove {
        /// The remote (see `wsnap remote list`)
        name: String,
    },
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Directory holding the old <user>_<project>_<YYYYmmdd_HHMMSS>/ backups
    pub old_backup_root: PathBuf,
    /// Workspace root: its <user>/<project>/ directories decide how names with
    /// '_' split
    #[arg(long, env = "SCITEX_WORKSPACE_ROOT", default_value = "/app/data/users")]
    pub root: PathBuf,
    /// Take PREFIX (the backup name without its _YYYYmmdd_HHMMSS) as
    /// USER/PROJECT; for names that stay ambiguous; repeatable. PREFIX must
    /// be a backup's, and USER/PROJECT one of its splits (a_b_c: a/b_c or
    /// a_b/c) or a workspace that exists (under --root or in the store)
    #[arg(long = "map", value_name = "PREFIX=USER/PROJECT")]
    pub maps: Vec<OsString>,
    /// Mark the entries named NAME, or matching GLOB, as handled without
    /// importing them (e.g. a directory whose date cannot be, month 13);
    /// repeatable
    #[arg(long = "skip", value_name = "NAME|GLOB")]
    pub skips: Vec<String>,
    /// Print the plan (directory -> workspace @ time); write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Wait this long for another run's lock (e.g. 10m), then exit 75
    #[arg(long, default_value = "0s")]
    pub lock_wait: String,
    #[arg(long, help = JSON_HELP)]
    pub json: bool,
}

impl ImportArgs {
    /// The `--map` options as prefix bytes → workspace.
    pub fn mappings(&self) -> Result<std::collections::BTreeMap<Vec<u8>, WorkspaceName>> {
        let mut out = std::collections::BTreeMap::new();
        for m in &self.maps {
            let b = m.as_bytes();
            let Some(eq) = b.iter().rposition(|&c| c == b'=') else {
                return Err(Error::Invalid {
                    what: "--map",
                    detail: format!(
                        "{:?}: expected PREFIX=USER/PROJECT",
                        wsnap::escape::Escaped(b)
                    ),
                });
            };
            let ws = WorkspaceName::parse(std::ffi::OsStr::from_bytes(&b[eq + 1..]))?;
            out.insert(b[..eq].to_vec(), ws);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every flag and argument of every command says what it is for in
    /// `--help` (issue 17: `--json` had no text in any command).
    #[test]
    fn every_argument_of_every_command_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>, seen: &mut usize) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if a.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                *seen += 1;
                let text = a.get_help().or(a.get_long_help()).map(|h| h.to_string());
                if text.is_none_or(|t| t.trim().is_empty()) {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {} (no about)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing, seen);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        cmd.clone().debug_assert();
        let (mut missing, mut seen) = (Vec::new(), 0);
        walk(&cmd, "wsnap", &mut missing, &mut seen);
        assert!(missing.is_empty(), "without help text: {missing:#?}");
        assert!(seen > 80, "only {seen} arguments walked");
    }

    /// The `--json` of every command that has one reads the same.
    #[test]
    fn every_json_flag_has_the_same_help() {
        fn walk(cmd: &clap::Command, count: &mut usize) {
            for a in cmd.get_arguments() {
                if a.get_id() == "json" {
                    *count += 1;
                    let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                    assert_eq!(help, super::JSON_HELP, "{}", cmd.get_name());
                }
            }
            cmd.get_subcommands().for_each(|s| walk(s, count));
        }
        let mut count = 0;
        walk(&Cli::command(), &mut count);
        assert!(count >= 18, "{count} --json flags");
    }
}
