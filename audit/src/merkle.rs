//! RFC 9162 Merkle tree: hashing, an in-memory tree that answers proofs for any
//! earlier size, and the verification algorithms for inclusion and consistency
//! proofs.
//!
//! Definitions follow RFC 9162 §2.1 (identical to RFC 6962 §2.1 for SHA-256):
//!
//! ```text
//! MTH({})       = SHA-256()
//! MTH({d(0)})   = SHA-256(0x00 ‖ d(0))                     leaf hash
//! MTH(D[n])     = SHA-256(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n]))  node hash,
//!                 k = largest power of two < n
//! ```
//!
//! Proof generation follows §2.1.3.1 (`PATH`) and §2.1.4.1 (`PROOF`/`SUBPROOF`);
//! verification follows §2.1.3.2 and §2.1.4.2 step by step.

use ring::digest;

/// A SHA-256 hash (32 raw bytes).
pub type Hash = [u8; 32];

/// Errors of proof generation and verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// `index >= tree_size`, `tree_size` larger than the tree, `old > new`, or a size of 0
    /// where the RFC needs a non-empty tree.
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// The proof does not prove the claim (wrong hashes, wrong length, wrong index or size).
    #[error("proof does not verify: {0}")]
    Invalid(&'static str),
}

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// `SHA-256(0x00 ‖ data)`: the hash of leaf `data` (RFC 9162 §2.1.1).
pub fn leaf_hash(data: &[u8]) -> Hash {
    sha256(&[&[0x00], data])
}

/// `SHA-256(0x01 ‖ left ‖ right)`: an interior node (RFC 9162 §2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// `SHA-256()`: the root of the empty tree.
pub fn empty_root() -> Hash {
    sha256(&[])
}

/// Largest power of two strictly smaller than `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Root of a tree over the given leaf hashes (recursive MTH; O(n)). For tests and
/// small trees; [`MerkleTree`] and [`CompactRange`] are the incremental forms.
pub fn root_from_leaf_hashes(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(
                &root_from_leaf_hashes(&leaves[..k]),
                &root_from_leaf_hashes(&leaves[k..]),
            )
        }
    }
}

/// The right edge of a tree ("compact range" \[0, n)): the roots of the perfect
/// subtrees that make up the first `n` leaves, largest first. Appending is O(log n) amortised;
/// [`CompactRange::root`] folds them into the RFC 9162 root in O(log n). This is how
/// a verifier recomputes roots while streaming leaves without keeping them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    /// Subtree roots, one per set bit of `size`, most significant first.
    nodes: Vec<Hash>,
}

