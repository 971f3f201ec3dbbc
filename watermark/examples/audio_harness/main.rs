//! Audio watermark robustness harness (an experiment, not a test).
//!
//! For every clip of a folder (build 10 s speech clips with
//! `watermark/bench/audio/make_clips.sh`): embed at the clip's own rate and
//! channel count, write 16-bit WAV, attack it with the Debian tools
//! (`lame`, `ffmpeg`, `sox`) and detect. Prints one line per clip and a table:
//! per attack the mean raw coded-bit accuracy (sign of the summed soft value
//! of each of the 180 sent coded bits at the best hypothesis, before Viterbi), the
//! TPR at the detector's fixed threshold (p < 1e-6 and CRC, with the exact
//! payload), the median z, and detection speed. Null statistics: every clean
//! clip, every clean clip after each attack (`WM_NULL_ATTACKS=1`, default on)
//! and every attacked marked clip under a wrong key.
//!
//! ```text
//! watermark/bench/audio/make_clips.sh /tmp/wm_clips
//! cargo run -p hallmark-watermark --release --example audio_harness -- /tmp/wm_clips
//! ```
//! Any speech (issue 19): `--windows S` decodes every file of the given files
//! and folders (anything `ffmpeg` decodes) at its own rate and channel count
//! and cuts it into consecutive S-second windows, which become the clips;
//! `--half tune|report` keeps the files at even / odd positions of the sorted
//! list (split by file, so no window of a tuning file is reported on);
//! `--min-seconds S` skips clips shorter than S.
//!
//! ```text
//! watermark/bench/audio/real_speech.sh /tmp/wm_real   # symlinks to the corpus's real speech
//! cargo run -p hallmark-watermark --release --example audio_harness -- \
//!     --windows 5 --half report /tmp/wm_real
//! ```
//! `audio_harness --clean [--keys K] FILES…` instead runs detection on unmarked
//! files (anything `ffmpeg` decodes) under K keys and prints the false-positive
//! count, smallest p-value, largest score and p-value deciles.
//!
//! Env: `WM_LIMIT` (clips), `WM_THREADS` (default 2), `WM_ATTACKS` (comma list
//! of attack names to run), `WM_NULL_ATTACKS=0` to skip the clean-attacked nulls,
//! `WM_SOFT_DUMP=DIR` to write each attacked clip's p-value and data soft
//! values to `DIR/<clip>__<attack>.soft` (for `examples/audio_list_eval.rs`),
//! `WM_KEEP=DIR` to keep every decoded attacked marked clip as
//! `DIR/<clip>__<attack>.f32` (for `examples/audio_redetect.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use hallmark_watermark::{audio, WatermarkKey};

mod attacks;
mod clips;

use attacks::{attack, read_audio, run, write_wav16, Ctx, ATTACKS};
use clips::Half;

/// A 32-bit payload (`AUDIO_PAYLOAD_BITS`).
const PAYLOAD: u64 = 0x89AB_CDEF;

/// (attack, ok, wrong payload, bit accuracy, z, ranges ok, detect s, audio s)
type Outcome = (String, bool, bool, f64, f64, bool, f64, f64);

#[derive(Default, Clone)]
struct Row {
    n: usize,
    ok: usize,
    wrong_payload: usize,
    bit_acc: f64,
    z: Vec<f64>,
    range_ok: usize,
    det_s: f64,
    audio_s: f64,
}

#[derive(Default)]
struct Tally {
    rows: BTreeMap<String, Row>,
    snr: Vec<f64>,
    silence_changed: usize,
    quiet_mark_dbfs: f64,
    null_clean: Vec<f64>,
    null_clean_det: usize,
    null_attacked: Vec<f64>,
    null_attacked_det: usize,
    null_wrong: Vec<f64>,
    null_wrong_det: usize,
    /// WM_DIAG: per attack, symbol buckets.
    diag: BTreeMap<String, Diag>,
}

