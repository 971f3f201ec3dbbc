//! Sign: watermark the provider's media, then embed a signed C2PA manifest.

use hallmark_media::{MediaFormat, MediaKind};
use hallmark_provenance::soft_binding::{self, BindingMedia};
use hallmark_provenance::{GenerationRecord, ManifestRequest, ProvenanceError, SoftBinding};
use hallmark_store::{AssetRecord, ManifestRecord};
use serde::{Deserialize, Serialize};

use super::idempotency::{self, Begun, Claimed};
use super::{blocking, decode_upload, job_permit, sha256_hex};
use crate::error::ApiError;
use crate::state::AppState;
use crate::worker::DecodedMedia;

/// Watermark payload width in bits for a media kind: images carry
/// [`hallmark_watermark::PAYLOAD_BITS`] (64), audio [`hallmark_watermark::AUDIO_PAYLOAD_BITS`]
/// (32, which buys the audio mark a rate-1/4 code; see watermark/README.md).
pub fn payload_bits(kind: MediaKind) -> usize {
    match kind {
        MediaKind::Audio => hallmark_watermark::AUDIO_PAYLOAD_BITS,
        // Images; video and documents are never marked (sign refuses them first).
        _ => hallmark_watermark::PAYLOAD_BITS,
    }
}

/// The soft binding media of a media kind (images for everything but audio: sign refuses
/// the rest first).
pub fn binding_media(kind: MediaKind) -> BindingMedia {
    match kind {
        MediaKind::Audio => BindingMedia::Audio,
        _ => BindingMedia::Image,
    }
}

/// A payload as lowercase hex of `payload_bits(kind) / 4` digits (16 for images, 8 for
/// audio): the form stored in the database and shown in reports (the manifest's soft binding
/// holds it as base64, `soft_binding::encode_value`).
pub fn payload_hex(kind: MediaKind, payload: u64) -> String {
    format!("{payload:0width$x}", width = payload_bits(kind) / 4)
}

/// A uniformly random non-zero payload of `payload_bits(kind)` bits.
///
/// # Errors
/// The system RNG is unavailable.
pub fn random_payload(kind: MediaKind) -> anyhow::Result<u64> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| anyhow::anyhow!("system RNG unavailable"))?;
    let bits = payload_bits(kind);
    let mask = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    Ok((u64::from_be_bytes(b) & mask).max(1))
}

/// The `metadata` part of a sign request.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignMetadata {
    /// Product or service that generated the media.
    #[serde(default)]
    pub generator: Option<String>,
    /// Model that generated the media (required).
    pub model: String,
    /// Model version.
    #[serde(default)]
    pub model_version: Option<String>,
    /// IPTC digital source type term or IRI; default `trainedAlgorithmicMedia`.
    #[serde(default)]
    pub digital_source_type: Option<String>,
    /// Title recorded in the manifest.
    #[serde(default)]
    pub title: Option<String>,
    /// Training and data mining permissions recorded as a `c2pa.training-mining` assertion:
    /// `{"ai_training": "notAllowed", "ai_generative_training": "notAllowed",
    /// "ai_inference": "allowed", "data_mining": "constrained"}` (any subset).
    #[serde(default)]
    pub training_mining: Option<std::collections::BTreeMap<String, String>>,
}

/// Result of signing.
#[derive(Debug, Clone)]
pub struct SignOutput {
    /// New asset id (UUID v7).
    pub asset_id: String,
    /// The signed file.
    pub bytes: Vec<u8>,
    /// Its format (same as the input's).
    pub format: MediaFormat,
    /// Label of the embedded manifest.
    pub manifest_label: String,
    /// Watermark payload ([`payload_hex`]: 16 hex digits for images, 8 for audio).
    pub payload: String,
    /// This is the stored first response to a repeated `Idempotency-Key` request (nothing
    /// was signed now).
    pub replayed: bool,
}

/// Draws a payload not yet assigned to any asset. With 32-bit audio payloads a repeat is
/// plausible once millions of clips are signed (p ≈ n / 2³² per draw), so a drawn payload is
/// checked against the store and redrawn; the unique index on `assets.watermark_payload`
/// remains the final guard against two concurrent requests drawing the same value.
async fn fresh_payload(state: &AppState, kind: MediaKind) -> Result<(u64, String), ApiError> {
    for _ in 0..8 {
        let payload = random_payload(kind).map_err(ApiError::internal)?;
        let hex = payload_hex(kind, payload);
        if state.store.find_asset_by_payload(&hex).await?.is_none() {
            return Ok((payload, hex));
        }
        tracing::info!(payload = %hex, "drawn watermark payload already assigned; redrawing");
    }
    Err(ApiError::internal(anyhow::anyhow!(
        "8 random watermark payloads in a row were already assigned"
    )))
}

