#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Bad input gets problem+json with a stable code and the right 4xx, never a 500 or a hang.

use hallmark_tests::fixtures::{encode, photo};
use hallmark_tests::{Backend, Server};
use serde_json::json;

#[test]
fn bad_uploads_get_problem_json() {
    let s = Server::start(
        Backend::Sqlite,
        &[("HALLMARK__SERVER__MAX_UPLOAD_BYTES", "1000000")],
    )
    .unwrap();
    let key = s.admin_key.clone();
    let meta = json!({"model": "m"}).to_string();
    let png = encode(&photo(320, 240, 3), image::ImageFormat::Png);

    // Unrecognised and unsupported media.
    s.verify(b"definitely not media")
        .assert_problem(415, "unsupported_media_type");
    s.post_multipart(
        "/v1/sign",
        Some(&key),
        &[
            ("file", Some("a"), b"%PDF-1.7 nothing"),
            ("metadata", None, meta.as_bytes()),
        ],
    )
    .assert_problem(415, "unsupported_media_type");
    // Corrupt media: a truncated PNG, a JPEG cut inside its scan (decoders would fill it grey).
    s.verify(&png[..png.len() / 3])
        .assert_problem(422, "corrupt_media");
    let jpg = encode(&photo(320, 240, 3), image::ImageFormat::Jpeg);
    s.verify(&jpg[..jpg.len() * 2 / 3])
        .assert_problem(422, "corrupt_media");
    s.post_multipart(
        "/v1/sign",
        Some(&key),
        &[
            ("file", Some("a"), &png[..200]),
            ("metadata", None, meta.as_bytes()),
        ],
    )
    .assert_problem(422, "corrupt_media");
    // Oversize upload (limit configured to 1 MB here; default 64 MiB).
    let big = vec![0u8; 1_200_000];
    s.verify(&big).assert_problem(413, "payload_too_large");
    s.post_raw("/v1/verify", Some(&key), "application/octet-stream", &big)
        .assert_problem(413, "payload_too_large");
    // Missing fields, bad metadata.
    s.post_multipart("/v1/sign", Some(&key), &[("file", Some("a"), &png)])
        .assert_problem(400, "invalid_request");
    // An empty file part: a malformed request on sign as on verify (not 415).
    let r = s.post_multipart(
        "/v1/sign",
        Some(&key),
        &[
            ("file", Some("a"), b""),
            ("metadata", None, meta.as_bytes()),
        ],
    );
    assert!(String::from_utf8_lossy(&r.body).contains("empty upload"));
    r.assert_problem(400, "invalid_request");
    s.post_multipart(
        "/v1/sign",
        Some(&key),
        &[("metadata", None, meta.as_bytes())],
    )
    .assert_problem(400, "invalid_request");
    s.post_multipart(
        "/v1/sign",
        Some(&key),
        &[("file", Some("a"), &png), ("metadata", None, b"{not json")],
    )
    .assert_problem(400, "invalid_request");
    s.post_multipart(
        "/v1/sign",
        Some(&key),
        &[
            ("file", Some("a"), &png),
            ("metadata", None, br#"{"model": ""}"#),
        ],
    )
    .assert_problem(400, "invalid_request");
    s.post_multipart(
        "/v1/sign",
        Some(&key),
        &[
            ("file", Some("a"), &png),
            (
                "metadata",
                None,
                br#"{"model": "m", "digital_source_type": "bogus type!"}"#,
            ),
        ],
    )
    .assert_problem(400, "invalid_request");
    s.post_raw("/v1/sign", Some(&key), "image/png", &png)
        .assert_problem(400, "invalid_request");
    s.post_raw("/v1/verify", Some(&key), "application/octet-stream", b"")
        .assert_problem(400, "invalid_request");
    s.post_raw("/v1/decisions", Some(&key), "application/json", b"{")
        .assert_problem(400, "invalid_request");
    s.get("/v1/audit/entries?limit=0", Some(&key))
        .assert_problem(400, "invalid_request");
    s.get("/v1/audit/entries?after=-1", Some(&key))
        .assert_problem(400, "invalid_request");
    s.get("/v1/verifications/does-not-exist", Some(&key))
        .assert_problem(400, "invalid_request");
    s.get("/v1/manifests/urn:c2pa:nope", Some(&key))
        .assert_problem(404, "not_found");
    s.get("/no/such/route", Some(&key))
        .assert_problem(404, "not_found");
    // Too small to carry a watermark.
    let tiny = encode(&photo(8, 8, 1), image::ImageFormat::Png);
    s.post_multipart(
        "/v1/sign",
        Some(&key),
        &[
            ("file", Some("a"), &tiny),
            ("metadata", None, meta.as_bytes()),
        ],
    )
    .assert_problem(422, "media_too_small");
    // A key without the sign scope.
    let verifier = s.create_key("verify");
    s.post_multipart(
        "/v1/sign",
        Some(&verifier),
        &[
            ("file", Some("a"), &png),
            ("metadata", None, meta.as_bytes()),
        ],
    )
    .assert_problem(403, "insufficient_scope");
    // The service is still healthy and still signs.
    assert_eq!(s.get("/healthz", None).status, 200);
    let ok = s.post_multipart(
        "/v1/sign",
        Some(&key),
        &[
            ("file", Some("a"), &png),
            ("metadata", None, meta.as_bytes()),
        ],
    );
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
}

#[test]
fn c2pa_validation_is_bounded_by_the_sandbox() {
    // A C2PA job whose worker can't get the memory it needs is reported as a resource limit,
    // not a server error, and the rest of the report (decoded by another worker) is still
    // produced. The limit caps the worker's whole address space (already more than 4 MiB), so
    // any job that needs fresh memory for the file (a multi-megabyte PNG) dies.
    let s = Server::start(Backend::Sqlite, &[("HALLMARK__C2PA__MEMORY_LIMIT_MB", "4")]).unwrap();
    let png = encode(&photo(1600, 1200, 4), image::ImageFormat::Png);
    let resp = s.verify(&png);
    assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));
    let r = resp.json();
    assert_eq!(r["c2pa"]["read_error"]["code"], "resource_limit", "{r:#}");
    assert_eq!(r["watermark"]["detected"], false);
}

