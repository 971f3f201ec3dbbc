#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! C2PA in depth: every signing algorithm, RFC 3161 time-stamps, signer details, blocked
//! signers, training-mining, the ingredient chain, and the tamper suite (precise codes).

mod common;

use std::io::Cursor;

use hallmark_provenance::{
    generate_dev_identity_with, sign_media, soft_binding, verify_media, C2paReport,
    ManifestRequest, ProvenanceError, SignatureAlgorithm, SigningIdentity, SoftBinding,
    TrustConfig, ValidationState, BLOCKED_SIGNER_CODE,
};

const ALGS: [SignatureAlgorithm; 3] = [
    SignatureAlgorithm::Es256,
    SignatureAlgorithm::Es384,
    SignatureAlgorithm::Ed25519,
];

fn request() -> ManifestRequest {
    ManifestRequest {
        generator: "acme-imagine".into(),
        model: "acme-diffusion".into(),
        model_version: Some("2.1".into()),
        digital_source_type: "trainedAlgorithmicMedia".into(),
        title: Some("in-depth".into()),
        soft_binding: Some(SoftBinding {
            alg: soft_binding::IMAGE_WATERMARK_ALG.into(),
            value: "ASNFZ4mrze8=".into(),
        }),
        hallmark_version: "0.1.0".into(),
        training_mining: Default::default(),
        generation: None,
    }
}

struct Id {
    _dir: tempfile::TempDir,
    identity: SigningIdentity,
    ca_pem: String,
    chain_pem: String,
}

fn identity(alg: SignatureAlgorithm, org: &str) -> Id {
    let dir = tempfile::tempdir().unwrap();
    let p = generate_dev_identity_with(dir.path(), org, alg).unwrap();
    let identity = SigningIdentity::from_pem_files(&p.chain, &p.key).unwrap();
    assert_eq!(identity.algorithm(), alg);
    Id {
        ca_pem: std::fs::read_to_string(&p.ca_cert).unwrap(),
        chain_pem: std::fs::read_to_string(&p.chain).unwrap(),
        _dir: dir,
        identity,
    }
}

fn trust_with(ca: &str) -> TrustConfig {
    TrustConfig {
        trust_anchors_pem: Some(ca.to_owned()),
        ..TrustConfig::default()
    }
}

fn failures(r: &C2paReport) -> Vec<&str> {
    r.failure_codes.iter().map(String::as_str).collect()
}

#[test]
fn every_algorithm_signs_valid_and_trusted_with_full_signer_details() {
    for alg in ALGS {
        let id = identity(alg, "Acme Labs");
        for (mime, input) in [("image/png", common::png()), ("image/jpeg", common::jpeg())] {
            let signed = sign_media(&input, mime, &request(), &id.identity, None).unwrap();
            let r = verify_media(&signed.bytes, mime, &TrustConfig::default()).unwrap();
            assert_eq!(
                r.validation_state,
                Some(ValidationState::Valid),
                "{alg:?} {r:#?}"
            );
            let r = verify_media(&signed.bytes, mime, &trust_with(&id.ca_pem)).unwrap();
            assert_eq!(
                r.validation_state,
                Some(ValidationState::Trusted),
                "{alg:?} {r:#?}"
            );
            assert!(failures(&r).is_empty(), "{alg:?} {r:#?}");
            let s = r.signer.as_ref().unwrap();
            assert_eq!(s.alg.as_deref(), Some(format!("{alg:?}").as_str()));
            let cn = s.common_name.as_deref().unwrap();
            assert!(
                cn.starts_with("Hallmark Development Signer ") && cn.len() == 36,
                "the common name names the instance: {cn}"
            );
            assert_eq!(s.issuer.as_deref(), Some("Acme Labs"));
            let subject = s.subject_dn.as_deref().unwrap();
            assert!(
                subject.contains("CN=Hallmark Development Signer"),
                "{subject}"
            );
            assert!(subject.contains("O=Acme Labs"), "{subject}");
            let issuer = s.issuer_dn.as_deref().unwrap();
            assert!(
                issuer.contains("CN=Hallmark Development Root CA"),
                "{issuer}"
            );
            assert!(s.serial.as_deref().is_some_and(|v| !v.is_empty()));
            let nb =
                chrono::DateTime::parse_from_rfc3339(s.not_before.as_deref().unwrap()).unwrap();
            let na = chrono::DateTime::parse_from_rfc3339(s.not_after.as_deref().unwrap()).unwrap();
            assert!(nb < chrono::Utc::now() && na > chrono::Utc::now());
            assert_eq!(s.chain_sha256.len(), 2);
            assert_eq!(s.certificate_sha256.as_ref(), s.chain_sha256.first());
            assert!(s.time.is_none(), "no TSA, no trusted signing time");
            assert!(!s.blocked);
        }
    }
}

