//! Subcommand dispatch: the parsed command line to the file that runs that
//! command (options in, library calls, results out), and its outcome to one
//! exit code.
//!
//! One file per command or close group: `snapshot`, `prune` (and
//! `forget`), `restore`, `list` (and `ls`), `check`, `repair`, `status`,
//! `stats`, `diff` (and `log`), `admin` (`init`, `import-rsync`,
//! `completions`), `man` (the man pages). `args` turns flags into library options,
//! `output` holds what they all print with. Browsing without restoring:
//! `browse` (`cat`, `find`), `mount` (and `umount`).

mod admin;
mod args;
mod browse;
mod check;
mod diff;
mod flags;
mod list;
mod logging;
mod man;
mod mount;
mod output;
mod progress;
mod prune;
mod remote;
mod repair;
mod restore;
mod snapshot;
mod stats;
mod status;

use std::process::ExitCode;

use clap::Parser;

use wsnap::Result;

use args::{Cli, Command};

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.quiet);
    progress::set_enabled(!cli.quiet);
    // Snapshot and restore hold one descriptor per level of nesting.
    wsnap::raise_open_file_limit(1 << 20);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            tracing::error!("{}", output::message(&e));
            ExitCode::from(output::code_for(e.kind()))
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
    let store_dir = cli.store.as_path();
    match &cli.command {
        Command::Completions { .. } | Command::Man { .. } => {}
        // `status` reports it as UNKNOWN itself.
        Command::Status { .. } => {}
        _ => wsnap::require_local(store_dir, cli.unsafe_allow_network_fs)?,
    }
    match &cli.command {
        Command::Init { compression_level } => admin::init(store_dir, *compression_level),
        Command::Snapshot(a) => snapshot::run(store_dir, a),
        Command::Prune {
            workspaces,
            retention,
            dry_run,
            lock_wait,
            json,
        } => prune::prune(store_dir, workspaces, retention, *dry_run, lock_wait, *json),
        Command::Forget {
            snapshots,
            dry_run,
            lock_wait,
            json,
        } => prune::forget(store_dir, snapshots, *dry_run, lock_wait, *json),
        Command::Repair {
            lock_wait,
            force,
            json,
        } => repair::run(store_dir, lock_wait, *force, *json),
        Command::Check {
            read_data,
            remote: Some(name),
            subset,
            json,
        } => remote::check(store_dir, name, *read_data, *subset, *json),
        Command::Check {
            read_data, json, ..
        } => check::run(store_dir, *read_data, *json),
        Command::Remote { action } => remote::remote(store_dir, action),
        Command::Push {
            name,
            lock_wait,
            force,
            grace,
            json,
        } => remote::push(
            store_dir,
            name.as_deref(),
            lock_wait,
            *force,
            grace.as_deref(),
            *json,
        ),
        Command::Pull { name, json } => remote::pull(store_dir, name, *json),
        Command::List { workspace, json } => list::list(store_dir, workspace.as_ref(), *json),
        Command::Ls {
            workspace,
            which,
            path,
            recursive,
            json,
        } => list::ls(store_dir, workspace, which, path, *recursive, *json),
        Command::Cat(a) => browse::cat(store_dir, a),
        Command::Find(a) => browse::find(store_dir, a),
        Command::Mount(a) => mount::mount(store_dir, a),
        Command::Umount { mountpoint } => mount::umount(mountpoint),
        Command::Restore {
            workspace,
            which,
            to,
            path,
            overwrite,
            remote: Some(name),
            json,
        } => remote::restore(
            store_dir, name, workspace, which, to, path, *overwrite, *json,
        ),
        Command::Restore {
            workspace,
            which,
            to,
            path,
            overwrite,
            json,
            ..
        } => restore::run(store_dir, workspace, which, to, path, *overwrite, *json),
        Command::Status {
            root,
            max_age,
            min_free,
            prometheus,
            json,
        } => Ok(status::run(
            store_dir,
            cli.unsafe_allow_network_fs,
            root,
            max_age,
            min_free,
            prometheus.as_deref(),
            *json,
        )),
        Command::Stats { workspace, json } => stats::run(store_dir, workspace.as_ref(), *json),
        Command::Diff {
            workspace,
            from,
            to,
            json,
        } => diff::run_diff(store_dir, workspace, from, to, *json),
        Command::Log {
            workspace,
            path,
            json,
        } => diff::run_log(store_dir, workspace, path, *json),
        Command::ImportRsync(a) => admin::import_rsync(store_dir, a),
        Command::Completions { shell } => Ok(admin::completions(*shell)),
        Command::Man { dir } => man::run(dir.as_deref()),
    }
}
