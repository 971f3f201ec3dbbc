//! Generate: render media with a registered generator (an ONNX image model or a text-to-speech
//! voice), then sign it exactly like provider-submitted media (watermark + C2PA manifest naming
//! the model, its version and its SHA-256 as softwareAgent, plus an `io.hallmark.generation`
//! assertion with the model hash, the input's hash and the parameters).

use hallmark_generators::{GenerateRequest, GeneratorError, SpeechRequest};
use hallmark_media::{AudioClip, MediaFormat};
use hallmark_provenance::GenerationRecord;
use serde::{Deserialize, Serialize};

use super::idempotency::{self, Begun, Claimed};
use super::sign::Generated;
use super::{blocking, job_permit, SignMetadata, SignOutput};
use crate::error::ApiError;
use crate::state::AppState;

/// Body of `POST /v1/generate`. Image generators take `seed`, `width`, `height`; voices
/// (`kind = "speech"` in `GET /v1/generators`) take `text`, `format`, `speed`. A member of
/// the other kind is refused (400 `invalid_request`).
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateBody {
    /// Registered generator name (see `GET /v1/generators`).
    pub generator: String,
    /// Image: seed; the same seed renders the same image. Default: random.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Image: width in pixels (128–2048, default 512).
    #[serde(default)]
    pub width: Option<u32>,
    /// Image: height in pixels (128–2048, default 512).
    #[serde(default)]
    pub height: Option<u32>,
    /// Speech: the text to speak (required; at most the voice's `text` maximum, 5,000
    /// characters for the shipped voice). Recorded in the manifest by SHA-256 only.
    #[serde(default)]
    pub text: Option<String>,
    /// Speech: `wav` (16-bit PCM, default) or `mp3`.
    #[serde(default)]
    pub format: Option<String>,
    /// Speech: speaking rate relative to the voice's natural rate, 0.5–2.0 (default 1).
    #[serde(default)]
    pub speed: Option<f64>,
    /// Title recorded in the manifest.
    #[serde(default)]
    pub title: Option<String>,
}

const DEFAULT_SIDE: u32 = 512;

/// Silence past the watermark's minimum duration that a short utterance is padded to, seconds.
const MIN_PAD_MARGIN_SECONDS: f64 = 0.25;

/// Renders or speaks with `body.generator` and signs the result for `actor`.
///
/// # Errors
/// `NotFound` for an unknown generator or when generation is disabled,
/// `GeneratorUnavailable` for a registered generator that cannot run here, `InvalidRequest`
/// for a bad size or a member of the other kind, `SpeechInput` for refused text or speed;
/// otherwise as [`super::sign`].
pub async fn generate(
    state: &AppState,
    body: GenerateBody,
    actor: &str,
) -> Result<SignOutput, ApiError> {
    generate_claimed(state, body, actor, None).await
}

/// [`generate`] under the client's `Idempotency-Key` (if sent): a repeat of the same body under
/// the same key gets the first signed file back, even without a seed (see
/// [`super::idempotency`]).
///
/// # Errors
/// As [`generate`] and [`super::idempotency::begin`].
pub async fn generate_idempotent(
    state: &AppState,
    body: GenerateBody,
    actor: &str,
    idem_key: Option<String>,
) -> Result<SignOutput, ApiError> {
    let json = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    let fp = idempotency::fingerprint("/v1/generate", &[&json]);
    match idempotency::begin(state, actor, "/v1/generate", idem_key, fp).await? {
        Begun::Replay(out) => Ok(out),
        Begun::Fresh(claim) => generate_claimed(state, body, actor, claim).await,
    }
}

/// The API error for a generator error.
fn generator_error(e: GeneratorError) -> ApiError {
    match e {
        GeneratorError::UnknownGenerator(_) => ApiError::NotFound("generator"),
        GeneratorError::InvalidRequest(m) => ApiError::InvalidRequest(m),
        GeneratorError::Text(t) => ApiError::SpeechInput(t),
        e @ GeneratorError::Unavailable { .. } => ApiError::GeneratorUnavailable(e.to_string()),
        other => ApiError::internal(other),
    }
}

