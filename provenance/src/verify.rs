//! Validation of C2PA manifests (C2PA 2.2 §14–15) through c2pa-rs's `Reader`.
//!
//! The verdict is data: a report with a validation state and the status codes verbatim, never
//! an error. Remote manifests are reported (`remote_manifest_unavailable`) and never fetched:
//! the c2pa crate is built without its HTTP stack and remote fetching is off (no SSRF).

use std::io::Cursor;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::ProvenanceError;

/// Trust configuration used to move a `Valid` manifest to `Trusted` (C2PA 2.2 §14.4.1).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrustConfig {
    /// PEM bundle of trust anchors (root or intermediate CA certificates).
    pub trust_anchors_pem: Option<String>,
    /// PEM bundle of end-entity certificates trusted as-is.
    pub allowed_list_pem: Option<String>,
    /// Allowed extended-key-usage OIDs, one per line (`//` comments), as in c2pa-rs `store.cfg`.
    pub allowed_ekus: Option<String>,
}

/// C2PA validation state of the active manifest (C2PA 2.2 §14.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValidationState {
    /// The manifest is not well-formed or an integrity check failed.
    Invalid,
    /// Well-formed, signature and hard bindings valid, signer not on a trust list.
    Valid,
    /// Valid and the signing credential chains to a configured trust anchor.
    Trusted,
}

/// A C2PA status code (C2PA 2.2 §15) as reported by the validator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusCode {
    /// The code, e.g. `assertion.dataHash.mismatch`.
    pub code: String,
    /// `success`, `informational` or `failure`.
    pub kind: String,
    /// JUMBF URI of the item the code is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Human-readable explanation from the validator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

/// Why no validation report could be produced at all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadError {
    /// Stable code: `no_manifest`, `remote_manifest_unavailable`,
    /// `unknown_signature_algorithm`, `asset_parse_error`, `invalid_jumbf`,
    /// `unsupported_format`, `prerelease_manifest`, `resource_limit`, or `read_failed`.
    pub code: String,
    /// The validator's message.
    pub message: String,
    /// For `remote_manifest_unavailable`: the remote manifest URL (reported, not fetched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_url: Option<String>,
}

/// Who signed the active manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignerInfo {
    /// Issuer organization of the signing certificate.
    pub issuer: Option<String>,
    /// Common name of the signing certificate's subject.
    pub common_name: Option<String>,
    /// Serial number of the signing certificate.
    pub serial: Option<String>,
    /// Signature algorithm (e.g. `Es256`).
    pub alg: Option<String>,
    /// Trusted signing time (RFC 3161), when the manifest carries one.
    pub time: Option<String>,
}

/// An ingredient of the active manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngredientSummary {
    /// Ingredient title.
    pub title: Option<String>,
    /// `parentOf`, `componentOf` or `inputTo`.
    pub relationship: String,
    /// Label of the ingredient's own manifest, when it had one.
    pub active_manifest: Option<String>,
}

/// The C2PA part of a verification report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct C2paReport {
    /// A manifest store was found and parsed.
    pub present: bool,
    /// Validation state of the active manifest; `None` when no report could be produced.
    pub validation_state: Option<ValidationState>,
    /// Why no report could be produced (`no_manifest`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_error: Option<ReadError>,
    /// Label of the active manifest.
    pub active_manifest: Option<String>,
    /// Active-manifest status codes, verbatim (success, informational and failure).
    pub status_codes: Vec<StatusCode>,
    /// The failure codes among `status_codes`.
    pub failure_codes: Vec<String>,
    /// Failure codes found in ingredient validation deltas.
    pub ingredient_failure_codes: Vec<String>,
    /// Claim generator of the active manifest.
    pub claim_generator: Option<String>,
    /// Title of the active manifest.
    pub title: Option<String>,
    /// First digital source type IRI declared by the active manifest's actions.
    pub digital_source_type: Option<String>,
    /// Action names of the active manifest, in order.
    pub actions: Vec<String>,
    /// Name (and version) of the software agent of the first action that names one.
    pub software_agent: Option<String>,
    /// Signing credential of the active manifest.
    pub signer: Option<SignerInfo>,
    /// Ingredients of the active manifest.
    pub ingredients: Vec<IngredientSummary>,
    /// Labels of all assertions in the active manifest.
    pub assertion_labels: Vec<String>,
    /// `c2pa.soft-binding` assertions: (alg, value) pairs.
    pub soft_bindings: Vec<(String, String)>,
}

