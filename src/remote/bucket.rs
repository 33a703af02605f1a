//! A small synchronous wrapper over the `object_store` crate: list a
//! prefix, get (whole, a byte range, or streamed), put (one request, or a
//! streaming multipart upload with bounded memory), delete, head. It owns
//! a `tokio` runtime and blocks on it; several threads may call it at
//! once (`Runtime::block_on` takes `&self`), which is how transfers run in
//! parallel.
//!
//! URLs: `s3://BUCKET[/PREFIX]` (with an endpoint for servers other than
//! AWS: path-style requests, plain HTTP allowed when the endpoint is
//! `http://`), and `file:///PATH` (a directory that must exist: a second
//! disk). Nothing here knows about encryption: names and bytes go through
//! as given (relative to the remote's prefix).

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::error::Result;

use crate::error::RemoteError;

/// Objects at least this large go up as multipart uploads, in parts of
/// this size (S3 wants parts of 5 MiB or more, except the last).
pub const PART_BYTES: usize = 8 << 20;
/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// Where a remote is and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// `s3://…` or `file:///…` as configured.
    pub url: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

/// S3 credentials (never printed: `Debug` hides them).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials { … }")
    }
}

/// What a URL names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    S3 { bucket: String, prefix: String },
    File { dir: std::path::PathBuf },
}

/// Parse `s3://bucket/prefix` or `file:///path`.
pub fn parse_url(url: &str) -> std::result::Result<Target, String> {
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err("no bucket name after s3://".into());
        }
        let prefix = prefix.trim_matches('/').to_string();
        if prefix.split('/').any(|c| c == "." || c == "..") {
            return Err("the prefix may not contain . or .. components".into());
        }
        return Ok(Target::S3 {
            bucket: bucket.to_string(),
            prefix,
        });
    }
    if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err("a file:// URL needs an absolute path (file:///mnt/backup/wsnap)".into());
        }
        return Ok(Target::File { dir: path.into() });
    }
    Err("expected s3://BUCKET[/PREFIX] or file:///PATH".into())
}

/// An opened remote bucket (or directory) and prefix.
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    rt: tokio::runtime::Runtime,
    /// How the remote is named in messages.
    label: String,
}

impl Bucket {
    /// Open `loc` (named `label` in messages). Contacts nothing yet,
    /// except that a `file://` directory must exist.
    pub fn open(label: &str, loc: &Location, creds: Option<&Credentials>) -> Result<Bucket> {
        let cfg = |detail: String| RemoteError::Config {
            name: label.to_string(),
            detail,
        };
        let target = parse_url(&loc.url).map_err(cfg)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wsnap-remote")
            .enable_all()
            .build()
            .map_err(|e| cfg(format!("cannot start the I/O runtime: {e}")))?;
        let (store, prefix): (Arc<dyn ObjectStore>, String) = match target {
            Target::File { dir } => {
                if !dir.is_dir() {
                    return Err(RemoteError::NoBucket {
                        remote: label.to_string(),
                        detail: format!("{} is not a directory", crate::escape::path(&dir)),
                    }
                    .into());
                }
                let fs =
                    object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(|e| {
                        RemoteError::NoBucket {
                            remote: label.to_string(),
                            detail: e.to_string(),
                        }
                    })?;
                (Arc::new(fs), String::new())
            }
            Target::S3 { bucket, prefix } => {
                let Some(c) = creds else {
                    return Err(RemoteError::Credentials {
                        remote: label.to_string(),
                        detail: "none found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
                                 store them in the remote's credentials file"
                            .into(),
                    }
                    .into());
                };
                let mut b = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(&bucket)
                    .with_region(loc.region.clone().unwrap_or_else(|| "us-east-1".into()))
                    .with_access_key_id(&c.access_key_id)
                    .with_secret_access_key(&c.secret_access_key)
                    .with_virtual_hosted_style_request(false)
                    .with_client_options(
                        object_store::ClientOptions::new()
                            .with_connect_timeout(Duration::from_secs(10))
                            .with_timeout(Duration::from_secs(300)),
                    )
                    .with_retry(object_store::RetryConfig {
                        backoff: object_store::BackoffConfig {
                            init_backoff: Duration::from_millis(200),
                            max_backoff: Duration::from_secs(5),
                            base: 2.0,
                        },
                        max_retries: 4,
                        retry_timeout: Duration::from_secs(60),
                    });
                if let Some(t) = &c.session_token {
                    b = b.with_token(t);
                }
                if let Some(ep) = &loc.endpoint {
                    b = b
                        .with_endpoint(ep)
                        .with_allow_http(ep.starts_with("http://"));
                }
                let s3 = b.build().map_err(|e| cfg(e.to_string()))?;
                (Arc::new(s3), prefix)
            }
        };
        Ok(Bucket {
            store,
            prefix,
            rt,
            label: label.to_string(),
        })
    }

