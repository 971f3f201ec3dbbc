//! Audio path of verify/sign: magic-byte sniffing, then bounded decoding (WAV, MP3, FLAC,
//! Ogg Vorbis, M4A/AAC via symphonia, after Hallmark's header and container-table checks; Opus
//! in Ogg and WebM via libopus, WebM through Hallmark's EBML demuxer) with the service's
//! default limits.
#![no_main]

use hallmark_media::{decode_audio, sniff, wav_sample_format, MediaKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: hallmark_fuzz::quiet_caught_panics(), |data: &[u8]| {
    let Some(format) = sniff(data) else { return };
    if format.kind() == MediaKind::Audio && format.decodable() {
        let _ = wav_sample_format(data);
        let _ = decode_audio(data, format, &hallmark_fuzz::service_limits());
    }
});
