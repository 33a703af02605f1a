//! Taking paths out of stored trees: a snapshot's tree is filtered top
//! down with the exclude matcher (an excluded directory goes whole, as in a
//! snapshot's walk, which never enters it) and rebuilt bottom up. A
//! directory in which nothing matched keeps its tree id, so unchanged
//! subtrees are reused as they are and only the directories on the way to
//! a removed path get new trees.
//!
//! Trees are content-addressed, but matching depends on the path (an
//! anchored pattern such as `/config/secret.env`), so results are kept per
//! (tree id, path): the 288 snapshots of a workspace share most of their
//! directories, and each is filtered once. No I/O here: trees come from,
//! and new trees go to, a [`Trees`] (the store, or a map in tests).

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::error::Result;
use crate::id::{Id, TreeId};
use crate::tree::{self, Entry, EntryKind, Tree};
use crate::walk::Excludes;

/// Where trees are read and new trees written.
pub(super) trait Trees {
    fn read(&mut self, id: &TreeId) -> Result<Tree>;
    /// A tree made by the filter, children before their parents, each once.
    fn put(&mut self, tree: NewTree) -> Result<()>;
}

/// A tree the filter made: its id, canonical bytes and references.
pub(super) struct NewTree {
    pub id: TreeId,
    pub bytes: Vec<u8>,
    pub refs: Vec<Id>,
}

/// What removed entries held: subtracted from a snapshot's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Counts {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub size_bytes: u64,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.files += o.files;
        self.dirs += o.dirs;
        self.symlinks += o.symlinks;
        self.size_bytes += o.size_bytes;
    }
}

/// One entry taken out (a directory with everything below it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Removed {
    /// Relative to the snapshot's root.
    pub path: Vec<u8>,
    pub is_dir: bool,
    /// The pattern that matched it, as given.
    pub pattern: String,
}

/// A tree after filtering.
#[derive(Clone, Debug)]
pub(super) struct Filtered {
    /// The same id as before when nothing matched.
    pub tree: TreeId,
    /// Sorted by path.
    pub removed: Rc<Vec<Removed>>,
    pub minus: Counts,
}

/// Filters trees with one matcher, remembering every directory it has seen.
pub(super) struct Filter<'a, T: Trees> {
    excludes: &'a Excludes,
    trees: T,
    done: HashMap<(TreeId, Vec<u8>), Filtered>,
    held: HashMap<TreeId, Counts>,
    made: HashSet<TreeId>,
}

