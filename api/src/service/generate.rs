//! Generate: render media with a registered ONNX generator model, then sign it exactly like
//! provider-submitted media (watermark + C2PA manifest naming the model as softwareAgent).

use hallmark_generators::{GenerateRequest, GeneratorError};
use hallmark_media::MediaFormat;
use serde::{Deserialize, Serialize};

use super::idempotency::{self, Begun, Claimed};
use super::{blocking, SignMetadata, SignOutput};
use crate::error::ApiError;
use crate::state::AppState;

/// Body of `POST /v1/generate`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateBody {
    /// Registered generator name (see `GET /v1/generators`).
    pub generator: String,
    /// Seed; the same seed renders the same image. Default: random.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Width in pixels (128–2048, default 512).
    #[serde(default = "default_side")]
    pub width: u32,
    /// Height in pixels (128–2048, default 512).
    #[serde(default = "default_side")]
    pub height: u32,
    /// Title recorded in the manifest.
    #[serde(default)]
    pub title: Option<String>,
}

fn default_side() -> u32 {
    512
}

/// Renders with `body.generator` and signs the PNG result for `actor`.
///
/// # Errors
/// `NotFound` for an unknown generator or when generation is disabled, `InvalidRequest` for a
/// bad size; otherwise as [`sign`].
pub async fn generate(
    state: &AppState,
    body: GenerateBody,
    actor: &str,
) -> Result<SignOutput, ApiError> {
    generate_claimed(state, body, actor, None).await
}

/// [`generate`] under the client's `Idempotency-Key` (if sent): a repeat of the same body under
/// the same key gets the first signed image back, even without a seed (see
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
    // The generator renders 16–2048 px; the watermark needs at least 128 px a side.
    if !(128..=2048).contains(&body.width) || !(128..=2048).contains(&body.height) {
        return Err(ApiError::InvalidRequest(format!(
            "width and height must be between 128 and 2048 pixels (got {}x{})",
            body.width, body.height
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
        width: body.width,
        height: body.height,
    };
    let generated = blocking(move || {
        let g = registry.generate_image(&req).map_err(|e| match e {
            GeneratorError::UnknownGenerator(_) => ApiError::NotFound("generator"),
            GeneratorError::InvalidRequest(m) => ApiError::InvalidRequest(m),
            other => ApiError::internal(other),
        })?;
        let png = hallmark_media::encode_image(&g.image, MediaFormat::Png, 95)?;
        Ok((png, g.model, g.version))
    })
    .await?;
    let (png, model, version) = generated;
    super::sign::sign_claimed(
        state,
        png,
        SignMetadata {
            generator: Some(format!("hallmark-generate (seed {seed})")),
            model,
            model_version: Some(version),
            digital_source_type: Some("trainedAlgorithmicMedia".into()),
            title: body.title,
            training_mining: None,
        },
        actor,
        claim,
    )
    .await
}
