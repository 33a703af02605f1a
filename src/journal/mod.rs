//! The snapshot journal: every committed snapshot's row, kept outside the
//! catalog, so `wsnap repair` can rebuild a lost or damaged catalog from the
//! store's files alone (packs hold the blobs; journals hold the snapshots).
//!
//! ```text
//! STORE/journal/<run>.wsj        records of one finished run
//! STORE/journal/<run>.wsj.open   the same while the run is going (or crashed)
//! ```
//!
//! Crash order, per snapshot: its record is appended and fdatasynced *before*
//! the catalog commits it, so every committed snapshot has a record. A crash
//! between the two leaves a record the catalog lacks, only ever in a `.open`
//! file: the next writer [`reconcile`]s such files (keeps the records the
//! catalog has, renames the file). `prune`/`forget` (and `rewrite`, whose
//! old records go the same way) commit the catalog first,
//! naming in that same transaction the journal files to rewrite
//! (`meta.journals_pending`), then drop the forgotten records; a crash in
//! between is finished by the next writer ([`keep_committed`]). So a
//! forgotten snapshot never comes back through `repair`, and a committed
//! one is never missing from the journals.
//!
//! The catalog stays the truth while it is healthy; journals are read only
//! by `repair` and compared by `check`.
//!
//! `format` holds the bytes (encode and decode a header and its records);
//! `files` the journal files (append, list, read, rewrite, reconcile).

mod files;
mod format;

pub use files::{
    dir, drop_records, is_journal_name, keep_committed, list, open_append, read, reconcile,
    rewrite, RunJournal,
};
pub use format::{
    decode, encode_header, encode_record, Decoded, HEADER_BYTES, HEADER_V2_BYTES, JOURNAL_MAGIC,
    JOURNAL_VERSION, MAX_RECORD_BYTES, MIN_RECORD_BYTES,
};
