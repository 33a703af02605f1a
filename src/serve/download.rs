//! `GET /download/USER/PROJECT/PATH?at=TIME|snapshot=ID`: a file as it is
//! (the bytes `wsnap cat` writes), a directory (or the whole workspace,
//! PATH empty) as a `.tar.gz` made while it is sent.
//!
//! A blocking thread holds one reading view for the whole download and
//! writes into a channel of [`IN_FLIGHT`] blocks that the response body
//! drains: memory stays a few chunks whatever the size. Before anything
//! is sent the size is known (a file's entry; a directory's by a walk of
//! its trees, no content read) and a download over `Limits::download_bytes`
//! is refused with 413. The head is sent with the first block, so a chunk
//! found damaged before then is answered with the error (500 and its
//! message); one found later ends the response with an error (the
//! connection is cut, so the client sees a failed transfer, never a short
//! file that looks whole).
//!
//! The archive holds the directory under its own name (the project's name
//! for the whole workspace), entries depth first in name order, with each
//! entry's mode, mtime (whole seconds, as tar keeps it), uid and gid;
//! files are read through the mount's reader (`reader::FileIndex`),
//! verified chunk by chunk.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use flate2::write::GzEncoder;
use flate2::Compression;
use tokio::sync::{mpsc, oneshot};

use super::app::App;
use super::html::{enc, HttpError};
use super::request::{self, Query as Params};
use crate::browse::Reading;
use crate::error::{Error, Result};
use crate::escape::Escaped;
use crate::human;
use crate::model::SnapshotRow;
use crate::pack::BlobKind;
use crate::reader::{Blobs, FileIndex};
use crate::select::Node;
use crate::tree::{join_rel, Entry, EntryKind, Tree};

/// Blocks buffered between the reading thread and the socket.
const IN_FLIGHT: usize = 4;
/// Bytes per block sent (a gzip stream is cut into blocks of this size).
const BLOCK: usize = 128 << 10;

type Chunk = std::result::Result<Bytes, io::Error>;

/// What the reading thread found before sending.
enum Head {
    File { name: Vec<u8>, size: u64 },
    Tar { name: Vec<u8> },
}

pub async fn download(
    State(app): State<Arc<App>>,
    uri: Uri,
    Query(q): Query<Params>,
) -> std::result::Result<Response, HttpError> {
    let t = request::target(&uri)?;
    let sel = request::selector(&q)?;
    let (tx, rx) = mpsc::channel::<Chunk>(IN_FLIGHT);
    let (head_tx, head_rx) = oneshot::channel::<std::result::Result<Head, HttpError>>();
    let app2 = app.clone();
    tokio::task::spawn_blocking(move || {
        let app = app2;
        let mut head_tx = Some(head_tx);
        let result = (|| -> std::result::Result<(), HttpError> {
            let reading = app.reading()?;
            let snap = reading.select(&t.ws, &sel)?;
            let limit = app.limits.download_bytes;
            let node = reading.resolve(&snap, &t.path)?;
            let entries = match node {
                Node::Root(tree) => tree.entries,
                Node::Entry(e) => match &e.kind {
                    EntryKind::File { .. } => {
                        refuse_over(limit, e.size, 1, &t.path, &snap)?;
                        let head = Head::File {
                            name: e.name.clone(),
                            size: e.size,
                        };
                        let mut w =
                            ChannelWriter::new(tx.clone(), head_tx.take().expect("once"), head);
                        match reading.cat(&snap, &t.path, &mut w, Path::new("<http>")) {
                            Ok(_) => w.flush_block(),
                            Err(e) => w.fail(e),
                        }
                        return Ok(());
                    }
                    EntryKind::Symlink { target } => {
                        return Err(HttpError::bad(format!(
                            "{} is a symlink to {}: nothing to download",
                            Escaped(&t.path),
                            Escaped(target)
                        )))
                    }
                    EntryKind::Dir { tree } => {
                        reading
                            .blobs()
                            .tree(tree)
                            .map_err(|u| u.into_error())?
                            .entries
                    }
                },
            };
            let (bytes, count) = measure(&reading.blobs(), &entries)?;
            refuse_over(limit, bytes, count, &t.path, &snap)?;
            let top = match t.path.rsplit(|&b| b == b'/').find(|c| !c.is_empty()) {
                Some(n) => n.to_vec(),
                None => t.ws.project.clone(),
            };
            let head = Head::Tar { name: top.clone() };
            let mut w = ChannelWriter::new(tx.clone(), head_tx.take().expect("once"), head);
            let written = write_tar(&reading, &entries, &top, &mut w);
            match written.and_then(|w2| w2.finish()) {
                Ok(_) => w.flush_block(),
                Err(e) => w.fail(e),
            }
            Ok(())
        })();
        if let Err(e) = result {
            if let Some(h) = head_tx.take() {
                let _ = h.send(Err(e));
            }
        }
    });
    let head = head_rx.await.map_err(|_| {
        HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the download's reader stopped",
        )
    })??;
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|c| (c, rx))
    }));
    let (file_name, len, ctype) = match &head {
        Head::File { name, size } => (name.clone(), Some(*size), "application/octet-stream"),
        Head::Tar { name } => {
            let mut n = name.clone();
            n.extend_from_slice(b".tar.gz");
            (n, None, "application/gzip")
        }
    };
    let ascii: String = String::from_utf8_lossy(&file_name)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        enc(&file_name)
    );
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(ctype),
    );
    if let Ok(v) = header::HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(l) = len {
        h.insert(header::CONTENT_LENGTH, l.into());
    }
    Ok(resp.into_response())
}