/// Watermarks and signs `bytes` (JPEG, PNG, WebP, WAV, MP3 or M4A) for `actor` (API key id or
/// "cli"), stores the asset and its manifest (one transaction), and returns the signed file in
/// the input's format.
///
/// # Errors
/// `UnsupportedMedia` (415) for other formats, `CorruptMedia`/`MediaLimit` for bad input,
/// `MediaTooSmall` when the media can't carry the watermark, `InvalidRequest` for bad metadata.
pub async fn sign(
    state: &AppState,
    bytes: Vec<u8>,
    metadata: SignMetadata,
    actor: &str,
) -> Result<SignOutput, ApiError> {
    sign_claimed(state, bytes, metadata, actor, None, Generated::default()).await
}

/// What media Hallmark generated itself adds to a sign: the generation record (model hash,
/// input hash, parameters) and, for audio, an output format other than the input's
/// (generated speech arrives as WAV and is encoded to MP3 once, after marking).
#[derive(Debug, Default)]
pub(crate) struct Generated {
    /// Recorded as the manifest's `io.hallmark.generation` assertion.
    pub generation: Option<GenerationRecord>,
    /// Output format; `None` = the input's. Only audio may change format.
    pub output: Option<MediaFormat>,
}

/// [`sign`] under the client's `Idempotency-Key` (if sent): a repeat of the same file and
/// metadata under the same key gets the first signed file back (see [`super::idempotency`]).
///
/// # Errors
/// As [`sign`] and [`super::idempotency::begin`].
pub async fn sign_idempotent(
    state: &AppState,
    bytes: Vec<u8>,
    metadata: SignMetadata,
    actor: &str,
    idem_key: Option<String>,
) -> Result<SignOutput, ApiError> {
    let meta = serde_json::to_vec(&metadata).map_err(ApiError::internal)?;
    let fp = idempotency::fingerprint("/v1/sign", &[sha256_hex(&bytes).as_bytes(), &meta]);
    match idempotency::begin(state, actor, "/v1/sign", idem_key, fp).await? {
        Begun::Replay(out) => Ok(out),
        Begun::Fresh(claim) => {
            sign_claimed(state, bytes, metadata, actor, claim, Generated::default()).await
        }
    }
}

