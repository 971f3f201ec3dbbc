//! Verify: C2PA validation and decoding (in worker processes), watermark detection and the detector pool, combined
//! into a stored report.

use std::sync::Arc;
use std::time::Duration;

use hallmark_detectors::{Detection, DetectorScore};
use hallmark_media::{MediaFormat, MediaKind};
use hallmark_provenance::{C2paReport, ValidationState};
use hallmark_store::VerificationRecord;
use serde::{Deserialize, Serialize};

use super::{blocking, decode_upload, detector_error, job_error, job_permit, sha256_hex};
use crate::error::ApiError;
use crate::report::{
    verdict, ContentMatchStatus, RecoveredAsset, VerificationReport, WatermarkReport,
};
use crate::state::AppState;
use crate::worker::{DecodedMedia, JobError, JobLimits};

/// The content-derived part of a report: a pure function of the bytes and the instance's
/// analysis configuration, so it is cached by SHA-256.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Analysis {
    /// Sniffed MIME type.
    pub media_type: String,
    /// C2PA validation.
    pub c2pa: C2paReport,
    /// Watermark detection (without the asset lookup).
    pub watermark: WatermarkReport,
    /// Detector results per model (the same as `detection.models`).
    pub detectors: Vec<DetectorScore>,
    /// Detection summary: combined calibrated probability and band.
    pub detection: Detection,
    /// Content fingerprint of the media when the watermark was detected (content binding,
    /// compared in [`verify`]). Required when read back from the cache, so that entries
    /// cached before content binding are recomputed.
    #[serde(deserialize_with = "Option::deserialize")]
    pub content_fingerprint: Option<String>,
}

pub(super) enum Decoded {
    Image(Arc<image::DynamicImage>),
    Audio(Arc<hallmark_media::AudioClip>),
}

impl From<DecodedMedia> for Decoded {
    fn from(d: DecodedMedia) -> Self {
        match d {
            DecodedMedia::Image(i, _) => Decoded::Image(Arc::new(i)),
            DecodedMedia::Audio(a) => Decoded::Audio(Arc::new(a)),
        }
    }
}

/// Watermark detection on decoded media, with the candidate's content fingerprint computed
/// where the mark is detected (content binding; `None` when no mark was found).
pub(super) fn read_mark(
    decoded: &Decoded,
    key: &hallmark_watermark::WatermarkKey,
) -> (hallmark_watermark::Detection, Option<String>) {
    match decoded {
        Decoded::Image(i) => {
            let det = hallmark_watermark::image::detect(i, key);
            let fp = super::binding::candidate_image(i, &det);
            (det, fp)
        }
        Decoded::Audio(a) => {
            let det = hallmark_watermark::audio::detect(&a.channels, a.sample_rate, key);
            let fp = super::binding::candidate_audio(a, &det);
            (det, fp)
        }
    }
}

