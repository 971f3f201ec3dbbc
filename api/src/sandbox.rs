//! C2PA validation of untrusted uploads in a child process with time and memory bounds.
//!
//! Hostile files exist (a malformed TIFF among them) that make c2pa-rs 0.90 run for minutes and
//! allocate gigabytes before failing. The service therefore validates each upload by running
//! its own executable as `hallmark internal c2pa-verify` with the file on stdin: the child caps
//! its address space (`RLIMIT_AS`) and CPU time (`RLIMIT_CPU`) before reading, and the parent
//! kills it at the wall-clock timeout. A child that dies or times out yields a report with
//! `read_error.code = "resource_limit"` — a verdict, not a server error.

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;

use hallmark_provenance::{verify_media, C2paReport, TrustConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Limits of one sandboxed validation.
#[derive(Debug, Clone)]
pub struct SandboxLimits {
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Address-space limit in bytes.
    pub memory_bytes: u64,
}

/// Largest report the parent accepts from the child.
const MAX_REPORT_BYTES: usize = 16 * 1024 * 1024;

/// Validates `bytes` (MIME `format`) in a child process. A child that exceeds its limits
/// yields a report with `read_error.code = "resource_limit"`.
///
/// # Errors
/// When the validator can't be run at all (a server fault: no report is better than a wrong one).
pub async fn verify_sandboxed(
    bytes: &[u8],
    format: &str,
    trust: &TrustConfig,
    limits: &SandboxLimits,
) -> Result<C2paReport, String> {
    verify_sandboxed_with(bytes, None, format, trust, limits).await
}

/// Like [`verify_sandboxed`], validating `manifest_store` (a stored JUMBF manifest store)
/// against `bytes` instead of the manifest embedded in them, when given.
///
/// # Errors
/// See [`verify_sandboxed`].
pub async fn verify_sandboxed_with(
    bytes: &[u8],
    manifest_store: Option<&[u8]>,
    format: &str,
    trust: &TrustConfig,
    limits: &SandboxLimits,
) -> Result<C2paReport, String> {
    match run_child(bytes, manifest_store, format, trust, limits).await {
        Ok(r) => Ok(r),
        Err(ChildFailure::Limit(msg)) => Ok(C2paReport::from_read_error("resource_limit", msg)),
        Err(ChildFailure::Other(msg)) => {
            tracing::error!(%msg, "c2pa sandbox failure");
            Err(msg)
        }
    }
}

enum ChildFailure {
    Limit(String),
    Other(String),
}

async fn run_child(
    bytes: &[u8],
    manifest_store: Option<&[u8]>,
    format: &str,
    trust: &TrustConfig,
    limits: &SandboxLimits,
) -> Result<C2paReport, ChildFailure> {
    // /proc/self/exe still runs this very binary after the file on disk was replaced or
    // deleted (an in-place upgrade); current_exe() would name the new or missing file.
    let proc_exe = std::path::Path::new("/proc/self/exe");
    let exe = if proc_exe.exists() {
        proc_exe.to_path_buf()
    } else {
        std::env::current_exe().map_err(|e| ChildFailure::Other(e.to_string()))?
    };
    let trust_json = serde_json::to_vec(trust).map_err(|e| ChildFailure::Other(e.to_string()))?;
    let mut child = tokio::process::Command::new(exe)
        .args([
            "internal",
            "c2pa-verify",
            "--format",
            format,
            "--memory-bytes",
            &limits.memory_bytes.to_string(),
            "--cpu-seconds",
            &(limits.timeout.as_secs() + 1).to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ChildFailure::Other(format!("spawning validator: {e}")))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| ChildFailure::Other("no stdin".into()))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| ChildFailure::Other("no stdout".into()))?;
    let input = {
        // Frame: trust JSON length (u32 LE), trust JSON, manifest store length (u32 LE, 0 =
        // none), manifest store, then the file.
        let store = manifest_store.unwrap_or_default();
        let mut v = Vec::with_capacity(8 + trust_json.len() + store.len() + bytes.len());
        v.extend_from_slice(&(trust_json.len() as u32).to_le_bytes());
        v.extend_from_slice(&trust_json);
        v.extend_from_slice(&(store.len() as u32).to_le_bytes());
        v.extend_from_slice(store);
        v.extend_from_slice(bytes);
        v
    };
    let work = async {
        let writer = async {
            // The child may exit early (limit hit) and close its stdin: ignore EPIPE.
            let _ = stdin.write_all(&input).await;
            drop(stdin);
        };
        let mut out = Vec::new();
        let reader = async {
            (&mut stdout)
                .take(MAX_REPORT_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .await
        };
        let (_, read) = tokio::join!(writer, reader);
        read.map_err(|e| ChildFailure::Other(e.to_string()))?;
        let status = child
            .wait()
            .await
            .map_err(|e| ChildFailure::Other(e.to_string()))?;
        Ok::<_, ChildFailure>((status, out))
    };
    match tokio::time::timeout(limits.timeout, work).await {
        Err(_) => Err(ChildFailure::Limit(format!(
            "manifest validation exceeded the {} s time limit",
            limits.timeout.as_secs()
        ))),
        Ok(Err(e)) => Err(e),
        Ok(Ok((status, out))) => {
            if !status.success() || out.len() > MAX_REPORT_BYTES {
                return Err(ChildFailure::Limit(
                    "manifest validation exceeded its memory or CPU limit".into(),
                ));
            }
            serde_json::from_slice(&out)
                .map_err(|e| ChildFailure::Other(format!("validator output: {e}")))
        }
    }
}

/// Body of `hallmark internal c2pa-verify`: applies the limits to this process, reads the
/// framed input from stdin, validates, and writes the report JSON to stdout.
///
/// # Errors
/// I/O errors, malformed framing, or a trust configuration c2pa rejects.
pub fn child_main(format: &str, memory_bytes: u64, cpu_seconds: u64) -> anyhow::Result<()> {
    rlimit::setrlimit(rlimit::Resource::AS, memory_bytes, memory_bytes)?;
    rlimit::setrlimit(rlimit::Resource::CPU, cpu_seconds, cpu_seconds + 1)?;
    let mut input = Vec::new();
    std::io::stdin().lock().read_to_end(&mut input)?;
    if input.len() < 4 {
        anyhow::bail!("truncated input");
    }
    let n = u32::from_le_bytes([input[0], input[1], input[2], input[3]]) as usize;
    let trust_end = 4usize
        .checked_add(n)
        .filter(|e| *e <= input.len())
        .ok_or_else(|| anyhow::anyhow!("truncated trust header"))?;
    let trust: TrustConfig = serde_json::from_slice(&input[4..trust_end])?;
    let len_end = trust_end
        .checked_add(4)
        .filter(|e| *e <= input.len())
        .ok_or_else(|| anyhow::anyhow!("truncated manifest header"))?;
    let mut n = [0u8; 4];
    n.copy_from_slice(&input[trust_end..len_end]);
    let store_end = len_end
        .checked_add(u32::from_le_bytes(n) as usize)
        .filter(|e| *e <= input.len())
        .ok_or_else(|| anyhow::anyhow!("truncated manifest store"))?;
    let file = &input[store_end..];
    let report = if store_end == len_end {
        verify_media(file, format, &trust)?
    } else {
        hallmark_provenance::verify_manifest_store(
            &input[len_end..store_end],
            file,
            format,
            &trust,
        )?
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &report)?;
    out.flush()?;
    Ok(())
}
