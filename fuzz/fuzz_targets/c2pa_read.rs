//! C2PA manifest reading and validation (provenance crate, over c2pa-rs) on arbitrary bytes:
//! `verify_media` with the MIME type Hallmark sniffs (JPEG when nothing is recognised, so
//! JUMBF parsing is reached from an APP11 segment), and `verify_manifest_store` with the input
//! as a standalone manifest store (`.c2pa`, the form a manifest recovered through a watermark
//! takes) against a fixed small JPEG. Models the C2PA job of a `/v1/verify` worker.
#![no_main]

use hallmark_media::sniff;
use hallmark_provenance::{verify_manifest_store, verify_media, TrustConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: hallmark_fuzz::quiet_caught_panics(), |data: &[u8]| {
    let trust = TrustConfig::default();
    let mime = sniff(data).map_or("image/jpeg", |f| f.mime());
    let _ = verify_media(data, mime, &trust);
    let _ = verify_manifest_store(data, hallmark_fuzz::SMALL_JPEG, "image/jpeg", &trust);
});
