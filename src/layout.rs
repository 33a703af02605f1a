//! The store's directory tree: the one place that names its files, lists
//! its pack files and recognises a store by its contents.
//!
//! ```text
//! STORE/                0700
//!   catalog.sqlite      the index (SQLite, WAL); never delete -wal/-shm by hand
//!   packs/xx/<id>.pack  immutable pack files, 0600
//!   journal/*.wsj       snapshot journals (the catalog is rebuilt from them and the packs)
//!   tmp/                packs being written; garbage after a crash
//!   lock                flock target; holds the writer's pid
//!   readers             flock target: shared by readers, exclusive while gc deletes packs
//!   damaged/repair-<time>/   what `repair` set aside: damaged packs, old catalogs and journals
//!   remotes/NAME.json   an off-site copy's configuration (0600), beside NAME.key (the
//!                       generated key), NAME.credentials, NAME.state (last push),
//!                       NAME.lock (one push at a time), NAME.push/ (a push's staging),
//!                       NAME.base (the remote's base catalog image)
//!   cache/NAME/         what was fetched from remote NAME, laid out as a read-only store
//! ```
//!
//! Everything here is a name or a directory listing; what the files hold
//! is known to `pack`, `journal` and `catalog`. Only recognising a store by
//! its files ([`holds_store_data`]) looks into them, through the two format
//! files' magic (`pack/format.rs`, the journal's): `layout` sits above those
//! and below every module that reads or writes the store (`pack::Packs`,
//! the pack writer, journal files, catalog, store).

use std::fs;
use std::path::{Path, PathBuf};

use crate::durable;
use crate::error::{Error, Result};
use crate::id::{Id, PackId};

/// The catalog's file name.
const CATALOG: &str = "catalog.sqlite";
const PACKS: &str = "packs";
const TMP: &str = "tmp";
const JOURNAL: &str = "journal";
const LOCK: &str = "lock";
const READERS: &str = "readers";
const DAMAGED: &str = "damaged";
const REMOTES: &str = "remotes";
const CACHE: &str = "cache";
/// The suffix of a pack file.
const PACK_SUFFIX: &str = ".pack";
/// The suffix of a journal file.
const JOURNAL_SUFFIX: &str = ".wsj";

/// Entries a store directory may hold before its catalog exists (a crashed
/// `init`, see `Store::init`).
const INIT_LEFTOVERS: &[&str] = &[PACKS, TMP, JOURNAL, LOCK, READERS, "catalog.sqlite.tmp"];

/// `STORE/catalog.sqlite`.
pub fn catalog_path(store: &Path) -> PathBuf {
    store.join(CATALOG)
}

/// The catalog and its SQLite companions: `catalog.sqlite`, `-wal`, `-shm`.
pub fn catalog_files(store: &Path) -> [PathBuf; 3] {
    let main = catalog_path(store);
    [
        main.clone(),
        with_suffix(&main, "-wal"),
        with_suffix(&main, "-shm"),
    ]
}

/// Where `repair` builds a fresh catalog before it takes over.
pub fn repair_catalog_path(store: &Path) -> PathBuf {
    with_suffix(&catalog_path(store), ".repair")
}

/// `STORE/packs/`.
pub fn packs_dir(store: &Path) -> PathBuf {
    store.join(PACKS)
}

/// Where pack `id` lives: `STORE/packs/xx/<id>.pack`.
pub fn pack_path(store: &Path, id: &PackId) -> PathBuf {
    let hex = id.0.to_hex();
    packs_dir(store)
        .join(&hex[..2])
        .join(format!("{hex}{PACK_SUFFIX}"))
}

/// The pack id a file name `<hex>.pack` claims, if it is one.
pub fn pack_id_of(path: &Path) -> Option<PackId> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(PACK_SUFFIX))
        .and_then(|h| Id::from_hex(h).ok())
        .map(PackId)
}

/// Whether `path`'s name ends in `.pack` (a pack file, intact or not,
/// whether or not the rest of its name is a pack id).
pub fn has_pack_suffix(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(PACK_SUFFIX))
}

/// `STORE/tmp/`: packs being written.
pub fn tmp_dir(store: &Path) -> PathBuf {
    store.join(TMP)
}

/// `STORE/journal/`.
pub fn journal_dir(store: &Path) -> PathBuf {
    store.join(JOURNAL)
}

/// `STORE/lock`: the writers' lock.
pub fn lock_path(store: &Path) -> PathBuf {
    store.join(LOCK)
}

