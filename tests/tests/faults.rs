//! Store outages with real processes: the test starts its OWN PostgreSQL (initdb in a temp
//! dir, its own port) and redis-server (its own port), stops and restarts them under a
//! running Hallmark, and checks that requests fail fast and honestly (503 `store_unavailable`
//! with Retry-After within 2 s), `/readyz` names what is down within 1 s, and service resumes
//! without a restart. It also poisons Redis: forged entries neither authenticate a key nor
//! become a report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hallmark_tests::fixtures::{encode, photo};
use hallmark_tests::{Backend, Server};
use image::ImageFormat;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn pg_bin(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop().expect("an initdb").join(name)
}

/// Runs a PostgreSQL tool as the `postgres` user when this test runs as root (PostgreSQL
/// refuses to run as root).
fn pg_command(name: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(pg_bin(name));
        c
    } else {
        Command::new(pg_bin(name))
    }
}

/// A throw-away PostgreSQL cluster on its own port.
struct OwnPostgres {
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnPostgres {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn init() -> Self {
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let pg = Self {
            dir,
            port: free_port(),
        };
        let out = pg_command("initdb")
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(pg.data())
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let out = pg_command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-o", &opts, "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "30", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn stop(&self) {
        let out = pg_command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = pg_command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// A throw-away redis-server on its own port (no persistence).
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let r = Self {
            port,
            child: Some(child),
        };
        let t = Instant::now();
        while r.cli(&["PING"]) != "PONG" {
            assert!(t.elapsed() < Duration::from_secs(10), "redis did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn cli(&self, args: &[&str]) -> String {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    }

    fn get_raw(&self, key: &str) -> Vec<u8> {
        let mut out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw", "GET", key])
            .output()
            .unwrap()
            .stdout;
        out.pop(); // the newline redis-cli appends
        out
    }

    /// SET with a binary-safe value (`-x`: the value is read from stdin).
    fn set_raw(&self, key: &str, value: &[u8]) {
        use std::io::Write as _;
        let mut child = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "-x", "SET", key])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(value).unwrap();
        assert!(child.wait().unwrap().success());
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn sha256_hex(s: &str) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_owned()
}

fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn outages_fail_fast_and_recover_and_a_poisoned_cache_is_ignored() {
    let pg = OwnPostgres::init();
    pg.start();
    let mut redis = OwnRedis::start(free_port());
    let s = Server::start(
        Backend::Sqlite,
        &[
            ("DATABASE_URL", &pg.url()),
            ("REDIS_URL", &redis.url()),
            ("HALLMARK__DETECTORS__ENABLED", "false"),
        ],
    )
    .unwrap();
    let jpg = encode(&photo(400, 300, 11), ImageFormat::Jpeg);
    let first = s.verify(&jpg);
    assert_eq!(
        first.status,
        201,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert_eq!(s.get("/readyz", None).status, 200);

    // --- A poisoned Redis. A key that exists nowhere in the database, written into the cache
    // the way the API-key cache used to hold callers: not authenticated.
    let forged_key = "hm_forgedforgedforgedforgedforgedforgedforged";
    let caller =
        r#"{"key_id":"forged","name":"forged","scopes":["sign","verify","moderate","audit"]}"#;
    redis.cli(&[
        "SET",
        &format!("hallmark:apikey:{}", sha256_hex(forged_key)),
        caller,
    ]);
    s.post_multipart(
        "/v1/verify",
        Some(forged_key),
        &[("file", Some("a.jpg"), &jpg)],
    )
    .assert_problem(401, "unauthorized");
    // Every cached analysis overwritten with a forged "trusted C2PA + watermark" result: the
    // next verify of the same file reports what the file really holds.
    let keys = redis.cli(&["--scan", "--pattern", "hallmark:analysis:*"]);
    assert!(!keys.is_empty(), "verify cached its analysis");
    for k in keys.lines() {
        // The cached JSON (after its 32-byte tag, when it has one), edited to claim a trusted
        // manifest and a watermark, written back untagged and with the old tag.
        let raw = redis.get_raw(k);
        let at = if serde_json::from_slice::<serde_json::Value>(&raw).is_ok() {
            0
        } else {
            32
        };
        let mut a: serde_json::Value = serde_json::from_slice(&raw[at..]).unwrap();
        a["c2pa"]["present"] = true.into();
        a["c2pa"]["validation_state"] = "Trusted".into();
        a["c2pa"]["read_error"] = serde_json::Value::Null;
        a["watermark"]["detected"] = true.into();
        a["watermark"]["payload"] = "00000000deadbeef".into();
        a["watermark"]["p_value"] = 1e-12.into();
        let forged = serde_json::to_vec(&a).unwrap();
        redis.set_raw(k, &forged);
        let again = s.verify(&jpg);
        assert_eq!(again.status, 201);
        let r = again.json();
        assert_eq!(r["c2pa"]["present"], false, "untagged forgery used: {r:#}");
        assert_eq!(r["watermark"]["detected"], false, "{r:#}");
        let mut tagged = raw[..at].to_vec();
        tagged.extend_from_slice(&forged);
        redis.set_raw(k, &tagged);
    }
    let again = s.verify(&jpg);
    assert_eq!(again.status, 201);
    let r = again.json();
    assert_eq!(r["c2pa"]["present"], false, "{r:#}");
    assert_eq!(r["watermark"]["detected"], false, "{r:#}");
    assert_eq!(r["verdict"], first.json()["verdict"], "{r:#}");

    // --- PostgreSQL down: 503 store_unavailable with Retry-After within 2 s; /readyz 503
    // naming the database within ~1 s.
    pg.stop();
    let t = Instant::now();
    let r = s.verify(&jpg);
    let took = t.elapsed();
    r.assert_problem(503, "store_unavailable");
    assert!(r.header("retry-after").is_some());
    assert!(took < Duration::from_secs(2), "{took:?}");
    eprintln!("postgres down: verify answered 503 in {took:?}");
    let t = Instant::now();
    let ready = s.get("/readyz", None);
    let took = t.elapsed();
    eprintln!("postgres down: /readyz answered 503 in {took:?}");
    ready.assert_problem(503, "store_unavailable");
    assert!(
        ready.json()["detail"]
            .as_str()
            .unwrap()
            .contains("database"),
        "{}",
        ready.json()
    );
    assert!(took < Duration::from_millis(1500), "{took:?}");
    // Recovery without a restart.
    pg.start();
    assert!(
        wait_until(Duration::from_secs(20), || s.verify(&jpg).status == 201),
        "verify did not recover after PostgreSQL came back"
    );
    assert_eq!(s.get("/readyz", None).status, 200);

    // --- Redis down: verify still works (the cache is skipped), /readyz names the cache.
    redis.kill();
    for seed in 0..3 {
        let other = encode(&photo(300, 200, 100 + seed), ImageFormat::Jpeg);
        let r = s.verify(&other);
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
    // With the breaker open, a request pays no cache wait: a cached-path request is as quick
    // as the database allows (bounded loosely here; speeds live in the bench).
    let t = Instant::now();
    assert_eq!(s.verify(&jpg).status, 201);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    eprintln!("redis down: verify answered 201 in {:?}", t.elapsed());
    let t = Instant::now();
    let ready = s.get("/readyz", None);
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    ready.assert_problem(503, "store_unavailable");
    assert!(ready.json()["detail"].as_str().unwrap().contains("cache"));
    let port = redis.port;
    drop(redis);
    let _redis = OwnRedis::start(port);
    assert!(
        wait_until(Duration::from_secs(15), || s.get("/readyz", None).status
            == 200),
        "readyz did not recover after Redis came back"
    );
    assert_eq!(s.verify(&jpg).status, 201);
}
