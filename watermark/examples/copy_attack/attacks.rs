//! The image harness's attacks (same commands as `examples/bench.rs`), the platform fits,
//! and the denoisers a copy attacker estimates the mark with.

use std::path::Path;
use std::process::Command;

use image::{DynamicImage, RgbImage};

#[derive(Clone, Copy)]
pub enum Kind {
    None,
    Jpeg(u8),
    Webp(u8),
    Resize(f64),
    CropArea(f64),
    Brightness(f32),
    Contrast(f32),
    Gamma(f32),
    Noise(f32),
    Blur(f32),
    Rotate(f64),
    Screenshot,
    Combined,
    /// Fit within this many pixels (long side), then JPEG at this quality.
    Fit(u32, u8),
}

pub const ATTACKS: &[(&str, Kind)] = &[
    ("none (PNG)", Kind::None),
    ("JPEG q90", Kind::Jpeg(90)),
    ("JPEG q75", Kind::Jpeg(75)),
    ("JPEG q50", Kind::Jpeg(50)),
    ("WebP q75", Kind::Webp(75)),
    ("resize 0.5x", Kind::Resize(0.5)),
    ("resize 0.75x", Kind::Resize(0.75)),
    ("resize 1.5x", Kind::Resize(1.5)),
    ("crop 50% area", Kind::CropArea(0.5)),
    ("brightness +30%", Kind::Brightness(1.3)),
    ("brightness -30%", Kind::Brightness(0.7)),
    ("contrast +30%", Kind::Contrast(1.3)),
    ("contrast -30%", Kind::Contrast(0.7)),
    ("gamma 0.8", Kind::Gamma(0.8)),
    ("gamma 1.2", Kind::Gamma(1.2)),
    ("noise s=4/255", Kind::Noise(4.0)),
    ("blur s=1", Kind::Blur(1.0)),
    ("rotate +2deg", Kind::Rotate(2.0)),
    ("rotate -2deg", Kind::Rotate(-2.0)),
    ("screenshot chain", Kind::Screenshot),
    ("JPEG75+0.75x+crop80%", Kind::Combined),
    ("fit 1080 + JPEG q85", Kind::Fit(1080, 85)),
    ("fit 720 + JPEG q85", Kind::Fit(720, 85)),
];

/// Deterministic generator (per image and attack).
pub struct Rng(pub u64);
impl Rng {
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 11) as f64) / (1u64 << 53) as f64
    }
    pub fn gauss(&mut self) -> f64 {
        let u = self.next_f64().max(1e-300);
        let v = self.next_f64();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn magick(input: &RgbImage, args: &[&str], ext: &str, dir: &Path) -> RgbImage {
    let src = dir.join("im_in.png");
    let dst = dir.join(format!("im_out.{ext}"));
    input.save(&src).unwrap();
    let ok = Command::new("convert")
        .arg(&src)
        .args(args)
        .arg(&dst)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "convert {args:?} failed (is ImageMagick installed?)");
    image::open(&dst).unwrap().to_rgb8()
}

fn map_pixels(img: &RgbImage, f: impl Fn(f32) -> f32) -> RgbImage {
    let lut: Vec<u8> = (0..256)
        .map(|v| f(v as f32).round().clamp(0.0, 255.0) as u8)
        .collect();
    let mut out = img.clone();
    for v in out.iter_mut() {
        *v = lut[usize::from(*v)];
    }
    out
}

fn crop_random(img: &RgbImage, side: f64, rng: &mut Rng) -> RgbImage {
    let (w, h) = img.dimensions();
    let (cw, ch) = (
        (f64::from(w) * side).round() as u32,
        (f64::from(h) * side).round() as u32,
    );
    let x = (rng.next_f64() * f64::from(w - cw)).floor() as u32;
    let y = (rng.next_f64() * f64::from(h - ch)).floor() as u32;
    image::imageops::crop_imm(img, x, y, cw, ch).to_image()
}

fn gamma(img: &RgbImage, g: f32) -> RgbImage {
    map_pixels(img, |v| 255.0 * (v / 255.0).powf(g))
}

pub fn apply(kind: Kind, img: &RgbImage, dir: &Path, seed: u64) -> RgbImage {
    let mut rng = Rng(seed);
    let pct = |f: f64| format!("{}%", f * 100.0);
    match kind {
        Kind::None => img.clone(),
        Kind::Jpeg(q) => magick(img, &["-quality", &q.to_string()], "jpg", dir),
        Kind::Webp(q) => magick(img, &["-quality", &q.to_string()], "webp", dir),
        Kind::Resize(s) => magick(img, &["-resize", &pct(s)], "png", dir),
        Kind::CropArea(a) => crop_random(img, a.sqrt(), &mut rng),
        Kind::Brightness(f) => map_pixels(img, |v| v * f),
        Kind::Contrast(f) => map_pixels(img, |v| (v - 127.5) * f + 127.5),
        Kind::Gamma(g) => gamma(img, g),
        Kind::Noise(s) => {
            let mut out = img.clone();
            for v in out.iter_mut() {
                *v = (f64::from(*v) + f64::from(s) * rng.gauss())
                    .round()
                    .clamp(0.0, 255.0) as u8;
            }
            out
        }
        Kind::Blur(s) => image::imageops::blur(img, s),
        Kind::Rotate(d) => magick(img, &["-distort", "SRT", &d.to_string()], "png", dir),
        Kind::Screenshot => gamma(&magick(img, &["-resize", "80%"], "png", dir), 1.2),
        Kind::Combined => {
            let j = magick(img, &["-quality", "75"], "jpg", dir);
            let s = magick(&j, &["-resize", "75%"], "png", dir);
            crop_random(&s, 0.8, &mut rng)
        }
        Kind::Fit(side, q) => {
            let geom = format!("{side}x{side}>");
            magick(
                img,
                &["-resize", &geom, "-quality", &q.to_string()],
                "jpg",
                dir,
            )
        }
    }
}