impl C2paReport {
    /// A report for input without any manifest store (or that could not be read).
    pub fn from_read_error(code: &str, message: impl Into<String>) -> Self {
        Self {
            present: false,
            validation_state: None,
            read_error: Some(ReadError {
                code: code.to_owned(),
                message: message.into(),
                remote_url: None,
            }),
            active_manifest: None,
            status_codes: Vec::new(),
            failure_codes: Vec::new(),
            ingredient_failure_codes: Vec::new(),
            claim_generator: None,
            title: None,
            digital_source_type: None,
            actions: Vec::new(),
            software_agent: None,
            signer: None,
            ingredients: Vec::new(),
            assertion_labels: Vec::new(),
            soft_bindings: Vec::new(),
        }
    }

    /// True when the file carries no manifest store at all.
    pub fn no_manifest(&self) -> bool {
        self.read_error
            .as_ref()
            .is_some_and(|e| e.code == "no_manifest")
    }
}

fn context(trust: &TrustConfig) -> Result<c2pa::Context, ProvenanceError> {
    let mut t = serde_json::Map::new();
    if let Some(a) = &trust.trust_anchors_pem {
        t.insert("trust_anchors".into(), json!(a));
    }
    if let Some(a) = &trust.allowed_list_pem {
        t.insert("allowed_list".into(), json!(a));
    }
    if let Some(a) = &trust.allowed_ekus {
        t.insert("trust_config".into(), json!(a));
    }
    let settings = json!({
        "trust": t,
        "verify": {
            "verify_after_reading": true,
            "remote_manifest_fetch": false,
            "ocsp_fetch": false
        }
    });
    c2pa::Context::new()
        .with_settings(settings.to_string().as_str())
        .map_err(|e| ProvenanceError::Trust(e.to_string()))
}

fn read_error(err: &c2pa::Error) -> ReadError {
    use c2pa::Error as E;
    let (code, remote_url) = match err {
        E::JumbfNotFound | E::ProvenanceMissing => ("no_manifest", None),
        E::RemoteManifestUrl(u) | E::RemoteManifestFetch(u) => {
            ("remote_manifest_unavailable", Some(u.clone()))
        }
        E::UnknownAlgorithm => ("unknown_signature_algorithm", None),
        E::InvalidAsset(_) => ("asset_parse_error", None),
        E::JumbfParseError(_) | E::JumbfBoxNotFound => ("invalid_jumbf", None),
        E::UnsupportedType => ("unsupported_format", None),
        E::PrereleaseError => ("prerelease_manifest", None),
        _ => ("read_failed", None),
    };
    ReadError {
        code: code.into(),
        message: err.to_string(),
        remote_url,
    }
}

/// Validates the C2PA manifest store embedded in `bytes` (MIME type or extension `format`), or
/// the standalone manifest store when `format` is `application/c2pa`.
///
/// Never fails on hostile input: every read failure becomes a report with `read_error`.
/// Resource bounds (time, memory) are the caller's job: the service runs this in a sandboxed
/// child process.
///
/// # Errors
/// Only [`ProvenanceError::Trust`] when `trust` can't be turned into c2pa settings.
pub fn verify_media(
    bytes: &[u8],
    format: &str,
    trust: &TrustConfig,
) -> Result<C2paReport, ProvenanceError> {
    let ctx = context(trust)?;
    let reader = c2pa::Reader::from_context(ctx).with_stream(format, Cursor::new(bytes));
    let reader = match reader {
        Ok(r) => r,
        Err(e) => {
            let mut report = C2paReport::from_read_error("read_failed", "");
            report.read_error = Some(read_error(&e));
            return Ok(report);
        }
    };
    Ok(report_from_reader(&reader))
}

/// Validates a stored manifest store (`manifest_store`, JUMBF bytes as returned at signing)
/// against `bytes` (MIME `format`) — how a manifest recovered through a watermark is checked
/// when the file itself no longer carries it (Content Credentials' "durable" credentials). A
/// file changed after signing reports `assertion.dataHash.mismatch` (hard binding no longer
/// matches) while the claim signature still validates.
///
/// # Errors
/// Only [`ProvenanceError::Trust`] when `trust` can't be turned into c2pa settings.
pub fn verify_manifest_store(
    manifest_store: &[u8],
    bytes: &[u8],
    format: &str,
    trust: &TrustConfig,
) -> Result<C2paReport, ProvenanceError> {
    let ctx = context(trust)?;
    match c2pa::Reader::from_context(ctx).with_manifest_data_and_stream(
        manifest_store,
        format,
        Cursor::new(bytes),
    ) {
        Ok(r) => Ok(report_from_reader(&r)),
        Err(e) => {
            let mut report = C2paReport::from_read_error("read_failed", "");
            report.read_error = Some(read_error(&e));
            Ok(report)
        }
    }
}

