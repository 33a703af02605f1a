//! The man pages (`wsnap man --dir`) and `wsnap --version`, through the real
//! binary: a page for every command `--help` lists, each parsed by groff
//! and man without a warning, naming every long flag its `--help` names,
//! with EXIT STATUS from the table `--help` prints, and SEE ALSO naming only
//! pages that exist; the commit in `--version` from `build.rs`, which is
//! also run on its own in a temp git repository and outside any.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command as StdCommand;

use common::*;

/// `wsnap man --dir` into a temp dir: page name (`wsnap-remote-add`) → roff.
fn generated_pages() -> (tempfile::TempDir, BTreeMap<String, String>) {
    let dir = tempfile::tempdir().unwrap();
    let out = expect_code(bare_cmd().arg("man").arg("--dir").arg(dir.path()), 0);
    let mut pages = BTreeMap::new();
    for e in fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap();
        let stem = name.strip_suffix(".1").unwrap_or_else(|| panic!("{name}"));
        pages.insert(stem.to_string(), fs::read_to_string(&p).unwrap());
    }
    assert!(
        out.stdout
            .contains(&format!("wrote {} man pages to", pages.len())),
        "{out}"
    );
    (dir, pages)
}

/// The commands `wsnap PATH --help` lists under "Commands:" (without help).
fn help_commands(path: &[&str]) -> Vec<String> {
    let out = expect_code(bare_cmd().args(path).arg("--help"), 0);
    out.stdout
        .split("\nCommands:\n")
        .nth(1)
        .map(|rest| {
            rest.lines()
                .take_while(|l| l.starts_with("  "))
                .filter(|l| !l.starts_with("   "))
                .filter_map(|l| l.split_whitespace().next())
                .filter(|c| *c != "help")
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Every command path (`[]`, `["restore"]`, `["remote", "add"]`, …) from
/// the `--help` texts.
fn command_paths() -> Vec<Vec<String>> {
    let mut paths = vec![Vec::new()];
    let mut i = 0;
    while i < paths.len() {
        let path: Vec<String> = paths[i].clone();
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        for c in help_commands(&args) {
            let mut p = path.clone();
            p.push(c);
            paths.push(p);
        }
        i += 1;
    }
    paths
}

fn page_name(path: &[String]) -> String {
    let mut n = String::from("wsnap");
    for p in path {
        n.push('-');
        n.push_str(p);
    }
    n
}

/// The long flags `wsnap PATH --help` shows (hidden ones are not shown).
fn help_flags(path: &[String]) -> Vec<String> {
    let out = expect_code(bare_cmd().args(path).arg("--help"), 0);
    let mut flags = Vec::new();
    for line in out.stdout.lines() {
        let t = line.trim_start();
        // Option lines: `-v, --verbose…` or `--store <STORE>…`.
        let t = match t.split_once(", --") {
            Some((short, rest)) if short.starts_with('-') && short.len() == 2 => rest,
            _ => match t.strip_prefix("--") {
                Some(rest) => rest,
                None => continue,
            },
        };
        let flag: String = t
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        flags.push(flag);
    }
    assert!(flags.contains(&"help".to_string()), "{out}");
    flags
}

/// The text of section `name` (up to the next `.SH`).
fn section<'a>(page: &'a str, name: &str) -> Option<&'a str> {
    let head = format!(".SH {name}\n");
    let head_quoted = format!(".SH \"{name}\"\n");
    let start = page
        .find(&head)
        .map(|i| i + head.len())
        .or_else(|| page.find(&head_quoted).map(|i| i + head_quoted.len()))?;
    let rest = &page[start..];
    Some(&rest[..rest.find("\n.SH ").map_or(rest.len(), |i| i + 1)])
}

/// `\fBwsnap\-restore\fR(1)` references in roff text.
fn references(text: &str) -> Vec<String> {
    let mut refs = Vec::new();
    for part in text.split("\\fB").skip(1) {
        if let Some((name, after)) = part.split_once("\\fR") {
            if after.starts_with("(1)") {
                refs.push(name.replace("\\-", "-"));
            }
        }
    }
    refs
}

#[test]
fn a_page_per_command_with_its_flags_exit_codes_and_examples() {
    let (_dir, pages) = generated_pages();
    let paths = command_paths();
    assert!(
        paths.len() > 20 && paths.iter().any(|p| p == &["remote", "add"]),
        "{paths:?}"
    );
    let names: Vec<String> = paths.iter().map(|p| page_name(p)).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        pages.keys().cloned().collect::<Vec<_>>(),
        sorted,
        "one page per command in --help, no other"
    );
    // The exit codes `wsnap --help` prints.
    let help = expect_code(bare_cmd().arg("--help"), 0).stdout;
    let codes: Vec<&str> = help
        .split("Exit codes:\n")
        .nth(1)
        .expect("exit codes in --help")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(codes, ["0", "1", "2", "3", "4", "69", "75"]);

    for (path, name) in paths.iter().zip(&names) {
        let page = &pages[name];
        assert!(
            page.contains(&format!(".TH {name} 1 ")),
            "{name}: title\n{page}"
        );
        for flag in help_flags(path) {
            assert!(
                page.contains(&format!("\\-\\-{}", flag.replace('-', "\\-"))),
                "{name} lacks --{flag}"
            );
        }
        let exit = section(page, "EXIT STATUS").unwrap_or_else(|| panic!("{name}: EXIT STATUS"));
        let want: &[&str] = if name == "wsnap-status" {
            &["0", "1", "2", "3"]
        } else {
            &codes
        };
        for code in want {
            assert!(
                exit.contains(&format!(".TP\n\\fB{code}\\fR\n")),
                "{name}: exit code {code}\n{exit}"
            );
        }
        let examples = section(page, "EXAMPLES").unwrap_or_else(|| panic!("{name}: EXAMPLES"));
        let invocation = format!(
            "\\fB{}",
            name.replace('-', " ")
                .replace("import rsync", "import\\-rsync")
        );
        assert!(
            name == "wsnap" || examples.contains(&invocation) || examples.contains("\\fBwsnap \\-"),
            "{name}: examples run other commands\n{examples}"
        );
        // The TIME syntax where an argument or option takes a TIME (as
        // their part of --help says).
        let help = expect_code(bare_cmd().args(path).arg("--help"), 0).stdout;
        let options = help
            .find("\nArguments:\n")
            .or_else(|| help.find("\nOptions:\n"))
            .map_or("", |i| &help[i..]);
        let takes_time = options
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w == "TIME");
        assert_eq!(
            section(page, "TIME").is_some(),
            takes_time || name == "wsnap",
            "{name}: TIME section"
        );
    }
    let time = section(&pages["wsnap-restore"], "TIME").unwrap();
    for form in [
        "yesterday",
        "45m ago",
        "YYYYmmdd_HHMMSS",
        "RFC 3339",
        "earlier",
    ] {
        assert!(
            time.contains(&form.replace('-', "\\-")),
            "TIME lacks {form}"
        );
    }
    assert!(section(&pages["wsnap-status"], "EXIT STATUS")
        .unwrap()
        .contains("CRITICAL"));
}

