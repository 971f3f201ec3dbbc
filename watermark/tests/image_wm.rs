#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Image watermark tests on deterministic synthetic "photos".

use ::image::{DynamicImage, ImageBuffer, Rgb, Rgba};
use hallmark_watermark::image::{detect, embed, embed_replacing, ImageEmbedParams};
use hallmark_watermark::{WatermarkError, WatermarkKey, FALSE_POSITIVE_RATE};

const PAYLOAD: u64 = 0xC0FF_EE00_1234_5678;

fn key() -> WatermarkKey {
    WatermarkKey::from_secret(b"test-secret-0123456789").unwrap()
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32) / (1u64 << 24) as f32
    }
}

/// Smooth gradients + a textured region + a flat sky + mild noise.
fn photo(w: u32, h: u32, seed: u64) -> ImageBuffer<Rgb<u8>, Vec<u8>> {
    let mut rng = Lcg(seed);
    let fs = seed as f32 * 0.37;
    ImageBuffer::from_fn(w, h, |x, y| {
        let (xf, yf) = (x as f32 / w as f32, y as f32 / h as f32);
        let base = 60.0 + 120.0 * xf + 40.0 * (6.0 * yf + fs).sin();
        let tex = if yf > 0.4 {
            25.0 * ((x as f32 * 0.9 + fs).sin() * (y as f32 * 0.7).cos())
                + 18.0 * (rng.next() - 0.5)
        } else {
            2.0 * (rng.next() - 0.5)
        };
        let v = base + tex;
        Rgb([
            (v * 1.05).clamp(0.0, 255.0) as u8,
            v.clamp(0.0, 255.0) as u8,
            (v * 0.85 + 20.0).clamp(0.0, 255.0) as u8,
        ])
    })
}

fn psnr(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let mse: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&p, &q)| (f64::from(p) - f64::from(q)).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    10.0 * (255.0f64.powi(2) / mse).log10()
}

fn jpeg(img: &DynamicImage, q: u8) -> DynamicImage {
    let mut buf = Vec::new();
    let enc = ::image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, q);
    img.to_rgb8().write_with_encoder(enc).unwrap();
    ::image::load_from_memory(&buf).unwrap()
}

#[test]
fn round_trip_exact_payload_and_psnr() {
    let img = DynamicImage::ImageRgb8(photo(768, 512, 1));
    let marked = embed(&img, &key(), PAYLOAD, &ImageEmbedParams::default()).unwrap();
    assert_eq!(marked.color(), img.color());
    assert_eq!((marked.width(), marked.height()), (768, 512));
    let p = psnr(&img, &marked);
    assert!(p >= 40.0, "psnr {p}");
    let d = detect(&marked, &key());
    assert!(d.detected, "{d:?}");
    assert_eq!(d.payload, Some(PAYLOAD));
    assert!(d.p_value < FALSE_POSITIVE_RATE);
    assert!(d.score > 8.0, "{d:?}");
    assert!(d.bit_agreement.unwrap() > 0.95);
    assert!(!d.too_small && d.ranges.is_empty());
}

#[test]
fn survives_jpeg_q90_and_q75() {
    let img = DynamicImage::ImageRgb8(photo(768, 512, 2));
    let marked = embed(&img, &key(), PAYLOAD, &ImageEmbedParams::default()).unwrap();
    for q in [90u8, 75] {
        let d = detect(&jpeg(&marked, q), &key());
        assert!(d.detected, "q{q}: {d:?}");
        assert_eq!(d.payload, Some(PAYLOAD), "q{q}");
    }
    // lossless PNG round trip
    let mut buf = std::io::Cursor::new(Vec::new());
    marked
        .write_to(&mut buf, ::image::ImageFormat::Png)
        .unwrap();
    let back = ::image::load_from_memory(buf.get_ref()).unwrap();
    assert_eq!(detect(&back, &key()).payload, Some(PAYLOAD));
}

