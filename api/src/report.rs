//! The verification report: one JSON document per verified file, stored and served again.

use hallmark_detectors::{Band, Detection, DetectorScore};
use hallmark_provenance::C2paReport;
use serde::{Deserialize, Serialize};

/// Watermark part of a report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct WatermarkReport {
    /// Detected at the configured false-positive rate (p < 1e-6).
    pub detected: bool,
    /// Decoded payload when detected: 16 hex digits for images, 8 for audio.
    pub payload: Option<String>,
    /// Probability that an unmarked file scores this high.
    pub p_value: f64,
    /// Fraction of coded bits agreeing with the decoded codeword.
    pub bit_agreement: Option<f64>,
    /// The Hallmark asset the payload identifies, if this instance signed it.
    pub asset_id: Option<String>,
    /// Why no detection was attempted or possible (`too_small`, `unsupported_format`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_checked: Option<String>,
    /// Time ranges carrying the mark, for audio.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub ranges: Vec<TimeRange>,
    /// Content binding: whether this content is the content the mark was issued for (set when
    /// the payload names an asset of this instance).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub content_match: Option<ContentMatch>,
}

/// Outcome of the content-binding check (watermark/README.md, "Content binding").
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContentMatchStatus {
    /// The content's fingerprint matches the one stored when the asset was signed.
    Match,
    /// It does not: the mark was copied onto other content; it does not attribute.
    Mismatch,
    /// No fingerprint was stored for the asset (signed before content binding): not checked.
    Unknown,
}

/// `watermark.content_match` of a report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ContentMatch {
    /// `match`, `mismatch` or `unknown`.
    pub status: ContentMatchStatus,
    /// Fingerprint distance (images: 1 − normalised cross-correlation; audio: bit error
    /// rate); absent when not compared.
    pub distance: Option<f64>,
    /// Largest distance that counts as the same content; absent when not compared.
    pub threshold: Option<f64>,
}

/// A time range in seconds from the start of the clip.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TimeRange {
    /// Start, seconds.
    pub start_s: f64,
    /// End, seconds.
    pub end_s: f64,
}

/// What the watermark recovered about a file Hallmark signed earlier.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct RecoveredAsset {
    /// Hallmark asset id.
    pub asset_id: String,
    /// How the asset was found: `watermark` (its payload) or `content_hash` (the file is
    /// byte-identical to a signed output).
    #[serde(default)]
    pub matched_by: String,
    /// Label of the manifest Hallmark signed for it (served by `GET /v1/manifests/{label}`).
    pub manifest_label: Option<String>,
    /// Generator named at signing.
    pub generator: Option<String>,
    /// Model named at signing.
    pub model: Option<String>,
    /// Model version named at signing.
    pub model_version: Option<String>,
    /// Digital source type declared at signing.
    pub digital_source_type: Option<String>,
    /// When it was signed.
    pub signed_at: String,
    /// The file still carries the manifest Hallmark signed.
    pub manifest_in_file: bool,
    /// The file is byte-identical to what Hallmark returned.
    pub bytes_unchanged: bool,
    /// Human-readable statement.
    pub note: String,
    /// When the file no longer carries the manifest: the stored manifest validated against
    /// this file. Its signature still validates; its hard binding reports
    /// `assertion.dataHash.mismatch` when the bytes it covers changed after signing
    /// (re-encoding, editing, or removing the metadata segment, which shifts them).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<Object>)]
    pub c2pa: Option<C2paReport>,
}

/// The verdict: a label and the reasons behind it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Verdict {
    /// `ai_generated`, `likely_ai_generated`, `tampered`, `blocked_signer`, `provenance_valid`,
    /// `watermark_mismatch` (a Hallmark mark copied onto content it was not issued for), or
    /// `no_evidence`.
    pub label: String,
    /// Each piece of evidence, in words.
    pub reasons: Vec<String>,
}

