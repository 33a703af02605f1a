//! [`emit`](super::emit)'s object with one array member written element by
//! element: for results too long to hold (`list` of a whole store, 2.88 M
//! snapshots). The bytes are [`emit`](super::emit)'s for the same object.

use std::io::{self, Write};

use serde_json::Value;

use super::stamped;

/// Stands in for the streamed array while the rest of the object is
/// printed; a JSON string no result holds (control characters).
const HOLE: &str = "\u{1}wsnap: streamed array\u{1}";

/// An [`emit`](super::emit)ted object whose member `key` is an array
/// pushed one element at a time. Nothing is written until the first
/// element or [`EmitStream::finish`]; write errors are returned (a closed
/// pipe is for the caller to take as the end).
pub struct EmitStream<W: Write> {
    out: W,
    /// The object's text after the array, and the indentation of the line
    /// that holds the array.
    tail: String,
    indent: String,
    /// The object's text before the array, until it is written.
    head: Option<String>,
    pushed: bool,
}

impl<W: Write> EmitStream<W> {
    /// The object `body` (every member but `key`), stamped as `emit` does
    /// for exit code `code`, to be written to `out` with `key` streamed.
    pub fn new(out: W, code: u8, mut body: Value, key: &str) -> EmitStream<W> {
        body.as_object_mut()
            .expect("every --json result is one object")
            .insert(key.into(), HOLE.into());
        let text = serde_json::to_string_pretty(&stamped(code, body)).expect("a JSON value prints");
        let hole = serde_json::to_string(HOLE).expect("a string prints");
        let at = text.find(&hole).expect("the hole is printed");
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let indent: String = text[line_start..]
            .chars()
            .take_while(|c| *c == ' ')
            .collect();
        EmitStream {
            out,
            tail: format!("{}\n", &text[at + hole.len()..]),
            indent,
            head: Some(text[..at].to_string()),
            pushed: false,
        }
    }

    fn start(&mut self) -> io::Result<()> {
        if let Some(head) = self.head.take() {
            self.out.write_all(head.as_bytes())?;
            self.out.write_all(b"[")?;
        }
        Ok(())
    }

    /// Write the next element of the array.
    pub fn push(&mut self, v: &Value) -> io::Result<()> {
        self.start()?;
        let text = serde_json::to_string_pretty(v).expect("a JSON value prints");
        self.out
            .write_all(if self.pushed { b",\n" } else { b"\n" })?;
        self.pushed = true;
        // Strings escape their line breaks: every line is the value's own.
        for (i, line) in text.lines().enumerate() {
            if i > 0 {
                self.out.write_all(b"\n")?;
            }
            write!(self.out, "{}  {line}", self.indent)?;
        }
        Ok(())
    }

    /// Close the array and the object.
    pub fn finish(mut self) -> io::Result<()> {
        self.start()?;
        if self.pushed {
            write!(self.out, "\n{}]", self.indent)?;
        } else {
            self.out.write_all(b"]")?;
        }
        self.out.write_all(self.tail.as_bytes())?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::write_emitted;
    use super::*;

    /// Streamed or whole, the same bytes: no element, one, several; the
    /// array member first, last or between others; nested values and
    /// strings with line breaks.
    #[test]
    fn a_streamed_member_prints_as_emit_prints_the_whole_object() {
        let values: Vec<Value> = vec![
            json!({"a": 1, "b": "x\ny", "c": [1, 2], "d": {}, "e": []}),
            json!({"e": null}),
            json!([]),
            json!("plain"),
        ];
        for key in ["aaa", "snapshots", "zzz"] {
            for code in [0, 1] {
                for n in 0..=values.len() {
                    let body = json!({"filter": {"last": 3, "since": null}, "m": [1]});
                    let mut streamed = Vec::new();
                    let mut s = EmitStream::new(&mut streamed, code, body.clone(), key);
                    for v in &values[..n] {
                        s.push(v).unwrap();
                    }
                    s.finish().unwrap();
                    let mut whole_body = body;
                    whole_body[key] = Value::Array(values[..n].to_vec());
                    let mut whole = Vec::new();
                    write_emitted(&mut whole, code, whole_body).unwrap();
                    assert_eq!(
                        String::from_utf8(streamed).unwrap(),
                        String::from_utf8(whole).unwrap(),
                        "key {key}, code {code}, {n} elements"
                    );
                }
            }
        }
    }
}
