//! `wsnap man`: the man pages, generated from the clap command tree in
//! `args.rs`, so a new command gets its page and a new flag its entry with
//! nothing added here.
//!
//! Pages: `wsnap.1`, and `wsnap-COMMAND.1` for every command, nested ones
//! too (`wsnap-remote.1` lists `wsnap-remote-add.1`, …); hidden commands and
//! clap's `help` get none. clap_mangen renders NAME, SYNOPSIS, DESCRIPTION,
//! OPTIONS and the list of commands; this module adds what clap does not
//! know: the TIME syntax (on pages whose options take a TIME), EXIT STATUS
//! (from `output::exit::TABLE`, the table `--help` prints; `status` has its
//! Nagios codes), ENVIRONMENT, FILES, EXAMPLES and SEE ALSO, whose prose is
//! in `text.rs`. SEE ALSO names only pages that are written.

mod text;

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use clap::{Command, CommandFactory};
use clap_mangen::roff::{bold, roman, Inline, Roff};

use wsnap::status::Level;
use wsnap::{escape, Error, Result};

use super::args::Cli;
use super::output::exit;

/// One man page: `wsnap-remote-add` for the command path `remote add`.
pub struct Page {
    pub name: String,
    pub roff: String,
}

/// `wsnap man [--dir DIR]`: the main page on stdout, or every page into DIR.
pub fn run(dir: Option<&Path>) -> Result<u8> {
    let pages = pages();
    let Some(dir) = dir else {
        // A closed stdout (`wsnap man | head`) is not worth a message.
        let _ = io::stdout().lock().write_all(pages[0].roff.as_bytes());
        return Ok(exit::OK);
    };
    let failed = |what: &Path, e: io::Error| Error::Invalid {
        what: "--dir",
        detail: format!("cannot write {}: {e}", escape::path(what)),
    };
    fs::create_dir_all(dir).map_err(|e| failed(dir, e))?;
    for p in &pages {
        let file = dir.join(format!("{}.1", p.name));
        fs::write(&file, &p.roff).map_err(|e| failed(&file, e))?;
    }
    println!("wrote {} man pages to {}", pages.len(), escape::path(dir));
    Ok(exit::OK)
}

/// Every page, the main one first.
pub fn pages() -> Vec<Page> {
    let mut root = without_help(Cli::command());
    root.build();
    let mut commands = Vec::new();
    collect(&root, &mut Vec::new(), &mut commands);
    let names: Vec<String> = commands.iter().map(|(path, _)| page_name(path)).collect();
    commands
        .iter()
        .map(|(path, cmd)| Page {
            name: page_name(path),
            roff: render(cmd, path, &names),
        })
        .collect()
}

/// clap's `help` subcommand, at every level, is not a command with a page.
fn without_help(cmd: Command) -> Command {
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let mut cmd = cmd.disable_help_subcommand(true);
    for s in subs {
        cmd = cmd.mut_subcommand(s, without_help);
    }
    cmd
}

fn collect(cmd: &Command, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, Command)>) {
    out.push((path.clone(), cmd.clone()));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        path.push(sub.get_name().to_string());
        collect(sub, path, out);
        path.pop();
    }
}

/// `wsnap`, `wsnap-restore`, `wsnap-remote-add`.
fn page_name(path: &[String]) -> String {
    std::iter::once("wsnap")
        .chain(path.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("-")
}

fn render(cmd: &Command, path: &[String], pages: &[String]) -> String {
    let name = page_name(path);
    // clap_mangen's own sections; its EXTRA (after_help: the exit codes,
    // rendered below as EXIT STATUS) and VERSION sections left out.
    let mut c = cmd
        .clone()
        .after_help(None::<&str>)
        .version(None::<&str>)
        .long_version(None::<&str>);
    // Its list of subcommands too: ours names the pages in bold, as SEE ALSO.
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for s in subs {
        c = c.mut_subcommand(s, |s| s.hide(true));
    }
    if path.is_empty() {
        c = c.long_about(text::MAIN_DESCRIPTION);
    }
    let mut generated = Vec::new();
    clap_mangen::Man::new(c)
        .render(&mut generated)
        .expect("rendering into memory");
    let generated = String::from_utf8(generated).expect("clap text is UTF-8");

    let mut r = Roff::new();
    // No hyphenation from here on: page names and paths stay whole.
    r.control("nh", []);
    commands_section(&mut r, cmd, path);
    if mentions_time(cmd) || path.is_empty() {
        time_section(&mut r);
    }
    exit_section(&mut r, path);
    environment_section(&mut r, cmd, path.is_empty());
    if path.is_empty() {
        files_section(&mut r);
    }
    examples_section(&mut r, &name);
    see_also_section(&mut r, path, pages);
    // `Roff::render` starts with the preamble defining `\*(Aq`, which the
    // generated part already has.
    let ours = r.render();
    let ours = ours
        .strip_prefix(&Roff::new().render())
        .expect("the preamble comes first");
    ascii(&format!("{}{ours}", title_line(generated, &name)))
}

/// Characters beyond ASCII (`…`, `–` in help texts) as groff escapes
/// (`\[u2026]`): groff reads its input as Latin-1 unless run through
/// preconv, and warns.
fn ascii(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    for c in page.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", c as u32));
        }
    }
    out
}

