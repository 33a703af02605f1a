//! What a gc will do, decided without touching the store: which snapshots
//! retention forgets (per workspace), and which of the packs that lost data
//! are deleted or rewritten. Pure functions over what the catalog reported,
//! so they are tested with tables.

use crate::catalog::PackUsage;
use crate::error::{Error, Missing, Result};
use crate::pack;
use crate::retention::{self, KeepPolicy};
use crate::workspace::WorkspaceName;

/// The snapshots retention forgets, over the workspaces added so far.
#[derive(Debug, PartialEq, Eq)]
pub struct ForgetPlan<T> {
    /// The items (snapshot rows) to forget.
    pub forget: Vec<T>,
    /// Snapshots kept, held ones included.
    pub kept: u64,
    /// Workspaces whose retention is held and that have snapshots, with how
    /// many were kept because of it.
    pub held: Vec<(WorkspaceName, u64)>,
}

impl<T> Default for ForgetPlan<T> {
    fn default() -> Self {
        ForgetPlan {
            forget: Vec::new(),
            kept: 0,
            held: Vec::new(),
        }
    }
}

impl<T: Clone> ForgetPlan<T> {
    /// Apply `policy` to the snapshots `(item, time_ns)` of `workspace`
    /// (commit order). A held workspace keeps every snapshot. A workspace
    /// that is not held must have snapshots (it was named, or listed by the
    /// catalog): an error otherwise. `keep-within` counts back from
    /// `now_ns` (never from the newest snapshot, which a wrong clock or
    /// `--time` can put in the future).
    pub fn add_workspace(
        &mut self,
        workspace: &WorkspaceName,
        snapshots: &[(T, i64)],
        policy: &KeepPolicy,
        held: bool,
        now_ns: i64,
    ) -> Result<()> {
        if held {
            if !snapshots.is_empty() {
                self.kept += snapshots.len() as u64;
                self.held.push((workspace.clone(), snapshots.len() as u64));
            }
            return Ok(());
        }
        if snapshots.is_empty() {
            return Err(Error::NotFound(Missing::Snapshots(workspace.clone())));
        }
        for d in retention::decide(snapshots, policy, now_ns) {
            if d.keep {
                self.kept += 1;
            } else {
                self.forget.push(d.item);
            }
        }
        Ok(())
    }
}

/// What happens to the packs that held dead data.
#[derive(Debug, Default)]
pub struct PackPlan {
    /// Packs with no live blob left: deleted.
    pub delete: Vec<PackUsage>,
    /// Packs whose unused share exceeds the threshold: their live records
    /// are copied into new packs, then they are deleted.
    pub rewrite: Vec<PackUsage>,
}

impl PackPlan {
    /// Decide for each pack in `usage` (after the dead blobs left the
    /// index): delete it when nothing in it is live, rewrite it when more
    /// than `max_unused_percent` (0–100, clamped) of its bytes are unused,
    /// else leave it. A pack's header and footer are not "unused".
    pub fn new(usage: Vec<PackUsage>, max_unused_percent: f64) -> PackPlan {
        let threshold = max_unused_percent.clamp(0.0, 100.0) / 100.0;
        let mut plan = PackPlan::default();
        for u in usage {
            let unused = u.size_bytes.saturating_sub(pack::pack_bytes(u.live_bytes)) as f64;
            if u.live_blobs == 0 {
                plan.delete.push(u);
            } else if unused > threshold * u.size_bytes as f64 {
                plan.rewrite.push(u);
            }
        }
        plan
    }

    /// Pack bytes this plan frees (what a dry run reports): the deleted
    /// packs whole, and the unused part of the rewritten ones.
    pub fn estimated_bytes_freed(&self) -> u64 {
        self.delete.iter().map(|u| u.size_bytes).sum::<u64>()
            + self
                .rewrite
                .iter()
                .map(|u| u.size_bytes.saturating_sub(u.live_bytes))
                .sum::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{Id, PackId};

    const H: i64 = 3_600_000_000_000;

    fn ws(name: &str) -> WorkspaceName {
        WorkspaceName::new(b"u", name.as_bytes()).unwrap()
    }

    fn usage(n: u8, size_bytes: u64, live_bytes: u64, live_blobs: u64) -> PackUsage {
        PackUsage {
            row: i64::from(n),
            id: PackId(Id([n; 32])),
            size_bytes,
            live_bytes,
            live_blobs,
        }
    }

    fn rows(us: &[PackUsage]) -> Vec<i64> {
        us.iter().map(|u| u.row).collect()
    }

    #[test]
    fn retention_is_per_workspace_and_held_workspaces_keep_everything() {
        let policy = KeepPolicy {
            last: Some(2),
            ..KeepPolicy::default()
        };
        let snaps = |base: i64| -> Vec<(i64, i64)> { (0..5).map(|i| (base + i, i * H)).collect() };
        let mut plan = ForgetPlan::default();
        plan.add_workspace(&ws("a"), &snaps(10), &policy, false, 10 * H)
            .unwrap();
        plan.add_workspace(&ws("b"), &snaps(20), &policy, true, 10 * H)
            .unwrap();
        plan.add_workspace(&ws("c"), &[], &policy, true, 10 * H)
            .unwrap();
        let mut forgotten = plan.forget.clone();
        forgotten.sort_unstable();
        assert_eq!(forgotten, vec![10, 11, 12], "the 3 oldest of a");
        assert_eq!(plan.kept, 2 + 5);
        assert_eq!(plan.held, vec![(ws("b"), 5)], "c is held but has none");
    }

    #[test]
    fn a_workspace_without_snapshots_that_is_not_held_is_an_error() {
        let mut plan: ForgetPlan<i64> = ForgetPlan::default();
        let e = plan
            .add_workspace(&ws("a"), &[], &KeepPolicy::default(), false, 0)
            .unwrap_err();
        assert!(e.to_string().contains("no snapshots of workspace"), "{e}");
    }

    #[test]
    fn empty_packs_are_deleted_and_mostly_unused_ones_rewritten() {
        let overhead = pack::pack_bytes(0);
        let plan = PackPlan::new(
            vec![
                usage(1, 1000, 0, 0),               // nothing live
                usage(2, 1000 + overhead, 1000, 3), // all live
                usage(3, 1000 + overhead, 950, 2),  // 5 % unused
                usage(4, 1000 + overhead, 500, 1),  // ~50 % unused
                usage(5, 1000 + overhead, 890, 1),  // just over 10 %
                usage(6, 1000 + overhead, 900, 1),  // just under 10 %
            ],
            10.0,
        );
        assert_eq!(rows(&plan.delete), [1]);
        assert_eq!(rows(&plan.rewrite), [4, 5]);
        assert_eq!(
            plan.estimated_bytes_freed(),
            1000 + (1000 + overhead - 500) + (1000 + overhead - 890)
        );
    }

    #[test]
    fn the_threshold_is_clamped() {
        let all = || vec![usage(1, 1000, 900, 1), usage(2, 1000, 0, 0)];
        let none = PackPlan::new(all(), 250.0);
        assert_eq!((rows(&none.delete), rows(&none.rewrite)), (vec![2], vec![]));
        // 0 % (forget): every pack with any unused byte is rewritten.
        let every = PackPlan::new(all(), -5.0);
        assert_eq!(
            (rows(&every.delete), rows(&every.rewrite)),
            (vec![2], vec![1])
        );
        assert_eq!(PackPlan::new(Vec::new(), 10.0).estimated_bytes_freed(), 0);
    }
}
