//! Harness for black-box tests: runs the real `hallmark` binary (built by `make test` before
//! the tests) against real PostgreSQL/Redis or the embedded SQLite default, and talks to it
//! over HTTP with `ureq`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod fixtures;
pub mod webdriver;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// Repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `../shared/corpus` when present.
pub fn corpus() -> Option<PathBuf> {
    let p = repo_root().join("../shared/corpus");
    p.join("README.md").exists().then_some(p)
}

/// Path of the `hallmark` binary: `$HALLMARK_BIN` when set (e.g. a release build for a
/// bench), else next to the test executable's target dir.
pub fn hallmark_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HALLMARK_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test exe");
    // target/<profile>/deps/<test> → target/<profile>/hallmark
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("hallmark");
    assert!(
        bin.exists(),
        "{} not found: build it first (`cargo build --bins`, done by `make test`)",
        bin.display()
    );
    bin
}

/// Where the server keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded default: SQLite file + in-process cache.
    Sqlite,
    /// PostgreSQL (fresh database) + Redis.
    Postgres,
}

impl Backend {
    /// Both backends, SQLite first.
    pub const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];
}

/// A running `hallmark serve`.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Bootstrap admin key (all scopes).
    pub admin_key: String,
    /// Data directory.
    pub data: tempfile::TempDir,
    /// Database URL in use.
    pub database_url: String,
    pg: Option<hallmark_store::testing::TestDatabase>,
    agent: ureq::Agent,
}

/// Watermark key of test instances: fixed, so that p-values asserted on the deterministic
/// fixtures are deterministic too (a fresh random key per run would make a p ≥ 1e-3 assertion
/// fail about once in a thousand runs, as a p-value should).
pub const TEST_WATERMARK_KEY: &str =
    "6b8f0e1d2c3a49587766554433221100ffeeddccbbaa99887766554433221100";

/// Environment every test server gets.
pub fn base_env(cmd: &mut Command, data: &Path) {
    let root = repo_root();
    cmd.current_dir(&root)
        .env("HALLMARK__SERVER__PORT", "0")
        .env("HALLMARK__SERVER__WORKERS", "2")
        .env("HALLMARK__STORAGE__DATA_DIR", data)
        .env(
            "HALLMARK__DETECTORS__REGISTRY",
            root.join("detectors/models/registry.toml"),
        )
        .env(
            "HALLMARK__GENERATORS__REGISTRY",
            root.join("generators/models/registry.toml"),
        )
        .env("HALLMARK_LOG", "warn")
        .env("HALLMARK__WATERMARK__KEY", TEST_WATERMARK_KEY)
        // The decision-log tests assert exact leaf positions; key events (on by default) are
        // tested with their own servers (tests/tests/keys.rs).
        .env("HALLMARK__AUDIT__KEY_EVENTS", "false")
        .env("HALLMARK__AUDIT__SETTINGS_EVENTS", "false")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("HALLMARK_CONFIG");
    if std::env::var_os("ORT_DYLIB_PATH").is_none() {
        cmd.env(
            "ORT_DYLIB_PATH",
            root.join(".runtime/onnxruntime/libonnxruntime.so.1.31.1"),
        );
    }
}

