//! The moderator console (`/console`), black box: over plain HTTP (no page without a session, a
//! form without the CSRF token refused with 403, sign-in rules, a revoked key ending its
//! session, the security headers) and in headless Chromium driven through chromedriver (sign
//! in → queue → open a report → reveal the preview → decide → receipt → audit page, with
//! screenshots and DOM checks; HTML in a C2PA title, a file name and a reason shows as text).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use hallmark_tests::fixtures::{encode, photo};
use hallmark_tests::webdriver::Browser;
use hallmark_tests::{Backend, Server};
use serde_json::json;

const NO_DETECTORS: [(&str, &str); 1] = [("HALLMARK__DETECTORS__ENABLED", "false")];
const TITLE: &str = "<script>alert(1)</script>";
const FILENAME: &str = "<img src=x onerror=alert(3)>.png";
const REASON: &str = "<script>alert(4)</script> looks generated";

/// A response with its headers, redirects not followed.
#[derive(Debug)]
struct Page {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .find(|(_, v)| v.starts_with(&format!("{name}=")))
            .map(|(_, v)| v.clone())
    }
}

fn http(s: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Page {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let mut b = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", s.base));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut resp = agent.run(b.body(body.to_vec()).unwrap()).unwrap();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    Page {
        status: resp.status().as_u16(),
        headers,
        body: resp.body_mut().read_to_string().unwrap_or_default(),
    }
}

/// The value of `name="csrf"` in a page.
fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

/// Signs in with `key` over HTTP; answers the session cookie (`hm_console=…`) or the page.
fn sign_in(s: &Server, key: &str) -> Result<String, Page> {
    let login = http(s, "GET", "/console/login", &[], b"");
    assert_eq!(login.status, 200);
    let pre = login.set_cookie("hm_console_login").unwrap();
    let pre = pre.split(';').next().unwrap().to_owned();
    let body = format!("csrf={}&api_key={key}", csrf_in(&login.body));
    let resp = http(
        s,
        "POST",
        "/console/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &pre),
        ],
        body.as_bytes(),
    );
    match resp.set_cookie("hm_console") {
        Some(c) if resp.status == 303 => {
            assert!(
                c.contains("HttpOnly") && c.contains("SameSite=Strict"),
                "{c}"
            );
            assert!(!c.contains(key), "the key never goes into the cookie");
            Ok(c.split(';').next().unwrap().to_owned())
        }
        _ => Err(resp),
    }
}

fn decisions_about(s: &Server, vid: &str) -> usize {
    let r = s.get(
        &format!("/v1/decisions?verification_id={vid}"),
        Some(&s.admin_key),
    );
    r.json()["decisions"].as_array().unwrap().len()
}

