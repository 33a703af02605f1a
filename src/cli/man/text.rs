//! The prose of the man pages that clap does not hold: the main page's
//! description, the TIME syntax (as `wsnap::timespec` parses it; the unit
//! tests parse every form shown), the environment, the files the Debian
//! package installs, and each page's examples and related pages (the unit
//! tests parse every example as its page's command).

/// The main page's DESCRIPTION (a blank line starts a paragraph).
pub const MAIN_DESCRIPTION: &str = "\
wsnap keeps snapshots of every workspace $SCITEX_WORKSPACE_ROOT/USER/PROJECT/ \
(default /app/data/users) in one deduplicating store, $SCITEX_BACKUP_ROOT \
(default /app/backups/snapshots). Files are cut into content-defined chunks, \
named by their BLAKE3 hash, compressed with zstd and stored once, whichever \
workspace or snapshot holds them; an unchanged workspace costs one stat per \
file and adds nothing.

Scheduled every 5 minutes (cron or a systemd timer), wsnap snapshot --prune \
snapshots every workspace and keeps the last $SCITEX_MAX_SNAPSHOTS (default \
288) snapshots of each. An admin restores a workspace, or one path in it, as \
of a time (see TIME) into a directory, browses snapshots (ls, cat, find, \
mount), monitors the runs (status) and keeps an encrypted copy off the \
server (remote, push).

It runs as root over directories their users control: no symlink below a \
workspace or a restore target is ever followed. Each command has its own \
page, listed under COMMANDS.";

/// Where `TIME` is accepted.
pub const TIME_INTRO: &str = "Where a command takes a TIME (--at, snapshot --time, \
diff's FROM and TO), it is one of:";

/// Forms of TIME: examples (each parsed by the unit tests), meaning.
pub const TIME_FORMS: &[(&[&str], &str)] = &[
    (
        &[
            "2026-11-26 10:00",
            "2026-11-26 10:00:30",
            "2026-11-26T10:00",
        ],
        "local time: YYYY-mm-dd HH:MM[:SS], also with a T",
    ),
    (
        &["2026-11-26T10:00:00Z", "2026-11-26T11:00:00+01:00"],
        "RFC 3339, with its offset",
    ),
    (
        &["20261126_100000"],
        "the old rsync backups' names: YYYYmmdd_HHMMSS, local time",
    ),
    (&["latest"], "the newest snapshot"),
    (&["now"], "this instant"),
    (
        &["45m ago", "2 hours ago", "1h30m ago", "-45m"],
        "a time ago (a day is 24 hours)",
    ),
    (
        &["2026-11-30", "today", "yesterday"],
        "a day alone means the end of that local day (23:59:59.999999999): \
         --at yesterday is the last snapshot of yesterday, or the newest before it",
    ),
    (
        &["today 09:30", "yesterday 17:00"],
        "that local time on that day",
    ),
];

/// The RFC 3339 time `time_notes` names to pick the later pass of a
/// repeated hour.
pub const LATER_OF_REPEATED: &str = "2026-10-25T02:30:00+01:00";

/// What follows the forms: selection, zones and DST, the future limit.
pub fn time_notes() -> Vec<String> {
    let skew_min = wsnap::timespec::MAX_FUTURE_SKEW_NS / 60_000_000_000;
    vec![
        "--at TIME picks the newest snapshot at or before TIME; --snapshot ID takes a \
         snapshot id or a unique prefix of at least 4 hex digits. Local times are in the \
         zone TZ, else the system's; times are printed with their UTC offset."
            .to_string(),
        format!(
            "A local time in an hour that repeats when clocks are turned back (2026-10-25 \
             02:30 in Europe/Berlin) means the earlier of its two instants, as GNU date does; \
             a warning on stderr names both. Give an RFC 3339 time with its offset \
             ({LATER_OF_REPEATED}) for the later one. A local time in an hour skipped when \
             clocks are turned forward does not exist: exit 2, naming the offsets the clocks \
             jumped between."
        ),
        format!(
            "snapshot --time may be at most {skew_min} minutes in the future (clock skew) \
             unless --allow-future-time is given: such a snapshot would be every later \
             --at latest until real time caught up."
        ),
    ]
}

