//! The pack byte format, version 1 (all integers little-endian).
//!
//! ```text
//! pack    := header record* footer
//! header  := "WSNAPPK\0" u32:version=1 u32:reserved=0            (16 bytes)
//! record  := rheader payload[stored_len]
//! rheader := u8:kind(1 chunk, 2 tree, 3 chunk list) u8:compression(0 raw, 1 zstd) u16:reserved=0 u32:raw_len
//!            u32:stored_len id[32] u32:check                      (48 bytes)
//!            check = first 4 bytes (LE u32) of BLAKE3(rheader[0..44])
//! footer  := "WSNAPEND" u64:record_count pack_id[32]              (48 bytes)
//!            pack_id = BLAKE3(every byte before the footer) = file name
//! ```
//!
//! A record describes itself, so the catalog's blob index can be rebuilt from
//! the packs alone ([`scan`], [`verify_pack`]). `id` is BLAKE3 of the
//! *uncompressed* payload and is verified on every read ([`decode_payload`]);
//! the header must agree with what the catalog says the record holds
//! ([`ExpectedRecord`]). Callers outside `pack/` ask for what they need
//! (a new record, a verified record, a record's size on disk) and never
//! see an offset or a magic number.

use crate::codec::{Reader, Writer};
use crate::error::{Error, Format, Location, Object, Problem, Result};
use crate::id::{ChunkId, Id, ListId, PackId, TreeId};

pub const PACK_MAGIC: &[u8; 8] = b"WSNAPPK\0";
pub const FOOTER_MAGIC: &[u8; 8] = b"WSNAPEND";
/// Version 1: the first pack format.
pub const PACK_VERSION: u32 = 1;
pub const HEADER_BYTES: usize = 16;
pub const RECORD_HEADER_BYTES: usize = 48;
pub const FOOTER_BYTES: usize = 48;
/// Largest blob (raw or stored) a record may claim; bounds allocations on read.
pub const MAX_BLOB_BYTES: u32 = 1 << 30;

/// What a blob is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlobKind {
    Chunk = 1,
    Tree = 2,
    ChunkList = 3,
}

impl BlobKind {
    /// Trees and chunk lists reference other blobs; they are indexed
    /// together with those references.
    pub fn has_refs(self) -> bool {
        !matches!(self, BlobKind::Chunk)
    }

    pub fn from_code(c: u8) -> Option<BlobKind> {
        match c {
            1 => Some(BlobKind::Chunk),
            2 => Some(BlobKind::Tree),
            3 => Some(BlobKind::ChunkList),
            _ => None,
        }
    }

    /// As messages name it: `chunk`, `tree`, `chunk list`.
    pub fn name(self) -> &'static str {
        match self {
            BlobKind::Chunk => "chunk",
            BlobKind::Tree => "tree",
            BlobKind::ChunkList => "chunk list",
        }
    }

    /// Blob `id` of this kind, as the place of damage.
    pub fn object(self, id: Id) -> Object {
        match self {
            BlobKind::Chunk => Object::Chunk(ChunkId(id)),
            BlobKind::Tree => Object::Tree(TreeId(id)),
            BlobKind::ChunkList => Object::ChunkList(ListId(id)),
        }
    }
}

/// How a payload is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None = 0,
    Zstd = 1,
}

/// The self-describing header in front of every payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub kind: BlobKind,
    pub compression: Compression,
    pub raw_len: u32,
    pub stored_len: u32,
    pub id: Id,
}

/// What the catalog says a record holds. Every read checks the record's
/// header against it ([`RecordHeader::agrees_with`]): one definition of
/// "the record agrees with the catalog".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectedRecord {
    pub id: Id,
    pub kind: BlobKind,
    pub stored_len: u32,
    pub raw_len: u32,
}

impl ExpectedRecord {
    /// The damage of a record whose header `found` is not this one.
    pub fn unlike(&self, found: &RecordHeader) -> Error {
        let sum = |kind: BlobKind, id: &Id, stored: u32, raw: u32| {
            format!("{} {id} of {stored}/{raw} bytes (stored/raw)", kind.name())
        };
        Error::corrupt(Problem::UnlikeCatalog {
            found: sum(found.kind, &found.id, found.stored_len, found.raw_len),
            expected: sum(self.kind, &self.id, self.stored_len, self.raw_len),
        })
    }