#[test]
fn rfc3161_time_stamp_gives_a_signing_time_for_every_algorithm() {
    let tsa = common::start_tsa();
    for alg in ALGS {
        let id = identity(alg, "Acme Labs");
        let signer = id
            .identity
            .with_time_authority(Some(tsa.url.clone()), std::time::Duration::from_secs(10))
            .unwrap();
        let before = chrono::Utc::now() - chrono::Duration::seconds(5);
        let signed = sign_media(&common::png(), "image/png", &request(), &signer, None).unwrap();
        let r = verify_media(&signed.bytes, "image/png", &trust_with(&id.ca_pem)).unwrap();
        assert_eq!(
            r.validation_state,
            Some(ValidationState::Trusted),
            "{alg:?} {r:#?}"
        );
        let time = r
            .signer
            .as_ref()
            .and_then(|s| s.time.clone())
            .expect("signing time");
        let t = chrono::DateTime::parse_from_rfc3339(&time).unwrap();
        assert!(
            t > before && t < chrono::Utc::now() + chrono::Duration::seconds(5),
            "{time}"
        );
        assert!(
            r.status_codes
                .iter()
                .any(|c| c.code.starts_with("timeStamp.")),
            "a time-stamp status is reported: {r:#?}"
        );
    }
}

#[test]
fn unreachable_or_bad_time_stamp_authority_is_a_clear_error() {
    let id = identity(SignatureAlgorithm::Es256, "Acme Labs");
    // Nothing listens on this port (bound then dropped).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let signer = id
        .identity
        .with_time_authority(
            Some(format!("HTTP://user:s3cret@127.0.0.1:{port}/tsa?token=abc")),
            std::time::Duration::from_secs(2),
        )
        .unwrap();
    match sign_media(&common::png(), "image/png", &request(), &signer, None) {
        Err(ProvenanceError::TimeStamp(m)) => {
            assert!(m.contains("unreachable"), "{m}");
            assert!(m.contains(&format!("127.0.0.1:{port}/tsa")), "{m}");
            assert!(
                !m.contains("s3cret") && !m.contains("token"),
                "credentials leak: {m}"
            );
            assert_eq!(m.matches('(').count(), m.matches(')').count(), "{m}");
        }
        other => panic!("expected a time-stamp error, got {other:?}"),
    }
    let id = identity(SignatureAlgorithm::Es256, "Acme Labs");
    assert!(matches!(
        id.identity.with_time_authority(
            Some("https://tsa.example/".into()),
            std::time::Duration::from_secs(2)
        ),
        Err(ProvenanceError::Identity(_))
    ));
}