/// C2PA validation of `bytes` (its embedded manifest, or `manifest_store` when given), bounded
/// in time and memory: in a worker process (`c2pa.sandbox`, the default), or on a blocking
/// thread of this process with only a time bound.
pub(super) async fn c2pa_report(
    state: &AppState,
    bytes: &Arc<Vec<u8>>,
    manifest_store: Option<Vec<u8>>,
    format: MediaFormat,
) -> Result<C2paReport, ApiError> {
    let c = &state.settings.c2pa;
    let timeout = Duration::from_secs(c.timeout_seconds.max(1));
    if c.sandbox {
        let limits = JobLimits {
            memory_bytes: c.memory_limit_mb.saturating_mul(1024 * 1024),
            cpu_seconds: timeout.as_secs() + 1,
        };
        match state
            .workers
            .c2pa(bytes, manifest_store.as_deref(), format, limits, timeout)
            .await
        {
            Ok(Ok(r)) => Ok(r),
            // Only a trust configuration c2pa rejects: a server fault, and no report is better
            // than a wrong one.
            Ok(Err(e)) => Err(ApiError::internal(anyhow::anyhow!(
                "C2PA validator refused to run: {e}"
            ))),
            Err(JobError::WorkerFailed(m)) => Ok(C2paReport::from_read_error(
                "resource_limit",
                format!("manifest validation stopped: {m}"),
            )),
            Err(e) => Err(job_error(e)),
        }
    } else {
        let (b, trust) = (bytes.clone(), state.trust.clone());
        let mime = format.mime();
        let job = tokio::task::spawn_blocking(move || match manifest_store {
            Some(m) => hallmark_provenance::verify_manifest_store(&m, &b, mime, &trust),
            None => hallmark_provenance::verify_media(&b, mime, &trust),
        });
        Ok(match tokio::time::timeout(timeout, job).await {
            Ok(Ok(Ok(r))) => r,
            Ok(Ok(Err(e))) => C2paReport::from_read_error("read_failed", e.to_string()),
            Ok(Err(_)) => C2paReport::from_read_error("read_failed", "validator crashed"),
            Err(_) => C2paReport::from_read_error("resource_limit", "validation timed out"),
        })
    }
}

fn not_checked(reason: &str) -> WatermarkReport {
    WatermarkReport {
        detected: false,
        payload: None,
        p_value: 1.0,
        bit_agreement: None,
        asset_id: None,
        not_checked: Some(reason.into()),
        ranges: Vec::new(),
        content_match: None,
    }
}

fn watermark_report(d: hallmark_watermark::Detection, kind: MediaKind) -> WatermarkReport {
    WatermarkReport {
        detected: d.detected,
        payload: d
            .payload
            .filter(|_| d.detected)
            .map(|p| super::sign::payload_hex(kind, p)),
        p_value: d.p_value,
        bit_agreement: d.bit_agreement,
        asset_id: None,
        not_checked: d.too_small.then(|| "too_small".to_string()),
        ranges: d
            .ranges
            .iter()
            .map(|r| crate::report::TimeRange {
                start_s: r.start_s,
                end_s: r.end_s,
            })
            .collect(),
        content_match: None,
    }
}