    /// A record as an index lists it, (id, kind, offset, stored_len,
    /// raw_len): its offset and what it holds.
    pub fn located(
        (id, kind, offset, stored_len, raw_len): (Id, BlobKind, u64, u32, u32),
    ) -> (u64, ExpectedRecord) {
        let e = ExpectedRecord {
            id,
            kind,
            stored_len,
            raw_len,
        };
        (offset, e)
    }
}

fn check_of(bytes: &[u8]) -> u32 {
    let h = blake3::hash(bytes);
    let b = h.as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

impl RecordHeader {
    /// Whether this is the record the catalog describes: same blob, kind
    /// and lengths.
    pub fn agrees_with(&self, e: &ExpectedRecord) -> bool {
        self.id == e.id
            && self.kind == e.kind
            && self.stored_len == e.stored_len
            && self.raw_len == e.raw_len
    }

    pub fn encode(&self) -> [u8; RECORD_HEADER_BYTES] {
        let mut w = Writer::with_capacity(RECORD_HEADER_BYTES);
        w.u8(self.kind as u8);
        w.u8(self.compression as u8);
        w.u16(0);
        w.u32(self.raw_len);
        w.u32(self.stored_len);
        w.id(&self.id);
        let check = check_of(&w.buf);
        w.u32(check);
        w.buf.try_into().expect("record header is 48 bytes")
    }

    pub fn decode(bytes: &[u8]) -> Result<RecordHeader> {
        if bytes.len() != RECORD_HEADER_BYTES {
            return Err(Error::corrupt(Problem::Length {
                what: "bytes of a pack record header",
                found: bytes.len() as u64,
                expected: RECORD_HEADER_BYTES as u64,
            }));
        }
        let mut r = Reader::new(bytes, "pack record header");
        let kind_code = r.u8()?;
        let comp_code = r.u8()?;
        let reserved = r.u16()?;
        let raw_len = r.u32()?;
        let stored_len = r.u32()?;
        let id = r.id()?;
        let check = r.u32()?;
        if check != check_of(&bytes[..RECORD_HEADER_BYTES - 4]) {
            return Err(Error::corrupt(Problem::ChecksumMismatch {
                what: "pack record header",
            }));
        }
        let bad = |detail: String| Error::corrupt_as(format!("pack record header: {detail}"));
        let kind = BlobKind::from_code(kind_code)
            .ok_or_else(|| bad(format!("unknown blob kind {kind_code}")))?;
        let compression = match comp_code {
            0 => Compression::None,
            1 => Compression::Zstd,
            c => return Err(bad(format!("unknown compression {c}"))),
        };
        if reserved != 0 {
            return Err(bad("reserved field is not zero".into()));
        }
        if raw_len > MAX_BLOB_BYTES || stored_len > MAX_BLOB_BYTES {
            return Err(bad(format!(
                "claims {raw_len} raw / {stored_len} stored bytes"
            )));
        }
        if compression == Compression::None && raw_len != stored_len {
            return Err(bad("uncompressed, with raw_len != stored_len".into()));
        }
        Ok(RecordHeader {
            kind,
            compression,
            raw_len,
            stored_len,
            id,
        })
    }
}

pub fn encode_pack_header() -> [u8; HEADER_BYTES] {
    let mut w = Writer::with_capacity(HEADER_BYTES);
    w.bytes(PACK_MAGIC);
    w.u32(PACK_VERSION);
    w.u32(0);
    w.buf.try_into().expect("pack header is 16 bytes")
}

/// Whether the file at `path` starts like a pack (its magic): a file wsnap
/// wrote as a pack, whole or damaged.
pub fn has_pack_magic(path: &std::path::Path) -> bool {
    let mut head = [0u8; PACK_MAGIC.len()];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| head == *PACK_MAGIC)
}

pub fn decode_pack_header(bytes: &[u8]) -> Result<()> {
    let mut r = Reader::new(bytes, "pack header");
    if r.take(8)? != PACK_MAGIC {
        return Err(Error::corrupt(Problem::BadMagic { what: "pack" }));
    }
    let version = r.u32()?;
    if version != PACK_VERSION {
        return Err(Error::UnsupportedFormat {
            what: Format::Pack,
            found: i64::from(version),
            supported: i64::from(PACK_VERSION)..=i64::from(PACK_VERSION),
            location: Location::Unknown,
        });
    }
    Ok(())
}

/// The pack trailer: how many records, and the pack's own id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footer {
    pub record_count: u64,
    pub pack_id: PackId,
}

