//! Content sniffing by magic bytes (never by file name or client-declared type).

use serde::{Deserialize, Serialize};

/// Broad kind of a media file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// Still image.
    Image,
    /// Audio.
    Audio,
    /// Video.
    Video,
    /// Document (PDF, SVG) or standalone manifest store.
    Other,
}

/// A recognised container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaFormat {
    /// JPEG (JFIF/EXIF).
    Jpeg,
    /// PNG.
    Png,
    /// WebP (RIFF).
    Webp,
    /// GIF.
    Gif,
    /// TIFF (incl. DNG).
    Tiff,
    /// HEIC/HEIF.
    Heif,
    /// AVIF.
    Avif,
    /// WAV (RIFF WAVE).
    Wav,
    /// MPEG-1/2 Layer III.
    Mp3,
    /// FLAC.
    Flac,
    /// Ogg (Vorbis/Opus).
    Ogg,
    /// WebM or Matroska (EBML); decoded for its Opus track.
    Webm,
    /// MPEG-4 audio (M4A/AAC).
    M4a,
    /// MPEG-4 / QuickTime video.
    Mp4,
    /// QuickTime movie.
    Mov,
    /// AVI (RIFF).
    Avi,
    /// PDF.
    Pdf,
    /// SVG.
    Svg,
    /// Standalone C2PA manifest store (JUMBF).
    C2pa,
}

impl MediaFormat {
    /// IANA media type.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Gif => "image/gif",
            Self::Tiff => "image/tiff",
            Self::Heif => "image/heif",
            Self::Avif => "image/avif",
            Self::Wav => "audio/wav",
            Self::Mp3 => "audio/mpeg",
            Self::Flac => "audio/flac",
            Self::Ogg => "audio/ogg",
            Self::Webm => "audio/webm",
            Self::M4a => "audio/mp4",
            Self::Mp4 => "video/mp4",
            Self::Mov => "video/quicktime",
            Self::Avi => "video/x-msvideo",
            Self::Pdf => "application/pdf",
            Self::Svg => "image/svg+xml",
            Self::C2pa => "application/c2pa",
        }
    }

    /// Usual file extension (without dot).
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Gif => "gif",
            Self::Tiff => "tif",
            Self::Heif => "heic",
            Self::Avif => "avif",
            Self::Wav => "wav",
            Self::Mp3 => "mp3",
            Self::Flac => "flac",
            Self::Ogg => "ogg",
            Self::Webm => "webm",
            Self::M4a => "m4a",
            Self::Mp4 => "mp4",
            Self::Mov => "mov",
            Self::Avi => "avi",
            Self::Pdf => "pdf",
            Self::Svg => "svg",
            Self::C2pa => "c2pa",
        }
    }

    /// Broad kind.
    pub fn kind(self) -> MediaKind {
        match self {
            Self::Jpeg
            | Self::Png
            | Self::Webp
            | Self::Gif
            | Self::Tiff
            | Self::Heif
            | Self::Avif => MediaKind::Image,
            Self::Wav | Self::Mp3 | Self::Flac | Self::Ogg | Self::Webm | Self::M4a => {
                MediaKind::Audio
            }
            Self::Mp4 | Self::Mov | Self::Avi => MediaKind::Video,
            Self::Pdf | Self::Svg | Self::C2pa => MediaKind::Other,
        }
    }

    /// Whether Hallmark can decode the pixels or samples (for watermarking and detection).
    pub fn decodable(self) -> bool {
        matches!(
            self,
            Self::Jpeg
                | Self::Png
                | Self::Webp
                | Self::Gif
                | Self::Tiff
                | Self::Wav
                | Self::Mp3
                | Self::Flac
                | Self::Ogg
                | Self::Webm
                | Self::M4a
        )
    }

    /// Whether Hallmark can sign (watermark + embed a manifest into) this format.
    pub fn signable(self) -> bool {
        matches!(
            self,
            Self::Jpeg | Self::Png | Self::Webp | Self::Wav | Self::Mp3 | Self::M4a
        )
    }
}

fn mp3_frame_sync(b: &[u8]) -> bool {
    // MPEG audio frame header: 11 sync bits, layer != 0, bitrate index != 15, rate index != 3.
    b.len() >= 4
        && b[0] == 0xFF
        && (b[1] & 0xE0) == 0xE0
        && (b[1] & 0x06) != 0
        && (b[2] & 0xF0) != 0xF0
        && (b[2] & 0x0C) != 0x0C
}

/// Identifies the container format of `bytes` from its leading magic bytes.
/// Returns `None` for anything unrecognised.
pub fn sniff(bytes: &[u8]) -> Option<MediaFormat> {
    let b = bytes;
    let starts = |m: &[u8]| b.starts_with(m);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Some(MediaFormat::Jpeg);
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Some(MediaFormat::Png);
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Some(MediaFormat::Gif);
    }
    if starts(b"II*\0") || starts(b"MM\0*") {
        return Some(MediaFormat::Tiff);
    }
    if b.len() >= 12 && starts(b"RIFF") {
        return match &b[8..12] {
            b"WEBP" => Some(MediaFormat::Webp),
            b"WAVE" => Some(MediaFormat::Wav),
            b"AVI " => Some(MediaFormat::Avi),
            _ => None,
        };
    }
    if starts(b"fLaC") {
        return Some(MediaFormat::Flac);
    }
    if starts(b"OggS") {
        return Some(MediaFormat::Ogg);
    }
    if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Some(MediaFormat::Webm); // EBML header (RFC 8794 §8.1)
    }
    if starts(b"%PDF-") {
        return Some(MediaFormat::Pdf);
    }
    if b.len() >= 12 && &b[4..8] == b"ftyp" {
        let brand = &b[8..12];
        return Some(match brand {
            b"heic" | b"heix" | b"mif1" | b"msf1" | b"heim" | b"heis" => MediaFormat::Heif,
            b"avif" | b"avis" => MediaFormat::Avif,
            b"M4A " | b"M4B " => MediaFormat::M4a,
            b"qt  " => MediaFormat::Mov,
            _ => MediaFormat::Mp4,
        });
    }
    if b.len() >= 8 && &b[4..8] == b"jumb" {
        return Some(MediaFormat::C2pa);
    }
    if starts(b"ID3") || mp3_frame_sync(b) {
        return Some(MediaFormat::Mp3);
    }
    let head = &b[..b.len().min(1024)];
    if let Ok(text) = std::str::from_utf8(head) {
        let t = text.trim_start_matches('\u{feff}').trim_start();
        if (t.starts_with("<?xml") || t.starts_with("<svg") || t.starts_with("<!--"))
            && text.contains("<svg")
        {
            return Some(MediaFormat::Svg);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_magic_bytes() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Some(MediaFormat::Jpeg));
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), Some(MediaFormat::Wav));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(MediaFormat::Webp));
        assert_eq!(sniff(b"ID3\x04\0"), Some(MediaFormat::Mp3));
        assert_eq!(sniff(b"\0\0\0\x20ftypM4A \0"), Some(MediaFormat::M4a));
        assert_eq!(sniff(b"\x1A\x45\xDF\xA3\x9F"), Some(MediaFormat::Webm));
        assert_eq!(sniff(b"<svg xmlns='x'/>"), Some(MediaFormat::Svg));
        assert_eq!(sniff(b"hello world"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\xFF\xFF\xFF\xFF"), None);
    }
}
