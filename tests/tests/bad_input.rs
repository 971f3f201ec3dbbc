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
    // Corrupt media: a truncated PNG.
    s.verify(&png[..png.len() / 3])
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
        .assert_problem(404, "not_found");
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
    // A validator child that can't get the memory it needs is reported as a resource limit,
    // not a server error, and the rest of the report is still produced.
    let s = Server::start(Backend::Sqlite, &[("HALLMARK__C2PA__MEMORY_LIMIT_MB", "4")]).unwrap();
    let png = encode(&photo(320, 240, 4), image::ImageFormat::Png);
    let resp = s.verify(&png);
    assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));
    let r = resp.json();
    assert_eq!(r["c2pa"]["read_error"]["code"], "resource_limit", "{r:#}");
    assert_eq!(r["watermark"]["detected"], false);
}