pub fn load(path: &str, max_side: Option<u32>) -> Option<RgbImage> {
    let img = image::open(path).ok()?.to_rgb8();
    if img.width() < 128 || img.height() < 128 {
        return None;
    }
    Some(match max_side {
        Some(m) if img.width().max(img.height()) > m => DynamicImage::ImageRgb8(img)
            .resize(m, m, image::imageops::FilterType::Lanczos3)
            .to_rgb8(),
        _ => img,
    })
}

/// Luma (Rec.601) plane, 0–255.
pub fn luma(img: &RgbImage) -> Vec<f32> {
    img.pixels()
        .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
        .collect()
}

/// Local window statistic over a (2r+1)² window (clamped at the borders).
fn window<F: Fn(&mut Vec<f32>) -> f32>(y: &[f32], w: usize, h: usize, r: usize, f: F) -> Vec<f32> {
    let mut out = vec![0f32; w * h];
    let mut buf = Vec::with_capacity((2 * r + 1) * (2 * r + 1));
    for yy in 0..h {
        for xx in 0..w {
            buf.clear();
            for j in yy.saturating_sub(r)..(yy + r + 1).min(h) {
                for i in xx.saturating_sub(r)..(xx + r + 1).min(w) {
                    buf.push(y[j * w + i]);
                }
            }
            out[yy * w + xx] = f(&mut buf);
        }
    }
    out
}

#[derive(Clone, Copy, Debug)]
pub enum Denoiser {
    Median3,
    Gauss1,
    Wiener5,
}

pub const DENOISERS: [Denoiser; 3] = [Denoiser::Median3, Denoiser::Gauss1, Denoiser::Wiener5];

/// The denoised luma plane: 3×3 median; Gaussian σ = 1 px; adaptive Wiener over 5×5 windows
/// (Lim 1990 / MATLAB `wiener2`: `μ + max(σ² − ν², 0)/σ² · (x − μ)`, ν² = the mean local
/// variance).
pub fn denoise(y: &[f32], w: usize, h: usize, d: Denoiser) -> Vec<f32> {
    match d {
        Denoiser::Median3 => window(y, w, h, 1, |b| {
            b.sort_by(f32::total_cmp);
            b[b.len() / 2]
        }),
        Denoiser::Gauss1 => {
            let img = image::ImageBuffer::<image::Luma<f32>, Vec<f32>>::from_raw(
                w as u32,
                h as u32,
                y.to_vec(),
            )
            .unwrap();
            image::imageops::blur(&img, 1.0).into_raw()
        }
        Denoiser::Wiener5 => {
            let mean = window(y, w, h, 2, |b| b.iter().sum::<f32>() / b.len() as f32);
            let sq = window(y, w, h, 2, |b| {
                b.iter().map(|v| v * v).sum::<f32>() / b.len() as f32
            });
            let var: Vec<f32> = sq
                .iter()
                .zip(&mean)
                .map(|(s, m)| (s - m * m).max(0.0))
                .collect();
            let nu = var.iter().sum::<f32>() / var.len() as f32;
            y.iter()
                .zip(&mean)
                .zip(&var)
                .map(|((&x, &m), &v)| m + (v - nu).max(0.0) / v.max(1e-6) * (x - m))
                .collect()
        }
    }
}

/// Adds the luma change `delta(x, y)` to R, G and B, scaled so that the PSNR of the result
/// against `img` is `psnr_db` (before rounding and clamping).
pub fn add_scaled(img: &RgbImage, delta: impl Fn(usize, usize) -> f32, psnr_db: f64) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut d = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            d[y * w + x] = delta(x, y);
        }
    }
    let mean = d.iter().map(|&v| f64::from(v)).sum::<f64>() / d.len() as f64;
    let ms = d
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / d.len() as f64;
    let target = 255f64.powi(2) / 10f64.powf(psnr_db / 10.0);
    let k = (target / ms.max(1e-12)).sqrt();
    let mut out = img.clone();
    for (i, p) in out.pixels_mut().enumerate() {
        let v = ((f64::from(d[i]) - mean) * k) as f32;
        for c in p.0.iter_mut() {
            *c = (f32::from(*c) + v).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}
