//! Building and signing the C2PA manifest of generated media (C2PA 2.2 §10, §18.2 actions).

use std::io::Cursor;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    digital_source_type_iri, ProvenanceError, SigningIdentity, DIGITAL_SOURCE_TYPE_PREFIX,
};

/// IPTC digital source types Hallmark will sign: it signs generated media, so capture types
/// (`digitalCapture`, ...) and IRIs outside the IPTC vocabulary are refused.
pub const SIGNABLE_SOURCE_TYPES: [&str; 5] = [
    "trainedAlgorithmicMedia",
    "compositeWithTrainedAlgorithmicMedia",
    "algorithmicMedia",
    "compositeSynthetic",
    "algorithmicallyEnhanced",
];

/// The claim generator name written into every manifest Hallmark signs.
pub const CLAIM_GENERATOR: &str = "Hallmark";

/// What the provider tells Hallmark about the generated media.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestRequest {
    /// Product or service that produced the media (e.g. "acme-imagine").
    pub generator: String,
    /// Model name; recorded as the `softwareAgent` of the `c2pa.created` action.
    pub model: String,
    /// Model version, when known.
    pub model_version: Option<String>,
    /// IPTC digital source type term or IRI (default `trainedAlgorithmicMedia`).
    pub digital_source_type: String,
    /// Optional title of the asset.
    pub title: Option<String>,
    /// Watermark soft binding recorded as a `c2pa.soft-binding` assertion: algorithm name and
    /// payload (hex). `None` records no soft binding.
    pub soft_binding: Option<SoftBinding>,
    /// Hallmark's own version, recorded in the claim generator info.
    pub hallmark_version: String,
    /// Training and data mining permissions to record as a `c2pa.training-mining` assertion:
    /// use ([`TRAINING_MINING_USES`], with or without the `c2pa.` prefix) → permission
    /// ([`TRAINING_MINING_PERMISSIONS`]). Empty records no assertion.
    pub training_mining: std::collections::BTreeMap<String, String>,
    /// Media Hallmark generated itself: what made it and from what, recorded as an
    /// [`GENERATION_ASSERTION`] assertion. `None` (provider-submitted media) records none.
    pub generation: Option<GenerationRecord>,
}

/// Label of the assertion recording how Hallmark generated the media (entity-specific label,
/// C2PA 2.2 §6.2 "Labels": reverse domain prefix).
pub const GENERATION_ASSERTION: &str = "io.hallmark.generation";

/// How Hallmark generated the media, recorded as an [`GENERATION_ASSERTION`] assertion:
/// `{"model": {"name", "version", "sha256"}, "input": {"type", "sha256"}, "parameters": {..}}`.
/// Inputs are recorded by hash, never verbatim (the text of a speech request can be private;
/// whoever holds it can check it against the hash).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GenerationRecord {
    /// Lower-case hex SHA-256 of the generator's model file.
    pub model_sha256: String,
    /// MIME type of the input (`text/plain; charset=utf-8` for speech); `None` when the
    /// generator takes no input but its parameters.
    pub input_type: Option<String>,
    /// Lower-case hex SHA-256 of the input bytes exactly as received.
    pub input_sha256: Option<String>,
    /// Generation parameters (seed, size, speed, format, ...).
    pub parameters: serde_json::Map<String, serde_json::Value>,
}

/// Uses a `c2pa.training-mining` assertion can govern (C2PA 1.3 §18.15.2).
pub const TRAINING_MINING_USES: [&str; 4] = [
    "c2pa.ai_generative_training",
    "c2pa.ai_inference",
    "c2pa.ai_training",
    "c2pa.data_mining",
];

/// Permissions of a training-mining entry (C2PA 1.3 §18.15.2).
pub const TRAINING_MINING_PERMISSIONS: [&str; 3] = ["allowed", "notAllowed", "constrained"];

