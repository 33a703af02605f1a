//! Catalog image deltas: between two full images, a push uploads only how
//! the new image differs from the last full one (the *base*), so a tick
//! that changes a few catalog pages sends kilobytes, not the catalog.
//!
//! SQLite changes pages in place and appends new ones, so the new image is
//! cut into segments of [`SEGMENT_BYTES`] and segment `i` is zstd-compressed
//! with segment `i` of the base as its reference prefix (zstd's
//! "patch-from"): unchanged pages become back-references. Format (plaintext
//! of a `catalog/` delta object, then sealed like every object):
//!
//! ```text
//! delta   := "WSNAPDL1"  u32:segment_bytes  u64:base_len  u64:new_len  frame*
//! frame   := u32:len  zstd_frame[len]     one per segment of the new image;
//!            decompressed with base[i·S, min((i+1)·S, base_len)) as prefix
//! ```
//!
//! Memory: one base segment, one new segment and zstd's window (2^25).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"WSNAPDL1";
/// Segment size: 16 MiB.
pub const SEGMENT_BYTES: u32 = 16 << 20;
/// zstd window: a segment and its prefix (32 MiB).
const WINDOW_LOG: u32 = 25;
const HEADER_BYTES: usize = 28;

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("catalog image delta: {what}"),
    )
}

/// Read up to `n` bytes (fewer only at the end of `r`).
fn read_up_to(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Write the delta turning the image `base` into the image `new` to `out`.
/// Returns its size.
pub fn encode(base: &Path, new: &Path, out: &Path) -> io::Result<u64> {
    let base_len = base.metadata()?.len();
    let new_len = new.metadata()?.len();
    let mut b = BufReader::new(File::open(base)?);
    let mut n = BufReader::new(File::open(new)?);
    let mut w = BufWriter::new(crate::durable::create_private_file(out)?);
    w.write_all(MAGIC)?;
    w.write_all(&SEGMENT_BYTES.to_le_bytes())?;
    w.write_all(&base_len.to_le_bytes())?;
    w.write_all(&new_len.to_le_bytes())?;
    let mut total = HEADER_BYTES as u64;
    let mut left = new_len;
    while left > 0 {
        let prefix = read_up_to(&mut b, SEGMENT_BYTES as usize)?;
        let seg = read_up_to(&mut n, SEGMENT_BYTES as usize)?;
        if seg.is_empty() {
            return Err(bad("the new image changed while it was read"));
        }
        left -= seg.len() as u64;
        let mut enc = zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), 3, &prefix)?;
        enc.window_log(WINDOW_LOG)?;
        enc.long_distance_matching(true)?;
        enc.write_all(&seg)?;
        let frame = enc.finish()?;
        w.write_all(&(frame.len() as u32).to_le_bytes())?;
        w.write_all(&frame)?;
        total += 4 + frame.len() as u64;
    }
    crate::durable::sync_file(&w.into_inner().map_err(|e| e.into_error())?)?;
    Ok(total)
}

/// Apply the delta at `delta` to the image `base`, writing the new image
/// to `out`; returns its length (checked against the delta's header).
pub fn apply(base: &Path, delta: &Path, out: &mut impl Write) -> io::Result<u64> {
    let mut d = BufReader::new(File::open(delta)?);
    let mut head = [0u8; HEADER_BYTES];
    d.read_exact(&mut head).map_err(|_| bad("cut short"))?;
    if &head[..8] != MAGIC {
        return Err(bad("no delta header"));
    }
    let seg = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
    let base_len = u64::from_le_bytes(head[12..20].try_into().expect("8 bytes"));
    let new_len = u64::from_le_bytes(head[20..28].try_into().expect("8 bytes"));
    if seg != SEGMENT_BYTES {
        return Err(bad("unknown segment size"));
    }
    if base.metadata()?.len() != base_len {
        return Err(bad("made from another base image"));
    }
    let mut b = BufReader::new(File::open(base)?);
    let mut written = 0u64;
    while written < new_len {
        let prefix = read_up_to(&mut b, seg as usize)?;
        let mut len = [0u8; 4];
        d.read_exact(&mut len).map_err(|_| bad("cut short"))?;
        let len = u32::from_le_bytes(len) as usize;
        if len > 2 * seg as usize {
            return Err(bad("frame too long"));
        }
        let frame = read_up_to(&mut d, len)?;
        if frame.len() != len {
            return Err(bad("cut short"));
        }
        let mut dec = zstd::stream::read::Decoder::with_ref_prefix(&frame[..], &prefix)?;
        dec.window_log_max(WINDOW_LOG)?;
        let n = io::copy(&mut (&mut dec).take(u64::from(seg) + 1), out)?;
        if n == 0 || n > u64::from(seg) {
            return Err(bad("a segment of the wrong size"));
        }
        written += n;
    }
    if written != new_len || d.read(&mut [0u8; 1])? != 0 {
        return Err(bad("not the length its header says"));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delta_rebuilds_the_new_image_and_is_small_when_little_changed() {
        let d = tempfile::tempdir().unwrap();
        let mut base = vec![0u8; 40 << 20];
        let mut x = 1u64;
        for b in base.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let mut new = base.clone();
        for page in [3usize, 1000, 5000, 9000] {
            new[page * 4096..page * 4096 + 100].fill(0xAB);
        }
        new.extend_from_slice(&[7u8; 10_000]);
        let (bp, np, dp) = (d.path().join("b"), d.path().join("n"), d.path().join("d"));
        std::fs::write(&bp, &base).unwrap();
        std::fs::write(&np, &new).unwrap();
        let size = encode(&bp, &np, &dp).unwrap();
        assert!(size < 200_000, "delta of {size} bytes for 4 changed pages");
        let mut out = Vec::new();
        assert_eq!(apply(&bp, &dp, &mut out).unwrap(), new.len() as u64);
        assert!(out == new);
        // Against another base it refuses (or fails), never returns garbage silently.
        std::fs::write(&bp, &base[..base.len() - 1]).unwrap();
        assert!(apply(&bp, &dp, &mut Vec::new()).is_err());
        // A shorter new image, and an empty base.
        std::fs::write(&bp, b"").unwrap();
        std::fs::write(&np, b"small").unwrap();
        encode(&bp, &np, &d.path().join("d2")).unwrap();
        let mut out = Vec::new();
        apply(&bp, &d.path().join("d2"), &mut out).unwrap();
        assert_eq!(out, b"small");
    }
}