/// A 16-bit mono WAV of silence-ish samples with an arbitrary (possibly invalid) sample rate.
fn wav_with_rate(rate: u32) -> Vec<u8> {
    let samples: Vec<i16> = (0..8000).map(|i| ((i % 50) as i16 - 25) * 100).collect();
    let data_len = (samples.len() * 2) as u32;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes()); // PCM
    v.extend_from_slice(&1u16.to_le_bytes()); // mono
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&rate.wrapping_mul(2).to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

#[test]
fn hostile_requests_found_by_qa_get_clean_4xx() {
    let s = Server::start(Backend::Sqlite, &[]).unwrap();
    let key = s.admin_key.clone();
    let meta = json!({"model": "m"}).to_string();
    // Multipart body without its closing boundary: rejected at once, not left hanging.
    let body =
        b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc\r\n";
    s.post_raw(
        "/v1/verify",
        Some(&key),
        "multipart/form-data; boundary=B",
        body,
    )
    .assert_problem(400, "invalid_request");
    // WAV headers with a zero or absurd sample rate: never a 500.
    for rate in [0u32, 500, 800_000, u32::MAX] {
        let wav = wav_with_rate(rate);
        let v = s.verify(&wav);
        assert!(
            matches!(v.status, 415 | 422),
            "verify rate {rate}: {} {}",
            v.status,
            String::from_utf8_lossy(&v.body)
        );
        let g = s.post_multipart(
            "/v1/sign",
            Some(&key),
            &[
                ("file", Some("a"), &wav),
                ("metadata", None, meta.as_bytes()),
            ],
        );
        assert!(
            matches!(g.status, 415 | 422),
            "sign rate {rate}: {} {}",
            g.status,
            String::from_utf8_lossy(&g.body)
        );
    }
    // A format chunk declaring 0 or 200 channels: a clear 4xx from the header check on both
    // routes (0 channels used to read as an unsupported codec: 415 on sign, a report on verify).
    for (channels, status, code) in [
        (0u16, 422, "corrupt_media"),
        (200, 413, "media_limit_exceeded"),
    ] {
        let mut wav = wav_with_rate(16_000);
        wav[22..24].copy_from_slice(&channels.to_le_bytes());
        s.verify(&wav).assert_problem(status, code);
        s.post_multipart(
            "/v1/sign",
            Some(&key),
            &[
                ("file", Some("a"), &wav),
                ("metadata", None, meta.as_bytes()),
            ],
        )
        .assert_problem(status, code);
    }
    // Control characters never reach the permanent audit log (a reason may hold newlines).
    for (policy, reason) in [("p\u{0}", "r"), ("p\u{1b}[31m", "r"), ("p", "a\u{7}b")] {
        s.post_json(
            "/v1/decisions",
            Some(&key),
            &json!({"verification_id": "x", "action": "label", "policy": policy, "reason": reason}),
        )
        .assert_problem(400, "invalid_request");
    }
    // Paging past i64.
    s.get("/v1/audit/entries?after=9223372036854775808", Some(&key))
        .assert_problem(400, "invalid_request");
    // Scope is checked before the body is parsed.
    let verifier = s.create_key("verify");
    s.post_raw("/v1/decisions", Some(&verifier), "application/json", b"{")
        .assert_problem(403, "insufficient_scope");
    s.post_raw("/v1/generate", Some(&verifier), "application/json", b"[]")
        .assert_problem(403, "insufficient_scope");
    // Generate sizes the watermark can't carry are refused up front.
    s.post_json(
        "/v1/generate",
        Some(&key),
        &json!({"generator": "cppn-abstract", "width": 64, "height": 64}),
    )
    .assert_problem(400, "invalid_request");
    // Hallmark signs generated media only: a capture source type or a foreign IRI is refused.
    let png = encode(&photo(256, 256, 5), image::ImageFormat::Png);
    for dst in ["digitalCapture", "http://evil.example/x"] {
        let m = json!({"model": "m", "digital_source_type": dst}).to_string();
        s.post_multipart(
            "/v1/sign",
            Some(&key),
            &[("file", Some("a"), &png), ("metadata", None, m.as_bytes())],
        )
        .assert_problem(400, "invalid_request");
    }
    assert_eq!(s.get("/healthz", None).status, 200);
}

