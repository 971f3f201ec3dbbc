//! A `ring`-backed implementation of c2pa-rs's [`c2pa::Signer`].
//!
//! Signatures follow C2PA 2.2 §13.2 / RFC 9053: ES256/ES384 signatures are the fixed-length
//! `r || s` concatenation (not DER), Ed25519 is the 64-byte RFC 8032 signature.

use std::fmt;
use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair};

use crate::ProvenanceError;

/// Signature algorithms Hallmark signs with (C2PA 2.2 §13.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureAlgorithm {
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// Ed25519 (EdDSA).
    Ed25519,
}

enum KeyPair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A certificate chain (leaf first, DER) with its private key, able to sign C2PA claims.
pub struct SigningIdentity {
    key: KeyPair,
    alg: SignatureAlgorithm,
    chain_der: Vec<Vec<u8>>,
    rng: SystemRandom,
    tsa_url: Option<String>,
    tsa_timeout: std::time::Duration,
}

impl fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("alg", &self.alg)
            .field("chain_len", &self.chain_der.len())
            .finish_non_exhaustive()
    }
}

impl SigningIdentity {
    /// Loads a PEM certificate chain (leaf first, issuers after; the root may be omitted) and a
    /// PKCS#8 PEM private key. The algorithm is inferred from the key.
    ///
    /// # Errors
    /// [`ProvenanceError::Io`] when a file can't be read, [`ProvenanceError::Identity`] when the
    /// PEM holds no certificate, the key is not PKCS#8 P-256/P-384/Ed25519, or the key does not
    /// match the leaf certificate's public key.
    pub fn from_pem_files(chain: &Path, key: &Path) -> Result<Self, ProvenanceError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| ProvenanceError::Io {
                path: p.display().to_string(),
                source,
            })
        };
        Self::from_pem(&read(chain)?, &read(key)?)
    }

    /// Same as [`Self::from_pem_files`] over in-memory PEM bytes.
    ///
    /// # Errors
    /// See [`Self::from_pem_files`].
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, ProvenanceError> {
        let certs = pem::parse_many(chain_pem)
            .map_err(|e| ProvenanceError::Identity(format!("certificate PEM: {e}")))?;
        let chain_der: Vec<Vec<u8>> = certs
            .into_iter()
            .filter(|p| p.tag() == "CERTIFICATE")
            .map(|p| p.into_contents())
            .collect();
        if chain_der.is_empty() {
            return Err(ProvenanceError::Identity(
                "certificate chain PEM contains no CERTIFICATE block".into(),
            ));
        }
        let key = pem::parse(key_pem)
            .map_err(|e| ProvenanceError::Identity(format!("private key PEM: {e}")))?;
        if key.tag() != "PRIVATE KEY" {
            return Err(ProvenanceError::Identity(format!(
                "private key must be an unencrypted PKCS#8 'PRIVATE KEY' block, found '{}'",
                key.tag()
            )));
        }
        let der = key.contents();
        let rng = SystemRandom::new();
        let (key, alg) = if let Ok(k) =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
        {
            (KeyPair::Ecdsa(k), SignatureAlgorithm::Es256)
        } else if let Ok(k) =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, der, &rng)
        {
            (KeyPair::Ecdsa(k), SignatureAlgorithm::Es384)
        } else if let Ok(k) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            (KeyPair::Ed25519(k), SignatureAlgorithm::Ed25519)
        } else {
            return Err(ProvenanceError::Identity(
                "private key is not a PKCS#8 P-256, P-384 or Ed25519 key".into(),
            ));
        };
        let identity = Self {
            key,
            alg,
            chain_der,
            rng,
            tsa_url: None,
            tsa_timeout: std::time::Duration::from_secs(10),
        };
        identity.check_key_matches_leaf()?;
        Ok(identity)
    }

    /// Sets an RFC 3161 time-stamp authority URL used when signing (off by default), and how
    /// long one time-stamp request may take in all (connect + response).
    ///
    /// Only `http://` URLs are accepted: an RFC 3161 response is itself signed by the TSA and
    /// checked before it is embedded, so TLS adds no integrity, and this build carries no TLS
    /// stack (the same choice as most public TSAs, which serve plain HTTP).
    ///
    /// # Errors
    /// [`ProvenanceError::Identity`] for a URL that is not `http://host[:port][/path]`.
    pub fn with_time_authority(
        mut self,
        url: Option<String>,
        timeout: std::time::Duration,
    ) -> Result<Self, ProvenanceError> {
        if let Some(u) = &url {
            let shown = redact_url(u);
            let scheme_ok = u.len() > 7 && u[..7].eq_ignore_ascii_case("http://");
            if !scheme_ok {
                return Err(ProvenanceError::Identity(format!(
                    "time-stamp authority URL '{shown}' must start with http:// (RFC 3161 over HTTP, RFC 3161 §3.4)"
                )));
            }
            let rest = &u[7..];
            if rest.is_empty() || rest.starts_with('/') {
                return Err(ProvenanceError::Identity(format!(
                    "time-stamp authority URL '{shown}' has no host"
                )));
            }
            if rest.contains(char::is_whitespace) {
                return Err(ProvenanceError::Identity(format!(
                    "time-stamp authority URL '{shown}' contains whitespace (percent-encode it)"
                )));
            }
        }
        self.tsa_url = url;
        self.tsa_timeout = timeout;
        Ok(self)
    }

    /// The configured RFC 3161 time-stamp authority, if any.
    pub fn time_authority(&self) -> Option<&str> {
        self.tsa_url.as_deref()
    }

    /// Sends an RFC 3161 `TimeStampReq` for `message` (the COSE `ToBeSigned` bytes c2pa-rs
    /// passes in) to the TSA over HTTP POST (RFC 3161 §3.4, `application/timestamp-query`),
    /// checks the response (status 200, `application/timestamp-reply`, a granted token whose
    /// message imprint matches), and returns the DER `TimeStampResp`.
    fn request_time_stamp(&self, url: &str, message: &[u8]) -> Result<Vec<u8>, String> {
        use c2pa::crypto::time_stamp::{default_rfc3161_message, verify_time_stamp};
        let body = default_rfc3161_message(message).map_err(|e| e.to_string())?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.tsa_timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        // Messages name the TSA without credentials or query (they reach API clients).
        let shown = redact_url(url);
        let url_for_request = url;
        let url = shown.as_str();
        let mut response = agent
            .post(url_for_request)
            .header("Content-Type", "application/timestamp-query")
            .send(&body[..])
            .map_err(|e| format!("time-stamp authority {url} is unreachable: {e}"))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if status != 200 || !content_type.starts_with("application/timestamp-reply") {
            return Err(format!(
                "time-stamp authority {url} answered HTTP {status} ({content_type}), not a time-stamp reply"
            ));
        }
        let bytes = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| format!("time-stamp authority {url}: reading the reply failed: {e}"))?;
        let mut log = c2pa::status_tracker::StatusTracker::default();
        verify_time_stamp(
            &bytes,
            message,
            &c2pa::crypto::cose::CertificateTrustPolicy::passthrough(),
            &mut log,
            false,
        )
        .map_err(|e| format!("time-stamp authority {url} returned an unusable token: {e}"))?;
        Ok(bytes)
    }

    /// The signature algorithm of this identity.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.alg
    }

    /// The certificate chain, leaf first, DER-encoded.
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    fn public_key(&self) -> &[u8] {
        use ring::signature::KeyPair as _;
        match &self.key {
            KeyPair::Ecdsa(k) => k.public_key().as_ref(),
            KeyPair::Ed25519(k) => k.public_key().as_ref(),
        }
    }

    /// The leaf certificate's SubjectPublicKeyInfo must contain this key's public point.
    fn check_key_matches_leaf(&self) -> Result<(), ProvenanceError> {
        let leaf = self.chain_der.first().map(Vec::as_slice).unwrap_or(&[]);
        let pk = self.public_key();
        if pk.is_empty() || !leaf.windows(pk.len()).any(|w| w == pk) {
            return Err(ProvenanceError::Identity(
                "private key does not match the leaf (first) certificate of the chain".into(),
            ));
        }
        Ok(())
    }

    fn sign_raw(&self, data: &[u8]) -> Result<Vec<u8>, ring::error::Unspecified> {
        match &self.key {
            KeyPair::Ecdsa(k) => Ok(k.sign(&self.rng, data)?.as_ref().to_vec()),
            KeyPair::Ed25519(k) => Ok(k.sign(data).as_ref().to_vec()),
        }
    }
}

