//! Signed outputs keep the input's format, and say so (issue 20's README trial): `sign -o x.jpg`
//! on a PNG is refused instead of writing PNG bytes under a .jpg name, and a lossy WebP comes
//! back lossy (it came back lossless and about 11 times larger).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use hallmark_tests::fixtures::{encode, photo};
use hallmark_tests::{base_env, hallmark_bin, Backend, Server};

fn cli(data: &std::path::Path) -> Command {
    let mut c = Command::new(hallmark_bin());
    base_env(&mut c, data);
    c.env_remove("HALLMARK__SERVER__PORT")
        .env("HALLMARK__DETECTORS__ENABLED", "false");
    c
}

#[test]
fn an_output_name_of_another_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = dir.path().join("in.png");
    std::fs::write(&input, encode(&photo(320, 240, 5), image::ImageFormat::Png)).unwrap();
    let inp = input.to_str().unwrap();
    for (name, before, after) in [
        ("out.jpg", vec!["sign", inp], vec!["--model", "m"]),
        ("marked.webp", vec!["watermark", "embed", inp], vec![]),
    ] {
        let output = dir.path().join(name);
        let out = cli(&data)
            .args(before)
            .arg("-o")
            .arg(&output)
            .args(after)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: {stderr}");
        assert!(
            stderr.contains("image/png") && stderr.contains(".png"),
            "{stderr}"
        );
        assert!(!output.exists(), "{name} was written");
    }
    // The matching name works, and an unknown extension is left to the caller.
    for name in ["out.png", "out.bin"] {
        let out = cli(&data)
            .arg("sign")
            .arg(&input)
            .arg("-o")
            .arg(dir.path().join(name))
            .args(["--model", "m"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = cli(&data)
        .args(["generate", "--generator", "cppn-abstract", "-o"])
        .arg(dir.path().join("art.jpg"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(".png"));
}

#[test]
fn lossy_webp_is_signed_as_lossy_webp() {
    let s = Server::start(
        Backend::Sqlite,
        &[("HALLMARK__DETECTORS__ENABLED", "false")],
    )
    .unwrap();
    let img = photo(640, 480, 9);
    let lossy = hallmark_media::encode_webp_lossy(&img, 80).unwrap();
    assert!(hallmark_media::webp_is_lossy(&lossy));
    let r = s.sign(&lossy, &serde_json::json!({"model": "m"}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("image/webp"));
    assert!(hallmark_media::webp_is_lossy(&r.body), "came back lossless");
    let ratio = r.body.len() as f64 / lossy.len() as f64;
    assert!(
        ratio < 3.0,
        "{} -> {} bytes ({ratio:.1}x)",
        lossy.len(),
        r.body.len()
    );
    let report = s.verify(&r.body).json();
    assert_eq!(report["watermark"]["detected"], true, "{report}");
    assert_eq!(
        report["watermark"]["payload"].as_str(),
        r.header("hallmark-watermark-payload")
    );
    assert_eq!(report["c2pa"]["validation_state"], "Valid", "{report}");

    // A lossless WebP stays lossless.
    let lossless = encode(&img, image::ImageFormat::WebP);
    let r = s.sign(&lossless, &serde_json::json!({"model": "m"}));
    assert_eq!(r.status, 200);
    assert!(!hallmark_media::webp_is_lossy(&r.body));
}