/// Scaling (both ways, with the `image` crate's resamplers), crop + scale, and a small
/// rotation (nearest-neighbour about the centre) are undone by the lattice sync.
#[test]
fn survives_rescaling_crop_and_rotation() {
    use ::image::imageops::{self, FilterType};
    let img = DynamicImage::ImageRgb8(photo(768, 640, 11));
    let marked = embed(&img, &key(), PAYLOAD, &ImageEmbedParams::default()).unwrap();
    let rgb = marked.to_rgb8();
    let resized = |s: f64, f: FilterType| {
        let (w, h) = ((768.0 * s).round() as u32, (640.0 * s).round() as u32);
        DynamicImage::ImageRgb8(imageops::resize(&rgb, w, h, f))
    };
    for (name, att) in [
        ("0.6x", resized(0.6, FilterType::Triangle)),
        ("1.37x", resized(1.37, FilterType::CatmullRom)),
        (
            "crop+0.8x",
            DynamicImage::ImageRgb8(imageops::resize(
                &imageops::crop_imm(&rgb, 97, 61, 560, 500).to_image(),
                448,
                400,
                FilterType::Lanczos3,
            )),
        ),
    ] {
        let d = detect(&att, &key());
        assert!(d.detected, "{name}: {d:?}");
        assert_eq!(d.payload, Some(PAYLOAD), "{name}");
    }
    // 1.5° rotation about the centre.
    let (w, h) = (rgb.width(), rgb.height());
    let (c, s) = (1.5f64.to_radians().cos(), 1.5f64.to_radians().sin());
    let rot = ::image::ImageBuffer::from_fn(w, h, |x, y| {
        let (dx, dy) = (f64::from(x) - 384.0, f64::from(y) - 320.0);
        let sx = (c * dx + s * dy + 384.0)
            .round()
            .clamp(0.0, f64::from(w - 1)) as u32;
        let sy = (-s * dx + c * dy + 320.0)
            .round()
            .clamp(0.0, f64::from(h - 1)) as u32;
        *rgb.get_pixel(sx, sy)
    });
    let d = detect(&DynamicImage::ImageRgb8(rot), &key());
    assert!(d.detected, "rotation: {d:?}");
    assert_eq!(d.payload, Some(PAYLOAD));
    assert!((d.rotation_deg.unwrap().abs() - 1.5).abs() < 0.2, "{d:?}");
}

#[test]
fn wrong_key_and_clean_not_detected() {
    let wrong = WatermarkKey::from_secret(b"another-secret-0123456789").unwrap();
    for (seed, (w, h)) in [
        (3u64, (640u32, 480u32)),
        (4, (512, 512)),
        (5, (900, 300)),
        (6, (1024, 768)),
    ] {
        let img = DynamicImage::ImageRgb8(photo(w, h, seed));
        let clean = detect(&img, &key());
        assert!(!clean.detected && clean.payload.is_none());
        assert!(clean.p_value >= 1e-3, "seed {seed}: {clean:?}");
        let marked = embed(&img, &key(), PAYLOAD, &ImageEmbedParams::default()).unwrap();
        let d = detect(&marked, &wrong);
        assert!(!d.detected && d.payload.is_none());
        assert!(d.p_value >= 1e-3, "seed {seed} wrong key: {d:?}");
        // clean JPEG too (block grid must not fake a peak)
        assert!(detect(&jpeg(&img, 75), &key()).p_value >= 1e-3);
    }
}

#[test]
fn bit_depths_and_alpha() {
    let rgb = photo(512, 384, 7);
    // RGBA8 with varying alpha
    let rgba: ImageBuffer<Rgba<u8>, Vec<u8>> = ImageBuffer::from_fn(512, 384, |x, y| {
        let p = rgb.get_pixel(x, y);
        Rgba([p[0], p[1], p[2], ((x * 7 + y * 3) % 256) as u8])
    });
    let img = DynamicImage::ImageRgba8(rgba.clone());
    let marked = embed(&img, &key(), PAYLOAD, &ImageEmbedParams::default()).unwrap();
    let m = marked.as_rgba8().unwrap();
    assert!(m.pixels().zip(rgba.pixels()).all(|(a, b)| a[3] == b[3]));
    assert_eq!(detect(&marked, &key()).payload, Some(PAYLOAD));

    // 16-bit RGB and 8-bit luma, float RGB
    let base = DynamicImage::ImageRgb8(rgb);
    for img in [
        DynamicImage::ImageRgb16(base.to_rgb16()),
        DynamicImage::ImageLuma8(base.to_luma8()),
        DynamicImage::ImageLumaA16(base.to_luma_alpha16()),
        DynamicImage::ImageRgb32F(base.to_rgb32f()),
    ] {
        let marked = embed(&img, &key(), PAYLOAD, &ImageEmbedParams::default()).unwrap();
        assert_eq!(marked.color(), img.color());
        let d = detect(&marked, &key());
        assert_eq!(d.payload, Some(PAYLOAD), "{:?}", img.color());
        // quantised to 8 bits afterwards
        let q8 = DynamicImage::ImageRgb8(marked.to_rgb8());
        assert_eq!(
            detect(&q8, &key()).payload,
            Some(PAYLOAD),
            "{:?} -> 8 bit",
            img.color()
        );
    }
}

