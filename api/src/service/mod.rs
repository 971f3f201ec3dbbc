//! Domain orchestration shared by the HTTP handlers and the CLI: one code path for each of
//! sign, verify and decide.

pub mod audit;
mod binding;
mod decide;
mod generate;
pub mod idempotency;
pub mod keys;
pub mod resolve;
pub mod review;
pub mod settings_events;
mod sign;
mod verifications;
mod verify;

pub use decide::{
    decide, decide_batch, list_decisions, Decided, DecisionAction, DecisionBatchRequest,
    DecisionRequest, DecisionResponse, DecisionsQuery, MAX_BATCH_DECISIONS,
};
pub use generate::{generate, generate_idempotent, GenerateBody};
pub use sign::{
    payload_bits, payload_hex, random_payload, sign, sign_idempotent, SignMetadata, SignOutput,
};
pub use verifications::{list_verifications, VerificationsQuery, BANDS, VERDICT_LABELS};
pub use verify::{analyse, verify};

use std::time::Duration;

use crate::error::ApiError;
use crate::state::AppState;
use crate::worker::{DecodedMedia, FailureKind, JobError, JobLimits};

/// A verification id as the store holds it (lowercase hyphenated UUID), from any form
/// `uuid` accepts (upper or lower case, simple, braced or `urn:uuid:`).
///
/// # Errors
/// [`ApiError::InvalidRequest`] when `id` is not a UUID (a malformed id is the caller's
/// error, not a missing record).
pub fn parse_verification_id(id: &str) -> Result<String, ApiError> {
    parse_uuid("verification", id)
}

/// An id of `what` (`verification`, `key`) as the store holds it: a lowercase hyphenated UUID.
///
/// # Errors
/// [`ApiError::InvalidRequest`] when `id` is not a UUID.
pub fn parse_uuid(what: &str, id: &str) -> Result<String, ApiError> {
    let shown: String = id.chars().take(64).collect();
    uuid::Uuid::try_parse(id.trim())
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| ApiError::InvalidRequest(format!("{what} id '{shown}' is not a UUID")))
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// RFC 3339 UTC timestamp with millisecond precision.
pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Takes a job slot, waiting up to 10 s; a saturated instance answers 503 `overloaded`.
async fn job_permit(state: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    match tokio::time::timeout(Duration::from_secs(10), state.jobs.clone().acquire_owned()).await {
        Ok(Ok(p)) => Ok(p),
        _ => Err(ApiError::Overloaded),
    }
}

/// Runs CPU-bound work off the async runtime.
async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

/// Checks and decodes an upload (sniffed as `format`) in a worker process, within the media
/// limits and the worker's memory and time limits.
///
/// # Errors
/// `UnsupportedMedia`, `MediaLimit`, `CorruptMedia` as the decoder reports them; a worker that
/// dies or overruns its limits is `CorruptMedia` (the file is hostile or broken, the server is
/// fine); `Overloaded` when every worker is busy and the queue is full.
async fn decode_upload(
    state: &AppState,
    bytes: &[u8],
    format: hallmark_media::MediaFormat,
) -> Result<DecodedMedia, ApiError> {
    let w = &state.settings.workers;
    let deadline = Duration::from_secs(w.timeout_seconds.max(1));
    let limits = JobLimits {
        memory_bytes: w.memory_limit_mb.saturating_mul(1024 * 1024),
        cpu_seconds: deadline.as_secs() + 1,
    };
    match state
        .workers
        .decode(
            bytes,
            format,
            state.settings.media_limits(),
            limits,
            deadline,
        )
        .await
    {
        Ok(Ok(d)) => Ok(d),
        Ok(Err((kind, msg))) => Err(match kind {
            FailureKind::Unsupported => ApiError::UnsupportedMedia(msg),
            FailureKind::Limit => ApiError::MediaLimit(msg),
            FailureKind::Corrupt => ApiError::CorruptMedia(msg),
        }),
        Err(JobError::WorkerFailed(m)) => Err(ApiError::CorruptMedia(format!(
            "{} could not be decoded: {m}",
            format.mime()
        ))),
        Err(e) => Err(job_error(e)),
    }
}

/// A worker pool failure other than a failed job.
fn job_error(e: JobError) -> ApiError {
    match e {
        JobError::Overloaded => ApiError::Overloaded,
        other => ApiError::internal(other),
    }
}

fn detector_error(e: hallmark_detectors::DetectorError) -> ApiError {
    match e {
        hallmark_detectors::DetectorError::Overloaded
        | hallmark_detectors::DetectorError::Timeout => ApiError::Overloaded,
        hallmark_detectors::DetectorError::InvalidInput(m) => ApiError::UnsupportedMedia(m),
        other => ApiError::internal(other),
    }
}