/// `STORE/readers`: the readers' lock.
pub fn readers_path(store: &Path) -> PathBuf {
    store.join(READERS)
}

/// `STORE/damaged/`: what `repair` set aside.
pub fn damaged_dir(store: &Path) -> PathBuf {
    store.join(DAMAGED)
}

/// `STORE/remotes/`: the configuration of the off-site copies.
pub fn remotes_dir(store: &Path) -> PathBuf {
    store.join(REMOTES)
}

/// `STORE/remotes/NAME.json`: remote `NAME`'s configuration.
pub fn remote_config_path(store: &Path, name: &str) -> PathBuf {
    remotes_dir(store).join(format!("{name}.json"))
}

/// The remote name a file `remotes/NAME.json` configures, if it is one.
pub fn remote_name_of(path: &Path) -> Option<String> {
    path.file_name()?
        .to_str()?
        .strip_suffix(".json")
        .map(str::to_string)
}

/// `STORE/remotes/NAME.key`: a key `remote add` generated.
pub fn remote_key_path(store: &Path, name: &str) -> PathBuf {
    remotes_dir(store).join(format!("{name}.key"))
}

/// `STORE/remotes/NAME.credentials`: S3 credentials kept for cron.
pub fn remote_credentials_path(store: &Path, name: &str) -> PathBuf {
    remotes_dir(store).join(format!("{name}.credentials"))
}

/// `STORE/remotes/NAME.state`: what the last push did (for `status`).
pub fn remote_state_path(store: &Path, name: &str) -> PathBuf {
    remotes_dir(store).join(format!("{name}.state"))
}

/// `STORE/remotes/NAME.lock`: held by a push for its whole run.
pub fn remote_lock_path(store: &Path, name: &str) -> PathBuf {
    remotes_dir(store).join(format!("{name}.lock"))
}

/// `STORE/remotes/NAME.base`: the remote's base catalog image, as
/// uploaded whole (pushes upload deltas against it).
pub fn remote_base_path(store: &Path, name: &str) -> PathBuf {
    remotes_dir(store).join(format!("{name}.base"))
}

/// `STORE/remotes/NAME.push/`: the catalog image and journal copies a
/// push uploads (taken under the writer lock, uploaded after it).
pub fn remote_push_dir(store: &Path, name: &str) -> PathBuf {
    remotes_dir(store).join(format!("{name}.push"))
}

/// `STORE/cache/NAME/`: a read-only store made of what was fetched from
/// remote `NAME` (its catalog image and the packs restores needed).
pub fn remote_cache_dir(store: &Path, name: &str) -> PathBuf {
    store.join(CACHE).join(name)
}

/// Whether `name` is an entry of the remote configuration (`remotes/`,
/// `cache/`): a directory holding only those is still empty enough for
/// `init` or `pull`.
pub fn is_remote_entry(name: &std::ffi::OsStr) -> bool {
    name == REMOTES || name == CACHE
}

/// The directories `init` creates, in order.
pub fn init_dirs(store: &Path) -> [PathBuf; 2] {
    [packs_dir(store), tmp_dir(store)]
}

/// The lock files `init` creates.
pub fn init_lock_files(store: &Path) -> [PathBuf; 2] {
    [lock_path(store), readers_path(store)]
}

/// Whether an entry named `name` may be in a store directory whose
/// catalog does not exist yet (left by a crashed `init`).
pub fn is_init_leftover(name: &std::ffi::OsStr) -> bool {
    INIT_LEFTOVERS.iter().any(|n| name == *n)
}

/// `damaged/repair-<time>/`, where one repair started at `now_ns` sets
/// aside what it replaced.
pub fn repair_aside_dir(store: &Path, now_ns: i64) -> PathBuf {
    let stamp = chrono::TimeZone::timestamp_nanos(&chrono::Utc, now_ns).format("%Y%m%dT%H%M%S%.fZ");
    damaged_dir(store).join(format!("repair-{stamp}"))
}

/// Where a repair's aside directory keeps a damaged pack file.
pub fn aside_pack_path(aside: &Path, pack_file: &Path) -> PathBuf {
    aside
        .join(PACKS)
        .join(pack_file.file_name().expect("a pack file has a name"))
}

/// Where a repair's aside directory keeps an old journal file.
pub fn aside_journal_path(aside: &Path, journal_file: &Path) -> PathBuf {
    aside
        .join(JOURNAL)
        .join(journal_file.file_name().expect("a journal file has a name"))
}

