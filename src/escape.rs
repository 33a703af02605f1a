//! Names from disk, made safe to print.
//!
//! File, directory, user and project names are any bytes but `/` and NUL: a
//! hostile user can name a directory `evil\nWSNAP OK - all fine` or put an
//! ESC sequence in a project name. Everything printed for a human (terminal,
//! logs, `status` text, error messages) goes through [`Escaped`], which shows
//! such bytes visibly and never raw:
//!
//! - printable UTF-8 as is, a backslash as `\\` (so the output is unambiguous);
//! - `\n`, `\r`, `\t` by name, other control characters (C0, DEL, C1) as
//!   `\xNN` / `\u{NN}`, and Unicode direction overrides and isolates (which
//!   reorder what a terminal shows) as `\u{NNNN}`;
//! - bytes that are not valid UTF-8 as `\xNN`.
//!
//! JSON output does not use this: `serde_json` escapes control characters
//! itself, and invalid UTF-8 becomes U+FFFD there (see `docs/JSON.md`).

use std::fmt::{self, Write};

/// Display wrapper: `Escaped(name)` prints `name` escaped.
#[derive(Clone, Copy)]
pub struct Escaped<'a>(pub &'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                write_char(f, c)?;
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

fn write_char(f: &mut fmt::Formatter<'_>, c: char) -> fmt::Result {
    match c {
        '\\' => f.write_str("\\\\"),
        '\n' => f.write_str("\\n"),
        '\r' => f.write_str("\\r"),
        '\t' => f.write_str("\\t"),
        c if (c as u32) < 0x20 || c == '\x7f' => write!(f, "\\x{:02x}", c as u32),
        c if ('\u{80}'..='\u{9f}').contains(&c) || is_bidi_control(c) => {
            write!(f, "\\u{{{:x}}}", c as u32)
        }
        c => f.write_char(c),
    }
}

/// Characters that change the display order of what follows them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `name` escaped, as an owned string.
pub fn escape(name: &[u8]) -> String {
    Escaped(name).to_string()
}

/// A path escaped: [`escape`] of its bytes.
pub fn path(p: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    escape(p.as_os_str().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn visible_escapes() {
        let cases: &[(&[u8], &str)] = &[
            (b"plain name.txt", "plain name.txt"),
            (b"evil\nWSNAP OK", "evil\\nWSNAP OK"),
            (b"\x1b[31mred", "\\x1b[31mred"),
            (b"bad\xff\xfe", "bad\\xff\\xfe"),
            (b"back\\slash", "back\\\\slash"),
            (b"tab\there\r", "tab\\there\\r"),
            (b"del\x7f", "del\\x7f"),
            ("c1\u{85}".as_bytes(), "c1\\u{85}"),
            ("rlo\u{202e}txt.exe".as_bytes(), "rlo\\u{202e}txt.exe"),
            ("caf\u{e9} \u{4e2d}".as_bytes(), "caf\u{e9} \u{4e2d}"),
        ];
        for (raw, want) in cases {
            assert_eq!(escape(raw), *want, "{raw:?}");
        }
    }

    proptest! {
        #[test]
        fn never_prints_a_control_character(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            let s = escape(&raw);
            prop_assert!(!s.chars().any(|c| c.is_control() || is_bidi_control(c)), "{s:?}");
        }

        #[test]
        fn distinct_names_print_distinctly(
            a in proptest::collection::vec(any::<u8>(), 0..16),
            b in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            prop_assume!(a != b);
            prop_assert_ne!(escape(&a), escape(&b));
        }
    }
}
