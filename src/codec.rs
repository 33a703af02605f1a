//! Little-endian byte encoding primitives shared by every on-disk format.
//!
//! [`Reader`] never panics: every read is bounds-checked and a short or
//! malformed input becomes [`Error::Corrupt`] naming what was being decoded
//! and where ([`Problem::Truncated`], [`Problem::TrailingBytes`],
//! [`Problem::Malformed`]); the caller adds which object it was.

use crate::error::{Error, Problem, Result};
use crate::id::Id;

/// Appends fixed-width little-endian fields to a buffer.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn with_capacity(n: usize) -> Writer {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn id(&mut self, id: &Id) {
        self.buf.extend_from_slice(&id.0);
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
}

/// Reads fixed-width little-endian fields, with bounds checks.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// `what` names the structure in error messages ("tree", "pack header").
    pub fn new(buf: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { buf, pos: 0, what }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::corrupt(Problem::Truncated {
                what: self.what,
                offset: self.pos as u64,
                need: n as u64,
                have: self.remaining() as u64,
            }));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn id(&mut self) -> Result<Id> {
        Ok(Id(self.array()?))
    }

    /// Fail unless every byte was consumed.
    pub fn finish(&self) -> Result<()> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(Error::corrupt(Problem::TrailingBytes {
                what: self.what,
                count: self.remaining() as u64,
            }))
        }
    }

    /// A field just read that the decoder rejects.
    pub fn error(&self, detail: impl std::fmt::Display) -> Error {
        Error::corrupt(Problem::Malformed {
            what: self.what,
            offset: self.pos as u64,
            detail: detail.to_string(),
        })
    }

    /// The structure does not start with its magic bytes.
    pub fn bad_magic(&self) -> Error {
        Error::corrupt(Problem::BadMagic { what: self.what })
    }
}
