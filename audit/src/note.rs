//! C2SP `signed-note` with Ed25519 keys (signature type 0x01), on `ring`.
//!
//! A note is UTF-8 text ending in a newline, a blank line, then one or more signature
//! lines `— <key name> <base64(key ID ‖ signature)>` (U+2014 EM DASH, space). The key ID
//! is the first four bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)`. A verifier key
//! is written `<name>+<key ID, 8 hex>+<base64(0x01 ‖ public key)>`; a signer key
//! `PRIVATE+KEY+<name>+<key ID>+<base64(0x01 ‖ seed)>` (the encodings of Go's
//! `golang.org/x/mod/sumdb/note`, which c2sp.org/signed-note standardises).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::rand::SecureRandom as _;
use ring::signature::{self, Ed25519KeyPair, KeyPair as _};

const ALG_ED25519: u8 = 0x01;
/// Longest note [`NoteVerifier::open`] accepts (bytes).
pub const MAX_NOTE_LEN: usize = 1 << 20;
const SIG_PREFIX: &str = "\u{2014} ";

/// Errors of key handling and note verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// A signer or verifier key string is malformed.
    #[error("malformed key: {0}")]
    MalformedKey(&'static str),
    /// The note text or a signature line is malformed.
    #[error("malformed note: {0}")]
    MalformedNote(&'static str),
    /// No signature line from the verifier's key (name and key ID).
    #[error("the note carries no signature by key {0}")]
    NoSignature(String),
    /// A signature line from the verifier's key does not verify.
    #[error("the signature by key {0} does not verify")]
    BadSignature(String),
    /// The system random number generator failed.
    #[error("random number generator unavailable")]
    Rng,
}

fn key_id(name: &str, public_key: &[u8]) -> u32 {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(name.as_bytes());
    ctx.update(b"\n");
    ctx.update(&[ALG_ED25519]);
    ctx.update(public_key);
    let d = ctx.finish();
    let b = d.as_ref();
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// An Ed25519 note signer (holds the private seed).
pub struct NoteSigner {
    name: String,
    id: u32,
    pair: Ed25519KeyPair,
    seed: [u8; 32],
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("id", &format_args!("{:08x}", self.id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A new random key named `name` (no whitespace, no `+`).
    ///
    /// # Errors
    /// Bad name, or the RNG failed.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        let mut seed = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| NoteError::Rng)?;
        Self::from_seed(name, seed)
    }

    /// The key with this 32-byte Ed25519 seed.
    ///
    /// # Errors
    /// Bad name or seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::MalformedKey(
                "key name must be non-empty, without spaces or '+'",
            ));
        }
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| NoteError::MalformedKey("invalid Ed25519 seed"))?;
        let id = key_id(name, pair.public_key().as_ref());
        Ok(Self {
            name: name.to_owned(),
            id,
            pair,
            seed,
        })
    }

    /// Parse `PRIVATE+KEY+<name>+<id>+<base64(0x01 ‖ seed)>`.
    ///
    /// # Errors
    /// [`NoteError::MalformedKey`] for any deviation, including a key ID that does not
    /// match the key.
    pub fn from_skey(skey: &str) -> Result<Self, NoteError> {
        let rest = skey
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::MalformedKey(
                "signer key must start with PRIVATE+KEY+",
            ))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::MalformedKey("expected PRIVATE+KEY+name+id+key"));
        };
        let raw = B64
            .decode(key)
            .map_err(|_| NoteError::MalformedKey("key is not base64"))?;
        if raw.len() != 33 || raw[0] != ALG_ED25519 {
            return Err(NoteError::MalformedKey("not an Ed25519 signer key"));
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&raw[1..]);
        let s = Self::from_seed(name, seed)?;
        if format!("{:08x}", s.id) != id {
            return Err(NoteError::MalformedKey("key ID does not match the key"));
        }
        Ok(s)
    }

    /// The signer key string (secret).
    pub fn to_skey(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(&self.seed);
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.id,
            B64.encode(raw)
        )
    }

    /// Key name (also the log origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        let mut pk = [0u8; 32];
        pk.copy_from_slice(self.pair.public_key().as_ref());
        NoteVerifier {
            name: self.name.clone(),
            id: self.id,
            public_key: pk,
        }
    }

    /// The signature line for `text` (without the trailing newline).
    pub fn signature_line(&self, text: &str) -> String {
        let sig = self.pair.sign(text.as_bytes());
        let mut blob = self.id.to_be_bytes().to_vec();
        blob.extend_from_slice(sig.as_ref());
        format!("{SIG_PREFIX}{} {}", self.name, B64.encode(blob))
    }

    /// Sign `text` (must end in `\n`): `text ‖ "\n" ‖ signature line ‖ "\n"`.
    ///
    /// # Errors
    /// [`NoteError::MalformedNote`] if `text` does not end in a newline or has a blank
    /// line at its end.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        Ok(format!("{text}\n{}\n", self.signature_line(text)))
    }
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') || text.ends_with("\n\n") || text == "\n" {
        return Err(NoteError::MalformedNote(
            "note text must be non-empty and end in exactly one newline",
        ));
    }
    Ok(())
}