#[test]
fn protocol_edges_get_problem_json() {
    let s = Server::start(Backend::Sqlite, &[]).unwrap();
    let key = s.admin_key.clone();
    // A known route with the wrong method: 405 with Allow, not 404.
    let r = s.get("/v1/sign", Some(&key));
    r.assert_problem(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("POST"));
    let r = s.request("DELETE", "/v1/audit/entries", &[], None);
    r.assert_problem(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET"));
    s.get("/v1/nope", Some(&key))
        .assert_problem(404, "not_found");
    // A multipart type without its boundary is malformed, not a raw upload of the framing.
    for path in ["/v1/verify", "/v1/sign"] {
        let r = s.post_raw(path, Some(&key), "multipart/form-data", b"--x\r\n");
        assert!(String::from_utf8_lossy(&r.body).contains("boundary"));
        r.assert_problem(400, "invalid_request");
    }
    // The authentication scheme is case-insensitive (RFC 9110 §11.1).
    let auth = format!("bearer {key}");
    assert_eq!(
        s.request(
            "GET",
            "/v1/audit/entries",
            &[("Authorization", &auth)],
            None
        )
        .status,
        200
    );
    s.request(
        "GET",
        "/v1/audit/entries",
        &[("Authorization", &format!("Basic {key}"))],
        None,
    )
    .assert_problem(401, "unauthorized");
    // JSON bodies over 64 KiB: 413 problem+json, whether the framework's buffer limit or the
    // route's own check sees it first.
    for size in [70 * 1024, 300 * 1024] {
        let mut body = b"{\"note\": \"".to_vec();
        body.resize(size, b'a');
        body.extend_from_slice(b"\"}");
        for path in ["/v1/decisions", "/v1/generate"] {
            s.post_raw(path, Some(&key), "application/json", &body)
                .assert_problem(413, "payload_too_large");
        }
    }
    // Sign metadata: bounded lengths, no control characters; refused before any work.
    let png = encode(&photo(256, 256, 5), image::ImageFormat::Png);
    for meta in [
        json!({"model": "m", "title": "t".repeat(1025)}),
        json!({"model": "m".repeat(257)}),
        json!({"model": "m\u{0}x"}),
        json!({"model": "m", "generator": "g\u{1b}[31m"}),
    ] {
        let m = meta.to_string();
        s.post_multipart(
            "/v1/sign",
            Some(&key),
            &[("file", Some("a"), &png), ("metadata", None, m.as_bytes())],
        )
        .assert_problem(400, "invalid_request");
    }
    // The metadata part is JSON: the 64 KiB JSON body limit applies to it too (413 before it is
    // parsed), while the upload around it may be much larger.
    let big = json!({"model": "m", "note": "n".repeat(70 * 1024)}).to_string();
    s.post_multipart(
        "/v1/sign",
        Some(&key),
        &[
            ("file", Some("a"), &png),
            ("metadata", None, big.as_bytes()),
        ],
    )
    .assert_problem(413, "payload_too_large");
    let ok = json!({"model": "m", "title": "t".repeat(1024)}).to_string();
    assert_eq!(
        s.post_multipart(
            "/v1/sign",
            Some(&key),
            &[("file", Some("a"), &png), ("metadata", None, ok.as_bytes())],
        )
        .status,
        200
    );
}