/// Analyses `bytes` (cached by SHA-256 and the analysis configuration).
///
/// # Errors
/// `UnsupportedMedia` for unrecognised bytes; `CorruptMedia`/`MediaLimit` when the media can't
/// be decoded and C2PA found nothing either; `Overloaded` when the detector queue is full.
pub async fn analyse(
    state: &AppState,
    bytes: Arc<Vec<u8>>,
    sha256: &str,
) -> Result<Analysis, ApiError> {
    let format = hallmark_media::sniff(&bytes).ok_or_else(|| {
        ApiError::UnsupportedMedia(
            "unrecognised media format (images: JPEG, PNG, WebP, GIF, TIFF, HEIF, AVIF; audio: WAV, MP3, FLAC, OGG, M4A; also MP4, MOV, AVI, PDF, SVG, .c2pa)".into(),
        )
    })?;
    let cache_key = format!("analysis:{}:{sha256}", state.analysis_fingerprint);
    if let Some(hit) = state.cache.get(&cache_key).await {
        if let Ok(a) = serde_json::from_slice::<Analysis>(&hit) {
            return Ok(a);
        }
    }
    let _permit = job_permit(state).await?;

    // C2PA and decoding run as two jobs, in parallel, on two workers: a file that kills the
    // decoder's worker still gets its manifest validated, and the other way round.
    let decode = async {
        if !format.decodable() {
            return Ok(None);
        }
        Ok(Some(Decoded::from(
            decode_upload(state, &bytes, format).await?,
        )))
    };
    let (c2pa, decoded) = tokio::join!(
        crate::metrics::timed("c2pa_validation", c2pa_report(state, &bytes, None, format)),
        decode
    );
    let c2pa = c2pa?;

    let (watermark, detection, content_fingerprint) = match decoded {
        Ok(None) => (
            not_checked("unsupported_format"),
            Detection::no_signal("detectors do not analyse this format"),
            None,
        ),
        // A container we recognise holding a codec we can't decode (e.g. Opus): report what
        // C2PA says; the content itself is not analysed.
        Err(ApiError::UnsupportedMedia(_)) => (
            not_checked("unsupported_codec"),
            Detection::no_signal("the codec could not be decoded for detection"),
            None,
        ),
        // Transient: never part of a (cached) analysis.
        Err(e @ (ApiError::Overloaded | ApiError::Internal(_))) => return Err(e),
        Err(e) => {
            // Undecodable media is still a report when C2PA has something to say about it.
            // (a manifest, or a manifest that exists but can't be validated).
            let manifest_evidence = c2pa.present
                || c2pa.read_error.as_ref().is_some_and(|r| {
                    matches!(
                        r.code.as_str(),
                        "remote_manifest_unavailable"
                            | "unknown_signature_algorithm"
                            | "invalid_jumbf"
                            | "prerelease_manifest"
                    )
                });
            if manifest_evidence {
                (
                    not_checked("undecodable"),
                    Detection::no_signal("the content could not be decoded for detection"),
                    None,
                )
            } else {
                return Err(e);
            }
        }
        Ok(Some(decoded)) => {
            let key = state.watermark_key.clone();
            let wm = {
                let d = match &decoded {
                    Decoded::Image(i) => Decoded::Image(i.clone()),
                    Decoded::Audio(a) => Decoded::Audio(a.clone()),
                };
                crate::metrics::timed(
                    "watermark_detect",
                    blocking(move || Ok(read_mark(&d, &key))),
                )
            };
            let scores = async {
                match (&state.detectors, &decoded) {
                    (None, _) => Ok(Detection::no_signal(
                        "detectors are disabled on this instance",
                    )),
                    (Some(p), Decoded::Image(i)) => {
                        crate::metrics::timed("detectors_image", p.score_image(i.clone()))
                            .await
                            .map_err(detector_error)
                    }
                    (Some(p), Decoded::Audio(a)) => {
                        crate::metrics::timed("detectors_audio", p.score_audio(a.clone()))
                            .await
                            .map_err(detector_error)
                    }
                }
            };
            let (wm, scores) = tokio::join!(wm, scores);
            let (wm, fp) = wm?;
            (watermark_report(wm, format.kind()), scores?, fp)
        }
    };
    let analysis = Analysis {
        media_type: format.mime().into(),
        c2pa,
        watermark,
        detectors: detection.models.clone(),
        detection,
        content_fingerprint,
    };
    if let Ok(json) = serde_json::to_vec(&analysis) {
        let ttl = Duration::from_secs(state.settings.storage.cache_ttl_seconds);
        state.cache.set(&cache_key, &json, ttl).await;
    }
    Ok(analysis)
}

