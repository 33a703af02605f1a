//! The remote's pointer object `latest` (an encrypted object holding
//! JSON, version 1): which catalog image is newest, the journal objects
//! beside it, what was pushed when, and the deletion schedule of objects
//! nothing references any more. Written last by a push: a reader that
//! finds it finds everything it names. The decoder checks every field
//! (fuzzed: `fuzz/fuzz_targets/remote_object.rs`).

use serde_json::{json, Value};

/// The pointer format version this build writes and reads.
pub const POINTER_VERSION: u64 = 1;
/// The pointer's object name.
pub const POINTER_OBJECT: &str = "latest";
/// Directories of the remote: packs, catalog images, journals.
pub const DATA_DIR: &str = "data";
pub const IMAGE_DIR: &str = "catalog";
pub const JOURNAL_DIR: &str = "journal";

/// A catalog image on the remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// `catalog/<64 hex>`.
    pub object: String,
    /// Bytes of the SQLite file (uncompressed).
    pub bytes: u64,
}

/// A catalog image delta on the remote: the newest image is the base
/// image ([`Pointer::image`]) with this delta applied (`remote/image.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeltaRef {
    /// `catalog/<64 hex>`.
    pub object: String,
    /// Bytes of the SQLite file it makes.
    pub bytes: u64,
}

/// A journal file on the remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalRef {
    /// `journal/<64 hex>`.
    pub object: String,
    /// Its file name in `STORE/journal/`.
    pub file: String,
    pub bytes: u64,
}

/// An object no pointer references, and since when (the push that first
/// found it unreferenced). Deleted once the grace period has passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreferenced {
    pub object: String,
    pub since_ns: i64,
}

/// The decoded pointer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pointer {
    pub pushed_ns: i64,
    /// `meta.created_ns` of the pushing store's catalog.
    pub store_created_ns: i64,
    /// The newest snapshot in the image: its id (hex) and time.
    pub newest_snapshot: Option<(String, i64)>,
    pub snapshots: u64,
    /// The base image (the newest image itself when `delta` is `None`).
    pub image: ImageRef,
    /// How the newest image differs from the base, if it does.
    pub delta: Option<DeltaRef>,
    pub journals: Vec<JournalRef>,
    pub packs: u64,
    pub pack_bytes: u64,
    /// The grace period this push applied (ns).
    pub grace_ns: i64,
    pub unreferenced: Vec<Unreferenced>,
}

