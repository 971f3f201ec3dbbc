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
