//! C2PA content credentials for Hallmark: build, sign and validate manifests.
//!
//! This is the only crate that sees the `c2pa` crate. All JUMBF/COSE work is done by c2pa-rs;
//! the cryptography of Hallmark's own signatures is done by `ring` behind c2pa's
//! [`c2pa::Signer`] trait ([`SigningIdentity`]).
//!
//! References: C2PA Technical Specification 2.2 (§10 manifests, §13 digital signatures,
//! §14.5 validation states, §15 status codes); IPTC digital source type vocabulary.

mod devca;
mod error;
mod sign;
mod signer;
pub mod soft_binding;
mod verify;

pub use devca::{generate_dev_identity, generate_dev_identity_with, DevIdentityPaths};
pub use error::ProvenanceError;
pub use sign::{
    sign_media, GenerationRecord, ManifestRequest, SignedMedia, SoftBinding, CLAIM_GENERATOR,
    GENERATION_ASSERTION, TRAINING_MINING_PERMISSIONS, TRAINING_MINING_USES,
};
pub use signer::{SignatureAlgorithm, SigningIdentity};
pub use verify::{
    check_blocked_list, verify_manifest_store, verify_media, C2paReport, IngredientSummary,
    ReadError, SignerInfo, StatusCode, TrustConfig, ValidationState, BLOCKED_SIGNER_CODE,
    MAX_INGREDIENT_DEPTH,
};

/// IRI prefix of the IPTC digital source type vocabulary.
pub const DIGITAL_SOURCE_TYPE_PREFIX: &str = "http://cv.iptc.org/newscodes/digitalsourcetype/";

/// Expands a digital source type term (`trainedAlgorithmicMedia`) to its IPTC IRI; IRIs are
/// returned unchanged. Returns `None` for an empty or malformed term.
pub fn digital_source_type_iri(term: &str) -> Option<String> {
    let term = term.trim();
    if term.starts_with("http://") || term.starts_with("https://") {
        return Some(term.to_owned());
    }
    if term.is_empty() || !term.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some(format!("{DIGITAL_SOURCE_TYPE_PREFIX}{term}"))
}

/// Maps a media MIME type to the format string c2pa-rs expects, or `None` if c2pa-rs cannot
/// embed a manifest in that format.
pub fn c2pa_supports(mime: &str) -> bool {
    c2pa::Reader::supported_mime_types()
        .iter()
        .any(|m| m.eq_ignore_ascii_case(mime))
}
