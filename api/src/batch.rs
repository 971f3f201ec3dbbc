//! `hallmark verify PATH... [--recursive] [--jobs N] [--output FILE]`: the same verification as
//! `POST /v1/verify` over many files, `N` at a time, one result per file as JSON Lines (or CSV
//! when the output file ends in `.csv`), a progress bar on a terminal (none when piped), and a
//! summary on stderr. The exit status is non-zero only for files that could not be verified,
//! never for a verdict.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};

use futures_util::StreamExt as _;
use serde_json::{json, Value};

use crate::report::VerificationReport;
use crate::state::AppState;

/// What to verify and where the results go.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Files and directories.
    pub paths: Vec<PathBuf>,
    /// Walk directories recursively (otherwise only their direct files).
    pub recursive: bool,
    /// Files verified concurrently (≥ 1).
    pub jobs: usize,
    /// Results file (`.csv` → CSV, anything else → JSON Lines); `None` = JSON Lines on stdout.
    pub output: Option<PathBuf>,
}

/// Counts after a run.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Files verified, by verdict label.
    pub verdicts: BTreeMap<String, usize>,
    /// Files found in directories that are not media Hallmark reads (not failures).
    pub skipped: usize,
    /// Files that could not be verified.
    pub failed: usize,
}

impl Summary {
    /// The summary table printed at the end.
    pub fn table(&self) -> String {
        let mut out = String::from("verdict                     files\n");
        for (label, n) in &self.verdicts {
            out.push_str(&format!("{label:<26} {n:>6}\n"));
        }
        out.push_str(&format!(
            "{:<26} {:>6}\n",
            "(skipped: not media)", self.skipped
        ));
        out.push_str(&format!("{:<26} {:>6}\n", "(failed)", self.failed));
        out
    }
}

/// One input: its path and whether it came from a directory walk.
struct Input {
    path: PathBuf,
    from_dir: bool,
}

fn walk(dir: &Path, recursive: bool, out: &mut Vec<Input>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let ft = e.file_type()?;
        if ft.is_dir() {
            if recursive {
                walk(&path, true, out)?;
            }
        } else if ft.is_file() || path.is_file() {
            out.push(Input {
                path,
                from_dir: true,
            });
        }
    }
    Ok(())
}

fn collect(paths: &[PathBuf], recursive: bool) -> anyhow::Result<Vec<Input>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, recursive, &mut out)?;
        } else {
            out.push(Input {
                path: p.clone(),
                from_dir: false,
            });
        }
    }
    Ok(out)
}

/// One result row.
fn row(path: &Path, result: &Result<VerificationReport, (String, String)>) -> Value {
    match result {
        Ok(r) => json!({
            "file": path.display().to_string(),
            "ok": true,
            "verification_id": r.id,
            "sha256": r.sha256,
            "media_type": r.media_type,
            "verdict": r.verdict.label,
            "reasons": r.verdict.reasons,
            "c2pa": {
                "present": r.c2pa.present,
                "validation_state": r.c2pa.validation_state,
            },
            "watermark": {"detected": r.watermark.detected, "p_value": r.watermark.p_value},
            "detectors": r.detectors.iter().map(|d| json!({
                "model": d.model, "score": d.score, "band": d.band,
            })).collect::<Vec<_>>(),
        }),
        Err((code, message)) => json!({
            "file": path.display().to_string(),
            "ok": false,
            "error": {"code": code, "message": message},
        }),
    }
}

/// RFC 4180 field.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

const CSV_HEADER: &str = "file,ok,verdict,verification_id,media_type,c2pa_state,watermark_detected,max_detector_score,error_code,error";

