//! Deterministic synthetic media made in code, so the repo's tests need no external files.

use std::io::Cursor;

/// Small deterministic PRNG (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    /// Next value in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32) / (1u64 << 24) as f32
    }
}

/// A photo-like RGB image: smooth gradients, a few shapes, texture and sensor-like noise.
pub fn photo(width: u32, height: u32, seed: u64) -> image::DynamicImage {
    let mut rng = Rng::new(seed);
    let mut img = image::RgbImage::new(width, height);
    let (w, h) = (width as f32, height as f32);
    for (x, y, p) in img.enumerate_pixels_mut() {
        let (fx, fy) = (x as f32 / w, y as f32 / h);
        let sky = 200.0 - 90.0 * fy;
        let hill = if fy > 0.55 + 0.1 * (fx * 7.0).sin() {
            1.0
        } else {
            0.0
        };
        let texture = 18.0 * ((x as f32 * 0.31).sin() * (y as f32 * 0.17).cos());
        let sun = ((fx - 0.7).powi(2) + (fy - 0.25).powi(2)).sqrt() < 0.08;
        let n = (rng.next_f32() - 0.5) * 10.0;
        let (r, g, b) = if sun {
            (250.0, 235.0, 180.0)
        } else if hill > 0.0 {
            (60.0 + texture, 110.0 + texture, 50.0 + texture * 0.5)
        } else {
            (sky * 0.6, sky * 0.8, sky)
        };
        *p = image::Rgb([
            (r + n).clamp(0.0, 255.0) as u8,
            (g + n).clamp(0.0, 255.0) as u8,
            (b + n).clamp(0.0, 255.0) as u8,
        ]);
    }
    image::DynamicImage::ImageRgb8(img)
}

/// Encodes an image.
pub fn encode(img: &image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    match format {
        image::ImageFormat::Jpeg => {
            let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92);
            img.to_rgb8().write_with_encoder(enc).expect("jpeg");
        }
        f => img.write_to(&mut out, f).expect("encode"),
    }
    out.into_inner()
}

/// A photo-like scene of random blobs, disks and fine texture; different seeds give different
/// content (unlike `fixtures::photo`, whose seeds only change the noise).
pub fn scene(w: u32, h: u32, seed: u64) -> image::DynamicImage {
    let mut rng = Rng::new(seed);
    let mut r = || f64::from(rng.next_f32());
    let shapes: Vec<[f64; 6]> = (0..50)
        .map(|_| {
            [
                r() * f64::from(w),
                r() * f64::from(h),
                10.0 + r() * f64::from(w) / 6.0,
                r() * 150.0 - 75.0,
                r(),
                r() * 60.0 - 30.0,
            ]
        })
        .collect();
    let mut noise = Rng::new(seed ^ 0xABCD);
    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
        let (xf, yf) = (f64::from(x), f64::from(y));
        let (mut l, mut c) = (120.0, 0.0);
        for s in &shapes {
            let d2 = ((xf - s[0]).powi(2) + (yf - s[1]).powi(2)) / (s[2] * s[2]);
            let k = if s[4] < 0.5 {
                (-d2).exp()
            } else if d2 < 1.0 {
                0.6
            } else {
                0.0
            };
            l += s[3] * k;
            c += s[5] * k;
        }
        l += 8.0 * (xf * 0.7 + yf * 0.3).sin() + f64::from(noise.next_f32() - 0.5) * 8.0;
        let px = |v: f64| v.clamp(0.0, 255.0) as u8;
        image::Rgb([px(l + c), px(l), px(l - c)])
    }))
}

/// JPEG at `quality` (no metadata: the encoder writes none).
pub fn jpeg(img: &image::DynamicImage, quality: u8) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    img.to_rgb8().write_with_encoder(enc).expect("jpeg");
    out.into_inner()
}

/// Copy attack with the exact mark: `target + (signed − original)` per pixel, i.e. the
/// strongest estimate of a signed image's watermark a forger can have, added to `target`.
pub fn copy_mark(
    signed: &image::DynamicImage,
    original: &image::DynamicImage,
    target: &image::DynamicImage,
) -> image::DynamicImage {
    let (sa, oa, ta) = (signed.to_rgb8(), original.to_rgb8(), target.to_rgb8());
    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(ta.width(), ta.height(), |x, y| {
        let (s, o, t) = (sa.get_pixel(x, y), oa.get_pixel(x, y), ta.get_pixel(x, y));
        image::Rgb(std::array::from_fn(|c| {
            (i16::from(t[c]) + i16::from(s[c]) - i16::from(o[c])).clamp(0, 255) as u8
        }))
    }))
}

/// Speech-like mono audio: voiced segments (harmonics of a gliding pitch with formant-ish
/// weights and a syllable envelope), noise bursts, and pauses of digital silence.
pub fn speech(sample_rate: u32, seconds: f32, seed: u64) -> hallmark_media::AudioClip {
    let mut rng = Rng::new(seed);
    let n = (sample_rate as f32 * seconds) as usize;
    let mut out = vec![0.0f32; n];
    let mut phase = [0.0f32; 12];
    for (i, s) in out.iter_mut().enumerate() {
        let t = i as f32 / sample_rate as f32;
        let syllable = (t * 3.1).fract();
        let pause = (t % 2.5) > 2.2;
        if pause {
            continue;
        }
        let env = (std::f32::consts::PI * syllable).sin().powi(2);
        let f0 = 120.0 + 30.0 * (t * 1.3).sin();
        let mut v = 0.0;
        for (k, ph) in phase.iter_mut().enumerate() {
            let f = f0 * (k + 1) as f32;
            if f > sample_rate as f32 / 2.0 {
                break;
            }
            *ph = (*ph + f / sample_rate as f32).fract();
            let formant = 1.0 / (1.0 + ((f - 700.0) / 300.0).powi(2))
                + 0.6 / (1.0 + ((f - 1800.0) / 400.0).powi(2));
            v += formant * (std::f32::consts::TAU * *ph).sin();
        }
        let noise = (rng.next_f32() - 0.5) * if syllable > 0.85 { 0.3 } else { 0.02 };
        *s = 0.25 * env * v + noise * env;
    }
    hallmark_media::AudioClip {
        sample_rate,
        channels: vec![out],
    }
}
