//! What `GET /v1/generators` shows of a generator: identity, modality, licence, pinned model
//! hash, availability and the request parameters it takes (with their limits).

use serde::Serialize;

use crate::registry::{GeneratorEntry, GeneratorSpec};
use crate::speech::text::{MAX_SPEED, MIN_SPEED};

/// Public description of a registered generator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeneratorInfo {
    /// Registry name (what a generate request's `generator` names).
    pub name: String,
    /// Registry version.
    pub version: String,
    /// Modality: `"image"` or `"speech"`.
    pub kind: String,
    /// Human-readable description.
    pub description: String,
    /// Licence / provenance of the weights.
    pub license: String,
    /// Lower-case hex SHA-256 of the model file (checked at load; recorded in the manifest).
    pub sha256: String,
    /// Whether the generator can run on this instance.
    pub available: bool,
    /// Why not, when it cannot (files not installed, espeak-ng missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Request parameters beyond `generator` (and `title`).
    pub parameters: Vec<ParameterInfo>,
}

/// One request parameter of a generator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParameterInfo {
    /// JSON member name.
    pub name: &'static str,
    /// JSON type: `integer`, `number` or `string`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Whether a request must carry it.
    pub required: bool,
    /// What it does.
    pub description: &'static str,
    /// Smallest accepted value (numbers) or length (strings, in characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    /// Largest accepted value (numbers) or length (strings, in characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    /// The accepted values of an enumerated string.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<&'static str>,
    /// Value used when the request leaves it out, as JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<&'static str>,
}

/// Smallest side the service signs (the image watermark needs 128 px; the model renders from
/// [`crate::MIN_SIZE`]).
pub const MIN_SIGNED_SIDE: u32 = 128;

fn param(name: &'static str, kind: &'static str, description: &'static str) -> ParameterInfo {
    ParameterInfo {
        name,
        kind,
        required: false,
        description,
        minimum: None,
        maximum: None,
        values: Vec::new(),
        default: None,
    }
}

impl GeneratorInfo {
    pub(crate) fn new(entry: &GeneratorEntry, unavailable: Option<String>) -> Self {
        let parameters = match &entry.spec {
            GeneratorSpec::Image(_) => {
                let side = |name, what| ParameterInfo {
                    minimum: Some(f64::from(MIN_SIGNED_SIDE)),
                    maximum: Some(f64::from(crate::MAX_SIZE)),
                    default: Some("512"),
                    ..param(name, "integer", what)
                };
                vec![
                    param(
                        "seed",
                        "integer",
                        "64-bit seed; the same seed and size give the same image (default: random)",
                    ),
                    side("width", "width in pixels"),
                    side("height", "height in pixels"),
                ]
            }
            GeneratorSpec::Speech(s) => vec![
                ParameterInfo {
                    required: true,
                    minimum: Some(1.0),
                    maximum: Some(s.max_text_chars as f64),
                    ..param(
                        "text",
                        "string",
                        "text to speak, in characters after NFC: Latin-script letters, digits, common punctuation",
                    )
                },
                ParameterInfo {
                    values: vec!["wav", "mp3"],
                    default: Some("\"wav\""),
                    ..param("format", "string", "output format: 16-bit WAV or MP3")
                },
                ParameterInfo {
                    minimum: Some(MIN_SPEED),
                    maximum: Some(MAX_SPEED),
                    default: Some("1.0"),
                    ..param("speed", "number", "speaking rate relative to the voice's natural rate")
                },
            ],
        };
        Self {
            name: entry.name.clone(),
            version: entry.version.clone(),
            kind: entry.kind.clone(),
            description: entry.description.clone(),
            license: entry.license.clone(),
            sha256: entry.sha256.clone(),
            available: unavailable.is_none(),
            unavailable,
            parameters,
        }
    }
}
