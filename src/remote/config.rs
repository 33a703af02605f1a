//! Remotes as a store configures them: `STORE/remotes/NAME.json` (0600)
//! with the URL, endpoint, region and key file; credentials from the
//! environment or `STORE/remotes/NAME.credentials` (0600); the state the
//! last push left (`NAME.state`, for `status`). Paths come from `layout`.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::durable;
use crate::error::{Error, Result};
use crate::escape;
use crate::layout;

use super::bucket::{parse_url, Credentials, Location};
use crate::error::RemoteError;

/// One configured remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteConfig {
    pub name: String,
    pub location: Location,
    /// The master key file (absolute, or relative to the store).
    pub key_file: PathBuf,
}

/// The environment variables credentials are read from (and the keys of
/// the credentials file).
pub const CREDENTIAL_VARS: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// A remote name: 1–64 of `A-Z a-z 0-9 . _ -`, not starting with `.`.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "remote name",
            format!("{name:?}: use 1-64 letters, digits, '.', '_' or '-', not starting with '.'"),
        ))
    }
}

fn config_err(name: &str, detail: impl Into<String>) -> Error {
    RemoteError::Config {
        name: name.to_string(),
        detail: detail.into(),
    }
    .into()
}

impl RemoteConfig {
    /// A new configuration (checked, not saved).
    pub fn new(name: &str, location: Location, key_file: PathBuf) -> Result<RemoteConfig> {
        validate_name(name)?;
        parse_url(&location.url).map_err(|e| Error::invalid("remote URL", e))?;
        if let Some(ep) = &location.endpoint {
            if !(ep.starts_with("http://") || ep.starts_with("https://")) {
                return Err(Error::invalid(
                    "endpoint",
                    format!("{ep:?}: expected http://HOST:PORT or https://HOST"),
                ));
            }
        }
        Ok(RemoteConfig {
            name: name.to_string(),
            location,
            key_file,
        })
    }

    /// How the remote is named in messages: `NAME (URL)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.location.url)
    }

    fn to_json(&self) -> Value {
        json!({
            "version": 1,
            "url": self.location.url,
            "endpoint": self.location.endpoint,
            "region": self.location.region,
            "key_file": self.key_file.to_string_lossy(),
        })
    }

    fn from_json(name: &str, v: &Value) -> Result<RemoteConfig> {
        if v["version"].as_u64() != Some(1) {
            return Err(config_err(name, "unknown configuration version"));
        }
        let s = |k: &str| v[k].as_str().map(str::to_string);
        let url = s("url").ok_or_else(|| config_err(name, "no url"))?;
        let key_file = s("key_file").ok_or_else(|| config_err(name, "no key_file"))?;
        RemoteConfig::new(
            name,
            Location {
                url,
                endpoint: s("endpoint"),
                region: s("region"),
            },
            PathBuf::from(key_file),
        )
    }

    /// The key file, resolved against the store directory.
    pub fn key_path(&self, store: &Path) -> PathBuf {
        store.join(&self.key_file)
    }
}

/// Save `cfg` in the store (0600); the store's `remotes/` is made if
/// missing. Refuses to replace an existing remote of that name.
pub fn save(store: &Path, cfg: &RemoteConfig) -> Result<()> {
    let dir = layout::remotes_dir(store);
    durable::ensure_private_dir(&dir).map_err(|e| Error::store_write(&dir, e))?;
    let path = layout::remote_config_path(store, &cfg.name);
    if path.exists() {
        return Err(config_err(&cfg.name, "is already configured in this store"));
    }
    let text = serde_json::to_string_pretty(&cfg.to_json()).expect("json");
    durable::replace_file(&path, text.as_bytes(), durable::FILE_MODE)
        .map_err(|e| Error::store_write(&path, e))
}

/// Remote `name` of the store; with `None`, the only one there is.
pub fn load(store: &Path, name: Option<&str>) -> Result<RemoteConfig> {
    let name = match name {
        Some(n) => {
            validate_name(n)?;
            n.to_string()
        }
        None => {
            let all = list(store)?;
            match all.as_slice() {
                [one] => one.name.clone(),
                [] => {
                    return Err(config_err(
                        "(none)",
                        format!("no remote is configured in {}", escape::path(store)),
                    ))
                }
                _ => {
                    let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
                    return Err(config_err(
                        "(which?)",
                        format!(
                            "several remotes are configured ({}): name one",
                            names.join(", ")
                        ),
                    ));
                }
            }
        }
    };
    let path = layout::remote_config_path(store, &name);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(config_err(
                &name,
                format!("no such remote in {}", escape::path(store)),
            ))
        }
        Err(e) => return Err(Error::store_read(&path, e)),
    };
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| config_err(&name, format!("{}: {e}", escape::path(&path))))?;
    RemoteConfig::from_json(&name, &v)
}

/// Every remote configured in the store, by name.
pub fn list(store: &Path) -> Result<Vec<RemoteConfig>> {
    let dir = layout::remotes_dir(store);
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::store_read(&dir, e)),
    };
    let mut names = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::store_read(&dir, e))?;
        if let Some(n) = layout::remote_name_of(&e.path()) {
            if validate_name(&n).is_ok() {
                names.push(n);
            }
        }
    }
    names.sort();
    names.iter().map(|n| load(store, Some(n))).collect()
}

/// What `remove` deleted and kept.
#[derive(Debug)]
pub struct Removed {
    /// A key `remote add` generated in the store: kept, since without it
    /// the remote's data is unreadable.
    pub kept_key: Option<PathBuf>,
}

