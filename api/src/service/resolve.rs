//! The C2PA Soft Binding Resolution API (C2PA 2.2 "C2PA Soft Binding API" §1.4): soft binding
//! values and uploaded content resolved to the manifests Hallmark signed. The pure parts
//! (algorithm names, value codec, parameter checks, result shapes) are
//! `hallmark_provenance::soft_binding`; this module looks them up in the store.
//!
//! A content query is the spec's "Combining Watermarking and Fingerprinting" flow (§1.2.2.3):
//! the watermark names an asset, and the asset is returned only when the upload's content
//! fingerprint matches the one stored at sign time (content binding, `binding.rs`). A mark
//! copied onto other content is read but resolves to nothing.

use hallmark_media::MediaKind;
use hallmark_provenance::soft_binding::{
    self as sb, BindingMedia, QueryError, SoftBindingMatch, SoftBindingQueryResult,
    WatermarkAlgorithm,
};
use hallmark_store::{AssetRecord, ManifestRecord};
use serde::Deserialize;

use super::verify::{read_mark, Decoded};
use super::{blocking, decode_upload, job_permit, payload_hex, sha256_hex};
use crate::error::ApiError;
use crate::report::ContentMatchStatus;
use crate::state::AppState;

/// Query of `GET /v1/matches/byBinding` (OpenAPI `queryByBinding`).
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ByBindingParams {
    /// Algorithm name (required).
    pub alg: String,
    /// Base64 value (required).
    pub value: String,
    /// At least 1, default 10.
    #[serde(rename = "maxResults")]
    pub max_results: Option<i64>,
}

/// Query of `POST /v1/matches/byBinding` (`queryByLargeBinding`; `alg` and `value` in the body).
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MaxResultsParam {
    /// At least 1, default 10.
    #[serde(rename = "maxResults")]
    pub max_results: Option<i64>,
}

/// Query of `POST /v1/matches/byContent` (`uploadFile`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ByContentParams {
    /// Restricts the query to this algorithm; the upload must be media it reads (415 otherwise).
    pub alg: Option<String>,
    /// At least 1, default 10.
    #[serde(rename = "maxResults")]
    pub max_results: Option<i64>,
    /// Algorithm of a soft binding the client already read (with `hintValue`).
    #[serde(rename = "hintAlg")]
    pub hint_alg: Option<String>,
    /// Its base64 value. The asset it names is returned only when the upload's content
    /// matches that asset's fingerprint.
    #[serde(rename = "hintValue")]
    pub hint_value: Option<String>,
}

/// Query of `GET /v1/manifests/{manifestId}` (`getManifestById`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ManifestParams {
    /// Accepted; Hallmark answers the manifest store either way (see [`manifest_store`]).
    #[serde(rename = "returnActiveManifest", default)]
    pub return_active_manifest: bool,
}

fn query_error(e: QueryError) -> ApiError {
    ApiError::InvalidRequest(e.to_string())
}

fn media_kind(media: BindingMedia) -> MediaKind {
    match media {
        BindingMedia::Image => MediaKind::Image,
        BindingMedia::Audio => MediaKind::Audio,
    }
}

/// The asset a watermark payload names, if any.
async fn asset_by_payload(
    state: &AppState,
    alg: WatermarkAlgorithm,
    payload: u64,
) -> Result<Option<AssetRecord>, ApiError> {
    let hex = payload_hex(media_kind(alg.media), payload);
    Ok(state.store.find_asset_by_payload(&hex).await?)
}

fn entry(asset: &AssetRecord, score: Option<u8>) -> Option<SoftBindingMatch> {
    asset.manifest_label.as_ref().map(|label| SoftBindingMatch {
        manifest_id: label.clone(),
        endpoint: None,
        similarity_score: score,
    })
}

/// Resolves a soft binding value (`alg`, base64 `value`) to the manifest of the asset that
/// carries it. No content is given, so no content check is possible here: a client holding
/// the content uses [`by_content`], or compares the manifest's hard binding.
///
/// # Errors
/// `InvalidRequest` (400) for an unsupported `alg`, a value that is not base64 of the
/// algorithm's payload width, or `maxResults` < 1; `BindingNotFound` (404
/// `binding_not_found`) for a well-formed value that names no asset with a stored manifest
/// (docs/DECISIONS.md "No match"); store failures.
pub async fn by_binding(
    state: &AppState,
    alg: &str,
    value: &str,
    max_results: Option<i64>,
) -> Result<SoftBindingQueryResult, ApiError> {
    let alg = sb::watermark_algorithm(alg).map_err(query_error)?;
    let payload = sb::decode_value(alg, value).map_err(query_error)?;
    let max = sb::max_results(max_results).map_err(query_error)?;
    let asset = asset_by_payload(state, alg, payload).await?;
    let matches: Vec<SoftBindingMatch> = asset
        .as_ref()
        .and_then(|a| entry(a, None))
        .into_iter()
        .take(max)
        .collect();
    if matches.is_empty() {
        return Err(ApiError::BindingNotFound(format!(
            "no manifest of this service carries the {} binding {value}",
            alg.alg
        )));
    }
    Ok(SoftBindingQueryResult { matches })
}

/// A checked hint: its algorithm and payload.
fn parse_hint(p: &ByContentParams) -> Result<Option<(WatermarkAlgorithm, u64)>, ApiError> {
    match (p.hint_alg.as_deref(), p.hint_value.as_deref()) {
        (None, None) => Ok(None),
        (Some(alg), Some(value)) => {
            let alg = sb::watermark_algorithm(alg).map_err(query_error)?;
            Ok(Some((
                alg,
                sb::decode_value(alg, value).map_err(query_error)?,
            )))
        }
        _ => Err(ApiError::InvalidRequest(
            "hintAlg and hintValue must be given together".into(),
        )),
    }
}

