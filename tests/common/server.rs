//! `wsnap serve` started for a test: the real binary on an ephemeral
//! loopback port (`--listen 127.0.0.1:0`; the bound address is read from
//! the line it prints), a token file (0600) made for it, and requests with
//! or without the token. Stopped (SIGTERM, then waited for) on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{bare_std_cmd, TestEnv};

pub const TOKEN: &str = "0123456789abcdef0123456789abcdef-test-token";

pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub addr: String,
    pub token_file: PathBuf,
}

/// One answer: status, headers (lower-case names), body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("the page is UTF-8")
    }
}

impl Server {
    /// `wsnap --store STORE serve --listen 127.0.0.1:0 --token-file F
    /// --root ROOT --min-free 0 EXTRA…`.
    pub fn start(env: &TestEnv, extra: &[&str]) -> Server {
        let token_file = token_file(env);
        let mut c = bare_std_cmd();
        c.arg("--store")
            .arg(&env.store)
            .args(["serve", "--listen", "127.0.0.1:0", "--token-file"])
            .arg(&token_file)
            .arg("--root")
            .arg(&env.root)
            .args(["--min-free", "0"])
            .args(extra);
        Server::spawn(c, token_file)
    }

    /// Start `c`, a command that runs `wsnap serve --listen 127.0.0.1:0
    /// --token-file TOKEN_FILE …` (holding [`TOKEN`]) however it gets
    /// there (the Debian package's unit line, say), and read its address.
    pub fn spawn(mut c: std::process::Command, token_file: PathBuf) -> Server {
        c.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = c.spawn().expect("start wsnap serve");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("wsnap serve printed no address within 60 s")
            });
        let addr = line
            .trim()
            .strip_prefix("wsnap serve: listening on http://")
            .and_then(|s| s.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line of serve: {line:?}"))
            .to_string();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        Server {
            child,
            base: format!("http://{addr}"),
            addr,
            token_file,
        }
    }

    /// GET `target` (the raw request target, sent exactly as given) with
    /// the token.
    pub fn get(&self, target: &str) -> Answer {
        self.raw(target, Some(&format!("Bearer {TOKEN}")))
    }

    /// GET `target` with the given Authorization header (or none).
    pub fn raw(&self, target: &str, auth: Option<&str>) -> Answer {
        let (read, all) = self.exchange(target, auth);
        read.expect("read the answer");
        parse(&all).unwrap_or_else(|e| panic!("GET {target}: {e}"))
    }

    /// GET `target` and read until the server closes the connection: how
    /// the reading ended (a reset is an error) and every byte received.
    pub fn exchange(&self, target: &str, auth: Option<&str>) -> (std::io::Result<usize>, Vec<u8>) {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let mut req = format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if let Some(a) = auth {
            req += &format!("Authorization: {a}\r\n");
        }
        req += "\r\n";
        s.write_all(req.as_bytes()).unwrap();
        let mut all = Vec::new();
        let read = s.read_to_end(&mut all);
        (read, all)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// A token file (0600) holding [`TOKEN`], in the test's directory.
pub fn token_file(env: &TestEnv) -> PathBuf {
    let f = env.path("serve.token");
    std::fs::write(&f, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    f
}

/// An HTTP/1.1 answer read to the end (Content-Length or chunked); a body
/// shorter than declared is an error, as curl reports it.
pub fn parse(all: &[u8]) -> Result<Answer, String> {
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&all[..end]).map_err(|e| e.to_string())?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &all[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut body = Vec::new();
        let mut at = 0;
        loop {
            let nl = rest[at..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("truncated chunked body (the server cut the transfer)")?;
            let size_text = std::str::from_utf8(&rest[at..at + nl]).map_err(|e| e.to_string())?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                .map_err(|e| format!("chunk size {size_text:?}: {e}"))?;
            at += nl + 2;
            if size == 0 {
                break;
            }
            if at + size > rest.len() {
                return Err("truncated chunk (the server cut the transfer)".into());
            }
            body.extend_from_slice(&rest[at..at + size]);
            at += size + 2;
        }
        body
    } else {
        let declared = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| {
                v.parse::<usize>()
                    .map_err(|e| format!("content-length {v:?}: {e}"))
            })
            .transpose()?;
        match declared {
            Some(len) if rest.len() < len => {
                return Err(format!(
                    "body of {} bytes, {len} declared (the server cut the transfer)",
                    rest.len()
                ))
            }
            _ => rest.to_vec(),
        }
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// Percent-encode every byte but unreserved ones (a URL path segment).
pub fn enc(b: &[u8]) -> String {
    b.iter()
        .map(|&c| {
            if c.is_ascii_alphanumeric() || b"-_.~".contains(&c) {
                (c as char).to_string()
            } else {
                format!("%{c:02X}")
            }
        })
        .collect()
}