/// Builds the `c2pa.training-mining` assertion data from (use, permission) pairs.
fn training_mining_assertion(
    entries: &std::collections::BTreeMap<String, String>,
) -> Result<serde_json::Value, ProvenanceError> {
    let mut out = serde_json::Map::new();
    for (k, v) in entries {
        let key = if k.starts_with("c2pa.") {
            k.clone()
        } else {
            format!("c2pa.{k}")
        };
        let short = |t: &str| t.chars().take(64).collect::<String>();
        if !TRAINING_MINING_USES.contains(&key.as_str()) {
            return Err(ProvenanceError::InvalidRequest(format!(
                "training_mining use '{}' is not one of {}",
                short(k),
                TRAINING_MINING_USES.join(", ")
            )));
        }
        if !TRAINING_MINING_PERMISSIONS.contains(&v.as_str()) {
            return Err(ProvenanceError::InvalidRequest(format!(
                "training_mining permission '{}' for '{}' is not one of {}",
                short(v),
                short(k),
                TRAINING_MINING_PERMISSIONS.join(", ")
            )));
        }
        if out.contains_key(&key) {
            return Err(ProvenanceError::InvalidRequest(format!(
                "training_mining names '{key}' twice (with and without the c2pa. prefix)"
            )));
        }
        out.insert(key, json!({ "use": v }));
    }
    Ok(json!({ "entries": out }))
}

/// A soft binding (C2PA 2.2 §9.3, `c2pa.soft-binding`): the watermark that ties the content to
/// this manifest after metadata is stripped.
#[derive(Debug, Clone, Serialize)]
pub struct SoftBinding {
    /// Algorithm identifier, e.g. [`IMAGE_WATERMARK_ALG`](crate::soft_binding::IMAGE_WATERMARK_ALG).
    pub alg: String,
    /// The block's value, in the algorithm's format (Hallmark's watermarks: base64 of the
    /// payload, [`encode_value`](crate::soft_binding::encode_value)).
    pub value: String,
}

/// Output of [`sign_media`].
#[derive(Debug, Clone)]
pub struct SignedMedia {
    /// The signed file: the input with the manifest store embedded.
    pub bytes: Vec<u8>,
    /// Label (URN) of the manifest just signed.
    pub manifest_label: String,
    /// The manifest store bytes (JUMBF), for durable storage.
    pub manifest_store: Vec<u8>,
    /// The digital source type IRI recorded (`compositeWithTrainedAlgorithmicMedia` when a
    /// signed parent made this an edit of trained-algorithmic media).
    pub digital_source_type: String,
}

impl ManifestRequest {
    /// Checks the request (model, source type, training-mining entries) without signing, so a
    /// service can refuse a bad request before doing expensive work.
    ///
    /// # Errors
    /// [`ProvenanceError::InvalidRequest`] naming the first problem.
    pub fn validate(&self) -> Result<(), ProvenanceError> {
        self.definition("image/png", false).map(|_| ())
    }

    fn definition(&self, mime: &str, edit: bool) -> Result<serde_json::Value, ProvenanceError> {
        if self.model.trim().is_empty() {
            return Err(ProvenanceError::InvalidRequest(
                "model must not be empty".into(),
            ));
        }
        check_text("model", &self.model, MAX_NAME_CHARS)?;
        check_text("generator", &self.generator, MAX_NAME_CHARS)?;
        if let Some(v) = &self.model_version {
            check_text("model_version", v, MAX_NAME_CHARS)?;
        }
        if let Some(t) = &self.title {
            check_text("title", t, MAX_TITLE_CHARS)?;
        }
        let mut source_type =
            digital_source_type_iri(&self.digital_source_type).ok_or_else(|| {
                ProvenanceError::InvalidRequest(format!(
                    "digital_source_type '{}' is not an IPTC term or IRI",
                    self.digital_source_type
                ))
            })?;
        let term = source_type.trim_start_matches(DIGITAL_SOURCE_TYPE_PREFIX);
        if !source_type.starts_with(DIGITAL_SOURCE_TYPE_PREFIX)
            || !SIGNABLE_SOURCE_TYPES.contains(&term)
        {
            return Err(ProvenanceError::InvalidRequest(format!(
                "digital_source_type must be one of {} (Hallmark signs generated media)",
                SIGNABLE_SOURCE_TYPES.join(", ")
            )));
        }
        // Generated content laid over media that already has provenance is a composite.
        if edit && source_type.ends_with("/trainedAlgorithmicMedia") {
            source_type =
                format!("{DIGITAL_SOURCE_TYPE_PREFIX}compositeWithTrainedAlgorithmicMedia");
        }
        let mut agent = json!({ "name": self.model });
        if let Some(v) = &self.model_version {
            agent["version"] = json!(v);
        }
        let mut action = json!({
            "action": if edit { "c2pa.edited" } else { "c2pa.created" },
            "digitalSourceType": source_type,
            "softwareAgent": agent,
        });
        if !self.generator.trim().is_empty() {
            action["description"] = json!(format!("Generated by {}", self.generator));
        }
        let mut assertions = vec![json!({
            "label": "c2pa.actions.v2",
            "data": { "actions": [action] },
        })];
        if let Some(sb) = &self.soft_binding {
            assertions.push(json!({
                "label": "c2pa.soft-binding",
                "data": {
                    "alg": sb.alg,
                    "blocks": [{ "scope": {}, "value": sb.value }],
                },
            }));
        }
        if !self.training_mining.is_empty() {
            assertions.push(json!({
                "label": "c2pa.training-mining",
                "data": training_mining_assertion(&self.training_mining)?,
            }));
        }
        if let Some(g) = &self.generation {
            let hex = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
            if !hex(&g.model_sha256) || g.input_sha256.as_deref().is_some_and(|h| !hex(h)) {
                return Err(ProvenanceError::InvalidRequest(
                    "generation hashes must be 64 hex digits".into(),
                ));
            }
            let mut data = json!({
                "model": { "name": self.model, "sha256": g.model_sha256 },
                "parameters": g.parameters,
            });
            if let Some(v) = &self.model_version {
                data["model"]["version"] = json!(v);
            }
            if let (Some(t), Some(h)) = (&g.input_type, &g.input_sha256) {
                data["input"] = json!({ "type": t, "sha256": h });
            }
            assertions.push(json!({ "label": GENERATION_ASSERTION, "data": data }));
        }
        let mut def = json!({
            "claim_generator_info": [{ "name": CLAIM_GENERATOR, "version": self.hallmark_version }],
            "format": mime,
            "assertions": assertions,
        });
        if let Some(t) = &self.title {
            def["title"] = json!(t);
        }
        Ok(def)
    }
}