#[test]
fn see_also_names_only_written_pages_and_no_missing_docs() {
    let (_dir, pages) = generated_pages();
    for (name, page) in &pages {
        let see_also = section(page, "SEE ALSO").unwrap_or_else(|| panic!("{name}: SEE ALSO"));
        let refs = references(see_also);
        if name != "wsnap" {
            assert!(refs.contains(&"wsnap".to_string()), "{name}: {refs:?}");
        }
        // Pages listed under COMMANDS are pages too.
        let commands = section(page, "COMMANDS")
            .map(references)
            .unwrap_or_default();
        for r in refs.iter().chain(&commands) {
            assert!(
                pages.contains_key(r),
                "{name} names {r}(1), which is not written"
            );
        }
        // Documentation is named where the package installs it, never
        // as a path of the source tree alone.
        for (i, _) in page.match_indices("ADMIN.md") {
            assert!(
                page[..i].ends_with("/usr/share/doc/wsnap/"),
                "{name}: ADMIN.md outside /usr/share/doc/wsnap/"
            );
        }
    }
    let main = &pages["wsnap"];
    assert_eq!(
        references(section(main, "SEE ALSO").unwrap()).len(),
        pages.len() - 1,
        "the main page names every other page"
    );
    let remote: Vec<String> = help_commands(&["remote"])
        .iter()
        .map(|c| format!("wsnap-remote-{c}"))
        .collect();
    assert!(remote.len() >= 3, "{remote:?}");
    assert_eq!(
        references(section(&pages["wsnap-remote"], "COMMANDS").unwrap()),
        remote
    );
    // `wsnap man` alone prints the main page.
    let out = expect_code(bare_cmd().arg("man"), 0);
    assert_eq!(&out.stdout, main);
    for var in [
        "SCITEX_BACKUP_ROOT",
        "SCITEX_WORKSPACE_ROOT",
        "SCITEX_MAX_SNAPSHOTS",
    ] {
        assert!(section(main, "ENVIRONMENT").unwrap().contains(var));
    }
    assert!(section(&pages["wsnap-prune"], "ENVIRONMENT")
        .unwrap()
        .contains("SCITEX_MAX_SNAPSHOTS"));
}