#[test]
fn blocked_signer_list_makes_the_manifest_invalid() {
    let a = identity(SignatureAlgorithm::Es256, "Acme Labs");
    let b = identity(SignatureAlgorithm::Es256, "Other Org");
    let signed = sign_media(&common::png(), "image/png", &request(), &a.identity, None).unwrap();
    // Blocking the issuing CA blocks every certificate it issued.
    for blocked in [a.ca_pem.clone(), a.chain_pem.clone()] {
        let trust = TrustConfig {
            blocked_list_pem: Some(blocked),
            ..trust_with(&a.ca_pem)
        };
        let r = verify_media(&signed.bytes, "image/png", &trust).unwrap();
        assert_eq!(r.validation_state, Some(ValidationState::Invalid), "{r:#?}");
        assert!(failures(&r).contains(&BLOCKED_SIGNER_CODE), "{r:#?}");
        assert!(r.signer.as_ref().unwrap().blocked);
    }
    let trust = TrustConfig {
        blocked_list_pem: Some(b.chain_pem.clone()),
        ..trust_with(&a.ca_pem)
    };
    let r = verify_media(&signed.bytes, "image/png", &trust).unwrap();
    assert_eq!(r.validation_state, Some(ValidationState::Trusted), "{r:#?}");

    // A chain that leaves the blocked root out is still caught: the leaf names it as issuer.
    let leaf_only = pem::parse_many(&a.chain_pem).unwrap()[0].clone();
    let key_pem = std::fs::read(a._dir.path().join("signing-key.pem")).unwrap();
    let leaf_id = SigningIdentity::from_pem(pem::encode(&leaf_only).as_bytes(), &key_pem).unwrap();
    let leaf_signed = sign_media(&common::png(), "image/png", &request(), &leaf_id, None).unwrap();
    let block_ca = TrustConfig {
        blocked_list_pem: Some(a.ca_pem.clone()),
        ..trust_with(&a.ca_pem)
    };
    let r = verify_media(&leaf_signed.bytes, "image/png", &block_ca).unwrap();
    assert_eq!(r.validation_state, Some(ValidationState::Invalid), "{r:#?}");
    assert!(r.signer.as_ref().unwrap().blocked);

    // A blocked signer deeper in the history is reported on the ingredient.
    let resigned = sign_media(
        &common::png(),
        "image/png",
        &request(),
        &b.identity,
        Some(&signed.bytes),
    )
    .unwrap();
    let r = verify_media(&resigned.bytes, "image/png", &block_ca).unwrap();
    assert!(r.ingredients[0].signer.as_ref().unwrap().blocked, "{r:#?}");
    assert!(r
        .ingredient_failure_codes
        .iter()
        .any(|c| c == BLOCKED_SIGNER_CODE));
    assert!(!r.signer.as_ref().unwrap().blocked);

    // Lists that would silently block nothing are refused.
    assert_eq!(
        hallmark_provenance::check_blocked_list(&a.chain_pem).unwrap(),
        2
    );
    for bad in [
        String::new(),
        "not pem".to_string(),
        format!(
            "{}-----BEGIN CERTIFICATE-----\n!!!notbase64!!!\n-----END CERTIFICATE-----\n",
            a.ca_pem
        ),
        std::fs::read_to_string(a._dir.path().join("signing-key.pem")).unwrap(),
    ] {
        assert!(
            hallmark_provenance::check_blocked_list(&bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn training_mining_assertion_is_recorded_and_validated() {
    let id = identity(SignatureAlgorithm::Es256, "Acme Labs");
    let mut req = request();
    req.training_mining
        .insert("ai_training".into(), "notAllowed".into());
    req.training_mining
        .insert("c2pa.data_mining".into(), "constrained".into());
    let signed = sign_media(&common::png(), "image/png", &req, &id.identity, None).unwrap();
    let r = verify_media(&signed.bytes, "image/png", &TrustConfig::default()).unwrap();
    assert_eq!(r.validation_state, Some(ValidationState::Valid), "{r:#?}");
    assert!(r
        .assertion_labels
        .iter()
        .any(|l| l.starts_with("c2pa.training-mining")));
    let expected: std::collections::BTreeMap<String, String> = [
        ("c2pa.ai_training".to_string(), "notAllowed".to_string()),
        ("c2pa.data_mining".to_string(), "constrained".to_string()),
    ]
    .into();
    assert_eq!(r.training_mining, expected);
    for entries in [
        vec![("ai_training", "maybe")],
        vec![("sell_it", "allowed")],
        vec![
            ("ai_training", "allowed"),
            ("c2pa.ai_training", "notAllowed"),
        ],
    ] {
        let mut bad = request();
        for (k, v) in entries {
            bad.training_mining.insert(k.into(), v.into());
        }
        assert!(matches!(
            bad.validate(),
            Err(ProvenanceError::InvalidRequest(_))
        ));
        assert!(matches!(
            sign_media(&common::png(), "image/png", &bad, &id.identity, None),
            Err(ProvenanceError::InvalidRequest(_))
        ));
    }
    // Re-signing keeps the parent's restrictions unless the request sets the same use.
    let mut over = request();
    over.training_mining
        .insert("data_mining".into(), "allowed".into());
    let child = sign_media(
        &common::png(),
        "image/png",
        &over,
        &id.identity,
        Some(&signed.bytes),
    )
    .unwrap();
    assert!(child
        .digital_source_type
        .ends_with("/compositeWithTrainedAlgorithmicMedia"));
    let r = verify_media(&child.bytes, "image/png", &TrustConfig::default()).unwrap();
    let expected: std::collections::BTreeMap<String, String> = [
        ("c2pa.ai_training".to_string(), "notAllowed".to_string()),
        ("c2pa.data_mining".to_string(), "allowed".to_string()),
    ]
    .into();
    assert_eq!(r.training_mining, expected, "{r:#?}");
    assert_eq!(r.ingredients[0].training_mining.len(), 2);
}

#[test]
fn ingredient_chain_follows_every_generation() {
    let a = identity(SignatureAlgorithm::Es256, "First Org");
    let b = identity(SignatureAlgorithm::Ed25519, "Second Org");
    let c = identity(SignatureAlgorithm::Es384, "Third Org");
    let first = sign_media(&common::png(), "image/png", &request(), &a.identity, None).unwrap();
    let second = sign_media(
        &common::png(),
        "image/png",
        &request(),
        &b.identity,
        Some(&first.bytes),
    )
    .unwrap();
    let third = sign_media(
        &common::png(),
        "image/png",
        &request(),
        &c.identity,
        Some(&second.bytes),
    )
    .unwrap();
    let r = verify_media(&third.bytes, "image/png", &TrustConfig::default()).unwrap();
    assert_eq!(r.validation_state, Some(ValidationState::Valid), "{r:#?}");
    assert_eq!(
        r.signer.as_ref().unwrap().issuer.as_deref(),
        Some("Third Org")
    );
    let parent = &r.ingredients[0];
    assert_eq!(parent.relationship, "ParentOf");
    assert_eq!(
        parent.active_manifest.as_deref(),
        Some(second.manifest_label.as_str())
    );
    assert_eq!(
        parent.signer.as_ref().unwrap().issuer.as_deref(),
        Some("Second Org")
    );
    assert_eq!(parent.actions, vec!["c2pa.opened", "c2pa.edited"]);
    let grandparent = &parent.ingredients[0];
    assert_eq!(
        grandparent.active_manifest.as_deref(),
        Some(first.manifest_label.as_str())
    );
    assert_eq!(
        grandparent.signer.as_ref().unwrap().issuer.as_deref(),
        Some("First Org")
    );
    assert_eq!(grandparent.actions, vec!["c2pa.created"]);
    assert_eq!(
        grandparent.digital_source_type.as_deref(),
        Some("http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia")
    );
    assert!(grandparent.ingredients.is_empty());
}

/// Flips one byte of the first occurrence of `needle` after `from`.
fn flip(bytes: &mut [u8], needle: &[u8], from: usize) -> usize {
    let at = from
        + bytes[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap_or_else(|| panic!("{} not found", String::from_utf8_lossy(needle)));
    bytes[at + 1] ^= 0x01;
    at
}

fn media_offset(mime: &str, bytes: &[u8]) -> usize {
    match mime {
        // Inside the last IDAT's compressed data.
        "image/png" => bytes.windows(4).rposition(|w| w == b"IDAT").unwrap() + 8,
        // Inside the entropy-coded scan, just before EOI.
        "image/jpeg" => bytes.len() - 16,
        // Inside the PCM samples.
        "audio/wav" => bytes.windows(4).position(|w| w == b"data").unwrap() + 400,
        _ => unreachable!(),
    }
}

/// The tamper suite: pixel/sample changes, flipped manifest bytes (claim and assertion) and a
/// claim signed with a key that does not match the certificate, for every image and audio
/// format and every signing algorithm. Each gets its precise C2PA 2.2 §15 failure code.
#[test]
fn tampered_files_get_precise_failure_codes() {
    for alg in ALGS {
        let id = identity(alg, "Acme Labs");
        for (mime, input) in [
            ("image/png", common::png()),
            ("image/jpeg", common::jpeg()),
            ("audio/wav", common::wav()),
        ] {
            let signed = sign_media(&input, mime, &request(), &id.identity, None)
                .unwrap()
                .bytes;
            let check = |bytes: &[u8], code: &str, what: &str| {
                let r = verify_media(bytes, mime, &TrustConfig::default()).unwrap();
                assert_eq!(
                    r.validation_state,
                    Some(ValidationState::Invalid),
                    "{alg:?} {mime} {what}: {r:#?}"
                );
                assert!(
                    failures(&r).contains(&code),
                    "{alg:?} {mime} {what}: {r:#?}"
                );
            };
            let mut content = signed.clone();
            let at = media_offset(mime, &content);
            content[at] ^= 0x55;
            check(&content, "assertion.dataHash.mismatch", "content changed");

            // The claim carries claim_generator_info ("Hallmark"): its signature no longer matches.
            let mut claim = signed.clone();
            let c = claim.windows(10).position(|w| w == b"c2pa.claim").unwrap();
            flip(&mut claim, b"Hallmark", c);
            check(&claim, "claimSignature.mismatch", "claim byte flipped");

            // The actions assertion names the model: its hashed URI no longer matches.
            let mut assertion = signed.clone();
            flip(&mut assertion, b"acme-diffusion", 0);
            check(
                &assertion,
                "assertion.hashedURI.mismatch",
                "assertion byte flipped",
            );
        }
    }
}

/// A signer whose certificate chain belongs to another key: the COSE signature can't be
/// verified with the certificate's public key.
struct WrongCertificate<'a> {
    key: &'a SigningIdentity,
    certs: Vec<Vec<u8>>,
}

impl c2pa::Signer for WrongCertificate<'_> {
    fn sign(&self, data: &[u8]) -> c2pa::Result<Vec<u8>> {
        c2pa::Signer::sign(self.key, data)
    }
    fn alg(&self) -> c2pa::SigningAlg {
        c2pa::Signer::alg(self.key)
    }
    fn certs(&self) -> c2pa::Result<Vec<Vec<u8>>> {
        Ok(self.certs.clone())
    }
    fn reserve_size(&self) -> usize {
        c2pa::Signer::reserve_size(self.key) + 2048
    }
}

#[test]
fn wrong_certificate_is_a_claim_signature_mismatch() {
    for alg in ALGS {
        let a = identity(alg, "Key Owner");
        let b = identity(alg, "Certificate Owner");
        let signer = WrongCertificate {
            key: &a.identity,
            certs: b.identity.chain_der().to_vec(),
        };
        let ctx = c2pa::Context::new()
            .with_settings(r#"{"verify": {"verify_after_sign": false}, "builder": {"thumbnail": {"enabled": false}}}"#)
            .unwrap();
        let def = serde_json::json!({
            "claim_generator_info": [{"name": "Hallmark test"}],
            "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [{
                "action": "c2pa.created",
                "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
            }]}}]
        });
        let mut builder = c2pa::Builder::from_context(ctx)
            .with_definition(def.to_string().as_str())
            .unwrap();
        let png = common::png();
        let mut out = Cursor::new(Vec::new());
        builder
            .sign(&signer, "image/png", &mut Cursor::new(&png), &mut out)
            .unwrap();
        let r = verify_media(out.get_ref(), "image/png", &trust_with(&b.ca_pem)).unwrap();
        assert_eq!(
            r.validation_state,
            Some(ValidationState::Invalid),
            "{alg:?} {r:#?}"
        );
        assert!(
            failures(&r).contains(&"claimSignature.mismatch"),
            "{alg:?} {r:#?}"
        );
    }
}