fn status(kind: &str, s: &c2pa::validation_status::ValidationStatus) -> StatusCode {
    StatusCode {
        code: s.code().to_owned(),
        kind: kind.to_owned(),
        url: s.url().map(str::to_owned),
        explanation: s.explanation().map(str::to_owned),
    }
}

fn report_from_reader(reader: &c2pa::Reader) -> C2paReport {
    let mut report = C2paReport::from_read_error("", "");
    report.read_error = None;
    report.present = true;
    report.validation_state = Some(match reader.validation_state() {
        c2pa::ValidationState::Invalid => ValidationState::Invalid,
        c2pa::ValidationState::Valid => ValidationState::Valid,
        c2pa::ValidationState::Trusted => ValidationState::Trusted,
    });
    if let Some(results) = reader.validation_results() {
        if let Some(active) = results.active_manifest() {
            for s in active.success() {
                report.status_codes.push(status("success", s));
            }
            for s in active.informational() {
                report.status_codes.push(status("informational", s));
            }
            for s in active.failure() {
                report.status_codes.push(status("failure", s));
                report.failure_codes.push(s.code().to_owned());
            }
        }
        if let Some(deltas) = results.ingredient_deltas() {
            for d in deltas {
                for s in d.validation_deltas().failure() {
                    report.ingredient_failure_codes.push(s.code().to_owned());
                }
            }
        }
    } else if let Some(statuses) = reader.validation_status() {
        for s in statuses {
            report.status_codes.push(status("failure", s));
            report.failure_codes.push(s.code().to_owned());
        }
    }
    report.active_manifest = reader.active_label().map(str::to_owned);
    let Some(manifest) = reader.active_manifest() else {
        return report;
    };
    report.claim_generator = manifest.claim_generator().map(str::to_owned).or_else(|| {
        manifest.claim_generator_info.as_ref().and_then(|infos| {
            infos.first().map(|i| match &i.version {
                Some(v) => format!("{} {v}", i.name),
                None => i.name.clone(),
            })
        })
    });
    report.title = manifest.title().map(str::to_owned);
    report.signer = manifest.signature_info().map(|s| SignerInfo {
        issuer: s.issuer.clone(),
        common_name: s.common_name.clone(),
        serial: s.cert_serial_number.clone(),
        alg: s.alg.map(|a| format!("{a:?}")),
        time: s.time.clone(),
    });
    for a in manifest.assertions() {
        let label = a.label().to_owned();
        if label.starts_with("c2pa.actions") {
            if let Ok(value) = a.value() {
                collect_actions(value, &mut report);
            }
        } else if label.starts_with("c2pa.soft-binding") {
            if let Ok(value) = a.value() {
                let alg = value["alg"].as_str().unwrap_or_default().to_owned();
                if let Some(blocks) = value["blocks"].as_array() {
                    for b in blocks {
                        let v = b["value"].as_str().unwrap_or_default().to_owned();
                        report.soft_bindings.push((alg.clone(), v));
                    }
                }
            }
        }
        report.assertion_labels.push(label);
    }
    for i in manifest.ingredients() {
        report.ingredients.push(IngredientSummary {
            title: i.title().map(str::to_owned),
            relationship: format!("{:?}", i.relationship()),
            active_manifest: i.active_manifest().map(str::to_owned),
        });
    }
    report
}

fn collect_actions(value: &serde_json::Value, report: &mut C2paReport) {
    let Some(actions) = value["actions"].as_array() else {
        return;
    };
    for action in actions {
        if let Some(name) = action["action"].as_str() {
            report.actions.push(name.to_owned());
        }
        if report.digital_source_type.is_none() {
            if let Some(t) = action["digitalSourceType"]
                .as_str()
                .filter(|t| !t.is_empty())
            {
                report.digital_source_type = Some(t.to_owned());
            }
        }
        if report.software_agent.is_none() {
            report.software_agent = match &action["softwareAgent"] {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Object(o) => o.get("name").and_then(|n| n.as_str()).map(|n| {
                    match o.get("version").and_then(|v| v.as_str()) {
                        Some(v) => format!("{n} {v}"),
                        None => n.to_owned(),
                    }
                }),
                _ => None,
            };
        }
    }
}