/// `softwareAgent.version` of generated media: the registry version and the model's SHA-256,
/// so any C2PA reader shows which exact weights made it.
fn agent_version(version: &str, sha256: &str) -> String {
    format!("{version} sha256:{sha256}")
}

async fn generate_claimed(
    state: &AppState,
    body: GenerateBody,
    actor: &str,
    claim: Option<Claimed>,
) -> Result<SignOutput, ApiError> {
    let registry = state
        .generators
        .clone()
        .ok_or(ApiError::NotFound("generator"))?;
    let kind = registry
        .kind_of(&body.generator)
        .map_err(generator_error)?
        .to_owned();
    if kind == "speech" {
        return speak(state, registry, body, actor, claim).await;
    }
    if body.text.is_some() || body.format.is_some() || body.speed.is_some() {
        return Err(ApiError::InvalidRequest(format!(
            "`text`, `format` and `speed` apply to voices; `{}` is an image generator",
            body.generator
        )));
    }
    let (width, height) = (
        body.width.unwrap_or(DEFAULT_SIDE),
        body.height.unwrap_or(DEFAULT_SIDE),
    );
    // The generator renders 16–2048 px; the watermark needs at least 128 px a side.
    if !(128..=2048).contains(&width) || !(128..=2048).contains(&height) {
        return Err(ApiError::InvalidRequest(format!(
            "width and height must be between 128 and 2048 pixels (got {width}x{height})"
        )));
    }
    let seed = match body.seed {
        Some(s) => s,
        None => {
            use ring::rand::SecureRandom;
            let mut b = [0u8; 8];
            ring::rand::SystemRandom::new()
                .fill(&mut b)
                .map_err(|_| ApiError::internal(anyhow::anyhow!("system RNG unavailable")))?;
            u64::from_le_bytes(b)
        }
    };
    let req = GenerateRequest {
        generator: body.generator.clone(),
        seed,
        width,
        height,
    };
    let g = blocking(move || {
        let g = registry.generate_image(&req).map_err(generator_error)?;
        let png = hallmark_media::encode_image(&g.image, MediaFormat::Png, 95)?;
        Ok((png, g))
    })
    .await?;
    let (png, g) = g;
    let mut parameters = serde_json::Map::new();
    // As a decimal string: the seed is any u64, and c2pa's assertion encoding takes integers
    // only up to i64::MAX (a random seed above it failed signing with a 500).
    parameters.insert("seed".into(), seed.to_string().into());
    parameters.insert("width".into(), width.into());
    parameters.insert("height".into(), height.into());
    sign_made(
        state,
        Made {
            bytes: png,
            label: format!("hallmark-generate (seed {seed})"),
            model: g.model,
            version: g.version,
            model_sha256: g.model_sha256,
            input_sha256: None,
            parameters,
            output: None,
        },
        body.title,
        actor,
        claim,
    )
    .await
}

