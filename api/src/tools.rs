//! Offline tools behind the CLI: the watermark alone (the audit tools are in `audit_tools`).

use std::path::Path;

use anyhow::{bail, Context as _};
use hallmark_media::{MediaFormat, MediaKind};
use serde_json::json;

use crate::service::{payload_bits, payload_hex, random_payload};
use crate::settings::Settings;
use crate::state::load_watermark_key;

/// Writes `bytes` to a temporary sibling of `path` and renames it into place, so a failure
/// never leaves a half-written output.
///
/// # Errors
/// I/O failures, naming the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = temp_sibling(path);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// A temporary sibling of `path` no other process or thread picks:
/// `<name>.<pid>.<counter>.hallmark-tmp` (processes writing the same file at once never share
/// a temporary file).
pub fn temp_sibling(path: &Path) -> std::path::PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}.{n}.hallmark-tmp", std::process::id()));
    path.with_file_name(name)
}

/// Creates `path` with `bytes`, readable by the owner only, unless it exists: the content is
/// written to a [`temp_sibling`] and hard-linked into place, which fails if another process
/// created the file first (that file is then kept). Returns whether this call created it.
///
/// # Errors
/// I/O failures, naming the path.
pub fn create_private(path: &Path, bytes: &[u8]) -> anyhow::Result<bool> {
    let tmp = temp_sibling(path);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

/// Refuses an output name whose extension names another media format than the one that will be
/// written (`sign in.png -o out.jpg` would put PNG bytes under a .jpg name): signing and marking
/// keep the input's format, since re-encoding after signing would break the C2PA hard binding.
/// Names without an extension, or with one that is no media format, are accepted.
///
/// # Errors
/// A message naming the format written and the extension to use.
pub fn check_output_name(output: &Path, format: MediaFormat) -> anyhow::Result<()> {
    let Some(ext) = output.extension().and_then(|e| e.to_str()) else {
        return Ok(());
    };
    let ext = ext.to_ascii_lowercase();
    let named = match ext.as_str() {
        "jpg" | "jpeg" => MediaFormat::Jpeg,
        "png" => MediaFormat::Png,
        "webp" => MediaFormat::Webp,
        "wav" => MediaFormat::Wav,
        "mp3" => MediaFormat::Mp3,
        "m4a" | "mp4" | "aac" => MediaFormat::M4a,
        "gif" => MediaFormat::Gif,
        "tif" | "tiff" => MediaFormat::Tiff,
        "flac" => MediaFormat::Flac,
        "ogg" | "opus" => MediaFormat::Ogg,
        _ => return Ok(()),
    };
    if named != format {
        bail!(
            "{}: the output is {} (Hallmark keeps the input's format; converting after signing \
             would break the signature); name it .{} or convert the input to {} before signing",
            output.display(),
            format.mime(),
            format.extension(),
            named.mime()
        );
    }
    Ok(())
}

fn format_of(bytes: &[u8], path: &Path) -> anyhow::Result<MediaFormat> {
    let f = hallmark_media::sniff(bytes)
        .with_context(|| format!("{}: unrecognised media format", path.display()))?;
    if !f.decodable() {
        bail!(
            "{}: {} is not an image or audio format Hallmark decodes",
            path.display(),
            f.mime()
        );
    }
    Ok(f)
}

/// `hallmark watermark embed IN -o OUT [--payload HEX]`: embeds the keyed watermark only (no
/// manifest). Output format = input format (JPEG, PNG, WebP, WAV, MP3). Returns the payload as
/// [`payload_hex`] (16 hex digits for images, 8 for audio).
///
/// # Errors
/// Unreadable or unsupported input, a bad payload (not hex, or wider than the medium carries:
/// 64 bits for images, 32 for audio), media too small, or an unwritable output.
pub fn watermark_embed(
    settings: &Settings,
    input: &Path,
    output: &Path,
    payload_hex_arg: Option<&str>,
) -> anyhow::Result<String> {
    std::fs::create_dir_all(&settings.storage.data_dir)?;
    let (key, _) = load_watermark_key(settings)?;
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let format = format_of(&bytes, input)?;
    check_output_name(output, format)?;
    let bits = payload_bits(format.kind());
    let payload = match payload_hex_arg {
        Some(h) => {
            let p = match u64::from_str_radix(h.trim_start_matches("0x"), 16) {
                Ok(p) => p,
                Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => bail!(
                    "--payload '{h}' does not fit in {bits} bits ({} carries {bits}-bit payloads)",
                    format.mime()
                ),
                Err(e) => bail!("--payload '{h}' is not a hex number: {e}"),
            };
            if bits < 64 && p >> bits != 0 {
                bail!(
                    "--payload '{h}' does not fit in {bits} bits ({} carries {bits}-bit payloads)",
                    format.mime()
                );
            }
            p
        }
        None => random_payload(format.kind())?,
    };
    let limits = settings.media_limits();
    let out = match format.kind() {
        MediaKind::Image => {
            if !matches!(
                format,
                MediaFormat::Jpeg | MediaFormat::Png | MediaFormat::Webp
            ) {
                bail!("{} can't be written; use JPEG, PNG or WebP", format.mime());
            }
            let img = hallmark_media::decode_image(&bytes, format, &limits)?.image;
            let marked = hallmark_watermark::image::embed(
                &img,
                &key,
                payload,
                &hallmark_watermark::image::ImageEmbedParams::default(),
            )?;
            hallmark_media::encode_image_like(
                &marked,
                format,
                settings.signing.jpeg_quality,
                &bytes,
            )?
        }
        _ => {
            let mut clip = hallmark_media::decode_audio(&bytes, format, &limits)?;
            hallmark_watermark::audio::embed(
                &mut clip.channels,
                clip.sample_rate,
                &key,
                payload,
                &hallmark_watermark::audio::AudioEmbedParams::default(),
            )?;
            match format {
                MediaFormat::Mp3 => hallmark_media::encode_mp3(&clip, settings.signing.mp3_kbps)?,
                MediaFormat::Wav => hallmark_media::encode_wav_as(
                    &clip,
                    hallmark_media::wav_sample_format(&bytes).unwrap_or_default(),
                )?,
                other => bail!("{} can't be written; use WAV or MP3", other.mime()),
            }
        }
    };
    write_atomic(output, &out)?;
    Ok(payload_hex(format.kind(), payload))
}

/// `hallmark watermark detect FILE`: `{detected, payload, bit_agreement, p_value, ...}`.
///
/// # Errors
/// Unreadable, unsupported or corrupt input.
pub fn watermark_detect(settings: &Settings, input: &Path) -> anyhow::Result<serde_json::Value> {
    std::fs::create_dir_all(&settings.storage.data_dir)?;
    let (key, _) = load_watermark_key(settings)?;
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let format = format_of(&bytes, input)?;
    let limits = settings.media_limits();
    let d = match format.kind() {
        MediaKind::Image => {
            let img = hallmark_media::decode_image(&bytes, format, &limits)?.image;
            hallmark_watermark::image::detect(&img, &key)
        }
        _ => {
            let clip = hallmark_media::decode_audio(&bytes, format, &limits)?;
            hallmark_watermark::audio::detect(&clip.channels, clip.sample_rate, &key)
        }
    };
    Ok(json!({
        "detected": d.detected,
        "payload": d.payload.filter(|_| d.detected).map(|p| payload_hex(format.kind(), p)),
        "bit_agreement": d.bit_agreement,
        "p_value": d.p_value,
        "score": d.score,
        "too_small": d.too_small,
        "ranges": d.ranges,
    }))
}

/// Largest text file `hallmark generate --text-file` reads (bytes); the voices' own limit is in
/// characters and far smaller.
pub const MAX_TEXT_FILE_BYTES: u64 = 1024 * 1024;

/// Reads the text of `--text-file` (`-` = standard input), at most [`MAX_TEXT_FILE_BYTES`]
/// bytes of UTF-8.
///
/// # Errors
/// The file cannot be read, is larger than the limit, or is not UTF-8.
pub fn read_text_arg(path: &Path) -> anyhow::Result<String> {
    use std::io::Read;
    let mut buf = Vec::new();
    let reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?)
    };
    reader
        .take(MAX_TEXT_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if buf.len() as u64 > MAX_TEXT_FILE_BYTES {
        bail!(
            "{}: larger than {MAX_TEXT_FILE_BYTES} bytes",
            path.display()
        );
    }
    String::from_utf8(buf).map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", path.display()))
}
