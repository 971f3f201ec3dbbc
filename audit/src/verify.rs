//! Streaming verification of a stored log: recompute the RFC 9162 tree from the
//! leaves, check every stored checkpoint's signature and root, and name the first
//! entry that fails.
//!
//! Failures come in two precisions. *Exact* ones name one leaf (its stored hash does
//! not match its data, the personality says the entry is wrong, a gap). A checkpoint
//! whose root does not match the leaves only tells that some leaf between the
//! previous good checkpoint and this one changed: that failure names the range
//! `[leaf_index, range_end)`. The report names an exact failure when one lies before
//! the end of the first failing range, else the range.

use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::merkle::{leaf_hash, CompactRange, Hash};
use crate::note::NoteVerifier;

/// Classification of a verification failure (serialised snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFailureReason {
    /// The stored leaf hash differs from `SHA-256(0x00 ‖ data)`.
    LeafHashMismatch,
    /// Leaves are not numbered 0, 1, 2, … without gaps.
    IndexGap,
    /// The entry's data is not a well-formed entry (personality check).
    MalformedEntry,
    /// The entry disagrees with the record it logs (e.g. the decisions table).
    RecordMismatch,
    /// A stored checkpoint's signature does not verify under the log key.
    CheckpointSignature,
    /// A stored checkpoint's root differs from the root of the stored leaves.
    CheckpointRoot,
    /// A checkpoint signs more leaves than are stored (the tail was removed).
    MissingLeaves,
    /// Leaves after the last checkpoint (appended without being sequenced).
    UncoveredLeaves,
}

/// Where and why verification failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFailure {
    /// First leaf (0-based) concerned.
    pub leaf_index: u64,
    /// The same position as a 1-based sequence number (`leaf_index + 1`).
    pub seq: u64,
    /// Classification.
    pub reason: LogFailureReason,
    /// For a checkpoint failure: the leaves `[leaf_index, range_end)` among which the
    /// change lies. Absent for exact failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_end: Option<u64>,
    /// Human-readable explanation.
    pub detail: String,
}

impl LogFailure {
    /// An exact failure at `leaf_index`.
    pub fn exact(leaf_index: u64, reason: LogFailureReason, detail: impl Into<String>) -> Self {
        Self {
            leaf_index,
            seq: leaf_index + 1,
            reason,
            range_end: None,
            detail: detail.into(),
        }
    }
}

/// Result of [`LogVerifier::finish`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogReport {
    /// True when every leaf and checkpoint verified.
    pub valid: bool,
    /// Number of stored leaves read.
    pub tree_size: u64,
    /// Same as `tree_size` (name kept from the hash-chain reports).
    pub entries_checked: u64,
    /// Number of checkpoints whose signature and root verified.
    pub checkpoints_checked: u64,
    /// Size of the last checkpoint that verified (0 if none).
    pub verified_size: u64,
    /// Root of all stored leaves (hex).
    pub root_hash: String,
    /// The first failure, if any.
    pub first_failure: Option<LogFailure>,
}

/// Streaming verifier; feed leaves in index order, then [`LogVerifier::finish`].
#[derive(Debug)]
pub struct LogVerifier {
    verifier: NoteVerifier,
    range: CompactRange,
    /// (size, signed note), ascending by size.
    checkpoints: Vec<(u64, String)>,
    next_cp: usize,
    good_size: u64,
    checked: u64,
    gap: bool,
    exact: Option<LogFailure>,
    ranged: Option<LogFailure>,
}

impl LogVerifier {
    /// A verifier for a log whose stored checkpoints are `checkpoints` (tree size as
    /// stored next to the note, and the note).
    pub fn new(verifier: NoteVerifier, mut checkpoints: Vec<(u64, String)>) -> Self {
        checkpoints.sort_by_key(|c| c.0);
        let mut v = Self {
            verifier,
            range: CompactRange::new(),
            checkpoints,
            next_cp: 0,
            good_size: 0,
            checked: 0,
            gap: false,
            exact: None,
            ranged: None,
        };
        v.check_due_checkpoints();
        v
    }

