//! Audio content fingerprint: band-energy differences (Haitsma & Kalker 2002, *A highly
//! robust audio fingerprinting system*, ISMIR), compared by bit error rate at the best time
//! offset.
//!
//! **Fingerprint** ([`fingerprint`]): the channels' mean, resampled to 8 kHz; Hann-windowed
//! frames of [`FRAME`] samples (256 ms) every [`HOP`] samples (32 ms); the energies `E(n, m)` of
//! 33 bands log-spaced over 300–2000 Hz (Haitsma–Kalker's range: it survives phone channels,
//! low-bit-rate codecs and resampling); sub-fingerprint bit
//! `F(n, m) = [E(n,m) − E(n,m+1) − (E(n−1,m) − E(n−1,m+1)) > 0]`, 32 bits per frame, plus a
//! flag per frame: *loud* when its band energy is within 30 dB of the clip's 95th percentile
//! (bits of near-silent frames are noise). 4 bytes per 32 ms (≈ 125 B/s).
//!
//! **Candidate** ([`candidate`]): the same, with the frame grid stretched by the time-scale
//! factor the watermark's speed search measured (a tempo change keeps the spectrum and
//! stretches time) and computed at two grid phases (0 and half a hop), so that the best
//! alignment is off by at most a quarter hop (8 ms, 1/32 of a frame).
//!
//! **Comparison** ([`compare`]): at every frame offset where one of the two lies ≥ 80 % inside
//! the other and the overlap has ≥ [`MIN_FRAMES`] frames loud in the stored fingerprint, the
//! bit error rate over those frames; the distance is the smallest. Unrelated audio gives ≈ 0.5;
//! the threshold is [`MAX_BER`]. Too little overlap is a non-match (distance 0.5).

use super::{Comparison, ParseError};

/// Internal sample rate, Hz.
pub const RATE: u32 = 8000;
/// Frame length, samples at [`RATE`] (256 ms).
pub const FRAME: usize = 2048;
/// Hop, samples at [`RATE`] (32 ms).
pub const HOP: usize = 256;
/// Fewest compared (loud) frames for a decision (≈ 2 s).
pub const MIN_FRAMES: usize = 64;
/// Largest bit error rate that counts as the same content. Chosen from the distributions
/// measured by `examples/audio_copy_attack.rs` (watermark/README.md, "Content binding").
pub const MAX_BER: f64 = 0.35;

const BANDS: usize = 33;
const F_LO: f64 = 300.0;
const F_HI: f64 = 2000.0;
const LOUD_DB: f64 = 30.0;
const CONTAINMENT: f64 = 0.8;

/// A content fingerprint of a clip (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct AudioFingerprint {
    /// Time-scale factor relative to the signed original (attacked / original duration);
    /// 1 for a signed original.
    pub scale: f64,
    /// Sub-fingerprints per grid phase (one phase for a stored fingerprint).
    phases: Vec<Vec<u32>>,
    /// Per frame of the first phase: loud (see the module docs).
    loud: Vec<bool>,
}

/// Fingerprint of a signed clip (`channels[c][n]` at `sample_rate` Hz).
pub fn fingerprint(channels: &[Vec<f32>], sample_rate: u32) -> AudioFingerprint {
    let x = mono_8k(channels, sample_rate);
    let (bits, loud) = frames(&x, HOP as f64, 0.0);
    AudioFingerprint {
        scale: 1.0,
        phases: vec![bits],
        loud,
    }
}

/// Fingerprint of a candidate clip whose watermark detection reported the time-scale factor
/// `scale` (`None`: unchanged).
pub fn candidate(channels: &[Vec<f32>], sample_rate: u32, scale: Option<f64>) -> AudioFingerprint {
    let s = scale
        .filter(|s| s.is_finite() && (0.5..=2.0).contains(s))
        .unwrap_or(1.0);
    let x = mono_8k(channels, sample_rate);
    let hop = HOP as f64 * s;
    let (b0, loud) = frames(&x, hop, 0.0);
    let (mut b1, _) = frames(&x, hop, hop / 2.0);
    // The half-hop grid can hold one frame fewer; every phase has `loud.len()` words in the
    // serialised form (repeat the last word: one frame of hundreds barely moves the BER).
    let last = b1.last().copied().unwrap_or(0);
    b1.resize(b0.len(), last);
    AudioFingerprint {
        scale: s,
        phases: vec![b0, b1],
        loud,
    }
}

