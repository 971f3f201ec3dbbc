#![allow(clippy::unwrap_used, clippy::expect_used)]

use image::{DynamicImage, GrayImage, Luma, RgbImage};

use super::*;
use crate::WatermarkKey;

/// A photo-like test image: random smooth blobs and edges at several scales (seeded).
fn scene(w: u32, h: u32, seed: u64) -> RgbImage {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let blobs: Vec<[f64; 5]> = (0..60)
        .map(|_| {
            [
                rnd() * f64::from(w),
                rnd() * f64::from(h),
                8.0 + rnd() * f64::from(w) / 6.0,
                rnd() * 160.0 - 80.0,
                rnd(),
            ]
        })
        .collect();
    RgbImage::from_fn(w, h, |x, y| {
        let (xf, yf) = (f64::from(x), f64::from(y));
        let mut v = 110.0;
        for b in &blobs {
            let d2 = ((xf - b[0]).powi(2) + (yf - b[1]).powi(2)) / (b[2] * b[2]);
            v += if b[4] < 0.5 {
                b[3] * (-d2).exp()
            } else if d2 < 1.0 {
                b[3] * 0.5
            } else {
                0.0
            };
        }
        let n = ((xf * 0.9 + yf * 1.7).sin() * 6.0) + ((xf * 0.31 - yf * 0.23).cos() * 5.0);
        let l = (v + n).clamp(0.0, 255.0) as u8;
        image::Rgb([l, l.saturating_add(10), l.saturating_sub(10)])
    })
}

/// Rotation by `deg` about the centre, same canvas, bilinear, grey outside.
fn rotate(img: &RgbImage, deg: f64) -> RgbImage {
    let (w, h) = img.dimensions();
    let (s, c) = deg.to_radians().sin_cos();
    let (cx, cy) = (f64::from(w - 1) / 2.0, f64::from(h - 1) / 2.0);
    let g = DynamicImage::ImageRgb8(img.clone()).to_luma8();
    let out = GrayImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (f64::from(x) - cx, f64::from(y) - cy);
        // Inverse map: output p = R(θ)·q  ⇒  q = R(−θ)·p.
        let qx = c * dx + s * dy + cx;
        let qy = -s * dx + c * dy + cy;
        if qx < 0.0 || qy < 0.0 || qx > f64::from(w - 1) || qy > f64::from(h - 1) {
            return Luma([128]);
        }
        let (x0, y0) = (qx.floor() as u32, qy.floor() as u32);
        let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
        let (fx, fy) = (qx - f64::from(x0), qy - f64::from(y0));
        let p = |x: u32, y: u32| f64::from(g.get_pixel(x, y)[0]);
        let v = (p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx) * (1.0 - fy)
            + (p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx) * fy;
        Luma([v.round() as u8])
    });
    DynamicImage::ImageLuma8(out).to_rgb8()
}

fn fp_of(img: &RgbImage) -> ImageFingerprint {
    fingerprint(&DynamicImage::ImageRgb8(img.clone())).unwrap()
}

#[test]
fn fingerprint_string_round_trips_and_rejects_malformed_input() {
    let f = fp_of(&scene(300, 200, 1)).with_geometry(Some(0.75), Some(-1.5));
    assert_eq!(f.thumb_size(), (128, 85));
    let s = f.to_string();
    assert!(
        s.starts_with("i1:300:200:0.750000:-1.5000:128:85:"),
        "{}",
        &s[..40]
    );
    let back: ImageFingerprint = s.parse().unwrap();
    assert_eq!(back, f);
    for bad in [
        "",
        "i2:300:200:1:0:128:85:AAAA",
        "i1:300:200:1:0:128:85:AAAA",
        "i1:300:200:0:0:128:85:AAAA",
        "i1:x:200:1:0:128:85:AAAA",
        &s.replacen("i1:300", "i1:100", 1),
        &format!("{s}:extra"),
    ] {
        assert!(bad.parse::<ImageFingerprint>().is_err(), "{bad:.40}");
    }
}