    fn path(&self, name: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(name)
        } else {
            ObjPath::from(format!("{}/{name}", self.prefix))
        }
    }

    fn relative(&self, p: &ObjPath) -> String {
        let s = p.as_ref();
        if self.prefix.is_empty() {
            s.to_string()
        } else {
            s.strip_prefix(&self.prefix)
                .map(|r| r.trim_start_matches('/').to_string())
                .unwrap_or_else(|| s.to_string())
        }
    }

    /// An object_store error as a [`RemoteError`] about `object`.
    pub fn error(&self, object: &str, e: object_store::Error) -> RemoteError {
        classify(&self.label, object, &e)
    }

    /// Every object under `dir` (`"data"`, …), as (name, size), names
    /// relative to the remote's prefix.
    pub fn list(&self, dir: &str) -> Result<Vec<(String, u64)>> {
        let p = self.path(dir);
        let out = self.rt.block_on(async {
            let mut s = self.store.list(Some(&p));
            let mut out = Vec::new();
            while let Some(m) = s.next().await {
                let m = m?;
                out.push((self.relative(&m.location), m.size));
            }
            Ok::<_, object_store::Error>(out)
        });
        match out {
            Ok(mut v) => {
                v.sort();
                Ok(v)
            }
            // A prefix never written to lists as nothing, but some stores
            // answer "not found" for a missing directory.
            Err(e) if object_missing(&e) && self.is_file_store() => Ok(Vec::new()),
            Err(e) => Err(self.error(dir, e).into()),
        }
    }

    fn is_file_store(&self) -> bool {
        self.store.to_string().starts_with("LocalFileSystem")
    }

    /// The whole object, or `None` if there is none.
    pub fn get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let p = self.path(name);
        let r = self.rt.block_on(async {
            let g = self.store.get(&p).await?;
            g.bytes().await
        });
        match r {
            Ok(b) => Ok(Some(b.to_vec())),
            Err(e) if object_missing(&e) => Ok(None),
            Err(e) => Err(self.error(name, e).into()),
        }
    }

    /// Bytes `range` of the object.
    pub fn get_range(&self, name: &str, range: Range<u64>) -> Result<Vec<u8>> {
        let p = self.path(name);
        self.rt
            .block_on(self.store.get_range(&p, range))
            .map(|b| b.to_vec())
            .map_err(|e| self.error(name, e).into())
    }

    /// Stream the object through `f`, piece by piece (bounded memory).
    /// `Ok(false)` if there is no such object.
    pub fn get_stream(&self, name: &str, mut f: impl FnMut(&[u8]) -> Result<()>) -> Result<bool> {
        let p = self.path(name);
        let g = match self.rt.block_on(self.store.get(&p)) {
            Ok(g) => g,
            Err(e) if object_missing(&e) => return Ok(false),
            Err(e) => return Err(self.error(name, e).into()),
        };
        let mut s = g.into_stream();
        while let Some(piece) = self.rt.block_on(s.next()) {
            let piece = piece.map_err(|e| self.error(name, e))?;
            f(&piece)?;
        }
        Ok(true)
    }

    /// The object's size, or `None` if there is none.
    pub fn head(&self, name: &str) -> Result<Option<u64>> {
        let p = self.path(name);
        match self.rt.block_on(self.store.head(&p)) {
            Ok(m) => Ok(Some(m.size)),
            Err(e) if object_missing(&e) => Ok(None),
            Err(e) => Err(self.error(name, e).into()),
        }
    }

    /// Write a whole object in one request (atomic: the old object or the
    /// new one is seen, never a mix).
    pub fn put(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        let p = self.path(name);
        self.rt
            .block_on(self.store.put(&p, PutPayload::from(bytes)))
            .map(drop)
            .map_err(|e| self.error(name, e).into())
    }

    /// Write an object of `len` bytes produced piece by piece by `next`
    /// (`Ok(None)` at the end): one request below [`PART_BYTES`], else a
    /// multipart upload holding at most [`PARTS_IN_FLIGHT`] parts in memory.
    /// The object appears only when complete; a failed upload is aborted.
    pub fn put_stream(
        &self,
        name: &str,
        len: u64,
        mut next: impl FnMut() -> Result<Option<Vec<u8>>>,
    ) -> Result<()> {
        if len < PART_BYTES as u64 {
            let mut all = Vec::with_capacity(len as usize);
            while let Some(piece) = next()? {
                all.extend_from_slice(&piece);
            }
            return self.put(name, all);
        }
        let p = self.path(name);
        let upload = self
            .rt
            .block_on(self.store.put_multipart(&p))
            .map_err(|e| self.error(name, e))?;
        let _enter = self.rt.enter();
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let r: Result<()> = (|| {
            while let Some(piece) = next()? {
                self.rt
                    .block_on(w.wait_for_capacity(PARTS_IN_FLIGHT))
                    .map_err(|e| self.error(name, e))?;
                w.write(&piece);
            }
            Ok(())
        })();
        match r {
            Ok(()) => self
                .rt
                .block_on(w.finish())
                .map(drop)
                .map_err(|e| self.error(name, e).into()),
            Err(e) => {
                let _ = self.rt.block_on(w.abort());
                Err(e)
            }
        }
    }

    /// Delete an object; one already gone is fine.
    pub fn delete(&self, name: &str) -> Result<()> {
        let p = self.path(name);
        match self.rt.block_on(self.store.delete(&p)) {
            Ok(()) => Ok(()),
            Err(e) if object_missing(&e) => Ok(()),
            Err(e) => Err(self.error(name, e).into()),
        }
    }
}

