//! hallmark-watermark: keyed, invisible watermarks for images and audio.
//!
//! Pure Rust over pixel / sample buffers; no I/O.
//!
//! * [`image`]: a keyed spread-spectrum pattern (Cox et al. 1997) tiled over the
//!   luma plane (self-referencing tiles, Kutter 1998) with perceptual masking by
//!   local activity. Detection estimates scale/rotation from the lattice of peaks
//!   in the autocorrelation of the high-passed luma (the mark is periodic), folds
//!   it modulo the tile in the tile's frame, finds the tile origin by whitened
//!   FFT cross-correlation with a keyed pilot, and reads the payload
//!   chips at that origin.
//! * [`audio`]: spread-transform dither modulation (Chen & Wornell 2001) of
//!   projections of short-time band log-powers (500–3000 Hz, analysed at an
//!   internal 8 kHz rate), keyed pilot symbols for synchronisation, and the
//!   payload repeated in 5 s blocks. Informed embedding: the host signal does
//!   not interfere with detection.
//!
//! Images carry a 64-bit payload ([`PAYLOAD_BITS`]) plus CRC-16 under a
//! rate-1/2, K=7 convolutional code; audio a 32-bit payload
//! ([`AUDIO_PAYLOAD_BITS`]) plus CRC-16 under a punctured rate-1/4, K=7 code. Both are
//! decoded with soft-decision Viterbi (Viterbi 1967).
//! Every pattern is derived from the [`WatermarkKey`] (HMAC-SHA256 in counter
//! mode), so a wrong key detects nothing.
//!
//! The p-value reported by detection is computed from the statistics of the
//! synchronisation search itself (image: an empirical null from the
//! correlation at all the non-peak alignments; audio: the exact null of the
//! keyed-dither pilot statistic), Šidák-corrected for the number of
//! alignments searched (images: geometric hypotheses × tile offsets), never from
//! a tuned constant.

pub mod audio;
mod code;
mod dsp;
pub mod fingerprint;
pub mod image;
mod keystream;
mod stats;
mod sync;

use ring::hmac;
use serde::Serialize;

/// Number of payload bits carried by an image mark.
pub const PAYLOAD_BITS: usize = 64;

/// Number of payload bits carried by an audio mark: [`audio::embed`] refuses
/// payloads ≥ 2^32 and detection reports the 32 bits in the low bits of the `u64`.
pub const AUDIO_PAYLOAD_BITS: usize = 32;

/// Detection threshold: an unmarked input is declared marked with probability
/// at most this (a detection additionally needs the CRC-16 to check, which
/// lowers the real false-positive rate by a further factor of ~2^-16).
pub const FALSE_POSITIVE_RATE: f64 = 1e-6;

/// Minimum length of the secret passed to [`WatermarkKey::from_secret`].
pub const MIN_SECRET_LEN: usize = 16;

/// Key material from which every keyed pattern is derived.
///
/// Holds a 32-byte master key `HMAC-SHA256(secret, "hallmark-watermark/v1/master")`;
/// patterns are then produced by HMAC-SHA256(master, label ‖ counter) in counter mode.
#[derive(Clone)]
pub struct WatermarkKey {
    master: [u8; 32],
}

impl std::fmt::Debug for WatermarkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WatermarkKey(<redacted>)")
    }
}

impl WatermarkKey {
    /// Derive a key from secret bytes.
    ///
    /// # Errors
    /// [`WatermarkError::KeyTooShort`] if `secret` is shorter than
    /// [`MIN_SECRET_LEN`] (16) bytes.
    pub fn from_secret(secret: &[u8]) -> Result<Self, WatermarkError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(WatermarkError::KeyTooShort {
                len: secret.len(),
                min: MIN_SECRET_LEN,
            });
        }
        let k = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let tag = hmac::sign(&k, b"hallmark-watermark/v1/master");
        let mut master = [0u8; 32];
        master.copy_from_slice(tag.as_ref());
        Ok(Self { master })
    }

    pub(crate) fn stream(&self, label: &str) -> keystream::KeyStream {
        keystream::KeyStream::new(&self.master, label)
    }
}

