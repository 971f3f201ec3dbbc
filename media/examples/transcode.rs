//! Decode any supported audio file and re-encode it as WAV or MP3 with Hallmark's encoders:
//! `cargo run -p hallmark-media --example transcode -- IN OUT.{wav,mp3} [KBPS]`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&args[1]).expect("read input");
    let format = hallmark_media::sniff(&bytes).expect("known format");
    let clip = hallmark_media::decode_audio(&bytes, format, &Default::default()).expect("decode");
    let out = if args[2].ends_with(".mp3") {
        let kbps = args.get(3).map_or(192, |k| k.parse().expect("kbps"));
        hallmark_media::encode_mp3(&clip, kbps).expect("encode mp3")
    } else {
        hallmark_media::encode_wav(&clip).expect("encode wav")
    };
    std::fs::write(&args[2], out).expect("write output");
}
