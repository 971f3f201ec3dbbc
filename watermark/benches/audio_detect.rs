//! Detection speed of the audio watermark on one core (criterion).
//!
//! ```text
//! cargo bench -p hallmark-watermark --bench audio_detect
//! ```
//! 10 s of a synthetic speech-like signal (harmonic syllables, pauses) at
//! 8, 22.05 and 48 kHz, marked and clean. Real-time factor = 10 s / time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use hallmark_watermark::{audio, WatermarkKey};

fn speech(seconds: f64, fs: u32) -> Vec<f32> {
    let n = (seconds * f64::from(fs)) as usize;
    let mut s = 7u64;
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let noise = ((s >> 40) as f64 / (1u64 << 24) as f64) - 0.5;
            let t = i as f64 / f64::from(fs);
            let syl = (t / 0.25).floor();
            if syl as u64 % 5 == 4 {
                return 0.0;
            }
            let env = (std::f64::consts::PI * (t / 0.25 - syl)).sin().powi(2);
            let f0 = 110.0 + 40.0 * (syl * 1.7).sin();
            phase += 2.0 * std::f64::consts::PI * f0 / f64::from(fs);
            let mut v = 0.0;
            for h in 1..30 {
                if f0 * h as f64 > 0.45 * f64::from(fs) {
                    break;
                }
                let fh = f0 * h as f64;
                let formant = (-((fh - 700.0 - 200.0 * syl.sin()) / 400.0).powi(2)).exp()
                    + 0.5 * (-((fh - 1800.0) / 500.0).powi(2)).exp()
                    + 0.05;
                v += formant * (phase * h as f64).sin() / (h as f64).sqrt();
            }
            (0.25 * env * v + 0.01 * env * noise) as f32
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let key = WatermarkKey::from_secret(b"bench-audio-secret-01").unwrap();
    let mut g = c.benchmark_group("audio_detect_10s");
    g.sample_size(20);
    for fs in [8000u32, 22_050, 48_000] {
        let clean = vec![speech(10.0, fs)];
        let mut marked = clean.clone();
        audio::embed(&mut marked, fs, &key, 42, &Default::default()).unwrap();
        assert!(audio::detect(&marked, fs, &key).detected);
        g.bench_function(format!("marked_{fs}Hz"), |b| {
            b.iter(|| audio::detect(std::hint::black_box(&marked), fs, &key))
        });
        g.bench_function(format!("clean_{fs}Hz"), |b| {
            b.iter(|| audio::detect(std::hint::black_box(&clean), fs, &key))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
