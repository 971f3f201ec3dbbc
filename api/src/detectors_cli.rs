//! `hallmark detectors list | eval | calibrate`: the detector pool on labelled media, offline.
//!
//! `eval DIR --labels LABELS.tsv` scores every listed file with the instance's detector
//! registry and prints AUC with a bootstrap 95 % CI, EER and TPR at 1 % and 5 % FPR, overall,
//! per generator (each generator's files against all real files) and per format — the same
//! definitions as the model cards (`hallmark_detectors::eval`). `calibrate` refits a model's
//! Platt calibration and thresholds on a deployment's own labelled media and writes them to
//! the registry.
//!
//! Labels file: tab-separated with a header; columns `file` (relative to DIR) and `label`
//! (`real` | `synthetic`) are required, `generator` and `format` optional (the format defaults
//! to the file extension). `../shared/corpus/detection/LABELS.tsv` has this shape.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use hallmark_detectors::eval::{self, Metrics};
use hallmark_detectors::{Detection, DetectorPool, DetectorPoolConfig, ExecutionProvider};
use hallmark_media::MediaKind;
use serde::Serialize;

use crate::settings::Settings;

/// One labelled file.
#[derive(Debug, Clone)]
pub struct Labelled {
    /// Path relative to the directory.
    pub file: String,
    /// Synthetic (true) or real.
    pub synthetic: bool,
    /// Generator or source name.
    pub generator: String,
    /// Format (extension when not given).
    pub format: String,
}

/// Reads a labels TSV.
///
/// # Errors
/// Unreadable file, missing `file`/`label` columns, or a label other than real/synthetic.
pub fn read_labels(path: &Path) -> anyhow::Result<Vec<Labelled>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let col = |n: &str| header.iter().position(|h| h.trim() == n);
    let (Some(fi), Some(li)) = (col("file"), col("label")) else {
        anyhow::bail!(
            "{}: the header needs `file` and `label` columns",
            path.display()
        );
    };
    let (gi, ri) = (col("generator"), col("format"));
    let mut out = Vec::new();
    for (n, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split('\t').collect();
        let get = |i: Option<usize>| i.and_then(|i| cells.get(i)).map(|s| s.trim().to_string());
        let file = get(Some(fi)).unwrap_or_default();
        let synthetic = match get(Some(li)).as_deref() {
            Some("synthetic") => true,
            Some("real") => false,
            other => anyhow::bail!(
                "{} line {}: label {other:?} is not real or synthetic",
                path.display(),
                n + 2
            ),
        };
        let format = get(ri).filter(|f| !f.is_empty()).unwrap_or_else(|| {
            Path::new(&file)
                .extension()
                .map(|e| e.to_string_lossy().to_lowercase())
                .unwrap_or_default()
        });
        out.push(Labelled {
            generator: get(gi)
                .filter(|g| !g.is_empty())
                .unwrap_or_else(|| if synthetic { "synthetic" } else { "real" }.into()),
            file,
            synthetic,
            format,
        });
    }
    Ok(out)
}

/// Loads the instance's detector pool (the `[detectors]` settings).
///
/// # Errors
/// As [`DetectorPool::load`].
pub async fn load_pool(settings: &Settings) -> anyhow::Result<DetectorPool> {
    settings.check_model_paths(true, false)?;
    let d = &settings.detectors;
    let cfg = DetectorPoolConfig {
        registry_path: d.registry.clone(),
        onnxruntime_path: d.onnxruntime.clone(),
        queue_capacity: d.queue_capacity.max(64),
        intra_threads: d.intra_threads,
        execution_provider: if d.provider == "cuda" {
            ExecutionProvider::Cuda {
                device_id: d.cuda_device,
            }
        } else {
            ExecutionProvider::Cpu
        },
        timeout: std::time::Duration::from_secs(d.timeout_seconds.max(60)),
        max_batch: d.max_batch,
        max_wait: std::time::Duration::from_millis(d.max_wait_ms),
    };
    Ok(tokio::task::spawn_blocking(move || DetectorPool::load(&cfg)).await??)
}

