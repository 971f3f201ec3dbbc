//! Evaluation harness (experiments, not tests). Needs ImageMagick `convert`,
//! and for audio `lame`, `sox`.
//!
//! ```text
//! cargo run -p hallmark-watermark --release --example eval -- image /work/shared/corpus/media/images/real/*.jpg
//! cargo run -p hallmark-watermark --release --example eval -- audio /work/shared/corpus/media/audio/real/*.wav
//! ```
// Offline harness over trusted local corpus files: plain `image::open` is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use hallmark_watermark::{audio, image as wm, Detection, WatermarkKey};

fn luma8(img: &image::DynamicImage) -> (Vec<f64>, usize, usize) {
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let y = rgb
        .pixels()
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect();
    (y, w, h)
}

fn psnr_rgb(a: &image::DynamicImage, b: &image::DynamicImage) -> f64 {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let mse = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
}

/// Mean SSIM on luma over non-overlapping 8×8 windows.
fn ssim(a: &image::DynamicImage, b: &image::DynamicImage) -> f64 {
    let (ya, w, h) = luma8(a);
    let (yb, _, _) = luma8(b);
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let mut tot = 0.0;
    let mut n = 0.0;
    for by in (0..h.saturating_sub(7)).step_by(8) {
        for bx in (0..w.saturating_sub(7)).step_by(8) {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for y in by..by + 8 {
                for x in bx..bx + 8 {
                    let (p, q) = (ya[y * w + x], yb[y * w + x]);
                    sa += p;
                    sb += q;
                    saa += p * p;
                    sbb += q * q;
                    sab += p * q;
                }
            }
            let (ma, mb) = (sa / 64.0, sb / 64.0);
            let (va, vb, cab) = (
                saa / 64.0 - ma * ma,
                sbb / 64.0 - mb * mb,
                sab / 64.0 - ma * mb,
            );
            tot += ((2.0 * ma * mb + c1) * (2.0 * cab + c2))
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            n += 1.0;
        }
    }
    tot / n
}

fn fmt(d: &Detection, payload: u64) -> String {
    format!(
        "{}{} z={:6.2} p={:8.1e} agree={:.3}",
        if d.detected { "DET" } else { "---" },
        if d.detected && d.payload != Some(payload) {
            "(WRONG PAYLOAD)"
        } else {
            ""
        },
        d.score,
        d.p_value,
        d.bit_agreement.unwrap_or(0.0)
    )
}

fn tmpdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("wm-eval-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(cmd: &mut Command) -> bool {
    cmd.output().map(|o| o.status.success()).unwrap_or(false)
}