/// Verifies `bytes` for `actor`, stores the report and returns it.
///
/// # Errors
/// See [`analyse`]; database failures are internal errors.
pub async fn verify(
    state: &AppState,
    bytes: Vec<u8>,
    actor: &str,
) -> Result<VerificationReport, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::InvalidRequest("empty upload".into()));
    }
    let sha256 = sha256_hex(&bytes);
    let size_bytes = bytes.len() as u64;
    let bytes = Arc::new(bytes);
    let mut analysis = analyse(state, bytes.clone(), &sha256).await?;

    let mut recovered = None;
    // Durable credentials: the asset is found through the watermark payload, or — when no mark
    // is readable (a format or size the detector can't analyse) — through the file's exact
    // content hash.
    let mut found = None;
    if let Some(payload) = analysis.watermark.payload.clone() {
        found = state
            .store
            .find_asset_by_payload(&payload)
            .await?
            .map(|a| (a, "watermark"));
        // Content binding: the mark must belong to this content; a copied mark names no asset.
        if let Some((asset, _)) = &found {
            let m = super::binding::check(
                asset.content_fingerprint.as_deref(),
                analysis.content_fingerprint.as_deref(),
            );
            if m.status == ContentMatchStatus::Mismatch {
                found = None;
            }
            analysis.watermark.content_match = Some(m);
        }
    }
    if found.is_none() && !analysis.watermark.detected {
        found = state
            .store
            .find_asset_by_output_sha256(&sha256)
            .await?
            .map(|a| (a, "content_hash"));
    }
    if let Some((asset, matched_by)) = found {
        let label = asset.manifest_label.clone().unwrap_or_default();
        let manifest_in_file = asset.manifest_label.is_some()
            && analysis.c2pa.active_manifest.as_deref() == asset.manifest_label.as_deref();
        let bytes_unchanged = asset.output_sha256 == sha256;
        // The manifest is gone from the file: validate the stored one against what we got.
        let recovered_c2pa = match (&asset.manifest_label, manifest_in_file) {
            (Some(label), false) => match state.store.get_manifest(label).await? {
                Some(m) => {
                    let format = hallmark_media::sniff(&bytes).unwrap_or(MediaFormat::Jpeg);
                    Some(c2pa_report(state, &bytes, Some(m.store_bytes), format).await?)
                }
                None => None,
            },
            _ => None,
        };
        let binding_matches = recovered_c2pa.as_ref().is_some_and(|r| {
            matches!(
                r.validation_state,
                Some(ValidationState::Valid | ValidationState::Trusted)
            )
        });
        let note = if manifest_in_file {
            "the file carries the manifest Hallmark signed for this asset".to_string()
        } else if binding_matches {
            format!(
                "the C2PA manifest was stripped or replaced; the watermark links this file to asset {} and manifest {}, whose hard binding still matches this file",
                asset.id, label
            )
        } else {
            // A hash mismatch can't tell re-encoding or editing from a removed metadata
            // segment (removing it shifts the bytes the hard binding covers).
            format!(
                "the C2PA manifest was stripped or replaced; the watermark links this file to asset {} and manifest {}. The stored manifest's hard binding does not match this file: it was re-encoded, edited, or had its metadata removed after signing",
                asset.id, label
            )
        };
        if matched_by == "watermark" {
            analysis.watermark.asset_id = Some(asset.id.clone());
        }
        recovered = Some(RecoveredAsset {
            matched_by: matched_by.to_owned(),
            asset_id: asset.id,
            manifest_label: asset.manifest_label,
            generator: Some(asset.generator).filter(|g| !g.is_empty()),
            model: Some(asset.model),
            model_version: Some(asset.model_version).filter(|v| !v.is_empty()),
            digital_source_type: Some(asset.digital_source_type),
            signed_at: super::rfc3339(asset.created_at),
            manifest_in_file,
            bytes_unchanged,
            note,
            c2pa: recovered_c2pa,
        });
    }
    let verdict = verdict(
        &analysis.c2pa,
        &analysis.watermark,
        recovered.as_ref(),
        &analysis.detection,
    );
    crate::metrics::verdict(&verdict.label);
    let created_at = hallmark_store::now();
    let report = VerificationReport {
        id: hallmark_store::new_id(),
        created_at: super::rfc3339(created_at),
        sha256: sha256.clone(),
        media_type: analysis.media_type.clone(),
        size_bytes,
        c2pa: analysis.c2pa,
        watermark: analysis.watermark,
        recovered,
        detectors: analysis.detectors,
        detection: Some(analysis.detection),
        verdict,
    };
    state
        .store
        .insert_verification(&VerificationRecord {
            id: report.id.clone(),
            created_at,
            sha256,
            media_type: report.media_type.clone(),
            asset_id: report.recovered.as_ref().map(|r| r.asset_id.clone()),
            requested_by: actor.into(),
            report: serde_json::to_value(&report).map_err(ApiError::internal)?,
        })
        .await?;
    Ok(report)
}
