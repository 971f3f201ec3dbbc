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
    /// PEM bundle of blocked certificates. A manifest whose signing chain contains one of them
    /// (leaf or any issuer, compared by SHA-256 of the DER) is `Invalid`, whatever its
    /// signature or trust anchors say: how an instance refuses a compromised or abusive signer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_list_pem: Option<String>,
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

/// Who signed a manifest (C2PA 2.2 §14.5: the signing credential), read from the leaf
/// certificate of the COSE `x5chain`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignerInfo {
    /// Issuer organization (O=) of the signing certificate, as c2pa-rs reports it.
    pub issuer: Option<String>,
    /// Common name of the signing certificate's subject.
    pub common_name: Option<String>,
    /// Serial number of the signing certificate (hex, as c2pa-rs reports it).
    pub serial: Option<String>,
    /// Signature algorithm (e.g. `Es256`).
    pub alg: Option<String>,
    /// Trusted signing time (RFC 3339): the `genTime` of the RFC 3161 time-stamp token in the
    /// COSE signature (`sigTst`/`sigTst2`, C2PA 2.2 §10.3.2.5). `None` when the manifest was
    /// signed without a time-stamp authority: C2PA claims carry no other trustworthy time.
    pub time: Option<String>,
    /// Full subject distinguished name of the signing certificate (RFC 4514 string).
    #[serde(default)]
    pub subject_dn: Option<String>,
    /// Full issuer distinguished name of the signing certificate (RFC 4514 string).
    #[serde(default)]
    pub issuer_dn: Option<String>,
    /// Start of the certificate's validity period (RFC 3339, UTC).
    #[serde(default)]
    pub not_before: Option<String>,
    /// End of the certificate's validity period (RFC 3339, UTC).
    #[serde(default)]
    pub not_after: Option<String>,
    /// SHA-256 of the leaf certificate's DER (hex).
    #[serde(default)]
    pub certificate_sha256: Option<String>,
    /// SHA-256 (hex) of every certificate of the `x5chain`, leaf first: what the blocked list
    /// matches on.
    #[serde(default)]
    pub chain_sha256: Vec<String>,
    /// The signing chain contains a certificate on this instance's blocked list.
    #[serde(default)]
    pub blocked: bool,
}

/// An ingredient of a manifest (C2PA 2.2 §10.3), with the ingredient's own manifest summarised
/// when it had one, recursively: the provenance history chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngredientSummary {
    /// Ingredient title.
    pub title: Option<String>,
    /// `parentOf`, `componentOf` or `inputTo`.
    pub relationship: String,
    /// Label of the ingredient's own manifest, when it had one.
    pub active_manifest: Option<String>,
    /// MIME type of the ingredient, when recorded.
    #[serde(default)]
    pub format: Option<String>,
    /// Claim generator of the ingredient's manifest.
    #[serde(default)]
    pub claim_generator: Option<String>,
    /// Actions of the ingredient's manifest, in order.
    #[serde(default)]
    pub actions: Vec<String>,
    /// First digital source type declared by the ingredient manifest's actions.
    #[serde(default)]
    pub digital_source_type: Option<String>,
    /// Who signed the ingredient's manifest.
    #[serde(default)]
    pub signer: Option<SignerInfo>,
    /// Training and data mining permissions of the ingredient's manifest.
    #[serde(default)]
    pub training_mining: std::collections::BTreeMap<String, String>,
    /// Failure codes the validator recorded for this ingredient (its validation delta).
    #[serde(default)]
    pub failure_codes: Vec<String>,
    /// The ingredient manifest's own ingredients (depth-limited to [`MAX_INGREDIENT_DEPTH`]).
    #[serde(default)]
    pub ingredients: Vec<IngredientSummary>,
}

/// How deep [`IngredientSummary::ingredients`] nests before the chain is cut off.
pub const MAX_INGREDIENT_DEPTH: usize = 16;

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
    /// Training and data mining permissions (`c2pa.training-mining`): use → permission,
    /// e.g. `{"c2pa.ai_training": "notAllowed"}`.
    #[serde(default)]
    pub training_mining: std::collections::BTreeMap<String, String>,
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
            training_mining: Default::default(),
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
    // The blocked list is applied by Hallmark after c2pa-rs validated (see `apply_blocked`).
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
    Ok(report_from_reader(&reader, trust))
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
        Ok(r) => Ok(report_from_reader(&r, trust)),
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