fn context() -> Result<c2pa::Context, ProvenanceError> {
    c2pa::Context::new()
        .with_settings(
            json!({
                "verify": {
                    "verify_after_sign": true,
                    "remote_manifest_fetch": false,
                    "ocsp_fetch": false
                },
                "builder": { "thumbnail": { "enabled": false } }
            })
            .to_string()
            .as_str(),
        )
        .map_err(ProvenanceError::Signing)
}

/// Embeds a signed C2PA manifest for generated media into `input` (a complete file of MIME type
/// `mime`). The manifest holds `c2pa.actions.v2` with one `c2pa.created` action (the digital
/// source type IRI and the model as `softwareAgent`) and, when given, a `c2pa.soft-binding`.
/// The signature is verified right after signing (c2pa-rs `verify_after_sign`).
///
/// When `parent` (the provider's original file, same MIME type) carries a C2PA manifest, that
/// history is kept (C2PA 2.2 §10.3 ingredients): the parent becomes a `parentOf` ingredient, the
/// manifest starts with `c2pa.opened` of it and records `c2pa.edited` with
/// `compositeWithTrainedAlgorithmicMedia` instead of `c2pa.created`.
///
/// # Errors
/// [`ProvenanceError::InvalidRequest`] for an empty model or bad source type,
/// [`ProvenanceError::UnsupportedFormat`] when c2pa-rs can't embed into `mime`, and
/// [`ProvenanceError::Signing`] for c2pa-rs failures (including a failed verify-after-sign).
pub fn sign_media(
    input: &[u8],
    mime: &str,
    request: &ManifestRequest,
    identity: &SigningIdentity,
    parent: Option<&[u8]>,
) -> Result<SignedMedia, ProvenanceError> {
    if !c2pa::Builder::supported_mime_types()
        .iter()
        .any(|m| m.eq_ignore_ascii_case(mime))
    {
        return Err(ProvenanceError::UnsupportedFormat(mime.to_owned()));
    }
    let parent = parent.filter(|p| has_manifest(p, mime));
    // Training/mining restrictions travel with the content: entries the parent's active
    // manifest declared are kept unless this request sets the same use.
    let inherited;
    let request = match parent.map(|p| parent_training_mining(p, mime)) {
        Some(entries) if !entries.is_empty() => {
            let mut r = request.clone();
            // Only entries this version can re-state (known use and permission) are carried;
            // CAWG uses (`cawg.ai_training`, ...) map to their `c2pa.` equivalents.
            let entries = entries
                .into_iter()
                .map(|(k, v)| match k.strip_prefix("cawg.") {
                    Some(rest) => (format!("c2pa.{rest}"), v),
                    None => (k, v),
                });
            for (k, v) in entries.filter(|(k, v)| {
                TRAINING_MINING_USES.contains(&k.as_str())
                    && TRAINING_MINING_PERMISSIONS.contains(&v.as_str())
            }) {
                let short = k.trim_start_matches("c2pa.").to_owned();
                if !r.training_mining.contains_key(&k) && !r.training_mining.contains_key(&short) {
                    r.training_mining.insert(k, v);
                }
            }
            inherited = r;
            &inherited
        }
        _ => request,
    };
    let definition = request.definition(mime, parent.is_some())?;
    let digital_source_type = definition["assertions"][0]["data"]["actions"]
        .as_array()
        .and_then(|a| a.iter().rev().find_map(|x| x["digitalSourceType"].as_str()))
        .unwrap_or_default()
        .to_owned();
    let mut builder = c2pa::Builder::from_context(context()?)
        .with_definition(definition.to_string().as_str())
        .map_err(ProvenanceError::Signing)?;
    if let Some(p) = parent {
        let title = request.title.clone().unwrap_or_else(|| "original".into());
        builder
            .add_ingredient_from_stream(
                json!({ "title": title, "relationship": "parentOf" }).to_string(),
                mime,
                &mut Cursor::new(p),
            )
            .map_err(ProvenanceError::Signing)?;
        builder.set_intent(c2pa::BuilderIntent::Edit);
    }
    let mut source = Cursor::new(input);
    let mut dest = Cursor::new(Vec::with_capacity(input.len() + 32 * 1024));
    let manifest_store = builder
        .sign(identity, mime, &mut source, &mut dest)
        .map_err(|e| time_stamp_error(e, identity))?;
    let bytes = dest.into_inner();
    let reader = c2pa::Reader::from_context(context()?)
        .with_stream(mime, Cursor::new(bytes.as_slice()))
        .map_err(ProvenanceError::Signing)?;
    let manifest_label = reader.active_label().map(str::to_owned).ok_or_else(|| {
        ProvenanceError::InvalidRequest("signed file has no active manifest".into())
    })?;
    Ok(SignedMedia {
        bytes,
        manifest_label,
        manifest_store,
        digital_source_type,
    })
}

