//! What the console's templates show, built from service results: plain strings and lists, so
//! the templates hold no logic beyond loops and conditions (and escape every value).

use hallmark_provenance::{C2paReport, IngredientSummary, SignerInfo};
use serde::Serialize;

use super::session::Signed;
use crate::report::VerificationReport;

/// The header's signed-in part.
#[derive(Debug, Clone)]
pub struct Nav {
    /// Key name.
    pub name: String,
    /// CSRF token for the sign-out form.
    pub csrf: String,
}

impl Nav {
    /// The header of `signed`.
    pub fn of(signed: &Signed) -> Self {
        Self {
            name: signed.caller.name.clone(),
            csrf: signed.csrf.clone(),
        }
    }
}

/// A labelled value.
#[derive(Debug, Clone)]
pub struct Field {
    /// Label.
    pub name: &'static str,
    /// Value, as shown.
    pub value: String,
}

fn field(name: &'static str, value: impl Into<String>) -> Field {
    Field {
        name,
        value: value.into(),
    }
}

/// The snake_case name a serde enum serialises to (`Band`, `ValidationState`, ...).
pub fn label<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "unknown".into(),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An option of a `<select>`.
#[derive(Debug, Clone)]
pub struct Choice {
    /// Value and label.
    pub value: &'static str,
    /// The current filter.
    pub selected: bool,
}

