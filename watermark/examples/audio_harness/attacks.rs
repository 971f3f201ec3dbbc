//! Attacks of the audio harness: codecs and effects through the Debian tools
//! (`lame`, `ffmpeg`, `sox` with `libsox-fmt-all` for AMR-NB), noise, and a
//! re-recording simulation (synthetic room impulse response, band limit, noise).

use std::path::{Path, PathBuf};
use std::process::Command;

use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

/// Every attack, in table order. The rows after `speed_-5%` are the
/// "in the wild" rows of issue 19 (pitch, speed, phone codecs, re-recording).
pub const ATTACKS: &[&str] = &[
    "wav16",
    "mp3_128",
    "mp3_64",
    "aac_64",
    "opus_32",
    "resample_16k",
    "resample_48k",
    "phone_8k",
    "white_20db",
    "pink_20db",
    "vol_+10db",
    "vol_-10db",
    "trim_5s",
    "concat",
    "speed_+5%",
    "speed_-5%",
    "pitch_+1st",
    "pitch_-1st",
    "speed_+10%",
    "speed_-10%",
    "tempo_+10%",
    "tempo_-10%",
    "mulaw_8k",
    "amr_nb_12k2",
    "opus_16",
    "rerecord",
];

/// Reverberation time of the re-recording simulation's room, seconds.
const RT60_S: f64 = 0.4;
/// Direct-to-reverberant energy ratio of the simulated room, dB.
const DRR_DB: f64 = 3.0;
/// Pink-noise SNR of the re-recording simulation, dB.
const RERECORD_SNR_DB: f64 = 25.0;

pub fn run(cmd: &mut Command) -> bool {
    cmd.output().map(|o| o.status.success()).unwrap_or(false)
}

