//! The service's image preprocessing as a batch tool, so training sees exactly the tensors the
//! service scores (`training/detect_image.py` calls it; no second implementation in Python).
//!
//! Reads jobs from stdin, one per line: `PATH<TAB>SCALE<TAB>JPEG_QUALITY<TAB>OUT`. Each image
//! is decoded with `hallmark_media::decode_image` (as uploads are), optionally resized by
//! `SCALE` (Triangle filter; 1 = unchanged, an augmentation for training), then turned into
//! 5 canonical crops by `hallmark_detectors::preprocess::image_crops(img, 224, 512, 5, Q)`,
//! written to `OUT` as little-endian f32 `[5, 3, 224, 224]`. Prints `ok OUT` or
//! `err OUT MESSAGE` per job.
//!
//! ```sh
//! cargo run --release -p hallmark-detectors --example canonical_crops < jobs.tsv
//! ```

use std::io::{BufRead, Write};

fn job(path: &str, scale: f64, q: u8, out: &str) -> Result<(), Box<dyn std::error::Error>> {
    let bytes = std::fs::read(path)?;
    let format = hallmark_media::sniff(&bytes).ok_or("unrecognised format")?;
    let mut img =
        hallmark_media::decode_image(&bytes, format, &hallmark_media::Limits::default())?.image;
    if (scale - 1.0).abs() > 1e-9 {
        let w = ((f64::from(img.width()) * scale).round() as u32).max(1);
        let h = ((f64::from(img.height()) * scale).round() as u32).max(1);
        img = img.resize_exact(w, h, image::imageops::FilterType::Triangle);
    }
    let (data, _) = hallmark_detectors::preprocess::image_crops(&img, 224, 512, 5, q)?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(out)?);
    for v in data {
        f.write_all(&v.to_le_bytes())?;
    }
    f.flush()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line?;
        let parts: Vec<&str> = line.split('\t').collect();
        let [path, scale, q, out] = parts[..] else {
            writeln!(stdout, "err ? malformed job line")?;
            continue;
        };
        match job(path, scale.parse()?, q.parse()?, out) {
            Ok(()) => writeln!(stdout, "ok {out}")?,
            Err(e) => writeln!(stdout, "err {out} {e}")?,
        }
    }
    Ok(())
}