const W_EDGES: [f32; 6] = [0.5, 0.7, 0.8, 0.9, 0.95, 1.01];
const G_EDGES: [f32; 6] = [0.1, 0.3, 0.5, 0.7, 0.9, 1.01];
const L_EDGES: [f32; 6] = [-6.0, -3.0, -1.5, 0.0, 1.5, 100.0];

/// Diagnostics (WM_DIAG=1): soft value of the true bit bucketed by the
/// detector's weight w, by the noise-variance prediction g = exp(−2π²σ²/Δ²),
/// and the per-cell log-power change of the attack (attacked − marked) and of
/// the mark (marked − original) bucketed by the cell's level relative to the
/// frame's mean cell (nepers).
#[derive(Default, Clone)]
struct Diag {
    by_w: [(f64, f64, f64); 6],
    by_g: [(f64, f64, f64); 6],
    /// (n, Σ attack², Σ mark²) per level bucket.
    by_l: [(f64, f64, f64); 6],
}

fn bucket(edges: &[f32; 6], v: f32) -> usize {
    edges.iter().position(|&e| v < e).unwrap_or(5)
}

/// Highest RMS (dBFS) of the mark in 20 ms windows where the original's RMS
/// is below −60 dBFS (near-silence), over all channels.
fn quiet_mark_level(orig: &[Vec<f32>], marked: &[Vec<f32>], rate: u32) -> f64 {
    let w = (rate / 50) as usize;
    let mut worst = f64::NEG_INFINITY;
    for (o, m) in orig.iter().zip(marked) {
        for (co, cm) in o.chunks_exact(w).zip(m.chunks_exact(w)) {
            let po: f64 = co.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / w as f64;
            if po < 1e-6 {
                let pd: f64 = co
                    .iter()
                    .zip(cm)
                    .map(|(&a, &b)| f64::from(b - a).powi(2))
                    .sum::<f64>()
                    / w as f64;
                worst = worst.max(10.0 * pd.max(1e-20).log10());
            }
        }
    }
    worst
}

