//! Receipts: everything needed to check offline that an entry is in the log —
//! the entry, its leaf index and hash, an inclusion proof and the signed checkpoint
//! the proof leads to. [`Receipt::tlog_proof`] renders the same content in the shape
//! of C2SP `tlog-proof` (`c2sp.org/tlog-proof@v1`, `index N`, base64 proof hashes, a
//! blank line, the checkpoint).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::merkle::{leaf_hash, verify_inclusion, Hash, ProofError};
use crate::note::NoteVerifier;

/// Why a receipt does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The checkpoint does not verify under the key, or is for another log.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A hash is not 64 lowercase hex characters.
    #[error("malformed hash in receipt: {0}")]
    MalformedHash(String),
    /// The entry text does not hash to `leaf_hash`.
    #[error("the entry does not hash to the receipt's leaf_hash")]
    LeafMismatch,
    /// The inclusion proof does not lead to the checkpoint's root.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// Parse 64 lowercase hex characters.
///
/// # Errors
/// [`ReceiptError::MalformedHash`].
pub fn parse_hex_hash(s: &str) -> Result<Hash, ReceiptError> {
    let ok = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let mut out = [0u8; 32];
    if !ok || hex::decode_to_slice(s, &mut out).is_err() {
        return Err(ReceiptError::MalformedHash(s.chars().take(80).collect()));
    }
    Ok(out)
}

/// Proof that one entry is in a log (JSON; hashes in lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// 0-based position of the leaf.
    pub leaf_index: u64,
    /// `SHA-256(0x00 ‖ entry)`.
    pub leaf_hash: String,
    /// `PATH(leaf_index, D[0:checkpoint size])`, leaf side first.
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint (C2SP tlog-checkpoint in a signed note).
    pub checkpoint: String,
    /// The leaf data: the entry's canonical JSON text, as hashed. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
}

impl Receipt {
    /// Build from raw parts.
    pub fn new(
        leaf_index: u64,
        leaf: &Hash,
        proof: &[Hash],
        checkpoint: String,
        entry: Option<String>,
    ) -> Self {
        Self {
            leaf_index,
            leaf_hash: hex::encode(leaf),
            inclusion_proof: proof.iter().map(hex::encode).collect(),
            checkpoint,
            entry,
        }
    }

    /// The C2SP tlog-proof text of this receipt.
    pub fn tlog_proof(&self) -> String {
        let mut s = format!("c2sp.org/tlog-proof@v1\nindex {}\n", self.leaf_index);
        for p in &self.inclusion_proof {
            if let Ok(h) = parse_hex_hash(p) {
                s.push_str(&B64.encode(h));
                s.push('\n');
            }
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        s
    }

    /// Verify offline with the log's verifier key: checkpoint signature and origin, the
    /// entry's hash (when present) and the inclusion proof. Returns the checkpoint.
    ///
    /// # Errors
    /// [`ReceiptError`].
    pub fn verify(&self, verifier: &NoteVerifier) -> Result<Checkpoint, ReceiptError> {
        let cp = Checkpoint::open(&self.checkpoint, verifier)?;
        let leaf = parse_hex_hash(&self.leaf_hash)?;
        if let Some(e) = &self.entry {
            if leaf_hash(e.as_bytes()) != leaf {
                return Err(ReceiptError::LeafMismatch);
            }
        }
        let proof = self
            .inclusion_proof
            .iter()
            .map(|p| parse_hex_hash(p))
            .collect::<Result<Vec<_>, _>>()?;
        verify_inclusion(self.leaf_index, cp.size, &leaf, &proof, &cp.root)?;
        Ok(cp)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::merkle::MerkleTree;
    use crate::note::NoteSigner;

    #[test]
    fn receipts_verify_and_reject_tampering() {
        let signer = NoteSigner::generate("hallmark.test/log").unwrap();
        let entries: Vec<String> = (0..13).map(|i| format!("{{\"n\":{i}}}")).collect();
        let mut t = MerkleTree::new();
        for e in &entries {
            t.push(leaf_hash(e.as_bytes()));
        }
        let cp = Checkpoint {
            origin: signer.name().into(),
            size: 13,
            root: t.root(13).unwrap(),
            extensions: vec![],
        }
        .sign(&signer)
        .unwrap();
        let v = signer.verifier();
        for i in 0..13u64 {
            let r = Receipt::new(
                i,
                &t.leaf(i).unwrap(),
                &t.inclusion_proof(i, 13).unwrap(),
                cp.clone(),
                Some(entries[i as usize].clone()),
            );
            assert_eq!(r.verify(&v).unwrap().size, 13);
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Receipt>(&json).unwrap(), r);
            assert!(r
                .tlog_proof()
                .starts_with(&format!("c2sp.org/tlog-proof@v1\nindex {i}\n")));

            let mut bad = r.clone();
            bad.entry = Some(entries[(i as usize + 1) % 13].clone());
            assert_eq!(bad.verify(&v), Err(ReceiptError::LeafMismatch));
            let mut bad = r.clone();
            bad.leaf_index = (i + 1) % 13;
            assert!(matches!(bad.verify(&v), Err(ReceiptError::Proof(_))));
            let mut bad = r.clone();
            bad.leaf_index = 13;
            assert!(matches!(
                bad.verify(&v),
                Err(ReceiptError::Proof(ProofError::OutOfRange(_)))
            ));
            let mut bad = r.clone();
            bad.inclusion_proof[0] = "zz".into();
            assert!(matches!(
                bad.verify(&v),
                Err(ReceiptError::MalformedHash(_))
            ));
        }
        let other = NoteSigner::generate("other.log").unwrap();
        let r = Receipt::new(
            0,
            &t.leaf(0).unwrap(),
            &t.inclusion_proof(0, 13).unwrap(),
            cp,
            None,
        );
        assert!(matches!(
            r.verify(&other.verifier()),
            Err(ReceiptError::Checkpoint(_))
        ));
    }
}
