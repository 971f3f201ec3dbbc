//! Offline audit tools behind `hallmark audit …`: export and verify an export, print the
//! log's public key, verify a receipt, and the monitor an external auditor runs from cron.
//! None of them needs the database except `export`.

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use hallmark_audit::{
    leaf_hash, parse_hex_hash, verify_consistency, Checkpoint, CompactRange, LogReport,
    LogVerifier, NoteVerifier, Receipt,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Reads a note verifier key (`name+id+base64`) from a file.
///
/// # Errors
/// Unreadable file or malformed key.
pub fn read_verifier_key(path: &Path) -> anyhow::Result<NoteVerifier> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    NoteVerifier::parse(text.trim()).map_err(|e| anyhow!("malformed_key: {}: {e}", path.display()))
}

/// `hallmark audit export`: one JSON line per leaf (`leaf_index`, `leaf_hash`, `entry`),
/// then one per stored checkpoint (`tree_size`, `checkpoint`).
///
/// # Errors
/// Database or I/O failures.
pub async fn export(
    log: &hallmark_store::AuditLog,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<u64> {
    let mut from = 0u64;
    let mut n = 0u64;
    loop {
        let page = log.list_entries(from, 1000).await?;
        let Some(last) = page.last() else { break };
        from = last.leaf_index + 1;
        for e in &page {
            let line =
                json!({"leaf_index": e.leaf_index, "leaf_hash": e.leaf_hash, "entry": e.entry});
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
            n += 1;
        }
    }
    let mut size = 0u64;
    loop {
        let page = log.list_checkpoints(size, 1000).await?;
        let Some(last) = page.last() else { break };
        size = last.tree_size;
        for cp in &page {
            let line = json!({"tree_size": cp.tree_size, "checkpoint": cp.note});
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(n)
}

#[derive(Deserialize)]
struct ExportLine {
    leaf_index: Option<u64>,
    leaf_hash: Option<String>,
    entry: Option<String>,
    tree_size: Option<u64>,
    checkpoint: Option<String>,
    prev_hash: Option<String>,
}

/// Result of `hallmark audit verify`: a tree export's report, or a legacy chain's.
#[derive(Serialize)]
#[serde(untagged)]
pub enum ExportReport {
    /// An export of the transparency log.
    Log(LogReport),
    /// A hash-chain export written before the log became a Merkle tree.
    Chain(hallmark_audit::ChainReport),
}

impl ExportReport {
    /// Whether everything verified.
    pub fn valid(&self) -> bool {
        match self {
            Self::Log(r) => r.valid,
            Self::Chain(r) => r.valid,
        }
    }
}

/// `hallmark audit verify FILE`: recomputes the tree from the exported leaves and checks
/// every exported checkpoint against `verifier`; a hash-chain export is verified as one.
///
/// # Errors
/// Unreadable file or a line that is neither a leaf nor a checkpoint.
pub fn verify_export(path: &Path, verifier: NoteVerifier) -> anyhow::Result<ExportReport> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let first: Option<ExportLine> = text
        .as_slice()
        .lines()
        .map_while(Result::ok)
        .find(|l| !l.trim().is_empty())
        .and_then(|l| serde_json::from_str(&l).ok());
    if first.is_some_and(|l| l.prev_hash.is_some()) {
        return Ok(ExportReport::Chain(hallmark_audit::verify_json_lines(
            &text[..],
        )));
    }
    let mut leaves = Vec::new();
    let mut checkpoints = Vec::new();
    for (i, line) in text.as_slice().lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let l: ExportLine = serde_json::from_str(&line)
            .with_context(|| format!("line {}: not an export line", i + 1))?;
        match (l.leaf_index, l.entry, l.tree_size, l.checkpoint) {
            (Some(idx), Some(entry), _, _) => leaves.push((idx, l.leaf_hash, entry)),
            (_, _, Some(size), Some(cp)) => checkpoints.push((size, cp)),
            _ => bail!("line {}: neither a leaf nor a checkpoint", i + 1),
        }
    }
    let mut v = LogVerifier::new(verifier, checkpoints);
    for (idx, h, entry) in leaves {
        let stored = h.as_deref().map(parse_hex_hash).transpose()?;
        v.push_leaf(idx, entry.as_bytes(), stored.as_ref());
    }
    Ok(ExportReport::Log(v.finish()))
}

/// Stable code of a receipt failure (what `verify-receipt` prints).
fn receipt_code(e: &hallmark_audit::ReceiptError) -> &'static str {
    use hallmark_audit::{CheckpointError as C, NoteError as N, ReceiptError as R};
    match e {
        R::Checkpoint(C::WrongOrigin { .. }) | R::Checkpoint(C::Note(N::NoSignature(_))) => {
            "wrong_log"
        }
        R::Checkpoint(C::Note(N::BadSignature(_))) => "bad_signature",
        R::Checkpoint(_) => "malformed_checkpoint",
        R::MalformedHash(_) => "malformed_receipt",
        R::LeafMismatch => "leaf_mismatch",
        R::Proof(hallmark_audit::ProofError::OutOfRange(_)) => "out_of_range",
        R::Proof(_) => "proof_invalid",
    }
}

