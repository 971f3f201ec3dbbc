//! Shared set-up of Hallmark's fuzz targets (docs/FUZZING.md).

use hallmark_audit::{NoteSigner, NoteVerifier};
use hallmark_media::Limits;

/// The limits the service decodes uploads with by default: `api/hallmark.default.toml`
/// (`server.max_upload_bytes`, `[limits]`), as `Settings::media_limits` builds them.
pub fn service_limits() -> Limits {
    Limits {
        max_bytes: 64 * 1024 * 1024,
        max_pixels: 50_000_000,
        max_dimension: 20_000,
        max_audio_seconds: 600.0,
        max_channels: 8,
    }
}

/// Key name (and checkpoint origin) of the fixed log key the audit seeds are signed with.
pub const LOG_NAME: &str = "fuzz.hallmark.local/audit";

/// Ed25519 seed of that key: 32 bytes of 0x07 (`fuzz/make-seeds.sh` signs with the same).
pub const LOG_SEED: [u8; 32] = [7; 32];

/// Verifier of the fixed log key, so mutations of validly signed seeds reach the code
/// behind signature checks (checkpoint parsing, inclusion proofs).
pub fn log_verifier() -> NoteVerifier {
    match NoteSigner::from_seed(LOG_NAME, LOG_SEED) {
        Ok(s) => s.verifier(),
        Err(e) => unreachable!("fixed fuzz key: {e}"),
    }
}

/// Panics that Hallmark's own code catches (`decode_image`/`decode_audio` wrap third-party
/// decoders in `catch_unwind` and answer 422 `corrupt_media`) are what production does, not
/// crashes: keep them quiet. libFuzzer still aborts on any panic that escapes the target.
pub fn quiet_caught_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

/// A 16×12 baseline JPEG (`seeds/media_image/baseline.jpg`): the asset a fuzzed standalone
/// manifest store is validated against.
pub const SMALL_JPEG: &[u8] = include_bytes!("../seeds/media_image/baseline.jpg");

/// Parses a multipart upload as api/src/routes/upload.rs `read_upload_inner` does (boundary
/// from `content_type`, the closing-boundary check on the buffered body, actix-multipart over
/// the body as one chunk, every field read to its end) and returns each field's name and
/// length.
///
/// # Errors
/// The message of whichever step refused the input.
pub fn read_form(content_type: &str, body: &[u8]) -> Result<Vec<(String, usize)>, String> {
    use actix_web::http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
    use futures_util::StreamExt as _;
    let lower = content_type.to_ascii_lowercase();
    if !lower.starts_with("multipart/") {
        return Err("not multipart".into());
    }
    let boundary = lower
        .find("boundary=")
        .and_then(|i| content_type.get(i + "boundary=".len()..))
        .and_then(|b| b.split(';').next())
        .map(|b| b.trim().trim_matches('"').to_owned())
        .ok_or("no boundary")?;
    let closing = format!("--{boundary}--");
    if boundary.is_empty() || !body.windows(closing.len()).any(|w| w == closing.as_bytes()) {
        return Err("missing the closing boundary".into());
    }
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(content_type).map_err(|e| e.to_string())?;
    headers.insert(CONTENT_TYPE, value);
    let stream = futures_util::stream::iter([Ok::<_, actix_web::error::PayloadError>(
        actix_web::web::Bytes::copy_from_slice(body),
    )]);
    futures_executor::block_on(async {
        let mut form = actix_multipart::Multipart::new(&headers, stream);
        let mut fields = Vec::new();
        while let Some(field) = form.next().await {
            let mut field = field.map_err(|e| e.to_string())?;
            let name = field.name().unwrap_or_default().to_owned();
            let mut len = 0usize;
            while let Some(chunk) = field.next().await {
                len += chunk.map_err(|e| e.to_string())?.len();
            }
            fields.push((name, len));
        }
        Ok(fields)
    })
}