/// Result of a detection.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Detection {
    /// `p_value < FALSE_POSITIVE_RATE` and the payload decoded with a valid CRC.
    pub detected: bool,
    /// The decoded payload; only `Some` when `detected`.
    pub payload: Option<u64>,
    /// Fraction of the coded bits whose received sign agrees with the
    /// re-encoded Viterbi decision (≈0.5–0.7 on unmarked input, →1.0 on clean
    /// marked input). `None` when no decoding was attempted (too small input).
    pub bit_agreement: Option<f64>,
    /// Probability that an unmarked input scores at least `score` at the best
    /// of all synchronisation hypotheses searched (empirical-null z-score,
    /// corrected for the number of hypotheses).
    pub p_value: f64,
    /// The test statistic: z-score of the best pilot correlation against the
    /// correlations at all other searched alignments.
    pub score: f64,
    /// The input is too small to carry the payload; never detected.
    pub too_small: bool,
    /// Audio: time ranges (seconds) where the mark was found. Images: empty.
    pub ranges: Vec<TimeRange>,
    /// Images: linear scale factor of the best synchronisation hypothesis: the
    /// tile period found over 128 px, in the pixels of the input (attacked /
    /// original size × the mark's scale `k`, see `image::mark_scale`; 1 = unchanged
    /// for marks of images under 2,000 px). Audio: time-scale factor
    /// (attacked / original duration) when the mark was found by the speed
    /// search (a tempo change); `None` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Images: rotation (degrees, counter-clockwise in pixel coordinates with y down
    /// means clockwise on screen) of the best synchronisation hypothesis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_deg: Option<f64>,
    /// The payload bits (64 for images, 32 for audio) of the Viterbi decision at the best hypothesis, whether
    /// or not the CRC checks or the test passes. For evaluation (bit accuracy) only:
    /// never a verdict, and not serialised.
    #[serde(skip)]
    pub raw_bits: Option<u64>,
}

impl Detection {
    /// The decision shared by both media: detected when the statistical test passes at
    /// [`FALSE_POSITIVE_RATE`] and the decoded payload's CRC checks; the payload is only
    /// reported when detected. `ranges` is called only for a detection.
    pub(crate) fn decide(
        dec: &code::Decoded,
        p_value: f64,
        score: f64,
        ranges: impl FnOnce(u64) -> Vec<TimeRange>,
    ) -> Self {
        let payload = dec.payload.filter(|_| p_value < FALSE_POSITIVE_RATE);
        Self {
            detected: payload.is_some(),
            payload,
            bit_agreement: Some(dec.bit_agreement),
            p_value,
            score,
            too_small: false,
            ranges: payload.map(ranges).unwrap_or_default(),
            scale: None,
            rotation_deg: None,
            raw_bits: Some(dec.bits),
        }
    }

    pub(crate) fn too_small() -> Self {
        Self {
            detected: false,
            payload: None,
            bit_agreement: None,
            p_value: 1.0,
            score: 0.0,
            too_small: true,
            ranges: Vec::new(),
            scale: None,
            rotation_deg: None,
            raw_bits: None,
        }
    }
}

/// A time range in seconds from the start of the clip.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct TimeRange {
    pub start_s: f64,
    pub end_s: f64,
}

/// Errors from key derivation and embedding.
#[derive(Debug, thiserror::Error)]
pub enum WatermarkError {
    #[error("watermark secret too short: {len} bytes, need at least {min}")]
    KeyTooShort { len: usize, min: usize },
    #[error("input too small to carry the watermark: {what}")]
    TooSmall { what: String },
    #[error("unsupported color type: {0}")]
    UnsupportedColorType(String),
    #[error("unsupported sample rate {0} Hz (supported: 8000..=192000)")]
    UnsupportedSampleRate(u32),
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn key_too_short() {
        assert!(matches!(
            WatermarkKey::from_secret(b"short"),
            Err(WatermarkError::KeyTooShort { len: 5, min: 16 })
        ));
        assert!(WatermarkKey::from_secret(&[7u8; 16]).is_ok());
    }

    #[test]
    fn keys_differ() {
        let a = WatermarkKey::from_secret(b"0123456789abcdef").unwrap();
        let b = WatermarkKey::from_secret(b"0123456789abcdeg").unwrap();
        assert_ne!(a.master, b.master);
        let mut sa = a.stream("x");
        let mut sb = b.stream("x");
        let va: Vec<u64> = (0..4).map(|_| sa.next_u64()).collect();
        let vb: Vec<u64> = (0..4).map(|_| sb.next_u64()).collect();
        assert_ne!(va, vb);
    }
}