impl<'a, T: Trees> Filter<'a, T> {
    pub fn new(excludes: &'a Excludes, trees: T) -> Filter<'a, T> {
        Filter {
            excludes,
            trees,
            done: HashMap::new(),
            held: HashMap::new(),
            made: HashSet::new(),
        }
    }

    /// The [`Trees`] back (with what was put into it).
    #[cfg(test)]
    pub fn into_trees(self) -> T {
        self.trees
    }

    /// Filter a snapshot's root tree. Recursion goes one level per
    /// directory: call it on a thread with a deep stack (`walk::pool`).
    pub fn root(&mut self, root: TreeId) -> Result<Filtered> {
        self.dir(root, b"")
    }

    fn dir(&mut self, id: TreeId, rel: &[u8]) -> Result<Filtered> {
        let key = (id, rel.to_vec());
        if let Some(f) = self.done.get(&key) {
            return Ok(f.clone());
        }
        let tree = self.trees.read(&id)?;
        let mut kept: Vec<Entry> = Vec::with_capacity(tree.entries.len());
        let mut removed: Vec<Removed> = Vec::new();
        let mut minus = Counts::default();
        for mut e in tree.entries {
            let path = tree::join_rel(rel, &e.name);
            let sub = match e.kind {
                EntryKind::Dir { tree } => Some(tree),
                _ => None,
            };
            if let Some(pattern) = self.excludes.excluded_by(&path, sub.is_some()) {
                removed.push(Removed {
                    path,
                    is_dir: sub.is_some(),
                    pattern: pattern.to_string(),
                });
                minus.add(self.held_by(&e)?);
                continue;
            }
            if let Some(sub) = sub {
                let f = self.dir(sub, &path)?;
                if f.tree != sub {
                    e.kind = EntryKind::Dir { tree: f.tree };
                    removed.extend(f.removed.iter().cloned());
                    minus.add(f.minus);
                }
            }
            kept.push(e);
        }
        let out = if removed.is_empty() {
            Filtered {
                tree: id,
                removed: Rc::new(Vec::new()),
                minus,
            }
        } else {
            // Entries keep their order: still canonical, split into pieces
            // as a snapshot would (`tree::split`), pieces first.
            let (top, pieces) = crate::tree::split::split(kept);
            let new_id = top.id;
            for t in pieces.into_iter().chain([top]) {
                if self.made.insert(t.id) {
                    self.trees.put(NewTree {
                        id: t.id,
                        bytes: t.bytes,
                        refs: t.refs,
                    })?;
                }
            }
            removed.sort_by(|a, b| a.path.cmp(&b.path));
            Filtered {
                tree: new_id,
                removed: Rc::new(removed),
                minus,
            }
        };
        self.done.insert(key, out.clone());
        Ok(out)
    }

    /// What entry `e` holds, itself included.
    fn held_by(&mut self, e: &Entry) -> Result<Counts> {
        Ok(match &e.kind {
            EntryKind::File { .. } => Counts {
                files: 1,
                size_bytes: e.size,
                ..Counts::default()
            },
            EntryKind::Symlink { .. } => Counts {
                symlinks: 1,
                ..Counts::default()
            },
            EntryKind::Dir { tree } => {
                let mut c = self.held_in(*tree)?;
                c.dirs += 1;
                c
            }
        })
    }

    /// What a directory's tree holds (not counting the directory itself).
    fn held_in(&mut self, id: TreeId) -> Result<Counts> {
        if let Some(c) = self.held.get(&id) {
            return Ok(*c);
        }
        let mut c = Counts::default();
        for e in self.trees.read(&id)?.entries {
            c.add(self.held_by(&e)?);
        }
        self.held.insert(id, c);
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::id::ChunkId;
    use crate::tree::FileContent;

    /// Trees in a map; `put` adds to it and records the order.
    #[derive(Default)]
    struct Map {
        trees: HashMap<TreeId, Tree>,
        put: Vec<TreeId>,
        reads: usize,
    }

    impl Trees for Map {
        fn read(&mut self, id: &TreeId) -> Result<Tree> {
            self.reads += 1;
            Ok(self.trees[id].clone())
        }
        fn put(&mut self, t: NewTree) -> Result<()> {
            let tree = Tree::decode(&t.bytes).unwrap();
            assert_eq!(TreeId(Id::of(&t.bytes)), t.id);
            assert_eq!(tree.references(), t.refs);
            for r in &t.refs {
                // Children first: every subtree it names is known already.
                if let Some(sub) = tree
                    .entries
                    .iter()
                    .find(|e| e.kind == EntryKind::Dir { tree: TreeId(*r) })
                {
                    assert!(self.trees.contains_key(&TreeId(*r)), "{:?}", sub.name);
                }
            }
            self.put.push(t.id);
            self.trees.insert(t.id, tree);
            Ok(())
        }
    }

    fn entry(name: &str, kind: EntryKind, size: u64) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            flags: 0,
            mode: 0o644,
            mtime_ns: 1,
            ctime_ns: 2,
            inode: 3,
            uid: 4,
            gid: 5,
            size,
            kind,
        }
    }

    fn file(name: &str, size: u64) -> Entry {
        let content = FileContent::Chunks(vec![ChunkId(Id::of(name.as_bytes()))]);
        entry(name, EntryKind::File { content }, size)
    }

    impl Map {
        fn dir(&mut self, entries: Vec<Entry>) -> TreeId {
            let t = Tree::from_unsorted(entries);
            let (id, _) = t.encode_with_id();
            self.trees.insert(id, t);
            id
        }

        fn sub(&mut self, name: &str, entries: Vec<Entry>) -> Entry {
            let tree = self.dir(entries);
            entry(name, EntryKind::Dir { tree }, 0)
        }

        /// Every path below `id` ("dir/" for directories).
        fn paths(&self, id: TreeId, rel: &str, out: &mut Vec<String>) {
            for e in &self.trees[&id].entries {
                let p = format!("{rel}{}", String::from_utf8_lossy(&e.name));
                if let EntryKind::Dir { tree } = e.kind {
                    out.push(format!("{p}/"));
                    self.paths(tree, &format!("{p}/"), out);
                } else {
                    out.push(p);
                }
            }
        }
    }

