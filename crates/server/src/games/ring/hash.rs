//! Which node owns a game: a consistent-hash ring over the cluster's nodes.
//!
//! Every node and every release must agree on the owner of an id, so the
//! ring hashes **byte strings** with FNV-1a and feeds integers little-endian:
//! nothing depends on how a Rust type implements `Hash` (which std does not
//! promise to keep) or on the machine's endianness. Expected owners of fixed
//! ids are pinned in the tests below; a change that moves them breaks every
//! running cluster during a rolling upgrade.

use std::hash::{BuildHasher, Hash, Hasher};

use consistent_hash_ring::{Ring, RingBuilder};
use fnv::FnvHasher;

/// Virtual nodes per node: enough for an even spread (±15 % over 3 nodes).
pub const VNODES: usize = 160;

/// A node's id as it hashes: its bytes and nothing else.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeName(pub String);

impl Hash for NodeName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.0.as_bytes());
    }
}

/// A key as it hashes: the canonical string's bytes and nothing else.
#[derive(Debug, Clone, Copy)]
struct KeyBytes<'a>(&'a str);

impl Hash for KeyBytes<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.0.as_bytes());
    }
}

/// FNV-1a over exactly the bytes written, integers as little-endian bytes.
#[derive(Default)]
pub struct StableHasher(FnvHasher);

impl std::fmt::Debug for StableHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StableHasher")
    }
}

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        self.0.finish()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    fn write_u64(&mut self, i: u64) {
        self.0.write(&i.to_le_bytes());
    }

    fn write_usize(&mut self, i: usize) {
        self.0.write(&(i as u64).to_le_bytes());
    }
}

/// Builds [`StableHasher`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct StableBuildHasher;

impl BuildHasher for StableBuildHasher {
    type Hasher = StableHasher;

    fn build_hasher(&self) -> StableHasher {
        StableHasher::default()
    }
}

/// The ring of a cluster's nodes.
#[derive(Clone)]
pub struct HashRing {
    ring: Ring<NodeName, StableBuildHasher>,
}

impl std::fmt::Debug for HashRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashRing")
            .field("nodes", &self.ring.len())
            .finish()
    }
}

impl HashRing {
    /// A ring of `nodes`, each with [`VNODES`] virtual nodes.
    pub fn new<'a>(nodes: impl IntoIterator<Item = &'a str>) -> HashRing {
        let ring = RingBuilder::new(StableBuildHasher)
            .vnodes(VNODES)
            .nodes_iter(nodes.into_iter().map(|n| NodeName(n.to_owned())))
            .build();
        HashRing { ring }
    }

    /// The node that owns `key` (a game id's canonical string); `None` only
    /// for an empty ring.
    pub fn owner(&self, key: &str) -> Option<&str> {
        self.ring.try_get(KeyBytes(key)).map(|n| n.0.as_str())
    }

    /// Nodes in the ring.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether the ring has no node.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use uuid::Uuid;

    use super::*;

    fn ids(n: usize) -> Vec<String> {
        // Deterministic ids: the test must not depend on randomness.
        (0..n as u128)
            .map(|i| {
                Uuid::from_u128(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn ten_thousand_ids_spread_within_15_percent() {
        let ring = HashRing::new(["a", "b", "c"]);
        let mut counts: HashMap<&str, usize> = HashMap::new();
        let ids = ids(10_000);
        for id in &ids {
            *counts.entry(ring.owner(id).unwrap()).or_default() += 1;
        }
        let third = 10_000.0 / 3.0;
        for (node, n) in &counts {
            let off = (*n as f64 - third).abs() / third;
            assert!(
                off <= 0.15,
                "node {node} has {n} of 10000 ({:.1} % off)",
                off * 100.0
            );
        }
        assert_eq!(counts.len(), 3);
    }

    #[test]
    fn adding_a_node_moves_only_games_it_takes_over() {
        let three = HashRing::new(["a", "b", "c"]);
        let four = HashRing::new(["a", "b", "c", "d"]);
        let mut moved = 0;
        for id in ids(10_000) {
            let before = three.owner(&id).unwrap();
            let after = four.owner(&id).unwrap();
            if before != after {
                assert_eq!(after, "d", "a game moved between old nodes");
                moved += 1;
            }
        }
        // About a quarter moves to the new node; none elsewhere.
        assert!((1_500..=3_500).contains(&moved), "{moved} moved");
    }

    #[test]
    fn order_of_nodes_does_not_matter() {
        let x = HashRing::new(["a", "b", "c"]);
        let y = HashRing::new(["c", "a", "b"]);
        for id in ids(1_000) {
            assert_eq!(x.owner(&id), y.owner(&id));
        }
    }
}

#[cfg(test)]
mod pinned {
    use super::*;

    /// These owners are a contract between releases: if this test fails, a
    /// mixed-version cluster would disagree on where games live.
    #[test]
    fn owners_of_fixed_ids_never_change() {
        let ring = HashRing::new(["node-a", "node-b", "node-c"]);
        for (id, owner) in [
            ("00000000-0000-4000-8000-000000000000", "node-a"),
            ("3b1e8f5c-2a47-4c1d-9e6b-7f0a1d2c3e4f", "node-a"),
            ("c0ffee00-1234-4abc-8def-0123456789ab", "node-c"),
            ("ffffffff-ffff-4fff-bfff-ffffffffffff", "node-a"),
            ("6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5", "node-b"),
            ("a1b2c3d4-e5f6-4789-9abc-def012345678", "node-a"),
        ] {
            assert_eq!(ring.owner(id), Some(owner), "owner of {id}");
        }
    }

    #[test]
    fn the_hash_is_fnv1a_of_the_bytes() {
        let mut h = StableBuildHasher.build_hasher();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c, "FNV-1a 64 of \"a\"");
        let mut h = StableBuildHasher.build_hasher();
        h.write_u64(1);
        let mut g = StableBuildHasher.build_hasher();
        g.write(&[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(h.finish(), g.finish(), "integers hash little-endian");
    }
}