    /// Leaves read so far.
    pub fn size(&self) -> u64 {
        self.range.size()
    }

    /// Record an exact failure found by the caller (e.g. the personality's checks).
    pub fn fail_exact(&mut self, failure: LogFailure) {
        if self
            .exact
            .as_ref()
            .is_none_or(|e| failure.leaf_index < e.leaf_index)
        {
            self.exact = Some(failure);
        }
    }

    /// Next leaf: its stored index, data (the exact bytes hashed) and stored leaf hash.
    pub fn push_leaf(&mut self, index: u64, data: &[u8], stored_hash: Option<&Hash>) {
        if self.gap {
            return;
        }
        let expected = self.range.size();
        if index != expected {
            self.gap = true;
            self.fail_exact(LogFailure::exact(
                expected,
                LogFailureReason::IndexGap,
                format!("expected leaf {expected}, found leaf {index}"),
            ));
            return;
        }
        let h = leaf_hash(data);
        if let Some(s) = stored_hash {
            if s != &h {
                self.fail_exact(LogFailure::exact(
                    index,
                    LogFailureReason::LeafHashMismatch,
                    format!(
                        "stored leaf hash {} but the entry hashes to {}",
                        hex::encode(s),
                        hex::encode(h)
                    ),
                ));
            }
        }
        self.range.push(h);
        self.check_due_checkpoints();
    }

    fn fail_range(&mut self, reason: LogFailureReason, end: u64, detail: String) {
        if self.ranged.is_none() {
            self.ranged = Some(LogFailure {
                leaf_index: self.good_size,
                seq: self.good_size + 1,
                reason,
                range_end: Some(end),
                detail,
            });
        }
    }

    fn check_due_checkpoints(&mut self) {
        while let Some((size, note)) = self.checkpoints.get(self.next_cp).cloned() {
            if size != self.range.size() {
                break;
            }
            self.next_cp += 1;
            match Checkpoint::open(&note, &self.verifier) {
                Err(e) => self.fail_range(
                    LogFailureReason::CheckpointSignature,
                    size,
                    format!("checkpoint of size {size}: {e}"),
                ),
                Ok(cp) if cp.size != size => self.fail_range(
                    LogFailureReason::CheckpointSignature,
                    size,
                    format!("checkpoint stored as size {size} signs size {}", cp.size),
                ),
                Ok(cp) if cp.root != self.range.root() => self.fail_range(
                    LogFailureReason::CheckpointRoot,
                    size,
                    format!(
                        "checkpoint of size {size} signs root {} but leaves [0, {size}) hash to {}: \
                         an entry in [{}, {size}) was changed",
                        hex::encode(cp.root),
                        hex::encode(self.range.root()),
                        self.good_size
                    ),
                ),
                Ok(_) => {
                    if self.ranged.is_none() {
                        self.good_size = size;
                    }
                    self.checked += 1;
                }
            }
        }
    }