/// The `damaged/repair-*` directories, oldest first (by the time in their
/// name).
pub fn repair_dirs(damaged: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    let entries = match fs::read_dir(damaged) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::store_read(damaged, e)),
    };
    for e in entries {
        let e = e.map_err(|e| Error::store_read(damaged, e))?;
        let name = e.file_name();
        let Some(stamp) = name.to_str().and_then(|n| n.strip_prefix("repair-")) else {
            continue;
        };
        if !e.path().is_dir() {
            continue;
        }
        // `20261101T120000.5Z`: the fraction has 0, 3, 6 or 9 digits; pad it
        // so names compare in time order.
        let stamp = stamp.trim_end_matches('Z');
        let (secs, frac) = stamp.split_once('.').unwrap_or((stamp, ""));
        out.push((format!("{secs}.{frac:0<9}"), e.path()));
    }
    out.sort();
    Ok(out.into_iter().map(|(_, p)| p).collect())
}

/// Every `damaged/repair-*/packs/*.pack`, sorted.
pub fn damaged_packs(store: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for d in repair_dirs(&damaged_dir(store))? {
        let packs = d.join(PACKS);
        let Ok(entries) = fs::read_dir(&packs) else {
            continue;
        };
        for e in entries {
            let p = e.map_err(|e| Error::store_read(&packs, e))?.path();
            if p.extension().is_some_and(|x| x == "pack") && p.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// One entry of a fan directory `packs/xx/`, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackFile {
    pub path: PathBuf,
    /// The pack its name claims (`<hex>.pack`); `None` for any other name.
    pub id: Option<PackId>,
    /// Its size when listed (`lstat`).
    pub size_bytes: u64,
}

/// Every entry of every fan directory `packs/*/`, sorted by path: packs
/// named by their id and anything else found there (which `check` reports
/// and `repair` looks into). Entries of `packs/` that are not directories
/// are not fan directories and are left out.
pub fn list_packs(store: &Path) -> Result<Vec<PackFile>> {
    let packs = packs_dir(store);
    let mut out = Vec::new();
    for fan in fs::read_dir(&packs).map_err(|e| Error::store_read(&packs, e))? {
        let fan = fan.map_err(|e| Error::store_read(&packs, e))?;
        if !fan.path().is_dir() {
            continue;
        }
        let fan = fan.path();
        for f in fs::read_dir(&fan).map_err(|e| Error::store_read(&fan, e))? {
            let f = f.map_err(|e| Error::store_read(&fan, e))?;
            let path = f.path();
            out.push(PackFile {
                id: pack_id_of(&path),
                size_bytes: f.metadata().map_or(0, |m| m.len()),
                path,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Remove everything in `tmp/` (the temporary packs of dead runs), creating
/// the directory if it is missing. Only the writer-lock holder may call
/// this: a running writer's pack is in there.
pub fn clear_tmp(store: &Path) -> Result<()> {
    let tmp = tmp_dir(store);
    let entries = match fs::read_dir(&tmp) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return durable::create_private_dir(&tmp).map_err(|e| Error::store_write(&tmp, e));
        }
        Err(e) => return Err(Error::store_read(&tmp, e)),
    };
    for e in entries {
        let path = e.map_err(|e| Error::store_read(&tmp, e))?.path();
        fs::remove_file(&path).map_err(|e| Error::store_write(&path, e))?;
    }
    Ok(())
}

/// Whether `store` holds files wsnap wrote: a pack (`packs/xx/*.pack`
/// starting with the pack magic) or a snapshot journal (`journal/*.wsj`
/// starting with the journal magic). Then a missing or unreadable catalog is
/// damage to repair, not a foreign directory; a `packs/` folder of someone
/// else's files is not.
pub fn holds_store_data(store: &Path) -> bool {
    let starts_with = |p: &Path, magic: &[u8]| {
        let mut head = vec![0u8; magic.len()];
        fs::File::open(p)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
            .is_ok_and(|()| head == magic)
    };
    let in_fan = |p: &Path| {
        p.parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n.len() == 2)
    };
    let packs = list_packs(store).is_ok_and(|files| {
        files.iter().any(|f| {
            in_fan(&f.path)
                && has_pack_suffix(&f.path)
                && crate::pack::format::has_pack_magic(&f.path)
        })
    });
    let journals = fs::read_dir(journal_dir(store)).is_ok_and(|rd| {
        rd.flatten().any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.ends_with(JOURNAL_SUFFIX))
                && starts_with(&e.path(), crate::journal::JOURNAL_MAGIC)
        })
    });
    packs || journals
}

/// Whether `store` is recognisably a store, whole or damaged: it has a
/// catalog, or files wsnap wrote (a pack or journal header; see
/// [`holds_store_data`]). `repair` writes only into such a directory
/// (unless forced).
pub fn is_recognisable(store: &Path) -> bool {
    catalog_path(store).exists() || holds_store_data(store)
}

/// `path` with `suffix` appended to its last component, byte for byte (a
/// store path need not be UTF-8: `display()` would replace bytes).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_os_string();
    p.push(suffix);
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(byte: u8) -> PackId {
        PackId(Id([byte; 32]))
    }

    #[test]
    fn pack_path_is_fanned_out_by_its_first_byte_and_names_its_id() {
        let p = pack_path(Path::new("/s"), &id(0xab));
        assert_eq!(p.parent().unwrap(), Path::new("/s/packs/ab"));
        assert_eq!(pack_id_of(&p), Some(id(0xab)));
        assert!(has_pack_suffix(&p));
        assert_eq!(pack_id_of(Path::new("/s/packs/ab/zz.pack")), None);
        assert!(has_pack_suffix(Path::new("/s/packs/ab/zz.pack")));
    }

    #[test]
    fn catalog_files_and_suffixes_keep_the_bytes_of_the_store_path() {
        use std::os::unix::ffi::OsStrExt;
        let store = Path::new(std::ffi::OsStr::from_bytes(b"/s\xff"));
        let [main, wal, shm] = catalog_files(store);
        assert_eq!(main.as_os_str().as_bytes(), b"/s\xff/catalog.sqlite");
        assert_eq!(wal.as_os_str().as_bytes(), b"/s\xff/catalog.sqlite-wal");
        assert_eq!(shm.as_os_str().as_bytes(), b"/s\xff/catalog.sqlite-shm");
        assert_eq!(
            repair_catalog_path(store).as_os_str().as_bytes(),
            b"/s\xff/catalog.sqlite.repair"
        );
    }

    #[test]
    fn list_packs_lists_fan_directories_only_sorted_and_clear_tmp_empties_tmp() {
        let d = tempfile::tempdir().unwrap();
        let s = d.path();
        assert!(list_packs(s).is_err(), "no packs/ is an error");
        let good = pack_path(s, &id(0x11));
        fs::create_dir_all(good.parent().unwrap()).unwrap();
        fs::write(&good, b"12345").unwrap();
        fs::create_dir_all(s.join("packs/00")).unwrap();
        fs::write(s.join("packs/00/junk"), b"x").unwrap();
        fs::write(s.join("packs/README"), b"not a fan directory").unwrap();
        let listed = list_packs(s).unwrap();
        assert_eq!(
            listed,
            vec![
                PackFile {
                    path: s.join("packs/00/junk"),
                    id: None,
                    size_bytes: 1
                },
                PackFile {
                    path: good,
                    id: Some(id(0x11)),
                    size_bytes: 5
                },
            ]
        );
        // Not packs wsnap wrote (no magic), no journal: not store data.
        assert!(!holds_store_data(s));
        assert!(!is_recognisable(s));
        // A file that starts like a pack is.
        fs::write(s.join("packs/00/x.pack"), crate::pack::format::PACK_MAGIC).unwrap();
        assert!(holds_store_data(s));
        assert!(is_recognisable(s));
        fs::remove_file(s.join("packs/00/x.pack")).unwrap();

        clear_tmp(s).unwrap();
        assert!(tmp_dir(s).is_dir(), "a missing tmp/ is made");
        fs::write(tmp_dir(s).join("pack-1-0.tmp"), b"partial").unwrap();
        clear_tmp(s).unwrap();
        assert_eq!(fs::read_dir(tmp_dir(s)).unwrap().count(), 0);
    }

    #[test]
    fn repair_dirs_sort_by_time_whatever_the_digits_of_the_fraction() {
        let d = tempfile::tempdir().unwrap();
        let damaged = d.path();
        for name in [
            "repair-20261101T120000.5Z",
            "repair-20261101T120000.123Z",
            "repair-20261101T120000Z",
            "other",
        ] {
            fs::create_dir(damaged.join(name)).unwrap();
        }
        let names: Vec<String> = repair_dirs(damaged)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "repair-20261101T120000Z",
                "repair-20261101T120000.123Z",
                "repair-20261101T120000.5Z"
            ]
        );
        assert!(repair_dirs(&damaged.join("absent")).unwrap().is_empty());
        assert_eq!(
            repair_aside_dir(Path::new("/s"), 1_500_000_000),
            Path::new("/s/damaged/repair-19700101T000001.500Z")
        );
    }
}