/// Environment variables: name, meaning. The main page lists them all, a
/// command's page those it reads (`super::uses_variable`).
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "SCITEX_BACKUP_ROOT",
        "The store directory (--store); default /app/backups/snapshots.",
    ),
    (
        "SCITEX_WORKSPACE_ROOT",
        "The workspace root holding USER/PROJECT/ (--root); default /app/data/users.",
    ),
    (
        "SCITEX_MAX_SNAPSHOTS",
        "Snapshots kept per workspace by prune and snapshot --prune when no keep flag is \
         given; default 288. 0 or a value that is not a whole number is refused (exit 2).",
    ),
    (
        "WSNAP_UNSAFE_ALLOW_NETWORK_FS",
        "1: as --unsafe-allow-network-fs, use a store on a network or FUSE file system \
         anyway (unsafe).",
    ),
    (
        "AWS_ACCESS_KEY_ID",
        "With AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN): the credentials of an S3 \
         remote. remote add saves them, mode 0600, in STORE/remotes/NAME.credentials for \
         cron.",
    ),
    (
        "TZ",
        "The time zone of local times in TIME and of the times printed.",
    ),
];

/// What FILES starts with.
pub const FILES_INTRO: &str = "The Debian package installs the first four, none of them \
active: backups start once the cron line is uncommented or the timer enabled.";

/// The main page's FILES: what the Debian package installs, and the store.
pub const FILES: &[(&str, &str)] = &[
    (
        "/etc/default/wsnap",
        "SCITEX_WORKSPACE_ROOT, SCITEX_BACKUP_ROOT and SCITEX_MAX_SNAPSHOTS for the \
         scheduled run, read by the cron line and the systemd unit.",
    ),
    (
        "/etc/cron.d/wsnap",
        "The cron line running wsnap -v snapshot --prune every 5 minutes, shipped \
         commented out: uncomment it, or enable the timer, not both.",
    ),
    (
        "/usr/lib/systemd/system/wsnap-snapshot.timer",
        "The same run every 5 minutes from systemd (wsnap-snapshot.service): \
         systemctl enable --now wsnap-snapshot.timer.",
    ),
    (
        "/etc/logrotate.d/wsnap",
        "Rotation of the run's log, /app/logs/workspace-backups.log.",
    ),
    (
        "STORE/catalog.sqlite, STORE/packs/, STORE/lock",
        "The store: the SQLite catalog, the pack files holding the compressed data, \
         the lock file. STORE/remotes/ holds the remotes' configuration and keys.",
    ),
];

/// The main page's pointer to the longer documentation.
pub const DOCS: &str = "The admin's guide (install, schedule, monitor, restore, back up \
the store, migrate from the rsync backups, off-site copies) is \
/usr/share/doc/wsnap/ADMIN.md, the --json schemas /usr/share/doc/wsnap/JSON.md \
(installed by the Debian package; docs/ in the source).";