impl Footer {
    pub fn encode(&self) -> [u8; FOOTER_BYTES] {
        let mut w = Writer::with_capacity(FOOTER_BYTES);
        w.bytes(FOOTER_MAGIC);
        w.u64(self.record_count);
        w.id(&self.pack_id.0);
        w.buf.try_into().expect("footer is 48 bytes")
    }

    pub fn decode(bytes: &[u8]) -> Result<Footer> {
        let mut r = Reader::new(bytes, "pack footer");
        if r.take(8)? != FOOTER_MAGIC {
            return Err(Error::corrupt(Problem::NoFooter));
        }
        let record_count = r.u64()?;
        let pack_id = PackId(r.id()?);
        r.finish()?;
        Ok(Footer {
            record_count,
            pack_id,
        })
    }
}

/// Compress `raw` with zstd at `level`; keep it raw unless that saves at
/// least 1/32 of the bytes (decompression is not free). Blobs over 16 KiB
/// whose two 2 KiB samples do not compress at all (random data: images,
/// compressed archives, encrypted files) are stored raw without compressing
/// the whole: on a research tree that halves the CPU of a first snapshot.
pub fn compress(raw: &[u8], level: i32) -> (Compression, Vec<u8>) {
    const SAMPLE: usize = 2048;
    if raw.len() > 16 * 1024 {
        let q = raw.len() / 4;
        let incompressible = [&raw[q..q + SAMPLE], &raw[3 * q..3 * q + SAMPLE]]
            .iter()
            .all(|s| zstd_compress(s, 1).is_none_or(|z| z.len() >= SAMPLE - SAMPLE / 64));
        if incompressible {
            return (Compression::None, raw.to_vec());
        }
    }
    if raw.len() >= 64 {
        if let Some(z) = zstd_compress(raw, level) {
            if z.len() <= raw.len() - raw.len() / 32 {
                return (Compression::Zstd, z);
            }
        }
    }
    (Compression::None, raw.to_vec())
}

/// The record that stores blob `id` (of `kind`, bytes `raw`): its header
/// and payload, compressed as [`compress`] decides.
pub fn new_record(kind: BlobKind, id: Id, raw: &[u8], level: i32) -> (RecordHeader, Vec<u8>) {
    let (compression, payload) = compress(raw, level);
    let header = RecordHeader {
        kind,
        compression,
        raw_len: u32::try_from(raw.len()).expect("blob under 4 GiB"),
        stored_len: u32::try_from(payload.len()).expect("blob under 4 GiB"),
        id,
    };
    (header, payload)
}

/// Store again a blob read (and verified) from the record `header`
/// describes, with the same choice of compression (repack): a raw record
/// stays raw, a compressed one is compressed again at `level`.
pub fn recompress(header: &RecordHeader, raw: Vec<u8>, level: i32) -> (RecordHeader, Vec<u8>) {
    let (compression, payload) = match header.compression {
        Compression::None => (Compression::None, raw),
        Compression::Zstd => compress(&raw, level),
    };
    let header = RecordHeader {
        compression,
        stored_len: u32::try_from(payload.len()).expect("blob under 4 GiB"),
        ..*header
    };
    (header, payload)
}

/// Bytes a record with `stored_len` payload bytes takes in its pack
/// (header and payload): what dropping it frees, what adding it costs.
pub fn record_bytes(stored_len: u64) -> u64 {
    RECORD_HEADER_BYTES as u64 + stored_len
}

/// Bytes of a pack whose records take `records_bytes` (its header and
/// footer added): the size a pack holding just those records would have.
pub fn pack_bytes(records_bytes: u64) -> u64 {
    (HEADER_BYTES + FOOTER_BYTES) as u64 + records_bytes
}

fn zstd_compress(raw: &[u8], level: i32) -> Option<Vec<u8>> {
    thread_local! {
        // A zstd context allocates its tables on creation: keep one per
        // thread and level instead of paying that for every small blob.
        static CCTX: std::cell::RefCell<Vec<(i32, zstd::bulk::Compressor<'static>)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    CCTX.with(|c| {
        let mut c = c.borrow_mut();
        let i = match c.iter().position(|(l, _)| *l == level) {
            Some(i) => i,
            None => {
                c.push((level, zstd::bulk::Compressor::new(level).ok()?));
                c.len() - 1
            }
        };
        c[i].1.compress(raw).ok()
    })
}