/// [`sign`], completing `claim` (if any) in the transaction that stores the asset.
pub(crate) async fn sign_claimed(
    state: &AppState,
    bytes: Vec<u8>,
    metadata: SignMetadata,
    actor: &str,
    claim: Option<Claimed>,
    generated: Generated,
) -> Result<SignOutput, ApiError> {
    if metadata.model.trim().is_empty() {
        return Err(ApiError::InvalidRequest(
            "metadata.model must not be empty".into(),
        ));
    }
    if bytes.is_empty() {
        // As verify answers it: an empty part is a malformed request, not a media type.
        return Err(ApiError::InvalidRequest("empty upload".into()));
    }
    let format = hallmark_media::sniff(&bytes).ok_or_else(|| {
        ApiError::UnsupportedMedia(
            "unrecognised media format; sign accepts JPEG, PNG, WebP, WAV, MP3, M4A".into(),
        )
    })?;
    if !format.signable() {
        return Err(ApiError::UnsupportedMedia(format!(
            "{} cannot be signed; sign accepts JPEG, PNG, WebP, WAV, MP3, M4A",
            format.mime()
        )));
    }
    let out_format = generated.output.unwrap_or(format);
    if out_format != format
        && (format.kind() != MediaKind::Audio || out_format.kind() != MediaKind::Audio)
    {
        return Err(ApiError::internal(anyhow::anyhow!(
            "only audio can be signed into another format ({} -> {})",
            format.mime(),
            out_format.mime()
        )));
    }
    let _permit = job_permit(state).await?;
    let (payload, payload_hex) = fresh_payload(state, format.kind()).await?;
    let request = ManifestRequest {
        generator: metadata.generator.clone().unwrap_or_default(),
        model: metadata.model.clone(),
        model_version: metadata.model_version.clone(),
        digital_source_type: metadata
            .digital_source_type
            .clone()
            .unwrap_or_else(|| "trainedAlgorithmicMedia".into()),
        title: metadata.title.clone(),
        // Named and encoded as the C2PA Soft Binding Resolution API expects: a client passes
        // this `alg` and `value` to `/v1/matches/byBinding` unchanged.
        soft_binding: Some({
            let alg = soft_binding::algorithm_for(binding_media(format.kind()));
            SoftBinding {
                alg: alg.alg.into(),
                value: soft_binding::encode_value(alg, payload),
            }
        }),
        hallmark_version: env!("CARGO_PKG_VERSION").into(),
        training_mining: metadata.training_mining.clone().unwrap_or_default(),
        generation: generated.generation,
    };
    // Refuse a bad request before decoding and watermarking.
    request.validate().map_err(|e| match e {
        ProvenanceError::InvalidRequest(m) => ApiError::InvalidRequest(m),
        other => ApiError::internal(other),
    })?;
    let input_sha256 = sha256_hex(&bytes);
    // The upload is decoded, and its own manifest (the parent ingredient) validated, in worker
    // processes. c2pa-rs reads the upload again in this process, to add it as an ingredient,
    // only when a worker read that manifest within its limits without an error.
    let bytes = std::sync::Arc::new(bytes);
    let (decoded, parent) = tokio::join!(
        decode_upload(state, &bytes, format),
        super::verify::c2pa_report(state, &bytes, None, format)
    );
    let decoded = decoded?;
    let parent = parent?;
    let parent_readable = parent.present && parent.read_error.is_none() && out_format == format;
    let st = state.clone();
    let req = request.clone();
    let (signed, content_fingerprint) = blocking(move || {
        let formats = (format, out_format);
        let (marked, fingerprint) = watermark_and_encode(&st, &bytes, decoded, formats, payload)?;
        let parent = parent_readable.then_some(bytes.as_slice());
        hallmark_provenance::sign_media(&marked, out_format.mime(), &req, &st.identity, parent)
            .map(|signed| (signed, fingerprint))
            .map_err(|e| match e {
                ProvenanceError::InvalidRequest(m) => ApiError::InvalidRequest(m),
                ProvenanceError::UnsupportedFormat(m) => ApiError::UnsupportedMedia(m),
                ProvenanceError::TimeStamp(m) => ApiError::UpstreamUnavailable(m),
                other => ApiError::internal(other),
            })
    })
    .await?;

    let asset_id = uuid::Uuid::now_v7().to_string();
    let created_at = hallmark_store::now();
    let asset = AssetRecord {
        id: asset_id.clone(),
        created_at,
        media_type: out_format.mime().into(),
        input_sha256: Some(input_sha256),
        output_sha256: sha256_hex(&signed.bytes),
        watermark_payload: Some(payload_hex.clone()),
        manifest_label: Some(signed.manifest_label.clone()),
        generator: metadata.generator.clone().unwrap_or_default(),
        model: metadata.model.clone(),
        model_version: metadata.model_version.clone().unwrap_or_default(),
        digital_source_type: if signed.digital_source_type.is_empty() {
            request.digital_source_type.clone()
        } else {
            signed.digital_source_type.clone()
        },
        created_by: actor.into(),
        content_fingerprint,
    };
    let manifest = ManifestRecord {
        label: signed.manifest_label.clone(),
        asset_id: asset_id.clone(),
        format: out_format.mime().into(),
        store_bytes: signed.manifest_store,
        created_at,
    };
    let out = SignOutput {
        asset_id,
        bytes: signed.bytes,
        format: out_format,
        manifest_label: signed.manifest_label,
        payload: payload_hex,
        replayed: false,
    };
    // The asset, its manifest and the idempotency record: all or nothing.
    let done = claim.as_ref().map(|c| c.completion(&out)).transpose()?;
    state
        .store
        .insert_signed(&asset, &manifest, done.as_ref().map(|(k, r)| (*k, r)))
        .await?;
    drop(done);
    if let Some(c) = claim {
        c.completed();
    }
    tracing::info!(asset_id = %out.asset_id, payload = %out.payload, media_type = out_format.mime(), "signed");
    Ok(out)
}