/// A page's examples: what it does, the command line.
pub fn examples(page: &str) -> &'static [(&'static str, &'static str)] {
    match page {
        "wsnap" => &[
            (
                "Snapshot every workspace, then keep the last $SCITEX_MAX_SNAPSHOTS \
                 snapshots of each (the scheduled run):",
                "wsnap -v snapshot --prune --lock-wait 4m",
            ),
            (
                "Restore a workspace as it was yesterday at 17:00 into a new directory:",
                "wsnap restore alice/thesis --at 'yesterday 17:00' --to /tmp/thesis",
            ),
            (
                "Check the backups for monitoring (Nagios exit codes):",
                "wsnap status",
            ),
        ],
        "wsnap-init" => &[
            ("Create an empty store:", "wsnap --store /srv/wsnap init"),
            (
                "Create a store that compresses harder:",
                "wsnap --store /srv/wsnap init --compression-level 3",
            ),
        ],
        "wsnap-snapshot" => &[
            ("Snapshot every workspace under the root:", "wsnap snapshot"),
            (
                "Snapshot one workspace:",
                "wsnap snapshot --workspace alice/thesis",
            ),
            (
                "The scheduled run: snapshot, then apply retention, waiting up to 4 minutes \
                 for a run still going:",
                "wsnap -v snapshot --prune --lock-wait 4m",
            ),
            (
                "The same, then push to the only remote:",
                "wsnap -v snapshot --prune --push --lock-wait 4m",
            ),
        ],
        "wsnap-list" => &[
            ("Every snapshot of every workspace:", "wsnap list"),
            (
                "One workspace's, as JSON:",
                "wsnap list alice/thesis --json",
            ),
            (
                "Today's snapshots of all of alice's projects:",
                "wsnap list alice --since today",
            ),
            (
                "The newest snapshot of every workspace:",
                "wsnap list --last 1",
            ),
        ],
        "wsnap-ls" => &[
            (
                "The top directory of the newest snapshot:",
                "wsnap ls alice/thesis --at latest",
            ),
            (
                "Everything below data/ as it was two hours ago:",
                "wsnap ls alice/thesis --at '2 hours ago' data -R",
            ),
        ],
        "wsnap-cat" => &[(
            "Read a file as it was at the end of yesterday:",
            "wsnap cat alice/thesis notes.md --at yesterday | less",
        )],
        "wsnap-find" => &[
            (
                "TeX files in the newest snapshot:",
                "wsnap find alice/thesis '*.tex'",
            ),
            (
                "Every snapshot holding a file of that name:",
                "wsnap find alice/thesis ch3.tex --all",
            ),
        ],
        "wsnap-mount" => &[
            (
                "Browse every snapshot as directories (read-only):",
                "wsnap mount /mnt/snapshots",
            ),
            (
                "One workspace, readable by other users:",
                "wsnap mount /mnt/snapshots --workspace alice/thesis --allow-other",
            ),
        ],
        "wsnap-umount" => &[("Unmount it:", "wsnap umount /mnt/snapshots")],
        "wsnap-prune" => &[
            (
                "Show what the default retention would forget and free:",
                "wsnap prune --dry-run",
            ),
            (
                "Keep everything of the last day and one snapshot a day for a week:",
                "wsnap prune --keep-within 24h --keep-daily 7",
            ),
        ],
        "wsnap-forget" => &[(
            "Purge one snapshot's unique data from disk (first without --dry-run to see it):",
            "wsnap forget --snapshot 3fa9c2d1 --dry-run",
        )],
        "wsnap-rewrite" => &[
            (
                "See which snapshots hold a leaked file, changing nothing:",
                "wsnap rewrite alice/thesis --exclude secret.env --all --dry-run",
            ),
            (
                "Purge it from every snapshot of the workspace (the bytes leave every store file):",
                "wsnap rewrite alice/thesis --exclude secret.env --all",
            ),
        ],
        "wsnap-repair" => &[(
            "Rebuild a lost or damaged catalog from the packs:",
            "wsnap repair --lock-wait 10m",
        )],
        "wsnap-check" => &[
            ("Check the catalog against the packs:", "wsnap check"),
            (
                "Also read and verify every blob:",
                "wsnap check --read-data",
            ),
            (
                "Download and verify 5 % of a remote's packs:",
                "wsnap check --remote offsite --read-data --subset 5",
            ),
        ],
        "wsnap-remote" => &[("The remotes and their last push:", "wsnap remote list")],
        "wsnap-remote-add" => &[
            (
                "An S3 bucket on a Garage server, with a new key (keep a copy of it off \
                 this server):",
                "wsnap remote add offsite s3://backups/wsnap --endpoint http://10.0.0.5:3900 \
                 --region garage --generate-key",
            ),
            (
                "A directory on a second disk:",
                "wsnap remote add disk2 file:///mnt/disk2/wsnap --generate-key",
            ),
        ],
        "wsnap-remote-list" => &[("As JSON:", "wsnap remote list --json")],
        "wsnap-remote-remove" => &[(
            "Forget a remote here (its data and key stay):",
            "wsnap remote remove offsite",
        )],
        "wsnap-push" => &[("Upload what the remote lacks:", "wsnap push offsite")],
        "wsnap-pull" => &[(
            "A complete local store from the remote, on a new machine:",
            "wsnap --store /srv/wsnap pull offsite",
        )],
        "wsnap-restore" => &[
            (
                "A workspace as of a local time, into a new directory:",
                "wsnap restore alice/thesis --at '2026-11-30 14:00' --to /tmp/thesis",
            ),
            (
                "One file as of the end of yesterday (written as /tmp/r/ch3.tex):",
                "wsnap restore alice/thesis --at yesterday --path chapters/ch3.tex --to /tmp/r",
            ),
            (
                "A snapshot by id, back over the workspace:",
                "wsnap restore alice/thesis --snapshot 3fa9c2d1 --to /app/data/users/alice/thesis \
                 --overwrite",
            ),
            (
                "From the off-site copy alone:",
                "wsnap restore --remote offsite alice/thesis --at latest --to /tmp/thesis",
            ),
        ],
        "wsnap-status" => &[
            ("The Nagios check:", "wsnap status"),
            (
                "With thresholds, also for node_exporter's textfile collector:",
                "wsnap status --max-age 15m --min-free 10% --prometheus \
                 /var/lib/prometheus/node-exporter/wsnap.prom",
            ),
        ],
        "wsnap-stats" => &[
            ("Sizes, dedup and compression of the store:", "wsnap stats"),
            ("One workspace, as JSON:", "wsnap stats alice/thesis --json"),
            (
                "What each user costs (data shared between one user's projects counted once):",
                "wsnap stats --by-user",
            ),
        ],
        "wsnap-diff" => &[
            (
                "What changed since the end of yesterday:",
                "wsnap diff alice/thesis yesterday latest",
            ),
            (
                "Between two snapshots by id:",
                "wsnap diff alice/thesis 3fa9c2d1 8c1e02aa",
            ),
        ],
        "wsnap-log" => &[(
            "Every snapshot in which a file changed:",
            "wsnap log alice/thesis chapters/ch3.tex",
        )],
        "wsnap-serve" => &[
            (
                "The admin page on this machine only (open http://127.0.0.1:8686/):",
                "wsnap serve",
            ),
            (
                "Behind a TLS reverse proxy, every request carrying the token:",
                "wsnap serve --listen 127.0.0.1:8686 --token-file /etc/wsnap/serve.token",
            ),
        ],
        "wsnap-import-rsync" => &[
            (
                "See what the old backups would become:",
                "wsnap import-rsync /app/backups/old --dry-run",
            ),
            (
                "Import them, splitting an ambiguous name by hand:",
                "wsnap import-rsync /app/backups/old --map alice_my_thesis=alice/my_thesis",
            ),
        ],
        "wsnap-completions" => &[
            (
                "Bash completion for every user:",
                "wsnap completions bash > /etc/bash_completion.d/wsnap",
            ),
            (
                "Zsh:",
                "wsnap completions zsh > /usr/local/share/zsh/site-functions/_wsnap",
            ),
        ],
        "wsnap-man" => &[
            (
                "Read the main page without installing it:",
                "wsnap man | man -l -",
            ),
            (
                "Install every page:",
                "wsnap man --dir /usr/local/share/man/man1",
            ),
        ],
        _ => &[],
    }
}

