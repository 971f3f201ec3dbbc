//! Media → tensor preprocessing, mirroring the training scripts (`training/detect_image.py`,
//! `training/detect_audio.py`, `training/build_detectors.py`).

use hallmark_media::AudioClip;
use image::{imageops::FilterType, DynamicImage};
use rubato::{FftFixedInOut, Resampler};

use crate::DetectorError;

/// Lowest accepted input sample rate in Hz.
pub const MIN_SAMPLE_RATE: u32 = 1_000;
/// Highest accepted input sample rate in Hz.
pub const MAX_SAMPLE_RATE: u32 = 768_000;

/// Converts an image to a `[3, size, size]` (CHW) RGB tensor with values in `[0, 1]`.
///
/// The image is converted to 8-bit RGB (alpha dropped, not composited; 16-bit/float
/// images are quantised to 8 bits) and resized to `size`×`size` with the Triangle
/// (bilinear) filter, ignoring the aspect ratio — the same steps as training (PIL
/// `convert("RGB")` + bilinear `resize`). Training additionally JPEG-re-encoded the
/// resized image at q90 to remove the container confound; the service scores the decoded
/// pixels as given (see the crate docs).
///
/// # Errors
/// [`DetectorError::InvalidInput`] for a zero-width or zero-height image.
pub fn image_tensor(img: &DynamicImage, size: u32) -> Result<Vec<f32>, DetectorError> {
    if img.width() == 0 || img.height() == 0 {
        return Err(DetectorError::InvalidInput(format!(
            "image has no pixels ({}x{})",
            img.width(),
            img.height()
        )));
    }
    let rgb = img.to_rgb8();
    let resized = image::imageops::resize(&rgb, size, size, FilterType::Triangle);
    let plane = (size as usize) * (size as usize);
    let mut out = vec![0.0f32; 3 * plane];
    for (i, px) in resized.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = f32::from(px.0[c]) / 255.0;
        }
    }
    Ok(out)
}

/// Native-resolution crops of an image as `[n, 3, size, size]` (NCHW, RGB in `[0, 1]`),
/// returning the tensor and `n`.
///
/// Steps, identical to `training/detect_image.py::canonical` + `crops`: convert to 8-bit RGB;
/// if the shorter side exceeds `max_short_side`, downscale so it equals `max_short_side`; if
/// it is below `size`, upscale so it equals `size` (Triangle filter, aspect ratio kept,
/// neither side below `size`); when `jpeg_quality > 0`, re-encode as JPEG at that quality
/// (4:2:2) and decode again, so the container and its compression history are replaced the
/// same way for every input; then take `crops` crops of `size`×`size`: the centre, then the
/// top-left, top-right, bottom-left and bottom-right corners.
///
/// # Errors
/// [`DetectorError::InvalidInput`] for a zero-sized image, `crops` outside 1..=5, or a JPEG
/// round trip that fails.
pub fn image_crops(
    img: &DynamicImage,
    size: u32,
    max_short_side: u32,
    crops: u32,
    jpeg_quality: u8,
) -> Result<(Vec<f32>, usize), DetectorError> {
    let (w, h) = (img.width(), img.height());
    if w == 0 || h == 0 {
        return Err(DetectorError::InvalidInput(format!(
            "image has no pixels ({w}x{h})"
        )));
    }
    if !(1..=5).contains(&crops) || size == 0 {
        return Err(DetectorError::InvalidInput(format!(
            "{crops} crops of {size} px requested"
        )));
    }
    let mut rgb = img.to_rgb8();
    let short = w.min(h);
    let f = if short > max_short_side {
        f64::from(max_short_side) / f64::from(short)
    } else if short < size {
        f64::from(size) / f64::from(short)
    } else {
        1.0
    };
    if f != 1.0 {
        let nw = ((f64::from(w) * f).round() as u32).max(size);
        let nh = ((f64::from(h) * f).round() as u32).max(size);
        rgb = image::imageops::resize(&rgb, nw, nh, FilterType::Triangle);
    }
    if jpeg_quality > 0 {
        let mut buf = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, jpeg_quality.min(100))
            .encode_image(&rgb)
            .map_err(|e| DetectorError::InvalidInput(format!("canonical JPEG encode: {e}")))?;
        rgb = image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg)
            .map_err(|e| DetectorError::InvalidInput(format!("canonical JPEG decode: {e}")))?
            .to_rgb8();
    }
    let (w, h) = (rgb.width(), rgb.height());
    let (cx, cy) = ((w - size) / 2, (h - size) / 2);
    let positions = [
        (cx, cy),
        (0, 0),
        (w - size, 0),
        (0, h - size),
        (w - size, h - size),
    ];
    let s = size as usize;
    let plane = s * s;
    let mut out = vec![0.0f32; crops as usize * 3 * plane];
    for (k, &(x0, y0)) in positions.iter().take(crops as usize).enumerate() {
        let base = k * 3 * plane;
        for y in 0..s {
            for x in 0..s {
                let px = rgb.get_pixel(x0 + x as u32, y0 + y as u32).0;
                for c in 0..3 {
                    out[base + c * plane + y * s + x] = f32::from(px[c]) / 255.0;
                }
            }
        }
    }
    Ok((out, crops as usize))
}