fn process(file: &Path, filler_file: &Path, idx: usize, attacks: &[&str], tally: &Mutex<Tally>) {
    // WM_KEY_SECRET: another marking key (variance of a layout's numbers over keys).
    let secret =
        std::env::var("WM_KEY_SECRET").unwrap_or_else(|_| "hallmark-eval-secret-0001".into());
    let key = WatermarkKey::from_secret(secret.as_bytes()).unwrap();
    let wrong = WatermarkKey::from_secret(b"hallmark-eval-secret-0002").unwrap();
    let null_attacks = std::env::var("WM_NULL_ATTACKS").map_or(true, |v| v != "0");
    let dir = std::env::temp_dir().join(format!("wm-harness-{}-{idx}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let Some((orig, rate)) = read_audio(file, &dir) else {
        println!("{}: unreadable", file.display());
        return;
    };
    // filler: another clip converted to this clip's rate and channel count
    let fill_wav = dir.join("filler.wav");
    run(Command::new("sox")
        .arg(filler_file)
        .args(["-r", &rate.to_string(), "-c", &orig.len().to_string()])
        .arg(&fill_wav));
    let filler = read_audio(&fill_wav, &dir).map_or_else(|| orig.clone(), |f| f.0);
    let name = file.file_stem().unwrap().to_string_lossy().to_string();
    let clean = audio::detect(&orig, rate, &key);
    let mut marked = orig.clone();
    let mut params = audio::AudioEmbedParams::default();
    let envf = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f32>().ok());
    if let Some(v) = envf("WM_ALPHA") {
        params.alpha = v;
    }
    if let Some(v) = envf("WM_AMAX") {
        params.max_db = v;
    }
    if let Some(v) = envf("WM_MASK") {
        params.mask_db = v;
    }
    if let Some(v) = envf("WM_GAMMA") {
        params.level_exponent = v;
    }
    if let Some(v) = envf("WM_IT") {
        params.iterations = v as usize;
    }
    let rep = match audio::embed(&mut marked, rate, &key, PAYLOAD, &params) {
        Ok(r) => r,
        Err(e) => {
            println!("{name}: embed error {e}");
            return;
        }
    };
    let silence: usize = orig
        .iter()
        .zip(&marked)
        .map(|(o, m)| {
            o.iter()
                .zip(m)
                .filter(|(&a, &b)| a == 0.0 && b != 0.0)
                .count()
        })
        .sum();
    let quiet = quiet_mark_level(&orig, &marked, rate);
    let wav = dir.join("marked.wav");
    write_wav16(&marked, rate, &wav, &dir);
    let orig_wav = dir.join("orig.wav");
    write_wav16(&orig, rate, &orig_wav, &dir);
    let ctx = Ctx {
        dir: &dir,
        rate,
        filler: &filler,
        seed: 0x5EED ^ (idx as u64).wrapping_mul(0x9E37_79B9),
    };
    let mut line = format!(
        "{name} {rate}Hz×{} snr={:.1}dB quiet_mark={quiet:.0}dBFS clean p={:.2}",
        orig.len(),
        rep.snr_db,
        clean.p_value
    );
    let mut local: Vec<Outcome> = Vec::new();
    let mut nulls_att = Vec::new();
    let mut nulls_wrong = Vec::new();
    let mut local_diag: Vec<(String, Diag)> = Vec::new();
    for &a in attacks {
        let Some((path, range)) = attack(a, &wav, &marked, &ctx, "m") else {
            line.push_str(&format!(" | {a}: ATTACK FAILED"));
            continue;
        };
        let Some((y, r)) = read_audio(&path, &dir) else {
            line.push_str(&format!(" | {a}: read fail"));
            continue;
        };
        if let Ok(keep) = std::env::var("WM_KEEP") {
            // decoded attacked clip, for examples/audio_redetect.rs
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&r.to_le_bytes());
            bytes.extend_from_slice(&(y.len() as u32).to_le_bytes());
            if let Some((s, e)) = range {
                bytes.extend_from_slice(&(s as f32).to_le_bytes());
                bytes.extend_from_slice(&(e as f32).to_le_bytes());
            } else {
                bytes.extend_from_slice(&(-1f32).to_le_bytes());
                bytes.extend_from_slice(&(-1f32).to_le_bytes());
            }
            for c in &y {
                for v in c {
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
            }
            let _ = std::fs::write(Path::new(&keep).join(format!("{name}__{a}.f32")), bytes);
        }
        let t0 = Instant::now();
        let (d, acc, soft) = audio::detect_eval_soft(&y, r, &key, PAYLOAD);
        let dt = t0.elapsed().as_secs_f64();
        if let (Ok(dir), Some(sd)) = (std::env::var("WM_SOFT_DUMP"), soft) {
            // p-value, then the 180 + 180 data soft values (examples/audio_list_eval.rs).
            let mut txt = format!("{:e}\n", sd.p_value);
            for v in sd.noise_model.iter().chain(&sd.sensitivity) {
                txt.push_str(&format!("{v:e}\n"));
            }
            let _ = std::fs::write(Path::new(&dir).join(format!("{name}__{a}.soft")), txt);
        }
        let secs = y[0].len() as f64 / f64::from(r);
        let good = d.detected && d.payload == Some(PAYLOAD);
        let range_ok = match range {
            Some((s, e)) => {
                let covered: f64 = d
                    .ranges
                    .iter()
                    .map(|q| (q.end_s.min(e) - q.start_s.max(s)).max(0.0))
                    .sum();
                let outside: f64 =
                    d.ranges.iter().map(|q| q.end_s - q.start_s).sum::<f64>() - covered;
                good && covered >= 0.8 * (e - s) && outside <= 0.6
            }
            None => good && !d.ranges.is_empty(),
        };
        local.push((
            a.to_string(),
            good,
            d.detected && !good,
            acc.unwrap_or(0.5),
            d.score,
            range_ok,
            dt,
            secs,
        ));
        line.push_str(&format!(
            " | {a}:{}{} z={:.1} acc={:.2}",
            if good { "OK" } else { "--" },
            if d.detected && !good { "(WRONG)" } else { "" },
            d.score,
            acc.unwrap_or(0.0)
        ));
        if std::env::var("WM_DIAG").is_ok_and(|v| v == "1") {
            let mut dg = Diag::default();
            let syms = audio::detect_diag(&y, r, &key, PAYLOAD);
            if let Ok(dir) = std::env::var("WM_DUMP") {
                let mut bytes = Vec::new();
                for &(w, var, c, pilot) in &syms {
                    for v in [w, var, c, f32::from(u8::from(pilot))] {
                        bytes.extend_from_slice(&v.to_le_bytes());
                    }
                }
                let _ = std::fs::write(Path::new(&dir).join(format!("{name}__{a}.f32")), bytes);
            }
            for (w, var, c, _pilot) in syms {
                let g = (-2.0 * std::f32::consts::PI.powi(2) * var / (audio::DELTA * audio::DELTA))
                    .exp();
                let b = &mut dg.by_w[bucket(&W_EDGES, w)];
                b.0 += 1.0;
                b.1 += f64::from(c);
                b.2 += f64::from(g);
                let b = &mut dg.by_g[bucket(&G_EDGES, g)];
                b.0 += 1.0;
                b.1 += f64::from(c);
                b.2 += f64::from(w);
            }
            if r == rate && y[0].len() == marked[0].len() {
                let lo = audio::cell_log_powers(&orig, rate);
                let lm = audio::cell_log_powers(&marked, rate);
                let la = audio::cell_log_powers(&y, r);
                for ((o, m), a) in lo.iter().zip(&lm).zip(&la) {
                    if m[16] < lm.iter().map(|v| v[16]).fold(f32::MIN, f32::max) - 9.2 {
                        continue;
                    }
                    for k in 0..16 {
                        let b = &mut dg.by_l[bucket(&L_EDGES, m[k] - m[16])];
                        b.0 += 1.0;
                        b.1 += f64::from(a[k] - m[k]).powi(2);
                        b.2 += f64::from(m[k] - o[k]).powi(2);
                    }
                }
            }
            local_diag.push((a.to_string(), dg));
        }
        let w = audio::detect(&y, r, &wrong);
        nulls_wrong.push((w.p_value, w.detected));
        if null_attacks && a != "wav16" {
            if let Some((cp, _)) = attack(a, &orig_wav, &orig, &ctx, "c") {
                if let Some((cy, cr)) = read_audio(&cp, &dir) {
                    let c = audio::detect(&cy, cr, &key);
                    nulls_att.push((c.p_value, c.detected));
                }
            }
        }
    }
    println!("{line}");
    let _ = std::fs::remove_dir_all(&dir);
    let mut t = tally.lock().unwrap();
    t.snr.push(rep.snr_db);
    t.silence_changed += silence;
    if quiet.is_finite() {
        t.quiet_mark_dbfs = t.quiet_mark_dbfs.max(quiet);
    }
    t.null_clean.push(clean.p_value);
    t.null_clean_det += usize::from(clean.detected);
    for (p, det) in nulls_att {
        t.null_attacked.push(p);
        t.null_attacked_det += usize::from(det);
    }
    for (p, det) in nulls_wrong {
        t.null_wrong.push(p);
        t.null_wrong_det += usize::from(det);
    }
    for (a, dg) in local_diag {
        let e = t.diag.entry(a).or_default();
        for i in 0..6 {
            for (x, y) in [
                (&mut e.by_w[i], dg.by_w[i]),
                (&mut e.by_g[i], dg.by_g[i]),
                (&mut e.by_l[i], dg.by_l[i]),
            ] {
                x.0 += y.0;
                x.1 += y.1;
                x.2 += y.2;
            }
        }
    }
    for (a, good, wrongp, acc, z, rok, dt, secs) in local {
        let row = t.rows.entry(a).or_default();
        row.n += 1;
        row.ok += usize::from(good);
        row.wrong_payload += usize::from(wrongp);
        row.bit_acc += acc;
        row.z.push(z);
        row.range_ok += usize::from(rok);
        row.det_s += dt;
        row.audio_s += secs;
    }
}