fn mono_8k(channels: &[Vec<f32>], sample_rate: u32) -> Vec<f32> {
    let n = channels.iter().map(Vec::len).min().unwrap_or(0);
    if n == 0 || sample_rate == 0 {
        return Vec::new();
    }
    let k = 1.0 / channels.len() as f32;
    let mono: Vec<f32> = (0..n)
        .map(|i| channels.iter().map(|c| c[i]).sum::<f32>() * k)
        .collect();
    crate::dsp::resample(&mono, sample_rate, RATE)
}

/// Sub-fingerprints and loudness flags of frames starting at `offset + k·hop` samples.
fn frames(x: &[f32], hop: f64, offset: f64) -> (Vec<u32>, Vec<bool>) {
    use rustfft::num_complex::Complex;
    if x.len() < FRAME || hop <= 0.0 {
        return (Vec::new(), Vec::new());
    }
    let n_frames = ((x.len() - FRAME) as f64 - offset).max(0.0) / hop;
    let n_frames = n_frames.floor() as usize + 1;
    let fft = rustfft::FftPlanner::<f32>::new().plan_fft_forward(FRAME);
    let window: Vec<f32> = (0..FRAME)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / FRAME as f32).cos())
        .collect();
    let bin_hz = f64::from(RATE) / FRAME as f64;
    let edges: Vec<usize> = (0..=BANDS)
        .map(|b| {
            let f = F_LO * (F_HI / F_LO).powf(b as f64 / BANDS as f64);
            (f / bin_hz).round() as usize
        })
        .collect();
    let mut energies: Vec<[f64; BANDS]> = Vec::with_capacity(n_frames);
    let mut buf = vec![Complex::new(0f32, 0f32); FRAME];
    for k in 0..n_frames {
        let start = ((offset + k as f64 * hop).round() as usize).min(x.len() - FRAME);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = Complex::new(x[start + i] * window[i], 0.0);
        }
        fft.process(&mut buf);
        let mut e = [0f64; BANDS];
        for (m, em) in e.iter_mut().enumerate() {
            *em = buf[edges[m]..edges[m + 1].max(edges[m] + 1)]
                .iter()
                .map(|c| f64::from(c.norm_sqr()))
                .sum();
        }
        energies.push(e);
    }
    let totals: Vec<f64> = energies.iter().map(|e| e.iter().sum()).collect();
    let mut sorted = totals.clone();
    sorted.sort_by(f64::total_cmp);
    let p95 = sorted
        .get(((sorted.len().saturating_sub(1)) as f64 * 0.95) as usize)
        .copied()
        .unwrap_or(0.0);
    let floor = p95 * 10f64.powf(-LOUD_DB / 10.0);
    let mut bits = Vec::with_capacity(n_frames);
    for n in 0..n_frames {
        let prev = &energies[n.saturating_sub(1)];
        let cur = &energies[n];
        let mut word = 0u32;
        for m in 0..BANDS - 1 {
            let d = cur[m] - cur[m + 1] - (prev[m] - prev[m + 1]);
            if d > 0.0 {
                word |= 1 << m;
            }
        }
        bits.push(word);
    }
    let loud = totals.iter().map(|&t| t > floor && t > 0.0).collect();
    (bits, loud)
}

impl AudioFingerprint {
    /// Number of frames (32 ms each at scale 1).
    pub fn frames(&self) -> usize {
        self.loud.len()
    }
}