/// Embedding strengths tried in order for images: the default, then stronger marks for small
/// or smooth images whose first mark did not survive the output encoder (and re-marked inputs
/// whose previous mark was stronger than the default). The low-activity cap (`grain_cap`)
/// grows with the strength, or smooth areas would cap the stronger attempts at the default's
/// amplitude. Every step keeps the signed-vs-original PSNR at or above 38 dB.
fn image_attempts(jpeg_quality: u8) -> [(hallmark_watermark::image::ImageEmbedParams, u8); 4] {
    use hallmark_watermark::image::ImageEmbedParams as P;
    let d = P::default();
    let strongest = P {
        strength: d.strength * 2.5,
        grain_cap: d.grain_cap * 2.5,
        min_psnr_db: 38.5,
        ..P::default()
    };
    [
        (P { ..d }, jpeg_quality),
        (
            P {
                strength: d.strength * 1.6,
                grain_cap: d.grain_cap * 1.6,
                min_psnr_db: 40.0,
                ..P::default()
            },
            jpeg_quality.max(97),
        ),
        (strongest.clone(), jpeg_quality.max(98)),
        // Last resort for images with (almost) no texture, e.g. generated art of smooth
        // gradients, where the activity mask leaves nothing to read: the strongest attempt
        // plus a ±1-step floor everywhere (docs/DECISIONS.md "Image sign floor").
        (
            P {
                flat_floor: IMAGE_SIGN_FLAT_FLOOR,
                ..strongest
            },
            jpeg_quality.max(98),
        ),
    ]
}

/// [`ImageEmbedParams::flat_floor`](hallmark_watermark::image::ImageEmbedParams::flat_floor)
/// of the last image attempt, in 8-bit code values.
const IMAGE_SIGN_FLAT_FLOOR: f32 = 1.0;

/// Pilot p-value a signed audio file's mark must reach on read-back to be shipped without
/// trying a stronger attempt. A mark just under the detection threshold decodes its payload at
/// the edge of the code's reach (coded-bit agreement ≈ 0.7) and is lost to the first lossy
/// transcode in a few percent of payloads (measured on the test suite's synthetic speech: 2 of
/// 80 payloads lost after MP3 128 kbit/s with acceptance at the threshold, 0 of 200 with a
/// margin of pilot p-value ≤ 5e-10). The detector reports a decoded mark's p-value with the
/// CRC counted and corrected for its layouts and searches
/// ([`decoded_p_value`](hallmark_watermark::audio::decoded_p_value): 16ρ × p since issue 19,
/// ≈ 1.95e-12 here; 4ρ × p = 4.9e-13 before), so the margin is kept as the measured pilot
/// strength, not as a number. Real speech reads back far below it (the harness's 64 corpus
/// clips as 16-bit WAV: pilot z ≥ 9.8), so its first attempt ships.
const AUDIO_SIGN_MARGIN_PILOT_P: f64 = 5e-10;

/// Audio embedding attempts: the default (mark ≥ 28 dB under each frame), then 22 and 16 dB
/// margins for sparse, harmonic material (synthetic voices) whose first mark doesn't survive.
fn audio_attempts() -> [hallmark_watermark::audio::AudioEmbedParams; 3] {
    use hallmark_watermark::audio::AudioEmbedParams as P;
    let d = P::default();
    [
        d.clone(),
        P {
            mask_db: 22.0,
            ..d.clone()
        },
        P { mask_db: 16.0, ..d },
    ]
}