/// c2pa-rs flattens the signer's time-stamp error into its own error types; a failure while a
/// TSA is configured whose message names it is reported as [`ProvenanceError::TimeStamp`].
fn time_stamp_error(e: c2pa::Error, identity: &SigningIdentity) -> ProvenanceError {
    let text = e.to_string();
    match identity.time_authority() {
        Some(_) if text.contains("time-stamp authority") => {
            let mut msg = text
                .split_once("time-stamp authority")
                .map(|(_, rest)| format!("time-stamp authority{rest}"))
                .unwrap_or(text);
            // Drop the closing brackets of c2pa-rs's wrapping around our message.
            while msg.ends_with(')') && msg.matches(')').count() > msg.matches('(').count() {
                msg.pop();
            }
            ProvenanceError::TimeStamp(msg)
        }
        _ => ProvenanceError::Signing(e),
    }
}

/// Training-mining entries of the active manifest of `bytes` (empty when unreadable).
fn parent_training_mining(bytes: &[u8], mime: &str) -> std::collections::BTreeMap<String, String> {
    let Ok(ctx) = context() else {
        return Default::default();
    };
    match c2pa::Reader::from_context(ctx).with_stream(mime, Cursor::new(bytes)) {
        Ok(r) => r
            .active_manifest()
            .map(crate::verify::training_mining_of)
            .unwrap_or_default(),
        Err(_) => Default::default(),
    }
}

/// Whether `bytes` carry a C2PA manifest store that c2pa-rs can read (valid or not).
fn has_manifest(bytes: &[u8], mime: &str) -> bool {
    match context() {
        Ok(ctx) => c2pa::Reader::from_context(ctx)
            .with_stream(mime, Cursor::new(bytes))
            .is_ok(),
        Err(_) => false,
    }
}

/// Longest `model`, `model_version` or `generator` accepted (Unicode scalar values).
pub const MAX_NAME_CHARS: usize = 256;
/// Longest `title` accepted (Unicode scalar values).
pub const MAX_TITLE_CHARS: usize = 1024;

/// Refuses text that would bloat the manifest or render badly in every C2PA reader: longer
/// than `max` characters, or holding control characters (NUL, escapes, line breaks).
fn check_text(field: &str, value: &str, max: usize) -> Result<(), ProvenanceError> {
    let n = value.chars().count();
    if n > max {
        return Err(ProvenanceError::InvalidRequest(format!(
            "{field} is {n} characters long; the limit is {max}"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ProvenanceError::InvalidRequest(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}
