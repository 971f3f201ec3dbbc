//! Flat-area check of the image mark: in 16×16 blocks whose original luma spans
//! at most 2 code values ("flat"), the fraction of pixels whose 8-bit RGB changed
//! and the largest |change|. Inputs: a synthetic 512×512 image (left half exactly
//! flat at 128, right half a smooth horizontal ramp 60→190, 8-bit rounded) and any
//! image files given (long side reduced to ≤ 1280 px like the harness).
//! Also, over the flat-block pixels, the RMS luma change of the mark against the
//! RMS of the host's own fine grain there (luma − its 3×3 mean): a ratio below 1
//! means the mark is weaker than the noise already in those areas.
//! `flat [--cap C] [--dump DIR] [files…]` (`--dump`: writes each marked image and its (resized) original as PNG).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]
use hallmark_watermark::{image as wm, WatermarkKey};
use image::{DynamicImage, RgbImage};

fn check(
    name: &str,
    img: &RgbImage,
    params: &wm::ImageEmbedParams,
    key: &WatermarkKey,
    dump: Option<&str>,
) {
    let m = wm::embed(
        &DynamicImage::ImageRgb8(img.clone()),
        key,
        0x0123_4567_89AB_CDEF,
        params,
    )
    .expect("embed")
    .to_rgb8();
    if let Some(dir) = dump {
        let stem = std::path::Path::new(name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        m.save(std::path::Path::new(dir).join(format!("{stem}.marked.png")))
            .expect("write marked image");
        img.save(std::path::Path::new(dir).join(format!("{stem}.original.png")))
            .expect("write original image");
    }
    let (w, h) = img.dimensions();
    let luma = |p: &image::Rgb<u8>| {
        0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])
    };
    let (mut flat_px, mut changed, mut maxd, mut all_changed) = (0usize, 0usize, 0i32, 0usize);
    let (mut mark_ss, mut grain_ss) = (0f64, 0f64);
    let grain = |x: u32, y: u32| {
        let (x0, x1, y0, y1) = (
            x.saturating_sub(1),
            (x + 1).min(w - 1),
            y.saturating_sub(1),
            (y + 1).min(h - 1),
        );
        let (mut s, mut n) = (0f32, 0f32);
        for yy in y0..=y1 {
            for xx in x0..=x1 {
                s += luma(img.get_pixel(xx, yy));
                n += 1.0;
            }
        }
        luma(img.get_pixel(x, y)) - s / n
    };
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
                        mark_ss += f64::from(luma(b) - luma(a)).powi(2);
                        grain_ss += f64::from(grain(x, y)).powi(2);
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
        "{name} {w}x{h} grain_cap={:.2}: flat-block pixels {flat_px} ({:.1}% of image), changed {:.2}%, max |d| {maxd}, mark RMS {:.3} vs host grain RMS {:.3} (ratio {:.2}); all pixels changed {:.1}%",
        params.grain_cap,
        100.0 * flat_px as f64 / f64::from(w * h),
        100.0 * changed as f64 / flat_px.max(1) as f64,
        (mark_ss / flat_px.max(1) as f64).sqrt(),
        (grain_ss / flat_px.max(1) as f64).sqrt(),
        (mark_ss / grain_ss.max(1e-12)).sqrt(),
        100.0 * all_changed as f64 / f64::from(w * h)
    );
}

fn main() {
    let mut params = wm::ImageEmbedParams::default();
    let mut files = Vec::new();
    let mut dump = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == "--dump" {
            dump = Some(it.next().expect("--dump DIR"));
        } else if a == "--cap" {
            params.grain_cap = it.next().and_then(|v| v.parse().ok()).expect("--cap C");
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
    check(
        "synthetic flat+ramp",
        &synth,
        &params,
        &key,
        dump.as_deref(),
    );
    for f in files {
        let Ok(img) = image::open(&f) else { continue };
        let img = if img.width().max(img.height()) > 1280 {
            img.resize(1280, 1280, image::imageops::FilterType::Lanczos3)
        } else {
            img
        };
        check(&f, &img.to_rgb8(), &params, &key, dump.as_deref());
    }
}
