//! Bounded image decoding and encoding through the `image` crate.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::{Limits, MediaError, MediaFormat};

/// A decoded image, upright (EXIF orientation applied).
#[derive(Debug, Clone)]
pub struct DecodedImage {
    /// Pixels in the decoder's native color type (8/16-bit, gray/RGB, with or without alpha).
    pub image: DynamicImage,
    /// Container format it was decoded from.
    pub format: MediaFormat,
    /// The file carried an EXIF orientation other than "normal", now applied to the pixels.
    pub reoriented: bool,
}

fn image_format(format: MediaFormat) -> Option<ImageFormat> {
    Some(match format {
        MediaFormat::Jpeg => ImageFormat::Jpeg,
        MediaFormat::Png => ImageFormat::Png,
        MediaFormat::Webp => ImageFormat::WebP,
        MediaFormat::Gif => ImageFormat::Gif,
        MediaFormat::Tiff => ImageFormat::Tiff,
        _ => return None,
    })
}

/// Decodes an image of the given (sniffed) format within `limits`.
///
/// Dimensions are read from the header and checked against `max_dimension` and `max_pixels`
/// before any pixel is decoded; the decoder's allocation is capped too.
///
/// # Errors
/// [`MediaError::Unsupported`] for non-image formats, [`MediaError::LimitExceeded`] when a limit
/// is exceeded, [`MediaError::Corrupt`] for truncated or invalid data.
pub fn decode_image(
    bytes: &[u8],
    format: MediaFormat,
    limits: &Limits,
) -> Result<DecodedImage, MediaError> {
    // Third-party decoders on hostile input: a panic inside them is a corrupt file.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_image_inner(bytes, format, limits)
    }))
    .unwrap_or_else(|_| {
        Err(MediaError::Corrupt {
            format: format.mime(),
            detail: "the decoder rejected the image".into(),
        })
    })
}

fn decode_image_inner(
    bytes: &[u8],
    format: MediaFormat,
    limits: &Limits,
) -> Result<DecodedImage, MediaError> {
    if bytes.len() > limits.max_bytes {
        return Err(MediaError::LimitExceeded(format!(
            "{} bytes > {} byte limit",
            bytes.len(),
            limits.max_bytes
        )));
    }
    if format == MediaFormat::Jpeg && jpeg_truncated(bytes) {
        return Err(MediaError::Corrupt {
            format: format.mime(),
            detail: "truncated JPEG: the image data ends before its EOI marker".into(),
        });
    }
    let Some(fmt) = image_format(format) else {
        return Err(MediaError::Unsupported {
            format: format.mime(),
            operation: "image decoding",
        });
    };
    let corrupt = |e: image::ImageError| match e {
        image::ImageError::Limits(l) => MediaError::LimitExceeded(l.to_string()),
        other => MediaError::Corrupt {
            format: format.mime(),
            detail: other.to_string(),
        },
    };
    let mut img_limits = image::Limits::default();
    img_limits.max_image_width = Some(limits.max_dimension);
    img_limits.max_image_height = Some(limits.max_dimension);
    // Worst case 4 channels × 32-bit float per pixel, plus headroom for the decoder.
    img_limits.max_alloc = Some(
        limits
            .max_pixels
            .saturating_mul(16)
            .saturating_add(64 << 20),
    );
    let mut reader = ImageReader::with_format(Cursor::new(bytes), fmt);
    reader.limits(img_limits);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(MediaError::Corrupt {
            format: format.mime(),
            detail: "zero-sized image".into(),
        });
    }
    if u64::from(w) * u64::from(h) > limits.max_pixels {
        return Err(MediaError::LimitExceeded(format!(
            "{w}x{h} pixels > {} pixel limit",
            limits.max_pixels
        )));
    }
    // The canvas is allocated from the declared size: a 300-byte file declaring 50 MP is refused.
    crate::containers::check_declared_pixels(bytes, format, w, h)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    let reoriented = orientation != image::metadata::Orientation::NoTransforms;
    image.apply_orientation(orientation);
    Ok(DecodedImage {
        image,
        format,
        reoriented,
    })
}

