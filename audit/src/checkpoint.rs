//! C2SP `tlog-checkpoint`: the signed tree head of a log, carried in a signed note.
//!
//! ```text
//! <origin>\n
//! <tree size, decimal>\n
//! <root hash, standard base64>\n
//! [extension lines]\n
//! \n
//! — <key name> <signature>\n
//! ```

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::merkle::Hash;
use crate::note::{NoteError, NoteSigner, NoteVerifier};

/// Errors of parsing or opening a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The signed note does not verify (see [`NoteError`]).
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The note text is not a checkpoint body.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// The checkpoint names another log than the verifier key.
    #[error("checkpoint is for log {found:?}, not {expected:?}")]
    WrongOrigin {
        /// Key name of the verifier.
        expected: String,
        /// Origin line of the checkpoint.
        found: String,
    },
}

/// A checkpoint body (unsigned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Origin line: the log's unique name (Hallmark uses the key name).
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 9162 root hash of the first `size` leaves.
    pub root: Hash,
    /// Optional extension lines (opaque here).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text (ends in a newline).
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parse a note text.
    ///
    /// # Errors
    /// [`CheckpointError::Malformed`]: fewer than three lines, an empty origin, a size
    /// that is not canonical decimal, a root that is not 32 bytes of base64, empty
    /// extension lines.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Malformed("text must end in a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(CheckpointError::Malformed("empty origin line"));
        }
        let size_s = lines
            .next()
            .ok_or(CheckpointError::Malformed("missing tree size"))?;
        let canonical = !size_s.is_empty()
            && size_s.bytes().all(|b| b.is_ascii_digit())
            && (size_s == "0" || !size_s.starts_with('0'));
        if !canonical {
            return Err(CheckpointError::Malformed(
                "tree size is not canonical decimal",
            ));
        }
        let size: u64 = size_s
            .parse()
            .map_err(|_| CheckpointError::Malformed("tree size out of range"))?;
        let root_s = lines
            .next()
            .ok_or(CheckpointError::Malformed("missing root hash"))?;
        let root: Hash = B64
            .decode(root_s)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(CheckpointError::Malformed(
                "root hash is not 32 bytes of base64",
            ))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(CheckpointError::Malformed("empty extension line"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// Sign as a note with `signer`.
    ///
    /// # Errors
    /// Only if the origin contains a newline (the text would not be a checkpoint).
    pub fn sign(&self, signer: &NoteSigner) -> Result<String, CheckpointError> {
        if self.origin.contains('\n') || self.extensions.iter().any(|e| e.contains('\n')) {
            return Err(CheckpointError::Malformed(
                "lines must not contain newlines",
            ));
        }
        Ok(signer.sign(&self.to_text())?)
    }

    /// Verify a signed checkpoint with `verifier` and parse it. The origin must equal
    /// the verifier's key name.
    ///
    /// # Errors
    /// [`CheckpointError`].
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<Self, CheckpointError> {
        let text = verifier.open(note)?;
        let cp = Self::parse(text)?;
        if cp.origin != verifier.name() {
            return Err(CheckpointError::WrongOrigin {
                expected: verifier.name().to_owned(),
                found: cp.origin,
            });
        }
        Ok(cp)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let signer = NoteSigner::generate("hallmark.test/log").unwrap();
        let cp = Checkpoint {
            origin: "hallmark.test/log".into(),
            size: 8,
            root: [7u8; 32],
            extensions: vec![],
        };
        let note = cp.sign(&signer).unwrap();
        assert!(note.starts_with("hallmark.test/log\n8\nBwcH"));
        assert_eq!(Checkpoint::open(&note, &signer.verifier()).unwrap(), cp);
        let other = NoteSigner::generate("other.log").unwrap();
        let foreign = Checkpoint {
            origin: "other.log".into(),
            ..cp.clone()
        }
        .sign(&other)
        .unwrap();
        assert!(matches!(
            Checkpoint::open(&foreign, &signer.verifier()),
            Err(CheckpointError::Note(NoteError::NoSignature(_)))
        ));
        let wrong_origin = Checkpoint {
            origin: "other.log".into(),
            ..cp.clone()
        }
        .sign(&signer)
        .unwrap();
        assert!(matches!(
            Checkpoint::open(&wrong_origin, &signer.verifier()),
            Err(CheckpointError::WrongOrigin { .. })
        ));
        let bigger = note.replacen("\n8\n", "\n9\n", 1);
        assert!(Checkpoint::open(&bigger, &signer.verifier()).is_err());
        for bad in [
            "",
            "o\n",
            "o\n08\nAAAA\n",
            "o\n1\nAAAA\n",
            "\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
    }
}