/// A complete verification report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct VerificationReport {
    /// Verification id (UUID v7).
    pub id: String,
    /// RFC 3339 time of verification.
    pub created_at: String,
    /// SHA-256 of the uploaded bytes (hex).
    pub sha256: String,
    /// Sniffed MIME type.
    pub media_type: String,
    /// Upload size in bytes.
    pub size_bytes: u64,
    /// C2PA validation.
    #[schema(value_type = Object)]
    pub c2pa: C2paReport,
    /// Watermark detection.
    pub watermark: WatermarkReport,
    /// Asset recovered through the watermark, when the payload is known here.
    pub recovered: Option<RecoveredAsset>,
    /// Detector results per model: calibrated probability (1 = synthetic) and band.
    #[schema(value_type = Vec<Object>)]
    pub detectors: Vec<DetectorScore>,
    /// Detection summary: combined calibrated probability, band (`likely_synthetic`,
    /// `inconclusive`, `no_signal`), the false-positive rate its threshold was set at, and why
    /// no probability was computed when there is none. Absent in reports stored before v2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub detection: Option<Detection>,
    /// Verdict.
    pub verdict: Verdict,
}

/// Digital source types that declare AI generation (IPTC vocabulary).
pub fn is_ai_source_type(iri: &str) -> bool {
    let term = iri.rsplit('/').next().unwrap_or(iri);
    matches!(
        term,
        "trainedAlgorithmicMedia"
            | "compositeWithTrainedAlgorithmicMedia"
            | "algorithmicMedia"
            | "compositeSynthetic"
    )
}

/// "CN, O" of the active manifest's signer, for verdict reasons.
fn signer_name(c2pa: &C2paReport) -> String {
    let Some(s) = &c2pa.signer else {
        return "unknown".into();
    };
    match (&s.common_name, &s.issuer) {
        (Some(cn), Some(o)) => format!("'{cn}' issued by '{o}'"),
        (Some(cn), None) => format!("'{cn}'"),
        (None, Some(o)) => format!("issued by '{o}'"),
        (None, None) => "unknown".into(),
    }
}

/// Combines the evidence into a verdict. Order of strength: an invalid manifest (tampered),
/// declared or watermarked AI origin, detector scores, a valid non-AI manifest, nothing.
pub fn verdict(
    c2pa: &C2paReport,
    watermark: &WatermarkReport,
    recovered: Option<&RecoveredAsset>,
    detection: &Detection,
) -> Verdict {
    use hallmark_provenance::ValidationState as V;
    let mut reasons = Vec::new();
    let mut label = "no_evidence";
    let declared_ai = c2pa
        .digital_source_type
        .as_deref()
        .is_some_and(is_ai_source_type);
    match c2pa.validation_state {
        Some(V::Invalid) if c2pa.signer.as_ref().is_some_and(|s| s.blocked) => {
            label = "blocked_signer";
            reasons.push(format!(
                "C2PA manifest signed by a blocked signer ({})",
                signer_name(c2pa)
            ));
        }
        Some(V::Invalid) => {
            label = "tampered";
            reasons.push(tampered_reason(c2pa, declared_ai));
        }
        Some(state) => {
            let trust = if state == V::Trusted {
                format!("trusted signer {}", signer_name(c2pa))
            } else {
                format!("signer {} not on a trust list", signer_name(c2pa))
            };
            if declared_ai {
                label = "ai_generated";
                reasons.push(format!(
                    "valid C2PA manifest ({trust}) declares digital source type {}",
                    c2pa.digital_source_type.as_deref().unwrap_or_default()
                ));
            } else {
                label = "provenance_valid";
                reasons.push(format!("valid C2PA manifest ({trust})"));
            }
        }
        None => {
            if let Some(e) = &c2pa.read_error {
                // A manifest store that is there but broken is tampering evidence.
                if matches!(
                    e.code.as_str(),
                    "invalid_jumbf" | "unknown_signature_algorithm"
                ) {
                    label = "tampered";
                    reasons.push(format!("C2PA manifest is corrupt: {}", e.code));
                } else if e.code != "no_manifest" {
                    reasons.push(format!("C2PA manifest unreadable: {}", e.code));
                }
            }
        }
    }
    if c2pa
        .ingredient_failure_codes
        .iter()
        .any(|c| c == hallmark_provenance::BLOCKED_SIGNER_CODE)
    {
        reasons.push("an ingredient of this file was signed by a blocked signer".into());
    }
    let recovered_blocked = recovered
        .and_then(|r| r.c2pa.as_ref())
        .and_then(|c| c.signer.as_ref())
        .is_some_and(|s| s.blocked);
    // Content binding: a mark whose payload names an asset issued for other content was copied
    // onto this file (copy attack); it names no origin and never attributes.
    let status = watermark.content_match.as_ref().map(|m| m.status);
    let copied_mark = watermark.detected && status == Some(ContentMatchStatus::Mismatch);
    if copied_mark {
        if label == "no_evidence" || label == "provenance_valid" {
            label = "watermark_mismatch";
        }
        reasons.push(format!(
            "a Hallmark watermark (payload {}) was read, but it does not belong to this content: its fingerprint does not match the content the mark was issued for (distance {}); the mark was copied onto this file and does not identify its origin",
            watermark.payload.as_deref().unwrap_or("?"),
            watermark.content_match.as_ref().map_or_else(
                || "not measured".into(),
                |m| format!(
                    "{:.3} > threshold {:.3}",
                    m.distance.unwrap_or(f64::NAN),
                    m.threshold.unwrap_or(f64::NAN)
                )
            )
        ));
    } else if watermark.detected && status == Some(ContentMatchStatus::Unknown) {
        reasons.push(
            "the watermark's binding to this content could not be checked (no content fingerprint was stored for the asset)".into(),
        );
    }
    if watermark.detected && !copied_mark {
        if recovered_blocked && label != "tampered" {
            label = "blocked_signer";
            reasons.push(
                "the manifest recovered through the watermark was signed by a blocked signer"
                    .into(),
            );
        } else if label != "tampered" && label != "blocked_signer" {
            label = "ai_generated";
        }
        match recovered {
            Some(r) => reasons.push(format!(
                "Hallmark watermark identifies asset {} ({}){}",
                r.asset_id,
                r.model.as_deref().unwrap_or("unknown model"),
                if r.manifest_in_file {
                    String::new()
                } else {
                    "; its C2PA manifest was stripped from this file".into()
                }
            )),
            None => reasons.push(format!(
                "Hallmark watermark detected (payload {}, p = {:.2e}) but not issued by this instance",
                watermark.payload.as_deref().unwrap_or("?"),
                watermark.p_value
            )),
        }
    }
    if let Some(r) = recovered.filter(|r| !watermark.detected && r.matched_by == "content_hash") {
        if label == "no_evidence" || label == "provenance_valid" {
            label = "ai_generated";
        }
        reasons.push(format!(
            "the file is byte-identical to asset {} ({}) signed by this instance",
            r.asset_id,
            r.model.as_deref().unwrap_or("unknown model")
        ));
    }
    if let Some(reason) = &watermark.not_checked {
        reasons.push(format!("content not analysed for a watermark: {reason}"));
    }
    detection_reasons(detection, &mut label, &mut reasons);
    if reasons.is_empty() {
        reasons.push("no provenance, watermark or detector evidence".into());
    }
    Verdict {
        label: label.into(),
        reasons,
    }
}

