//! Batch CLI over many files, `N` at a time, with a progress bar on a terminal (none when
//! piped) and a summary on stderr; the exit status is non-zero only for files that failed.
//!
//! * `hallmark verify PATH... [--recursive] [--jobs N] [--output FILE]`: the same verification
//!   as `POST /v1/verify`, one result per file as JSON Lines (or CSV when the output file ends
//!   in `.csv`). A verdict is never a failure.
//! * `hallmark sign PATH... -o DIR [--recursive] [--jobs N] --model M …`: the same signing as
//!   `POST /v1/sign`; each signed file goes to `DIR` under its path relative to the directory
//!   it was found in (or its file name), one JSON line per file on stdout.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};

use futures_util::StreamExt as _;
use serde_json::{json, Value};

use crate::report::VerificationReport;
use crate::state::AppState;

/// What to process and where the results go.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Files and directories.
    pub paths: Vec<PathBuf>,
    /// Walk directories recursively (otherwise only their direct files).
    pub recursive: bool,
    /// Files processed concurrently (≥ 1).
    pub jobs: usize,
    /// Verify: results file (`.csv` → CSV, anything else → JSON Lines), `None` = JSON Lines on
    /// stdout. Sign: the output directory.
    pub output: Option<PathBuf>,
}

impl BatchOptions {
    /// Options from the command line.
    pub fn new(paths: Vec<PathBuf>, recursive: bool, jobs: usize, output: Option<PathBuf>) -> Self {
        Self {
            paths,
            recursive,
            jobs,
            output,
        }
    }

    /// Several paths, a directory or `--recursive`: a batch run (else the single-file command).
    pub fn is_batch(&self) -> bool {
        self.paths.len() > 1 || self.paths.iter().any(|p| p.is_dir()) || self.recursive
    }
}

/// The batch commands: verify (`meta = None`) or sign with `meta`; prints the summary on
/// stderr.
///
/// # Errors
/// Start-up failures, as [`verify_batch`] / [`sign_batch`], and at the end one naming how many
/// files failed (so the exit status is 1 only then).
pub async fn cli(
    settings: crate::settings::Settings,
    opts: BatchOptions,
    meta: Option<crate::service::SignMetadata>,
) -> anyhow::Result<()> {
    let state = AppState::init(settings).await?;
    let (summary, what) = match &meta {
        Some(m) => (sign_batch(&state, &opts, m).await?, "signed"),
        None => (verify_batch(&state, &opts).await?, "verified"),
    };
    eprint!("{}", summary.table());
    if summary.failed > 0 {
        anyhow::bail!("{} file(s) could not be {what}", summary.failed);
    }
    Ok(())
}

/// Counts after a run.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Files done, by verdict label (verify) or `signed` (sign).
    pub verdicts: BTreeMap<String, usize>,
    /// Files found in directories that are not media Hallmark reads (not failures).
    pub skipped: usize,
    /// Files that could not be verified.
    pub failed: usize,
}

impl Summary {
    /// The summary table printed at the end.
    pub fn table(&self) -> String {
        let mut out = String::from("result                      files\n");
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

/// One input: its path, and the directory walk it came from (`None`: named explicitly).
struct Input {
    path: PathBuf,
    root: Option<PathBuf>,
}

impl Input {
    /// Where its output goes under `out`: the path relative to its walk's root, or its name.
    fn output_under(&self, out: &Path) -> PathBuf {
        match &self.root {
            Some(r) => out.join(self.path.strip_prefix(r).unwrap_or(&self.path)),
            None => out.join(self.path.file_name().unwrap_or_default()),
        }
    }
}

/// A file's outcome: the summary label and its row, or `(code, message)`.
type Outcome = Result<(String, Value), (String, String)>;

fn walk(root: &Path, dir: &Path, recursive: bool, out: &mut Vec<Input>) -> anyhow::Result<()> {
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
                walk(root, &path, true, out)?;
            }
        } else if ft.is_file() || path.is_file() {
            out.push(Input {
                path,
                root: Some(root.to_path_buf()),
            });
        }
    }
    Ok(())
}

fn collect(paths: &[PathBuf], recursive: bool) -> anyhow::Result<Vec<Input>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, p, recursive, &mut out)?;
        } else {
            out.push(Input {
                path: p.clone(),
                root: None,
            });
        }
    }
    Ok(out)
}

fn error_row(path: &Path, code: &str, message: &str) -> Value {
    json!({
        "file": path.display().to_string(),
        "ok": false,
        "error": {"code": code, "message": message},
    })
}

