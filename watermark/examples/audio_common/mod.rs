//! Helpers shared by the audio examples (`audio_binding`, `audio_copy_attack`): decoding and
//! encoding through `ffmpeg`, 32-bit float WAV writing, white noise.

use std::path::Path;
use std::process::Command;

use hallmark_watermark::fingerprint::audio as fp;
use hallmark_watermark::{audio, WatermarkKey};

pub fn decode(path: &Path, rate: u32) -> Option<Vec<f32>> {
    let o = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-i"])
        .arg(path)
        .args([
            "-f",
            "f32le",
            "-ac",
            "1",
            "-ar",
            &rate.to_string(),
            "pipe:1",
        ])
        .output()
        .ok()?;
    o.status.success().then(|| {
        o.stdout
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    })
}

pub fn write_wav(x: &[f32], rate: u32, path: &Path) {
    let spec = hound_free_wav(x, rate);
    std::fs::write(path, spec).unwrap();
}

/// 32-bit float mono WAV bytes.
pub fn hound_free_wav(x: &[f32], rate: u32) -> Vec<u8> {
    let data = (x.len() * 4) as u32;
    let mut v = Vec::with_capacity(44 + x.len() * 4);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&3u16.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * 4).to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&32u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data.to_le_bytes());
    for s in x {
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

/// Encodes with ffmpeg `args` into `ext` and decodes back at `out_rate`.
pub fn codec(
    x: &[f32],
    rate: u32,
    args: &[&str],
    ext: &str,
    out_rate: u32,
    dir: &Path,
) -> Option<Vec<f32>> {
    let src = dir.join("in.wav");
    let enc = dir.join(format!("enc.{ext}"));
    write_wav(x, rate, &src);
    let ok = Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error", "-i"])
        .arg(&src)
        .args(args)
        .arg(&enc)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        return None;
    }
    decode(&enc, out_rate)
}

pub fn white(x: &[f32], snr_db: f64, seed: u64) -> Vec<f32> {
    let p = x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / x.len() as f64;
    let sd = (p / 10f64.powf(snr_db / 10.0)).sqrt();
    let mut s = seed | 1;
    x.iter()
        .map(|v| {
            let mut g = 0.0;
            for _ in 0..12 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                g += (s >> 11) as f64 / (1u64 << 53) as f64;
            }
            v + ((g - 6.0) * sd) as f32
        })
        .collect()
}

/// Sample rate of the first audio stream (`ffprobe`), Hz.
pub fn sample_rate(path: &Path) -> Option<u32> {
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0"])
        .args(["-show_entries", "stream=sample_rate", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .ok()?;
    String::from_utf8_lossy(&o.stdout).trim().parse().ok()
}

/// A clip signed under the example's key: mono, cut to its first 20 s.
pub struct Clip {
    pub name: String,
    pub rate: u32,
    pub orig: Vec<f32>,
    pub signed: Vec<f32>,
    pub payload: u64,
    pub fp: fp::AudioFingerprint,
}

/// Decodes each file (mono, its own rate, first 20 s), embeds a distinct payload with the
/// default parameters and keeps the clips whose mark reads back; also returns why every other
/// file was left out (no rate, undecodable, embedding refused, mark not read back).
pub fn sign_clips(files: &[String], key: &WatermarkKey) -> (Vec<Clip>, Vec<(String, String)>) {
    let mut clips = Vec::new();
    let mut skipped: Vec<(String, String)> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let Some(rate) = sample_rate(Path::new(f)) else {
            skipped.push(("no sample rate (ffprobe)".into(), f.clone()));
            continue;
        };
        let Some(mut x) = decode(Path::new(f), rate) else {
            skipped.push(("undecodable".into(), f.clone()));
            continue;
        };
        x.truncate(rate as usize * 20);
        let payload = 0x1000_0000 + i as u64 * 7919;
        let mut ch = vec![x.clone()];
        if let Err(e) = audio::embed(&mut ch, rate, key, payload, &Default::default()) {
            let secs = x.len() as f64 / f64::from(rate);
            skipped.push((format!("embed refused ({secs:.2} s): {e}"), f.clone()));
            continue;
        }
        let d = audio::detect(&ch, rate, key);
        if d.payload != Some(payload) {
            let why = format!("mark not read back (p {:.2e})", d.p_value);
            skipped.push((why, f.clone()));
            continue;
        }
        let name = Path::new(f)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let fp = fp::fingerprint(&ch, rate);
        clips.push(Clip {
            name,
            rate,
            orig: x,
            signed: ch.remove(0),
            payload,
            fp,
        });
    }
    (clips, skipped)
}