fn csv_line(v: &Value) -> String {
    let s = |p: &str| match v.pointer(p) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let max = v["detectors"]
        .as_array()
        .and_then(|d| {
            d.iter()
                .filter_map(|m| m["score"].as_f64())
                .reduce(f64::max)
        })
        .map(|x| format!("{x:.4}"))
        .unwrap_or_default();
    [
        s("/file"),
        s("/ok"),
        s("/verdict"),
        s("/verification_id"),
        s("/media_type"),
        s("/c2pa/validation_state"),
        s("/watermark/detected"),
        max,
        s("/error/code"),
        s("/error/message"),
    ]
    .iter()
    .map(|f| csv_field(f))
    .collect::<Vec<_>>()
    .join(",")
}

async fn verify_one(state: &AppState, path: &Path) -> Result<VerificationReport, (String, String)> {
    let limit = state.settings.server.max_upload_bytes;
    let bytes = match std::fs::metadata(path) {
        Ok(m) if m.len() > limit as u64 => {
            return Err((
                "payload_too_large".into(),
                format!("{} bytes, over server.max_upload_bytes ({limit})", m.len()),
            ))
        }
        Ok(_) => tokio::fs::read(path).await,
        Err(e) => Err(e),
    }
    .map_err(|e| ("read_failed".to_owned(), e.to_string()))?;
    crate::service::verify(state, bytes, "cli")
        .await
        .map_err(|e| (e.code_and_status().0.to_owned(), e.to_string()))
}

/// Verifies every file under `opts.paths`; writes one row per file as it completes.
///
/// # Errors
/// Unreadable directories, an unwritable output; per-file failures are rows, counted in
/// [`Summary::failed`].
pub async fn verify_batch(state: &AppState, opts: &BatchOptions) -> anyhow::Result<Summary> {
    let inputs = collect(&opts.paths, opts.recursive)?;
    let csv = opts
        .output
        .as_ref()
        .is_some_and(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")));
    let tmp = opts
        .output
        .as_ref()
        .map(|p| p.with_extension("hallmark-tmp"));
    let mut sink: Box<dyn Write> = match &tmp {
        Some(t) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(t)
                .map_err(|e| anyhow::anyhow!("creating {}: {e}", t.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    if csv {
        writeln!(sink, "{CSV_HEADER}")?;
    }
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(inputs.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} files, {per_sec}, {eta} left {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut summary = Summary::default();
    let mut results = futures_util::stream::iter(inputs.iter())
        .map(|i| async move { (i, verify_one(state, &i.path).await) })
        .buffer_unordered(opts.jobs.max(1));
    while let Some((input, result)) = results.next().await {
        bar.inc(1);
        match &result {
            Ok(r) => *summary.verdicts.entry(r.verdict.label.clone()).or_insert(0) += 1,
            Err((code, _)) if input.from_dir && code == "unsupported_media_type" => {
                summary.skipped += 1;
                continue;
            }
            Err(_) => summary.failed += 1,
        }
        let v = row(&input.path, &result);
        if csv {
            writeln!(sink, "{}", csv_line(&v))?;
        } else {
            writeln!(sink, "{v}")?;
        }
    }
    bar.finish_and_clear();
    sink.flush()?;
    drop(sink);
    if let (Some(t), Some(out)) = (tmp, &opts.output) {
        std::fs::rename(&t, out)?;
    }
    Ok(summary)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        let v = json!({"file": "x,y.png", "ok": false, "error": {"code": "corrupt_media", "message": "bad\nfile"}});
        assert_eq!(
            csv_line(&v),
            "\"x,y.png\",false,,,,,,,corrupt_media,\"bad\nfile\""
        );
    }

    #[test]
    fn walks_sorted_skipping_hidden() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("sub")).unwrap();
        for f in ["b.png", "a.png", ".hidden", "sub/c.wav"] {
            std::fs::write(d.path().join(f), b"x").unwrap();
        }
        let names = |recursive| {
            collect(&[d.path().to_path_buf()], recursive)
                .unwrap()
                .iter()
                .map(|i| i.path.strip_prefix(d.path()).unwrap().display().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(false), ["a.png", "b.png"]);
        assert_eq!(names(true), ["a.png", "b.png", "sub/c.wav"]);
    }
}