    fn excludes(p: &[&str]) -> Excludes {
        Excludes::only(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    /// root: a.txt(10) secret.env(100) src/{secret.env(7) main.rs(5)}
    ///       docs/{x.md(1)} keys/{k1(2) deep/{k2(3)} link}
    fn sample(m: &mut Map) -> TreeId {
        let deep = m.sub("deep", vec![file("k2", 3)]);
        let link = entry(
            "link",
            EntryKind::Symlink {
                target: b"k1".to_vec(),
            },
            2,
        );
        let keys = m.sub("keys", vec![file("k1", 2), deep, link]);
        let src = m.sub("src", vec![file("secret.env", 7), file("main.rs", 5)]);
        let docs = m.sub("docs", vec![file("x.md", 1)]);
        m.dir(vec![
            file("a.txt", 10),
            file("secret.env", 100),
            src,
            docs,
            keys,
        ])
    }

    #[test]
    fn removes_every_match_and_keeps_unchanged_subtrees() {
        let mut m = Map::default();
        let root = sample(&mut m);
        let docs_before = match m.trees[&root].find(b"docs").unwrap().kind {
            EntryKind::Dir { tree } => tree,
            _ => unreachable!(),
        };
        let ex = excludes(&["secret.env", "keys/"]);
        let mut f = Filter::new(&ex, m);
        let out = f.root(root).unwrap();
        let m = f.into_trees();
        let got: Vec<(String, bool, String)> = out
            .removed
            .iter()
            .map(|r| {
                (
                    String::from_utf8_lossy(&r.path).into_owned(),
                    r.is_dir,
                    r.pattern.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("keys".into(), true, "keys/".into()),
                ("secret.env".into(), false, "secret.env".into()),
                ("src/secret.env".into(), false, "secret.env".into()),
            ]
        );
        assert_eq!(
            out.minus,
            Counts {
                files: 4,
                dirs: 2,
                symlinks: 1,
                size_bytes: 100 + 7 + 2 + 3
            }
        );
        let mut paths = Vec::new();
        m.paths(out.tree, "", &mut paths);
        assert_eq!(
            paths,
            ["a.txt", "docs/", "docs/x.md", "src/", "src/main.rs"]
        );
        // Root and src are new; docs is the very same tree.
        assert_eq!(m.put.len(), 2);
        assert_eq!(*m.put.last().unwrap(), out.tree, "the root comes last");
        match m.trees[&out.tree].find(b"docs").unwrap().kind {
            EntryKind::Dir { tree } => assert_eq!(tree, docs_before),
            _ => unreachable!(),
        }
        // Everything else about an entry is kept.
        let a = m.trees[&out.tree].find(b"a.txt").unwrap().clone();
        assert_eq!(a, file("a.txt", 10));
    }

    #[test]
    fn nothing_matched_is_the_same_tree_and_writes_nothing() {
        let mut m = Map::default();
        let root = sample(&mut m);
        let ex = excludes(&["nothing-like-this", "/main.rs"]);
        let mut f = Filter::new(&ex, m);
        let out = f.root(root).unwrap();
        assert_eq!(out.tree, root);
        assert!(out.removed.is_empty());
        assert_eq!(out.minus, Counts::default());
        assert!(f.into_trees().put.is_empty());
    }

    #[test]
    fn anchored_patterns_and_reincludes_mean_what_they_mean_in_a_snapshot() {
        let mut m = Map::default();
        let root = sample(&mut m);
        let ex = excludes(&["/src/secret.env", "*.env", "!/secret.env"]);
        let mut f = Filter::new(&ex, m);
        let out = f.root(root).unwrap();
        let got: Vec<Vec<u8>> = out.removed.iter().map(|r| r.path.clone()).collect();
        assert_eq!(got, [b"src/secret.env".to_vec()]);
        // The last matching line names it, as gitignore decides.
        assert_eq!(out.removed[0].pattern, "*.env");
    }

    /// A generated directory tree: names from a small set, so patterns hit.
    #[derive(Clone, Debug)]
    enum Node {
        File(u64),
        Dir(BTreeMap<String, Node>),
    }

    fn node() -> impl Strategy<Value = Node> {
        (0u64..1000)
            .prop_map(Node::File)
            .prop_recursive(4, 40, 5, |inner| {
                proptest::collection::btree_map(name(), inner, 0..5).prop_map(Node::Dir)
            })
    }

    fn name() -> impl Strategy<Value = String> {
        proptest::sample::select(vec!["a", "b", "keys", "secret.env", "x.env", "c.txt"])
            .prop_map(String::from)
    }

    fn build(m: &mut Map, dir: &BTreeMap<String, Node>) -> TreeId {
        let entries = dir
            .iter()
            .map(|(n, node)| match node {
                Node::File(size) => file(n, *size),
                Node::Dir(d) => {
                    let tree = build(m, d);
                    entry(n, EntryKind::Dir { tree }, 0)
                }
            })
            .collect();
        m.dir(entries)
    }

    /// The same thing done the obvious way on the generated tree: what is
    /// kept (paths, "dir/" for directories), what is removed, and counts.
    fn reference(
        ex: &Excludes,
        dir: &BTreeMap<String, Node>,
        rel: &str,
        kept: &mut Vec<String>,
        removed: &mut Vec<String>,
        minus: &mut Counts,
    ) {
        fn all(node: &Node, c: &mut Counts) {
            match node {
                Node::File(size) => {
                    c.files += 1;
                    c.size_bytes += size;
                }
                Node::Dir(d) => {
                    c.dirs += 1;
                    d.values().for_each(|n| all(n, c));
                }
            }
        }
        for (n, node) in dir {
            let p = format!("{rel}{n}");
            let is_dir = matches!(node, Node::Dir(_));
            if ex.is_excluded(p.as_bytes(), is_dir) {
                removed.push(p);
                all(node, minus);
                continue;
            }
            match node {
                Node::File(_) => kept.push(p),
                Node::Dir(d) => {
                    kept.push(format!("{p}/"));
                    reference(ex, d, &format!("{p}/"), kept, removed, minus);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn filtering_keeps_exactly_what_the_patterns_leave(
            root in proptest::collection::btree_map(name(), node(), 0..6),
            patterns in proptest::sample::subsequence(
                vec!["secret.env", "keys/", "/a/b", "*.env", "!x.env", "a/**/c.txt", "b"], 0..4),
        ) {
            let ex = excludes(&patterns);
            let mut m = Map::default();
            let id = build(&mut m, &root);
            let (mut kept, mut removed, mut minus) = (Vec::new(), Vec::new(), Counts::default());
            reference(&ex, &root, "", &mut kept, &mut removed, &mut minus);
            removed.sort();

            let mut f = Filter::new(&ex, m);
            let out = f.root(id).unwrap();
            let again = f.root(id).unwrap();
            let m = f.into_trees();
            let mut got = Vec::new();
            m.paths(out.tree, "", &mut got);
            prop_assert_eq!(got, kept);
            let got_removed: Vec<String> = out
                .removed
                .iter()
                .map(|r| String::from_utf8(r.path.clone()).unwrap())
                .collect();
            prop_assert_eq!(got_removed, removed.clone());
            prop_assert_eq!(out.minus, minus);
            prop_assert_eq!(out.tree == id, removed.is_empty());
            prop_assert_eq!(again.tree, out.tree);
            // Every tree written is new, and written once.
            let written: HashSet<TreeId> = m.put.iter().copied().collect();
            prop_assert_eq!(written.len(), m.put.len());
        }
    }

    #[test]
    fn each_directory_is_filtered_once_across_snapshots() {
        let mut m = Map::default();
        let root = sample(&mut m);
        // A second snapshot: the same tree plus one file at the root.
        let mut entries = m.trees[&root].entries.clone();
        entries.push(file("b.txt", 1));
        let root2 = m.dir(entries);
        let ex = excludes(&["secret.env"]);
        let mut f = Filter::new(&ex, m);
        let one = f.root(root).unwrap();
        let reads_one = f.trees.reads;
        let two = f.root(root2).unwrap();
        // Only the new root was read again; its subtrees were remembered.
        assert_eq!(f.trees.reads, reads_one + 1);
        assert_ne!(one.tree, two.tree);
        assert_eq!(one.removed, two.removed);
        // src's new tree is made once, shared by both roots.
        assert_eq!(f.into_trees().put.len(), 3);
    }
}