pub fn read_audio(path: &Path, dir: &Path) -> Option<(Vec<Vec<f32>>, u32)> {
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
    let mut ch = vec![Vec::new(); nch];
    for (i, b) in bytes.chunks_exact(4).enumerate() {
        ch[i % nch].push(f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    }
    Some((ch, rate))
}

pub fn write_wav16(ch: &[Vec<f32>], rate: u32, out: &Path, dir: &Path) {
    let raw = dir.join("write.raw");
    let n = ch[0].len();
    let mut bytes = Vec::with_capacity(n * ch.len() * 4);
    for i in 0..n {
        for c in ch {
            bytes.extend_from_slice(&c[i].to_le_bytes());
        }
    }
    std::fs::write(&raw, bytes).unwrap();
    let r = rate.to_string();
    let c = ch.len().to_string();
    let raw_in = [
        "-t",
        "raw",
        "-e",
        "floating-point",
        "-b",
        "32",
        "-L",
        "-r",
        &r,
        "-c",
        &c,
    ];
    run(Command::new("sox")
        .args(raw_in)
        .arg(&raw)
        .args(["-D", "-b", "16"])
        .arg(out));
}

/// Deterministic generator (PCG-like LCG) for noise and window choices.
pub struct Rng(pub u64);
impl Rng {
    pub fn u(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    pub fn gauss(&mut self) -> f64 {
        let (a, b) = (self.u(), self.u());
        (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
    }
}

/// Adds white or pink (Kellet's filter) Gaussian noise at `snr_db` below the
/// clip's mean power (per channel).
pub fn add_noise(ch: &mut [Vec<f32>], snr_db: f64, pink: bool, seed: u64) {
    let mut rng = Rng(seed);
    for c in ch.iter_mut() {
        let p: f64 = c.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / c.len() as f64;
        let mut noise: Vec<f64> = Vec::with_capacity(c.len());
        let mut b = [0f64; 7];
        for _ in 0..c.len() {
            let w = rng.gauss();
            if pink {
                b[0] = 0.99886 * b[0] + w * 0.0555179;
                b[1] = 0.99332 * b[1] + w * 0.0750759;
                b[2] = 0.96900 * b[2] + w * 0.1538520;
                b[3] = 0.86650 * b[3] + w * 0.3104856;
                b[4] = 0.55000 * b[4] + w * 0.5329522;
                b[5] = -0.7616 * b[5] - w * 0.0168980;
                noise.push(b.iter().sum::<f64>() + w * 0.5362);
                b[6] = w * 0.115926;
            } else {
                noise.push(w);
            }
        }
        let pn: f64 = noise.iter().map(|v| v * v).sum::<f64>() / noise.len() as f64;
        let g = (p / pn.max(1e-30) / 10f64.powf(snr_db / 10.0)).sqrt();
        for (v, n) in c.iter_mut().zip(noise) {
            *v += (g * n) as f32;
        }
    }
}

pub struct Ctx<'a> {
    pub dir: &'a Path,
    pub rate: u32,
    /// Unmarked audio at the clip's rate/channels for the concatenation attack.
    pub filler: &'a [Vec<f32>],
    pub seed: u64,
}

/// Applies `attack` to the 16-bit WAV `src` (the clip as audio `x`); returns
/// the attacked file and, for concatenation, the time range of `src` in it.
pub fn attack(
    name: &str,
    src: &Path,
    x: &[Vec<f32>],
    ctx: &Ctx,
    tag: &str,
) -> Option<(PathBuf, Option<(f64, f64)>)> {
    let d = ctx.dir;
    let out = d.join(format!("{tag}_{name}.wav"));
    let ff = |codec: &[&str], ext: &str| -> bool {
        let enc = d.join(format!("{tag}_{name}.{ext}"));
        run(Command::new("ffmpeg")
            .args(["-y", "-loglevel", "error", "-i"])
            .arg(src)
            .args(codec)
            .arg(&enc))
            && run(Command::new("ffmpeg")
                .args(["-y", "-loglevel", "error", "-i"])
                .arg(&enc)
                .arg(&out))
    };
    let sox = |args: &[&str]| -> bool {
        run(Command::new("sox")
            .arg(src)
            .args(["-b", "16"])
            .arg(&out)
            .args(args))
    };
    let lame = |br: &str| -> bool {
        let enc = d.join(format!("{tag}_{name}.mp3"));
        run(Command::new("lame")
            .args(["--quiet", "-b", br])
            .arg(src)
            .arg(&enc))
            && run(Command::new("ffmpeg")
                .args(["-y", "-loglevel", "error", "-i"])
                .arg(&enc)
                .arg(&out))
    };
    let mut range = None;
    let ok = match name {
        "wav16" => std::fs::copy(src, &out).is_ok(),
        "mp3_128" => lame("128"),
        "mp3_64" => lame("64"),
        "aac_64" => ff(&["-c:a", "aac", "-b:a", "64k"], "m4a"),
        "opus_32" => ff(&["-c:a", "libopus", "-b:a", "32k"], "opus"),
        "resample_16k" => sox(&["rate", "16k"]),
        "resample_48k" => sox(&["rate", "48k"]),
        "phone_8k" => sox(&["sinc", "300-3400", "rate", "8k"]),
        "vol_+10db" => sox(&["vol", "10dB"]),
        "vol_-10db" => sox(&["vol", "-10dB"]),
        "speed_+5%" => sox(&["tempo", "1.05"]),
        "speed_-5%" => sox(&["tempo", "0.95"]),
        // ±1 semitone, duration kept (sox `pitch` in cents: WSOLA + resampling).
        "pitch_+1st" => sox(&["pitch", "100"]),
        "pitch_-1st" => sox(&["pitch", "-100"]),
        // Pitch and tempo together (resampling, as a sped-up tape or player).
        "speed_+10%" => sox(&["speed", "1.1"]),
        "speed_-10%" => sox(&["speed", "0.9"]),
        // Tempo only (WSOLA, pitch kept).
        "tempo_+10%" => sox(&["tempo", "1.1"]),
        "tempo_-10%" => sox(&["tempo", "0.9"]),
        "mulaw_8k" => ff(
            &["-c:a", "pcm_mulaw", "-ar", "8000", "-ac", "1"],
            "ulaw.wav",
        ),
        "opus_16" => ff(&["-c:a", "libopus", "-b:a", "16k"], "opus"),
        "amr_nb_12k2" => {
            // AMR-NB mode 7 = 12.2 kbit/s (GSM EFR), 8 kHz mono.
            let enc = d.join(format!("{tag}_{name}.amr"));
            run(Command::new("sox")
                .arg(src)
                .args(["-r", "8000", "-c", "1", "-t", "amr-nb", "-C", "7"])
                .arg(&enc))
                && run(Command::new("sox").arg(&enc).args(["-b", "16"]).arg(&out))
        }
        "rerecord" => rerecord(x, ctx, &out),
        "trim_5s" => {
            let mut rng = Rng(ctx.seed ^ 0x7431);
            let dur = x[0].len() as f64 / f64::from(ctx.rate);
            let start = rng.u() * (dur - 5.0).max(0.0);
            sox(&["trim", &format!("{start:.4}"), "5"])
        }
        "white_20db" | "pink_20db" => {
            let mut y = x.to_vec();
            add_noise(&mut y, 20.0, name == "pink_20db", ctx.seed);
            write_wav16(&y, ctx.rate, &out, d);
            true
        }
        "concat" => {
            // 3 s of unmarked speech, the clip, 4 s of other unmarked speech.
            let r = ctx.rate as usize;
            let f = ctx.filler;
            let y: Vec<Vec<f32>> = (0..x.len())
                .map(|c| {
                    let fc = &f[c.min(f.len() - 1)];
                    let mut v = fc[..(3 * r).min(fc.len())].to_vec();
                    v.extend_from_slice(&x[c]);
                    let tail0 = fc.len().saturating_sub(4 * r);
                    v.extend_from_slice(&fc[tail0..]);
                    v
                })
                .collect();
            let lead = (3 * r).min(f[0].len()) as f64 / r as f64;
            range = Some((lead, lead + x[0].len() as f64 / r as f64));
            write_wav16(&y, ctx.rate, &out, d);
            true
        }
        _ => false,
    };
    ok.then_some((out, range))
}

/// Room impulse response of the re-recording simulation at `rate`: a unit
/// direct path, then from 2.5 ms on exponentially decaying Gaussian noise
/// (amplitude `exp(−3·ln10·t/RT60)`, i.e. −60 dB of energy after [`RT60_S`])
/// scaled so that the tail's energy is [`DRR_DB`] below the direct path's
/// (the statistical reverberation model of Schroeder 1962 / Polack 1988,
/// without early reflections).
pub fn room_impulse_response(rate: u32, seed: u64) -> Vec<f64> {
    let r = f64::from(rate);
    let n = (1.5 * RT60_S * r) as usize;
    let start = (0.0025 * r) as usize;
    let mut rng = Rng(seed);
    let mut h = vec![0f64; n];
    h[0] = 1.0;
    for (i, v) in h.iter_mut().enumerate().skip(start) {
        let t = i as f64 / r;
        *v = rng.gauss() * (-3.0 * std::f64::consts::LN_10 * t / RT60_S).exp();
    }
    let tail: f64 = h[1..].iter().map(|v| v * v).sum();
    let g = (10f64.powf(-DRR_DB / 10.0) / tail.max(1e-30)).sqrt();
    for v in &mut h[1..] {
        *v *= g;
    }
    h
}

/// Linear convolution `x * h` cut to `x`'s length (FFT overlap of the whole clip).
pub fn convolve(x: &[f32], h: &[f64]) -> Vec<f32> {
    let n = (x.len() + h.len()).next_power_of_two();
    let mut planner = FftPlanner::<f64>::new();
    let (fwd, inv) = (planner.plan_fft_forward(n), planner.plan_fft_inverse(n));
    let mut a: Vec<Complex<f64>> = x.iter().map(|&v| Complex::new(f64::from(v), 0.0)).collect();
    a.resize(n, Complex::new(0.0, 0.0));
    let mut b: Vec<Complex<f64>> = h.iter().map(|&v| Complex::new(v, 0.0)).collect();
    b.resize(n, Complex::new(0.0, 0.0));
    fwd.process(&mut a);
    fwd.process(&mut b);
    for (p, q) in a.iter_mut().zip(&b) {
        *p *= q;
    }
    inv.process(&mut a);
    a[..x.len()]
        .iter()
        .map(|c| (c.re / n as f64) as f32)
        .collect()
}

/// Re-recording simulation (a loudspeaker played into a phone in a room):
/// the clip convolved with [`room_impulse_response`] (RT60 0.4 s, DRR 3 dB),
/// band-limited to 100–8000 Hz (`sox sinc`; 100 Hz high-pass only when the
/// rate is ≤ 16 kHz), then pink noise at [`RERECORD_SNR_DB`] below the
/// result's mean power.
fn rerecord(x: &[Vec<f32>], ctx: &Ctx, out: &Path) -> bool {
    let h = room_impulse_response(ctx.rate, ctx.seed ^ 0x2171);
    let y: Vec<Vec<f32>> = x.iter().map(|c| convolve(c, &h)).collect();
    let d = ctx.dir;
    let (rev, band) = (d.join("rerecord_rev.wav"), d.join("rerecord_band.wav"));
    write_wav16(&y, ctx.rate, &rev, d);
    let sinc = if ctx.rate > 16_000 { "100-8000" } else { "100" };
    if !run(Command::new("sox")
        .arg(&rev)
        .args(["-b", "16"])
        .arg(&band)
        .args(["sinc", sinc]))
    {
        return false;
    }
    let Some((mut z, r)) = read_audio(&band, d) else {
        return false;
    };
    add_noise(&mut z, RERECORD_SNR_DB, true, ctx.seed ^ 0x2172);
    write_wav16(&z, r, out, d);
    true
}
