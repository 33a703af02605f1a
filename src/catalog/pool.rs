//! Sharing catalog connections between threads: a pool of read-only
//! connections for a run's workers ([`CatalogPool`], also with views
//! pinned), and one pinned view for a restore's threads ([`PinnedCatalog`]).

use std::path::{Path, PathBuf};

use super::Catalog;
use crate::error::Result;

/// A small pool of read-only connections, one per concurrent user, for the
/// rayon workers of a run (a `Connection` is not `Sync`). In WAL mode they
/// see every committed transaction of the writer.
pub struct CatalogPool {
    path: PathBuf,
    idle: std::sync::Mutex<Vec<Catalog>>,
    pinned: bool,
}

impl CatalogPool {
    pub fn new(path: &Path) -> CatalogPool {
        CatalogPool {
            path: path.to_path_buf(),
            idle: std::sync::Mutex::new(Vec::new()),
            pinned: false,
        }
    }

    /// A pool whose connections each hold one read transaction from
    /// their first use ([`Catalog::pin_view`]) until [`CatalogPool::unpin`]:
    /// no lock taken and no page cache dropped per statement, but blind to
    /// commits meanwhile. For readers of what existed before they started
    /// (a run's prewalks read the parents of its workspaces), unpinned
    /// often: a pinned view holds back every checkpoint of what was
    /// committed after it.
    pub fn pinned(path: &Path) -> CatalogPool {
        CatalogPool {
            pinned: true,
            ..CatalogPool::new(path)
        }
    }

    /// End the views of the idle connections of a pinned pool: their next
    /// use pins the catalog as it is then.
    pub fn unpin(&self) -> Result<()> {
        for c in self.idle.lock().expect("catalog pool poisoned").iter() {
            c.unpin_view()?;
        }
        Ok(())
    }

    /// Run `f` with a connection from the pool.
    pub fn with<T>(&self, f: impl FnOnce(&Catalog) -> Result<T>) -> Result<T> {
        let conn = self.idle.lock().expect("catalog pool poisoned").pop();
        let conn = match conn {
            Some(c) => c,
            None => Catalog::open(&self.path, false)?,
        };
        if self.pinned && conn.conn.is_autocommit() {
            conn.pin_view()?;
        }
        let out = f(&conn);
        self.idle.lock().expect("catalog pool poisoned").push(conn);
        out
    }
}

/// One read-only connection held in a single read transaction, shared by
/// the threads of a restore: every lookup sees the same catalog state, even
/// while a prune commits beside it.
pub struct PinnedCatalog {
    inner: std::sync::Mutex<Catalog>,
}

impl PinnedCatalog {
    /// Open and pin the catalog's current state.
    pub fn open(path: &Path) -> Result<PinnedCatalog> {
        let cat = Catalog::open(path, false)?;
        cat.pin_view()?;
        Ok(PinnedCatalog {
            inner: std::sync::Mutex::new(cat),
        })
    }

    /// Run `f` with the pinned connection.
    pub fn with<T>(&self, f: impl FnOnce(&Catalog) -> Result<T>) -> Result<T> {
        f(&self.inner.lock().expect("catalog lock poisoned"))
    }
}
