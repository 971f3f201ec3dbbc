//! Test helpers: a local RFC 3161 time-stamp authority (OpenSSL's `openssl ts -reply` behind a
//! minimal HTTP/1.1 listener) and small media fixtures.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running local TSA. Requests are served until the process exits.
pub struct LocalTsa {
    pub url: String,
    /// The TSA's root CA certificate (PEM).
    pub cert_pem: PathBuf,
    _dir: tempfile::TempDir,
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .expect("openssl must be installed (Debian: openssl)");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts a TSA on 127.0.0.1 with a fresh P-256 key and a certificate issued by a fresh test CA,
/// carrying the critical `timeStamping` EKU (RFC 3161 §2.3).
pub fn start_tsa() -> LocalTsa {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    // A CA, and the TSA certificate it issues (c2pa-rs refuses self-signed TSA certificates).
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=Hallmark Test TSA Root/O=Hallmark Test",
        ])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .arg("-keyout")
        .arg(d.join("ca.key"))
        .arg("-out")
        .arg(d.join("ca.pem")));
    run(Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-subj", "/CN=Hallmark Test TSA/O=Hallmark Test"])
        .arg("-keyout")
        .arg(d.join("tsa.key"))
        .arg("-out")
        .arg(d.join("tsa.csr")));
    std::fs::write(
        d.join("tsa.ext"),
        "extendedKeyUsage=critical,timeStamping\nkeyUsage=critical,digitalSignature\n\
         basicConstraints=critical,CA:FALSE\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "30", "-set_serial", "2"])
        .arg("-in")
        .arg(d.join("tsa.csr"))
        .arg("-CA")
        .arg(d.join("ca.pem"))
        .arg("-CAkey")
        .arg(d.join("ca.key"))
        .arg("-extfile")
        .arg(d.join("tsa.ext"))
        .arg("-out")
        .arg(d.join("tsa.pem")));
    let chain = format!(
        "{}{}",
        std::fs::read_to_string(d.join("tsa.pem")).unwrap(),
        std::fs::read_to_string(d.join("ca.pem")).unwrap()
    );
    std::fs::write(d.join("chain.pem"), chain).unwrap();
    std::fs::write(d.join("serial"), "01\n").unwrap();
    std::fs::write(
        d.join("tsa.cnf"),
        format!(
            "[ tsa ]\ndefault_tsa = tsa1\n[ tsa1 ]\ndir = {dir}\nserial = $dir/serial\n\
             crypto_device = builtin\nsigner_cert = $dir/tsa.pem\ncerts = $dir/chain.pem\n\
             signer_key = $dir/tsa.key\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\n\
             digests = sha256, sha384, sha512\naccuracy = secs:1\nordering = no\ntsa_name = no\n\
             ess_cert_id_chain = no\ness_cert_id_alg = sha256\n",
            dir = d.display()
        ),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/tsa", listener.local_addr().unwrap());
    let serve_dir = d.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let _ = serve_one(&mut stream, &serve_dir, n);
        }
    });
    LocalTsa {
        url,
        cert_pem: d.join("ca.pem"),
        _dir: dir,
    }
}

fn serve_one(stream: &mut std::net::TcpStream, dir: &Path, n: usize) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    let q = dir.join(format!("q{n}.tsq"));
    let r = dir.join(format!("r{n}.tsr"));
    std::fs::write(&q, &body)?;
    let ok = Command::new("openssl")
        .args(["ts", "-reply", "-config"])
        .arg(dir.join("tsa.cnf"))
        .arg("-queryfile")
        .arg(&q)
        .arg("-out")
        .arg(&r)
        .output()?
        .status
        .success();
    let reply = if ok { std::fs::read(&r)? } else { Vec::new() };
    let head = if ok {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/timestamp-reply\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            reply.len()
        )
    } else {
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_string()
    };
    stream.write_all(head.as_bytes())?;
    stream.write_all(&reply)?;
    stream.flush()
}

/// A 256×256 noisy gradient PNG.
pub fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(256, 256, |x, y| {
        let n = ((x * 7919 + y * 104_729) % 31) as u8;
        image::Rgb([
            (x as u8).wrapping_add(n),
            (y as u8).wrapping_add(n),
            128 + n,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// The same picture as JPEG (quality 90).
pub fn jpeg() -> Vec<u8> {
    let img = image::load_from_memory(&png()).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// 2 s of a 440 Hz tone as 16-bit mono WAV at 16 kHz.
pub fn wav() -> Vec<u8> {
    let sr = 16_000u32;
    let n = sr as usize * 2;
    let mut out = Vec::new();
    let data_len = (n * 2) as u32;
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&sr.to_le_bytes());
    out.extend_from_slice(&(sr * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..n {
        let s = (0.3 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / sr as f32).sin() * 32767.0)
            as i16;
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}
