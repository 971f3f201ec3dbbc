//! Image path of verify/sign: magic-byte sniffing, then bounded decoding with the service's
//! default limits (declared-size checks, EXIF orientation) for every sniffed image format.
#![no_main]

use hallmark_media::{decode_image, sniff, MediaKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: hallmark_fuzz::quiet_caught_panics(), |data: &[u8]| {
    let Some(format) = sniff(data) else { return };
    if format.kind() == MediaKind::Image && format.decodable() {
        let _ = decode_image(data, format, &hallmark_fuzz::service_limits());
    }
});