#[test]
fn too_small() {
    let img = DynamicImage::ImageRgb8(photo(100, 300, 8));
    assert!(matches!(
        embed(&img, &key(), PAYLOAD, &ImageEmbedParams::default()),
        Err(WatermarkError::TooSmall { .. })
    ));
    let d = detect(&img, &key());
    assert!(d.too_small && !d.detected && d.p_value == 1.0);
    let empty = DynamicImage::new_rgb8(0, 0);
    assert!(detect(&empty, &key()).too_small);
}

#[test]
fn flat_areas_untouched_and_mark_still_detected() {
    // Top half: the textured synthetic photo; bottom half: an exactly flat 8-bit
    // area (one RGB value). The flat area must come out bit-identical except within
    // a few pixels of the boundary (where the texture's activity reaches it), and
    // the mark must still be detected.
    let (w, h) = (512u32, 512u32);
    let tex = photo(w, h / 2, 11);
    let img = ImageBuffer::from_fn(w, h, |x, y| {
        if y < h / 2 {
            *tex.get_pixel(x, y)
        } else {
            Rgb([140, 150, 160])
        }
    });
    let img = DynamicImage::ImageRgb8(img);
    let marked = embed(&img, &key(), PAYLOAD, &ImageEmbedParams::default()).unwrap();
    let (a, b) = (img.to_rgb8(), marked.to_rgb8());
    let mut changed_flat = 0;
    for y in h / 2 + 8..h {
        for x in 0..w {
            if a.get_pixel(x, y) != b.get_pixel(x, y) {
                changed_flat += 1;
            }
        }
    }
    assert_eq!(changed_flat, 0, "pixels changed in the flat area");
    let changed_tex = (0..h / 2 - 8)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| a.get_pixel(x, y) != b.get_pixel(x, y))
        .count();
    assert!(
        changed_tex > (w * (h / 2 - 8) / 2) as usize,
        "{changed_tex}"
    );
    let d = detect(&marked, &key());
    assert!(d.detected && d.payload == Some(PAYLOAD), "{d:?}");
}

#[test]
fn flat_floor_marks_a_smooth_gradient() {
    // A smooth diagonal gradient (no high-pass activity): the activity-masked mark
    // leaves it untouched and unreadable; with `flat_floor` it carries the payload.
    let (w, h) = (384u32, 384u32);
    let img = DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| {
        let v = (40 + (x + y) * 160 / (w + h)) as u8;
        Rgb([v, v / 2 + 60, 200 - v / 2])
    }));
    let plain = embed(&img, &key(), PAYLOAD, &ImageEmbedParams::default()).unwrap();
    assert!(!detect(&plain, &key()).detected);
    let floor = ImageEmbedParams {
        flat_floor: 1.0,
        ..ImageEmbedParams::default()
    };
    let marked = embed(&img, &key(), PAYLOAD, &floor).unwrap();
    let d = detect(&marked, &key());
    assert!(d.detected && d.payload == Some(PAYLOAD), "{d:?}");
    assert!(psnr(&img, &marked) > 45.0, "{}", psnr(&img, &marked));
    // A negative or non-finite floor is refused.
    for bad in [-1.0, f32::NAN] {
        let p = ImageEmbedParams {
            flat_floor: bad,
            ..ImageEmbedParams::default()
        };
        assert!(embed(&img, &key(), PAYLOAD, &p).is_err());
    }
}