/// What a failure code means for a reader, for the codes that explain an invalid manifest.
fn failure_meaning(code: &str) -> Option<&'static str> {
    Some(match code {
        "assertion.dataHash.mismatch"
        | "assertion.boxesHash.mismatch"
        | "assertion.bmffHash.mismatch"
        | "assertion.collectionHash.mismatch" => {
            "the hard binding does not match this file: its content changed after signing"
        }
        "claimSignature.mismatch" => "the claim signature does not verify",
        "assertion.hashedURI.mismatch" => "an assertion was changed after signing",
        "assertion.missing" => "an assertion the claim lists is missing",
        "signingCredential.revoked" => "the signing certificate was revoked",
        "signingCredential.expired" => "the signing certificate had expired when it signed",
        "signingCredential.invalid" => "the signing certificate is not valid for signing",
        "timeStamp.mismatch" => "the time-stamp does not match the claim",
        _ => return None,
    })
}

/// The reason of a `tampered` verdict: what is broken (in words and codes), that an
/// untrusted signer is a separate matter, and what the manifest still declares.
fn tampered_reason(c2pa: &C2paReport, declared_ai: bool) -> String {
    let causes: Vec<&String> = c2pa
        .failure_codes
        .iter()
        .filter(|c| c.as_str() != "signingCredential.untrusted")
        .collect();
    let mut words: Vec<String> = Vec::new();
    for c in &causes {
        if let Some(m) = failure_meaning(c) {
            if !words.iter().any(|w| w == m) {
                words.push(m.to_string());
            }
        }
    }
    let codes = causes
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut r = if words.is_empty() {
        format!("C2PA manifest is invalid ({codes})")
    } else {
        format!("C2PA manifest is invalid: {} ({codes})", words.join("; "))
    };
    if c2pa
        .failure_codes
        .iter()
        .any(|c| c == "signingCredential.untrusted")
    {
        r.push_str(&format!(
            "; separately, its signer {} is not on a trust list",
            signer_name(c2pa)
        ));
    }
    if let Some(dst) = c2pa.digital_source_type.as_deref() {
        let term = dst.rsplit('/').next().unwrap_or(dst);
        if declared_ai {
            r.push_str(&format!(
                ". The manifest still declares digital source type {term} (AI-generated{}), but that claim no longer covers this content as it is",
                c2pa.claim_generator
                    .as_deref()
                    .map(|g| format!(", claim generator {g}"))
                    .unwrap_or_default()
            ));
        } else {
            r.push_str(&format!(
                ". The manifest declares digital source type {term}"
            ));
        }
    }
    r
}