fn eval_image(files: &[String]) {
    let key = WatermarkKey::from_secret(b"hallmark-eval-secret-0001").unwrap();
    let wrong = WatermarkKey::from_secret(b"hallmark-eval-secret-0002").unwrap();
    let params = wm::ImageEmbedParams::default();
    let dir = tmpdir();
    let payload = 0x0123_4567_89AB_CDEFu64;
    let (mut n, mut ok90, mut ok75, mut okpng) = (0, 0, 0, 0);
    let mut min_clean_p = 1.0f64;
    let mut psnrs = Vec::new();
    for f in files {
        let Ok(img) = image::open(f) else { continue };
        let name = Path::new(f)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let t0 = Instant::now();
        let clean = wm::detect(&img, &key);
        let t_det = t0.elapsed().as_secs_f64();
        let marked = match wm::embed(&img, &key, payload, &params) {
            Ok(m) => m,
            Err(e) => {
                println!("{name}: {e}");
                continue;
            }
        };
        n += 1;
        min_clean_p = min_clean_p.min(clean.p_value);
        let psnr = psnr_rgb(&img, &marked);
        psnrs.push(psnr);
        let s = ssim(&img, &marked);
        let png = dir.join(format!("{name}.png"));
        marked.save(&png).unwrap();
        let dpng = wm::detect(&image::open(&png).unwrap(), &key);
        okpng += usize::from(dpng.detected && dpng.payload == Some(payload));
        let mut res = Vec::new();
        for q in [90, 75] {
            let jpg = dir.join(format!("{name}_q{q}.jpg"));
            run(Command::new("convert")
                .arg(&png)
                .args(["-strip", "-quality", &q.to_string()])
                .arg(&jpg));
            let d = wm::detect(&image::open(&jpg).unwrap(), &key);
            let good = d.detected && d.payload == Some(payload);
            if q == 90 {
                ok90 += usize::from(good);
            } else {
                ok75 += usize::from(good);
            }
            res.push(format!("q{q}: {}", fmt(&d, payload)));
        }
        let dw = wm::detect(&marked, &wrong);
        println!(
            "{name} {}x{} psnr={psnr:.2} ssim={s:.4} det_t={t_det:.3}s | clean z={:.2} p={:.3} | png {} | {} | {} | wrongkey z={:.2} p={:.3}",
            img.width(),
            img.height(),
            clean.score,
            clean.p_value,
            fmt(&dpng, payload),
            res[0],
            res[1],
            dw.score, dw.p_value
        );
    }
    psnrs.sort_by(f64::total_cmp);
    println!(
        "SUMMARY images={n} png_ok={okpng} q90_ok={ok90} q75_ok={ok75} min_clean_p={min_clean_p:.3e} psnr_min={:.2} psnr_median={:.2}",
        psnrs.first().copied().unwrap_or(0.0),
        psnrs.get(psnrs.len() / 2).copied().unwrap_or(0.0)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn read_audio(path: &Path, dir: &Path) -> Option<(Vec<Vec<f32>>, u32)> {
    let raw = dir.join("read.raw");
    if !run(Command::new("sox")
        .arg(path)
        .args(["-t", "raw", "-e", "floating-point", "-b", "32", "-L"])
        .arg(&raw))
    {
        return None;
    }
    let info = |flag: &str| -> Option<u32> {
        let o = Command::new("soxi").arg(flag).arg(path).output().ok()?;
        String::from_utf8_lossy(&o.stdout).trim().parse().ok()
    };
    let (rate, nch) = (info("-r")?, info("-c")? as usize);
    let bytes = std::fs::read(&raw).ok()?;
    let samples: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let mut ch = vec![Vec::new(); nch];
    for (i, v) in samples.iter().enumerate() {
        ch[i % nch].push(*v);
    }
    Some((ch, rate))
}

fn write_wav16(ch: &[Vec<f32>], rate: u32, out: &Path, dir: &Path) {
    let raw = dir.join("write.raw");
    let n = ch[0].len();
    let mut bytes = Vec::with_capacity(n * ch.len() * 4);
    for i in 0..n {
        for c in ch {
            bytes.extend_from_slice(&c[i].to_le_bytes());
        }
    }
    std::fs::write(&raw, bytes).unwrap();
    run(Command::new("sox")
        .args([
            "-t",
            "raw",
            "-e",
            "floating-point",
            "-b",
            "32",
            "-L",
            "-r",
            &rate.to_string(),
            "-c",
            &ch.len().to_string(),
        ])
        .arg(&raw)
        .args(["-D", "-b", "16"])
        .arg(out));
}

fn eval_audio(files: &[String]) {
    let key = WatermarkKey::from_secret(b"hallmark-eval-secret-0001").unwrap();
    let wrong = WatermarkKey::from_secret(b"hallmark-eval-secret-0002").unwrap();
    let mut params = audio::AudioEmbedParams::default();
    let envf = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f32>().ok());
    if let Some(v) = envf("WM_ALPHA") {
        params.alpha = v;
    }
    if let Some(v) = envf("WM_AMAX") {
        params.max_db = v;
    }
    if let Some(v) = envf("WM_IT") {
        params.iterations = v as usize;
    }
    let dir = tmpdir();
    // Audio carries a 32-bit payload (`AUDIO_PAYLOAD_BITS`).
    let payload = 0x89AB_CDEFu64;
    let rates: Vec<u32> = std::env::var("WM_RATES")
        .unwrap_or_else(|_| "0".into())
        .split(',')
        .filter_map(|r| r.parse().ok())
        .collect();
    let mut tally = std::collections::BTreeMap::<String, (usize, usize)>::new();
    let mut min_clean_p = 1.0f64;
    let mut min_wrong_p = 1.0f64;
    let (mut clean_det, mut wrong_det, mut silence_touched) = (0usize, 0usize, 0usize);
    let (mut tot_det, mut tot_dur) = (0f64, 0f64);
    let mut snrs: Vec<f64> = Vec::new();
    for f in files {
        for &rate in &rates {
            let src = dir.join("src.wav");
            // rate 0: the clip's own rate
            let ok = if rate == 0 {
                run(Command::new("sox").arg(f).arg(&src))
            } else {
                run(Command::new("sox")
                    .arg(f)
                    .args(["-r", &rate.to_string()])
                    .arg(&src))
            };
            if !ok {
                continue;
            }
            let Some((orig, fs)) = read_audio(&src, &dir) else {
                continue;
            };
            let name = format!(
                "{}@{}",
                Path::new(f).file_stem().unwrap().to_string_lossy(),
                fs
            );
            let t0 = Instant::now();
            let clean = audio::detect(&orig, fs, &key);
            let t_det = t0.elapsed().as_secs_f64();
            let dur = orig[0].len() as f64 / f64::from(fs);
            if dur < audio::MIN_SECONDS {
                continue;
            }
            tot_det += t_det;
            tot_dur += dur;
            let mut marked = orig.clone();
            let rep = match audio::embed(&mut marked, fs, &key, payload, &params) {
                Ok(r) => r,
                Err(e) => {
                    println!("{name}: {e}");
                    continue;
                }
            };
            min_clean_p = min_clean_p.min(clean.p_value);
            clean_det += usize::from(clean.detected);
            snrs.push(rep.snr_db);
            silence_touched += orig
                .iter()
                .zip(&marked)
                .map(|(o, m)| {
                    o.iter()
                        .zip(m)
                        .filter(|(&a, &b)| a == 0.0 && b != 0.0)
                        .count()
                })
                .sum::<usize>();
            let wav = dir.join("marked.wav");
            write_wav16(&marked, fs, &wav, &dir);
            let mut line = format!(
                "{name} {dur:.1}s snr={:.1}dB marked={:.1}s det_t={t_det:.3}s | clean z={:.2} p={:.3}",
                rep.snr_db, rep.marked_seconds, clean.score, clean.p_value
            );
            let mut check = |label: &str, path: &Path, line: &mut String| {
                let Some((ch, r)) = read_audio(path, &dir) else {
                    line.push_str(&format!(" | {label}: read fail"));
                    return;
                };
                let d = audio::detect(&ch, r, &key);
                let e = tally.entry(label.to_string()).or_default();
                e.0 += 1;
                e.1 += usize::from(d.detected && d.payload == Some(payload));
                line.push_str(&format!(" | {label}: {}", fmt(&d, payload)));
            };
            check("wav16", &wav, &mut line);
            for br in ["128", "192"] {
                let mp3 = dir.join(format!("m{br}.mp3"));
                let dec = dir.join(format!("m{br}.wav"));
                run(Command::new("lame")
                    .args(["--quiet", "-b", br])
                    .arg(&wav)
                    .arg(&mp3));
                run(Command::new("ffmpeg")
                    .args(["-y", "-loglevel", "error", "-i"])
                    .arg(&mp3)
                    .arg(&dec));
                check(&format!("mp3_{br}"), &dec, &mut line);
            }
            // delay + leading silence
            let mut shifted = marked.clone();
            for c in &mut shifted {
                let pad = 1234 + (0.3 * f64::from(fs)) as usize;
                let mut v = vec![0f32; pad];
                v.extend_from_slice(c);
                *c = v;
            }
            let sh = dir.join("shift.wav");
            write_wav16(&shifted, fs, &sh, &dir);
            check("shift", &sh, &mut line);
            let dw = audio::detect(&marked, fs, &wrong);
            min_wrong_p = min_wrong_p.min(dw.p_value);
            wrong_det += usize::from(dw.detected);
            line.push_str(&format!(
                " | wrongkey z={:.2} p={:.3}",
                dw.score, dw.p_value
            ));
            println!("{line}");
        }
    }
    snrs.sort_by(f64::total_cmp);
    println!(
        "SUMMARY clips={} clean_detected={clean_det} min_clean_p={min_clean_p:.3e} wrongkey_detected={wrong_det} min_wrong_p={min_wrong_p:.3e} snr_min={:.2} snr_median={:.2} silence_samples_changed={silence_touched} detect_x_realtime={:.0} {tally:?}",
        snrs.len(),
        snrs.first().copied().unwrap_or(0.0),
        snrs.get(snrs.len() / 2).copied().unwrap_or(0.0),
        tot_dur / tot_det.max(1e-9)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("image") => eval_image(&args[1..]),
        Some("audio") => eval_audio(&args[1..]),
        _ => eprintln!("usage: eval image|audio FILES..."),
    }
}