fn refuse_over(
    limit: u64,
    bytes: u64,
    files: u64,
    path: &[u8],
    snap: &SnapshotRow,
) -> std::result::Result<(), HttpError> {
    if bytes <= limit {
        return Ok(());
    }
    Err(HttpError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "/{} of {} holds {} in {files} files, more than this server's download limit of {} \
             (--max-download): restore it instead, with `wsnap restore {} --snapshot {} --path … \
             --to DIR`",
            Escaped(path),
            snap.workspace,
            human::size(bytes),
            human::size(limit),
            snap.workspace,
            snap.id.0.short()
        ),
    ))
}

/// Total file bytes and entries below `entries` (trees read, no content).
fn measure(blobs: &Blobs<'_>, entries: &[Entry]) -> Result<(u64, u64)> {
    let (mut bytes, mut count) = (0u64, 0u64);
    let mut stack: Vec<Vec<Entry>> = vec![entries.to_vec()];
    while let Some(list) = stack.pop() {
        for e in list {
            count += 1;
            match &e.kind {
                EntryKind::File { .. } => bytes += e.size,
                EntryKind::Dir { tree } => {
                    stack.push(blobs.tree(tree).map_err(|u| u.into_error())?.entries)
                }
                EntryKind::Symlink { .. } => {}
            }
        }
    }
    Ok((bytes, count))
}

type TarOut<'w> = tar::Builder<GzEncoder<&'w mut ChannelWriter>>;

/// The archive of `entries` under `top/`, written to `w` gzipped.
fn write_tar<'w>(
    reading: &Reading<'_>,
    entries: &[Entry],
    top: &[u8],
    w: &'w mut ChannelWriter,
) -> Result<TarOut<'w>> {
    let gz = GzEncoder::new(w, Compression::fast());
    let mut ar = tar::Builder::new(gz);
    let blobs = reading.blobs();
    let io_err = |e: io::Error| Error::invalid("download", e.to_string());
    // Depth first in name order: a stack of (directory path, entries
    // left, reversed).
    let mut stack: Vec<(Vec<u8>, Vec<Entry>)> = vec![(top.to_vec(), rev(entries.to_vec()))];
    let root_header = dir_header(0o755, 0, 0, 0);
    append_dir(&mut ar, root_header, top).map_err(io_err)?;
    while let Some((dir, mut left)) = stack.pop() {
        let Some(e) = left.pop() else { continue };
        let p = join_rel(&dir, &e.name);
        stack.push((dir, left));
        match &e.kind {
            EntryKind::Dir { tree } => {
                let sub: Tree = blobs.tree(tree).map_err(|u| u.into_error())?;
                append_dir(&mut ar, dir_header(e.mode, e.mtime_ns, e.uid, e.gid), &p)
                    .map_err(io_err)?;
                stack.push((p, rev(sub.entries)));
            }
            EntryKind::Symlink { target } => {
                let mut h = header(&e, tar::EntryType::Symlink, 0);
                ar.append_link(&mut h, os(&p), os(target)).map_err(io_err)?;
            }
            EntryKind::File { content } => {
                let mut h = header(&e, tar::EntryType::Regular, e.size);
                let data = FileRead {
                    blobs,
                    index: FileIndex::new(content.clone()),
                    offset: 0,
                    size: e.size,
                    buf: Vec::new(),
                    pos: 0,
                };
                ar.append_data(&mut h, os(&p), data).map_err(io_err)?;
            }
        }
    }
    Ok(ar)
}

