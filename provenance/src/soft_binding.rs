//! Soft bindings and the C2PA Soft Binding Resolution API (C2PA 2.2, "C2PA Soft Binding API"
//! §1.4, OpenAPI document version 1.0.0): Hallmark's algorithm names, the encoding of their
//! values, the shapes of the API's queries and results, and the checks of its parameters.
//! Pure: no I/O; the service resolves queries against its store.
//!
//! **Algorithms.** Hallmark's watermarks are soft bindings of type `watermark`, named as the
//! soft binding algorithm list (github.com/c2pa-org/softbinding-algorithm-list) names them:
//! an entity-specific namespace beginning with a reversed domain name, then the algorithm and
//! its version ([`IMAGE_WATERMARK_ALG`], [`AUDIO_WATERMARK_ALG`]). They are not (yet) entries of
//! that list; the names are the ones Hallmark's manifests have carried since their first
//! version, so older manifests resolve too.
//!
//! **Values.** The API carries a soft binding value as "a base64-encoded string describing, in
//! algorithm specific format, the value of the soft binding". For Hallmark's watermarks the
//! algorithm-specific format is the payload as big-endian bytes (8 for images, 4 for audio);
//! the manifest's `c2pa.soft-binding` block holds the same base64 text ([`encode_value`]), so a
//! C2PA client can pass a manifest's `alg` and `value` to `/matches/byBinding` unchanged.
//!
//! Hallmark's content fingerprint (see `hallmark_watermark::fingerprint`) is not offered as a
//! soft binding: it is the cross-check of a watermark match (§1.2.2.3 "Combining
//! Watermarking and Fingerprinting"), stored with the asset, not an index to search by.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// `alg` of Hallmark's image watermark (64-bit payload).
pub const IMAGE_WATERMARK_ALG: &str = "io.hallmark.watermark.image.v1";
/// `alg` of Hallmark's audio watermark. `v2`: 32-bit payload (v1 carried 64 bits; its marks
/// are not read by this version).
pub const AUDIO_WATERMARK_ALG: &str = "io.hallmark.watermark.audio.v2";

/// Default of the API's `maxResults` (OpenAPI: `default: 10`).
pub const DEFAULT_MAX_RESULTS: usize = 10;
/// Largest `maxResults` honoured; larger values are clamped to it.
pub const MAX_RESULTS_CAP: usize = 100;
/// Longest manifest identifier accepted by `/manifests/{manifestId}`, characters.
pub const MAX_MANIFEST_ID_CHARS: usize = 512;

/// The media a watermark algorithm marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingMedia {
    /// Still images.
    Image,
    /// Audio.
    Audio,
}

/// One of Hallmark's watermark soft binding algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatermarkAlgorithm {
    /// The `alg` name.
    pub alg: &'static str,
    /// What it marks.
    pub media: BindingMedia,
    /// Payload width, bytes (the decoded length of a value).
    pub payload_bytes: usize,
}

/// Every watermark algorithm Hallmark signs with and resolves.
pub const WATERMARK_ALGORITHMS: [WatermarkAlgorithm; 2] = [
    WatermarkAlgorithm {
        alg: IMAGE_WATERMARK_ALG,
        media: BindingMedia::Image,
        payload_bytes: 8,
    },
    WatermarkAlgorithm {
        alg: AUDIO_WATERMARK_ALG,
        media: BindingMedia::Audio,
        payload_bytes: 4,
    },
];

/// Why a soft binding query is malformed (the API answers 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// `alg` names no algorithm this service supports.
    #[error("soft binding algorithm '{0}' is not supported (GET /v1/services/supportedAlgorithms lists them)")]
    UnsupportedAlgorithm(String),
    /// `value` is not base64, or does not decode to the algorithm's payload width.
    #[error("{0}")]
    InvalidValue(String),
    /// Another parameter is out of range or missing.
    #[error("{0}")]
    InvalidParameter(String),
}

/// The watermark algorithm named `alg` (exact, case-sensitive match).
///
/// # Errors
/// [`QueryError::UnsupportedAlgorithm`] for any other name (shown truncated to 100 characters).
pub fn watermark_algorithm(alg: &str) -> Result<WatermarkAlgorithm, QueryError> {
    WATERMARK_ALGORITHMS
        .iter()
        .copied()
        .find(|a| a.alg == alg)
        .ok_or_else(|| QueryError::UnsupportedAlgorithm(shown(alg)))
}