/// An Ed25519 note verifier key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: u32,
    public_key: [u8; 32],
}

impl NoteVerifier {
    /// Parse `<name>+<id>+<base64(0x01 ‖ public key)>`.
    ///
    /// # Errors
    /// [`NoteError::MalformedKey`], including a key ID that does not match.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let vkey = vkey.trim();
        // The name may not contain '+', the base64 may: split at the first two.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::MalformedKey("expected name+id+key"));
        };
        if !valid_name(name) || id.len() != 8 {
            return Err(NoteError::MalformedKey("bad key name or key ID"));
        }
        let raw = B64
            .decode(key)
            .map_err(|_| NoteError::MalformedKey("key is not base64"))?;
        if raw.len() != 33 || raw[0] != ALG_ED25519 {
            return Err(NoteError::MalformedKey("not an Ed25519 verifier key"));
        }
        let mut public_key = [0u8; 32];
        public_key.copy_from_slice(&raw[1..]);
        let want = key_id(name, &public_key);
        if format!("{want:08x}") != id {
            return Err(NoteError::MalformedKey("key ID does not match the key"));
        }
        Ok(Self {
            name: name.to_owned(),
            id: want,
            public_key,
        })
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key string.
    pub fn to_vkey(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(&self.public_key);
        format!("{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }

    /// Check `note` and return its text. Signatures by other keys (e.g. witness
    /// cosignatures) are ignored; at least one by this key must verify and none by it
    /// may fail.
    ///
    /// # Errors
    /// [`NoteError::MalformedNote`], [`NoteError::NoSignature`] or
    /// [`NoteError::BadSignature`].
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        if note.len() > MAX_NOTE_LEN {
            return Err(NoteError::MalformedNote("note too long"));
        }
        let split = note.rfind("\n\n").ok_or(NoteError::MalformedNote(
            "no blank line before the signatures",
        ))?;
        let text = &note[..split + 1];
        let sigs = &note[split + 2..];
        check_text(text)?;
        if !sigs.ends_with('\n') || sigs.len() < 2 {
            return Err(NoteError::MalformedNote(
                "signature block must end in a newline",
            ));
        }
        let mut found = false;
        for line in sigs[..sigs.len() - 1].split('\n') {
            let rest = line
                .strip_prefix(SIG_PREFIX)
                .ok_or(NoteError::MalformedNote(
                    "signature line must start with '— '",
                ))?;
            let (name, b64) = rest.split_once(' ').ok_or(NoteError::MalformedNote(
                "signature line needs a name and a signature",
            ))?;
            let blob = B64
                .decode(b64)
                .map_err(|_| NoteError::MalformedNote("signature is not base64"))?;
            if blob.len() < 5 {
                return Err(NoteError::MalformedNote("signature too short"));
            }
            let id = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]);
            if name != self.name || id != self.id {
                continue;
            }
            signature::UnparsedPublicKey::new(&signature::ED25519, &self.public_key)
                .verify(text.as_bytes(), &blob[4..])
                .map_err(|_| NoteError::BadSignature(self.to_vkey()))?;
            found = true;
        }
        if !found {
            return Err(NoteError::NoSignature(self.to_vkey()));
        }
        Ok(text)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    // golang.org/x/mod/sumdb/note note_test.go / package doc example (values copied).
    const SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=";

    #[test]
    fn go_note_known_answer() {
        let signer = NoteSigner::from_skey(SKEY).unwrap();
        assert_eq!(signer.verifier().to_vkey(), VKEY);
        assert_eq!(signer.to_skey(), SKEY);
        let note = signer.sign(TEXT).unwrap();
        assert_eq!(note, format!("{TEXT}\n{SIG}\n"));
        let v = NoteVerifier::parse(VKEY).unwrap();
        assert_eq!(v.open(&note).unwrap(), TEXT);
    }

    #[test]
    fn tampered_notes_fail() {
        let v = NoteVerifier::parse(VKEY).unwrap();
        let note = format!("{TEXT}\n{SIG}\n");
        let edited = note.replace("cryptography", "cryptographY");
        assert!(matches!(v.open(&edited), Err(NoteError::BadSignature(_))));
        let other = NoteSigner::generate("PeterNeumann").unwrap();
        let forged = other.sign(TEXT).unwrap();
        assert!(matches!(v.open(&forged), Err(NoteError::NoSignature(_))));
        // A cosignature by another key is ignored.
        let cosigned = format!("{note}{}\n", other.signature_line(TEXT));
        assert_eq!(v.open(&cosigned).unwrap(), TEXT);
        for bad in [
            "",
            TEXT,
            "x\n\n",
            "x\n\nno dash\n",
            "x\n\n\u{2014} PeterNeumann !!\n",
        ] {
            assert!(v.open(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "",
            "PeterNeumann",
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        ] {
            assert!(NoteVerifier::parse(bad).is_err(), "{bad:?}");
        }
        assert!(NoteSigner::from_skey(VKEY).is_err());
    }
}