#[test]
fn every_page_renders_without_a_warning() {
    let (dir, pages) = generated_pages();
    for tool in ["groff", "man"] {
        let have = StdCommand::new(tool).arg("--version").output();
        assert!(
            have.is_ok_and(|o| o.status.success()),
            "{tool} is not installed: `apt-get install man-db groff-base` (.ci/run does)"
        );
    }
    for name in pages.keys() {
        let file = dir.path().join(format!("{name}.1"));
        let out = StdCommand::new("groff")
            .args(["-man", "-z", "-ww", "-t"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "groff -man -z -ww {name}.1: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = StdCommand::new("man")
            .args(["--warnings", "-l"])
            .arg(&file)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "man -l {name}.1: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("EXIT STATUS") && text.contains("SEE ALSO"),
            "{text}"
        );
    }
}

/// `git` in `dir`, which must succeed.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = StdCommand::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("git is installed");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn version_names_the_commit() {
    let out = expect_code(bare_cmd().arg("--version"), 0);
    let line = out.stdout.trim();
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"));
    let want = format!("wsnap {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(line.starts_with(&want) && line.ends_with(')'), "{line}");
    let detail = &line[want.len()..line.len() - 1];
    if checkout.join(".git").exists() {
        let head = git(checkout, &["rev-parse", "--short=7", "HEAD"]);
        assert!(
            detail == head || detail == format!("{head}, dirty"),
            "{line}: HEAD is {head}"
        );
    } else {
        assert_eq!(detail, "unknown");
    }
    let short = expect_code(bare_cmd().arg("-V"), 0);
    assert_eq!(short.stdout.trim(), line);
}

/// build.rs compiled and run on its own, as cargo runs it, in a temp git
/// repository (clean, then dirty) and in a directory that is none.
#[test]
fn build_script_records_commit_dirty_or_unknown() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("build-script");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = StdCommand::new(&rustc)
        .args(["--edition", "2021", "-O", "-o"])
        .arg(&exe)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("build.rs"))
        .output()
        .unwrap();
    assert!(out.status.success(), "rustc build.rs: {out:?}");
    let run = |dir: &Path| -> Vec<String> {
        let out = StdCommand::new(&exe)
            .env("CARGO_MANIFEST_DIR", dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let env_of = |lines: &[String], var: &str| -> String {
        let prefix = format!("cargo:rustc-env={var}=");
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{var} not set: {lines:?}"))
            .to_string()
    };

    // Not a checkout (a tarball), inside a temp dir that is no repository.
    let plain = tmp.path().join("plain");
    fs::create_dir(&plain).unwrap();
    fs::write(plain.join("Cargo.toml"), "").unwrap();
    let lines = run(&plain);
    assert_eq!(env_of(&lines, "WSNAP_COMMIT"), "unknown");
    assert_eq!(env_of(&lines, "WSNAP_COMMIT_DATE"), "");

    // A checkout: the commit, then dirty once a tracked file changes.
    let repo = tmp.path().join("repo");
    fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    fs::write(repo.join("Cargo.toml"), "[package]\n").unwrap();
    git(&repo, &["add", "Cargo.toml"]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    let head = git(&repo, &["rev-parse", "--short=7", "HEAD"]);
    let lines = run(&repo);
    assert_eq!(env_of(&lines, "WSNAP_COMMIT"), head);
    let date = env_of(&lines, "WSNAP_COMMIT_DATE");
    assert!(date.len() == 10 && date.as_bytes()[4] == b'-', "{date}");
    // It reruns when the commit moves (HEAD, the branch's ref), not on
    // every build: every path it watches exists.
    let watched: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("cargo:rerun-if-changed="))
        .collect();
    assert!(
        watched.iter().any(|p| p.ends_with(".git/HEAD")),
        "{watched:?}"
    );
    assert!(
        watched.iter().any(|p| p.ends_with(".git/refs/heads/main")),
        "{watched:?}"
    );
    for p in &watched {
        if !p.ends_with("src") && !p.ends_with("build.rs") {
            assert!(Path::new(p).exists(), "{p}");
        }
    }
    fs::write(repo.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
    assert_eq!(
        env_of(&run(&repo), "WSNAP_COMMIT"),
        format!("{head}, dirty")
    );
    // An untracked file does not make it dirty.
    git(&repo, &["checkout", "-q", "Cargo.toml"]);
    fs::write(repo.join("notes.txt"), "x").unwrap();
    assert_eq!(env_of(&run(&repo), "WSNAP_COMMIT"), head);
}
