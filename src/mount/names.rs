//! The names snapshots get in the mount.
//!
//! - `snapshots/<user>_<project>_<YYYYmmdd_HHMMSS>`: the old rsync script's
//!   directory names, in local time, so its notes (`ls
//!   snapshots/alice_project-001_*`, `rsync -a snapshots/…/ …`) work as
//!   written;
//! - `workspaces/<user>/<project>/<YYYY-mm-ddTHH:MM:SS>`: never ambiguous,
//!   whatever `_` the names hold.
//!
//! Two snapshots can share a name (taken within one second, the two passes
//! of an hour repeated by DST, or `a_b` + `c` beside `a` + `b_c` in the old
//! view): ordered by time, then workspace, then id, the first keeps the
//! name and the others get `.2`, `.3`, … A base name always ends in six
//! digits, so a suffixed name is never another snapshot's base name.

use std::collections::HashMap;

use chrono::{Local, TimeZone};

use crate::id::SnapshotId;
use crate::workspace::WorkspaceName;

/// `<user>_<project>_<YYYYmmdd_HHMMSS>` (local time).
pub fn old_name(ws: &WorkspaceName, time_ns: i64) -> Vec<u8> {
    let mut n = Vec::with_capacity(ws.user.len() + ws.project.len() + 17);
    n.extend_from_slice(&ws.user);
    n.push(b'_');
    n.extend_from_slice(&ws.project);
    n.push(b'_');
    n.extend_from_slice(local(time_ns, "%Y%m%d_%H%M%S").as_bytes());
    n
}

/// `<YYYY-mm-ddTHH:MM:SS>` (local time).
pub fn time_name(time_ns: i64) -> Vec<u8> {
    local(time_ns, "%Y-%m-%dT%H:%M:%S").into_bytes()
}

fn local(time_ns: i64, format: &str) -> String {
    Local.timestamp_nanos(time_ns).format(format).to_string()
}

/// One snapshot to name: its base name and what orders a shared name.
pub struct Named<'a> {
    pub base: Vec<u8>,
    pub time_ns: i64,
    pub ws: &'a WorkspaceName,
    pub id: SnapshotId,
}

/// The final names of `items` (in their order): a base name shared by
/// several gets `.2`, `.3`, … on all but the first (by time, workspace, id).
pub fn disambiguate(items: &[Named<'_>]) -> Vec<Vec<u8>> {
    let mut groups: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        groups.entry(&it.base).or_default().push(i);
    }
    let mut names: Vec<Vec<u8>> = items.iter().map(|it| it.base.clone()).collect();
    for members in groups.values_mut().filter(|m| m.len() > 1) {
        members.sort_by(|&a, &b| {
            let (a, b) = (&items[a], &items[b]);
            (a.time_ns, a.ws, a.id.0).cmp(&(b.time_ns, b.ws, b.id.0))
        });
        for (n, &i) in members.iter().enumerate().skip(1) {
            names[i].extend_from_slice(format!(".{}", n + 1).as_bytes());
        }
    }
    names
}

/// Longest name the kernel passes to a file system (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Id;

    fn ws(u: &[u8], p: &[u8]) -> WorkspaceName {
        WorkspaceName::new(u, p).unwrap()
    }

    #[test]
    fn old_names_are_the_rsync_scripts() {
        // Tests run with the zone the environment gives; compare with
        // chrono's own local rendering.
        let t = 1_763_197_200_000_000_000; // 2025-11-15T09:00:00Z
        let want = format!(
            "al_ice_pro\u{e9}_{}",
            Local.timestamp_nanos(t).format("%Y%m%d_%H%M%S")
        );
        let got = old_name(&ws(b"al_ice", "pro\u{e9}".as_bytes()), t);
        assert_eq!(got, want.as_bytes());
        let raw = old_name(&ws(b"b\xff", b"p"), t);
        assert!(raw.starts_with(b"b\xff_p_"));
        assert_eq!(
            time_name(t),
            Local
                .timestamp_nanos(t)
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string()
                .into_bytes()
        );
    }

    #[test]
    fn shared_names_get_numbered_in_time_order() {
        let (a, b) = (ws(b"a_b", b"c"), ws(b"a", b"b_c"));
        let id = |n: u8| SnapshotId(Id([n; 32]));
        let items = [
            Named {
                base: b"x_1".to_vec(),
                time_ns: 5,
                ws: &a,
                id: id(1),
            },
            Named {
                base: b"x_1".to_vec(),
                time_ns: 3,
                ws: &b,
                id: id(2),
            },
            Named {
                base: b"y_1".to_vec(),
                time_ns: 1,
                ws: &a,
                id: id(3),
            },
            Named {
                base: b"x_1".to_vec(),
                time_ns: 3,
                ws: &a,
                id: id(4),
            },
        ];
        let names = disambiguate(&items);
        assert_eq!(
            names,
            [
                b"x_1.3".to_vec(),
                b"x_1".to_vec(),
                b"y_1".to_vec(),
                b"x_1.2".to_vec()
            ]
        );
    }
}
