//! Clips of the audio harness: a folder of ready clips (`make_clips.sh`), or
//! any speech files cut into fixed-length windows (`--windows S`), with an
//! optional split by file into a tuning and a report half.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::attacks::{read_audio, run, write_wav16};

/// Extensions taken from a folder in window mode (anything `ffmpeg` decodes).
const AUDIO_EXT: &[&str] = &["wav", "flac", "ogg", "opus", "mp3", "m4a", "aac", "amr"];

/// Which files of the sorted input list to use.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Half {
    /// Every file.
    All,
    /// Files at even positions of the sorted list.
    Tune,
    /// Files at odd positions (the half not tuned on).
    Report,
}

impl Half {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all" => Some(Self::All),
            "tune" => Some(Self::Tune),
            "report" => Some(Self::Report),
            _ => None,
        }
    }

    fn keeps(self, i: usize) -> bool {
        match self {
            Self::All => true,
            Self::Tune => i.is_multiple_of(2),
            Self::Report => !i.is_multiple_of(2),
        }
    }
}

/// Files of `paths` (a folder gives its files with one of `ext`), sorted by path,
/// duplicates removed.
pub fn list_files(paths: &[PathBuf], ext: &[&str]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(p) {
                files.extend(rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|f| {
                    f.extension()
                        .and_then(|x| x.to_str())
                        .is_some_and(|x| ext.contains(&x.to_ascii_lowercase().as_str()))
                }));
            }
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    files.dedup();
    files
}

/// What window mode made of the input files.
pub struct Windows {
    /// Folder holding the windows as 16-bit WAV (`<stem>_w<k>.wav`).
    pub dir: PathBuf,
    /// Input files used (after the half split), in order.
    pub used: Vec<PathBuf>,
    /// Files skipped: shorter than one window, or not decodable.
    pub skipped: Vec<(PathBuf, &'static str)>,
    pub count: usize,
}

/// Decodes every file of `paths` (after the `half` split by file) with
/// `ffmpeg`, at its own rate and channel count, and cuts it into consecutive
/// non-overlapping windows of `seconds` from its start (a remainder shorter
/// than a window is dropped; a file shorter than one window is skipped).
pub fn make_windows(paths: &[PathBuf], seconds: f64, half: Half) -> Windows {
    let dir = std::env::temp_dir().join(format!("wm-harness-windows-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let all = list_files(paths, AUDIO_EXT);
    let mut w = Windows {
        dir: dir.clone(),
        used: Vec::new(),
        skipped: Vec::new(),
        count: 0,
    };
    for (i, f) in all.iter().enumerate() {
        if !half.keeps(i) {
            continue;
        }
        let Some((ch, rate)) = decode_file(f, &dir) else {
            w.skipped.push((f.clone(), "undecodable"));
            continue;
        };
        let len = (seconds * f64::from(rate)).round() as usize;
        let n = ch[0].len() / len.max(1);
        if n == 0 {
            w.skipped.push((f.clone(), "shorter than a window"));
            continue;
        }
        w.used.push(f.clone());
        let stem = stem(f);
        for k in 0..n {
            let win: Vec<Vec<f32>> = ch
                .iter()
                .map(|c| c[k * len..(k + 1) * len].to_vec())
                .collect();
            write_wav16(&win, rate, &dir.join(format!("{stem}_w{k}.wav")), &dir);
            w.count += 1;
        }
    }
    let _ = std::fs::remove_file(dir.join("decoded.wav"));
    let _ = std::fs::remove_file(dir.join("read.raw"));
    let _ = std::fs::remove_file(dir.join("write.raw"));
    w
}

/// Decodes any file `ffmpeg` reads (through a float WAV in `dir`): channels and rate.
pub fn decode_file(f: &Path, dir: &Path) -> Option<(Vec<Vec<f32>>, u32)> {
    let wav = dir.join("decoded.wav");
    let decoded = run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(f)
        .args(["-c:a", "pcm_f32le"])
        .arg(&wav));
    decoded.then(|| read_audio(&wav, dir)).flatten()
}

/// File name with its extension folded in (`a.wav` and `a.flac` stay apart).
fn stem(f: &Path) -> String {
    f.file_name()
        .map(|n| n.to_string_lossy().replace('.', "_"))
        .unwrap_or_default()
}

/// Duration of a WAV clip in seconds (`soxi -D`), if readable.
pub fn seconds(f: &Path) -> Option<f64> {
    let o = Command::new("soxi").arg("-D").arg(f).output().ok()?;
    String::from_utf8_lossy(&o.stdout).trim().parse().ok()
}