/// Forget remote `name` here: its configuration, credentials, state,
/// staging and cache. The remote's data is not touched, nor a key file.
pub fn remove(store: &Path, name: &str) -> Result<Removed> {
    let cfg = load(store, Some(name))?;
    for p in [
        layout::remote_config_path(store, name),
        layout::remote_credentials_path(store, name),
        layout::remote_state_path(store, name),
        layout::remote_lock_path(store, name),
        layout::remote_base_path(store, name),
    ] {
        match durable::remove(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::store_write(&p, e)),
        }
    }
    for d in [
        layout::remote_push_dir(store, name),
        layout::remote_cache_dir(store, name),
    ] {
        match fs::remove_dir_all(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::store_write(&d, e)),
        }
    }
    let key = cfg.key_path(store);
    Ok(Removed {
        kept_key: key.exists().then_some(key),
    })
}

/// Credentials from the environment, or else from the store's
/// credentials file for `name`.
pub fn credentials(store: &Path, name: &str) -> Result<Option<Credentials>> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(id), Some(secret)) = (env(CREDENTIAL_VARS[0]), env(CREDENTIAL_VARS[1])) {
        return Ok(Some(Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: env(CREDENTIAL_VARS[2]),
        }));
    }
    let path = layout::remote_credentials_path(store, name);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::store_read(&path, e)),
    };
    let mut vals = [None, None, None];
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            if let Some(i) = CREDENTIAL_VARS.iter().position(|x| *x == k.trim()) {
                vals[i] = Some(v.trim().to_string());
            }
        }
    }
    match vals {
        [Some(id), Some(secret), token] => Ok(Some(Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: token,
        })),
        _ => Err(config_err(
            name,
            format!(
                "{} lacks {} or {}",
                escape::path(&path),
                CREDENTIAL_VARS[0],
                CREDENTIAL_VARS[1]
            ),
        )),
    }
}

/// Keep the environment's credentials in the store for `name` (0600), so
/// that cron runs need no secrets in their environment. Returns whether
/// there were any.
pub fn save_env_credentials(store: &Path, name: &str) -> Result<bool> {
    let mut text = String::new();
    for k in CREDENTIAL_VARS {
        if let Ok(v) = std::env::var(k) {
            if !v.is_empty() {
                text.push_str(&format!("{k}={v}\n"));
            }
        }
    }
    if !(text.contains(CREDENTIAL_VARS[0]) && text.contains(CREDENTIAL_VARS[1])) {
        return Ok(false);
    }
    let path = layout::remote_credentials_path(store, name);
    durable::replace_file(&path, text.as_bytes(), durable::FILE_MODE)
        .map_err(|e| Error::store_write(&path, e))?;
    Ok(true)
}

/// What the last push of a remote did, kept beside its configuration for
/// `status` (`NAME.state`, JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushState {
    /// When the last successful push wrote its pointer.
    pub last_success_ns: Option<i64>,
    /// The newest snapshot time that push carried.
    pub newest_pushed_ns: Option<i64>,
    /// When the last push that failed failed, and why (cleared by a
    /// success).
    pub last_failure_ns: Option<i64>,
    pub last_error: Option<String>,
}

impl PushState {
    pub fn load(store: &Path, name: &str) -> PushState {
        let path = layout::remote_state_path(store, name);
        let Ok(text) = fs::read_to_string(path) else {
            return PushState::default();
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            return PushState::default();
        };
        PushState {
            last_success_ns: v["last_success_ns"].as_i64(),
            newest_pushed_ns: v["newest_pushed_ns"].as_i64(),
            last_failure_ns: v["last_failure_ns"].as_i64(),
            last_error: v["last_error"].as_str().map(str::to_string),
        }
    }

    pub fn save(&self, store: &Path, name: &str) -> Result<()> {
        let path = layout::remote_state_path(store, name);
        let v = json!({
            "last_success_ns": self.last_success_ns,
            "newest_pushed_ns": self.newest_pushed_ns,
            "last_failure_ns": self.last_failure_ns,
            "last_error": self.last_error,
        });
        durable::replace_file(&path, v.to_string().as_bytes(), durable::FILE_MODE)
            .map_err(|e| Error::store_write(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["offsite", "s3-eu.1", "A_b"] {
            validate_name(ok).unwrap();
        }
        for bad in ["", ".x", "a/b", "a b", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn configs_save_list_load_and_remove() {
        let d = tempfile::tempdir().unwrap();
        let s = d.path();
        let loc = Location {
            url: "s3://b/p".into(),
            endpoint: Some("http://127.0.0.1:3900".into()),
            region: Some("garage".into()),
        };
        let cfg = RemoteConfig::new("off", loc, "remotes/off.key".into()).unwrap();
        save(s, &cfg).unwrap();
        assert!(save(s, &cfg).is_err(), "exact names: no silent replacement");
        assert_eq!(list(s).unwrap(), vec![cfg.clone()]);
        assert_eq!(load(s, None).unwrap(), cfg);
        assert_eq!(load(s, Some("off")).unwrap(), cfg);
        assert!(load(s, Some("of")).is_err());
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(layout::remote_config_path(s, "off"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        remove(s, "off").unwrap();
        assert!(list(s).unwrap().is_empty());
        assert!(RemoteConfig::new(
            "x",
            Location {
                url: "ftp://x".into(),
                endpoint: None,
                region: None
            },
            "k".into()
        )
        .is_err());
    }
}