/// Adds the detectors' reasons; detectors alone raise the label to `likely_ai_generated`
/// only in the `likely_synthetic` band and never claim authenticity. C2PA and watermark
/// evidence outrank them; when they disagree with valid provenance, the reasons say so.
fn detection_reasons(d: &Detection, label: &mut &str, reasons: &mut Vec<String>) {
    let fpr = d
        .fpr_target
        .map(|f| format!("{:.0} %", f * 100.0))
        .unwrap_or_else(|| "a stated".into());
    match (d.band, d.probability) {
        (_, None) => reasons.push(format!(
            "detectors not applied: {}",
            d.note.as_deref().unwrap_or("no detector result")
        )),
        (Band::LikelySynthetic, Some(p)) => {
            reasons.push(format!(
                "detectors: calibrated probability {p:.2} that the content is synthetic, in the likely_synthetic band (threshold set so that {fpr} of real calibration media reach it)"
            ));
            match *label {
                "no_evidence" => *label = "likely_ai_generated",
                "provenance_valid" => reasons.push(
                    "the detectors contradict the provenance: the valid manifest does not declare AI generation; the manifest outranks the detectors".into(),
                ),
                _ => {}
            }
        }
        (Band::Inconclusive, Some(p)) => reasons.push(format!(
            "detectors inconclusive: calibrated probability {p:.2} that the content is synthetic, below the likely_synthetic threshold"
        )),
        (Band::NoSignal, Some(p)) => {
            let mut r = format!(
                "detectors found no signal of synthesis (calibrated probability {p:.2}); this is not evidence that the content is authentic"
            );
            if *label == "ai_generated" {
                r.push_str(", and it does not outweigh the provenance that says it is AI-generated");
            }
            reasons.push(r);
        }
    }
    if let (Some(note), Some(_)) = (&d.note, d.probability) {
        reasons.push(format!("some detectors were not applied: {note}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hallmark_detectors::{Band, Detection, DetectorScore};
    use hallmark_provenance::ValidationState;

    fn no_manifest() -> C2paReport {
        C2paReport::from_read_error("no_manifest", "")
    }

    fn unmarked() -> WatermarkReport {
        WatermarkReport {
            detected: false,
            payload: None,
            p_value: 0.4,
            bit_agreement: None,
            asset_id: None,
            not_checked: None,
            ranges: Vec::new(),
            content_match: None,
        }
    }

    fn detection(p: f32, band: Band) -> Detection {
        Detection::combine(vec![DetectorScore {
            model: "m".into(),
            version: "2".into(),
            score: p,
            logit: 0.0,
            band,
            threshold: 0.88,
            fpr_target: 0.02,
        }])
    }

    #[test]
    fn detectors_alone_need_the_likely_synthetic_band() {
        let v = verdict(
            &no_manifest(),
            &unmarked(),
            None,
            &detection(0.93, Band::LikelySynthetic),
        );
        assert_eq!(v.label, "likely_ai_generated");
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("0.93") && r.contains("2 %")),
            "{v:?}"
        );
        for band in [Band::Inconclusive, Band::NoSignal] {
            let v = verdict(&no_manifest(), &unmarked(), None, &detection(0.6, band));
            assert_eq!(v.label, "no_evidence", "{band:?}");
        }
    }

    #[test]
    fn no_signal_never_claims_authenticity() {
        for d in [
            detection(0.05, Band::NoSignal),
            Detection::no_signal("image of 32x32 px is below the 64 px detectors need"),
        ] {
            let v = verdict(&no_manifest(), &unmarked(), None, &d);
            let text = v.reasons.join(" | ").to_lowercase();
            assert!(
                !text.contains("authentic")
                    || text.contains("not evidence that the content is authentic"),
                "{text}"
            );
            assert!(
                !text.contains("real") && !text.contains("genuine"),
                "{text}"
            );
        }
        let v = verdict(
            &no_manifest(),
            &unmarked(),
            None,
            &Detection::no_signal("clip is silent"),
        );
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("not applied") && r.contains("silent")),
            "{v:?}"
        );
    }

    #[test]
    fn provenance_outranks_detectors_and_the_conflict_is_named() {
        let mut c = no_manifest();
        c.read_error = None;
        c.present = true;
        c.validation_state = Some(ValidationState::Valid);
        c.digital_source_type =
            Some("http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture".into());
        let v = verdict(
            &c,
            &unmarked(),
            None,
            &detection(0.95, Band::LikelySynthetic),
        );
        assert_eq!(v.label, "provenance_valid");
        assert!(v.reasons.iter().any(|r| r.contains("contradict")), "{v:?}");
    }

    #[test]
    fn tampered_names_the_broken_binding_and_what_the_manifest_declares() {
        let mut c = no_manifest();
        c.read_error = None;
        c.present = true;
        c.validation_state = Some(ValidationState::Invalid);
        c.failure_codes = vec![
            "signingCredential.untrusted".into(),
            "assertion.dataHash.mismatch".into(),
        ];
        c.digital_source_type =
            Some("http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia".into());
        c.claim_generator = Some("Hallmark 0.1.0".into());
        let v = verdict(&c, &unmarked(), None, &detection(0.1, Band::NoSignal));
        assert_eq!(v.label, "tampered");
        let r = &v.reasons[0];
        assert!(
            r.contains("hard binding") && r.contains("changed after signing"),
            "{r}"
        );
        assert!(r.contains("(assertion.dataHash.mismatch)"), "{r}");
        assert!(r.contains("not on a trust list"), "{r}");
        assert!(
            r.contains("trainedAlgorithmicMedia") && r.contains("AI-generated"),
            "{r}"
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod content_binding_tests {
    use super::*;

    fn mark(status: Option<ContentMatchStatus>) -> WatermarkReport {
        WatermarkReport {
            detected: true,
            payload: Some("0123456789abcdef".into()),
            p_value: 1e-24,
            bit_agreement: Some(1.0),
            asset_id: None,
            not_checked: None,
            ranges: Vec::new(),
            content_match: status.map(|status| ContentMatch {
                status,
                distance: Some(0.9),
                threshold: Some(0.5),
            }),
        }
    }

    fn asset() -> RecoveredAsset {
        RecoveredAsset {
            asset_id: "asset-1".into(),
            matched_by: "watermark".into(),
            manifest_label: None,
            generator: None,
            model: Some("model-x".into()),
            model_version: None,
            digital_source_type: None,
            signed_at: "2026-12-07T00:00:00Z".into(),
            manifest_in_file: false,
            bytes_unchanged: false,
            note: String::new(),
            c2pa: None,
        }
    }

    #[test]
    fn a_copied_mark_never_attributes() {
        let none = C2paReport::from_read_error("no_manifest", "none");
        // verify() drops the recovered asset on a mismatch; the verdict must not attribute
        // even if it were passed.
        for recovered in [None, Some(asset())] {
            let v = verdict(
                &none,
                &mark(Some(ContentMatchStatus::Mismatch)),
                recovered.as_ref(),
                &hallmark_detectors::Detection::no_signal("test"),
            );
            assert_eq!(v.label, "watermark_mismatch");
            let text = v.reasons.join("; ");
            assert!(text.contains("does not belong to this content"), "{text}");
            assert!(text.contains("0.900 > threshold 0.500"), "{text}");
            assert!(
                !text.contains("asset-1") && !text.contains("model-x"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_matching_or_unchecked_mark_attributes() {
        let none = C2paReport::from_read_error("no_manifest", "none");
        let v = verdict(
            &none,
            &mark(Some(ContentMatchStatus::Match)),
            Some(&asset()),
            &hallmark_detectors::Detection::no_signal("test"),
        );
        assert_eq!(v.label, "ai_generated");
        assert!(v.reasons[0].contains("identifies asset asset-1 (model-x)"));
        let v = verdict(
            &none,
            &mark(Some(ContentMatchStatus::Unknown)),
            Some(&asset()),
            &hallmark_detectors::Detection::no_signal("test"),
        );
        assert_eq!(v.label, "ai_generated");
        assert!(v.reasons.iter().any(|r| r.contains("could not be checked")));
        assert!(v
            .reasons
            .iter()
            .any(|r| r.contains("identifies asset asset-1")));
    }
}