/// Whether a JPEG stops before the end of its image data. The `image` crate's decoder fills a
/// cut-off scan with grey instead of failing, which would hand a half-image to the watermark
/// detector and the detectors. Walks the marker segments (ITU-T T.81 §B.1) to the first
/// start-of-scan — skipping APPn payloads such as an EXIF thumbnail with its own EOI — and then
/// requires an EOI marker (`FF D9`) after it; inside entropy-coded data `FF` is always followed
/// by `00` or a restart marker, so the first `FF D9` there is the real end.
fn jpeg_truncated(b: &[u8]) -> bool {
    let mut i = 2; // after SOI
    loop {
        // Skip fill bytes, then read the marker.
        while i < b.len() && b[i] == 0xFF && b.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        if i + 4 > b.len() || b[i] != 0xFF {
            return true;
        }
        let marker = b[i + 1];
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        if len < 2 {
            return true;
        }
        let next = i + 2 + len;
        if marker == 0xDA {
            return !b
                .get(next..)
                .is_some_and(|scan| scan.windows(2).any(|w| w == [0xFF, 0xD9]));
        }
        i = next;
    }
}

/// Encodes `image` as `format`. JPEG uses `jpeg_quality` (1–100) and drops alpha and 16-bit
/// depth (JPEG can carry neither); PNG keeps depth and alpha; WebP is lossless (the `image`
/// crate's encoder), keeping alpha.
///
/// # Errors
/// [`MediaError::Unsupported`] for formats Hallmark does not write, [`MediaError::Encode`] when
/// the encoder fails.
pub fn encode_image(
    image: &DynamicImage,
    format: MediaFormat,
    jpeg_quality: u8,
) -> Result<Vec<u8>, MediaError> {
    let mut out = Cursor::new(Vec::new());
    let err = |e: image::ImageError| MediaError::Encode {
        format: format.mime(),
        detail: e.to_string(),
    };
    match format {
        MediaFormat::Jpeg => {
            let rgb: DynamicImage = if image.color().has_color() {
                DynamicImage::ImageRgb8(image.to_rgb8())
            } else {
                DynamicImage::ImageLuma8(image.to_luma8())
            };
            let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(
                &mut out,
                jpeg_quality.clamp(1, 100),
            );
            rgb.write_with_encoder(enc).map_err(err)?;
        }
        MediaFormat::Png => {
            let enc = image::codecs::png::PngEncoder::new(&mut out);
            image.write_with_encoder(enc).map_err(err)?;
        }
        MediaFormat::Webp => {
            let rgba: DynamicImage = if image.color().has_alpha() {
                DynamicImage::ImageRgba8(image.to_rgba8())
            } else {
                DynamicImage::ImageRgb8(image.to_rgb8())
            };
            let enc = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
            rgba.write_with_encoder(enc).map_err(err)?;
        }
        other => {
            return Err(MediaError::Unsupported {
                format: other.mime(),
                operation: "image encoding",
            })
        }
    }
    Ok(out.into_inner())
}

/// Whether `bytes` is a WebP file whose image is lossy (a `VP8 ` bitstream, RFC 9649 §2.5)
/// rather than lossless (`VP8L`, §3). Walks the RIFF chunks of the simple and the extended
/// (`VP8X`) layouts; anything else (not WebP, truncated, animated) is `false`.
pub fn webp_is_lossy(bytes: &[u8]) -> bool {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WEBP" {
        return false;
    }
    let mut at = 12usize;
    while let Some(header) = bytes.get(at..at.saturating_add(8)) {
        match &header[..4] {
            b"VP8 " => return true,
            b"VP8L" | b"ANIM" => return false,
            _ => {}
        }
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        // Chunks are padded to an even size.
        at = match at
            .checked_add(8)
            .and_then(|a| a.checked_add(size))
            .and_then(|a| a.checked_add(size & 1))
        {
            Some(next) => next,
            None => return false,
        };
    }
    false
}

/// Encodes `image` as lossy WebP with libwebp at `quality` (0–100), keeping alpha (encoded
/// losslessly in an `ALPH` chunk, as libwebp does).
///
/// # Errors
/// [`MediaError::Encode`] for an image libwebp refuses (over 16383 px a side).
pub fn encode_webp_lossy(image: &DynamicImage, quality: u8) -> Result<Vec<u8>, MediaError> {
    let (w, h) = (image.width(), image.height());
    if w > 16383 || h > 16383 {
        return Err(MediaError::Encode {
            format: MediaFormat::Webp.mime(),
            detail: format!("{w}x{h} is over WebP's 16383-pixel side"),
        });
    }
    let quality = f32::from(quality.min(100));
    let out = if image.color().has_alpha() {
        let rgba = image.to_rgba8();
        webp::Encoder::from_rgba(rgba.as_raw(), w, h).encode(quality)
    } else {
        let rgb = image.to_rgb8();
        webp::Encoder::from_rgb(rgb.as_raw(), w, h).encode(quality)
    };
    Ok(out.to_vec())
}