/// Whether `e` says the object is not there (and not that the bucket is
/// missing: S3 servers answer both with 404).
fn object_missing(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. }) && !chain(e).contains("NoSuchBucket")
}

/// The whole chain of an error, for classification and messages.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// Sort an object_store error into what the admin can act on.
fn classify(remote: &str, object: &str, e: &object_store::Error) -> RemoteError {
    let detail = chain(e);
    let remote = remote.to_string();
    let has = |needles: &[&str]| needles.iter().any(|n| detail.contains(n));
    if has(&["NoSuchBucket", "bucket does not exist", "Bucket not found"]) {
        return RemoteError::NoBucket { remote, detail };
    }
    match e {
        object_store::Error::NotFound { .. } => {
            return RemoteError::Missing {
                remote,
                object: object.to_string(),
            }
        }
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            return RemoteError::Credentials { remote, detail }
        }
        _ => {}
    }
    if has(&[
        "error sending request",
        "onnection refused",
        "dns error",
        "failed to lookup",
        "timed out",
        "connect",
        "No route to host",
    ]) {
        return RemoteError::Unreachable { remote, detail };
    }
    // An HTTP status, not any "401"/"403" in the text: an unreachable
    // endpoint's message carries its port (e.g. 40143) and retry times.
    let status = |code: &str| {
        detail.contains(&format!("status: {code}"))
            || detail.contains(&format!("status code {code}"))
            || detail.contains(&format!("{code} Forbidden"))
            || detail.contains(&format!("{code} Unauthorized"))
    };
    if has(&[
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
    ]) || status("403")
        || status("401")
    {
        return RemoteError::Credentials { remote, detail };
    }
    RemoteError::Backend { remote, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        assert_eq!(
            parse_url("s3://b/x/y/").unwrap(),
            Target::S3 {
                bucket: "b".into(),
                prefix: "x/y".into()
            }
        );
        assert_eq!(
            parse_url("s3://b").unwrap(),
            Target::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            parse_url("file:///mnt/b").unwrap(),
            Target::File {
                dir: "/mnt/b".into()
            }
        );
        for bad in ["s3://", "file://rel", "http://x", "s3://b/../x"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_file_bucket_lists_gets_puts_streams_and_deletes() {
        let d = tempfile::tempdir().unwrap();
        let loc = Location {
            url: format!("file://{}", d.path().display()),
            endpoint: None,
            region: None,
        };
        let b = Bucket::open("t", &loc, None).unwrap();
        assert_eq!(b.list("data").unwrap(), vec![]);
        assert_eq!(b.get("data/x").unwrap(), None);
        b.put("data/x", b"hello".to_vec()).unwrap();
        assert_eq!(b.get("data/x").unwrap().unwrap(), b"hello");
        assert_eq!(b.get_range("data/x", 1..3).unwrap(), b"el");
        assert_eq!(b.head("data/x").unwrap(), Some(5));
        // A multipart upload of three parts and a bit.
        let piece = vec![7u8; 1 << 20];
        let n = 3 * PART_BYTES / piece.len() + 1;
        let mut left = n;
        b.put_stream("data/big", (n * piece.len()) as u64, || {
            Ok((left > 0).then(|| {
                left -= 1;
                piece.clone()
            }))
        })
        .unwrap();
        let mut total = 0;
        assert!(b
            .get_stream("data/big", |p| {
                total += p.len();
                Ok(())
            })
            .unwrap());
        assert_eq!(total, n * piece.len());
        assert_eq!(
            b.list("data").unwrap(),
            vec![
                ("data/big".to_string(), (n * piece.len()) as u64),
                ("data/x".to_string(), 5)
            ]
        );
        b.delete("data/x").unwrap();
        b.delete("data/x").unwrap();
        assert_eq!(b.head("data/x").unwrap(), None);
        let gone = Location {
            url: format!("file://{}/absent", d.path().display()),
            ..loc
        };
        assert!(matches!(
            Bucket::open("t", &gone, None),
            Err(crate::Error::Remote(RemoteError::NoBucket { .. }))
        ));
    }
}