/// One scored file.
#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    /// Path relative to the directory.
    pub file: String,
    /// Label.
    pub synthetic: bool,
    /// Generator or source.
    pub generator: String,
    /// Format.
    pub format: String,
    /// Per-model logits (mean over crops/windows), by model name.
    pub logits: BTreeMap<String, f32>,
    /// The detection summary, or the error that kept the file from being scored.
    pub detection: Result<Detection, String>,
}

/// Scores every labelled file under `dir` (a progress bar on a terminal, quiet otherwise).
/// With `only`, files of another media kind (by their sniffed format) are left out of the
/// result, so that one labels file can hold images and audio.
///
/// # Errors
/// Never for a single bad file (it is reported in [`Scored::detection`]); only for a broken
/// runtime.
pub async fn score_all(
    settings: &Settings,
    pool: &DetectorPool,
    dir: &Path,
    labels: &[Labelled],
    only: Option<MediaKind>,
) -> anyhow::Result<Vec<Scored>> {
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(labels.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files, {eta} left {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let limits = settings.media_limits();
    let mut out = Vec::with_capacity(labels.len());
    for l in labels {
        bar.set_message(l.file.clone());
        let path: PathBuf = dir.join(&l.file);
        let lim = limits;
        let decoded = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let bytes = std::fs::read(&path).map_err(|e| format!("reading: {e}"))?;
            let f = hallmark_media::sniff(&bytes).ok_or("unrecognised format")?;
            if only.is_some_and(|k| k != f.kind()) {
                return Ok(None);
            }
            match f.kind() {
                MediaKind::Image => hallmark_media::decode_image(&bytes, f, &lim)
                    .map(|d| Some(Either::Image(Arc::new(d.image))))
                    .map_err(|e| e.to_string()),
                _ => hallmark_media::decode_audio(&bytes, f, &lim)
                    .map(|c| Some(Either::Audio(Arc::new(c))))
                    .map_err(|e| e.to_string()),
            }
        })
        .await?;
        let detection = match decoded {
            Ok(None) => {
                bar.inc(1);
                continue;
            }
            Err(e) => Err(e),
            Ok(Some(Either::Image(i))) => pool.score_image(i).await.map_err(|e| e.to_string()),
            Ok(Some(Either::Audio(a))) => pool.score_audio(a).await.map_err(|e| e.to_string()),
        };
        let logits = detection
            .as_ref()
            .map(|d| {
                d.models
                    .iter()
                    .map(|m| (m.model.clone(), m.logit))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Scored {
            file: l.file.clone(),
            synthetic: l.synthetic,
            generator: l.generator.clone(),
            format: l.format.clone(),
            logits,
            detection,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}

enum Either {
    Image(Arc<image::DynamicImage>),
    Audio(Arc<hallmark_media::AudioClip>),
}

/// The evaluation of a scored set.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Files scored with a probability.
    pub scored: usize,
    /// Files that got `no_signal` without a probability, or failed to decode.
    pub unscored: Vec<(String, String)>,
    /// All files.
    pub overall: Metrics,
    /// Each generator's files against all real files.
    pub per_generator: BTreeMap<String, Metrics>,
    /// Per format.
    pub per_format: BTreeMap<String, Metrics>,
    /// Real files in the `likely_synthetic` band, and their number.
    pub real_flagged: usize,
    /// Real files with a probability.
    pub real_scored: usize,
}

/// Computes the metrics over the files that have a probability.
pub fn evaluate(scored: &[Scored]) -> EvalReport {
    let mut unscored = Vec::new();
    let mut rows = Vec::new();
    for s in scored {
        match &s.detection {
            Ok(d) => match d.probability {
                Some(p) => rows.push((s, f64::from(p), d.band)),
                None => unscored.push((s.file.clone(), d.note.clone().unwrap_or_default())),
            },
            Err(e) => unscored.push((s.file.clone(), e.clone())),
        }
    }
    let m = |f: &dyn Fn(&Scored) -> bool| {
        let (sc, lb): (Vec<f64>, Vec<bool>) = rows
            .iter()
            .filter(|(s, _, _)| f(s))
            .map(|(s, p, _)| (*p, s.synthetic))
            .unzip();
        eval::metrics(&sc, &lb)
    };
    let mut per_generator = BTreeMap::new();
    for g in rows
        .iter()
        .filter(|(s, _, _)| s.synthetic)
        .map(|(s, _, _)| s.generator.clone())
        .collect::<std::collections::BTreeSet<_>>()
    {
        per_generator.insert(g.clone(), m(&|s: &Scored| !s.synthetic || s.generator == g));
    }
    let mut per_format = BTreeMap::new();
    for f in rows
        .iter()
        .map(|(s, _, _)| s.format.clone())
        .collect::<std::collections::BTreeSet<_>>()
    {
        per_format.insert(f.clone(), m(&|s: &Scored| s.format == f));
    }
    let real: Vec<_> = rows.iter().filter(|(s, _, _)| !s.synthetic).collect();
    EvalReport {
        scored: rows.len(),
        unscored,
        overall: m(&|_| true),
        per_generator,
        per_format,
        real_flagged: real
            .iter()
            .filter(|(_, _, b)| *b == hallmark_detectors::Band::LikelySynthetic)
            .count(),
        real_scored: real.len(),
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "–".into())
}

/// The report as a Markdown table, the model cards' layout.
pub fn render(r: &EvalReport) -> String {
    let mut s = String::from(
        "| stratum | synthetic | real | AUC [95 % CI] | EER | TPR@1 %FPR | TPR@5 %FPR |\n|---|---|---|---|---|---|---|\n",
    );
    let row = |name: &str, m: &Metrics| {
        let ci = m
            .auc_ci
            .map(|(a, b)| format!(" [{a:.3}, {b:.3}]"))
            .unwrap_or_default();
        format!(
            "| {name} | {} | {} | {}{ci} | {} | {} | {} |\n",
            m.n_synthetic,
            m.n_real,
            fmt_opt(m.auc),
            fmt_opt(m.eer),
            fmt_opt(m.tpr_at_1pct_fpr),
            fmt_opt(m.tpr_at_5pct_fpr)
        )
    };
    s.push_str(&row("all", &r.overall));
    for (g, m) in &r.per_generator {
        s.push_str(&row(&format!("{g} vs all real"), m));
    }
    for (f, m) in &r.per_format {
        s.push_str(&row(&format!("format {f}"), m));
    }
    s.push_str(&format!(
        "\nreal files in the likely_synthetic band: {} of {}\nscored {} files; {} without a probability\n",
        r.real_flagged,
        r.real_scored,
        r.scored,
        r.unscored.len()
    ));
    for (f, why) in &r.unscored {
        s.push_str(&format!("  {f}: {why}\n"));
    }
    s
}

/// Draws the ROC of `scores` as a 400×400 PNG (axes, chance diagonal, curve).
///
/// # Errors
/// When the PNG cannot be written.
pub fn plot_roc(path: &Path, scores: &[f64], labels: &[bool]) -> anyhow::Result<()> {
    const N: u32 = 400;
    const M: u32 = 30;
    let mut img = image::RgbImage::from_pixel(N, N, image::Rgb([255, 255, 255]));
    let span = f64::from(N - 2 * M);
    let to_px = |x: f64, y: f64| {
        (
            (f64::from(M) + x * span).round() as i64,
            (f64::from(N - M) - y * span).round() as i64,
        )
    };
    let mut line = |a: (f64, f64), b: (f64, f64), c: [u8; 3], w: i64| {
        let (p, q) = (to_px(a.0, a.1), to_px(b.0, b.1));
        let steps = (q.0 - p.0).abs().max((q.1 - p.1).abs()).max(1);
        for i in 0..=steps {
            let x = p.0 + (q.0 - p.0) * i / steps;
            let y = p.1 + (q.1 - p.1) * i / steps;
            for dx in -w..=w {
                for dy in -w..=w {
                    let (px, py) = (x + dx, y + dy);
                    if (0..i64::from(N)).contains(&px) && (0..i64::from(N)).contains(&py) {
                        img.put_pixel(px as u32, py as u32, image::Rgb(c));
                    }
                }
            }
        }
    };
    line((0.0, 0.0), (1.0, 0.0), [0, 0, 0], 0);
    line((0.0, 0.0), (0.0, 1.0), [0, 0, 0], 0);
    line((0.0, 0.0), (1.0, 1.0), [170, 170, 170], 0);
    let pts = eval::roc(scores, labels);
    for w in pts.windows(2) {
        line(w[0], w[1], [31, 119, 180], 1);
    }
    img.save(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Fits Platt calibration and thresholds for `model` on scored files and rewrites that
/// model's `[model.calibration]` in the registry at `registry`. Returns the new table.
///
/// # Errors
/// Too few files of either class (at least 10 real and 10 synthetic scored by the model), or
/// a registry that cannot be read or written.
pub fn calibrate(
    registry: &Path,
    model: &str,
    scored: &[Scored],
    fpr: f64,
    fpr_low: f64,
    write: bool,
) -> anyhow::Result<toml::Table> {
    let (logits, labels): (Vec<f64>, Vec<bool>) = scored
        .iter()
        .filter_map(|s| s.logits.get(model).map(|l| (f64::from(*l), s.synthetic)))
        .unzip();
    let (n1, n0) = (
        labels.iter().filter(|&&l| l).count(),
        labels.iter().filter(|&&l| !l).count(),
    );
    if n1 < 10 || n0 < 10 {
        anyhow::bail!("model `{model}` scored {n1} synthetic and {n0} real files; calibration needs at least 10 of each");
    }
    let (a, b) = eval::fit_platt(&logits, &labels);
    let p = |x: f64| 1.0 / (1.0 + (-(a * x + b)).exp());
    let real: Vec<f64> = logits
        .iter()
        .zip(&labels)
        .filter(|(_, &l)| !l)
        .map(|(x, _)| p(*x))
        .collect();
    let mut cal = toml::Table::new();
    cal.insert("method".into(), "platt".into());
    cal.insert("a".into(), a.into());
    cal.insert("b".into(), b.into());
    cal.insert(
        "threshold_likely_synthetic".into(),
        eval::threshold_at_fpr(&real, fpr).min(1.0).into(),
    );
    cal.insert(
        "threshold_inconclusive".into(),
        eval::threshold_at_fpr(&real, fpr_low)
            .min(eval::threshold_at_fpr(&real, fpr))
            .into(),
    );
    cal.insert("fpr_target".into(), fpr.into());
    cal.insert(
        "fitted_on".into(),
        format!(
            "hallmark detectors calibrate: {n1} synthetic and {n0} real files (in-sample: refit on held-out media before trusting the rate)"
        )
        .into(),
    );
    if write {
        let text = std::fs::read_to_string(registry)
            .with_context(|| format!("reading {}", registry.display()))?;
        let mut doc: toml::Table = toml::from_str(&text)?;
        let models = doc
            .get_mut("model")
            .and_then(|m| m.as_array_mut())
            .context("the registry has no [[model]] entries")?;
        let entry = models
            .iter_mut()
            .filter_map(|m| m.as_table_mut())
            .find(|m| m.get("name").and_then(|n| n.as_str()) == Some(model))
            .with_context(|| format!("the registry has no model `{model}`"))?;
        entry.insert("calibration".into(), toml::Value::Table(cal.clone()));
        let out = format!(
            "# Calibration of `{model}` refitted by `hallmark detectors calibrate`.\n{}",
            toml::to_string(&doc)?
        );
        // Check that the result still parses as a registry before replacing the file.
        hallmark_detectors::Registry::parse(&out, registry)?;
        crate::tools::write_atomic(registry, out.as_bytes())?;
    }
    Ok(cal)
}