/// Redis URL used by Postgres-backed test servers.
pub fn test_redis_url() -> String {
    std::env::var("HALLMARK_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

impl Server {
    /// Starts a server on `backend` with extra environment variables.
    pub fn start(backend: Backend, extra_env: &[(&str, &str)]) -> Result<Self> {
        Self::start_with_limit(backend, extra_env, None)
    }

    /// Like [`Server::start`], with the server's address space limited to `as_bytes`
    /// (`RLIMIT_AS`, set by `prlimit(1)`, which then execs the server: the child is the server).
    pub fn start_with_limit(
        backend: Backend,
        extra_env: &[(&str, &str)],
        as_bytes: Option<u64>,
    ) -> Result<Self> {
        let data = tempfile::tempdir()?;
        let mut cmd = match as_bytes {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--as={n}")).arg("--").arg(hallmark_bin());
                c
            }
            None => Command::new(hallmark_bin()),
        };
        base_env(&mut cmd, data.path());
        let (pg, database_url) = match backend {
            Backend::Sqlite => (
                None,
                format!("sqlite://{}", data.path().join("hallmark.db").display()),
            ),
            Backend::Postgres => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let db = rt.block_on(hallmark_store::testing::TestDatabase::postgres())?;
                let url = db.url().to_owned();
                cmd.env("DATABASE_URL", &url)
                    .env("REDIS_URL", test_redis_url());
                (Some(db), url)
            }
        };
        Self::spawn(cmd, data, pg, database_url, extra_env)
    }

    /// Starts another server on an existing database (`database_url`), with its own data
    /// directory; the database is not dropped when this server is.
    pub fn start_on(database_url: &str, extra_env: &[(&str, &str)]) -> Result<Self> {
        let data = tempfile::tempdir()?;
        let mut cmd = Command::new(hallmark_bin());
        base_env(&mut cmd, data.path());
        cmd.env("DATABASE_URL", database_url);
        if database_url.starts_with("postgres") {
            cmd.env("REDIS_URL", test_redis_url());
        }
        Self::spawn(cmd, data, None, database_url.to_owned(), extra_env)
    }

    /// Sends the server SIGKILL (no shutdown); callable while other threads still use it.
    pub fn sigkill(&self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status();
    }

    fn spawn(
        mut cmd: Command,
        data: tempfile::TempDir,
        pg: Option<hallmark_store::testing::TestDatabase>,
        database_url: String,
        extra_env: &[(&str, &str)],
    ) -> Result<Self> {
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().context("spawning hallmark serve")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut admin_key = String::new();
        let base = loop {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok(line) => {
                    if let Some(k) = line
                        .split(": ")
                        .nth(1)
                        .filter(|_| line.starts_with("bootstrap admin API key"))
                    {
                        admin_key = k.trim().to_owned();
                    }
                    if let Some(addr) = line.strip_prefix("hallmark listening on ") {
                        break addr.trim().to_owned();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    bail!("hallmark serve did not start (see stderr above)");
                }
            }
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into();
        Ok(Self {
            child,
            base,
            admin_key,
            data,
            database_url,
            pg,
            agent,
        })
    }

    /// Process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Runs raw SQL against the server's database (for tamper tests).
    pub fn execute_sql(&self, sql: &str) -> Result<u64> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let url = self.database_url.clone();
        let sql = sql.to_owned();
        rt.block_on(async move {
            let store = hallmark_store::Store::connect(&url).await?;
            let n = store.execute_raw(&sql).await;
            store.close().await;
            n
        })
        .map_err(|e| anyhow!("{e}"))
    }

    /// GET with a bearer key.
    pub fn get(&self, path: &str, key: Option<&str>) -> Resp {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.header("Authorization", format!("Bearer {k}"));
        }
        Resp::from(req.call())
    }

    /// POST a JSON body.
    pub fn post_json(&self, path: &str, key: Option<&str>, body: &serde_json::Value) -> Resp {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json");
        if let Some(k) = key {
            req = req.header("Authorization", format!("Bearer {k}"));
        }
        Resp::from(req.send(body.to_string().as_bytes()))
    }

    /// Any method with raw headers (no bearer key added) and an optional body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let r = match b.body(body.map(<[u8]>::to_vec).unwrap_or_default()) {
            Ok(req) => self.agent.run(req),
            Err(e) => {
                return Resp {
                    status: 0,
                    headers: Vec::new(),
                    body: e.to_string().into_bytes(),
                }
            }
        };
        Resp::from(r)
    }

    /// POST a raw body with a content type.
    pub fn post_raw(&self, path: &str, key: Option<&str>, content_type: &str, body: &[u8]) -> Resp {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", content_type);
        if let Some(k) = key {
            req = req.header("Authorization", format!("Bearer {k}"));
        }
        Resp::from(req.send(body))
    }

    /// POST multipart/form-data with the given parts `(name, filename, bytes)`.
    pub fn post_multipart(
        &self,
        path: &str,
        key: Option<&str>,
        parts: &[(&str, Option<&str>, &[u8])],
    ) -> Resp {
        let (content_type, body) = multipart_body(parts);
        self.post_raw(path, key, &content_type, &body)
    }

    /// Rows in a table of the server's database.
    pub fn count_rows(&self, table: &str) -> i64 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = hallmark_store::Store::connect(&self.database_url)
                .await
                .unwrap();
            let n = store.count_rows(table).await.unwrap();
            store.close().await;
            n
        })
    }

    /// Signs `bytes` with `metadata` JSON through `POST /v1/sign`.
    pub fn sign(&self, bytes: &[u8], metadata: &serde_json::Value) -> Resp {
        let meta = metadata.to_string();
        self.post_multipart(
            "/v1/sign",
            Some(&self.admin_key),
            &[
                ("file", Some("upload"), bytes),
                ("metadata", None, meta.as_bytes()),
            ],
        )
    }

    /// Verifies `bytes` through `POST /v1/verify` (multipart).
    pub fn verify(&self, bytes: &[u8]) -> Resp {
        self.post_multipart(
            "/v1/verify",
            Some(&self.admin_key),
            &[("file", Some("upload"), bytes)],
        )
    }

    /// Runs the CLI against this server's database and data dir.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_env(args, &[])
    }

    /// Runs the CLI against this server's database and data dir with extra environment.
    pub fn cli_env(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mut cmd = Command::new(hallmark_bin());
        base_env(&mut cmd, self.data.path());
        if self.pg.is_some() {
            cmd.env("DATABASE_URL", &self.database_url);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(args).output().expect("run hallmark")
    }

    /// Creates an API key through the CLI against this server's database and data dir.
    pub fn create_key(&self, scopes: &str) -> String {
        let out = self.cli(&["keys", "create", "--scopes", scopes, "--name", "test"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(db) = self.pg.take() {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(db.drop_database());
            }
        }
    }
}

/// A multipart/form-data body of `parts` `(name, filename, bytes)`: its content type and bytes.
pub fn multipart_body(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "hallmark-test-boundary-7d1f0c";
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A response, read fully.
#[derive(Debug)]
pub struct Resp {
    /// HTTP status.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl From<Result<ureq::http::Response<ureq::Body>, ureq::Error>> for Resp {
    fn from(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Self {
        match r {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let headers = resp
                    .headers()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            v.to_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect();
                let body = resp
                    .body_mut()
                    .with_config()
                    .limit(512 * 1024 * 1024)
                    .read_to_vec()
                    .unwrap_or_default();
                Self {
                    status,
                    headers,
                    body,
                }
            }
            Err(e) => Self {
                status: 0,
                headers: Vec::new(),
                body: e.to_string().into_bytes(),
            },
        }
    }
}

impl Resp {
    /// Header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(500)])
            )
        })
    }

    /// Asserts a problem+json error with `status` and `code`.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(
            self.json()["code"],
            code,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
    }
}

/// PSNR (dB) between two equally sized images over RGB 8-bit.
pub fn psnr(a: &image::DynamicImage, b: &image::DynamicImage) -> f64 {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    assert_eq!(a.dimensions(), b.dimensions());
    let mse: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| {
            let d = f64::from(*x) - f64::from(*y);
            d * d
        })
        .sum::<f64>()
        / a.as_raw().len() as f64;
    if mse == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

/// Runs an external tool, failing the test with its stderr when it fails or is missing.
pub fn run_tool(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is required by this test ({e}); .ci/run installs it")
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