impl CompactRange {
    /// The empty range.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves covered.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Append one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut s = self.size;
        while s & 1 == 1 {
            if let Some(left) = self.nodes.pop() {
                h = node_hash(&left, &h);
            }
            s >>= 1;
        }
        self.nodes.push(h);
        self.size += 1;
    }

    /// RFC 9162 root of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        let mut acc = *last;
        for left in it {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// An in-memory RFC 9162 tree over leaf hashes that keeps every complete perfect
/// subtree root (level `k`, position `j` = root of leaves `[j·2^k, (j+1)·2^k)`), so
/// roots, inclusion and consistency proofs for **any** size up to [`MerkleTree::size`]
/// cost O(log² n) hashes at worst. Memory: about 64 bytes per leaf.
#[derive(Debug, Clone, Default)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Append a leaf hash; returns its index.
    pub fn push(&mut self, leaf: Hash) -> u64 {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        let index = self.size();
        let mut level = 0;
        let mut h = leaf;
        loop {
            self.levels[level].push(h);
            let len = self.levels[level].len();
            if len % 2 == 1 {
                break;
            }
            h = node_hash(&self.levels[level][len - 2], &self.levels[level][len - 1]);
            level += 1;
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
        }
        index
    }

    /// Drop leaves so that `size` remain (undo appends that were not committed).
    pub fn truncate(&mut self, size: u64) {
        for (k, level) in self.levels.iter_mut().enumerate() {
            let keep = (size >> k) as usize;
            level.truncate(keep);
        }
        while self.levels.last().is_some_and(Vec::is_empty) && self.levels.len() > 1 {
            self.levels.pop();
        }
    }

    /// Hash of leaf `index`, if present.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels
            .first()
            .and_then(|l| usize::try_from(index).ok().and_then(|i| l.get(i)))
            .copied()
    }

    /// MTH(D[a:b]) for `a < b <= size`.
    fn subtree(&self, a: u64, b: u64) -> Hash {
        let n = b - a;
        if n.is_power_of_two() && a.is_multiple_of(n) {
            let k = n.trailing_zeros() as usize;
            if let Some(h) = self.levels.get(k).and_then(|l| l.get((a >> k) as usize)) {
                return *h;
            }
        }
        if n == 1 {
            // Unreachable for a < b <= size (level 0 holds every leaf); keep it total.
            return empty_root();
        }
        let k = split(n);
        node_hash(&self.subtree(a, a + k), &self.subtree(a + k, b))
    }

    /// RFC 9162 root of the first `size` leaves.
    ///
    /// # Errors
    /// [`ProofError::OutOfRange`] when `size` exceeds the tree.
    pub fn root(&self, size: u64) -> Result<Hash, ProofError> {
        if size > self.size() {
            return Err(ProofError::OutOfRange(format!(
                "tree size {size} exceeds the log size {}",
                self.size()
            )));
        }
        Ok(if size == 0 {
            empty_root()
        } else {
            self.subtree(0, size)
        })
    }

    /// Inclusion proof `PATH(index, D[0:size])` (RFC 9162 §2.1.3.1), leaf-side first.
    ///
    /// # Errors
    /// [`ProofError::OutOfRange`] unless `index < size <= self.size()`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        if size > self.size() || index >= size {
            return Err(ProofError::OutOfRange(format!(
                "need index < tree_size <= {}; got index {index}, tree_size {size}",
                self.size()
            )));
        }
        let mut out = Vec::new();
        self.path(index, 0, size, &mut out);
        Ok(out)
    }

    fn path(&self, m: u64, a: u64, b: u64, out: &mut Vec<Hash>) {
        let n = b - a;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, a, a + k, out);
            out.push(self.subtree(a + k, b));
        } else {
            self.path(m - k, a + k, b, out);
            out.push(self.subtree(a, a + k));
        }
    }

    /// Consistency proof `PROOF(old, D[0:new])` (RFC 9162 §2.1.4.1). Empty when
    /// `old == new`.
    ///
    /// # Errors
    /// [`ProofError::OutOfRange`] unless `0 < old <= new <= self.size()`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, ProofError> {
        if new > self.size() || old == 0 || old > new {
            return Err(ProofError::OutOfRange(format!(
                "need 0 < old <= new <= {}; got old {old}, new {new}",
                self.size()
            )));
        }
        let mut out = Vec::new();
        if old < new {
            self.subproof(old, 0, new, true, &mut out);
        }
        Ok(out)
    }

    fn subproof(&self, m: u64, a: u64, b: u64, complete: bool, out: &mut Vec<Hash>) {
        let n = b - a;
        if m == n {
            if !complete {
                out.push(self.subtree(a, b));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, a, a + k, complete, out);
            out.push(self.subtree(a + k, b));
        } else {
            self.subproof(m - k, a + k, b, false, out);
            out.push(self.subtree(a, a + k));
        }
    }
}

/// Verify an inclusion proof (RFC 9162 §2.1.3.2).
///
/// # Errors
/// [`ProofError::OutOfRange`] if `index >= tree_size`; [`ProofError::Invalid`] if the
/// proof has the wrong length or does not lead to `root`.
pub fn verify_inclusion(
    index: u64,
    tree_size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= tree_size {
        return Err(ProofError::OutOfRange(format!(
            "leaf index {index} >= tree size {tree_size}"
        )));
    }
    let mut f = index;
    let mut s = tree_size - 1;
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::Invalid("inclusion proof too long"));
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::Invalid("inclusion proof too short"));
    }
    if &r != root {
        return Err(ProofError::Invalid(
            "inclusion proof does not lead to the root",
        ));
    }
    Ok(())
}

/// Verify a consistency proof between tree sizes `old` and `new` (RFC 9162 §2.1.4.2).
/// `old == new` needs an empty proof and equal roots; `old == 0 < new` is rejected
/// (nothing to prove, as in transparency-dev/merkle).
///
/// # Errors
/// [`ProofError::OutOfRange`] if `old > new`; [`ProofError::Invalid`] otherwise.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::OutOfRange(format!(
            "old size {old} > new size {new}"
        )));
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::Invalid(
                "sizes are equal but the proof is not empty",
            ));
        }
        if old_root != new_root {
            return Err(ProofError::Invalid("sizes are equal but the roots differ"));
        }
        return Ok(());
    }
    if old == 0 {
        return Err(ProofError::Invalid(
            "consistency with the empty tree proves nothing",
        ));
    }
    if proof.is_empty() {
        return Err(ProofError::Invalid("empty consistency proof"));
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let mut f = old - 1;
    let mut s = new - 1;
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let mut fr = path[0];
    let mut sr = path[0];
    for c in &path[1..] {
        if s == 0 {
            return Err(ProofError::Invalid("consistency proof too long"));
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::Invalid("consistency proof too short"));
    }
    if &fr != old_root {
        return Err(ProofError::Invalid(
            "consistency proof does not lead to the old root",
        ));
    }
    if &sr != new_root {
        return Err(ProofError::Invalid(
            "consistency proof does not lead to the new root",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "merkle_tests.rs"]
mod tests;
