#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Signing with a generated development identity and validating the result.

use std::io::Cursor;

use hallmark_provenance::{
    generate_dev_identity, sign_media, soft_binding, verify_media, ManifestRequest,
    SigningIdentity, SoftBinding, TrustConfig, ValidationState,
};

fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 3, y as u8 * 3, 90]));
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

fn request() -> ManifestRequest {
    ManifestRequest {
        generator: "acme-imagine".into(),
        model: "acme-diffusion".into(),
        model_version: Some("2.1".into()),
        digital_source_type: "trainedAlgorithmicMedia".into(),
        title: Some("test".into()),
        soft_binding: Some(SoftBinding {
            alg: soft_binding::IMAGE_WATERMARK_ALG.into(),
            value: "ASNFZ4mrze8=".into(),
        }),
        hallmark_version: "0.1.0".into(),
        training_mining: Default::default(),
        generation: None,
    }
}

#[test]
fn dev_identity_signs_valid_manifest_trusted_with_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let paths = generate_dev_identity(dir.path(), "Hallmark Test").unwrap();
    let id = SigningIdentity::from_pem_files(&paths.chain, &paths.key).unwrap();
    let signed = sign_media(&png(), "image/png", &request(), &id, None).unwrap();
    assert!(signed.manifest_label.starts_with("urn:c2pa:"));
    assert!(!signed.manifest_store.is_empty());

    let report = verify_media(&signed.bytes, "image/png", &TrustConfig::default()).unwrap();
    assert_eq!(
        report.validation_state,
        Some(ValidationState::Valid),
        "{report:#?}"
    );
    assert_eq!(
        report.failure_codes,
        vec!["signingCredential.untrusted".to_string()]
    );
    assert_eq!(report.actions, vec!["c2pa.created".to_string()]);
    assert_eq!(
        report.digital_source_type.as_deref(),
        Some("http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia")
    );
    assert_eq!(report.software_agent.as_deref(), Some("acme-diffusion 2.1"));
    assert_eq!(
        report.soft_bindings,
        vec![(
            soft_binding::IMAGE_WATERMARK_ALG.to_string(),
            "ASNFZ4mrze8=".to_string()
        )]
    );
    assert!(report.claim_generator.unwrap().contains("Hallmark"));
    assert_eq!(
        report.active_manifest.as_deref(),
        Some(signed.manifest_label.as_str())
    );

    let trust = TrustConfig {
        trust_anchors_pem: Some(std::fs::read_to_string(&paths.ca_cert).unwrap()),
        ..TrustConfig::default()
    };
    let report = verify_media(&signed.bytes, "image/png", &trust).unwrap();
    assert_eq!(
        report.validation_state,
        Some(ValidationState::Trusted),
        "{report:#?}"
    );
}

#[test]
fn tampered_pixels_are_invalid_and_plain_files_have_no_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let paths = generate_dev_identity(dir.path(), "Hallmark Test").unwrap();
    let id = SigningIdentity::from_pem_files(&paths.chain, &paths.key).unwrap();
    let mut signed = sign_media(&png(), "image/png", &request(), &id, None)
        .unwrap()
        .bytes;
    // Flip a byte inside the IDAT payload (the last chunk before IEND).
    let idat = signed.windows(4).rposition(|w| w == b"IDAT").unwrap();
    signed[idat + 8] ^= 0x01;
    let report = verify_media(&signed, "image/png", &TrustConfig::default()).unwrap();
    assert_eq!(report.validation_state, Some(ValidationState::Invalid));
    assert!(
        report
            .failure_codes
            .iter()
            .any(|c| c == "assertion.dataHash.mismatch"),
        "{report:#?}"
    );

    let report = verify_media(&png(), "image/png", &TrustConfig::default()).unwrap();
    assert!(report.no_manifest(), "{report:#?}");
    let report = verify_media(b"not an image", "image/png", &TrustConfig::default()).unwrap();
    assert!(!report.present);
}

#[test]
fn rejects_mismatched_key_and_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let a = generate_dev_identity(&dir.path().join("a"), "A Org").unwrap();
    let b = generate_dev_identity(&dir.path().join("b"), "B Org").unwrap();
    let chain = std::fs::read(&a.chain).unwrap();
    let key = std::fs::read(&b.key).unwrap();
    assert!(SigningIdentity::from_pem(&chain, &key).is_err());
    let id = SigningIdentity::from_pem_files(&a.chain, &a.key).unwrap();
    let mut req = request();
    req.digital_source_type = "not a term!".into();
    assert!(sign_media(&png(), "image/png", &req, &id, None).is_err());
    assert!(sign_media(b"abc", "text/plain", &request(), &id, None).is_err());
}

#[test]
fn signing_a_signed_file_keeps_its_manifest_as_parent_ingredient() {
    let dir = tempfile::tempdir().unwrap();
    let paths = generate_dev_identity(dir.path(), "Hallmark Test").unwrap();
    let id = SigningIdentity::from_pem_files(&paths.chain, &paths.key).unwrap();
    let first = sign_media(&png(), "image/png", &request(), &id, None).unwrap();
    // Re-sign (the service would re-encode watermarked pixels; the manifest travels as parent).
    let second = sign_media(&png(), "image/png", &request(), &id, Some(&first.bytes)).unwrap();
    let report = verify_media(&second.bytes, "image/png", &TrustConfig::default()).unwrap();
    assert_eq!(
        report.validation_state,
        Some(ValidationState::Valid),
        "{report:#?}"
    );
    assert_eq!(
        report.actions,
        vec!["c2pa.opened".to_string(), "c2pa.edited".to_string()]
    );
    assert_eq!(
        report.digital_source_type.as_deref(),
        Some("http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia")
    );
    assert_eq!(report.ingredients.len(), 1);
    assert_eq!(report.ingredients[0].relationship, "ParentOf");
    assert_eq!(
        report.ingredients[0].active_manifest.as_deref(),
        Some(first.manifest_label.as_str())
    );
    // A parent without a manifest is not an ingredient: plain generated media is "created".
    let plain = sign_media(&png(), "image/png", &request(), &id, Some(&png())).unwrap();
    let report = verify_media(&plain.bytes, "image/png", &TrustConfig::default()).unwrap();
    assert_eq!(report.actions, vec!["c2pa.created".to_string()]);
    assert!(report.ingredients.is_empty());
}