/// The watermark algorithm for `media`.
pub fn algorithm_for(media: BindingMedia) -> WatermarkAlgorithm {
    match media {
        BindingMedia::Image => WATERMARK_ALGORITHMS[0],
        BindingMedia::Audio => WATERMARK_ALGORITHMS[1],
    }
}

/// A payload (the low `alg.payload_bytes` bytes of `payload`, big-endian) as the soft binding
/// value: standard base64 with padding (RFC 4648 §4). Images: 12 characters, audio: 8.
pub fn encode_value(alg: WatermarkAlgorithm, payload: u64) -> String {
    let bytes = payload.to_be_bytes();
    base64::engine::general_purpose::STANDARD.encode(&bytes[8 - alg.payload_bytes..])
}

/// The payload a soft binding value carries. Accepts standard or URL-safe base64, with or
/// without padding (a value taken from a URL query may have lost its `=`).
///
/// # Errors
/// [`QueryError::InvalidValue`] when `value` is empty, not base64, or not
/// `alg.payload_bytes` long once decoded.
pub fn decode_value(alg: WatermarkAlgorithm, value: &str) -> Result<u64, QueryError> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let trimmed = value.trim().trim_end_matches('=');
    if trimmed.is_empty() {
        return Err(QueryError::InvalidValue(
            "soft binding value must not be empty".into(),
        ));
    }
    let bytes = STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .map_err(|_| {
            QueryError::InvalidValue(format!(
                "soft binding value '{}' is not base64",
                shown(value)
            ))
        })?;
    if bytes.len() != alg.payload_bytes {
        return Err(QueryError::InvalidValue(format!(
            "a {} value is {} bytes (base64 of the big-endian payload), got {}",
            alg.alg,
            alg.payload_bytes,
            bytes.len()
        )));
    }
    Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// `maxResults`: at least 1, default [`DEFAULT_MAX_RESULTS`], clamped to [`MAX_RESULTS_CAP`].
///
/// # Errors
/// [`QueryError::InvalidParameter`] below 1.
pub fn max_results(requested: Option<i64>) -> Result<usize, QueryError> {
    match requested {
        None => Ok(DEFAULT_MAX_RESULTS),
        Some(n) if n < 1 => Err(QueryError::InvalidParameter(format!(
            "maxResults must be at least 1, got {n}"
        ))),
        Some(n) => Ok(usize::try_from(n).map_or(MAX_RESULTS_CAP, |n| n.min(MAX_RESULTS_CAP))),
    }
}

/// Checks a manifest identifier of `/manifests/{manifestId}`: a C2PA unique identifier
/// (C2PA 2.2 "Unique Identifiers", `urn:c2pa:` followed by a UUID and optional parts; `urn:uuid:` for
/// manifests of C2PA 1.x), at most [`MAX_MANIFEST_ID_CHARS`] characters without controls.
///
/// # Errors
/// [`QueryError::InvalidParameter`] naming the problem.
pub fn check_manifest_id(id: &str) -> Result<(), QueryError> {
    let lower = id.get(..9).map(str::to_ascii_lowercase).unwrap_or_default();
    if id.chars().count() > MAX_MANIFEST_ID_CHARS || id.chars().any(char::is_control) {
        return Err(QueryError::InvalidParameter(
            "manifest id is too long or holds control characters".into(),
        ));
    }
    if lower != "urn:c2pa:" && lower != "urn:uuid:" {
        return Err(QueryError::InvalidParameter(format!(
            "manifest id '{}' is not a C2PA manifest identifier (urn:c2pa:…)",
            shown(id)
        )));
    }
    Ok(())
}

/// Similarity of a content match for the API's `similarityScore` (0–100, 100 strongest):
/// `100 × (1 − distance)` of the fingerprint comparison (`distance = 1 − NCC`), rounded.
pub fn similarity_score(distance: f64) -> u8 {
    if !distance.is_finite() {
        return 0;
    }
    ((1.0 - distance).clamp(0.0, 1.0) * 100.0).round() as u8
}

/// `c2pa.softBindingQuery`: the JSON body of `POST /matches/byBinding`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftBindingQuery {
    /// Algorithm name.
    pub alg: String,
    /// Base64 value.
    pub value: String,
}