/// Speech: checks the request, synthesises under a job slot, encodes 16-bit WAV and signs it
/// (the sign path writes the marked clip as WAV or MP3).
async fn speak(
    state: &AppState,
    registry: hallmark_generators::GeneratorRegistry,
    body: GenerateBody,
    actor: &str,
    claim: Option<Claimed>,
) -> Result<SignOutput, ApiError> {
    if body.seed.is_some() || body.width.is_some() || body.height.is_some() {
        return Err(ApiError::InvalidRequest(format!(
            "`seed`, `width` and `height` apply to image generators; `{}` is a voice",
            body.generator
        )));
    }
    let format = match body.format.as_deref().unwrap_or("wav") {
        "wav" => MediaFormat::Wav,
        "mp3" => MediaFormat::Mp3,
        other => {
            return Err(ApiError::InvalidRequest(format!(
                "format must be \"wav\" or \"mp3\" (got \"{}\")",
                other.chars().take(16).collect::<String>()
            )))
        }
    };
    let req = SpeechRequest {
        generator: body.generator.clone(),
        text: body.text.clone().unwrap_or_default(),
        speed: body.speed.unwrap_or(1.0),
    };
    // Refuse bad text before queueing any work.
    registry.check_speech(&req).map_err(generator_error)?;
    let permit = job_permit(state).await?;
    let speech = blocking(move || {
        let mut s = registry.synthesize(&req).map_err(generator_error)?;
        let seconds = s.samples.len() as f64 / f64::from(s.sample_rate);
        // The audio watermark needs MIN_SECONDS of audio: a short utterance is padded with
        // trailing silence (the read-back check in the sign path still decides whether the
        // speech itself carries a readable mark).
        let min = ((hallmark_watermark::audio::MIN_SECONDS + MIN_PAD_MARGIN_SECONDS)
            * f64::from(s.sample_rate))
        .ceil() as usize;
        if s.samples.len() < min {
            s.samples.resize(min, 0.0);
        }
        let clip = AudioClip {
            sample_rate: s.sample_rate,
            channels: vec![s.samples],
        };
        let wav = hallmark_media::encode_wav(&clip)?;
        Ok((
            wav,
            seconds,
            s.model,
            s.version,
            s.model_sha256,
            s.text_sha256,
        ))
    })
    .await?;
    // The sign path takes its own slot.
    drop(permit);
    let (wav, speech_seconds, model, version, model_sha256, text_sha256) = speech;
    let mut parameters = serde_json::Map::new();
    parameters.insert("speed".into(), body.speed.unwrap_or(1.0).into());
    parameters.insert("format".into(), format.extension().into());
    sign_made(
        state,
        Made {
            bytes: wav,
            label: "hallmark-generate (text to speech)".into(),
            model,
            version,
            model_sha256,
            input_sha256: Some(text_sha256),
            parameters,
            output: Some(format),
        },
        body.title,
        actor,
        claim,
    )
    .await
    .map_err(|e| match e {
        ApiError::MediaTooSmall(_) => ApiError::MediaTooSmall(format!(
            "the spoken text lasts {speech_seconds:.1} s, too short to carry a readable audio \
             watermark (about 3 s of speech or more is needed): send a longer text"
        )),
        other => other,
    })
}

/// What a generator made, ready for the sign path.
struct Made {
    /// The encoded media (PNG, or 16-bit WAV for speech).
    bytes: Vec<u8>,
    /// The manifest's `generator` description.
    label: String,
    model: String,
    version: String,
    model_sha256: String,
    /// SHA-256 of the text a voice spoke (`None` for image generators).
    input_sha256: Option<String>,
    parameters: serde_json::Map<String, serde_json::Value>,
    /// Output format when it differs from `bytes`' (speech as MP3).
    output: Option<MediaFormat>,
}

/// Signs generated media through the one sign path: softwareAgent = model, version and model
/// SHA-256; an `io.hallmark.generation` assertion with the model hash, the input's hash (text
/// as UTF-8) and the parameters.
async fn sign_made(
    state: &AppState,
    made: Made,
    title: Option<String>,
    actor: &str,
    claim: Option<Claimed>,
) -> Result<SignOutput, ApiError> {
    super::sign::sign_claimed(
        state,
        made.bytes,
        SignMetadata {
            generator: Some(made.label),
            model_version: Some(agent_version(&made.version, &made.model_sha256)),
            model: made.model,
            digital_source_type: Some("trainedAlgorithmicMedia".into()),
            title,
            training_mining: None,
        },
        actor,
        claim,
        Generated {
            generation: Some(GenerationRecord {
                model_sha256: made.model_sha256,
                input_type: made
                    .input_sha256
                    .is_some()
                    .then(|| "text/plain; charset=utf-8".to_owned()),
                input_sha256: made.input_sha256,
                parameters: made.parameters,
            }),
            output: made.output,
        },
    )
    .await
}
