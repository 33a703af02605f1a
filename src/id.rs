//! Content ids: BLAKE3-256 of a blob's uncompressed bytes.
//!
//! One 32-byte [`Id`] with a newtype per kind of object, so a tree id cannot
//! be passed where a chunk id is expected. Ids are verified on every read
//! ([`Id::verify`]).

use std::fmt;

use crate::error::{Error, Result};

/// A BLAKE3-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub [u8; 32]);

impl Id {
    /// Hash `bytes`.
    pub fn of(bytes: &[u8]) -> Id {
        Id(*blake3::hash(bytes).as_bytes())
    }

    /// Full lower-case hex form.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        s
    }

    /// The 8-hex-digit prefix shown to people.
    pub fn short(&self) -> String {
        self.to_hex()[..8].to_string()
    }

    /// Parse 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Id> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(Error::invalid("id", format!("{s:?} is not 64 hex digits")));
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_val(pair[0]);
            let lo = hex_val(pair[1]);
            match (hi, lo) {
                (Some(h), Some(l)) => out[i] = (h << 4) | l,
                _ => return Err(Error::invalid("id", format!("{s:?} is not hex"))),
            }
        }
        Ok(Id(out))
    }

    /// Build from a 32-byte slice (catalog column).
    pub fn from_slice(b: &[u8]) -> Result<Id> {
        <[u8; 32]>::try_from(b)
            .map(Id)
            .map_err(|_| Error::corrupt(format!("id of {} bytes, expected 32", b.len())))
    }

    /// Check that `bytes` hash to this id.
    pub fn verify(&self, bytes: &[u8]) -> Result<()> {
        let actual = Id::of(bytes);
        if actual == *self {
            Ok(())
        } else {
            Err(Error::corrupt(format!(
                "blob {} hashes to {}",
                self.to_hex(),
                actual.to_hex()
            )))
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..16])
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub struct $name(pub Id);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

typed_id!(
    /// Id of a chunk of file content.
    ChunkId
);
typed_id!(
    /// Id of an encoded directory listing.
    TreeId
);
typed_id!(
    /// Id of a chunk list: a run of a large file's chunk ids.
    ListId
);
typed_id!(
    /// Id (and file name) of a pack: BLAKE3 of the pack's bytes before the footer.
    PackId
);
typed_id!(
    /// Id of a snapshot: BLAKE3 of its canonical record.
    SnapshotId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = Id::of(b"hello");
        assert_eq!(Id::from_hex(&id.to_hex()).unwrap(), id);
        assert_eq!(id.short().len(), 8);
        assert!(Id::from_hex("zz").is_err());
        assert!(id.verify(b"hello").is_ok());
        assert!(id.verify(b"hellO").is_err());
    }
}