impl std::fmt::Display for AudioFingerprint {
    /// `a1:{scale}:{frames}:{phases}:{base64url words (LE), phase after phase}:{base64url loud bits}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let words: Vec<u8> = self
            .phases
            .iter()
            .flat_map(|p| p.iter().flat_map(|w| w.to_le_bytes()))
            .collect();
        let mut loud = vec![0u8; self.loud.len().div_ceil(8)];
        for (i, &l) in self.loud.iter().enumerate() {
            if l {
                loud[i / 8] |= 1 << (i % 8);
            }
        }
        write!(
            f,
            "a1:{:.6}:{}:{}:{}:{}",
            self.scale,
            self.loud.len(),
            self.phases.len(),
            b64.encode(words),
            b64.encode(loud)
        )
    }
}

impl std::str::FromStr for AudioFingerprint {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let f: Vec<&str> = s.split(':').collect();
        let [tag, scale, n, np, words, loud] = f.as_slice() else {
            return Err(ParseError("expected 6 fields"));
        };
        if *tag != "a1" {
            return Err(ParseError("not an audio fingerprint (a1)"));
        }
        let scale: f64 = scale.parse().map_err(|_| ParseError("scale"))?;
        let n: usize = n.parse().map_err(|_| ParseError("frames"))?;
        let np: usize = np.parse().map_err(|_| ParseError("phases"))?;
        let words = b64
            .decode(words)
            .map_err(|_| ParseError("words are not base64url"))?;
        let loud = b64
            .decode(loud)
            .map_err(|_| ParseError("loud flags are not base64url"))?;
        let ok = scale.is_finite()
            && scale > 0.0
            && (1..=2).contains(&np)
            && words.len() == n.saturating_mul(np).saturating_mul(4)
            && loud.len() == n.div_ceil(8);
        if !ok {
            return Err(ParseError("inconsistent sizes"));
        }
        let all: Vec<u32> = words
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Self {
            scale,
            phases: all.chunks(n.max(1)).take(np).map(<[u32]>::to_vec).collect(),
            loud: (0..n).map(|i| loud[i / 8] & (1 << (i % 8)) != 0).collect(),
        })
    }
}

/// Compares a candidate ([`candidate`]) with a signed clip's stored fingerprint
/// ([`fingerprint`]) (see the module docs). Never panics.
pub fn compare(stored: &AudioFingerprint, cand: &AudioFingerprint) -> Comparison {
    let distance = best_ber(stored, cand).unwrap_or(0.5);
    Comparison {
        distance,
        threshold: MAX_BER,
        matches: distance <= MAX_BER,
    }
}

fn best_ber(stored: &AudioFingerprint, cand: &AudioFingerprint) -> Option<f64> {
    let s = stored.phases.first()?;
    let ns = s.len().min(stored.loud.len());
    let mut best: Option<f64> = None;
    for c in &cand.phases {
        let nc = c.len();
        let need = ((CONTAINMENT * ns.min(nc) as f64).ceil() as usize).max(MIN_FRAMES);
        // Candidate frame j ↔ stored frame j + off.
        let lo = -(nc as i64) + 1;
        for off in lo..ns as i64 {
            let j0 = (-off).max(0) as usize;
            let j1 = nc.min((ns as i64 - off).max(0) as usize);
            if j1 <= j0 || j1 - j0 < need {
                continue;
            }
            let (mut errors, mut frames) = (0u32, 0usize);
            for (j, &word) in c.iter().enumerate().take(j1).skip(j0) {
                let i = (j as i64 + off) as usize;
                if stored.loud[i] {
                    errors += (s[i] ^ word).count_ones();
                    frames += 1;
                }
            }
            if frames < MIN_FRAMES {
                continue;
            }
            let ber = f64::from(errors) / (frames * (BANDS - 1)) as f64;
            if best.is_none_or(|b| ber < b) {
                best = Some(ber);
            }
        }
    }
    best
}

#[cfg(test)]
#[path = "audio_tests.rs"]
mod tests;