fn report_from_reader(reader: &c2pa::Reader, trust: &TrustConfig) -> C2paReport {
    let mut report = C2paReport::from_read_error("", "");
    report.read_error = None;
    report.present = true;
    report.validation_state = Some(match reader.validation_state() {
        c2pa::ValidationState::Invalid => ValidationState::Invalid,
        c2pa::ValidationState::Valid => ValidationState::Valid,
        c2pa::ValidationState::Trusted => ValidationState::Trusted,
    });
    let mut ingredient_failures: Vec<(String, String)> = Vec::new();
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
                    ingredient_failures
                        .push((d.ingredient_assertion_uri().to_owned(), s.code().to_owned()));
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
    report.claim_generator = claim_generator(manifest);
    report.title = manifest.title().map(str::to_owned);
    let blocked = trust
        .blocked_list_pem
        .as_deref()
        .map(blocked_certs)
        .unwrap_or_default();
    report.signer = signer_info(manifest, &blocked);
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
        } else if label.starts_with("c2pa.training-mining")
            || label.starts_with("cawg.training-mining")
        {
            if let Ok(value) = a.value() {
                collect_training_mining(value, &mut report.training_mining);
            }
        }
        report.assertion_labels.push(label);
    }
    report.ingredients = ingredient_chain(reader, manifest, &ingredient_failures, &blocked, 0);
    apply_blocked(&mut report);
    report
}

fn claim_generator(manifest: &c2pa::Manifest) -> Option<String> {
    manifest.claim_generator().map(str::to_owned).or_else(|| {
        manifest.claim_generator_info.as_ref().and_then(|infos| {
            infos.first().map(|i| match &i.version {
                Some(v) => format!("{} {v}", i.name),
                None => i.name.clone(),
            })
        })
    })
}

/// Signer details from c2pa-rs's `SignatureInfo` plus the leaf certificate itself (subject and
/// issuer DNs, validity, fingerprint), parsed with `x509-parser`.
fn signer_info(manifest: &c2pa::Manifest, blocked: &[BlockedCert]) -> Option<SignerInfo> {
    let s = manifest.signature_info()?;
    let mut info = SignerInfo {
        issuer: s.issuer.clone(),
        common_name: s.common_name.clone(),
        serial: s.cert_serial_number.clone(),
        alg: s.alg.map(|a| format!("{a:?}")),
        time: s.time.clone(),
        subject_dn: None,
        issuer_dn: None,
        not_before: None,
        not_after: None,
        certificate_sha256: None,
        chain_sha256: fingerprints(s.cert_chain()),
        blocked: false,
    };
    let chain = pem::parse_many(s.cert_chain()).unwrap_or_default();
    info.blocked = chain
        .iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .any(|p| is_blocked(p.contents(), blocked));
    if let Some(leaf) = chain.iter().find(|p| p.tag() == "CERTIFICATE") {
        let der = leaf.contents();
        info.certificate_sha256 = Some(sha256_hex(der));
        if let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) {
            info.subject_dn = Some(cert.subject().to_string());
            info.issuer_dn = Some(cert.issuer().to_string());
            info.not_before = rfc3339(cert.validity().not_before.timestamp());
            info.not_after = rfc3339(cert.validity().not_after.timestamp());
            if info.serial.is_none() {
                info.serial = Some(cert.raw_serial_as_string());
            }
        }
    }
    Some(info)
}

fn rfc3339(unix: i64) -> Option<String> {
    chrono::DateTime::<chrono::Utc>::from_timestamp(unix, 0).map(|t| t.to_rfc3339())
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// SHA-256 fingerprints of every certificate in a PEM bundle.
fn fingerprints(pem_bundle: &str) -> Vec<String> {
    pem::parse_many(pem_bundle)
        .unwrap_or_default()
        .iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| sha256_hex(p.contents()))
        .collect()
}