/// Turn a stored payload back into the blob's bytes and verify its id.
pub fn decode_payload(header: &RecordHeader, stored: &[u8]) -> Result<Vec<u8>> {
    let blob = || header.kind.object(header.id);
    if stored.len() != header.stored_len as usize {
        return Err(Error::corrupt(Problem::Length {
            what: "stored bytes",
            found: stored.len() as u64,
            expected: u64::from(header.stored_len),
        })
        .within(blob()));
    }
    let raw = match header.compression {
        Compression::None => stored.to_vec(),
        Compression::Zstd => {
            thread_local! {
                static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
                    const { std::cell::RefCell::new(None) };
            }
            let raw = DCTX
                .with(|d| {
                    let mut d = d.borrow_mut();
                    if d.is_none() {
                        *d = Some(zstd::bulk::Decompressor::new()?);
                    }
                    d.as_mut()
                        .expect("just set")
                        .decompress(stored, header.raw_len as usize)
                })
                .map_err(|e| Error::corrupt_as(format!("zstd: {e}")).within(blob()))?;
            if raw.len() != header.raw_len as usize {
                return Err(Error::corrupt(Problem::Length {
                    what: "bytes decompressed",
                    found: raw.len() as u64,
                    expected: u64::from(header.raw_len),
                })
                .within(blob()));
            }
            raw
        }
    };
    header.id.verify(&raw).map_err(|e| {
        Error::corrupt(Problem::HashMismatch {
            expected: e.expected,
            found: e.found,
        })
        .within(blob())
    })?;
    Ok(raw)
}

/// Every record of a whole pack file, with its offset, after checking the
/// header, the footer and the pack id. Used to verify packs and to rebuild
/// the catalog from packs. Payloads are not decompressed here.
pub fn scan(bytes: &[u8]) -> Result<(PackId, Vec<(u64, RecordHeader)>)> {
    if bytes.len() < HEADER_BYTES + FOOTER_BYTES {
        return Err(Error::corrupt(Problem::Truncated {
            what: "pack",
            offset: 0,
            need: (HEADER_BYTES + FOOTER_BYTES) as u64,
            have: bytes.len() as u64,
        }));
    }
    decode_pack_header(&bytes[..HEADER_BYTES])?;
    let body_end = bytes.len() - FOOTER_BYTES;
    let footer = Footer::decode(&bytes[body_end..])?;
    let actual = PackId(Id::of(&bytes[..body_end]));
    if actual != footer.pack_id {
        return Err(Error::corrupt(Problem::HashMismatch {
            expected: footer.pack_id.0,
            found: actual.0,
        })
        .within(Object::Pack(footer.pack_id)));
    }
    let mut records = Vec::new();
    let mut pos = HEADER_BYTES;
    while pos < body_end {
        let record = Object::Record { offset: pos as u64 };
        if body_end - pos < RECORD_HEADER_BYTES {
            return Err(Error::corrupt(Problem::Truncated {
                what: "pack record header",
                offset: pos as u64,
                need: RECORD_HEADER_BYTES as u64,
                have: (body_end - pos) as u64,
            }));
        }
        let h = RecordHeader::decode(&bytes[pos..pos + RECORD_HEADER_BYTES])
            .map_err(|e| e.within(record.clone()))?;
        let payload_end = pos + RECORD_HEADER_BYTES + h.stored_len as usize;
        if payload_end > body_end {
            return Err(Error::corrupt(Problem::Truncated {
                what: "pack record payload",
                offset: (pos + RECORD_HEADER_BYTES) as u64,
                need: u64::from(h.stored_len),
                have: (body_end - pos - RECORD_HEADER_BYTES) as u64,
            }));
        }
        records.push((pos as u64, h));
        pos = payload_end;
    }
    if records.len() as u64 != footer.record_count {
        return Err(Error::corrupt_as(format!(
            "pack has {} records, footer says {}",
            records.len(),
            footer.record_count
        )));
    }
    Ok((footer.pack_id, records))
}

/// [`scan`], and every payload decompressed and re-hashed: a whole, intact
/// pack's id and records.
pub fn verify_pack(bytes: &[u8]) -> Result<(PackId, Vec<(u64, RecordHeader)>)> {
    let (id, records) = scan(bytes)?;
    for (offset, h) in &records {
        let start = *offset as usize + RECORD_HEADER_BYTES;
        decode_payload(h, &bytes[start..start + h.stored_len as usize])
            .map_err(|e| e.within(Object::Record { offset: *offset }))?;
    }
    Ok((id, records))
}

