//! Content ids: BLAKE3-256 of a blob's uncompressed bytes.
//!
//! One 32-byte [`Id`] with a newtype per kind of object, so a tree id cannot
//! be passed where a chunk id is expected. Ids are verified on every read
//! ([`Id::verify`]).

use std::fmt;

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
    pub fn from_hex(s: &str) -> Result<Id, BadHex> {
        let bytes = s.as_bytes();
        let bad = |digits| BadHex {
            given: s.to_string(),
            digits,
        };
        if bytes.len() != 64 {
            return Err(bad(false));
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_val(pair[0]);
            let lo = hex_val(pair[1]);
            match (hi, lo) {
                (Some(h), Some(l)) => out[i] = (h << 4) | l,
                _ => return Err(bad(true)),
            }
        }
        Ok(Id(out))
    }

    /// Build from a 32-byte slice (catalog column).
    pub fn from_slice(b: &[u8]) -> Result<Id, BadLength> {
        <[u8; 32]>::try_from(b)
            .map(Id)
            .map_err(|_| BadLength { len: b.len() })
    }

    /// Check that `bytes` hash to this id.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), HashMismatch> {
        let found = Id::of(bytes);
        if found == *self {
            Ok(())
        } else {
            Err(HashMismatch {
                expected: *self,
                found,
            })
        }
    }
}

// The errors of this module are its own (it sits below `error`, whose
// variants carry ids); `error.rs` turns each into an `Error` (`From`), so
// `?` works wherever a `crate::Result` is returned.

/// A string that is not an id ([`Id::from_hex`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadHex {
    pub given: String,
    /// 64 characters, but not all hex digits.
    pub digits: bool,
}

impl fmt::Display for BadHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.digits {
            false => write!(f, "{:?} is not 64 hex digits", self.given),
            true => write!(f, "{:?} is not hex", self.given),
        }
    }
}

/// Bytes of another length than an id's 32 ([`Id::from_slice`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadLength {
    pub len: usize,
}

/// Bytes that hash to `found`, not to the id they were read as ([`Id::verify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashMismatch {
    pub expected: Id,
    pub found: Id,
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