/// `hallmark audit verify-receipt FILE --verifier-key KEY`: accepts a receipt, or a
/// `POST /v1/decisions` response holding one. Returns `{valid, origin, tree_size,
/// leaf_index}`.
///
/// # Errors
/// `<code>: <detail>` with code one of `malformed_receipt`, `wrong_log`, `bad_signature`,
/// `malformed_checkpoint`, `leaf_mismatch`, `out_of_range`, `proof_invalid`.
pub fn verify_receipt(path: &Path, verifier: &NoteVerifier) -> anyhow::Result<Value> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut v: Value =
        serde_json::from_slice(&text).map_err(|e| anyhow!("malformed_receipt: {e}"))?;
    if let Some(inner) = v.get_mut("receipt") {
        v = inner.take();
    }
    let r: Receipt = serde_json::from_value(v).map_err(|e| anyhow!("malformed_receipt: {e}"))?;
    let cp = r
        .verify(verifier)
        .map_err(|e| anyhow!("{}: {e}", receipt_code(&e)))?;
    Ok(
        json!({"valid": true, "origin": cp.origin, "tree_size": cp.size, "leaf_index": r.leaf_index}),
    )
}

/// What the monitor keeps between runs.
#[derive(Serialize, Deserialize)]
struct MonitorState {
    /// The last checkpoint it verified (signed note).
    checkpoint: String,
    /// Hex of the concatenated leaf hashes it saw, in order (32 bytes each).
    leaves: String,
}

struct Client {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl Client {
    fn get(&self, path: &str) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.base);
        let mut resp = self
            .agent
            .get(&url)
            .header("Authorization", &self.auth)
            .call()
            .map_err(|e| anyhow!("fetch_failed: GET {url}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| anyhow!("fetch_failed: GET {url}: {e}"))?;
        if status != 200 {
            bail!(
                "fetch_failed: GET {url}: HTTP {status}: {}",
                body.chars().take(300).collect::<String>()
            );
        }
        Ok(body)
    }

    fn json(&self, path: &str) -> anyhow::Result<Value> {
        let body = self.get(path)?;
        serde_json::from_str(&body).map_err(|e| anyhow!("fetch_failed: {path}: not JSON: {e}"))
    }
}

fn hashes_of(v: &Value, key: &str) -> anyhow::Result<Vec<hallmark_audit::Hash>> {
    v.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("fetch_failed: response lacks {key}"))?
        .iter()
        .map(|h| {
            h.as_str()
                .ok_or_else(|| anyhow!("malformed_proof: non-string hash"))
                .and_then(|s| parse_hex_hash(s).map_err(|e| anyhow!("malformed_proof: {e}")))
        })
        .collect()
}