#[test]
fn an_image_matches_itself_and_a_re_encoded_copy() {
    let img = scene(400, 300, 2);
    let f = fp_of(&img);
    let c = compare(&f, &f);
    assert!(c.matches && c.distance < 0.01, "{c:?}");
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 50)
        .encode_image(&img)
        .unwrap();
    let back = image::load_from_memory(&jpeg).unwrap().to_rgb8();
    let c = compare(&f, &fp_of(&back));
    assert!(c.matches && c.distance < 0.1, "{c:?}");
}

#[test]
fn a_crop_matches_the_region_it_came_from() {
    let img = scene(600, 450, 3);
    let f = fp_of(&img);
    // 50 % of the area at an off-centre position, then downscaled 0.75×.
    let crop = image::imageops::crop_imm(&img, 150, 40, 424, 318).to_image();
    let small = image::imageops::resize(&crop, 318, 238, image::imageops::FilterType::Triangle);
    let c = compare(&f, &fp_of(&small).with_geometry(Some(0.75), None));
    assert!(c.matches && c.distance < 0.2, "{c:?}");
    // Without the scale the watermark measured, the crop is compared at the wrong size.
    let wrong = compare(&f, &fp_of(&small));
    assert!(wrong.distance > c.distance + 0.2, "{wrong:?} vs {c:?}");
}

#[test]
fn different_content_does_not_match_at_any_geometry() {
    let f = fp_of(&scene(512, 384, 4));
    let other = fp_of(&scene(512, 384, 5));
    for (s, r) in [(1.0, 0.0), (0.5, 0.0), (1.5, 2.0), (0.75, -2.0)] {
        let c = compare(&f, &other.clone().with_geometry(Some(s), Some(r)));
        assert!(!c.matches && c.distance > 0.6, "scale {s} rot {r}: {c:?}");
    }
}

#[test]
fn too_little_overlap_is_not_a_match() {
    let img = scene(2048, 1536, 6);
    let f = fp_of(&img);
    // A 160 px crop of a 2048 px original covers 10×10 thumbnail pixels: too little to decide.
    let tiny = image::imageops::crop_imm(&img, 900, 700, 160, 160).to_image();
    let c = compare(&f, &fp_of(&tiny));
    assert_eq!(c.distance, 1.0);
    assert!(!c.matches);
}

#[test]
fn flat_content_does_not_match_textured_content() {
    let f = fp_of(&scene(400, 300, 7));
    let flat = RgbImage::from_pixel(400, 300, image::Rgb([120, 120, 120]));
    let c = compare(&f, &fp_of(&flat));
    assert!(!c.matches, "{c:?}");
}

/// The geometry comes from the watermark's synchronisation: a signed image scaled 0.6× and
/// rotated 2° matches with the scale and rotation `detect` reports (same sign convention),
/// and not with the opposite rotation.
#[test]
fn geometry_reported_by_detection_aligns_the_candidate() {
    let key = WatermarkKey::from_secret(b"fingerprint-geometry-test-key").unwrap();
    let img = scene(640, 480, 8);
    let marked = crate::image::embed(&DynamicImage::ImageRgb8(img), &key, 77, &Default::default())
        .unwrap()
        .to_rgb8();
    let f = fp_of(&marked);
    let small = image::imageops::resize(&marked, 384, 288, image::imageops::FilterType::Triangle);
    let attacked = rotate(&small, 2.0);
    let d = crate::image::detect(&DynamicImage::ImageRgb8(attacked.clone()), &key);
    assert_eq!(d.payload, Some(77));
    let rot = d.rotation_deg.unwrap();
    assert!(
        (d.scale.unwrap() - 0.6).abs() < 0.02 && (rot.abs() - 2.0).abs() < 0.3,
        "{d:?}"
    );
    let good = compare(&f, &fp_of(&attacked).with_geometry(d.scale, d.rotation_deg));
    let flipped = compare(&f, &fp_of(&attacked).with_geometry(d.scale, Some(-rot)));
    assert!(good.matches, "{good:?}");
    assert!(good.distance < flipped.distance, "{good:?} vs {flipped:?}");
}
