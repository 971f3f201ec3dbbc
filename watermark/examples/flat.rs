//! Flat-area check of the image mark: in 16×16 blocks whose original luma spans
//! at most 2 code values ("flat"), the fraction of pixels whose 8-bit RGB changed
//! and the largest |change|. Inputs: a synthetic 512×512 image (left half exactly
//! flat at 128, right half a smooth horizontal ramp 60→190, 8-bit rounded) and any
//! image files given (long side reduced to ≤ 1280 px like the harness).
//! `flat [--floor F] [files…]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]
use hallmark_watermark::{image as wm, WatermarkKey};
use image::{DynamicImage, RgbImage};

fn check(name: &str, img: &RgbImage, params: &wm::ImageEmbedParams, key: &WatermarkKey) {
    let m = wm::embed(
        &DynamicImage::ImageRgb8(img.clone()),
        key,
        0x0123_4567_89AB_CDEF,
        params,
    )
    .expect("embed")
    .to_rgb8();
    let (w, h) = img.dimensions();
    let luma = |p: &image::Rgb<u8>| {
        0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])
    };
    let (mut flat_px, mut changed, mut maxd, mut all_changed) = (0usize, 0usize, 0i32, 0usize);
    for by in 0..h / 16 {
        for bx in 0..w / 16 {
            let (mut lo, mut hi) = (f32::MAX, f32::MIN);
            for y in by * 16..by * 16 + 16 {
                for x in bx * 16..bx * 16 + 16 {
                    let l = luma(img.get_pixel(x, y));
                    lo = lo.min(l);
                    hi = hi.max(l);
                }
            }
            let flat = hi - lo <= 4.0;
            for y in by * 16..by * 16 + 16 {
                for x in bx * 16..bx * 16 + 16 {
                    let (a, b) = (img.get_pixel(x, y), m.get_pixel(x, y));
                    let d = (0..3)
                        .map(|c| (i32::from(a[c]) - i32::from(b[c])).abs())
                        .max()
                        .unwrap_or(0);
                    if d > 0 {
                        all_changed += 1;
                    }
                    if flat {
                        flat_px += 1;
                        if d > 0 {
                            changed += 1;
                            maxd = maxd.max(d);
                        }
                    }
                }
            }
        }
    }
    println!(
        "{name} {w}x{h} floor={:.3}: flat-block pixels {flat_px} ({:.1}% of image), changed {:.2}%, max |d| {maxd}; all pixels changed {:.1}%",
        params.flat_floor,
        100.0 * flat_px as f64 / f64::from(w * h),
        100.0 * changed as f64 / flat_px.max(1) as f64,
        100.0 * all_changed as f64 / f64::from(w * h)
    );
}

fn main() {
    let mut params = wm::ImageEmbedParams::default();
    let mut files = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == "--floor" {
            params.flat_floor = it.next().and_then(|v| v.parse().ok()).expect("--floor F");
        } else {
            files.push(a);
        }
    }
    let key = WatermarkKey::from_secret(b"hallmark-bench-secret-0001").expect("key");
    let synth = RgbImage::from_fn(512, 512, |x, _| {
        let v = if x < 256 {
            128.0
        } else {
            60.0 + 130.0 * f64::from(x - 256) / 255.0
        };
        let v = v.round() as u8;
        image::Rgb([v, v, v])
    });
    check("synthetic flat+ramp", &synth, &params, &key);
    for f in files {
        let Ok(img) = image::open(&f) else { continue };
        let img = if img.width().max(img.height()) > 1280 {
            img.resize(1280, 1280, image::imageops::FilterType::Lanczos3)
        } else {
            img
        };
        check(&f, &img.to_rgb8(), &params, &key);
    }
}