/// Pages worth reading next to a page (beyond the main page, the parent and
/// the subcommands, which SEE ALSO always names).
pub fn related(page: &str) -> &'static [&'static str] {
    match page {
        "wsnap-snapshot" => &["wsnap-prune", "wsnap-status", "wsnap-list", "wsnap-push"],
        "wsnap-restore" => &["wsnap-list", "wsnap-ls", "wsnap-cat", "wsnap-mount"],
        "wsnap-prune" => &["wsnap-forget", "wsnap-snapshot"],
        "wsnap-forget" => &["wsnap-prune", "wsnap-rewrite"],
        "wsnap-rewrite" => &["wsnap-forget", "wsnap-log"],
        "wsnap-check" => &["wsnap-repair"],
        "wsnap-repair" => &["wsnap-check"],
        "wsnap-list" => &["wsnap-ls", "wsnap-restore"],
        "wsnap-ls" => &["wsnap-cat", "wsnap-find", "wsnap-restore"],
        "wsnap-cat" => &["wsnap-ls", "wsnap-find"],
        "wsnap-find" => &["wsnap-ls", "wsnap-log"],
        "wsnap-mount" => &["wsnap-umount", "wsnap-restore"],
        "wsnap-umount" => &["wsnap-mount"],
        "wsnap-status" => &["wsnap-snapshot"],
        "wsnap-diff" => &["wsnap-log"],
        "wsnap-log" => &["wsnap-diff"],
        "wsnap-push" => &["wsnap-remote", "wsnap-pull"],
        "wsnap-pull" => &["wsnap-remote", "wsnap-push"],
        "wsnap-import-rsync" => &["wsnap-snapshot"],
        "wsnap-serve" => &["wsnap-status", "wsnap-restore", "wsnap-cat"],
        _ => &[],
    }
}
