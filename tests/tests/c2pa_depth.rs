#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! C2PA in depth through the API: ES384 / Ed25519 identities, signer details, training-mining,
//! M4A signing, blocked signers, the ingredient chain, an unreachable time-stamp authority, and
//! tampered files getting precise failure codes (never a 500).

use hallmark_tests::fixtures::{encode, photo, speech};
use hallmark_tests::{hallmark_bin, run_tool, Backend, Server};
use serde_json::{json, Value};

fn dev_certs(dir: &std::path::Path, alg: &str, org: &str) -> (String, String, String) {
    let d = dir.to_str().unwrap();
    let out = std::process::Command::new(hallmark_bin())
        .args([
            "certs",
            "dev",
            "--dir",
            d,
            "--alg",
            alg,
            "--organization",
            org,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        format!("{d}/signing-chain.pem"),
        format!("{d}/signing-key.pem"),
        format!("{d}/dev-ca.pem"),
    )
}

fn failure_codes(r: &Value) -> Vec<String> {
    r["c2pa"]["failure_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

fn wav_bytes(seconds: f32) -> Vec<u8> {
    hallmark_media::encode_wav(&speech(44_100, seconds, 5)).unwrap()
}

#[test]
fn es384_and_ed25519_identities_sign_every_format_with_signer_details() {
    let tmp = tempfile::tempdir().unwrap();
    let wav = wav_bytes(10.0);
    let wav_path = tmp.path().join("in.wav");
    std::fs::write(&wav_path, &wav).unwrap();
    let m4a_path = tmp.path().join("in.m4a");
    run_tool(
        "ffmpeg",
        &[
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            wav_path.to_str().unwrap(),
            "-c:a",
            "aac",
            "-b:a",
            "160k",
            m4a_path.to_str().unwrap(),
        ],
    );
    let m4a = std::fs::read(&m4a_path).unwrap();
    let img = photo(320, 240, 4);
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("image/png", encode(&img, image::ImageFormat::Png)),
        ("image/jpeg", encode(&img, image::ImageFormat::Jpeg)),
        ("image/webp", encode(&img, image::ImageFormat::WebP)),
        ("audio/wav", wav),
        ("audio/mp4", m4a),
    ];
    for (alg, alg_name) in [("es384", "Es384"), ("ed25519", "Ed25519")] {
        let certs = tmp.path().join(alg);
        let (chain, key, ca) = dev_certs(&certs, alg, "Acme Provider Inc");
        let s = Server::start(
            Backend::Sqlite,
            &[
                ("HALLMARK__SIGNING__CHAIN_PATH", &chain),
                ("HALLMARK__SIGNING__KEY_PATH", &key),
                ("HALLMARK__C2PA__TRUST_ANCHORS", &ca),
            ],
        )
        .unwrap();
        for (mime, input) in &inputs {
            let meta = json!({"model": "m", "training_mining": {"ai_training": "notAllowed"}});
            let signed = s.sign(input, &meta);
            assert_eq!(
                signed.status,
                200,
                "{alg} {mime}: {}",
                String::from_utf8_lossy(&signed.body)
            );
            assert_eq!(signed.header("content-type"), Some(*mime), "{alg}");
            let payload = signed
                .header("hallmark-watermark-payload")
                .unwrap()
                .to_owned();
            let r = s.verify(&signed.body).json();
            let c = &r["c2pa"];
            assert_eq!(c["validation_state"], "Trusted", "{alg} {mime}: {r:#}");
            assert_eq!(c["signer"]["alg"], alg_name, "{alg} {mime}");
            let subject = c["signer"]["subject_dn"].as_str().unwrap();
            assert!(subject.contains("O=Acme Provider Inc"), "{subject}");
            assert!(c["signer"]["issuer_dn"]
                .as_str()
                .unwrap()
                .contains("Root CA"));
            assert!(c["signer"]["serial"]
                .as_str()
                .is_some_and(|v| !v.is_empty()));
            assert!(c["signer"]["not_before"].is_string() && c["signer"]["not_after"].is_string());
            assert_eq!(
                c["training_mining"],
                json!({"c2pa.ai_training": "notAllowed"}),
                "{mime}"
            );
            assert_eq!(r["watermark"]["detected"], true, "{alg} {mime}: {r:#}");
            assert_eq!(r["watermark"]["payload"], payload.as_str(), "{alg} {mime}");
            assert_eq!(r["verdict"]["label"], "ai_generated");
        }
        // Bad training-mining values are a 400, not a signature.
        let bad = s.sign(
            &inputs[0].1,
            &json!({"model": "m", "training_mining": {"ai_training": "sure"}}),
        );
        bad.assert_problem(400, "invalid_request");
    }
}

#[test]
fn blocked_signer_and_ingredient_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let (chain, key, ca) = dev_certs(tmp.path(), "es256", "Blocked Org");
    let png = encode(&photo(320, 240, 8), image::ImageFormat::Png);
    // An instance that signs with the identity and trusts it.
    let signer = Server::start(
        Backend::Sqlite,
        &[
            ("HALLMARK__SIGNING__CHAIN_PATH", &chain),
            ("HALLMARK__SIGNING__KEY_PATH", &key),
            ("HALLMARK__C2PA__TRUST_ANCHORS", &ca),
        ],
    )
    .unwrap();
    let first = signer.sign(&png, &json!({"model": "first"}));
    assert_eq!(first.status, 200);
    let second = signer.sign(&first.body, &json!({"model": "second"}));
    assert_eq!(second.status, 200);
    let third = signer.sign(&second.body, &json!({"model": "third"}));
    assert_eq!(third.status, 200);
    let r = signer.verify(&third.body).json();
    assert_eq!(r["c2pa"]["validation_state"], "Trusted", "{r:#}");
    let parent = &r["c2pa"]["ingredients"][0];
    assert_eq!(parent["relationship"], "ParentOf");
    assert_eq!(parent["actions"], json!(["c2pa.opened", "c2pa.edited"]));
    let grandparent = &parent["ingredients"][0];
    assert_eq!(grandparent["actions"], json!(["c2pa.created"]), "{r:#}");
    assert_eq!(grandparent["signer"]["issuer"], "Blocked Org");
    assert_eq!(
        grandparent["active_manifest"],
        first.header("hallmark-manifest-label").unwrap()
    );

    // Another instance blocks the CA: the same file is Invalid, verdict blocked_signer.
    let verifier = Server::start(
        Backend::Sqlite,
        &[
            ("HALLMARK__C2PA__TRUST_ANCHORS", &ca),
            ("HALLMARK__C2PA__BLOCKED_LIST", &ca),
        ],
    )
    .unwrap();
    let r = verifier.verify(&first.body).json();
    assert_eq!(r["c2pa"]["validation_state"], "Invalid", "{r:#}");
    assert!(failure_codes(&r).contains(&"io.hallmark.signingCredential.blocked".to_string()));
    assert_eq!(r["c2pa"]["signer"]["blocked"], true);
    assert_eq!(r["verdict"]["label"], "blocked_signer", "{r:#}");
}

#[test]
fn unreachable_time_stamp_authority_is_502_and_https_is_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/tsa");
    let s = Server::start(
        Backend::Sqlite,
        &[
            ("HALLMARK__SIGNING__TSA_URL", &url),
            ("HALLMARK__SIGNING__TSA_TIMEOUT_SECONDS", "2"),
        ],
    )
    .unwrap();
    let png = encode(&photo(320, 240, 2), image::ImageFormat::Png);
    let r = s.sign(&png, &json!({"model": "m"}));
    r.assert_problem(502, "timestamp_authority_unavailable");
    let detail = r.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains(&port.to_string()), "{detail}");
    // Nothing was stored: the instance knows no asset.
    let v = s.verify(&png).json();
    assert!(v["recovered"].is_null(), "{v:#}");

    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("in.png");
    std::fs::write(&inp, &png).unwrap();
    let out = std::process::Command::new(hallmark_bin())
        .env("HALLMARK__STORAGE__DATA_DIR", tmp.path().join("data"))
        .env("HALLMARK__SIGNING__TSA_URL", "https://tsa.example/")
        .env("HALLMARK__DETECTORS__ENABLED", "false")
        .args([
            "sign",
            inp.to_str().unwrap(),
            "-o",
            tmp.path().join("o.png").to_str().unwrap(),
            "--model",
            "m",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("http://"), "{err}");
}

