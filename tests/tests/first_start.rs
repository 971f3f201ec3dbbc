#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! First start under concurrency: instances started together on an empty database (PostgreSQL
//! and a SQLite file) and one fresh data directory all start, create exactly one bootstrap key
//! and generate one set of key material.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hallmark_tests::{base_env, hallmark_bin};

const INSTANCES: usize = 6;

struct Instances(Vec<Child>);

impl Drop for Instances {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts [`INSTANCES`] servers at once on `database_url` sharing the data directory `data`;
/// returns how many printed a bootstrap key and how many started listening.
fn start_together(database_url: &str, data: &std::path::Path) -> (usize, usize) {
    let (tx, rx) = mpsc::channel::<String>();
    let mut children = Instances(Vec::new());
    for _ in 0..INSTANCES {
        let mut cmd = Command::new(hallmark_bin());
        base_env(&mut cmd, data);
        // Every instance must find (or generate) the same watermark key in the shared dir.
        cmd.env_remove("HALLMARK__WATERMARK__KEY")
            .env("DATABASE_URL", database_url)
            .env("HALLMARK__DETECTORS__ENABLED", "false")
            .env("HALLMARK__GENERATORS__ENABLED", "false")
            .env("HALLMARK__AUDIT__KEY_EVENTS", "true")
            .env("HALLMARK__AUDIT__SETTINGS_EVENTS", "true")
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        children.0.push(child);
    }
    drop(tx);
    let (mut keys, mut listening, mut errors) = (0, 0, Vec::new());
    while listening < INSTANCES {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line.starts_with("bootstrap admin API key") => keys += 1,
            Ok(line) if line.starts_with("hallmark listening on") => listening += 1,
            Ok(line) if line.to_ascii_lowercase().contains("error") => errors.push(line),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(errors.is_empty(), "{errors:#?}");
    (keys, listening)
}

fn count_keys(url: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = hallmark_store::Store::connect(url).await.unwrap();
        let n = store.count_rows("api_keys").await.unwrap();
        let log = store.count_rows("audit_leaves").await.unwrap_or(-1);
        store.close().await;
        eprintln!("{url}: {n} keys, {log} audit leaves");
        n
    })
}

fn check_data_dir(data: &std::path::Path) {
    let leftovers: Vec<_> = walk(data)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let key = std::fs::read_to_string(data.join("watermark.key")).unwrap();
    assert_eq!(key.trim().len(), 64);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn instances_starting_together_on_postgres_create_one_bootstrap_key() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt
        .block_on(hallmark_store::testing::TestDatabase::postgres())
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let (keys, listening) = start_together(db.url(), data.path());
    assert_eq!(listening, INSTANCES);
    assert_eq!(keys, 1);
    assert_eq!(count_keys(db.url()), 1);
    check_data_dir(data.path());
    rt.block_on(db.drop_database()).unwrap();
}

#[test]
fn instances_starting_together_on_a_sqlite_file_create_one_bootstrap_key() {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", data.path().join("db/hallmark.db").display());
    let (keys, listening) = start_together(&url, data.path());
    assert_eq!(listening, INSTANCES);
    assert_eq!(keys, 1);
    assert_eq!(count_keys(&url), 1);
    check_data_dir(data.path());
}