    /// Summarise: also fails when a checkpoint signs more leaves than were read, or
    /// leaves follow the last checkpoint.
    pub fn finish(mut self) -> LogReport {
        let n = self.range.size();
        if let Some((size, _)) = self.checkpoints.get(self.next_cp) {
            let size = *size;
            self.fail_exact(LogFailure::exact(
                n,
                LogFailureReason::MissingLeaves,
                format!("a checkpoint signs {size} leaves but only {n} are stored"),
            ));
        }
        let last = self.checkpoints.last().map_or(0, |c| c.0);
        if n > last && !self.gap {
            self.fail_exact(LogFailure::exact(
                last,
                LogFailureReason::UncoveredLeaves,
                format!("leaves [{last}, {n}) are in no signed checkpoint"),
            ));
        }
        let first_failure = match (self.exact, self.ranged) {
            (Some(e), Some(r)) => {
                if e.leaf_index < r.range_end.unwrap_or(u64::MAX) {
                    Some(e)
                } else {
                    Some(r)
                }
            }
            (e, r) => e.or(r),
        };
        LogReport {
            valid: first_failure.is_none(),
            tree_size: n,
            entries_checked: n,
            checkpoints_checked: self.checked,
            verified_size: self.good_size,
            root_hash: hex::encode(self.range.root()),
            first_failure,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::merkle::MerkleTree;
    use crate::note::NoteSigner;

    fn log(n: u64, every: u64) -> (NoteSigner, Vec<String>, Vec<(u64, String)>) {
        let signer = NoteSigner::generate("hallmark.test/log").unwrap();
        let mut t = MerkleTree::new();
        let mut entries = Vec::new();
        let mut cps = Vec::new();
        for i in 0..n {
            let e = format!("{{\"i\":{i}}}");
            t.push(leaf_hash(e.as_bytes()));
            entries.push(e);
            if (i + 1) % every == 0 || i + 1 == n {
                let cp = Checkpoint {
                    origin: signer.name().into(),
                    size: i + 1,
                    root: t.root(i + 1).unwrap(),
                    extensions: vec![],
                };
                cps.push((i + 1, cp.sign(&signer).unwrap()));
            }
        }
        (signer, entries, cps)
    }

    fn run(
        signer: &NoteSigner,
        entries: &[String],
        stored: &[Hash],
        cps: &[(u64, String)],
    ) -> LogReport {
        let mut v = LogVerifier::new(signer.verifier(), cps.to_vec());
        for (i, e) in entries.iter().enumerate() {
            v.push_leaf(i as u64, e.as_bytes(), Some(&stored[i]));
        }
        v.finish()
    }

    #[test]
    fn detects_and_locates_changes() {
        let (signer, entries, cps) = log(40, 4);
        let hashes: Vec<Hash> = entries.iter().map(|e| leaf_hash(e.as_bytes())).collect();
        let r = run(&signer, &entries, &hashes, &cps);
        assert!(r.valid, "{r:?}");
        assert_eq!(r.checkpoints_checked, 10);

        // Data edited, stored hash kept: exact.
        let mut edited = entries.clone();
        edited[13] = "{\"i\":99}".into();
        let r = run(&signer, &edited, &hashes, &cps);
        let f = r.first_failure.unwrap();
        assert_eq!(
            (f.leaf_index, f.reason),
            (13, LogFailureReason::LeafHashMismatch)
        );

        // Data and stored hash edited: the checkpoint covering it names its batch.
        let mut rehashed = hashes.clone();
        rehashed[13] = leaf_hash(edited[13].as_bytes());
        let r = run(&signer, &edited, &rehashed, &cps);
        let f = r.first_failure.unwrap();
        assert_eq!(f.reason, LogFailureReason::CheckpointRoot);
        assert_eq!((f.leaf_index, f.range_end), (12, Some(16)));

        // Truncated tail, forged checkpoint signature, leaves past the last checkpoint.
        let r = run(&signer, &entries[..38], &hashes, &cps);
        assert_eq!(
            r.first_failure.unwrap().reason,
            LogFailureReason::MissingLeaves
        );
        let mut forged = cps.clone();
        let other = NoteSigner::generate("hallmark.test/log").unwrap();
        forged[2].1 = Checkpoint::parse(signer.verifier().open(&cps[2].1).unwrap())
            .unwrap()
            .sign(&other)
            .unwrap();
        let r = run(&signer, &entries, &hashes, &forged);
        let f = r.first_failure.unwrap();
        assert_eq!(
            (f.reason, f.leaf_index),
            (LogFailureReason::CheckpointSignature, 8)
        );
        let r = run(&signer, &entries, &hashes, &cps[..9]);
        assert_eq!(
            r.first_failure.unwrap().reason,
            LogFailureReason::UncoveredLeaves
        );
    }
}