/// Encodes `image` in `format` the way `original` (the input it came from) was encoded: a lossy
/// WebP input gives a lossy WebP output at `quality` (a lossless one would be many times larger);
/// everything else is [`encode_image`].
///
/// # Errors
/// As [`encode_image`] and [`encode_webp_lossy`].
pub fn encode_image_like(
    image: &DynamicImage,
    format: MediaFormat,
    quality: u8,
    original: &[u8],
) -> Result<Vec<u8>, MediaError> {
    if format == MediaFormat::Webp && webp_is_lossy(original) {
        encode_webp_lossy(image, quality)
    } else {
        encode_image(image, format, quality)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use image::GenericImageView;
    #[test]
    fn lossy_webp_stays_lossy_and_lossless_stays_lossless() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(256, 192, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (y * 5 % 256) as u8,
                ((x ^ y) % 256) as u8,
            ])
        }));
        let lossy = encode_webp_lossy(&img, 80).unwrap();
        assert!(webp_is_lossy(&lossy));
        let lossless = encode_image(&img, MediaFormat::Webp, 95).unwrap();
        assert!(!webp_is_lossy(&lossless));
        assert!(
            lossy.len() < lossless.len(),
            "{} vs {}",
            lossy.len(),
            lossless.len()
        );
        let again = encode_image_like(&img, MediaFormat::Webp, 90, &lossy).unwrap();
        assert!(webp_is_lossy(&again));
        assert!(!webp_is_lossy(
            &encode_image_like(&img, MediaFormat::Webp, 90, &lossless).unwrap()
        ));
        let decoded = decode_image(&again, MediaFormat::Webp, &Default::default()).unwrap();
        assert_eq!(decoded.image.dimensions(), (256, 192));
        // With alpha: still lossy, alpha kept.
        let rgba = DynamicImage::ImageRgba8(img.to_rgba8());
        let a = encode_webp_lossy(&rgba, 80).unwrap();
        assert!(webp_is_lossy(&a));
        // Not WebP, truncated, or a chunk size past the end.
        assert!(!webp_is_lossy(b"RIFF\0\0\0\0WEBP"));
        assert!(!webp_is_lossy(&lossy[..11]));
        let mut bad = lossy[..20].to_vec();
        bad[12..16].copy_from_slice(b"VP8X");
        bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(!webp_is_lossy(&bad));
    }

    use super::*;

    #[test]
    fn round_trips_and_enforces_limits() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 5) as u8, 128])
        }));
        for f in [MediaFormat::Png, MediaFormat::Jpeg, MediaFormat::Webp] {
            let bytes = encode_image(&img, f, 95).unwrap();
            assert_eq!(crate::sniff(&bytes), Some(f));
            let d = decode_image(&bytes, f, &Limits::default()).unwrap();
            assert_eq!((d.image.width(), d.image.height()), (64, 48));
        }
        let png = encode_image(&img, MediaFormat::Png, 95).unwrap();
        let tight = Limits {
            max_pixels: 1000,
            ..Limits::default()
        };
        assert!(matches!(
            decode_image(&png, MediaFormat::Png, &tight),
            Err(MediaError::LimitExceeded(_))
        ));
        assert!(matches!(
            decode_image(&png[..png.len() / 2], MediaFormat::Png, &Limits::default()),
            Err(MediaError::Corrupt { .. })
        ));
        // A JPEG cut anywhere in its scan is refused, not decoded half grey.
        let jpg = encode_image(&img, MediaFormat::Jpeg, 90).unwrap();
        assert!(decode_image(&jpg, MediaFormat::Jpeg, &Limits::default()).is_ok());
        for cut in [jpg.len() - 2, jpg.len() * 2 / 3, 40] {
            assert!(
                matches!(
                    decode_image(&jpg[..cut], MediaFormat::Jpeg, &Limits::default()),
                    Err(MediaError::Corrupt { .. })
                ),
                "cut at {cut}"
            );
        }
        // Trailing bytes after EOI are fine.
        let mut trailing = jpg.clone();
        trailing.extend_from_slice(b"trailer");
        assert!(decode_image(&trailing, MediaFormat::Jpeg, &Limits::default()).is_ok());
    }
}