fn null_line(label: &str, p: &[f64], det: usize) -> String {
    let n = p.len().max(1) as f64;
    let frac = |th: f64| p.iter().filter(|&&v| v < th).count() as f64 / n;
    let minp = p.iter().copied().fold(1.0f64, f64::min);
    format!(
        "| {label} | {} | {det} | {minp:.2e} | {:.3} | {:.3} | {:.3} |",
        p.len(),
        frac(0.01),
        frac(0.1),
        frac(0.5)
    )
}

/// `--clean [--keys K] FILES…`: detection on unmarked files (anything
/// `ffmpeg` decodes) under `K` keys (default 6); prints the number of
/// detections, the smallest p-value, the largest score and the p-value deciles.
fn clean_mode(args: &[String]) {
    let mut keys = 6usize;
    let mut files: Vec<PathBuf> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--keys" {
            keys = it.next().and_then(|v| v.parse().ok()).unwrap_or(keys);
        } else {
            files.push(PathBuf::from(a));
        }
    }
    let keyset: Vec<WatermarkKey> = (0..keys)
        .map(|k| {
            WatermarkKey::from_secret(format!("hallmark-clean-key-{k:04}").as_bytes()).unwrap()
        })
        .collect();
    // (file, p-values per key, best score, too small); unreadable files are counted apart.
    let results = Mutex::new(Vec::new());
    let unreadable = Mutex::new(Vec::new());
    let next = Mutex::new(0usize);
    let threads: usize = std::env::var("WM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    std::thread::scope(|s| {
        for w in 0..threads {
            let (files, keyset, results, unreadable, next) =
                (&files, &keyset, &results, &unreadable, &next);
            s.spawn(move || {
                let dir =
                    std::env::temp_dir().join(format!("wm-aud-clean-{}-{w}", std::process::id()));
                std::fs::create_dir_all(&dir).unwrap();
                loop {
                    let i = {
                        let mut n = next.lock().unwrap();
                        *n += 1;
                        *n - 1
                    };
                    let Some(f) = files.get(i) else { break };
                    let Some((ch, rate)) = clips::decode_file(f, &dir) else {
                        unreadable.lock().unwrap().push(f.clone());
                        continue;
                    };
                    let mut ps = Vec::new();
                    let (mut zmax, mut small) = (f64::NEG_INFINITY, false);
                    for k in keyset {
                        let d = audio::detect(&ch, rate, k);
                        small |= d.too_small;
                        zmax = zmax.max(d.score);
                        ps.push((d.p_value, d.detected));
                    }
                    results.lock().unwrap().push((f.clone(), ps, zmax, small));
                }
                let _ = std::fs::remove_dir_all(&dir);
            });
        }
    });
    let results = results.into_inner().unwrap();
    let unreadable = unreadable.into_inner().unwrap();
    let tested: Vec<_> = results.iter().filter(|r| !r.3).collect();
    let ps: Vec<f64> = tested
        .iter()
        .flat_map(|r| r.1.iter().map(|p| p.0))
        .collect();
    let detected: Vec<_> = tested
        .iter()
        .filter(|r| r.1.iter().any(|p| p.1))
        .map(|r| r.0.display().to_string())
        .collect();
    let n_det: usize = tested
        .iter()
        .map(|r| r.1.iter().filter(|p| p.1).count())
        .sum();
    let (min_p, zmax) = tested.iter().fold((1f64, f64::NEG_INFINITY), |a, r| {
        let mp = r.1.iter().map(|p| p.0).fold(1f64, f64::min);
        (a.0.min(mp), a.1.max(r.2))
    });
    let mut deciles = [0usize; 10];
    for &p in &ps {
        deciles[((p * 10.0) as usize).min(9)] += 1;
    }
    println!(
        "clean audio: {} files ({} too short, {} unreadable), {} tested x {} keys = {} detections; detected {} (empirical FPR {:.2e}); largest score z={:.2}; smallest p={:.3e}",
        files.len(),
        results.len() - tested.len(),
        unreadable.len(),
        tested.len(),
        keyset.len(),
        ps.len(),
        n_det,
        n_det as f64 / ps.len().max(1) as f64,
        zmax,
        min_p
    );
    println!("p-value deciles [0,0.1) .. [0.9,1]: {deciles:?}");
    for d in detected {
        println!("DETECTED on unmarked: {d}");
    }
    for u in unreadable {
        println!("unreadable: {}", u.display());
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--clean") {
        clean_mode(&args[1..]);
        return;
    }
    let (mut min_seconds, mut window, mut half) = (0f64, None::<f64>, Half::All);
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |flag: &str| -> f64 {
            it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("{flag} needs a number of seconds");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--min-seconds" => min_seconds = num("--min-seconds"),
            "--windows" => window = Some(num("--windows")),
            "--half" => {
                half = it.next().and_then(|v| Half::parse(v)).unwrap_or_else(|| {
                    eprintln!("--half needs tune, report or all");
                    std::process::exit(2)
                })
            }
            _ => paths.push(PathBuf::from(a)),
        }
    }
    if paths.is_empty() {
        eprintln!(
            "usage: audio_harness [--min-seconds S] CLIP_DIR\n       audio_harness --windows S [--half tune|report|all] [--min-seconds S] FILE_OR_DIR…\n       audio_harness --clean [--keys K] FILE…"
        );
        std::process::exit(2);
    }
    let windows = window.map(|s| {
        let w = clips::make_windows(&paths, s, half);
        println!(
            "windows of {s} s ({half:?} half): {} from {} files; skipped {}",
            w.count,
            w.used.len(),
            w.skipped.len()
        );
        for f in &w.used {
            println!("used: {}", f.display());
        }
        for (f, why) in &w.skipped {
            println!("skipped ({why}): {}", f.display());
        }
        w
    });
    let clip_dirs = windows.as_ref().map_or(paths, |w| vec![w.dir.clone()]);
    let mut files: Vec<PathBuf> = clips::list_files(&clip_dirs, &["wav"])
        .into_iter()
        .filter(|f| {
            min_seconds <= 0.0 || clips::seconds(f).is_some_and(|d| d + 1e-3 >= min_seconds)
        })
        .collect();
    if files.is_empty() {
        eprintln!("no clips of at least {min_seconds} s");
        std::process::exit(1);
    }
    let limit = std::env::var("WM_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let all = files.clone();
    files.truncate(limit);
    let selected: Vec<String> = std::env::var("WM_ATTACKS").map_or_else(
        |_| ATTACKS.iter().map(|s| s.to_string()).collect(),
        |v| v.split(',').map(str::to_string).collect(),
    );
    let attacks: Vec<&str> = ATTACKS
        .iter()
        .copied()
        .filter(|a| selected.iter().any(|s| s == a))
        .collect();
    let threads: usize = std::env::var("WM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let tally = Mutex::new(Tally {
        quiet_mark_dbfs: f64::NEG_INFINITY,
        ..Default::default()
    });
    let next = Mutex::new(0usize);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = {
                    let mut g = next.lock().unwrap();
                    let i = *g;
                    *g += 1;
                    i
                };
                let Some(f) = files.get(i) else { break };
                let filler = &all[(i + all.len() / 2) % all.len()];
                process(f, filler, i, &attacks, &tally);
            });
        }
    });
    let t = tally.into_inner().unwrap();
    let mut snr = t.snr.clone();
    snr.sort_by(f64::total_cmp);
    println!(
        "\nclips: {}  wall: {:.0} s",
        snr.len(),
        t0.elapsed().as_secs_f64()
    );
    println!(
        "SNR marked vs original (dB): min {:.1}  median {:.1}  max {:.1}; digitally silent samples changed: {}; loudest mark in near-silent 20 ms windows (orig < -60 dBFS): {:.0} dBFS",
        snr.first().copied().unwrap_or(0.0),
        snr.get(snr.len() / 2).copied().unwrap_or(0.0),
        snr.last().copied().unwrap_or(0.0),
        t.silence_changed,
        t.quiet_mark_dbfs
    );
    println!("\n| attack | n | coded-bit acc | TPR @ p<1e-6 | wrong payload | median z | min z | ranges ok | detect × real time |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for a in &attacks {
        let Some(r) = t.rows.get(*a) else { continue };
        let mut z = r.z.clone();
        z.sort_by(f64::total_cmp);
        println!(
            "| {a} | {} | {:.3} | {:.3} ({}/{}) | {} | {:.1} | {:.1} | {}/{} | {:.0} |",
            r.n,
            r.bit_acc / r.n.max(1) as f64,
            r.ok as f64 / r.n.max(1) as f64,
            r.ok,
            r.n,
            r.wrong_payload,
            z.get(z.len() / 2).copied().unwrap_or(0.0),
            z.first().copied().unwrap_or(0.0),
            r.range_ok,
            r.n,
            r.audio_s / r.det_s.max(1e-9)
        );
    }
    if !t.diag.is_empty() {
        println!("\ndiagnostics: per bucket: share of symbols, mean soft value of the true bit (mean g | mean w)");
        for (a, d) in &t.diag {
            let tot: f64 = d.by_w.iter().map(|b| b.0).sum::<f64>().max(1.0);
            let fmt = |bs: &[(f64, f64, f64); 6], edges: &[f32; 6]| -> String {
                bs.iter()
                    .zip(edges)
                    .map(|(b, e)| {
                        format!(
                            "<{e}: {:.2} {:.2} ({:.2})",
                            b.0 / tot,
                            b.1 / b.0.max(1.0),
                            b.2 / b.0.max(1.0)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" | ")
            };
            println!("{a} by w: {}", fmt(&d.by_w, &W_EDGES));
            println!("{a} by g: {}", fmt(&d.by_g, &G_EDGES));
            let ltot: f64 = d.by_l.iter().map(|b| b.0).sum::<f64>().max(1.0);
            println!(
                "{a} cell level vs frame mean (Np) -> share, rms attack change, rms mark change: {}",
                d.by_l
                    .iter()
                    .zip(&L_EDGES)
                    .map(|(b, e)| format!(
                        "<{e}: {:.2} {:.3} {:.3}",
                        b.0 / ltot,
                        (b.1 / b.0.max(1.0)).sqrt(),
                        (b.2 / b.0.max(1.0)).sqrt()
                    ))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
    }
    println!("\n| null set | n | detected | min p | frac p<0.01 | frac p<0.1 | frac p<0.5 |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "{}",
        null_line("clean clips", &t.null_clean, t.null_clean_det)
    );
    println!(
        "{}",
        null_line(
            "clean clips, attacked",
            &t.null_attacked,
            t.null_attacked_det
        )
    );
    println!(
        "{}",
        null_line(
            "marked+attacked, wrong key",
            &t.null_wrong,
            t.null_wrong_det
        )
    );
    if let Some(w) = windows {
        let _ = std::fs::remove_dir_all(w.dir);
    }
}
