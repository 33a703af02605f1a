//! The errors of the off-site copy (`crate::remote`): one typed
//! [`RemoteError`], carried by `Error::Remote`. Messages name the remote and the object they are
//! about, never a command-line flag (the CLI adds hints, `cli/output.rs`),
//! and never a credential.

/// What went wrong with a remote.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The key file's key is not the one the remote was written with (told
    /// by the plaintext `config` object's key id, before any decryption).
    #[error(
        "remote {remote}: the key in {key_file} is not this remote's key (key id {found}, the remote was written with key id {expected}); nothing was read or changed"
    )]
    WrongKey {
        remote: String,
        key_file: String,
        expected: String,
        found: String,
    },

    /// An object failed authentication: changed, damaged, cut short or
    /// swapped with another. Its content is never used.
    #[error("remote {remote}: tampered or damaged object {object}: {detail}; it was not used")]
    Tampered {
        remote: String,
        object: String,
        detail: String,
    },

    /// An object the remote's newest pointer (or its catalog image) names
    /// is not there.
    #[error("remote {remote}: object {object} is missing")]
    Missing { remote: String, object: String },

    /// The remote holds no wsnap data at all (no `config` object): not
    /// pushed to yet, or the URL names the wrong bucket or prefix.
    #[error("remote {remote} holds no wsnap copy (no config object at its root){detail}")]
    Empty { remote: String, detail: String },

    /// The remote was written by a wsnap with a newer (or unknown) format.
    #[error(
        "remote {remote}: {object} has remote format version {found}; this wsnap reads version {supported}. Upgrade wsnap to read it"
    )]
    Format {
        remote: String,
        object: String,
        found: u32,
        supported: u32,
    },

    /// The endpoint cannot be reached (connection refused, DNS, timeout).
    #[error("remote {remote} is unreachable: {detail}")]
    Unreachable { remote: String, detail: String },

    /// The server refused the credentials (or none were found).
    #[error("remote {remote}: bad or missing credentials: {detail}")]
    Credentials { remote: String, detail: String },

    /// The bucket (or the `file://` directory) does not exist.
    #[error("remote {remote}: the bucket or directory does not exist: {detail}")]
    NoBucket { remote: String, detail: String },

    /// Any other error of the object store.
    #[error("remote {remote}: {detail}")]
    Backend { remote: String, detail: String },

    /// A remote named that is not configured in this store, or whose
    /// configuration cannot be used.
    #[error("remote {name}: {detail}")]
    Config { name: String, detail: String },

    /// The key file cannot be read or is not a key.
    #[error("key file {path}: {detail}")]
    KeyFile { path: String, detail: String },

    /// The remote's newest pointer was pushed from another store (another
    /// catalog): pushing this store there would schedule the other store's
    /// data for deletion.
    #[error(
        "remote {remote} holds the copy of another store (created {theirs}; this store was created {ours}); refusing to push over it"
    )]
    OtherStore {
        remote: String,
        theirs: String,
        ours: String,
    },
}

/// How the CLI classes a [`RemoteError`] (see `Error::kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteClass {
    /// The remote's content is wrong for us: wrong key, tampered, missing,
    /// another format or store (exit 3, like a damaged store).
    Content,
    /// The remote cannot be used now: unreachable, credentials, no bucket,
    /// other backend errors (its own exit code).
    Unavailable,
    /// A configuration or key-file problem (bad input, exit 2).
    Input,
}

impl RemoteError {
    pub fn class(&self) -> RemoteClass {
        match self {
            RemoteError::WrongKey { .. }
            | RemoteError::Tampered { .. }
            | RemoteError::Missing { .. }
            | RemoteError::Empty { .. }
            | RemoteError::Format { .. }
            | RemoteError::OtherStore { .. } => RemoteClass::Content,
            RemoteError::Unreachable { .. }
            | RemoteError::Credentials { .. }
            | RemoteError::NoBucket { .. }
            | RemoteError::Backend { .. } => RemoteClass::Unavailable,
            RemoteError::Config { .. } | RemoteError::KeyFile { .. } => RemoteClass::Input,
        }
    }
}