#[test]
fn mark_on_near_flat_areas_is_weaker_than_their_grain() {
    // A smooth, slightly noisy sky (a gentle gradient plus the grain of a clean
    // photo, RMS ≈ 0.6 code values): under plain rounding the mark's ±0.5 floor
    // became ±1 steps everywhere (RMS ≈ 1, 1.4–1.5× the grain on corpus skies).
    // The change must stay below the host's own grain (luma minus its 3×3 mean).
    let (w, h) = (384u32, 384u32);
    let mut rng = Lcg(7);
    let img = ImageBuffer::from_fn(w, h, |x, y| {
        let g = (0..4).map(|_| rng.next()).sum::<f32>() - 2.0; // ≈ N(0, 1/3)
        let v = 110.0 + 20.0 * (x + y) as f32 / (w + h) as f32 + 1.1 * g;
        let v = v.round().clamp(0.0, 255.0) as u8;
        Rgb([v, v, v])
    });
    let img = DynamicImage::ImageRgb8(img);
    let marked = embed(&img, &key(), PAYLOAD, &ImageEmbedParams::default()).unwrap();
    let (a, b) = (img.to_luma8(), marked.to_luma8());
    let (mut mark_ss, mut grain_ss) = (0f64, 0f64);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let mut s = 0f64;
            for (dx, dy) in (0..3).flat_map(|i| (0..3).map(move |j| (i, j))) {
                s += f64::from(a.get_pixel(x + dx - 1, y + dy - 1)[0]);
            }
            let v = f64::from(a.get_pixel(x, y)[0]);
            grain_ss += (v - s / 9.0).powi(2);
            mark_ss += (f64::from(b.get_pixel(x, y)[0]) - v).powi(2);
        }
    }
    let ratio = (mark_ss / grain_ss).sqrt();
    assert!(ratio < 1.0, "mark RMS / grain RMS = {ratio:.2}");
    // ... yet some of the mark is there (not rounded away).
    assert!(ratio > 0.2, "mark RMS / grain RMS = {ratio:.2}");
}

/// Re-marking an image that carries the mark already (re-signing an edit of a
/// signed output): three generations, each read back with its own payload,
/// while stacking a fresh mark on the first one reads neither payload; the
/// same payload leaves the image unchanged.
#[test]
fn embed_replacing_rewrites_the_previous_payload() {
    let p = ImageEmbedParams::default();
    let (a, b, c) = (
        0x1111_2222_3333_4444,
        0x5555_6666_7777_8888,
        0x9999_AAAA_BBBB_CCCC,
    );
    let img = DynamicImage::ImageRgb8(photo(320, 240, 8));
    let first = embed(&img, &key(), a, &p).unwrap();
    assert_eq!(detect(&first, &key()).payload, Some(a));
    let stacked = detect(&embed(&first, &key(), b, &p).unwrap(), &key());
    assert!(!stacked.detected, "{stacked:?}");
    let second = embed_replacing(&first, &key(), b, a, None, &p).unwrap();
    let d = detect(&second, &key());
    assert!(d.detected && d.payload == Some(b), "{d:?}");
    let third = embed_replacing(&second, &key(), c, b, None, &p).unwrap();
    let d = detect(&third, &key());
    assert!(d.detected && d.payload == Some(c), "{d:?}");
    assert_eq!(
        embed_replacing(&third, &key(), c, c, None, &p)
            .unwrap()
            .as_bytes(),
        third.as_bytes()
    );
}

#[test]
fn large_originals_survive_platform_downscaling() {
    use hallmark_watermark::image::{mark_scale, pyramid_levels};
    assert_eq!(mark_scale(1439, 1200), 1.0);
    assert!((mark_scale(1200, 1440) - 2.0).abs() < 1e-12);
    assert!((mark_scale(1600, 2560) - 2560.0 / 720.0).abs() < 1e-12);
    assert!((mark_scale(6028, 3391) - 6028.0 / 720.0).abs() < 1e-12);
    assert_eq!(mark_scale(30_000, 100), 32.0);
    assert_eq!(pyramid_levels(999), vec![1]);
    assert_eq!(pyramid_levels(2560), vec![1, 2, 4]);
    assert_eq!(pyramid_levels(6028), vec![1, 2, 4, 8]);
    let m = mark_scale(2560, 1600);
    let orig = DynamicImage::ImageRgb8(photo(2560, 1600, 11));
    let marked = embed(&orig, &key(), PAYLOAD, &ImageEmbedParams::default()).unwrap();
    assert!(psnr(&orig, &marked) > 42.0);
    // The signed file itself: the tile is 455 px, found at a quarter size, scale ≈ m.
    let d = detect(&jpeg(&marked, 95), &key());
    assert!(d.detected && d.payload == Some(PAYLOAD), "{d:?}");
    assert!((d.scale.unwrap() / m - 1.0).abs() < 0.02, "{d:?}");
    // Fitted within 720 px (the native 128-px tile again), within 1080 px (192 px) and
    // halved (228 px), then re-encoded.
    for (w, h) in [(720, 450), (1080, 675), (1280, 800)] {
        let small = jpeg(
            &marked.resize_exact(w, h, ::image::imageops::FilterType::Lanczos3),
            80,
        );
        let d = detect(&small, &key());
        assert!(d.detected && d.payload == Some(PAYLOAD), "{w}x{h}: {d:?}");
        let expected = m * f64::from(w) / 2560.0;
        assert!((d.scale.unwrap() / expected - 1.0).abs() < 0.02, "{d:?}");
    }
    // Unmarked, and the same image under another key: never detected, at any level.
    assert!(!detect(&jpeg(&orig, 95), &key()).detected);
    let other = WatermarkKey::from_secret(b"another-secret-0123456").unwrap();
    assert!(!detect(&jpeg(&marked, 95), &other).detected);
}

