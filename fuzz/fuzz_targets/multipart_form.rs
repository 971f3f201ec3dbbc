//! Multipart form parsing as `/v1/sign` and `/v1/verify` read uploads
//! (api/src/routes/upload.rs `read_upload_inner`): the boundary taken from a Content-Type, the
//! closing-boundary pre-check on the buffered body, then actix-multipart's parser over the
//! whole body as one chunk, reading every field to its end. The first input line is the
//! Content-Type, the rest the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (ct, body) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let Ok(ct) = std::str::from_utf8(ct) else {
        return;
    };
    let _ = hallmark_fuzz::read_form(ct, body);
});