/// `hallmark audit monitor`: fetch the latest checkpoint and check its signature; if a
/// checkpoint is held in `state`, check the log did not shrink or fork and verify the
/// consistency proof from it; re-download every entry up to the new size and check the
/// ones already seen did not change and that all of them hash to the new root; ask the
/// service to re-verify itself (decisions table included). Saves the new state only when
/// everything passed.
///
/// # Errors
/// `<code>: <detail>`, code one of `fetch_failed`, `bad_checkpoint`, `bad_state`,
/// `log_shrunk`, `fork`, `inconsistent`, `malformed_proof`, `entry_changed`,
/// `entries_do_not_match_checkpoint`, `server_verify_failed`.
pub fn monitor(
    url: &str,
    api_key: &str,
    state_path: &Path,
    verifier: &NoteVerifier,
) -> anyhow::Result<Value> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let c = Client {
        agent,
        base: url.trim_end_matches('/').to_owned(),
        auth: format!("Bearer {api_key}"),
    };
    let note = c.get("/v1/audit/checkpoint")?;
    let new = Checkpoint::open(&note, verifier).map_err(|e| anyhow!("bad_checkpoint: {e}"))?;
    let held: Option<(Checkpoint, Vec<hallmark_audit::Hash>)> = if state_path.exists() {
        let text = std::fs::read_to_string(state_path)
            .with_context(|| format!("reading {}", state_path.display()))?;
        let st: MonitorState =
            serde_json::from_str(&text).map_err(|e| anyhow!("bad_state: {e}"))?;
        let cp = Checkpoint::open(&st.checkpoint, verifier)
            .map_err(|e| anyhow!("bad_state: the held checkpoint: {e}"))?;
        let raw = hex::decode(&st.leaves).map_err(|e| anyhow!("bad_state: {e}"))?;
        let leaves: Vec<_> = raw
            .chunks_exact(32)
            .filter_map(|c| <[u8; 32]>::try_from(c).ok())
            .collect();
        Some((cp, leaves))
    } else {
        None
    };
    if let Some((old, _)) = &held {
        if new.size < old.size {
            bail!(
                "log_shrunk: the log now signs {} entries, this monitor holds a checkpoint of {}",
                new.size,
                old.size
            );
        }
        if new.size == old.size && new.root != old.root {
            bail!(
                "fork: two different signed roots for tree size {}",
                new.size
            );
        }
        if new.size > old.size {
            let p = c.json(&format!(
                "/v1/audit/proof/consistency?old={}&new={}",
                old.size, new.size
            ))?;
            let proof = hashes_of(&p, "consistency_proof")?;
            verify_consistency(old.size, new.size, &old.root, &new.root, &proof).map_err(|e| {
                anyhow!("inconsistent: checkpoint {} is not an extension of the held checkpoint {}: {e}", new.size, old.size)
            })?;
        }
    }
    let mut range = CompactRange::new();
    let mut seen = Vec::with_capacity(new.size as usize);
    while range.size() < new.size {
        let page = c.json(&format!(
            "/v1/audit/entries?after={}&limit=1000",
            range.size()
        ))?;
        let entries = page
            .get("entries")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("fetch_failed: entries page lacks entries"))?;
        if entries.is_empty() {
            bail!("entries_do_not_match_checkpoint: the service lists {} entries but the checkpoint signs {}", range.size(), new.size);
        }
        for e in entries {
            if range.size() == new.size {
                break;
            }
            let i = range.size();
            let text = e
                .get("entry")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("fetch_failed: entry {i} lacks its text"))?;
            let h = leaf_hash(text.as_bytes());
            if let Some((_, old_leaves)) = &held {
                if old_leaves.get(i as usize).is_some_and(|o| o != &h) {
                    bail!("entry_changed: entry {} (leaf {i}) is not what this monitor saw when it verified the log", i + 1);
                }
            }
            range.push(h);
            seen.push(h);
        }
    }
    if range.root() != new.root {
        bail!(
            "entries_do_not_match_checkpoint: the {} entries served do not hash to the signed root",
            new.size
        );
    }
    let report = c.json("/v1/audit/verify")?;
    if report.get("valid") != Some(&Value::Bool(true)) {
        let f = report.get("first_failure").cloned().unwrap_or(Value::Null);
        bail!(
            "server_verify_failed: entry {} ({}): {}",
            f.get("seq").unwrap_or(&Value::Null),
            f.get("reason").and_then(Value::as_str).unwrap_or("?"),
            f.get("detail").and_then(Value::as_str).unwrap_or("")
        );
    }
    let st = MonitorState {
        checkpoint: note,
        leaves: hex::encode(seen.concat()),
    };
    crate::tools::write_atomic(state_path, serde_json::to_string(&st)?.as_bytes())?;
    Ok(json!({
        "ok": true,
        "origin": new.origin,
        "tree_size": new.size,
        "previous_size": held.map(|(c, _)| c.size),
    }))
}