/// The blob of the record at `offset` in a whole pack's `bytes`, if that
/// record is the one `expected` describes, and its payload decompresses and
/// hashes to its id.
pub fn verify_record(bytes: &[u8], offset: u64, expected: &ExpectedRecord) -> Result<Vec<u8>> {
    verify_record_at(bytes, offset, expected).map_err(|e| e.within(Object::Record { offset }))
}

fn verify_record_at(bytes: &[u8], offset: u64, expected: &ExpectedRecord) -> Result<Vec<u8>> {
    let beyond = |what: &'static str, start: u64, need: u64| {
        Error::corrupt(Problem::Truncated {
            what,
            offset: start,
            need,
            have: (bytes.len() as u64).saturating_sub(start),
        })
    };
    let header_len = RECORD_HEADER_BYTES as u64;
    let hbytes = usize::try_from(offset)
        .ok()
        .and_then(|start| bytes.get(start..start.checked_add(RECORD_HEADER_BYTES)?))
        .ok_or_else(|| beyond("pack record header", offset, header_len))?;
    let h = RecordHeader::decode(hbytes)?;
    if !h.agrees_with(expected) {
        return Err(expected.unlike(&h));
    }
    let start = offset + header_len;
    let data = usize::try_from(start)
        .ok()
        .and_then(|s| bytes.get(s..s.checked_add(h.stored_len as usize)?))
        .ok_or_else(|| beyond("pack record payload", start, u64::from(h.stored_len)))?;
    decode_payload(&h, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn record_header_round_trip(kind in 1u8..=3, z in any::<bool>(), raw_len in 0u32..MAX_BLOB_BYTES, id in any::<[u8; 32]>()) {
            let compression = if z { Compression::Zstd } else { Compression::None };
            let stored_len = if z { raw_len / 2 } else { raw_len };
            let h = RecordHeader { kind: BlobKind::from_code(kind).unwrap(), compression, raw_len, stored_len, id: Id(id) };
            prop_assert_eq!(RecordHeader::decode(&h.encode()).unwrap(), h);
        }

        #[test]
        fn compress_round_trip(raw in proptest::collection::vec(any::<u8>(), 0..5000), repeat in 1usize..4) {
            let raw: Vec<u8> = raw.iter().copied().cycle().take(raw.len() * repeat).collect();
            let (compression, stored) = compress(&raw, 3);
            let h = RecordHeader { kind: BlobKind::Chunk, compression, raw_len: raw.len() as u32, stored_len: stored.len() as u32, id: Id::of(&raw) };
            prop_assert_eq!(decode_payload(&h, &stored).unwrap(), raw);
        }

        #[test]
        fn scan_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = scan(&bytes);
        }
    }

    #[test]
    fn a_pack_of_another_version_is_unsupported_not_corrupt() {
        let mut pack = encode_pack_header().to_vec();
        pack[8..12].copy_from_slice(&(PACK_VERSION + 1).to_le_bytes());
        let e = decode_pack_header(&pack).unwrap_err();
        assert!(
            matches!(&e, Error::UnsupportedFormat { what: Format::Pack, found: 2, supported, location: Location::Unknown }
                if *supported == (1..=1)),
            "{e:?}"
        );
        // Where it is read whole, the caller says which file it is.
        pack.extend(
            Footer {
                record_count: 0,
                pack_id: PackId(Id::of(&pack)),
            }
            .encode(),
        );
        let path = std::path::PathBuf::from("/s/packs/ab/x.pack");
        let e = scan(&pack)
            .unwrap_err()
            .within(Object::PackFile(path.clone()));
        assert!(
            matches!(&e, Error::UnsupportedFormat { location: Location::File(p), .. } if *p == path)
        );
        let m = e.to_string();
        assert!(
            m.starts_with(
                "pack /s/packs/ab/x.pack has format version 2; this wsnap reads version 1"
            ),
            "{m}"
        );
        assert!(
            m.contains("newer wsnap") && !m.contains("corrupt") && !m.contains("check"),
            "{m}"
        );
    }

    #[test]
    fn flipped_header_bit_is_detected() {
        let h = RecordHeader {
            kind: BlobKind::Tree,
            compression: Compression::None,
            raw_len: 10,
            stored_len: 10,
            id: Id::of(b"x"),
        };
        let mut b = h.encode();
        b[5] ^= 1;
        assert!(RecordHeader::decode(&b).is_err());
    }
}