trait Finish {
    fn finish(self) -> Result<()>;
}

impl Finish for TarOut<'_> {
    fn finish(self) -> Result<()> {
        let gz = self
            .into_inner()
            .map_err(|e| Error::invalid("download", e.to_string()))?;
        gz.finish()
            .map_err(|e| Error::invalid("download", e.to_string()))?;
        Ok(())
    }
}

fn rev(mut v: Vec<Entry>) -> Vec<Entry> {
    v.reverse();
    v
}

fn os(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

fn header(e: &Entry, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(e.mode);
    h.set_mtime(e.mtime_ns.div_euclid(1_000_000_000).max(0) as u64);
    h.set_uid(u64::from(e.uid));
    h.set_gid(u64::from(e.gid));
    h.set_size(size);
    h
}

fn dir_header(mode: u32, mtime_ns: i64, uid: u32, gid: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(mode);
    h.set_mtime(mtime_ns.div_euclid(1_000_000_000).max(0) as u64);
    h.set_uid(u64::from(uid));
    h.set_gid(u64::from(gid));
    h.set_size(0);
    h
}

fn append_dir<W: Write>(ar: &mut tar::Builder<W>, mut h: tar::Header, p: &[u8]) -> io::Result<()> {
    let mut name = p.to_vec();
    name.push(b'/');
    ar.append_data(&mut h, os(&name), io::empty())
}

/// A file's bytes as a `Read`, chunk by chunk through the mount's index,
/// each chunk verified; fewer bytes than the entry's size is an error.
struct FileRead<'a> {
    blobs: Blobs<'a>,
    index: FileIndex,
    offset: u64,
    size: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for FileRead<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.offset >= self.size {
                return Ok(0);
            }
            let at = self
                .index
                .locate(&self.blobs, self.offset)
                .map_err(|u| io::Error::other(u.to_string()))?
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file's chunks end before its size",
                    )
                })?;
            let data = self
                .blobs
                .read(&at.id.0, BlobKind::Chunk)
                .map_err(|u| io::Error::other(u.to_string()))?;
            let skip = (self.offset - at.start) as usize;
            self.buf = data;
            self.pos = skip.min(self.buf.len());
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.offset += n as u64;
        Ok(n)
    }
}

/// Bytes into the response body, in blocks of [`BLOCK`]; a closed
/// receiver (the client went away) is a broken pipe.
struct ChannelWriter {
    tx: mpsc::Sender<Chunk>,
    block: Vec<u8>,
    /// The answer's head, sent with the first block: an error met before
    /// any byte is sent (a small file's lost chunk) is then an HTTP error
    /// with its message, not a connection cut before the status line.
    head: Option<(HeadSender, Head)>,
}

type HeadSender = oneshot::Sender<std::result::Result<Head, HttpError>>;

impl ChannelWriter {
    fn new(tx: mpsc::Sender<Chunk>, head_tx: HeadSender, head: Head) -> ChannelWriter {
        ChannelWriter {
            tx,
            block: Vec::with_capacity(BLOCK),
            head: Some((head_tx, head)),
        }
    }

    fn send(&mut self, c: Chunk) -> io::Result<()> {
        if let Some((head_tx, head)) = self.head.take() {
            let _ = head_tx.send(Ok(head));
        }
        self.tx
            .blocking_send(c)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }

    /// Send what is left (and the head, for an empty or small body).
    fn flush_block(&mut self) {
        if !self.block.is_empty() || self.head.is_some() {
            let b = std::mem::take(&mut self.block);
            let _ = self.send(Ok(Bytes::from(b)));
        }
    }

    /// End with an error: before the head, the answer is that error;
    /// after it, the connection is cut (the client sees a failed transfer,
    /// never a short file).
    fn fail(&mut self, e: Error) {
        tracing::error!("download failed: {e}");
        match self.head.take() {
            Some((head_tx, _)) => {
                let _ = head_tx.send(Err(HttpError::from(e)));
            }
            None => {
                let _ = self.send(Err(io::Error::other(e.to_string())));
            }
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.block.extend_from_slice(data);
        if self.block.len() >= BLOCK {
            let b = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
            self.send(Ok(Bytes::from(b)))?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