/// clap_mangen writes `.TH name 1  "source"` for an empty date, which shifts
/// the source into the date's place: write the whole line ourselves.
fn title_line(generated: String, name: &str) -> String {
    let date = env!("WSNAP_COMMIT_DATE");
    let th = format!(
        ".TH {name} 1 \"{date}\" \"wsnap {}\" \"wsnap manual\"",
        env!("CARGO_PKG_VERSION")
    );
    generated
        .lines()
        .map(|l| {
            if l.starts_with(".TH ") {
                th.as_str()
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Does any option of `cmd` take a TIME (as a value name or in its help)?
fn mentions_time(cmd: &Command) -> bool {
    cmd.get_arguments().filter(|a| !a.is_hide_set()).any(|a| {
        a.get_value_names()
            .is_some_and(|v| v.iter().any(|n| n.as_str() == "TIME"))
            || a.get_help().is_some_and(|h| {
                h.to_string()
                    .split(|c: char| !c.is_alphanumeric())
                    .any(|w| w == "TIME")
            })
    })
}

/// `.TP` with a bold term and a roman body.
fn item(r: &mut Roff, term: Vec<Inline>, body: &str) {
    r.control("TP", []);
    r.text(term);
    r.text([roman(body)]);
}

fn time_section(r: &mut Roff) {
    r.control("SH", ["TIME"]);
    r.text([roman(text::TIME_INTRO)]);
    for (examples, meaning) in text::TIME_FORMS {
        let mut term = Vec::new();
        for (i, e) in examples.iter().enumerate() {
            if i > 0 {
                term.push(roman(", "));
            }
            term.push(bold(*e));
        }
        item(r, term, meaning);
    }
    for p in text::time_notes() {
        r.control("PP", []);
        r.text([roman(p)]);
    }
}

/// The subcommands, each by its page and what it does.
fn commands_section(r: &mut Roff, cmd: &Command, path: &[String]) {
    let subs: Vec<&Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    if subs.is_empty() {
        return;
    }
    r.control("SH", ["COMMANDS"]);
    for sub in subs {
        let mut sub_path = path.to_vec();
        sub_path.push(sub.get_name().to_string());
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        item(r, vec![bold(page_name(&sub_path)), roman("(1)")], &about);
    }
}

fn exit_section(r: &mut Roff, path: &[String]) {
    r.control("SH", ["EXIT STATUS"]);
    if path.first().is_some_and(|c| c == "status") {
        r.text([roman(
            "Nagios plugin codes (not the table of the other commands); the summary line \
             starts with the level:",
        )]);
        for level in [Level::Ok, Level::Warning, Level::Critical, Level::Unknown] {
            item(r, vec![bold(level.exit_code().to_string())], level.label());
        }
        r.control("PP", []);
        r.text([roman(
            "Any error is UNKNOWN, except a command line that is rejected before the check \
             starts, which exits 2.",
        )]);
        return;
    }
    for (code, meaning) in exit::TABLE {
        item(r, vec![bold(code.to_string())], meaning);
    }
}

fn environment_section(r: &mut Roff, cmd: &Command, main: bool) {
    let vars: Vec<&(&str, &str)> = text::ENVIRONMENT
        .iter()
        .filter(|(var, _)| main || uses_variable(cmd, var))
        .collect();
    if vars.is_empty() {
        return;
    }
    r.control("SH", ["ENVIRONMENT"]);
    for (var, meaning) in vars {
        item(r, vec![bold(*var)], meaning);
    }
}

/// Whether a command page lists `var`: an option reads it, its help names
/// it, or it is one every such command reads (the keep-last default with
/// the keep flags, the time zone with TIME).
fn uses_variable(cmd: &Command, var: &str) -> bool {
    let args = || cmd.get_arguments().filter(|a| !a.is_hide_set());
    let help =
        |s: Option<&clap::builder::StyledStr>| s.is_some_and(|h| h.to_string().contains(var));
    match var {
        "SCITEX_MAX_SNAPSHOTS" => args().any(|a| a.get_long() == Some("keep-last")),
        "TZ" => mentions_time(cmd),
        _ => {
            args().any(|a| a.get_env().is_some_and(|e| e == var) || help(a.get_help()))
                || help(cmd.get_about())
                || help(cmd.get_long_about())
        }
    }
}

fn files_section(r: &mut Roff) {
    r.control("SH", ["FILES"]);
    r.text([roman(text::FILES_INTRO)]);
    for (file, meaning) in text::FILES {
        item(r, vec![bold(*file)], meaning);
    }
}

fn examples_section(r: &mut Roff, name: &str) {
    let examples = text::examples(name);
    if examples.is_empty() {
        return;
    }
    r.control("SH", ["EXAMPLES"]);
    for (what, command) in examples {
        r.control("PP", []);
        r.text([roman(*what)]);
        // Unfilled: a command line is neither justified nor hyphenated.
        r.control("RS", ["4"]);
        r.control("nf", []);
        r.text([bold(*command)]);
        r.control("fi", []);
        r.control("RE", []);
    }
}

/// The main page, the parent (for nested commands), the subcommands and
/// the related pages of `text::related`.
fn see_also_section(r: &mut Roff, path: &[String], pages: &[String]) {
    let name = page_name(path);
    let mut refs: Vec<String> = Vec::new();
    let mut add = |p: String| {
        if p != name && !refs.contains(&p) {
            refs.push(p);
        }
    };
    if path.is_empty() {
        pages.iter().skip(1).cloned().for_each(&mut add);
    } else {
        add(page_name(&[]));
        add(page_name(&path[..path.len() - 1]));
        let prefix = format!("{name}-");
        pages
            .iter()
            .filter(|p| {
                p.strip_prefix(&prefix)
                    .is_some_and(|rest| !rest.contains('-'))
            })
            .cloned()
            .for_each(&mut add);
        text::related(&name)
            .iter()
            .map(|s| s.to_string())
            .for_each(&mut add);
    }
    r.control("SH", ["SEE ALSO"]);
    let mut line = Vec::new();
    for (i, p) in refs.iter().enumerate() {
        if i > 0 {
            line.push(roman(", "));
        }
        line.push(bold(p.as_str()));
        line.push(roman("(1)"));
    }
    r.text(line);
    if path.is_empty() {
        r.control("PP", []);
        r.text([roman(text::DOCS)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each example runs the command of its page (or a subcommand of it),
    /// with options clap accepts (up to a pipe or a redirection).
    #[test]
    fn examples_parse_as_their_own_command() {
        for page in pages() {
            let examples = text::examples(&page.name);
            assert!(
                !examples.is_empty(),
                "{} has no EXAMPLES: add some to src/cli/man/text.rs",
                page.name
            );
            for (_, example) in examples {
                let words = shell_words(example);
                let m = Cli::command()
                    .try_get_matches_from(&words)
                    .unwrap_or_else(|e| panic!("{}: `{example}`: {e}", page.name));
                let mut path = vec!["wsnap".to_string()];
                let mut m = &m;
                while let Some((sub, sm)) = m.subcommand() {
                    path.push(sub.to_string());
                    m = sm;
                }
                // The page's command, or one of its subcommands.
                let ran = path.join("-");
                assert!(
                    page.name == "wsnap"
                        || ran == page.name
                        || ran.starts_with(&format!("{}-", page.name)),
                    "{}: `{example}` runs {ran}",
                    page.name
                );
            }
        }
    }

    /// Split like sh for the examples: single quotes, and stop at `|`, `>`.
    fn shell_words(s: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut any = false;
        for c in s.chars() {
            match c {
                '\'' => {
                    quoted = !quoted;
                    any = true;
                }
                ' ' if !quoted => {
                    if any {
                        words.push(std::mem::take(&mut cur));
                        any = false;
                    }
                }
                '|' | '>' if !quoted => break,
                _ => {
                    cur.push(c);
                    any = true;
                }
            }
        }
        if any {
            words.push(cur);
        }
        words
    }

    #[test]
    fn time_forms_parse() {
        for (examples, _) in text::TIME_FORMS {
            for e in *examples {
                wsnap::timespec::parse(e).unwrap_or_else(|err| panic!("{e}: {err}"));
            }
        }
        wsnap::timespec::parse(text::LATER_OF_REPEATED).unwrap();
    }

    /// The codes the binary uses are the codes the table explains.
    #[test]
    fn exit_table_covers_every_error_kind() {
        use wsnap::ErrorKind as K;
        for k in [K::Input, K::Store, K::Write, K::Locked, K::Unavailable] {
            let code = super::super::output::code_for(k);
            assert!(exit::TABLE.iter().any(|(c, _)| *c == code), "{k:?}");
        }
        for code in [exit::OK, exit::PARTIAL] {
            assert!(exit::TABLE.iter().any(|(c, _)| *c == code));
        }
    }
}