/// Why a clip is unfit for detection: shorter than `min_seconds`, or an RMS level below
/// `min_rms_dbfs` (dB relative to full scale) over the mono mixdown. `None` if it is fit.
pub fn audio_unfit(clip: &AudioClip, min_seconds: f32, min_rms_dbfs: f32) -> Option<String> {
    let len = clip.channels.iter().map(Vec::len).max().unwrap_or(0);
    let secs = if clip.sample_rate == 0 {
        0.0
    } else {
        len as f64 / f64::from(clip.sample_rate)
    };
    if secs < f64::from(min_seconds) {
        return Some(format!(
            "clip of {secs:.2} s is shorter than the {min_seconds} s detectors need"
        ));
    }
    let mono = mixdown(&clip.channels);
    let energy: f64 = mono.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    let rms = (energy / mono.len().max(1) as f64).sqrt();
    let dbfs = 20.0 * rms.max(1e-12).log10();
    (dbfs < f64::from(min_rms_dbfs)).then(|| {
        format!("clip is silent or near-silent ({dbfs:.1} dBFS RMS < {min_rms_dbfs} dBFS)")
    })
}

fn sanitize(x: f32) -> f32 {
    if x.is_finite() {
        x.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

/// Mixes planar channels down to mono: the per-sample mean over channels, with shorter
/// channels treated as zero-padded and NaN/±inf samples replaced by 0. Output is in
/// `[-1, 1]`.
pub fn mixdown(channels: &[Vec<f32>]) -> Vec<f32> {
    let len = channels.iter().map(Vec::len).max().unwrap_or(0);
    if channels.is_empty() || len == 0 {
        return Vec::new();
    }
    let mut mono = vec![0.0f32; len];
    for ch in channels {
        for (m, &x) in mono.iter_mut().zip(ch) {
            *m += sanitize(x);
        }
    }
    let n = channels.len() as f32;
    for m in &mut mono {
        *m = (*m / n).clamp(-1.0, 1.0);
    }
    mono
}

/// Start offsets of up to `max_windows` windows of `window` samples evenly spread over
/// `n` samples: one window at 0 if `n <= window`, else
/// `count = min(ceil(n / window), max_windows)` windows with
/// `start_i = floor(i * (n - window) / (count - 1))`.
pub fn window_starts(n: usize, window: usize, max_windows: usize) -> Vec<usize> {
    if n <= window || window == 0 || max_windows <= 1 {
        return vec![0];
    }
    let count = n.div_ceil(window).min(max_windows).max(2);
    let span = (n - window) as u128;
    (0..count)
        .map(|i| ((i as u128 * span) / (count as u128 - 1)) as usize)
        .collect()
}

/// Resamples mono `x` from `from` Hz to `to` Hz with rubato's synchronous FFT resampler,
/// compensating its delay. Output length is `ceil(len * to / from)`.
///
/// # Errors
/// [`DetectorError::InvalidInput`] if the resampler rejects the rates.
pub fn resample(x: &[f32], from: u32, to: u32) -> Result<Vec<f32>, DetectorError> {
    if from == to || x.is_empty() {
        return Ok(x.to_vec());
    }
    let bad =
        |e: String| DetectorError::InvalidInput(format!("resampling {from} Hz -> {to} Hz: {e}"));
    let mut r = FftFixedInOut::<f32>::new(from as usize, to as usize, 1024, 1)
        .map_err(|e| bad(e.to_string()))?;
    let expected = (x.len() as u64 * u64::from(to)).div_ceil(u64::from(from)) as usize;
    let delay = r.output_delay();
    let mut out = Vec::with_capacity(expected + delay + r.output_frames_max());
    let mut inbuf = vec![0.0f32; r.input_frames_max()];
    let mut outbuf = vec![vec![0.0f32; r.output_frames_max()]];
    let mut pos = 0usize;
    while out.len() < expected + delay {
        let need = r.input_frames_next().min(inbuf.len());
        inbuf.fill(0.0);
        if pos < x.len() {
            let take = need.min(x.len() - pos);
            inbuf[..take].copy_from_slice(&x[pos..pos + take]);
        }
        pos = pos.saturating_add(need);
        let (_, produced) = r
            .process_into_buffer(&[&inbuf[..need]], &mut outbuf, None)
            .map_err(|e| bad(e.to_string()))?;
        if produced == 0 {
            return Err(bad("resampler made no progress".into()));
        }
        out.extend_from_slice(&outbuf[0][..produced]);
    }
    out.drain(..delay.min(out.len()));
    out.truncate(expected);
    for v in &mut out {
        *v = sanitize(*v);
    }
    Ok(out)
}

/// Turns a clip into `[windows, window]` model input (row-major), at most `max_windows`
/// rows: mono mixdown, resampling to `rate`, evenly spread windows, zero padding.
///
/// Clips up to `max_windows * window` samples (at `rate`) are resampled whole, as in
/// training; longer clips are resampled window by window so the cost is bounded.
///
/// # Errors
/// [`DetectorError::InvalidInput`] for a clip without samples or with a sample rate
/// outside [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`].
pub fn audio_windows(
    clip: &AudioClip,
    rate: u32,
    window: usize,
    max_windows: usize,
) -> Result<(Vec<f32>, usize), DetectorError> {
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&clip.sample_rate) {
        return Err(DetectorError::InvalidInput(format!(
            "sample rate {} Hz outside {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE}",
            clip.sample_rate
        )));
    }
    let mono = mixdown(&clip.channels);
    if mono.is_empty() {
        return Err(DetectorError::InvalidInput(
            "audio clip has no samples".into(),
        ));
    }
    let from = u64::from(clip.sample_rate);
    let to = u64::from(rate);
    let n_out = (mono.len() as u64 * to).div_ceil(from) as usize;
    let starts = window_starts(n_out, window, max_windows);
    let mut out = vec![0.0f32; starts.len() * window];
    if n_out <= window.saturating_mul(max_windows) {
        let x = resample(&mono, clip.sample_rate, rate)?;
        for (row, &s) in out.chunks_exact_mut(window).zip(&starts) {
            let seg = &x[s.min(x.len())..(s + window).min(x.len())];
            row[..seg.len()].copy_from_slice(seg);
        }
    } else {
        let src_window = (window as u64 * from).div_ceil(to) as usize;
        for (row, &s) in out.chunks_exact_mut(window).zip(&starts) {
            let src_start = ((s as u64 * from) / to) as usize;
            let lo = src_start.min(mono.len());
            let hi = src_start.saturating_add(src_window).min(mono.len());
            let seg = resample(&mono[lo..hi], clip.sample_rate, rate)?;
            let k = seg.len().min(window);
            row[..k].copy_from_slice(&seg[..k]);
        }
    }
    Ok((out, starts.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_policy() {
        assert_eq!(window_starts(10, 64_000, 8), vec![0]);
        assert_eq!(window_starts(64_000, 64_000, 8), vec![0]);
        assert_eq!(window_starts(64_001, 64_000, 8), vec![0, 1]);
        assert_eq!(window_starts(160_000, 64_000, 8), vec![0, 48_000, 96_000]);
        let many = window_starts(16_000 * 3600, 64_000, 8);
        assert_eq!(many.len(), 8);
        assert_eq!(many[7], 16_000 * 3600 - 64_000);
    }

    #[test]
    fn mixdown_handles_odd_input() {
        assert!(mixdown(&[]).is_empty());
        assert!(mixdown(&[vec![], vec![]]).is_empty());
        let m = mixdown(&[vec![1.0, f32::NAN, 0.5], vec![0.0]]);
        assert_eq!(m, vec![0.5, 0.0, 0.25]);
        assert_eq!(
            mixdown(&[vec![f32::INFINITY, 7.0, -9.0]]),
            vec![0.0, 1.0, -1.0]
        );
    }

    #[test]
    fn resample_length_and_tone() -> Result<(), DetectorError> {
        let from = 44_100u32;
        let x: Vec<f32> = (0..from)
            .map(|n| (2.0 * std::f32::consts::PI * 1000.0 * n as f32 / from as f32).sin() * 0.5)
            .collect();
        let y = resample(&x, from, 16_000)?;
        assert_eq!(y.len(), 16_000);
        // Same tone: fit a*sin + b*cos at 1 kHz away from the edges; amplitude must be kept
        // and the residual delay must be well under a sample (power features ignore phase).
        let (mut a, mut b) = (0.0f64, 0.0f64);
        for (n, &v) in y.iter().enumerate().take(15_000).skip(1000) {
            let w = 2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 16_000.0;
            a += f64::from(v) * w.sin();
            b += f64::from(v) * w.cos();
        }
        let amp = 2.0 * a.hypot(b) / 14_000.0;
        let phase = b.atan2(a);
        assert!((amp - 0.5).abs() < 0.01, "amplitude {amp}");
        assert!(phase.abs() < 0.2, "phase {phase} rad");
        Ok(())
    }

    #[test]
    fn audio_windows_odd_inputs() {
        let empty = AudioClip {
            sample_rate: 16_000,
            channels: vec![],
        };
        assert!(matches!(
            audio_windows(&empty, 16_000, 64_000, 8),
            Err(DetectorError::InvalidInput(_))
        ));
        let zero_rate = AudioClip {
            sample_rate: 0,
            channels: vec![vec![0.1; 10]],
        };
        assert!(matches!(
            audio_windows(&zero_rate, 16_000, 64_000, 8),
            Err(DetectorError::InvalidInput(_))
        ));
        let one = AudioClip {
            sample_rate: 8_000,
            channels: vec![vec![0.5]],
        };
        let (w, n) = audio_windows(&one, 16_000, 64_000, 8).unwrap_or_default();
        assert_eq!((w.len(), n), (64_000, 1));
        // Long clip (60 s at 48 kHz) is scored with 8 windows resampled separately.
        let long = AudioClip {
            sample_rate: 48_000,
            channels: vec![vec![0.1; 48_000 * 60]; 2],
        };
        let (w, n) = audio_windows(&long, 16_000, 64_000, 8).unwrap_or_default();
        assert_eq!((w.len(), n), (8 * 64_000, 8));
        assert!((w[32_000] - 0.1).abs() < 1e-3);
    }

    #[test]
    fn image_tensor_odd_sizes() {
        let tiny = DynamicImage::new_rgba8(1, 1);
        assert_eq!(
            image_tensor(&tiny, 256).map(|t| t.len()).unwrap_or(0),
            3 * 256 * 256
        );
        let empty = DynamicImage::new_rgb8(0, 5);
        assert!(matches!(
            image_tensor(&empty, 256),
            Err(DetectorError::InvalidInput(_))
        ));
        let wide = DynamicImage::new_luma16(3000, 2);
        assert!(image_tensor(&wide, 256).is_ok());
    }
}