/// Flips one bit of the first occurrence of `needle` at or after `from`.
fn flip(bytes: &mut [u8], needle: &[u8], from: usize) {
    let at = from
        + bytes[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap_or_else(|| panic!("{} not found", String::from_utf8_lossy(needle)));
    bytes[at + 1] ^= 0x01;
}

#[test]
fn tampered_files_get_precise_codes_never_a_500() {
    let s = Server::start(Backend::Sqlite, &[]).unwrap();
    let img = photo(320, 240, 6);
    for (mime, input) in [
        ("image/png", encode(&img, image::ImageFormat::Png)),
        ("image/jpeg", encode(&img, image::ImageFormat::Jpeg)),
        ("audio/wav", wav_bytes(7.0)),
    ] {
        let signed = s.sign(&input, &json!({"model": "acme-diffusion"}));
        assert_eq!(signed.status, 200, "{mime}");
        let signed = signed.body;
        let check = |bytes: &[u8], code: &str, what: &str| {
            let resp = s.verify(bytes);
            assert_eq!(
                resp.status,
                201,
                "{mime} {what}: {}",
                String::from_utf8_lossy(&resp.body)
            );
            let r = resp.json();
            assert_eq!(
                r["c2pa"]["validation_state"], "Invalid",
                "{mime} {what}: {r:#}"
            );
            assert!(
                failure_codes(&r).iter().any(|c| c == code),
                "{mime} {what}: {r:#}"
            );
            assert_eq!(r["verdict"]["label"], "tampered", "{mime} {what}");
        };
        // Content changed after signing.
        let mut content = signed.clone();
        let at = match mime {
            "image/png" => content.windows(4).rposition(|w| w == b"IDAT").unwrap() + 8,
            "image/jpeg" => content.len() - 16,
            _ => content.windows(4).position(|w| w == b"data").unwrap() + 4000,
        };
        content[at] ^= 0x55;
        check(&content, "assertion.dataHash.mismatch", "content changed");
        // A byte of the claim flipped.
        let mut claim = signed.clone();
        let c = claim.windows(10).position(|w| w == b"c2pa.claim").unwrap();
        flip(&mut claim, b"Hallmark", c);
        check(&claim, "claimSignature.mismatch", "claim byte flipped");
        // A byte of an assertion flipped.
        let mut assertion = signed.clone();
        flip(&mut assertion, b"acme-diffusion", 0);
        check(
            &assertion,
            "assertion.hashedURI.mismatch",
            "assertion byte flipped",
        );
    }
}

#[test]
fn durable_credentials_are_indexed_by_content_hash_too() {
    let s = Server::start(Backend::Sqlite, &[]).unwrap();
    let png = encode(&photo(320, 240, 12), image::ImageFormat::Png);
    let signed = s.sign(&png, &json!({"model": "hash-model"}));
    assert_eq!(signed.status, 200);
    let asset = signed.header("hallmark-asset-id").unwrap().to_owned();
    let r = s.verify(&signed.body).json();
    assert_eq!(r["recovered"]["matched_by"], "watermark", "{r:#}");
    // After a watermark key rotation the old mark is unreadable, but an exact copy of a signed
    // output is still found through its content hash.
    let file = s.data.path().join("copy.png");
    std::fs::write(&file, &signed.body).unwrap();
    let mut cmd = std::process::Command::new(hallmark_bin());
    hallmark_tests::base_env(&mut cmd, s.data.path());
    let out = cmd
        .env(
            "HALLMARK__WATERMARK__KEY",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        )
        .env("HALLMARK__DETECTORS__ENABLED", "false")
        .args(["verify", "--json", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["watermark"]["detected"], false, "{r:#}");
    assert_eq!(r["recovered"]["matched_by"], "content_hash", "{r:#}");
    assert_eq!(r["recovered"]["asset_id"], asset.as_str());
    assert_eq!(r["recovered"]["bytes_unchanged"], true);
}
