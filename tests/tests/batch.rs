//! Batch verify (issue 20): `hallmark verify PATH... [--recursive] [--jobs N] [--output F]`
//! writes one row per file (JSON Lines or CSV), skips non-media found in directories, exits
//! non-zero only when a file could not be verified (never for a verdict), and shows progress
//! only on a terminal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use hallmark_tests::fixtures::{encode, photo};
use hallmark_tests::{base_env, hallmark_bin};
use image::ImageFormat;
use serde_json::Value;

fn cli(data: &Path) -> Command {
    let mut c = Command::new(hallmark_bin());
    base_env(&mut c, data);
    c.env("HALLMARK__DETECTORS__ENABLED", "false");
    c
}

fn rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn batch_verify_writes_one_row_per_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let media = tmp.path().join("media");
    std::fs::create_dir_all(media.join("nested")).unwrap();
    for i in 0..3 {
        std::fs::write(
            media.join(format!("photo{i}.png")),
            encode(&photo(200, 150, i), ImageFormat::Png),
        )
        .unwrap();
    }
    std::fs::write(media.join("notes.txt"), b"not media").unwrap();
    // A signed (AI-generated) file: its verdict never fails the run.
    let out = cli(&data)
        .arg("sign")
        .arg(media.join("photo0.png"))
        .arg("-o")
        .arg(media.join("nested/signed.png"))
        .args(["--model", "m"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let jsonl = tmp.path().join("results.jsonl");
    let out = cli(&data)
        .arg("verify")
        .arg(&media)
        .args(["--recursive", "--jobs", "3", "--output"])
        .arg(&jsonl)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let r = rows(&jsonl);
    assert_eq!(r.len(), 4, "{r:#?}");
    assert!(r
        .iter()
        .all(|v| v["ok"] == true && v["verification_id"].is_string()));
    let signed = r
        .iter()
        .find(|v| v["file"].as_str().unwrap().ends_with("nested/signed.png"))
        .unwrap();
    assert_eq!(signed["verdict"], "ai_generated", "{signed:#}");
    // Summary on stderr; no progress bar when stderr is not a terminal.
    assert!(
        stderr.contains("ai_generated") && stderr.contains("(skipped: not media)"),
        "{stderr}"
    );
    assert!(!stderr.contains("files,"), "{stderr}");

    // Without --recursive only the directory's own files; explicit files that fail do count.
    let corrupt = tmp.path().join("corrupt.jpg");
    std::fs::write(&corrupt, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    let csv = tmp.path().join("results.csv");
    let out = cli(&data)
        .arg("verify")
        .arg(&media)
        .arg(&corrupt)
        .arg("-o")
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not be verified"));
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("file,ok,verdict,verification_id"));
    assert_eq!(lines.len(), 1 + 3 + 1, "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("corrupt.jpg,false,") && l.contains("corrupt_media")),
        "{text}"
    );

    // On a terminal (script(1) gives it one) a progress bar is drawn.
    let cmd = format!(
        "{} verify {} -o {}",
        hallmark_bin().display(),
        media.display(),
        tmp.path().join("tty.jsonl").display()
    );
    let mut c = Command::new("script");
    base_env(&mut c, &data);
    let out = c
        .env("HALLMARK__DETECTORS__ENABLED", "false")
        .env("TERM", "xterm")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("script(1) from util-linux");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("/4 files"), "{shown}");
    assert_eq!(rows(&tmp.path().join("tty.jsonl")).len(), 3);
}

/// The corpus's media folder (issue 20, "what it must show" 6), when the corpus is present.
#[test]
fn batch_verify_of_the_corpus_media_folder() {
    let Some(corpus) = hallmark_tests::corpus() else {
        eprintln!("../shared/corpus not present; the fixture test above covers batch verify");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out_file = tmp.path().join("corpus.jsonl");
    let out = cli(&tmp.path().join("data"))
        .arg("verify")
        .arg(corpus.join("media"))
        .args(["--recursive", "--jobs", "2", "-o"])
        .arg(&out_file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r = rows(&out_file);
    let files = walk_count(&corpus.join("media"));
    let skipped: usize = stderr
        .lines()
        .find(|l| l.starts_with("(skipped"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(r.len() + skipped, files, "{stderr}");
    assert!(r.len() > 100, "{stderr}");
    let failed: Vec<&Value> = r.iter().filter(|v| v["ok"] == false).collect();
    assert_eq!(
        out.status.success(),
        failed.is_empty(),
        "{stderr} {failed:#?}"
    );
}

fn walk_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            if e.file_type().unwrap().is_dir() {
                walk_count(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn batch_sign_into_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let media = tmp.path().join("in");
    std::fs::create_dir_all(media.join("nested")).unwrap();
    for (i, name) in ["a.png", "b.png", "nested/c.png"].iter().enumerate() {
        std::fs::write(
            media.join(name),
            encode(&photo(200, 150, 40 + i as u64), ImageFormat::Png),
        )
        .unwrap();
    }
    std::fs::write(media.join("README.txt"), b"not media").unwrap();
    let out_dir = tmp.path().join("signed");
    let out = cli(&data)
        .arg("sign")
        .arg(&media)
        .args(["-r", "-j", "2", "--model", "m", "-o"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines
        .iter()
        .all(|l| l["ok"] == true && l["asset_id"].is_string()));
    assert!(
        stderr.contains("signed") && stderr.contains("(skipped: not media)"),
        "{stderr}"
    );
    for name in ["a.png", "b.png", "nested/c.png"] {
        assert!(out_dir.join(name).is_file(), "{name}");
    }
    assert!(!out_dir.join("README.txt").exists());
    // Everything signed verifies as AI-generated.
    let results = tmp.path().join("check.jsonl");
    let out = cli(&data)
        .arg("verify")
        .arg(&out_dir)
        .args(["-r", "-o"])
        .arg(&results)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = rows(&results);
    assert_eq!(r.len(), 3);
    assert!(r.iter().all(|v| v["verdict"] == "ai_generated"), "{r:#?}");

    // A named file that cannot be signed fails the run; the others are still signed.
    let corrupt = tmp.path().join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\n truncated").unwrap();
    let out = cli(&data)
        .arg("sign")
        .arg(&corrupt)
        .arg(media.join("a.png"))
        .args(["--model", "m", "-o"])
        .arg(tmp.path().join("second"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tmp.path().join("second/a.png").is_file());
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"ok\":false"));
}