/// A certificate of the blocked list, with what identifies the certificates it issued.
#[derive(Debug, Clone)]
struct BlockedCert {
    sha256: String,
    subject_raw: Vec<u8>,
    subject_key_id: Option<Vec<u8>>,
}

/// Parses a blocked-list PEM bundle (C2PA trust lists use the same format) and returns how many
/// certificates it holds.
///
/// # Errors
/// [`ProvenanceError::Trust`] when the bundle holds no certificate, a PEM block that does not
/// parse, a block that is not a `CERTIFICATE`, or a certificate x509-parser can't read: a
/// blocked list that silently blocks nothing is worse than a refused start.
pub fn check_blocked_list(pem_bundle: &str) -> Result<usize, ProvenanceError> {
    let blocks = pem::parse_many(pem_bundle)
        .map_err(|e| ProvenanceError::Trust(format!("blocked list: PEM: {e}")))?;
    if blocks.is_empty() {
        return Err(ProvenanceError::Trust(
            "blocked list holds no PEM CERTIFICATE block".into(),
        ));
    }
    for (i, b) in blocks.iter().enumerate() {
        if b.tag() != "CERTIFICATE" {
            return Err(ProvenanceError::Trust(format!(
                "blocked list: block {} is '{}', not a CERTIFICATE",
                i + 1,
                b.tag()
            )));
        }
        x509_parser::parse_x509_certificate(b.contents()).map_err(|e| {
            ProvenanceError::Trust(format!("blocked list: certificate {}: {e}", i + 1))
        })?;
    }
    Ok(blocks.len())
}

fn blocked_certs(pem_bundle: &str) -> Vec<BlockedCert> {
    pem::parse_many(pem_bundle)
        .unwrap_or_default()
        .iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .filter_map(|p| {
            let der = p.contents();
            let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
            Some(BlockedCert {
                sha256: sha256_hex(der),
                subject_raw: cert.subject().as_raw().to_vec(),
                subject_key_id: cert
                    .extensions()
                    .iter()
                    .find_map(|e| match e.parsed_extension() {
                        x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                            Some(k.0.to_vec())
                        }
                        _ => None,
                    }),
            })
        })
        .collect()
}

/// `der` is blocked when it is a blocked certificate, or was issued by one: its issuer name
/// equals the blocked certificate's subject and, when both carry key identifiers, its
/// authority key identifier equals the blocked certificate's subject key identifier
/// (RFC 5280 §4.2.1.1). The second rule catches chains that omit the blocked root.
fn is_blocked(der: &[u8], blocked: &[BlockedCert]) -> bool {
    if blocked.is_empty() {
        return false;
    }
    let fp = sha256_hex(der);
    if blocked.iter().any(|b| b.sha256 == fp) {
        return true;
    }
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return false;
    };
    let issuer = cert.issuer().as_raw();
    let aki = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        });
    blocked.iter().any(|b| {
        b.subject_raw == issuer
            && match (&aki, &b.subject_key_id) {
                (Some(a), Some(k)) => a == k,
                _ => true,
            }
    })
}

/// Applies the blocked signer list (computed per signer in [`signer_info`]): a manifest whose
/// signing chain contains, or was issued by, a blocked certificate becomes `Invalid` with the
/// failure code [`BLOCKED_SIGNER_CODE`] (C2PA 2.2 §14.5 leaves trust decisions to the
/// validator's policy; the code is namespaced because the specification has no code for a
/// validator-local block list). A blocked signer anywhere in the ingredient chain adds the code
/// to `ingredient_failure_codes`.
fn apply_blocked(report: &mut C2paReport) {
    fn any_blocked(ings: &[IngredientSummary]) -> bool {
        ings.iter()
            .any(|i| i.signer.as_ref().is_some_and(|s| s.blocked) || any_blocked(&i.ingredients))
    }
    if any_blocked(&report.ingredients) {
        report
            .ingredient_failure_codes
            .push(BLOCKED_SIGNER_CODE.to_owned());
    }
    if !report.signer.as_ref().is_some_and(|s| s.blocked) {
        return;
    }
    report.validation_state = Some(ValidationState::Invalid);
    report.status_codes.push(StatusCode {
        code: BLOCKED_SIGNER_CODE.to_owned(),
        kind: "failure".to_owned(),
        url: None,
        explanation: Some(
            "the signing certificate, or a CA that issued it, is on this instance's blocked signer list"
                .into(),
        ),
    });
    report.failure_codes.push(BLOCKED_SIGNER_CODE.to_owned());
}

