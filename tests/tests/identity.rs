#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A configured signing identity replaces the generated one; configured trust anchors make its
//! signatures `Trusted`.

use hallmark_tests::fixtures::{encode, photo};
use hallmark_tests::{Backend, Server};
use serde_json::json;

#[test]
fn configured_identity_and_trust_anchors() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path().to_str().unwrap().to_owned();
    let out = std::process::Command::new(hallmark_tests::hallmark_bin())
        .args([
            "certs",
            "dev",
            "--dir",
            &dir,
            "--organization",
            "Acme Provider Inc",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let chain = format!("{dir}/signing-chain.pem");
    let key = format!("{dir}/signing-key.pem");
    let ca = format!("{dir}/dev-ca.pem");
    let s = Server::start(
        Backend::Sqlite,
        &[
            ("HALLMARK__SIGNING__CHAIN_PATH", &chain),
            ("HALLMARK__SIGNING__KEY_PATH", &key),
            ("HALLMARK__C2PA__TRUST_ANCHORS", &ca),
        ],
    )
    .unwrap();
    // No development identity was generated: the configured one is used.
    assert!(!s.data.path().join("signing").exists());
    let png = encode(&photo(320, 240, 9), image::ImageFormat::Png);
    let signed = s.sign(&png, &json!({"model": "m"}));
    assert_eq!(
        signed.status,
        200,
        "{}",
        String::from_utf8_lossy(&signed.body)
    );
    let r = s.verify(&signed.body).json();
    assert_eq!(r["c2pa"]["validation_state"], "Trusted", "{r:#}");
    assert_eq!(r["c2pa"]["signer"]["issuer"], "Acme Provider Inc");
    assert!(r["c2pa"]["failure_codes"].as_array().unwrap().is_empty());

    // A key that doesn't match the chain is refused at start-up with a clear message.
    let other = tempfile::tempdir().unwrap();
    let odir = other.path().to_str().unwrap().to_owned();
    std::process::Command::new(hallmark_tests::hallmark_bin())
        .args(["certs", "dev", "--dir", &odir])
        .output()
        .unwrap();
    let wrong_key = format!("{odir}/signing-key.pem");
    let err = Server::start(
        Backend::Sqlite,
        &[
            ("HALLMARK__SIGNING__CHAIN_PATH", &chain),
            ("HALLMARK__SIGNING__KEY_PATH", &wrong_key),
        ],
    );
    assert!(
        err.is_err(),
        "a mismatched key must stop the server from starting"
    );
}
