//! Profiling helper: times embed / detect (marked, unmarked) on a 1920×1080
//! version of one image, one thread. `prof <image> [reps] [embed|marked|clean|all]`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]
use hallmark_watermark::{image as wm, WatermarkKey};
use image::DynamicImage;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let src = image::open(&args[1]).expect("open");
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(9);
    let what = args.get(3).cloned().unwrap_or_else(|| "all".into());
    let img = DynamicImage::ImageRgb8(
        src.resize_to_fill(1920, 1080, image::imageops::FilterType::Lanczos3)
            .to_rgb8(),
    );
    let key = WatermarkKey::from_secret(b"hallmark-bench-secret-0001").expect("key");
    let p = wm::ImageEmbedParams::default();
    let marked = wm::embed(&img, &key, 0x1234_5678_9abc_def0, &p).expect("embed");
    let (mut te, mut tm, mut tc) = (vec![], vec![], vec![]);
    for _ in 0..reps {
        if what == "all" || what == "embed" {
            let t = Instant::now();
            let m = wm::embed(&img, &key, 0x1234_5678_9abc_def0, &p).expect("embed");
            te.push(t.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(m);
        }
        if what == "all" || what == "marked" {
            let t = Instant::now();
            let d = wm::detect(&marked, &key);
            tm.push(t.elapsed().as_secs_f64() * 1e3);
            assert!(d.detected);
        }
        if what == "all" || what == "clean" {
            let t = Instant::now();
            let d = wm::detect(&img, &key);
            tc.push(t.elapsed().as_secs_f64() * 1e3);
            assert!(!d.detected);
        }
    }
    let st = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            (0.0, 0.0)
        } else {
            (v[v.len() / 2], v[0])
        }
    };
    let (e, m, c) = (st(&mut te), st(&mut tm), st(&mut tc));
    println!(
        "embed {:.1}/{:.1}  marked {:.1}/{:.1}  clean {:.1}/{:.1} ms (median/min)",
        e.0, e.1, m.0, m.1, c.0, c.1
    );
}
