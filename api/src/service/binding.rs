//! Content binding (watermark trust): the content fingerprint stored at sign time, the
//! candidate's computed next to watermark detection, and their comparison whenever the mark
//! names an asset. The fingerprints themselves live in `hallmark_watermark::fingerprint`.

use hallmark_media::AudioClip;
use hallmark_watermark::fingerprint::{self, audio, image as img_fp};
use hallmark_watermark::Detection;

use crate::report::{ContentMatch, ContentMatchStatus};

/// Fingerprint of a signed image, as stored with the asset. `None` only for colour types the
/// watermark does not read (sign refuses those first).
pub fn signed_image(img: &image::DynamicImage) -> Option<String> {
    let k = hallmark_watermark::image::mark_scale(img.width() as usize, img.height() as usize);
    img_fp::fingerprint(img)
        .ok()
        .map(|f| f.with_geometry(Some(k), None).to_string())
}

/// Fingerprint of a signed clip, as stored with the asset.
pub fn signed_audio(clip: &AudioClip) -> String {
    audio::fingerprint(&clip.channels, clip.sample_rate).to_string()
}

/// The candidate's fingerprint, with the geometry the watermark's synchronisation measured;
/// computed only when the mark was detected (the only case where it is compared).
pub fn candidate_image(img: &image::DynamicImage, d: &Detection) -> Option<String> {
    if !d.detected {
        return None;
    }
    img_fp::fingerprint(img)
        .ok()
        .map(|f| f.with_geometry(d.scale, d.rotation_deg).to_string())
}

/// See [`candidate_image`]; audio uses the time-scale factor of the speed search.
pub fn candidate_audio(clip: &AudioClip, d: &Detection) -> Option<String> {
    d.detected
        .then(|| audio::candidate(&clip.channels, clip.sample_rate, d.scale).to_string())
}

/// The candidate's fingerprint at the signed geometry (scale 1, no rotation, no speed change),
/// for an asset named without a detected mark (a soft binding query's hint).
pub fn candidate_unsynchronised(d: &super::verify::Decoded) -> Option<String> {
    match d {
        // At the signed size, the candidate's mark scale is the signed image's.
        super::verify::Decoded::Image(i) => signed_image(i),
        super::verify::Decoded::Audio(a) => {
            Some(audio::candidate(&a.channels, a.sample_rate, None).to_string())
        }
    }
}

/// Compares the asset's stored fingerprint with the candidate's. No stored fingerprint (an
/// asset signed before content binding) → `unknown`; a candidate that could not be
/// fingerprinted, or a stored one that does not parse, can't confirm the binding → `mismatch`
/// (a binding that can't be confirmed must not attribute).
pub fn check(stored: Option<&str>, candidate: Option<&str>) -> ContentMatch {
    let Some(stored) = stored else {
        return ContentMatch {
            status: ContentMatchStatus::Unknown,
            distance: None,
            threshold: None,
        };
    };
    match candidate.map(|c| fingerprint::compare_encoded(stored, c)) {
        Some(Ok(c)) => ContentMatch {
            status: if c.matches {
                ContentMatchStatus::Match
            } else {
                ContentMatchStatus::Mismatch
            },
            distance: Some((c.distance * 1e4).round() / 1e4),
            threshold: Some(c.threshold),
        },
        other => {
            if let Some(Err(e)) = other {
                tracing::warn!(error = %e, "content fingerprints could not be compared");
            }
            ContentMatch {
                status: ContentMatchStatus::Mismatch,
                distance: None,
                threshold: None,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unknown_without_a_stored_fingerprint_and_mismatch_when_unreadable() {
        assert_eq!(
            check(None, Some("i1:x")).status,
            ContentMatchStatus::Unknown
        );
        assert_eq!(
            check(Some("i1:x"), None).status,
            ContentMatchStatus::Mismatch
        );
        assert_eq!(
            check(Some("i1:x"), Some("i1:y")).status,
            ContentMatchStatus::Mismatch
        );
        let img = image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(200, 150, |x, y| {
            image::Luma([((x * 7 + y * 13) % 251) as u8 ^ ((x / 9 + y / 5) as u8)])
        }));
        let fp = signed_image(&img).unwrap();
        let same = check(Some(&fp), Some(&fp));
        assert_eq!(same.status, ContentMatchStatus::Match);
        assert!(same.distance.unwrap() < 0.01, "{same:?}");
        let clip = AudioClip {
            sample_rate: 8000,
            channels: vec![vec![0.0; 8000]],
        };
        // An image fingerprint against an audio one: not comparable, never a match.
        let a = signed_audio(&clip);
        assert_eq!(
            check(Some(&fp), Some(&a)).status,
            ContentMatchStatus::Mismatch
        );
    }
}
