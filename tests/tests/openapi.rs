//! The API description (issue 20): `GET /openapi.json` from a running server is valid OpenAPI
//! 3.1 according to an independent validator (`openapi-spec-validator` from PyPI, in a venv that
//! `scripts/openapi/validate.sh` creates), documents every route the server registers — the
//! route list is read from the `configure` functions of the code, and the methods of each route
//! are checked against the `Allow` header the server itself answers with — and `/docs` serves
//! Swagger UI, which renders the document in headless Chromium.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use hallmark_tests::{repo_root, Backend, Server};

const ENV: [(&str, &str); 1] = [("HALLMARK__DETECTORS__ENABLED", "false")];

/// The string literals starting with `/` inside the body of `pub fn configure` in `src`.
fn configured_paths(src: &str) -> Vec<String> {
    let Some(start) = src.find("pub fn configure(") else {
        return Vec::new();
    };
    let body_start = start + src[start..].find('{').unwrap();
    let mut depth = 0usize;
    let mut end = body_start;
    for (i, c) in src[body_start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    end = body_start + i;
                    break;
                }
            }
            _ => {}
        }
    }
    let body = &src[body_start..end];
    body.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with('/'))
        .map(str::to_owned)
        .collect()
}

/// Every path the server registers, read from the code: the modules that
/// `routes::configure` calls, and the paths their `configure` functions register. Actix
/// patterns `{name:regex}` become OpenAPI's `{name}`. The moderator console (`/console`) is
/// HTML for people and is not part of the API description.
fn registered_paths() -> BTreeSet<String> {
    let api = repo_root().join("api/src");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
    let routes_mod = read(&api.join("routes/mod.rs"));
    let configure = &routes_mod[routes_mod.find("pub fn configure(").unwrap()..];
    let configure = &configure[..configure.find("\n}").unwrap()];
    let mut files = Vec::new();
    for line in configure.lines().map(str::trim) {
        let Some(module) = line.strip_suffix("::configure(cfg);") else {
            continue;
        };
        let base = match module.strip_prefix("crate::") {
            Some(m) => api.join(m.replace("::", "/")),
            None => api.join("routes").join(module),
        };
        let file = base.with_extension("rs");
        files.push(if file.exists() {
            file
        } else {
            base.join("mod.rs")
        });
    }
    assert!(files.len() >= 12, "{files:?}");
    let mut paths = BTreeSet::new();
    for f in files {
        let found = configured_paths(&read(&f));
        assert!(!found.is_empty(), "{f:?} registers no path");
        for p in found {
            let normalised: String = p
                .split('/')
                .map(|seg| match seg.split_once(':') {
                    Some((name, _)) if seg.starts_with('{') => format!("{name}}}"),
                    _ => seg.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("/");
            if !normalised.starts_with("/console") {
                paths.insert(normalised);
            }
        }
    }
    paths
}

fn documented(doc: &serde_json::Value) -> BTreeMap<String, BTreeSet<String>> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(p, item)| {
            let methods = item
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .map(|k| k.to_uppercase())
                .collect();
            (p.clone(), methods)
        })
        .collect()
}

fn validate_with_openapi_spec_validator(doc: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc).unwrap();
    let out = Command::new(repo_root().join("scripts/openapi/validate.sh"))
        .arg(&file)
        .output()
        .expect("running scripts/openapi/validate.sh");
    assert!(
        out.status.success(),
        "openapi-spec-validator rejected /openapi.json:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn openapi_document_is_valid_and_lists_every_registered_route() {
    let s = Server::start(Backend::Sqlite, &ENV).unwrap();
    let r = s.get("/openapi.json", None);
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    validate_with_openapi_spec_validator(&r.body);

    let docs = documented(&doc);
    let registered = registered_paths();
    let missing: Vec<_> = registered
        .iter()
        .filter(|p| !docs.contains_key(*p))
        .collect();
    assert!(
        missing.is_empty(),
        "registered but not documented: {missing:?}"
    );
    let extra: Vec<_> = docs.keys().filter(|p| !registered.contains(*p)).collect();
    assert!(extra.is_empty(), "documented but not registered: {extra:?}");

    // The methods: any other method on a route is 405 with `Allow` naming the ones it has.
    assert_eq!(
        s.request("PATCH", "/v1/no-such-route", &[], None).status,
        404
    );
    for (path, methods) in &docs {
        let concrete: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let r = s.request("PATCH", &concrete, &[], None);
        r.assert_problem(405, "method_not_allowed");
        let allow: BTreeSet<String> = r
            .header("allow")
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_owned())
            .collect();
        assert_eq!(&allow, methods, "{path}");
    }

    // A problem the document describes is the one the server sends.
    let r = s.get("/v1/keys", None);
    r.assert_problem(401, "unauthorized");
    let ex = &doc["paths"]["/v1/keys"]["get"]["responses"]["401"]["content"]
        ["application/problem+json"]["examples"]["unauthorized"]["value"];
    let body = r.json();
    for field in ["type", "title", "status", "code"] {
        assert_eq!(ex[field], body[field], "{field}");
    }
}

#[test]
fn docs_serve_swagger_ui_which_renders_the_document() {
    let s = Server::start(Backend::Sqlite, &ENV).unwrap();
    // The shared client follows redirects; this one shows the redirect itself.
    let no_follow: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let r = no_follow.get(format!("{}/docs", s.base)).call().unwrap();
    assert_eq!(r.status().as_u16(), 308);
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/docs/")
    );
    let page = s.get("/docs/", None);
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    for (asset, kind) in [
        ("swagger-ui-bundle.js", "javascript"),
        ("swagger-ui-standalone-preset.js", "javascript"),
        ("swagger-ui.css", "text/css"),
        ("swagger-initializer.js", "javascript"),
    ] {
        assert!(html.contains(asset) || asset == "swagger-ui-standalone-preset.js");
        let r = s.get(&format!("/docs/{asset}"), None);
        assert_eq!(r.status, 200, "{asset}");
        assert!(r.header("content-type").unwrap().contains(kind), "{asset}");
        assert!(r.body.len() > 100, "{asset}");
    }
    let init = s.get("/docs/swagger-initializer.js", None);
    assert!(String::from_utf8_lossy(&init.body).contains("/openapi.json"));
    s.get("/docs/no-such-asset.js", None)
        .assert_problem(404, "not_found");

    // Headless Chromium runs the UI: the rendered page lists the operations.
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
        .expect("chromium not found: install Debian's `chromium` (.ci/run does)");
    let profile = tempfile::tempdir().unwrap();
    let shot = repo_root().join("target/openapi-docs.png");
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--virtual-time-budget=15000",
        "--window-size=1280,2000",
    ];
    let url = format!("{}/docs/", s.base);
    let dom = Command::new(chromium)
        .args(common)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    for text in [
        "Hallmark",
        "/v1/sign",
        "/v1/decisions/batch",
        "/v1/audit/checkpoint",
    ] {
        assert!(dom.contains(text), "rendered UI lacks {text}: {dom:.2000}");
    }
    let out = Command::new(chromium)
        .args(common)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[allow(clippy::disallowed_methods)] // the test's own screenshot, not untrusted input
    let img = image::open(&shot).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (1280, 2000));
    let colours: BTreeSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    assert!(
        colours.len() > 50,
        "a blank page: {} colours",
        colours.len()
    );
}