/// Whether `name` is `DIR/` followed by 64 lowercase hex digits.
pub fn is_object_name(dir: &str, name: &str) -> bool {
    name.strip_prefix(dir)
        .and_then(|r| r.strip_prefix('/'))
        .is_some_and(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

fn any_object_name(name: &str) -> bool {
    [DATA_DIR, IMAGE_DIR, JOURNAL_DIR]
        .iter()
        .any(|d| is_object_name(d, name))
}

impl Pointer {
    /// The object that identifies the newest image (the delta if there is
    /// one, else the base).
    pub fn newest_image_object(&self) -> &str {
        self.delta
            .as_ref()
            .map_or(&self.image.object, |d| &d.object)
    }

    pub fn encode(&self) -> Vec<u8> {
        let v = json!({
            "version": POINTER_VERSION,
            "pushed_ns": self.pushed_ns,
            "store_created_ns": self.store_created_ns,
            "newest_snapshot": self.newest_snapshot.as_ref().map(|(id, t)| json!({"id": id, "time_ns": t})),
            "snapshots": self.snapshots,
            "image": {"object": self.image.object, "bytes": self.image.bytes},
            "delta": self.delta.as_ref().map(|d| json!({"object": d.object, "bytes": d.bytes})),
            "journals": self.journals.iter().map(|j| json!({"object": j.object, "file": j.file, "bytes": j.bytes})).collect::<Vec<_>>(),
            "packs": self.packs,
            "pack_bytes": self.pack_bytes,
            "grace_ns": self.grace_ns,
            "unreferenced": self.unreferenced.iter().map(|u| json!({"object": u.object, "since_ns": u.since_ns})).collect::<Vec<_>>(),
        });
        serde_json::to_vec(&v).expect("json")
    }

    /// Decode a pointer's plaintext. `Err(Some(v))`: another version `v`;
    /// `Err(None)`: not a valid pointer.
    pub fn decode(bytes: &[u8]) -> Result<Pointer, Option<u64>> {
        let v: Value = serde_json::from_slice(bytes).map_err(|_| None)?;
        let version = v["version"].as_u64().ok_or(None)?;
        if version != POINTER_VERSION {
            return Err(Some(version));
        }
        let i = |k: &Value| k.as_i64().ok_or(None);
        let u = |k: &Value| k.as_u64().ok_or(None);
        let s = |k: &Value| k.as_str().map(str::to_string).ok_or(None);
        let image = ImageRef {
            object: s(&v["image"]["object"])?,
            bytes: u(&v["image"]["bytes"])?,
        };
        if !is_object_name(IMAGE_DIR, &image.object) {
            return Err(None);
        }
        let delta = match &v["delta"] {
            Value::Null => None,
            d => {
                let r = DeltaRef {
                    object: s(&d["object"])?,
                    bytes: u(&d["bytes"])?,
                };
                if !is_object_name(IMAGE_DIR, &r.object) {
                    return Err(None);
                }
                Some(r)
            }
        };
        let newest_snapshot = match &v["newest_snapshot"] {
            Value::Null => None,
            n => {
                let id = s(&n["id"])?;
                if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(None);
                }
                Some((id, i(&n["time_ns"])?))
            }
        };
        let mut journals = Vec::new();
        for j in v["journals"].as_array().ok_or(None)? {
            let r = JournalRef {
                object: s(&j["object"])?,
                file: s(&j["file"])?,
                bytes: u(&j["bytes"])?,
            };
            let file_ok = crate::journal::is_journal_name(&r.file)
                && !r.file.contains('/')
                && !r.file.starts_with('.')
                && r.file.len() <= 255;
            if !is_object_name(JOURNAL_DIR, &r.object) || !file_ok {
                return Err(None);
            }
            journals.push(r);
        }
        let mut unreferenced = Vec::new();
        for x in v["unreferenced"].as_array().ok_or(None)? {
            let r = Unreferenced {
                object: s(&x["object"])?,
                since_ns: i(&x["since_ns"])?,
            };
            if !any_object_name(&r.object) {
                return Err(None);
            }
            unreferenced.push(r);
        }
        Ok(Pointer {
            pushed_ns: i(&v["pushed_ns"])?,
            store_created_ns: i(&v["store_created_ns"])?,
            newest_snapshot,
            snapshots: u(&v["snapshots"])?,
            image,
            delta,
            journals,
            packs: u(&v["packs"])?,
            pack_bytes: u(&v["pack_bytes"])?,
            grace_ns: i(&v["grace_ns"])?,
            unreferenced,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Pointer {
        Pointer {
            pushed_ns: 5,
            store_created_ns: 1,
            newest_snapshot: Some(("ab".repeat(32), 4)),
            snapshots: 3,
            image: ImageRef {
                object: format!("catalog/{}", "0".repeat(64)),
                bytes: 4096,
            },
            delta: Some(DeltaRef {
                object: format!("catalog/{}", "2".repeat(64)),
                bytes: 8192,
            }),
            journals: vec![JournalRef {
                object: format!("journal/{}", "1".repeat(64)),
                file: "00000000000000000001-2.wsj".into(),
                bytes: 40,
            }],
            packs: 2,
            pack_bytes: 100,
            grace_ns: 3_600_000_000_000,
            unreferenced: vec![Unreferenced {
                object: format!("data/{}", "f".repeat(64)),
                since_ns: 3,
            }],
        }
    }

    #[test]
    fn a_pointer_round_trips_and_bad_fields_are_refused() {
        let p = sample();
        assert_eq!(Pointer::decode(&p.encode()), Ok(p.clone()));
        let mut bad = p.clone();
        bad.journals[0].file = "../../etc/passwd.wsj".into();
        assert_eq!(Pointer::decode(&bad.encode()), Err(None));
        let mut bad = p.clone();
        bad.image.object = "catalog/../x".into();
        assert_eq!(Pointer::decode(&bad.encode()), Err(None));
        let text = String::from_utf8(p.encode())
            .unwrap()
            .replace("\"version\":1", "\"version\":7");
        assert_eq!(Pointer::decode(text.as_bytes()), Err(Some(7)));
        assert_eq!(Pointer::decode(b"{}"), Err(None));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            if let Ok(p) = Pointer::decode(&bytes) {
                proptest::prop_assert_eq!(Pointer::decode(&p.encode()), Ok(p));
            }
            let _ = crate::remote::object::Header::decode(&bytes);
        }

        #[test]
        fn a_pointer_with_one_byte_changed_decodes_or_is_refused(at in 0usize..2000, b in proptest::prelude::any::<u8>()) {
            let mut bytes = sample().encode();
            let i = at % bytes.len();
            bytes[i] = b;
            if let Ok(p) = Pointer::decode(&bytes) {
                proptest::prop_assert_eq!(Pointer::decode(&p.encode()), Ok(p));
            }
        }
    }
}
