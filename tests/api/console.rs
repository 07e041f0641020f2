//! The admin console (`/ui/`, SPEC §14): its cookie, its cross-site defences and its
//! headers over plain HTTP here; and the whole console driven in headless Chromium by
//! `tests/console/console.test.mjs` (Playwright's client library on the system's Chromium:
//! nothing downloads a browser).
//!
//! The browser test needs Node.js, Chromium (`apt-get install chromium`) and
//! `npm ci --prefix tests/console`, which the README's test command does not: without them
//! it says so and passes, unless `PORTCULLIS_TEST_CONSOLE=required` (set by `.ci/run`,
//! which installs all three): then a missing piece is a failure.

use portcullis_tests::TestServer;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const OPS_TEMPORARY: &str = "ops temporary pass 1";

/// `POST /ui/login` with these extra headers: the answer, and the cookie it set
/// (`name=value`) if any.
async fn console_login(
    s: &TestServer,
    username: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> (portcullis_tests::Answer, Option<String>) {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    let body = json!({"username": username, "password": password}).to_string();
    let (a, h) = s
        .raw("POST", "/ui/login", &all, Some(body.into_bytes()))
        .await;
    let cookie = h
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    (a, cookie)
}

/// `GET path` with this console cookie (`name=value`) from this `Sec-Fetch-Site`.
trait GetWithCookie {
    async fn get_with_cookie(
        &self,
        path: &str,
        cookie: &str,
        site: &str,
    ) -> portcullis_tests::Answer;
}

impl GetWithCookie for TestServer {
    async fn get_with_cookie(
        &self,
        path: &str,
        cookie: &str,
        site: &str,
    ) -> portcullis_tests::Answer {
        let headers = [("cookie", cookie), ("sec-fetch-site", site)];
        self.raw("GET", path, &headers, None).await.0
    }
}

/// `POST /ui/logout` from the console's page: the cookie, the site, the CSRF token.
async fn console_logout(
    s: &TestServer,
    cookie: &str,
    token: &str,
) -> (portcullis_tests::Answer, reqwest::header::HeaderMap) {
    let headers = [
        ("cookie", cookie),
        ("sec-fetch-site", "same-origin"),
        ("x-csrf-token", token),
    ];
    s.raw("POST", "/ui/logout", &headers, None).await
}

portcullis_tests::both!(
    async fn console_pages_carry_a_strict_csp_and_no_inline_script() {
        let s = TestServer::configured().await;
        // `/` is the console's front door.
        let (a, h) = s.raw("GET", "/", &[], None).await;
        assert_eq!(a.status, 303, "{}", a.text);
        assert_eq!(h["location"], "/ui/");
        for (path, kind) in [
            ("/ui/", "text/html"),
            ("/ui/app.js", "text/javascript"),
            ("/ui/app.css", "text/css"),
            ("/ui/favicon.svg", "image/svg+xml"),
        ] {
            let (a, h) = s.raw("GET", path, &[], None).await;
            assert_eq!(a.status, 200, "{path}: {}", a.text);
            assert!(
                h["content-type"].to_str().unwrap().starts_with(kind),
                "{path}"
            );
            assert_eq!(
                h["content-security-policy"],
                portcullis_server::console::CONTENT_SECURITY_POLICY,
                "{path}"
            );
            let csp = portcullis_server::console::CONTENT_SECURITY_POLICY;
            for rule in [
                "default-src 'none'",
                "script-src 'self'",
                "style-src 'self'",
                "frame-ancestors 'none'",
            ] {
                assert!(csp.contains(rule), "{rule}");
            }
            assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
            assert_eq!(h["x-frame-options"], "DENY", "{path}");
            assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        }
        // The page: scripts and styles only from files, no inline handler or style.
        let (page, _) = s.raw("GET", "/ui/", &[], None).await;
        let html = page.text.to_ascii_lowercase();
        for script in html.split("<script").skip(1) {
            let tag = &script[..script.find('>').unwrap()];
            assert!(tag.contains("src="), "an inline script: <script{tag}>");
            assert!(
                script[script.find('>').unwrap() + 1..].starts_with("</script>"),
                "a script with a body"
            );
        }
        assert!(!html.contains("<style"), "an inline stylesheet");
        assert!(!html.contains(" style="), "an inline style attribute");
        for handler in [
            " onclick=",
            " onload=",
            " onerror=",
            " onsubmit=",
            "javascript:",
        ] {
            assert!(!html.contains(handler), "inline handler {handler}");
        }
        // The script builds the page with DOM nodes and text, never HTML strings.
        let (js, _) = s.raw("GET", "/ui/app.js", &[], None).await;
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!js.text.contains(sink), "app.js uses {sink}");
        }
        assert!(!js.text.contains("localStorage") && !js.text.contains("sessionStorage"));
        // Off: 404, and the API is unchanged.
        let off = TestServer::start_with(|c| c.console.enabled = false).await;
        for path in ["/", "/ui/", "/ui/app.js"] {
            assert_eq!(
                off.raw("GET", path, &[], None).await.0.status,
                404,
                "{path}"
            );
        }
        off.stop().await;
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn cross_site_requests_with_the_console_cookie_are_refused() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        // A login form posted from another site (login CSRF) is refused.
        let (a, cookie) = console_login(
            &s,
            "admin",
            portcullis_tests::ADMIN_PASSWORD,
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
        assert_eq!((a.status, cookie), (403, None), "{}", a.text);
        // The same as an HTML form can send it (`text/plain`, the JSON built from a field
        // name and its value), from a browser that sends neither Sec-Fetch-Site nor Origin:
        // refused by its content type.
        let form = format!(
            "{{\"username\":\"admin\",\"password\":\"{}\"}}",
            portcullis_tests::ADMIN_PASSWORD
        );
        let (a, h) = s
            .raw(
                "POST",
                "/ui/login",
                &[("content-type", "text/plain")],
                Some(form.into_bytes()),
            )
            .await;
        assert_eq!(
            (a.status, a.code()),
            (415, "unsupported_media_type"),
            "{}",
            a.text
        );
        assert!(h.get("set-cookie").is_none());
        let (a, cookie) = console_login(
            &s,
            "admin",
            portcullis_tests::ADMIN_PASSWORD,
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        let cookie = cookie.expect("a cookie");
        assert!(cookie.starts_with("__Host-portcullis-console="), "{cookie}");
        let token = a.body["csrf_token"].as_str().unwrap().to_string();
        assert_eq!(a.body["whoami"]["username"], "admin");
        assert!(
            a.body.get("api_key").is_none(),
            "the key is in the cookie only"
        );
        let secret = cookie.split_once('=').unwrap().1.to_string();

        let same = [
            ("cookie", cookie.as_str()),
            ("sec-fetch-site", "same-origin"),
        ];
        let create = |name: &str| json!({"name": name}).to_string().into_bytes();
        let with = |extra: &[(&'static str, &str)]| -> Vec<(String, String)> {
            let mut h: Vec<(String, String)> = vec![
                ("cookie".into(), cookie.clone()),
                ("content-type".into(), "application/json".into()),
            ];
            h.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            h
        };
        async fn send(
            s: &TestServer,
            method: &str,
            path: &str,
            headers: &[(String, String)],
            body: Option<Vec<u8>>,
        ) -> portcullis_tests::Answer {
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            s.raw(method, path, &h, body).await.0
        }

        // The console's own page: reads with the cookie, writes with the token. What it
        // reads is the user's own: no cache keeps it.
        let (a, h) = s.raw("GET", "/v1/accounts", &same, None).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(h["cache-control"], "no-store");
        let a = send(
            &s,
            "POST",
            "/v1/accounts",
            &with(&[("sec-fetch-site", "same-origin"), ("x-csrf-token", &token)]),
            Some(create("fine")),
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.text);

        // Another site's fetch with the cookie (a browser that sent it despite SameSite):
        // refused before any work, reads included.
        let a = s
            .get_with_cookie("/v1/accounts", cookie.as_str(), "cross-site")
            .await;
        assert_eq!((a.status, a.code()), (403, "forbidden"), "{}", a.text);
        assert!(a.message().contains("cross-site"), "{}", a.text);
        for (name, extra) in [
            (
                "cross-site fetch with a stolen token",
                vec![
                    ("sec-fetch-site", "cross-site"),
                    ("x-csrf-token", token.as_str()),
                ],
            ),
            (
                "same-site sibling",
                vec![
                    ("sec-fetch-site", "same-site"),
                    ("x-csrf-token", token.as_str()),
                ],
            ),
            (
                "same-origin write without the token",
                vec![("sec-fetch-site", "same-origin")],
            ),
            (
                "same-origin write with a wrong token",
                vec![("sec-fetch-site", "same-origin"), ("x-csrf-token", "0000")],
            ),
            (
                "old browser, foreign Origin",
                vec![
                    ("origin", "https://evil.example"),
                    ("x-csrf-token", token.as_str()),
                ],
            ),
            ("old browser, no token", vec![]),
        ] {
            let a = send(
                &s,
                "POST",
                "/v1/accounts",
                &with(&extra),
                Some(create("evil")),
            )
            .await;
            assert_eq!(
                (a.status, a.code()),
                (403, "forbidden"),
                "{name}: {}",
                a.text
            );
        }
        // A cross-site HTML form (text/plain) posting a CSV import: refused, nothing written.
        let a = s
            .raw(
                "POST",
                "/v1/users/import?on_conflict=update",
                &[
                    ("cookie", cookie.as_str()),
                    ("sec-fetch-site", "cross-site"),
                    ("content-type", "text/plain"),
                    ("origin", "https://evil.example"),
                ],
                Some(b"username,email,account,roles\nmallory,,admin,\n".to_vec()),
            )
            .await
            .0;
        assert_eq!(a.status, 403, "{}", a.text);
        for name in ["evil"] {
            assert_eq!(s.get(&format!("/v1/accounts/{name}"), &k).await.status, 404);
        }
        assert_eq!(s.get("/v1/users/mallory", &k).await.status, 404);

        // The console's key works from its cookie only: not as a bearer key, not in forward
        // auth; and a forward-auth session key is no console cookie.
        assert_eq!(s.get("/v1/whoami", &secret).await.status, 401);
        let a = s.call("POST", "/v1/logout", Some(&secret), None).await;
        assert_eq!(a.status, 401, "a console key at /v1/logout: {}", a.text);
        let login_key = s.login("admin", portcullis_tests::ADMIN_PASSWORD).await;
        let a = s
            .get_with_cookie(
                "/v1/whoami",
                &format!("__Host-portcullis-console={login_key}"),
                "same-origin",
            )
            .await;
        assert_eq!(
            a.status, 401,
            "a login key in the console cookie: {}",
            a.text
        );

        // `GET /ui/session` gives the page its token back (after a reload).
        let a = s.raw("GET", "/ui/session", &same, None).await.0;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["csrf_token"], token.as_str());
        let a = s
            .get_with_cookie("/ui/session", cookie.as_str(), "cross-site")
            .await;
        assert_eq!(
            a.status, 403,
            "another site cannot read the token: {}",
            a.text
        );

        // Logout needs the token too, revokes the key and clears the cookie.
        let a = s.raw("POST", "/ui/logout", &same, None).await.0;
        assert_eq!(a.status, 403, "a cross-site logout: {}", a.text);
        let (a, h) = console_logout(&s, &cookie, &token).await;
        assert_eq!(a.status, 204, "{}", a.text);
        assert!(h["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
        let a = s.raw("GET", "/v1/accounts", &same, None).await.0;
        assert_eq!(a.status, 401, "{}", a.text);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn console_cookie_is_secure_and_host_bound_by_default() {
        async fn set_cookie(s: &TestServer) -> String {
            let body = json!({"username": "admin", "password": portcullis_tests::ADMIN_PASSWORD});
            let (a, h) = s
                .raw(
                    "POST",
                    "/ui/login",
                    &[
                        ("content-type", "application/json"),
                        ("sec-fetch-site", "same-origin"),
                    ],
                    Some(body.to_string().into_bytes()),
                )
                .await;
            assert_eq!(a.status, 200, "{}", a.text);
            h["set-cookie"].to_str().unwrap().to_string()
        }
        let s = TestServer::configured().await;
        let set = set_cookie(&s).await;
        assert!(set.starts_with("__Host-portcullis-console="), "{set}");
        for attribute in ["; Path=/", "; HttpOnly", "; SameSite=Strict", "; Secure"] {
            assert!(set.contains(attribute), "{attribute}: {set}");
        }
        // A browser session: no Domain (no sibling host sees it), no lifetime beyond the
        // browser's (the key itself expires after `session_ttl`).
        assert!(!set.contains("Domain") && !set.contains("Max-Age"), "{set}");
        s.stop().await;
        // Turned off for a plain-HTTP console on another name: a plain cookie.
        let s = TestServer::start_with(|c| {
            c.bootstrap.mode = portcullis_app::config::BootstrapMode::Configured;
            c.bootstrap.admin_password = portcullis_tests::ADMIN_PASSWORD.into();
            c.console.secure_cookie = false;
        })
        .await;
        let set = set_cookie(&s).await;
        assert!(set.starts_with("portcullis-console="), "{set}");
        assert!(!set.contains("Secure"), "{set}");
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn a_console_session_of_a_disabled_account_cannot_outlive_its_sign_out() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        s.user(&k, "acme", "bob", "bob passphrase 1", &["acme:read:*"])
            .await;
        let (a, cookie) = console_login(
            &s,
            "bob",
            "bob passphrase 1",
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        let cookie = cookie.expect("a cookie");
        let token = a.body["csrf_token"].as_str().unwrap().to_string();
        let same = [
            ("cookie", cookie.as_str()),
            ("sec-fetch-site", "same-origin"),
        ];
        // The account is disabled while bob is signed in; bob signs out then.
        let a = s
            .put("/v1/accounts/acme/state", &k, json!({"state": "disabled"}))
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        let (a, _) = console_logout(&s, &cookie, &token).await;
        assert_eq!(a.status, 204, "{}", a.text);
        // Enabled again: the signed-out session stays dead.
        let a = s
            .put("/v1/accounts/acme/state", &k, json!({"state": "enabled"}))
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        let a = s.raw("GET", "/v1/whoami", &same, None).await.0;
        assert_eq!(a.status, 401, "the session came back: {}", a.text);
        // And a second sign-in ends the session the browser had before it.
        let (a, first) = console_login(
            &s,
            "bob",
            "bob passphrase 1",
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        let first = first.unwrap();
        let (a, second) = console_login(
            &s,
            "bob",
            "bob passphrase 1",
            &[
                ("sec-fetch-site", "same-origin"),
                ("cookie", first.as_str()),
            ],
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        let second = second.unwrap();
        for (cookie, status) in [(&first, 401), (&second, 200)] {
            let a = s
                .get_with_cookie("/v1/whoami", cookie.as_str(), "same-origin")
                .await;
            assert_eq!(a.status, status, "{}", a.text);
        }
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn a_refused_new_password_does_not_confirm_a_guessed_password() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        let a = s
            .post(
                "/v1/accounts/acme/users",
                &k,
                json!({"username": "carol", "password": "carol temporary 1", "temporary_password": true}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        // A right and a wrong guess, each with a new password the policy refuses (too short,
        // or the guess itself): the same answer, so neither tells the guess was right.
        for new_password in ["short", "GUESS"] {
            let answers: Vec<(u16, String)> = {
                let mut v = Vec::new();
                for guess in ["carol temporary 1", "carol temporary 2"] {
                    let new = if new_password == "GUESS" {
                        guess
                    } else {
                        new_password
                    };
                    let a = s
                        .call(
                            "POST",
                            "/v1/login",
                            None,
                            Some(json!({"username": "carol", "password": guess, "new_password": new})),
                        )
                        .await;
                    v.push((a.status, a.code().to_string()));
                }
                v
            };
            assert_eq!(answers[0], answers[1], "{new_password}: {answers:?}");
            assert_eq!(answers[0].0, 422, "{new_password}: {answers:?}");
        }
        s.stop().await;
    }
);

/// The browser test's prerequisites, or `None` (with a note) when one is missing and the
/// test is not required.
fn browser_prerequisites() -> Option<(PathBuf, PathBuf)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("console");
    let required = std::env::var("PORTCULLIS_TEST_CONSOLE").as_deref() == Ok("required");
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    let node_ok = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let modules = dir.join("node_modules/playwright-core").is_dir();
    let missing = match (&chromium, node_ok, modules) {
        (None, _, _) => Some("Chromium (apt-get install chromium)"),
        (_, false, _) => Some("Node.js"),
        (_, _, false) => Some("tests/console/node_modules (npm ci --prefix tests/console)"),
        _ => None,
    };
    if let Some(what) = missing {
        assert!(
            !required,
            "{what} is missing and PORTCULLIS_TEST_CONSOLE=required"
        );
        eprintln!(
            "note: the console's browser test did not run: {what} is missing (CI requires it)"
        );
        return None;
    }
    Some((dir, chromium.unwrap()))
}

/// Every page of the console in headless Chromium against a live server: the flows of the
/// issue, an accessibility scan of each page, keyboard-only sign-in, a phone-width screen,
/// and a cross-site page that tries the cookie. Screenshots go to `target/console-screenshots`
/// (`PORTCULLIS_SCREENSHOTS=docs/console` refreshes the documentation's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_headless_chromium() {
    let Some((dir, chromium)) = browser_prerequisites() else {
        return;
    };
    let s = TestServer::configured().await;
    let k = s.admin_key().await;
    // The operator signs in for the first time with a temporary password.
    let a = s
        .post(
            "/v1/accounts/admin/users",
            &k,
            json!({"username": "ops", "password": OPS_TEMPORARY, "temporary_password": true}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shots = std::env::var("PORTCULLIS_SCREENSHOTS")
        .map(|d| root.join(d))
        .unwrap_or_else(|_| root.join("target/console-screenshots"));
    std::fs::create_dir_all(&shots).unwrap();
    let port = s.addr.port();
    let plugin = portcullis_plugin::programs::paths::HOSTILE;
    let script = dir.join("console.test.mjs");
    let mut child = tokio::process::Command::new("node")
        .arg(&script)
        .env("CONSOLE_URL", format!("http://127.0.0.1:{port}"))
        .env("CONSOLE_CHROMIUM", &chromium)
        .env("CONSOLE_OPS_PASSWORD", OPS_TEMPORARY)
        .env("CONSOLE_PLUGIN", plugin)
        .env("CONSOLE_SCREENSHOTS", &shots)
        .env("CONSOLE_AXE", dir.join("vendor/axe-core/axe.min.js"))
        .current_dir(&dir)
        .kill_on_drop(true)
        .spawn()
        .expect("node");
    // Generous: a busy two-core machine compiles the uploaded plugin in a debug build.
    let status = tokio::time::timeout(std::time::Duration::from_secs(600), child.wait())
        .await
        .expect("the browser test finished within 10 minutes")
        .expect("node ran");
    assert!(status.success(), "the browser test failed: {status}");

    // What the browser did is real: checked here through the API.
    let a = s.get("/v1/accounts/acme", &k).await;
    assert!(
        a.status == 404 || a.body["state"] == "deleting",
        "acme was deleted: {}",
        a.text
    );
    let a = s.get("/v1/authorizer", &k).await;
    assert!(
        a.body["shadow_disagreements"].as_u64().unwrap_or(0) >= 1,
        "{}",
        a.text
    );
    let audit: Value = s.get("/v1/audit?actor=ops&limit=1000", &k).await.body;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "accounts.create",
        "users.create",
        "accounts.delete",
        "plugins.upload",
    ] {
        assert!(actions.contains(&action), "{action} by ops: {actions:?}");
    }
    assert_eq!(s.get("/v1/accounts/evil", &k).await.status, 404);
    s.stop().await;
}
