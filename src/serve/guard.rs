//! What wraps every answer of `serve`, assets and errors included: the
//! bearer token check, then the security headers.
//!
//! The token comes from a file only its owner can read (mode 0600: no
//! group or other bits). A request carries it as `Authorization: Bearer
//! TOKEN` (scripts) or as the password of HTTP Basic authentication
//! (browsers ask for it on the first 401 and send it with every request
//! after, assets too; the user name is ignored). The comparison is of the
//! two tokens' BLAKE3 hashes in constant time (`subtle`), so neither the
//! content nor the length of the token leaks through timing.
//!
//! Headers: a Content-Security-Policy that allows no script at all, styles
//! and images from this origin only, and no framing (`frame-ancestors
//! 'none'`, and `X-Frame-Options: DENY` for old browsers);
//! `X-Content-Type-Options: nosniff`; no referrer; no caching (the pages
//! hold every user's file names).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::app::App;
use crate::error::{Error, Result};
use crate::escape;

/// Shortest token accepted: 128 bits as hex.
const MIN_TOKEN_LEN: usize = 32;

/// The content security policy of every answer.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                       form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The secret every request must carry (only its hash is kept).
#[derive(Clone)]
pub struct Token {
    hash: [u8; 32],
}

impl Token {
    /// Read the token from `file`: one line, at least 32 characters,
    /// in a file with no group or other permission bits.
    pub fn load(file: &Path) -> Result<Token> {
        let bad = |detail: String| Error::invalid("token file", detail);
        let meta = fs::metadata(file).map_err(|e| bad(format!("{}: {e}", escape::path(file))))?;
        if !meta.is_file() {
            return Err(bad(format!("{} is not a regular file", escape::path(file))));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(bad(format!(
                "{} has mode {:04o}: others may read it; make it 0600 (chmod 600)",
                escape::path(file),
                meta.mode() & 0o7777
            )));
        }
        let text =
            fs::read_to_string(file).map_err(|e| bad(format!("{}: {e}", escape::path(file))))?;
        let token = text.trim();
        if token.len() < MIN_TOKEN_LEN || token.chars().any(|c| c.is_whitespace()) {
            return Err(bad(format!(
                "{}: the token must be one word of at least {MIN_TOKEN_LEN} characters \
                 (e.g. `openssl rand -hex 32`)",
                escape::path(file)
            )));
        }
        Ok(Token::new(token.as_bytes()))
    }

    fn new(secret: &[u8]) -> Token {
        Token {
            hash: *blake3::hash(secret).as_bytes(),
        }
    }

    /// Does `given` equal the token? Constant time in both.
    fn matches(&self, given: &[u8]) -> bool {
        let h = blake3::hash(given);
        bool::from(self.hash.ct_eq(h.as_bytes()))
    }

    /// Does the request's Authorization header carry the token?
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return false;
        };
        let v = value.as_bytes();
        if let Some(t) = strip_scheme(v, b"bearer ") {
            return self.matches(trim(t));
        }
        if let Some(b) = strip_scheme(v, b"basic ") {
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(trim(b)) else {
                return false;
            };
            let password = match decoded.iter().position(|&c| c == b':') {
                Some(i) => &decoded[i + 1..],
                None => return false,
            };
            return self.matches(password);
        }
        false
    }
}

fn strip_scheme<'a>(v: &'a [u8], scheme: &[u8]) -> Option<&'a [u8]> {
    (v.len() >= scheme.len() && v[..scheme.len()].eq_ignore_ascii_case(scheme))
        .then(|| &v[scheme.len()..])
}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

/// The token check (when a token is set) and the headers, around every
/// handler.
pub async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let admitted = app.token.as_ref().is_none_or(|t| t.admits(req.headers()));
    let mut resp = if admitted {
        next.run(req).await
    } else {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            "401 Unauthorized: send the token of --token-file as `Authorization: Bearer TOKEN`, \
             or as the password of HTTP Basic authentication\n",
        )
            .into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"wsnap\", charset=\"UTF-8\""),
        );
        r
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_carry_the_token() {
        let t = Token::new(b"0123456789abcdef0123456789abcdef");
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            t.admits(&h)
        };
        assert!(with("Bearer 0123456789abcdef0123456789abcdef"));
        assert!(with("bearer  0123456789abcdef0123456789abcdef "));
        assert!(!with("Bearer 0123456789abcdef0123456789abcdeF"));
        assert!(!with("Bearer "));
        let basic = base64::engine::general_purpose::STANDARD
            .encode("admin:0123456789abcdef0123456789abcdef");
        assert!(with(&format!("Basic {basic}")));
        let wrong = base64::engine::general_purpose::STANDARD.encode("admin:nope");
        assert!(!with(&format!("Basic {wrong}")));
        assert!(!with("Basic !!!"));
        assert!(!t.admits(&HeaderMap::new()));
    }
}