/// The failure code a manifest signed by a blocked signer gets.
pub const BLOCKED_SIGNER_CODE: &str = "io.hallmark.signingCredential.blocked";

/// Summaries of `manifest`'s ingredients, following each ingredient's own manifest in the
/// store down to [`MAX_INGREDIENT_DEPTH`] levels (a hostile store can't make this loop: depth
/// bounds it). `failures` are (ingredient assertion URI, code) pairs from the validator's
/// ingredient deltas.
fn ingredient_chain(
    reader: &c2pa::Reader,
    manifest: &c2pa::Manifest,
    failures: &[(String, String)],
    blocked: &[BlockedCert],
    depth: usize,
) -> Vec<IngredientSummary> {
    if depth >= MAX_INGREDIENT_DEPTH {
        return Vec::new();
    }
    manifest
        .ingredients()
        .iter()
        .map(|i| {
            let label = i.active_manifest().map(str::to_owned);
            let mut summary = IngredientSummary {
                title: i.title().map(str::to_owned),
                relationship: format!("{:?}", i.relationship()),
                active_manifest: label.clone(),
                format: i.format().map(str::to_owned),
                claim_generator: None,
                actions: Vec::new(),
                digital_source_type: None,
                signer: None,
                training_mining: Default::default(),
                failure_codes: Vec::new(),
                ingredients: Vec::new(),
            };
            if let Some(results) = i.validation_results() {
                if let Some(active) = results.active_manifest() {
                    summary
                        .failure_codes
                        .extend(active.failure().iter().map(|s| s.code().to_owned()));
                }
            }
            if let Some(label) = &label {
                for (uri, code) in failures {
                    if uri.contains(label.as_str()) && !summary.failure_codes.contains(code) {
                        summary.failure_codes.push(code.clone());
                    }
                }
                if let Some(m) = reader.get_manifest(label) {
                    let mut scratch = C2paReport::from_read_error("", "");
                    for a in m.assertions() {
                        if a.label().starts_with("c2pa.actions") {
                            if let Ok(value) = a.value() {
                                collect_actions(value, &mut scratch);
                            }
                        }
                    }
                    summary.actions = scratch.actions;
                    summary.digital_source_type = scratch.digital_source_type;
                    summary.claim_generator = claim_generator(m);
                    summary.signer = signer_info(m, blocked);
                    if summary.signer.as_ref().is_some_and(|s| s.blocked) {
                        summary.failure_codes.push(BLOCKED_SIGNER_CODE.to_owned());
                    }
                    summary.training_mining = training_mining_of(m);
                    summary.ingredients = ingredient_chain(reader, m, failures, blocked, depth + 1);
                }
            }
            summary
        })
        .collect()
}

/// Reads a training-and-data-mining assertion (`c2pa.training-mining`, C2PA 1.x §18.15, and
/// its successor `cawg.training-mining`): `entries` maps a use (`c2pa.ai_training`, ...) to
/// `{ "use": "allowed" | "notAllowed" | "constrained" }`.
fn collect_training_mining(
    value: &serde_json::Value,
    out: &mut std::collections::BTreeMap<String, String>,
) {
    if let Some(entries) = value["entries"].as_object() {
        for (k, v) in entries {
            if let Some(u) = v["use"].as_str() {
                out.insert(k.clone(), u.to_owned());
            }
        }
    }
}

/// The training-mining entries of `manifest` (see [`collect_training_mining`]).
pub(crate) fn training_mining_of(
    manifest: &c2pa::Manifest,
) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for a in manifest.assertions() {
        let l = a.label();
        if l.starts_with("c2pa.training-mining") || l.starts_with("cawg.training-mining") {
            if let Ok(v) = a.value() {
                collect_training_mining(v, &mut out);
            }
        }
    }
    out
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