/// `c2pa.softBindingQueryResult`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SoftBindingQueryResult {
    /// Matches, strongest first.
    pub matches: Vec<SoftBindingMatch>,
}

/// One entry of [`SoftBindingQueryResult::matches`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftBindingMatch {
    /// Identifier (label) of the matched manifest; fetch it from `/manifests/{manifestId}`.
    #[serde(rename = "manifestId")]
    pub manifest_id: String,
    /// Another resolution endpoint holding the manifest; always absent (Hallmark serves its own).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub endpoint: Option<String>,
    /// Strength of the match, 0–100, when a content comparison measured one.
    #[serde(
        rename = "similarityScore",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub similarity_score: Option<u8>,
}

/// One entry of [`SoftBindingAlgList`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlgEntry {
    /// Algorithm name.
    pub alg: String,
}

/// `c2pa.softBindingAlgList`: the answer of `/services/supportedAlgorithms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftBindingAlgList {
    /// Watermark algorithms.
    pub watermarks: Vec<AlgEntry>,
    /// Fingerprint algorithms (none: see the module docs).
    pub fingerprints: Vec<AlgEntry>,
}

/// The algorithms this service resolves.
pub fn supported_algorithms() -> SoftBindingAlgList {
    SoftBindingAlgList {
        watermarks: WATERMARK_ALGORITHMS
            .iter()
            .map(|a| AlgEntry { alg: a.alg.into() })
            .collect(),
        fingerprints: Vec::new(),
    }
}

fn shown(s: &str) -> String {
    s.chars().take(100).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_malformed_ones_are_refused() {
        let img = watermark_algorithm(IMAGE_WATERMARK_ALG).unwrap();
        let aud = watermark_algorithm(AUDIO_WATERMARK_ALG).unwrap();
        let v = encode_value(img, 0x0123_4567_89ab_cdef);
        assert_eq!(v, "ASNFZ4mrze8=");
        assert_eq!(decode_value(img, &v).unwrap(), 0x0123_4567_89ab_cdef);
        // Lost padding and the URL-safe alphabet are accepted.
        assert_eq!(
            decode_value(img, "ASNFZ4mrze8").unwrap(),
            0x0123_4567_89ab_cdef
        );
        let a = encode_value(aud, 0xdead_beef);
        assert_eq!(a, "3q2+7w==");
        assert_eq!(decode_value(aud, "3q2-7w").unwrap(), 0xdead_beef);
        // Wrong width (an image value for the audio algorithm), not base64, empty.
        assert!(matches!(
            decode_value(aud, &v),
            Err(QueryError::InvalidValue(_))
        ));
        assert!(matches!(
            decode_value(img, "not base64!"),
            Err(QueryError::InvalidValue(_))
        ));
        assert!(matches!(
            decode_value(img, ""),
            Err(QueryError::InvalidValue(_))
        ));
        assert!(matches!(
            watermark_algorithm("com.adobe.trustmark.P"),
            Err(QueryError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn parameters() {
        assert_eq!(max_results(None).unwrap(), 10);
        assert_eq!(max_results(Some(3)).unwrap(), 3);
        assert_eq!(max_results(Some(1_000_000)).unwrap(), MAX_RESULTS_CAP);
        assert!(max_results(Some(0)).is_err());
        assert!(check_manifest_id("urn:c2pa:0b4ff1ab-7f0c-4bb0-a7b1-e3c2f0a6d8f5").is_ok());
        assert!(check_manifest_id("URN:UUID:0b4ff1ab").is_ok());
        assert!(check_manifest_id("not-an-id").is_err());
        assert!(check_manifest_id("urn:c2pa:\u{7}").is_err());
        assert_eq!(similarity_score(0.0), 100);
        assert_eq!(similarity_score(0.234), 77);
        assert_eq!(similarity_score(f64::NAN), 0);
        let list = serde_json::to_value(supported_algorithms()).unwrap();
        assert_eq!(list["watermarks"][0]["alg"], IMAGE_WATERMARK_ALG);
        assert_eq!(list["fingerprints"], serde_json::json!([]));
        let m = serde_json::to_value(SoftBindingMatch {
            manifest_id: "urn:c2pa:x".into(),
            endpoint: None,
            similarity_score: Some(90),
        })
        .unwrap();
        assert_eq!(
            m,
            serde_json::json!({"manifestId": "urn:c2pa:x", "similarityScore": 90})
        );
    }
}
