//! Keys of a remote: a 32-byte master key (a 0600 file of 64 hex digits)
//! and the subkeys derived from it with `blake3::derive_key` (BLAKE3's KDF
//! mode; each context string is used for nothing else):
//!
//! | subkey | context | use |
//! |---|---|---|
//! | data key | `wsnap 2026-12 remote object data key v1` | XChaCha20-Poly1305 key of every object |
//! | name key | `wsnap 2026-12 remote object name key v1` | BLAKE3 keyed hash naming packs, journals and images |
//! | key id | `wsnap 2026-12 remote key id v1` | first 16 bytes, in hex, in the plaintext `config` object |
//!
//! The key id tells a wrong key before anything is decrypted; it reveals
//! nothing about the key (a one-way derivation). No cryptography is written
//! here: the AEAD is RustCrypto's `chacha20poly1305`, the KDF and keyed
//! hash are `blake3`'s, randomness is the OS's (`getrandom`).

use std::fs;
use std::io::Write;
use std::path::Path;

use chacha20poly1305::{KeyInit, XChaCha20Poly1305};

use crate::durable;
use crate::error::Result;
use crate::escape;

use crate::error::RemoteError;

const DATA_CONTEXT: &str = "wsnap 2026-12 remote object data key v1";
const NAME_CONTEXT: &str = "wsnap 2026-12 remote object name key v1";
const ID_CONTEXT: &str = "wsnap 2026-12 remote key id v1";

/// The keys of one remote.
pub struct Keys {
    pub(crate) cipher: XChaCha20Poly1305,
    name_key: [u8; 32],
    key_id: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys {{ key_id: {} }}", self.key_id)
    }
}

impl Keys {
    /// The keys derived from a master key.
    pub fn from_master(master: &[u8; 32]) -> Keys {
        let data = blake3::derive_key(DATA_CONTEXT, master);
        let name_key = blake3::derive_key(NAME_CONTEXT, master);
        let id = blake3::derive_key(ID_CONTEXT, master);
        Keys {
            cipher: XChaCha20Poly1305::new(&data.into()),
            name_key,
            key_id: hex(&id[..16]),
        }
    }

    /// Read the master key from `path` (64 hex digits, surrounding
    /// whitespace ignored).
    pub fn load(path: &Path) -> Result<Keys> {
        let bad = |detail: String| RemoteError::KeyFile {
            path: escape::path(path),
            detail,
        };
        let text = fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let master = parse_hex_key(text.trim())
            .ok_or_else(|| bad("not a key (expected 64 hex digits)".into()))?;
        Ok(Keys::from_master(&master))
    }

    /// Make a new random master key and write it to `path`, which must not
    /// exist (mode 0600, fsynced, its directory fsynced).
    pub fn generate(path: &Path) -> Result<Keys> {
        let mut master = [0u8; 32];
        getrandom::fill(&mut master).map_err(|e| RemoteError::KeyFile {
            path: escape::path(path),
            detail: format!("no randomness from the OS: {e}"),
        })?;
        let bad = |e: std::io::Error| RemoteError::KeyFile {
            path: escape::path(path),
            detail: e.to_string(),
        };
        let mut f = durable::create_private_file(path).map_err(bad)?;
        f.write_all(format!("{}\n", hex(&master)).as_bytes())
            .map_err(bad)?;
        durable::sync_file(&f).map_err(bad)?;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        durable::sync_dir(dir.unwrap_or(Path::new("."))).map_err(bad)?;
        Ok(Keys::from_master(&master))
    }

    /// The key id: 32 hex digits, safe to store in plaintext.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The remote name of a content-named object: BLAKE3 keyed with the
    /// name key over `kind ‖ 0x00 ‖ parts…`, in hex. The remote sees no
    /// content id.
    pub fn object_name(&self, kind: &str, parts: &[&[u8]]) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.name_key);
        h.update(kind.as_bytes());
        h.update(&[0]);
        for p in parts {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p);
        }
        h.finalize().to_hex().to_string()
    }
}

/// Random bytes from the OS.
pub fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS gives random bytes");
    b
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn parse_hex_key(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subkeys_differ_and_names_hide_their_input() {
        let a = Keys::from_master(&[1; 32]);
        let b = Keys::from_master(&[2; 32]);
        assert_ne!(a.key_id(), b.key_id());
        assert_eq!(a.key_id().len(), 32);
        let n = a.object_name("pack", &[&[7; 32]]);
        assert_eq!(n.len(), 64);
        assert_ne!(n, b.object_name("pack", &[&[7; 32]]));
        assert_ne!(n, a.object_name("journal", &[&[7; 32]]));
        assert!(!n.contains(&hex(&[7; 32])));
    }

    #[test]
    fn a_generated_key_file_is_private_and_loads_back() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        let k = Keys::generate(&p).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(Keys::load(&p).unwrap().key_id(), k.key_id());
        assert!(Keys::generate(&p).is_err(), "never overwrites a key");
        fs::write(&p, "not hex").unwrap();
        assert!(Keys::load(&p).is_err());
    }
}
