#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The offline CLI runs the same code paths as the API.

use std::process::Command;

use hallmark_tests::fixtures::{encode, photo, speech};
use hallmark_tests::{base_env, hallmark_bin};

fn cli(data: &std::path::Path) -> Command {
    let mut c = Command::new(hallmark_bin());
    base_env(&mut c, data);
    c.env_remove("HALLMARK__SERVER__PORT");
    c
}

/// Runs `c`, asserts it succeeded (stderr in the message) and parses its stdout as JSON.
fn json_ok(c: &mut Command) -> serde_json::Value {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn sign_verify_and_keys_offline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = dir.path().join("in.jpg");
    let output = dir.path().join("out.jpg");
    std::fs::write(
        &input,
        encode(&photo(400, 300, 21), image::ImageFormat::Jpeg),
    )
    .unwrap();

    let out = cli(&data)
        .args(["sign"])
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .args([
            "--generator",
            "acme",
            "--model",
            "acme-diffusion",
            "--model-version",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let asset = stdout
        .lines()
        .find_map(|l| l.strip_prefix("asset "))
        .unwrap()
        .to_owned();
    // First use generated the development identity in the data dir.
    assert!(data.join("signing/signing-chain.pem").exists());

    let r = json_ok(cli(&data).arg("verify").arg(&output).arg("--json"));
    assert_eq!(r["c2pa"]["validation_state"], "Valid");
    assert_eq!(r["c2pa"]["software_agent"], "acme-diffusion 3");
    assert_eq!(r["watermark"]["asset_id"], asset.as_str());
    assert_eq!(r["recovered"]["bytes_unchanged"], true);
    for field in [
        "id",
        "sha256",
        "media_type",
        "c2pa",
        "watermark",
        "detectors",
        "verdict",
    ] {
        assert!(!r[field].is_null(), "missing {field}");
    }

    let out = cli(&data)
        .args(["keys", "create", "--scopes", "sign,verify"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout)
        .trim()
        .starts_with("hm_"));
}

#[test]
fn bad_cli_input_exits_non_zero_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"not media at all").unwrap();
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (
            vec!["verify".into(), dir.path().join("missing.png").into()],
            "missing.png",
        ),
        (
            vec!["verify".into(), junk.clone().into()],
            "unsupported_media_type",
        ),
        (
            vec![
                "sign".into(),
                junk.clone().into(),
                "-o".into(),
                dir.path().join("o").into(),
                "--model".into(),
                "m".into(),
            ],
            "unsupported_media_type",
        ),
        (
            vec![
                "keys".into(),
                "create".into(),
                "--scopes".into(),
                "root".into(),
            ],
            "unknown scope",
        ),
        (
            vec![
                "sign".into(),
                junk.clone().into(),
                "-o".into(),
                dir.path().join("o").into(),
            ],
            "--model",
        ),
    ];
    for (args, needle) in cases {
        let out = cli(&data).args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(needle),
            "{args:?}: stderr lacks '{needle}': {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(
        !dir.path().join("o").exists(),
        "no output written on failure"
    );
}

#[test]
fn watermark_embed_and_detect_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = dir.path().join("in.png");
    let marked = dir.path().join("marked.png");
    std::fs::write(&input, encode(&photo(384, 256, 8), image::ImageFormat::Png)).unwrap();
    let out = cli(&data)
        .args(["watermark", "embed"])
        .arg(&input)
        .arg("-o")
        .arg(&marked)
        .args(["--payload", "00c0ffee12345678"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let detect = |p: &std::path::Path| -> serde_json::Value {
        json_ok(
            cli(&data)
                .args(["watermark", "detect"])
                .arg(p)
                .arg("--json"),
        )
    };
    let r = detect(&marked);
    assert_eq!(r["detected"], true, "{r:#}");
    assert_eq!(r["payload"], "00c0ffee12345678");
    assert!(r["p_value"].as_f64().unwrap() < 1e-6);
    let r = detect(&input);
    assert_eq!(r["detected"], false);
    assert!(r["p_value"].as_f64().unwrap() >= 1e-3, "{r:#}");
    // Another instance's key reads nothing.
    let r = {
        let out = cli(&dir.path().join("other"))
            .env(
                "HALLMARK__WATERMARK__KEY",
                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            )
            .args(["watermark", "detect"])
            .arg(&marked)
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(r["detected"], false);
    let out = cli(&data)
        .args(["watermark", "embed"])
        .arg(&input)
        .arg("-o")
        .arg(&marked)
        .args(["--payload", "zz"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    // 17 hex digits: wider than an image payload, said so.
    let out = cli(&data)
        .args(["watermark", "embed"])
        .arg(&input)
        .arg("-o")
        .arg(&marked)
        .args(["--payload", "10000000000000000"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not fit in 64 bits"), "{err}");
}

#[test]
fn watermark_embed_audio_payload_is_32_bits() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = dir.path().join("in.wav");
    let marked = dir.path().join("marked.wav");
    // 24-bit input: the marked file keeps the sample format.
    std::fs::write(
        &input,
        hallmark_media::encode_wav_as(
            &speech(16_000, 8.0, 3),
            hallmark_media::WavSampleFormat::Int24,
        )
        .unwrap(),
    )
    .unwrap();
    // A fixed key keeps the test deterministic (the CLI otherwise makes one per data dir).
    let key = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let embed = |payload: &str| {
        cli(&data)
            .env("HALLMARK__WATERMARK__KEY", key)
            .args(["watermark", "embed"])
            .arg(&input)
            .arg("-o")
            .arg(&marked)
            .args(["--payload", payload])
            .output()
            .unwrap()
    };
    // Wider than audio carries: refused with the reason, nothing written.
    let out = embed("00c0ffee12345678");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("32 bits"), "{err}");
    assert!(!marked.exists(), "no output on a refused payload");

    let out = embed("00c0ffee");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["payload"], "00c0ffee");
    assert_eq!(
        hallmark_media::wav_sample_format(&std::fs::read(&marked).unwrap()),
        Some(hallmark_media::WavSampleFormat::Int24)
    );
    let r = json_ok(
        cli(&data)
            .env("HALLMARK__WATERMARK__KEY", key)
            .args(["watermark", "detect"])
            .arg(&marked)
            .arg("--json"),
    );
    assert_eq!(r["detected"], true, "{r:#}");
    assert_eq!(r["payload"], "00c0ffee", "{r:#}");
}
