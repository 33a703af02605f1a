//! Subcommand dispatch: the parsed command line to the file that runs that
//! command (options in, library calls, results out), and its outcome to one
//! exit code.
//!
//! One file per command or close group: `snapshot`, `prune` (and
//! `forget`), `rewrite`, `restore`, `list` (and `ls`), `check`, `repair`, `status`,
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
mod rewrite;
mod serve;
mod snapshot;
mod stats;
mod status;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use wsnap::Result;

use args::{Cli, Command};

pub fn main() -> ExitCode {
    // Known before parsing, so a usage error is JSON too (docs/JSON.md).
    let json = json_requested(std::env::args_os());
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return usage_error(e, json),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e, json),
    };
    output::set_store_origin(match matches.value_source("store") {
        Some(clap::parser::ValueSource::CommandLine) => output::StoreOrigin::Flag,
        Some(clap::parser::ValueSource::EnvVariable) => output::StoreOrigin::Env,
        _ => output::StoreOrigin::Default,
    });
    logging::init(cli.verbose, cli.quiet);
    progress::set_enabled(!cli.quiet);
    output::set_quiet(cli.quiet);
    // Snapshot and restore hold one descriptor per level of nesting.
    wsnap::raise_open_file_limit(1 << 20);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if json {
                output::print_error_json(output::error_json(&e));
            } else {
                tracing::error!("{}", output::message(&e));
            }
            ExitCode::from(output::code_for(e.kind()))
        }
    }
}

/// Whether the command line asks for `--json`: the literal argument
/// anywhere before a `--` (checked on the raw arguments, so that a command
/// line clap refuses gets its error as JSON too).
fn json_requested(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    args.into_iter()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// A command line clap refused (or `--help`, `--version`): as clap prints
/// it, or with `--json` as the JSON error object (kind `input`, exit 2).
fn usage_error(e: clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind as K;
    let informational = matches!(
        e.kind(),
        K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !json || informational {
        e.exit();
    }
    let text = e.render().to_string();
    let message = text.trim().strip_prefix("error: ").unwrap_or(text.trim());
    let code = output::exit::INPUT;
    output::print_error_json(serde_json::json!({
        "kind": output::kind_name(wsnap::ErrorKind::Input),
        "exit_code": code,
        "message": message,
    }));
    ExitCode::from(code)
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
        Command::Init {
            compression_level,
            chunk_tiers,
        } => admin::init(store_dir, *compression_level, chunk_tiers),
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
        Command::Rewrite(a) => rewrite::run(store_dir, a),
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
        Command::List {
            workspace,
            since,
            until,
            last,
            json,
        } => list::list(
            store_dir,
            workspace.as_ref(),
            since.as_deref(),
            until.as_deref(),
            *last,
            *json,
        ),
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
        Command::Stats {
            workspace,
            by_user,
            json,
        } => stats::run(store_dir, workspace.as_ref(), *by_user, *json),
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
        Command::Serve(a) => serve::run(store_dir, cli.unsafe_allow_network_fs, a),
        Command::Completions { shell } => Ok(admin::completions(*shell)),
        Command::Man { dir } => man::run(dir.as_deref()),
    }
}