/// Resolves uploaded content: Hallmark's watermark is read from it and names an asset, whose
/// manifest is returned only when the content matches the asset's fingerprint
/// (`similarityScore` = 100 × (1 − distance)); an asset signed before content binding (no
/// stored fingerprint) is returned without a score. A hint (`hintAlg`, `hintValue`) names a
/// further candidate, returned only on a fingerprint match. With no mark in the content, a
/// byte-identical copy of a signed output resolves by its SHA-256 (score 100).
///
/// # Errors
/// `InvalidRequest` (400) for an empty upload or a malformed parameter; `UnsupportedMedia`
/// (415) for content no supported algorithm reads (or not the one `alg` names);
/// `CorruptMedia`/`MediaLimit` for undecodable or oversized media; `Overloaded`.
pub async fn by_content(
    state: &AppState,
    bytes: Vec<u8>,
    params: &ByContentParams,
) -> Result<SoftBindingQueryResult, ApiError> {
    let max = sb::max_results(params.max_results).map_err(query_error)?;
    let wanted = params
        .alg
        .as_deref()
        .map(sb::watermark_algorithm)
        .transpose()
        .map_err(query_error)?;
    let hint = parse_hint(params)?;
    if bytes.is_empty() {
        return Err(ApiError::InvalidRequest("empty upload".into()));
    }
    let format = hallmark_media::sniff(&bytes)
        .filter(|f| f.decodable() && matches!(f.kind(), MediaKind::Image | MediaKind::Audio))
        .ok_or_else(|| {
            ApiError::UnsupportedMedia(
                "no soft binding algorithm of this service reads this content (images: JPEG, PNG, WebP, GIF, TIFF; audio: WAV, MP3, FLAC, OGG, M4A)".into(),
            )
        })?;
    let alg = sb::algorithm_for(super::sign::binding_media(format.kind()));
    if let Some(w) = wanted.filter(|w| *w != alg) {
        return Err(ApiError::UnsupportedMedia(format!(
            "{} does not read {} content",
            w.alg,
            format.mime()
        )));
    }
    let sha256 = sha256_hex(&bytes);
    let _permit = job_permit(state).await?;
    let decoded = Decoded::from(decode_upload(state, &bytes, format).await?);
    let key = state.watermark_key.clone();
    let want_plain = hint.is_some();
    let (det, candidate, plain) = blocking(move || {
        let (det, fp) = read_mark(&decoded, &key);
        // A hint without a detected mark is compared at the signed geometry.
        let plain = (want_plain && fp.is_none())
            .then(|| super::binding::candidate_unsynchronised(&decoded))
            .flatten();
        Ok((det, fp, plain))
    })
    .await?;

    let mut matches: Vec<SoftBindingMatch> = Vec::new();
    let detected = det.payload.filter(|_| det.detected);
    if let Some(payload) = detected {
        if let Some(asset) = asset_by_payload(state, alg, payload).await? {
            let m =
                super::binding::check(asset.content_fingerprint.as_deref(), candidate.as_deref());
            match m.status {
                ContentMatchStatus::Match => {
                    matches.extend(entry(&asset, m.distance.map(sb::similarity_score)));
                }
                ContentMatchStatus::Unknown => matches.extend(entry(&asset, None)),
                ContentMatchStatus::Mismatch => tracing::info!(
                    asset_id = %asset.id,
                    distance = ?m.distance,
                    "soft binding query: the watermark names an asset whose content does not match; not returned"
                ),
            }
        }
    }
    if let Some((hint_alg, payload)) = hint.filter(|(a, p)| *a == alg && Some(*p) != detected) {
        if let Some(asset) = asset_by_payload(state, hint_alg, payload).await? {
            let m = super::binding::check(
                asset.content_fingerprint.as_deref(),
                candidate.as_deref().or(plain.as_deref()),
            );
            if m.status == ContentMatchStatus::Match {
                matches.extend(entry(&asset, m.distance.map(sb::similarity_score)));
            }
        }
    }
    if detected.is_none() && matches.is_empty() {
        if let Some(asset) = state.store.find_asset_by_output_sha256(&sha256).await? {
            matches.extend(entry(&asset, Some(100)));
        }
    }
    // Strongest first; a match without a score (not content-checked) last.
    matches.sort_by_key(|m| std::cmp::Reverse(m.similarity_score.map_or(-1, i16::from)));
    matches.truncate(max);
    Ok(SoftBindingQueryResult { matches })
}

/// The manifest store stored under `id` (a manifest label). Hallmark stores the whole store it
/// embedded at sign time: the active manifest, plus the manifests of a C2PA-signed input kept
/// as its `parentOf` ingredient. `returnActiveManifest=true` answers the same store (c2pa-rs
/// offers no way to cut one manifest out of a store; the active one is the manifest `id`).
///
/// # Errors
/// `InvalidRequest` (400) for an id that is not a C2PA manifest identifier, `NotFound` (404)
/// for an unknown one; store failures.
pub async fn manifest_store(state: &AppState, id: &str) -> Result<ManifestRecord, ApiError> {
    sb::check_manifest_id(id).map_err(query_error)?;
    state
        .store
        .get_manifest(id)
        .await?
        .ok_or(ApiError::NotFound("manifest"))
}
