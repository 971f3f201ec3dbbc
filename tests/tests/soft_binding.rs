#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The C2PA Soft Binding Resolution API (C2PA 2.2, issue 17) called as a C2PA client calls it:
//! discover the algorithms, read the `c2pa.soft-binding` assertion of a signed image and
//! resolve its `alg`/`value` (GET and POST `/matches/byBinding`), fetch the manifest store by
//! the returned `manifestId`, and resolve the content itself after JPEG re-encoding, resizing
//! and metadata removal (`/matches/byContent`). A signed image's mark copied onto other content
//! resolves to nothing (the fingerprint cross-check: 200 with no matches); malformed queries
//! are 400, unknown bindings and manifests 404, content no algorithm reads 415, all
//! problem+json.

use base64::Engine as _;
use hallmark_tests::fixtures::{copy_mark, encode, jpeg, scene};
use hallmark_tests::{Backend, Server};
use serde_json::json;

const IMAGE_ALG: &str = "io.hallmark.watermark.image.v1";
const AUDIO_ALG: &str = "io.hallmark.watermark.audio.v2";

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
fn q(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn manifest_ids(r: &hallmark_tests::Resp) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()["matches"]
        .as_array()
        .unwrap_or_else(|| panic!("no matches array: {}", r.json()))
        .iter()
        .map(|m| m["manifestId"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn soft_binding_resolution_api() {
    let s = Server::start(Backend::Sqlite, &[]).unwrap();
    let key = s.admin_key.clone();
    let k = Some(key.as_str());

    // Discovery: no key needed (the spec gives the route no security requirement).
    let r = s.get("/v1/services/supportedAlgorithms", None);
    assert_eq!(r.status, 200);
    let algs = r.json();
    let names: Vec<_> = algs["watermarks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["alg"].as_str().unwrap())
        .collect();
    assert_eq!(names, [IMAGE_ALG, AUDIO_ALG]);
    assert_eq!(algs["fingerprints"], json!([]));

    // Sign an image; read its soft binding as a C2PA reader reports it.
    let original = scene(960, 720, 21);
    let resp = s.sign(
        &encode(&original, image::ImageFormat::Png),
        &json!({"generator": "acme-imagine", "model": "acme-diffusion"}),
    );
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let label = resp.header("hallmark-manifest-label").unwrap().to_owned();
    let payload = resp
        .header("hallmark-watermark-payload")
        .unwrap()
        .to_owned();
    let signed = image::load_from_memory(&resp.body).unwrap();
    let report = s.verify(&resp.body).json();
    let binding = &report["c2pa"]["soft_bindings"][0];
    assert_eq!(binding[0], IMAGE_ALG, "{report:#}");
    let value = binding[1].as_str().unwrap().to_owned();
    // The value is base64 of the payload's big-endian bytes, as the API carries values.
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&value)
        .unwrap();
    assert_eq!(hex::encode(raw), payload);

    // byBinding: GET with the assertion's alg and value, and POST with them as JSON.
    let by_get = format!(
        "/v1/matches/byBinding?alg={}&value={}&maxResults=5",
        q(IMAGE_ALG),
        q(&value)
    );
    assert_eq!(manifest_ids(&s.get(&by_get, k)), [label.as_str()]);
    let r = s.post_json(
        "/v1/matches/byBinding?maxResults=1",
        k,
        &json!({"alg": IMAGE_ALG, "value": value}),
    );
    assert_eq!(manifest_ids(&r), [label.as_str()]);

    // Fetch the manifest store by the returned id, as the spec describes.
    for suffix in [
        "",
        "?returnActiveManifest=true",
        "?returnActiveManifest=false",
    ] {
        let m = s.get(&format!("/v1/manifests/{}{suffix}", q(&label)), k);
        assert_eq!(m.status, 200, "{}", String::from_utf8_lossy(&m.body));
        assert_eq!(m.header("content-type"), Some("application/c2pa"));
        assert!(m.body.len() > 1000);
    }

    // byContent: the signed file itself, then a copy resized to 0.75x and re-encoded as JPEG
    // q80 (the encoder writes no metadata: the manifest is gone).
    let r = s.post_raw("/v1/matches/byContent", k, "image/jpeg", &resp.body);
    assert_eq!(manifest_ids(&r), [label.as_str()]);
    assert!(r.json()["matches"][0]["similarityScore"].as_u64().unwrap() >= 90);
    let small = signed.resize_exact(720, 540, image::imageops::FilterType::Lanczos3);
    let copy = jpeg(&small, 80);
    assert_eq!(s.verify(&copy).json()["c2pa"]["present"], false);
    for path in [
        "/v1/matches/byContent".to_owned(),
        format!("/v1/matches/byContent?alg={}&maxResults=3", q(IMAGE_ALG)),
    ] {
        let r = s.post_raw(&path, k, "image/jpeg", &copy);
        assert_eq!(manifest_ids(&r), [label.as_str()], "{path}");
        let score = r.json()["matches"][0]["similarityScore"].as_u64().unwrap();
        assert!((50..=100).contains(&score), "{score}");
    }

    // The fingerprint cross-check: the exact mark of the signed image on unrelated content is
    // read (verify reports its payload) but resolves to nothing, hint or not.
    let forged = encode(
        &copy_mark(&signed, &original, &scene(960, 720, 22)),
        image::ImageFormat::Png,
    );
    let v = s.verify(&forged).json();
    assert_eq!(v["watermark"]["payload"], payload.as_str(), "{v:#}");
    let r = s.post_raw("/v1/matches/byContent", k, "image/png", &forged);
    assert!(manifest_ids(&r).is_empty(), "{}", r.json());
    let hinted = format!(
        "/v1/matches/byContent?hintAlg={}&hintValue={}",
        q(IMAGE_ALG),
        q(&value)
    );
    assert!(manifest_ids(&s.post_raw(&hinted, k, "image/png", &forged)).is_empty());
    // Unmarked content that was never signed: no match.
    let r = s.post_raw(
        "/v1/matches/byContent",
        k,
        "image/jpeg",
        &jpeg(&scene(640, 480, 23), 85),
    );
    assert!(manifest_ids(&r).is_empty());

    // A well-formed binding no asset carries: 404 problem+json `binding_not_found`, on GET and
    // POST, for both algorithms (issue 17's acceptance criterion; docs/DECISIONS.md).
    let unknown = base64::engine::general_purpose::STANDARD.encode([0x5a; 8]);
    let unknown_audio = base64::engine::general_purpose::STANDARD.encode([0x5a; 4]);
    for (alg, value) in [(IMAGE_ALG, &unknown), (AUDIO_ALG, &unknown_audio)] {
        let path = format!("/v1/matches/byBinding?alg={}&value={}", q(alg), q(value));
        s.get(&path, k).assert_problem(404, "binding_not_found");
        s.post_json(
            "/v1/matches/byBinding",
            k,
            &json!({"alg": alg, "value": value}),
        )
        .assert_problem(404, "binding_not_found");
    }
    // An unknown manifest id: 404 problem+json.
    s.get(
        "/v1/manifests/urn:c2pa:7d0f1c8e-3c1a-4f6e-9a51-0c2b3d4e5f60",
        k,
    )
    .assert_problem(404, "not_found");

    // Malformed queries: 400 problem+json.
    for path in [
        format!("/v1/matches/byBinding?alg={}", q(IMAGE_ALG)),
        format!("/v1/matches/byBinding?value={}", q(&value)),
        format!(
            "/v1/matches/byBinding?alg={}&value=%21%21not-base64",
            q(IMAGE_ALG)
        ),
        format!(
            "/v1/matches/byBinding?alg={}&value={}",
            q(AUDIO_ALG),
            q(&value)
        ),
        format!(
            "/v1/matches/byBinding?alg=com.example.unknown.1&value={}",
            q(&value)
        ),
        format!(
            "/v1/matches/byBinding?alg={}&value={}&maxResults=0",
            q(IMAGE_ALG),
            q(&value)
        ),
        format!(
            "/v1/matches/byBinding?alg={}&value={}&maxResults=x",
            q(IMAGE_ALG),
            q(&value)
        ),
        "/v1/manifests/not-a-manifest-id".to_owned(),
        format!("/v1/manifests/{}?returnActiveManifest=maybe", q(&label)),
    ] {
        s.get(&path, k).assert_problem(400, "invalid_request");
    }
    for body in [
        json!({"alg": IMAGE_ALG}),
        json!({"alg": IMAGE_ALG, "value": 7}),
    ] {
        s.post_json("/v1/matches/byBinding", k, &body)
            .assert_problem(400, "invalid_request");
    }
    s.post_raw("/v1/matches/byBinding", k, "application/json", b"{not json")
        .assert_problem(400, "invalid_request");
    let only_alg = format!("/v1/matches/byContent?hintAlg={}", q(IMAGE_ALG));
    s.post_raw(&only_alg, k, "image/jpeg", &copy)
        .assert_problem(400, "invalid_request");
    s.post_raw("/v1/matches/byContent", k, "image/jpeg", b"")
        .assert_problem(400, "invalid_request");
    // Content no algorithm reads, or not the one `alg` names: 415.
    s.post_raw(
        "/v1/matches/byContent",
        k,
        "text/plain",
        b"hello, soft bindings",
    )
    .assert_problem(415, "unsupported_media_type");
    let audio_alg = format!("/v1/matches/byContent?alg={}", q(AUDIO_ALG));
    s.post_raw(&audio_alg, k, "image/jpeg", &copy)
        .assert_problem(415, "unsupported_media_type");
    // Methods and keys.
    s.request("DELETE", "/v1/matches/byBinding", &[], None)
        .assert_problem(405, "method_not_allowed");
    s.get(&by_get, None).assert_problem(401, "unauthorized");
    let signer = s.create_key("sign");
    s.get(&by_get, Some(&signer))
        .assert_problem(403, "insufficient_scope");
    let verifier = s.create_key("verify");
    assert_eq!(
        manifest_ids(&s.get(&by_get, Some(&verifier))),
        [label.as_str()]
    );
}
