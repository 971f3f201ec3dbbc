#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The DCGAN face generator through `POST /v1/generate` (issue 21, "what it must show" 4): the
//! same seed gives the same face, the output is a usable size (upscaled from 64×64), signed
//! (softwareAgent names the model and its SHA-256), watermarked, and verify reads the mark
//! back and calls it `ai_generated`.

use hallmark_tests::{psnr, Backend, Server};
use serde_json::json;

const FACES_SHA256: &str = "33f806b74c98a78c1f34ed26a90946d748f4ae4540f7f48d42ef8435d223268a";

#[test]
fn faces_are_reproducible_signed_and_marked() {
    let s = Server::start(
        Backend::Sqlite,
        &[("HALLMARK__DETECTORS__ENABLED", "false")],
    )
    .unwrap();
    let list = s.get("/v1/generators", Some(&s.admin_key)).json();
    let g = list["generators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "dcgan-faces")
        .cloned()
        .unwrap_or_else(|| panic!("dcgan-faces not listed: {list:#}"));
    assert_eq!(g["kind"], "image");
    assert_eq!(g["available"], true);
    assert_eq!(g["sha256"], FACES_SHA256);

    let gen = |seed: u64| {
        let r = s.post_json(
            "/v1/generate",
            Some(&s.admin_key),
            &json!({"generator": "dcgan-faces", "seed": seed, "width": 512, "height": 512}),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("content-type"), Some("image/png"));
        r
    };
    let a = gen(5);
    let b = gen(5);
    let c = gen(6);
    let img = |r: &hallmark_tests::Resp| image::load_from_memory(&r.body).unwrap();
    let (ia, ib, ic) = (img(&a), img(&b), img(&c));
    assert_eq!((ia.width(), ia.height()), (512, 512));
    // Same seed: the same face; only the watermark payloads differ (each asset has its own).
    let same = psnr(&ia, &ib);
    let other = psnr(&ia, &ic);
    assert!(same > 38.0, "same seed PSNR {same:.1} dB");
    assert!(other < 25.0, "different seeds PSNR {other:.1} dB");

    for r in [&a, &c] {
        let asset = r.header("hallmark-asset-id").unwrap();
        let v = s.verify(&r.body).json();
        assert_eq!(v["c2pa"]["validation_state"], "Valid", "{v:#}");
        assert_eq!(
            v["c2pa"]["software_agent"],
            format!("dcgan-faces 1 sha256:{FACES_SHA256}"),
            "{v:#}"
        );
        assert_eq!(v["watermark"]["detected"], true, "{v:#}");
        assert_eq!(v["watermark"]["asset_id"], asset, "{v:#}");
        assert_eq!(v["verdict"]["label"], "ai_generated", "{v:#}");
    }
}