/// A verification's row.
fn verify_row(path: &Path, r: &VerificationReport) -> Value {
    json!({
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
    })
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

async fn read_one(state: &AppState, path: &Path) -> Result<Vec<u8>, (String, String)> {
    let limit = state.settings.server.max_upload_bytes;
    match tokio::fs::metadata(path).await {
        Ok(m) if m.len() > limit as u64 => Err((
            "payload_too_large".into(),
            format!("{} bytes, over server.max_upload_bytes ({limit})", m.len()),
        )),
        Ok(_) => tokio::fs::read(path)
            .await
            .map_err(|e| ("read_failed".to_owned(), e.to_string())),
        Err(e) => Err(("read_failed".to_owned(), e.to_string())),
    }
}

fn api_err(e: crate::error::ApiError) -> (String, String) {
    (e.code_and_status().0.to_owned(), e.to_string())
}

fn progress_bar(len: usize) -> indicatif::ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(len as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} files, {per_sec}, {eta} left {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Runs `f` over `inputs`, `jobs` at a time, handing each row to `emit` as it completes.
async fn run<'a, F, Fut>(
    inputs: &'a [Input],
    jobs: usize,
    mut emit: impl FnMut(&Value) -> std::io::Result<()>,
    f: F,
) -> anyhow::Result<Summary>
where
    F: Fn(&'a Input) -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let bar = progress_bar(inputs.len());
    let mut summary = Summary::default();
    let mut results = futures_util::stream::iter(inputs.iter())
        .map(|i| {
            let fut = f(i);
            async move { (i, fut.await) }
        })
        .buffer_unordered(jobs.max(1));
    while let Some((input, outcome)) = results.next().await {
        bar.inc(1);
        let row = match outcome {
            Ok((label, row)) => {
                *summary.verdicts.entry(label).or_insert(0) += 1;
                row
            }
            Err((code, _)) if input.root.is_some() && code == "unsupported_media_type" => {
                summary.skipped += 1;
                continue;
            }
            Err((code, message)) => {
                summary.failed += 1;
                error_row(&input.path, &code, &message)
            }
        };
        emit(&row)?;
    }
    bar.finish_and_clear();
    Ok(summary)
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
    let tmp = opts.output.as_ref().map(|p| crate::tools::temp_sibling(p));
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
    let summary = run(
        &inputs,
        opts.jobs,
        |row| {
            if csv {
                writeln!(sink, "{}", csv_line(row))
            } else {
                writeln!(sink, "{row}")
            }
        },
        |input| async move {
            let bytes = read_one(state, &input.path).await?;
            let r = crate::service::verify(state, bytes, "cli")
                .await
                .map_err(api_err)?;
            Ok((r.verdict.label.clone(), verify_row(&input.path, &r)))
        },
    )
    .await?;
    sink.flush()?;
    drop(sink);
    if let (Some(t), Some(out)) = (tmp, &opts.output) {
        std::fs::rename(&t, out)?;
    }
    Ok(summary)
}

/// Signs every file under `opts.paths` with `meta` into the directory `opts.output` (created
/// if needed; existing files there are replaced); one JSON line per file on stdout.
///
/// # Errors
/// No output directory, unreadable directories; per-file failures are rows.
pub async fn sign_batch(
    state: &AppState,
    opts: &BatchOptions,
    meta: &crate::service::SignMetadata,
) -> anyhow::Result<Summary> {
    let out_dir = opts
        .output
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("signing several files needs -o DIR"))?;
    if out_dir.exists() && !out_dir.is_dir() {
        anyhow::bail!(
            "{} is not a directory (signing several files writes into -o DIR)",
            out_dir.display()
        );
    }
    let inputs = collect(&opts.paths, opts.recursive)?;
    let mut stdout = std::io::stdout();
    run(
        &inputs,
        opts.jobs,
        |row| writeln!(stdout, "{row}"),
        |input| async move {
            let bytes = read_one(state, &input.path).await?;
            let out = crate::service::sign(state, bytes, meta.clone(), "cli")
                .await
                .map_err(api_err)?;
            let target = input.output_under(out_dir);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| ("write_failed".to_owned(), e.to_string()))?;
            }
            crate::tools::write_atomic(&target, &out.bytes)
                .map_err(|e| ("write_failed".to_owned(), e.to_string()))?;
            let row = json!({
                "file": input.path.display().to_string(),
                "ok": true,
                "output": target.display().to_string(),
                "asset_id": out.asset_id,
                "manifest_label": out.manifest_label,
                "watermark_payload": out.payload,
            });
            Ok(("signed".to_owned(), row))
        },
    )
    .await
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
