//! Media uploaded through the console, kept in this process for a while so the report page can
//! show it (a verification stores its report, never the media). Bounded in bytes and time;
//! the oldest upload goes first.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::settings::ConsoleSettings;

/// One uploaded file.
#[derive(Debug, Clone)]
pub struct Preview {
    /// The verification it was uploaded for.
    pub verification_id: String,
    /// The file name the browser sent (shown escaped, never used as a path).
    pub filename: String,
    /// The sniffed MIME type (from the report, not from the browser).
    pub media_type: String,
    /// The bytes.
    pub bytes: std::sync::Arc<Vec<u8>>,
    stored: Instant,
}

/// Previews, oldest first.
#[derive(Debug)]
pub struct Previews {
    items: Mutex<VecDeque<Preview>>,
    max_bytes: usize,
    ttl: Duration,
}

impl Previews {
    /// An empty store holding at most `console.preview_max_mb` for `console.preview_minutes`.
    pub fn new(s: &ConsoleSettings) -> Self {
        Self {
            items: Mutex::new(VecDeque::new()),
            max_bytes: s.preview_max_mb.saturating_mul(1024 * 1024),
            ttl: Duration::from_secs(s.preview_minutes.saturating_mul(60)),
        }
    }

    /// Keeps `bytes` for `verification_id`; a file larger than the whole store is not kept.
    pub fn put(&self, verification_id: &str, filename: &str, media_type: &str, bytes: Vec<u8>) {
        if bytes.len() > self.max_bytes || self.ttl.is_zero() {
            return;
        }
        let mut q = self.items.lock().unwrap_or_else(|p| p.into_inner());
        q.retain(|p| p.verification_id != verification_id);
        let mut total: usize = q.iter().map(|p| p.bytes.len()).sum::<usize>() + bytes.len();
        while total > self.max_bytes {
            match q.pop_front() {
                Some(old) => total -= old.bytes.len(),
                None => break,
            }
        }
        q.push_back(Preview {
            verification_id: verification_id.to_owned(),
            filename: filename.to_owned(),
            media_type: media_type.to_owned(),
            bytes: std::sync::Arc::new(bytes),
            stored: Instant::now(),
        });
    }

    /// The preview of `verification_id`, if still held.
    pub fn get(&self, verification_id: &str) -> Option<Preview> {
        let now = Instant::now();
        let mut q = self.items.lock().unwrap_or_else(|p| p.into_inner());
        q.retain(|p| now.duration_since(p.stored) < self.ttl);
        q.iter()
            .find(|p| p.verification_id == verification_id)
            .cloned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn store(max_mb: usize) -> Previews {
        Previews::new(&ConsoleSettings {
            preview_max_mb: max_mb,
            ..ConsoleSettings::default()
        })
    }

    #[test]
    fn keeps_and_evicts_oldest_first() {
        let p = store(1);
        p.put("a", "a.png", "image/png", vec![0; 600 * 1024]);
        p.put("b", "b.png", "image/png", vec![0; 300 * 1024]);
        assert!(p.get("a").is_some() && p.get("b").is_some());
        p.put("c", "c.png", "image/png", vec![0; 300 * 1024]);
        assert!(p.get("a").is_none(), "oldest evicted past 1 MiB");
        assert_eq!(p.get("c").unwrap().filename, "c.png");
        p.put("huge", "h.png", "image/png", vec![0; 2 * 1024 * 1024]);
        assert!(p.get("huge").is_none() && p.get("b").is_some());
    }
}