#[test]
fn console_needs_a_session_and_csrf_tokens() {
    let s = Server::start(Backend::Sqlite, &NO_DETECTORS).unwrap();
    let png = encode(&photo(96, 96, 3), image::ImageFormat::Png);
    let vid = s.verify(&png).json()["id"].as_str().unwrap().to_owned();

    // No page without a session: each redirects to the sign-in page.
    for (method, path) in [
        ("GET", "/console".to_owned()),
        ("GET", "/console/".to_owned()),
        ("GET", "/console/audit".to_owned()),
        ("GET", format!("/console/verifications/{vid}")),
        ("GET", format!("/console/verifications/{vid}/media")),
        ("POST", format!("/console/verifications/{vid}/decisions")),
        ("POST", "/console/next".to_owned()),
        ("POST", "/console/verify".to_owned()),
        ("POST", "/console/logout".to_owned()),
    ] {
        let r = http(&s, method, &path, &[("Cookie", "hm_console=forged")], b"");
        assert_eq!(r.status, 303, "{method} {path}: {}", r.body);
        assert_eq!(r.header("location"), Some("/console/login"), "{path}");
    }
    // The sign-in page itself: security headers, no inline script.
    let login = http(&s, "GET", "/console/login", &[], b"");
    let csp = login.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(login.header("x-frame-options"), Some("DENY"));
    assert!(!login.body.contains("<script>"), "only <script src=…>");

    // Sign-in refuses a form without its CSRF cookie, an unknown key, a key without scopes.
    let r = http(
        &s,
        "POST",
        "/console/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("csrf=x&api_key={}", s.admin_key).as_bytes(),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("csrf_failed"));
    let err = sign_in(&s, "hm_unknownkey").unwrap_err();
    assert!(
        err.body.contains("unknown, revoked or expired"),
        "{}",
        err.body
    );
    let signer = s.create_key("sign,verify");
    let err = sign_in(&s, &signer).unwrap_err();
    assert!(
        err.body.contains("lacks the &#39;moderate&#39; scope"),
        "{}",
        err.body
    );

    let moderator = s.create_key("verify,moderate");
    let cookie = sign_in(&s, &moderator).unwrap();
    let queue = http(&s, "GET", "/console", &[("Cookie", &cookie)], b"");
    assert_eq!(queue.status, 200);
    assert!(
        queue.body.contains(&vid),
        "the upload is in the undecided queue"
    );
    let csrf = csrf_in(&queue.body);

    // A decision without the token, with a wrong one, or not as a form: 403, nothing recorded.
    let path = format!("/console/verifications/{vid}/decisions");
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    for (headers, body) in [
        (vec![form, ("Cookie", &cookie)], "action=remove".to_owned()),
        (
            vec![form, ("Cookie", &cookie)],
            "action=remove&csrf=wrong".to_owned(),
        ),
        (
            vec![("Content-Type", "application/json"), ("Cookie", &cookie)],
            json!({"action": "remove", "csrf": csrf}).to_string(),
        ),
    ] {
        let r = http(&s, "POST", &path, &headers, body.as_bytes());
        assert_eq!(r.status, 403, "{body}: {}", r.body);
        assert!(r.body.contains("csrf_failed"));
    }
    assert_eq!(decisions_about(&s, &vid), 0);

    // With the token it records (the audit page needs the audit scope: 403 here).
    let body = format!("action=label&reason=ok&csrf={csrf}&idempotency_key=k1");
    let r = http(
        &s,
        "POST",
        &path,
        &[form, ("Cookie", &cookie)],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("verifies against the log key"),
        "{}",
        r.body
    );
    // The same form again (a double submit) replays; nothing new is recorded.
    let r = http(
        &s,
        "POST",
        &path,
        &[form, ("Cookie", &cookie)],
        body.as_bytes(),
    );
    assert!(r.body.contains("already recorded"), "{}", r.body);
    assert_eq!(decisions_about(&s, &vid), 1);
    let r = http(&s, "GET", "/console/audit", &[("Cookie", &cookie)], b"");
    assert_eq!(r.status, 403);
    assert!(r.body.contains("insufficient_scope"));
    // A malformed id is a 400 page, an unknown one a 404 page.
    let r = http(
        &s,
        "GET",
        "/console/verifications/nope",
        &[("Cookie", &cookie)],
        b"",
    );
    assert_eq!(r.status, 400);
    let r = http(
        &s,
        "GET",
        "/console/verifications/0190f000-0000-7000-8000-000000000000",
        &[("Cookie", &cookie)],
        b"",
    );
    assert_eq!(r.status, 404);

    // Revoking the key ends its session at once.
    let id = s.get("/v1/keys", Some(&s.admin_key)).json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["scopes"] == json!(["verify", "moderate"]))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.post_json(
        &format!("/v1/keys/{id}/revoke"),
        Some(&s.admin_key),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = http(&s, "GET", "/console", &[("Cookie", &cookie)], b"");
    assert_eq!(r.status, 303);

    // Sign-out ends the session.
    let cookie = sign_in(&s, &s.admin_key).unwrap();
    let page = http(&s, "GET", "/console", &[("Cookie", &cookie)], b"");
    let body = format!("csrf={}", csrf_in(&page.body));
    let r = http(
        &s,
        "POST",
        "/console/logout",
        &[form, ("Cookie", &cookie)],
        body.as_bytes(),
    );
    assert_eq!(r.status, 303);
    let r = http(&s, "GET", "/console", &[("Cookie", &cookie)], b"");
    assert_eq!(r.status, 303);
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}

/// A screenshot that decodes as a PNG of the window's size and is not one flat colour.
fn check_screenshot(b: &Browser, name: &str) {
    let path = screenshots().join(format!("{name}.png"));
    let png = b.screenshot(&path).unwrap();
    let img = image::load_from_memory(&png).unwrap().to_luma8();
    assert!(img.width() >= 800 && img.height() >= 600, "{name}: {img:?}");
    let (min, max) = img
        .pixels()
        .fold((255u8, 0u8), |(lo, hi), p| (lo.min(p[0]), hi.max(p[0])));
    assert!(max - min > 64, "{name} looks blank");
}

#[test]
fn console_flow_in_headless_chromium() {
    let s = Server::start(Backend::Sqlite, &[]).unwrap();
    // A signed image whose C2PA title is HTML; saved under a file name that is HTML too.
    let png = encode(&photo(320, 240, 11), image::ImageFormat::Png);
    let signed = s.sign(
        &png,
        &json!({"model": "<b>diffusion</b>", "title": TITLE, "generator": "acme"}),
    );
    assert_eq!(
        signed.status,
        200,
        "{}",
        String::from_utf8_lossy(&signed.body)
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(FILENAME);
    std::fs::write(&file, &signed.body).unwrap();
    let base = s.base.clone();

    let b = Browser::start().unwrap();
    // No session: the console sends the browser to the sign-in page.
    b.goto(&format!("{base}/console/audit")).unwrap();
    b.wait_for("#login-form", Duration::from_secs(10)).unwrap();
    check_screenshot(&b, "1-sign-in");
    b.type_into("#api_key", &s.admin_key).unwrap();
    b.click("#sign-in").unwrap();
    b.wait_for("#queue", Duration::from_secs(10)).unwrap();
    let who = b.text("#signed-in-as").unwrap();
    assert_eq!(who, "bootstrap-admin");
    let cookie = b.eval("return document.cookie;", json!([])).unwrap();
    assert_eq!(cookie, "", "the session cookie is HttpOnly");

    // Upload through the console: the report page opens.
    b.type_into("#upload-file", file.to_str().unwrap()).unwrap();
    b.click("#upload-submit").unwrap();
    b.wait_for("#verdict", Duration::from_secs(120)).unwrap();
    let report_url = b.url().unwrap();

    // Back to the queue; j selects the first row, o opens it.
    b.click("[data-key=u]").unwrap();
    b.wait_for("#queue tr[data-row]", Duration::from_secs(10))
        .unwrap();
    check_screenshot(&b, "2-queue");
    b.press("?").unwrap();
    let help_hidden = b.eval("return document.getElementById('help').hidden;", json!([]));
    assert_eq!(help_hidden.unwrap(), false, "? shows the shortcuts");
    b.press("?").unwrap();
    b.press("j").unwrap();
    b.wait_for("tr.selected", Duration::from_secs(5)).unwrap();
    b.press("o").unwrap();
    b.wait_for("#verdict", Duration::from_secs(10)).unwrap();
    assert_eq!(b.url().unwrap(), report_url);

    // HTML from the manifest and the file name is shown as text, never run.
    let c2pa = b.text("#c2pa").unwrap();
    assert!(c2pa.contains(TITLE), "{c2pa}");
    assert!(
        c2pa.contains("<b>diffusion</b>") || c2pa.contains("acme"),
        "{c2pa}"
    );
    assert_eq!(b.text("#filename").unwrap(), FILENAME);
    let scripts = b.eval(
        "return document.querySelectorAll('main script, main img[onerror], main b').length;",
        json!([]),
    );
    assert_eq!(scripts.unwrap(), 0, "no markup injected");
    assert_eq!(b.alert_text().unwrap(), None);
    assert!(
        b.find("#detectors .bar meter").unwrap().is_some(),
        "detector bars"
    );
    assert!(b.text("#watermark").unwrap().contains("Detected"));

    // The preview is blurred until clicked.
    let filter = "return getComputedStyle(document.getElementById('preview-img')).filter;";
    assert!(b
        .eval(filter, json!([]))
        .unwrap()
        .as_str()
        .unwrap()
        .contains("blur"));
    check_screenshot(&b, "3-report-blurred");
    b.click("#preview").unwrap();
    // Revealed once the 0.15 s transition ends.
    let mut revealed = json!(null);
    for _ in 0..50 {
        revealed = b.eval(filter, json!([])).unwrap();
        if revealed == "none" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(revealed, "none");
    let loaded = "return document.getElementById('preview-img').naturalWidth;";
    assert_eq!(
        b.eval(loaded, json!([])).unwrap(),
        320,
        "the image loads under the CSP"
    );
    check_screenshot(&b, "4-report-revealed");

    // Decide (htmx posts the form and shows the receipt in the page).
    b.type_into("#reason", REASON).unwrap();
    b.click("#decide-remove").unwrap();
    b.wait_for("#receipt", Duration::from_secs(30)).unwrap();
    assert_eq!(b.text("#receipt-action").unwrap(), "remove");
    assert_eq!(b.text("#receipt-reason").unwrap(), REASON);
    let check = b.text("#receipt-check").unwrap();
    assert!(check.contains("verifies against the log key"), "{check}");
    assert!(b
        .text("#receipt-checkpoint")
        .unwrap()
        .contains("hallmark.local/audit-"));
    assert_eq!(b.alert_text().unwrap(), None);
    check_screenshot(&b, "5-receipt");
    // Reloaded, the report lists the decision with its reason as text.
    b.goto(&report_url).unwrap();
    assert!(b.text("#decisions").unwrap().contains(REASON));

    // The audit page: the latest checkpoint and a valid log.
    b.goto(&format!("{base}/console/audit")).unwrap();
    b.wait_for("#log-valid", Duration::from_secs(30)).unwrap();
    let size: u64 = b.text("#checkpoint-size").unwrap().parse().unwrap();
    assert!(size >= 1);
    check_screenshot(&b, "6-audit");

    // No Content-Security-Policy violation on any page (htmx runs without inline code).
    let log = b.console_log().unwrap();
    assert!(
        !log.iter().any(|m| m.contains("Content Security Policy")),
        "{log:#?}"
    );

    // Signing out: the console is closed again.
    b.click("#sign-out").unwrap();
    b.wait_for("#login-form", Duration::from_secs(10)).unwrap();
    b.goto(&format!("{base}/console")).unwrap();
    b.wait_for("#login-form", Duration::from_secs(10)).unwrap();
}