/// `scheme://host[:port]/path` of `url`: user info, query and fragment removed, so that a TSA
/// URL carrying credentials never reaches an error message or log.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

impl c2pa::Signer for SigningIdentity {
    fn sign(&self, data: &[u8]) -> c2pa::Result<Vec<u8>> {
        self.sign_raw(data)
            .map_err(|_| c2pa::Error::OtherError("ring signing failed".into()))
    }

    fn alg(&self) -> c2pa::SigningAlg {
        match self.alg {
            SignatureAlgorithm::Es256 => c2pa::SigningAlg::Es256,
            SignatureAlgorithm::Es384 => c2pa::SigningAlg::Es384,
            SignatureAlgorithm::Ed25519 => c2pa::SigningAlg::Ed25519,
        }
    }

    fn certs(&self) -> c2pa::Result<Vec<Vec<u8>>> {
        Ok(self.chain_der.clone())
    }

    fn reserve_size(&self) -> usize {
        // Certificates + signature + COSE headers, plus room for an RFC 3161 token when used.
        let certs: usize = self.chain_der.iter().map(Vec::len).sum();
        certs + 1024 + if self.tsa_url.is_some() { 12_288 } else { 0 }
    }

    fn time_authority_url(&self) -> Option<String> {
        self.tsa_url.clone()
    }

    fn send_timestamp_request(&self, message: &[u8]) -> Option<c2pa::Result<Vec<u8>>> {
        let url = self.tsa_url.as_deref()?;
        Some(
            self.request_time_stamp(url, message)
                .map_err(|e| c2pa::Error::OtherError(e.into())),
        )
    }
}
