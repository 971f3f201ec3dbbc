//! A small W3C WebDriver client (the JSON-over-HTTP protocol, <https://www.w3.org/TR/webdriver2/>)
//! over `ureq`, driving Debian's headless Chromium through `chromedriver`. Only what the
//! console's browser test needs: navigate, find, click, type, read text, run a script, take
//! screenshots, read the browser log.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use serde_json::{json, Value};

/// Where Debian's `chromium` and `chromium-driver` packages put the binaries.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The driver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver with one browser session; both end on drop.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile.
    ///
    /// # Errors
    /// The binaries missing (install `chromium` and `chromium-driver`), or the driver not
    /// answering within 30 s.
    pub fn start() -> Result<Self> {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(bin).exists() {
                bail!("{bin} is missing: apt-get install chromium chromium-driver (.ci/run does)");
            }
        }
        let port = free_port()?;
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir()?;
        let mut b = Self {
            driver,
            base,
            session: String::new(),
            agent,
            _profile: profile,
        };
        let start = Instant::now();
        loop {
            if let Ok(v) = b.call("GET", "/status", None) {
                if v["ready"] == true {
                    break;
                }
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("chromedriver did not become ready on port {port}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile_dir = b._profile.path().display().to_string();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu",
                         "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                         "--window-size=1280,1600", format!("--user-data-dir={profile_dir}")],
            },
        }}});
        let v = b.call("POST", "/session", Some(caps))?;
        b.session = v["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no session id in {v}"))?
            .to_owned();
        Ok(b)
    }

    /// One WebDriver command; answers its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let resp = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, b) => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(b.unwrap_or_else(|| json!({})).to_string().as_bytes()),
        };
        let mut resp = resp.with_context(|| format!("{method} {path}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()?;
        let v: Value = serde_json::from_str(&text).with_context(|| format!("{method} {path}"))?;
        if status >= 400 {
            bail!("{method} {path}: {status} {}", v["value"]);
        }
        Ok(v["value"].clone())
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Loads `url` and waits for the page to load.
    ///
    /// # Errors
    /// Driver failures.
    pub fn goto(&self, url: &str) -> Result<()> {
        self.call("POST", &self.s("/url"), Some(json!({"url": url})))?;
        Ok(())
    }

    /// The current URL.
    ///
    /// # Errors
    /// Driver failures.
    pub fn url(&self) -> Result<String> {
        Ok(self
            .call("GET", &self.s("/url"), None)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The first element matching CSS `selector`, or `None`.
    ///
    /// # Errors
    /// Driver failures other than "no such element".
    pub fn find(&self, selector: &str) -> Result<Option<String>> {
        match self.call(
            "POST",
            &self.s("/element"),
            Some(json!({"using": "css selector", "value": selector})),
        ) {
            Ok(v) => Ok(v[ELEMENT].as_str().map(str::to_owned)),
            Err(e) if e.to_string().contains("no such element") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits up to `timeout` for an element matching `selector`.
    ///
    /// # Errors
    /// None appearing in time.
    pub fn wait_for(&self, selector: &str, timeout: Duration) -> Result<String> {
        let start = Instant::now();
        loop {
            if let Some(e) = self.find(selector)? {
                return Ok(e);
            }
            if start.elapsed() > timeout {
                let page = self
                    .eval("return document.documentElement.outerHTML;", json!([]))
                    .map(|v| {
                        v.as_str()
                            .unwrap_or_default()
                            .chars()
                            .take(1500)
                            .collect::<String>()
                    })
                    .unwrap_or_default();
                bail!(
                    "no element {selector} within {timeout:?} at {}: {page}",
                    self.url().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the element `selector`.
    ///
    /// # Errors
    /// No such element, or driver failures.
    pub fn click(&self, selector: &str) -> Result<()> {
        let e = self.wait_for(selector, Duration::from_secs(10))?;
        self.call("POST", &self.s(&format!("/element/{e}/click")), None)?;
        Ok(())
    }

    /// Types `text` into the element `selector` (for a file input: a path).
    ///
    /// # Errors
    /// No such element, or driver failures.
    pub fn type_into(&self, selector: &str, text: &str) -> Result<()> {
        let e = self.wait_for(selector, Duration::from_secs(10))?;
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/value")),
            Some(json!({"text": text})),
        )?;
        Ok(())
    }

    /// Presses and releases `key` on whatever has focus.
    ///
    /// # Errors
    /// Driver failures.
    pub fn press(&self, key: &str) -> Result<()> {
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]});
        self.call("POST", &self.s("/actions"), Some(actions))?;
        Ok(())
    }

    /// The rendered text of the element `selector`.
    ///
    /// # Errors
    /// No such element, or driver failures.
    pub fn text(&self, selector: &str) -> Result<String> {
        let e = self.wait_for(selector, Duration::from_secs(10))?;
        Ok(self
            .call("GET", &self.s(&format!("/element/{e}/text")), None)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Runs `script` (a function body; `arguments` are `args`) and answers its return value.
    ///
    /// # Errors
    /// Script or driver failures.
    pub fn eval(&self, script: &str, args: Value) -> Result<Value> {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": script, "args": args})),
        )
    }

    /// The text of an open `alert()`, if one is open.
    ///
    /// # Errors
    /// Driver failures other than "no such alert".
    pub fn alert_text(&self) -> Result<Option<String>> {
        match self.call("GET", &self.s("/alert/text"), None) {
            Ok(v) => Ok(v.as_str().map(str::to_owned)),
            Err(e) if e.to_string().contains("no such alert") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A PNG screenshot of the viewport, written to `path`; answers the bytes.
    ///
    /// # Errors
    /// Driver or file failures.
    pub fn screenshot(&self, path: &Path) -> Result<Vec<u8>> {
        let b64 = self.call("GET", &self.s("/screenshot"), None)?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .context("screenshot is not base64")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, &png)?;
        Ok(png)
    }

    /// Browser console messages since the last call (chromedriver's log extension).
    ///
    /// # Errors
    /// Driver failures.
    pub fn console_log(&self) -> Result<Vec<String>> {
        let v = self.call("POST", &self.s("/se/log"), Some(json!({"type": "browser"})))?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .map(|m| m["message"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &self.s(""), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
