//! Phonemes from espeak-ng, run as a separate process (`espeak-ng -q --ipa -b 1 -v VOICE
//! --stdin`), never linked: espeak-ng is GPL-3.0, Hallmark is Apache-2.0
//! (docs/DECISIONS.md "Issue 21").
//!
//! The text goes in on standard input (so it can never be read as an option), the IPA comes
//! back one clause per line. Every call has a deadline and a cap on what it may print; a
//! process past either is killed.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Most bytes of IPA accepted from one call (a [`super::text::MAX_SENTENCE_CHARS`] sentence
/// gives a few kB).
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;
/// Deadline of one call.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// An espeak-ng program and voice.
#[derive(Debug, Clone)]
pub struct Espeak {
    /// Program name (looked up on `PATH`) or absolute path.
    pub program: String,
    /// espeak-ng voice, e.g. `en-us` (validated: `[a-z0-9-]+`).
    pub voice: String,
    /// Deadline of one call ([`TIMEOUT`] in service).
    pub timeout: Duration,
}

impl Espeak {
    /// IPA for `text`, one string per clause espeak-ng found (blank lines dropped).
    ///
    /// # Errors
    /// A message when the program cannot be started, exits non-zero, overruns [`TIMEOUT`] or
    /// [`MAX_OUTPUT_BYTES`], or prints invalid UTF-8.
    pub fn phonemize(&self, text: &str) -> Result<Vec<String>, String> {
        let mut child = Command::new(&self.program)
            .args(["-q", "--ipa", "-b", "1", "-v", &self.voice, "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run `{}`: {e}", self.program))?;
        let mut stdin = child.stdin.take();
        let stdout = child.stdout.take();
        // Writer and reader run beside the deadline loop, so a process that neither reads
        // nor exits cannot block this thread.
        let input = text.as_bytes().to_vec();
        let writer = std::thread::spawn(move || {
            if let Some(s) = stdin.as_mut() {
                // A process that exits early closes its end: not our error to report.
                let _ = s.write_all(&input);
            }
        });
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(out) = stdout {
                let _ = out.take(MAX_OUTPUT_BYTES as u64 + 1).read_to_end(&mut buf);
            }
            buf
        });
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Ok(s),
                Ok(None) if Instant::now() >= deadline => {
                    break Err(format!(
                        "`{}` did not finish within {:?}",
                        self.program, self.timeout
                    ))
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => break Err(format!("waiting for `{}`: {e}", self.program)),
            }
        };
        if status.is_err() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = writer.join();
        let out = reader
            .join()
            .map_err(|_| format!("reading `{}` failed", self.program))?;
        if out.len() > MAX_OUTPUT_BYTES {
            return Err(format!(
                "`{}` printed more than {MAX_OUTPUT_BYTES} bytes",
                self.program
            ));
        }
        let status = status?;
        if !status.success() {
            return Err(format!("`{}` exited with {status}", self.program));
        }
        let text = String::from_utf8(out)
            .map_err(|_| format!("`{}` printed invalid UTF-8", self.program))?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A fake phonemizer: a shell script with `body`.
    fn script(dir: &std::path::Path, body: &str) -> Result<String, std::io::Error> {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("fake-espeak");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n"))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        Ok(p.to_string_lossy().into_owned())
    }

    fn espeak(program: String) -> Espeak {
        Espeak {
            program,
            voice: "en-us".into(),
            timeout: Duration::from_secs(2),
        }
    }

    #[test]
    fn missing_program_is_an_error() {
        assert!(espeak("/nonexistent/espeak-ng".into())
            .phonemize("hello")
            .is_err());
    }

    #[test]
    fn runaway_output_is_cut_and_refused() -> TestResult {
        let dir = tempfile::tempdir()?;
        let e = espeak(script(
            dir.path(),
            "while :; do echo xxxxxxxxxxxxxxxx; done",
        )?);
        let err = e.phonemize("x");
        assert!(
            matches!(err, Err(ref m) if m.contains("more than")),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn a_hung_phonemizer_is_killed_at_the_deadline() -> TestResult {
        let dir = tempfile::tempdir()?;
        let e = espeak(script(dir.path(), "exec sleep 30")?);
        let t = Instant::now();
        let err = e.phonemize("x");
        assert!(
            matches!(err, Err(ref m) if m.contains("did not finish")),
            "{err:?}"
        );
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        Ok(())
    }

    #[test]
    fn failing_phonemizer_is_an_error_and_text_goes_to_stdin() -> TestResult {
        let dir = tempfile::tempdir()?;
        assert!(espeak(script(dir.path(), "exit 3")?)
            .phonemize("x")
            .is_err());
        // The text arrives on standard input, never as an argument (7 fixed arguments).
        let dir = tempfile::tempdir()?;
        let e = espeak(script(dir.path(), "cat; echo; echo \"$#\"")?);
        assert_eq!(e.phonemize("--help\n\nline")?, ["--help", "line", "7"]);
        Ok(())
    }
}
