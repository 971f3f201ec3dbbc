//! Content fingerprints that bind a watermark to the content it was issued for.
//!
//! A watermark proves that *some* signed output's mark is present; it does not prove that
//! the file is that output. The mark of one signed image can be estimated by denoising and
//! added to unrelated content (the copy attack, Kutter, Voloshynovskiy & Herrigel 2000,
//! *The watermark copy attack*, SPIE 3971). The defence: store a robust perceptual
//! fingerprint of the signed output with the asset, and on every detection compare the
//! candidate's fingerprint with it (the content binding of the C2PA soft-binding work).
//!
//! * [`image`]: a 128-px luma thumbnail, compared by band-passed masked normalised
//!   cross-correlation at the best translation (Padfield 2012), after undoing the scale and
//!   rotation that the watermark's synchronisation found.
//! * [`audio`]: a Haitsma–Kalker band-energy-difference fingerprint (Haitsma & Kalker 2002),
//!   compared by bit error rate at the best time offset, after undoing the time-scale factor
//!   the watermark's speed search found.
//!
//! Both are pure functions of decoded pixels / samples, serialised as short ASCII strings
//! (`i1:…` / `a1:…`) for storage next to the asset.

pub mod audio;
pub mod image;

use serde::Serialize;

/// Outcome of comparing a candidate's fingerprint with a signed asset's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Comparison {
    /// Distance: image `1 − NCC` (0 = identical, ≥ 1 = unrelated); audio the bit error rate
    /// (0 = identical, ≈ 0.5 = unrelated).
    pub distance: f64,
    /// The largest distance that still counts as the same content.
    pub threshold: f64,
    /// `distance <= threshold` and the compared part was large enough to decide.
    pub matches: bool,
}

/// Error parsing a stored fingerprint string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed content fingerprint: {0}")]
pub struct ParseError(pub(crate) &'static str);

/// Compares a stored fingerprint with a candidate's, both in their string forms (`i1:…`
/// images: [`image::compare`]; `a1:…` audio: [`audio::compare`]).
///
/// # Errors
/// [`ParseError`] when either string is malformed or the two are of different media.
pub fn compare_encoded(stored: &str, candidate: &str) -> Result<Comparison, ParseError> {
    match (stored.get(..3), candidate.get(..3)) {
        (Some("i1:"), Some("i1:")) => Ok(image::compare(&stored.parse()?, &candidate.parse()?)),
        (Some("a1:"), Some("a1:")) => Ok(audio::compare(&stored.parse()?, &candidate.parse()?)),
        _ => Err(ParseError("not two fingerprints of the same medium")),
    }
}