/// The options `all`, with `current` selected.
pub fn choices(all: &[&'static str], current: &str) -> Vec<Choice> {
    all.iter()
        .map(|v| Choice {
            value: v,
            selected: *v == current,
        })
        .collect()
}

/// One row of the queue.
#[derive(Debug, Clone)]
pub struct QueueRow {
    /// Verification id.
    pub id: String,
    /// RFC 3339 time.
    pub created_at: String,
    /// MIME type.
    pub media_type: String,
    /// Verdict label.
    pub verdict: String,
    /// Detection band, or empty.
    pub band: String,
    /// Decisions recorded so far.
    pub decisions: String,
}

/// The rows of a `list_verifications` answer.
pub fn queue_rows(listed: &serde_json::Value) -> Vec<QueueRow> {
    let s = |v: &serde_json::Value, k: &str| match &v[k] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    listed["verifications"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|v| QueueRow {
                    id: s(v, "id"),
                    created_at: s(v, "created_at"),
                    media_type: s(v, "media_type"),
                    verdict: s(v, "verdict"),
                    band: s(v, "band"),
                    decisions: s(v, "decisions"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One manifest of the C2PA chain: the active manifest (depth 0) and its ingredients.
#[derive(Debug, Clone)]
pub struct ManifestNode {
    /// Nesting depth (0 = the active manifest), capped at 5 for indentation.
    pub depth: usize,
    /// `active` or the ingredient relationship (`parentOf`, `componentOf`, `inputTo`).
    pub relationship: String,
    /// Its fields.
    pub fields: Vec<Field>,
}

fn signer_text(s: &SignerInfo) -> String {
    let mut parts = Vec::new();
    if let Some(cn) = &s.common_name {
        parts.push(format!("CN {cn}"));
    }
    if let Some(o) = &s.issuer {
        parts.push(format!("issued by {o}"));
    }
    if let Some(alg) = &s.alg {
        parts.push(alg.clone());
    }
    if let Some(t) = &s.time {
        parts.push(format!("signed {t}"));
    }
    if s.blocked {
        parts.push("BLOCKED signer".into());
    }
    if parts.is_empty() {
        "unknown".into()
    } else {
        parts.join(", ")
    }
}

fn push_opt(fields: &mut Vec<Field>, name: &'static str, v: Option<&String>) {
    if let Some(v) = v {
        fields.push(field(name, v.clone()));
    }
}

fn ingredient_nodes(list: &[IngredientSummary], depth: usize, out: &mut Vec<ManifestNode>) {
    for i in list {
        let mut fields = Vec::new();
        push_opt(&mut fields, "Title", i.title.as_ref());
        push_opt(&mut fields, "Format", i.format.as_ref());
        push_opt(&mut fields, "Manifest", i.active_manifest.as_ref());
        push_opt(&mut fields, "Claim generator", i.claim_generator.as_ref());
        if let Some(s) = &i.signer {
            fields.push(field("Signer", signer_text(s)));
        }
        push_opt(
            &mut fields,
            "Digital source type",
            i.digital_source_type.as_ref(),
        );
        if !i.actions.is_empty() {
            fields.push(field("Actions", i.actions.join(", ")));
        }
        if !i.failure_codes.is_empty() {
            fields.push(field("Failures", i.failure_codes.join(", ")));
        }
        out.push(ManifestNode {
            depth: depth.min(5),
            relationship: i.relationship.clone(),
            fields,
        });
        // A hostile manifest may nest deeply: the chain shown stops at 16 levels.
        if depth < 16 {
            ingredient_nodes(&i.ingredients, depth + 1, out);
        }
    }
}

/// The C2PA section.
#[derive(Debug, Clone)]
pub struct C2paView {
    /// A manifest store was found.
    pub present: bool,
    /// `valid`, `trusted`, `invalid`, or why no report was produced.
    pub state: String,
    /// The active manifest and its ingredients, in order.
    pub chain: Vec<ManifestNode>,
    /// Failure codes of the active manifest and its ingredients.
    pub failures: Vec<String>,
}

fn c2pa_view(c: &C2paReport) -> C2paView {
    let state = match (&c.validation_state, &c.read_error) {
        (Some(s), _) => label(s),
        (None, Some(e)) => format!("{}: {}", e.code, e.message),
        (None, None) => "not checked".into(),
    };
    let mut chain = Vec::new();
    if c.present {
        let mut fields = Vec::new();
        push_opt(&mut fields, "Title", c.title.as_ref());
        push_opt(&mut fields, "Manifest", c.active_manifest.as_ref());
        push_opt(&mut fields, "Claim generator", c.claim_generator.as_ref());
        if let Some(s) = &c.signer {
            fields.push(field("Signer", signer_text(s)));
        }
        push_opt(
            &mut fields,
            "Digital source type",
            c.digital_source_type.as_ref(),
        );
        push_opt(&mut fields, "Software agent", c.software_agent.as_ref());
        if !c.actions.is_empty() {
            fields.push(field("Actions", c.actions.join(", ")));
        }
        for (alg, value) in &c.soft_bindings {
            fields.push(field("Soft binding", format!("{alg}: {value}")));
        }
        for (k, v) in &c.training_mining {
            fields.push(field("Training / mining", format!("{k}: {v}")));
        }
        chain.push(ManifestNode {
            depth: 0,
            relationship: "active".into(),
            fields,
        });
        ingredient_nodes(&c.ingredients, 1, &mut chain);
    }
    let mut failures = c.failure_codes.clone();
    failures.extend(c.ingredient_failure_codes.iter().cloned());
    C2paView {
        present: c.present,
        state,
        chain,
        failures,
    }
}

/// A probability bar (an HTML `<meter>`; the CSP allows no inline widths).
#[derive(Debug, Clone)]
pub struct Bar {
    /// Model name and version, or `combined`.
    pub name: String,
    /// Probability 0–1, three decimals.
    pub value: String,
    /// The likely-synthetic threshold 0–1, or empty.
    pub threshold: String,
    /// Band (`likely_synthetic`, `inconclusive`, `no_signal`).
    pub band: String,
    /// The false-positive rate the threshold was set at, or empty.
    pub fpr: String,
}

/// Everything the report page shows.
#[derive(Debug, Clone)]
pub struct ReportView {
    /// Verification id.
    pub id: String,
    /// Summary fields (time, hash, type, size).
    pub summary: Vec<Field>,
    /// MIME type.
    pub media_type: String,
    /// Verdict label.
    pub verdict: String,
    /// The verdict's reasons.
    pub reasons: Vec<String>,
    /// C2PA section; `None` for reports this version cannot read.
    pub c2pa: Option<C2paView>,
    /// Watermark and content-match fields.
    pub watermark: Vec<Field>,
    /// Asset recovered through the watermark.
    pub recovered: Vec<Field>,
    /// Per-model bars.
    pub detectors: Vec<Bar>,
    /// The combined detection bar, when a probability was computed.
    pub combined: Option<Bar>,
    /// Why detection gave no probability, if it says.
    pub detection_note: String,
}

fn three(x: f64) -> String {
    format!("{x:.3}")
}

impl ReportView {
    /// The view of a stored report. A report this version cannot parse (stored by an older
    /// one) still shows its verdict and reasons.
    pub fn from_stored(id: &str, stored: &serde_json::Value) -> Self {
        match serde_json::from_value::<VerificationReport>(stored.clone()) {
            Ok(r) => Self::from_report(&r),
            Err(_) => Self {
                id: id.to_owned(),
                summary: vec![field(
                    "Report",
                    "stored in a format this version cannot read",
                )],
                media_type: stored["media_type"].as_str().unwrap_or_default().to_owned(),
                verdict: stored["verdict"]["label"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_owned(),
                reasons: stored["verdict"]["reasons"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|r| r.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                c2pa: None,
                watermark: Vec::new(),
                recovered: Vec::new(),
                detectors: Vec::new(),
                combined: None,
                detection_note: String::new(),
            },
        }
    }

    fn from_report(r: &VerificationReport) -> Self {
        let w = &r.watermark;
        let mut watermark = vec![field("Detected", if w.detected { "yes" } else { "no" })];
        push_opt(&mut watermark, "Not checked", w.not_checked.as_ref());
        push_opt(&mut watermark, "Payload", w.payload.as_ref());
        watermark.push(field("p-value", format!("{:.3e}", w.p_value)));
        if let Some(b) = w.bit_agreement {
            watermark.push(field("Bit agreement", three(b)));
        }
        push_opt(&mut watermark, "Asset", w.asset_id.as_ref());
        for t in &w.ranges {
            watermark.push(field(
                "Marked range",
                format!("{:.2} s – {:.2} s", t.start_s, t.end_s),
            ));
        }
        if let Some(m) = &w.content_match {
            let mut text = label(&m.status);
            if let (Some(d), Some(t)) = (m.distance, m.threshold) {
                text.push_str(&format!(" (distance {d:.3}, threshold {t:.3})"));
            }
            watermark.push(field("Content match", text));
        }
        let mut recovered = Vec::new();
        if let Some(a) = &r.recovered {
            recovered.push(field("Asset", a.asset_id.clone()));
            recovered.push(field("Matched by", a.matched_by.clone()));
            push_opt(&mut recovered, "Manifest", a.manifest_label.as_ref());
            push_opt(&mut recovered, "Generator", a.generator.as_ref());
            push_opt(&mut recovered, "Model", a.model.as_ref());
            push_opt(&mut recovered, "Signed at", Some(&a.signed_at));
            recovered.push(field("Note", a.note.clone()));
        }
        let detectors = r
            .detectors
            .iter()
            .map(|d| Bar {
                name: format!("{} {}", d.model, d.version),
                value: three(f64::from(d.score)),
                threshold: three(f64::from(d.threshold)),
                band: d.band.as_str().to_owned(),
                fpr: format!("{:.2} %", d.fpr_target * 100.0),
            })
            .collect();
        let combined = r.detection.as_ref().and_then(|d| {
            d.probability.map(|p| Bar {
                name: "combined".into(),
                value: three(f64::from(p)),
                threshold: String::new(),
                band: d.band.as_str().to_owned(),
                fpr: d
                    .fpr_target
                    .map(|f| format!("{:.2} %", f * 100.0))
                    .unwrap_or_default(),
            })
        });
        Self {
            id: r.id.clone(),
            summary: vec![
                field("Verified", r.created_at.clone()),
                field("SHA-256", r.sha256.clone()),
                field("Type", r.media_type.clone()),
                field("Size", format!("{} bytes", r.size_bytes)),
            ],
            media_type: r.media_type.clone(),
            verdict: r.verdict.label.clone(),
            reasons: r.verdict.reasons.clone(),
            c2pa: Some(c2pa_view(&r.c2pa)),
            watermark,
            recovered,
            detectors,
            combined,
            detection_note: r
                .detection
                .as_ref()
                .and_then(|d| d.note.clone())
                .unwrap_or_default(),
        }
    }

    /// An image the preview can show.
    pub fn is_image(&self) -> bool {
        self.media_type.starts_with("image/")
    }

    /// Audio the player can play.
    pub fn is_audio(&self) -> bool {
        self.media_type.starts_with("audio/")
    }
}

/// A recorded decision.
#[derive(Debug, Clone)]
pub struct DecisionView {
    /// Decision id.
    pub id: String,
    /// Action.
    pub action: String,
    /// Policy.
    pub policy: String,
    /// Reason.
    pub reason: String,
    /// Key id of the moderator.
    pub decided_by: String,
    /// RFC 3339 time.
    pub created_at: String,
    /// Audit-log sequence number.
    pub audit_seq: u64,
}

impl From<hallmark_store::DecisionRecord> for DecisionView {
    fn from(d: hallmark_store::DecisionRecord) -> Self {
        Self {
            id: d.id,
            action: d.action,
            policy: d.policy,
            reason: d.reason,
            decided_by: d.decided_by,
            created_at: crate::service::rfc3339(d.created_at),
            audit_seq: d.audit_seq,
        }
    }
}

/// The latest signed checkpoint.
#[derive(Debug, Clone)]
pub struct CheckpointView {
    /// Tree size it signs.
    pub tree_size: u64,
    /// Root hash (hex).
    pub root_hash: String,
    /// The signed note, verbatim.
    pub note: String,
}

/// The result of re-verifying the whole log.
#[derive(Debug, Clone)]
pub struct LogStatusView {
    /// Everything checked out.
    pub valid: bool,
    /// Fields shown.
    pub fields: Vec<Field>,
    /// The first failure, in words.
    pub failure: Option<String>,
}

impl From<&hallmark_store::LogReport> for LogStatusView {
    fn from(r: &hallmark_store::LogReport) -> Self {
        Self {
            valid: r.valid,
            fields: vec![
                field("Tree size", r.tree_size.to_string()),
                field("Entries checked", r.entries_checked.to_string()),
                field("Checkpoints checked", r.checkpoints_checked.to_string()),
                field("Verified size", r.verified_size.to_string()),
                field("Root hash", r.root_hash.clone()),
            ],
            failure: r.first_failure.as_ref().map(|f| {
                format!(
                    "entry {} (leaf {}): {}: {}",
                    f.seq,
                    f.leaf_index,
                    label(&f.reason),
                    f.detail
                )
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urlencode_keeps_only_unreserved() {
        assert_eq!(urlencode("image/svg+xml"), "image%2Fsvg%2Bxml");
        assert_eq!(urlencode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(urlencode("<&>"), "%3C%26%3E");
    }

    #[test]
    fn unreadable_reports_keep_their_verdict() {
        let v = serde_json::json!({"verdict": {"label": "tampered", "reasons": ["<b>x</b>"]}});
        let view = ReportView::from_stored("id-1", &v);
        assert_eq!(view.verdict, "tampered");
        assert_eq!(view.reasons, vec!["<b>x</b>".to_owned()]);
        assert!(view.c2pa.is_none() && !view.is_image());
    }

    #[test]
    fn queue_rows_read_the_listing() {
        let v = serde_json::json!({"verifications": [{"id": "a", "created_at": "t",
            "media_type": "image/png", "verdict": "tampered", "band": null, "decisions": 2}]});
        let rows = queue_rows(&v);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].band, "");
        assert_eq!(rows[0].decisions, "2");
    }
}