/// Embeds the watermark, encodes the output in `formats.1` (the input's format `formats.0`
/// for images; audio may differ), and checks that the encoded
/// output carries `payload` (decode + detect). Returns the output and the content fingerprint
/// of what it decodes to (content binding, see `binding.rs`). Images that fail the check are re-marked more
/// strongly (see [`image_attempts`]); if no attempt survives, the media is too small or too
/// flat to carry the mark and `MediaTooSmall` is returned — Hallmark never ships a file whose
/// watermark it can't read back.
///
/// `decoded` is the upload as a worker decoded it; the read-back decodes below run in this
/// process on bytes Hallmark's own encoders just wrote.
fn watermark_and_encode(
    state: &AppState,
    bytes: &[u8],
    decoded: DecodedMedia,
    formats: (MediaFormat, MediaFormat),
    payload: u64,
) -> Result<(Vec<u8>, Option<String>), ApiError> {
    let (format, out_format) = formats;
    let limits = state.settings.media_limits();
    let key = &state.watermark_key;
    let too_small = |e: hallmark_watermark::WatermarkError| match e {
        hallmark_watermark::WatermarkError::TooSmall { .. } => {
            ApiError::MediaTooSmall(e.to_string())
        }
        other => ApiError::InvalidRequest(other.to_string()),
    };
    let carries = |d: &hallmark_watermark::Detection| d.detected && d.payload == Some(payload);
    match (format.kind(), decoded) {
        (MediaKind::Image, DecodedMedia::Image(image, _)) => {
            // Re-signing a file Hallmark marked before (an edit of a signed output): its
            // mark is rewritten to the new payload instead of a second mark stacked on it
            // (the two would share the pilot and cancel each other's differing bits).
            // The old mark's scale, measured, lets a mark of an earlier version's geometry be
            // removed rather than left beside the new one.
            let found = hallmark_watermark::image::detect(&image, key);
            let previous = found.payload.filter(|&p| p != payload);
            for (params, quality) in image_attempts(state.settings.signing.jpeg_quality) {
                let marked = match previous {
                    Some(old) => hallmark_watermark::image::embed_replacing(
                        &image,
                        key,
                        payload,
                        old,
                        found.scale,
                        &params,
                    ),
                    None => hallmark_watermark::image::embed(&image, key, payload, &params),
                }
                .map_err(too_small)?;
                let out = hallmark_media::encode_image_like(&marked, format, quality, bytes)?;
                let check = hallmark_media::decode_image(&out, format, &limits)?;
                if carries(&hallmark_watermark::image::detect(&check.image, key)) {
                    return Ok((out, super::binding::signed_image(&check.image)));
                }
                tracing::debug!(
                    strength = params.strength,
                    quality,
                    "mark did not survive encoding; retrying stronger"
                );
            }
            Err(ApiError::MediaTooSmall(format!(
                "{}x{} image is too small or too flat to carry a detectable watermark",
                image.width(),
                image.height()
            )))
        }
        (MediaKind::Audio, DecodedMedia::Audio(original)) => {
            let wav_format = hallmark_media::wav_sample_format(bytes).unwrap_or_default();
            // Like images: a clip whose mark doesn't survive the output encoding under the
            // default masking margin is re-marked with a smaller margin (louder mark). A mark
            // that reads back but without margin (pilot p-value above AUDIO_SIGN_MARGIN_PILOT_P) is also
            // re-marked: it would not survive the first lossy transcode. If no attempt reaches
            // the margin, the first one that reads back at all is shipped.
            let mut readable: Option<(Vec<u8>, Option<String>)> = None;
            for params in audio_attempts() {
                let mut clip = original.clone();
                hallmark_watermark::audio::embed(
                    &mut clip.channels,
                    clip.sample_rate,
                    key,
                    payload,
                    &params,
                )
                .map_err(too_small)?;
                let out = match out_format {
                    MediaFormat::Mp3 => {
                        hallmark_media::encode_mp3(&clip, state.settings.signing.mp3_kbps)?
                    }
                    MediaFormat::M4a => hallmark_media::encode_m4a(
                        &clip,
                        state.settings.signing.aac_kbps,
                        &state.settings.signing.ffmpeg,
                    )?,
                    // WAV keeps the input's sample format (24-bit stays 24-bit, float stays
                    // float); anything else is written as 16-bit.
                    _ => hallmark_media::encode_wav_as(&clip, wav_format)?,
                };
                let check = hallmark_media::decode_audio(&out, out_format, &limits)?;
                let read =
                    hallmark_watermark::audio::detect(&check.channels, check.sample_rate, key);
                if carries(&read) {
                    let fingerprint = Some(super::binding::signed_audio(&check));
                    let margin =
                        hallmark_watermark::audio::decoded_p_value(AUDIO_SIGN_MARGIN_PILOT_P);
                    if read.p_value <= margin {
                        return Ok((out, fingerprint));
                    }
                    readable.get_or_insert((out, fingerprint));
                }
                tracing::debug!(
                    mask_db = params.mask_db,
                    p_value = read.p_value,
                    "audio mark not read back with margin; retrying with a smaller masking margin"
                );
            }
            if let Some(shipped) = readable {
                return Ok(shipped);
            }
            Err(ApiError::MediaTooSmall(format!(
                "{:.1} s clip could not carry a detectable watermark (too quiet, too short, or too \
                 narrow-band: the mark lives in the 500-3000 Hz band's spectral detail, which a \
                 pure tone or sweep lacks)",
                original.duration_seconds()
            )))
        }
        _ => Err(ApiError::UnsupportedMedia(format!(
            "{} cannot be signed as decoded",
            format.mime()
        ))),
    }
}