/// A large file signed by an earlier version (integer mark scale `⌊long side / 1000⌋`) is
/// still detected, and re-signing it (as the sign path does: detect, then re-mark with the
/// scale found) gives a file that reads back with the new payload only.
#[test]
fn marks_of_the_earlier_large_image_scale_are_detected_and_replaced() {
    use hallmark_watermark::image::mark_scale;
    let orig = DynamicImage::ImageRgb8(photo(2400, 1500, 12));
    let old_params = ImageEmbedParams {
        mark_scale: Some(2.0),
        ..ImageEmbedParams::default()
    };
    let old = jpeg(&embed(&orig, &key(), 0xAAAA, &old_params).unwrap(), 95);
    let found = detect(&old, &key());
    assert!(found.detected && found.payload == Some(0xAAAA), "{found:?}");
    assert!((found.scale.unwrap() - 2.0).abs() < 0.04, "{found:?}");
    let small = jpeg(
        &old.resize_exact(1080, 675, ::image::imageops::FilterType::Lanczos3),
        85,
    );
    let d = detect(&small, &key());
    assert!(d.detected && d.payload == Some(0xAAAA), "{d:?}");

    let p = ImageEmbedParams::default();
    let resigned = jpeg(
        &embed_replacing(&old, &key(), 0xBBBB, 0xAAAA, found.scale, &p).unwrap(),
        95,
    );
    let d = detect(&resigned, &key());
    assert!(d.detected && d.payload == Some(0xBBBB), "{d:?}");
    let m = mark_scale(2400, 1500);
    assert!((d.scale.unwrap() / m - 1.0).abs() < 0.02, "{d:?}");
    // Invalid scales are refused, not embedded.
    let bad = ImageEmbedParams {
        mark_scale: Some(0.5),
        ..ImageEmbedParams::default()
    };
    assert!(matches!(
        embed(&orig, &key(), 1, &bad),
        Err(WatermarkError::InvalidInput(_))
    ));
}

/// A uniformly resized, uncropped copy of a mark-scaled original carries a tile of
/// `128 · L' / 720` px; the detector tests that lattice before its autocorrelation search, so
/// such a copy is read at exactly the predicted scale (a lattice found by the search is refined
/// to other values), also for a mark weaker than the default, and the unmarked original under
/// the same transform is not detected.
#[test]
fn uniformly_resized_copies_are_read_at_the_predicted_tile() {
    let orig = DynamicImage::ImageRgb8(photo(2560, 1600, 13));
    let weak = ImageEmbedParams {
        strength: 2.0,
        ..ImageEmbedParams::default()
    };
    let marked = embed(&orig, &key(), PAYLOAD, &weak).unwrap();
    for (w, h) in [(1080, 675), (1280, 800), (1920, 1200)] {
        let resize = |img: &DynamicImage| {
            jpeg(
                &img.resize_exact(w, h, ::image::imageops::FilterType::Lanczos3),
                80,
            )
        };
        let d = detect(&resize(&marked), &key());
        assert!(d.detected && d.payload == Some(PAYLOAD), "{w}x{h}: {d:?}");
        let predicted = f64::from(w) / 720.0;
        assert!(
            (d.scale.unwrap() - predicted).abs() < 1e-9,
            "{w}x{h}: {d:?}"
        );
        assert!(d.p_value < FALSE_POSITIVE_RATE);
        let clean = detect(&resize(&orig), &key());
        assert!(
            !clean.detected && clean.p_value > 1e-3,
            "{w}x{h}: {clean:?}"
        );
    }
}
