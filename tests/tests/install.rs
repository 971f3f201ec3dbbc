//! Install anywhere (issue 20, item 1): `scripts/install.sh` (what `make install PREFIX=DIR`
//! runs after building) lays out DIR/bin, DIR/share/hallmark and DIR/lib; the installed binary
//! then serves, signs, verifies with detector scores and generates from an unrelated working
//! directory with no `HALLMARK_*` variables at all, keeping its data in the per-user directory.
//! Missing models or ONNX Runtime stop it with an error naming the setting to change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hallmark_tests::fixtures::{encode, photo};
use hallmark_tests::{hallmark_bin, repo_root};
use image::ImageFormat;

/// A command with a clean environment: PATH, a private HOME, nothing else.
fn clean(exe: &Path, cwd: &Path, home: &Path) -> Command {
    let mut c = Command::new(exe);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .current_dir(cwd);
    c
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn install(prefix: &Path) {
    let out = Command::new(repo_root().join("scripts/install.sh"))
        .arg("--bin")
        .arg(hallmark_bin())
        .arg(prefix)
        .output()
        .unwrap();
    ok(out);
}

#[test]
fn installed_binary_works_from_anywhere_without_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("opt/hallmark");
    install(&prefix);
    let exe = prefix.join("bin/hallmark");
    for p in [
        "lib/libonnxruntime.so.1.31.1",
        "share/hallmark/detectors/models/registry.toml",
        "share/hallmark/detectors/models/clip-vit-b16.int8.onnx",
        "share/hallmark/detectors/models/image-clip-residual-v2.onnx",
        "share/hallmark/generators/models/registry.toml",
        "share/hallmark/generators/models/cppn-abstract-v1.onnx",
    ] {
        assert!(prefix.join(p).is_file(), "{p} not installed");
    }
    let home = tmp.path().join("home");
    let cwd = tmp.path().join("somewhere/else");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&cwd).unwrap();
    let input = cwd.join("in.png");
    std::fs::write(&input, encode(&photo(320, 240, 7), ImageFormat::Png)).unwrap();

    // sign, verify (with detector scores), generate — the CLI.
    let signed = ok(clean(&exe, &cwd, &home)
        .args(["sign", "in.png", "-o", "out.png", "--model", "m-1"])
        .output()
        .unwrap());
    assert!(signed.contains("manifest"), "{signed}");
    let out = clean(&exe, &cwd, &home)
        .args(["verify", "out.png", "--json"])
        .output()
        .unwrap();
    // The models and ONNX Runtime came from the prefix, not from the source tree.
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let share = prefix.join("share/hallmark/detectors/models/registry.toml");
    let lib = prefix.join("lib/libonnxruntime.so.1.31.1");
    assert!(
        log.contains(&*share.to_string_lossy()) && log.contains(&*lib.to_string_lossy()),
        "{log}"
    );
    let report: serde_json::Value = serde_json::from_str(&ok(out)).unwrap();
    assert_eq!(report["verdict"]["label"], "ai_generated", "{report:#}");
    let models = report["detectors"].as_array().unwrap();
    assert!(
        models.iter().any(|m| m["score"].is_number()),
        "no detector score: {report:#}"
    );
    ok(clean(&exe, &cwd, &home)
        .args([
            "generate",
            "--generator",
            "cppn-abstract",
            "--seed",
            "3",
            "-o",
            "art.png",
        ])
        .output()
        .unwrap());
    assert!(cwd.join("art.png").is_file());

    // The data went to the per-user directory, not the working directory.
    let data = home.join(".local/share/hallmark");
    assert!(data.join("watermark.key").is_file());
    assert!(data.join("hallmark.db").is_file());
    let mut left: Vec<String> = std::fs::read_dir(&cwd)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["art.png", "in.png", "out.png"]);

    // serve, on the same instance (a settings file only for a free port).
    let cfg = tmp.path().join("port0.toml");
    std::fs::write(&cfg, "[server]\nport = 0\nworkers = 2\n").unwrap();
    let mut child = clean(&exe, &cwd, &home)
        .arg("--config")
        .arg(&cfg)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let base = loop {
        let line = rx.recv_timeout(Duration::from_secs(120)).unwrap();
        if let Some(a) = line.strip_prefix("hallmark listening on ") {
            break a.trim().to_owned();
        }
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let text = agent
        .get(format!("{base}/readyz"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let ready: serde_json::Value = serde_json::from_str(&text).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(ready["status"], "ready", "{ready:#}");
    assert!(
        ready["detectors"].as_array().is_some_and(|d| d.len() >= 2),
        "{ready:#}"
    );
}

#[test]
fn missing_models_or_runtime_name_the_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let input = tmp.path().join("in.png");
    std::fs::write(&input, encode(&photo(128, 128, 1), ImageFormat::Png)).unwrap();
    let cases: [(&str, &str, &str); 3] = [
        (
            "HALLMARK__DETECTORS__REGISTRY",
            "/nonexistent/registry.toml",
            "HALLMARK__DETECTORS__REGISTRY",
        ),
        (
            "HALLMARK__DETECTORS__ONNXRUNTIME",
            "/nonexistent/libonnxruntime.so",
            "HALLMARK__DETECTORS__ONNXRUNTIME",
        ),
        (
            "HALLMARK__GENERATORS__REGISTRY",
            "/nonexistent/generators.toml",
            "HALLMARK__GENERATORS__REGISTRY",
        ),
    ];
    for (var, value, named) in cases {
        let out = clean(&hallmark_bin(), tmp.path(), home)
            .env(var, value)
            .args(["verify", "in.png"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named) && err.contains(value), "{err}");
        if var != "HALLMARK__DETECTORS__ONNXRUNTIME" {
            assert!(!err.contains("fetch-onnxruntime"), "{err}");
        }
    }
    // Without HOME or XDG_DATA_HOME there is no per-user directory: the error names the setting.
    let out = Command::new(hallmark_bin())
        .env_clear()
        .current_dir(tmp.path())
        .args(["verify", "in.png"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HALLMARK__STORAGE__DATA_DIR"), "{err}");
}
