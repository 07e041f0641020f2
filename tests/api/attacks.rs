//! Regression tests for the attacks of the security review (docs/security.md, threat
//! model): each is named after the attack it pins and fails on a server without the fix.

use portcullis_app::config::BootstrapMode;
use portcullis_tests::{TestServer, ADMIN_PASSWORD};
use serde_json::json;

fn configured(c: &mut portcullis_app::config::Config) {
    c.bootstrap.mode = BootstrapMode::Configured;
    c.bootstrap.admin_password = ADMIN_PASSWORD.into();
}

portcullis_tests::both!(
    async fn made_up_http_methods_create_no_metric_series() {
        let s = TestServer::configured().await;
        for i in 0..30 {
            let method = reqwest::Method::from_bytes(format!("XABC{i}").as_bytes()).unwrap();
            let r = s
                .http
                .request(method, format!("{}/health", s.base))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_client_error(), "{}", r.status());
        }
        let metrics = s.call("GET", "/metrics", None, None).await.text;
        assert!(!metrics.contains("XABC"), "{metrics}");
        let series = metrics
            .lines()
            .filter(|l| l.starts_with("portcullis_http_requests_total{"))
            .count();
        assert!(series <= 4, "{series} series: {metrics}");
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn iact_through_a_trusted_proxy_is_not_handed_to_a_forwarded_outside_client() {
        let s = TestServer::start_with(|c| {
            c.bootstrap.mode = BootstrapMode::Iact;
            c.rate_limit.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        })
        .await;
        let ask = |xff: Option<&'static str>| {
            let mut r = s.http.get(format!("{}/admin/retrieve-iact", s.base));
            if let Some(x) = xff {
                r = r.header("x-forwarded-for", x);
            }
            async move { r.send().await.unwrap().status().as_u16() }
        };
        // The proxy forwards for a client outside `iact_subnets`: no token.
        assert_eq!(ask(Some("203.0.113.9")).await, 404);
        // The proxy's own request (a client on the allowed subnet) still gets it.
        assert_eq!(ask(None).await, 200);
        assert_eq!(ask(Some("127.0.0.1")).await, 200);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn re_activation_with_a_deny_rule_is_not_undone_by_the_decision_cache() {
        let s = TestServer::start_with(configured).await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        s.user(&k, "acme", "rita", "rita passphrase 1", &[]).await;
        let bytes = std::fs::read(portcullis_plugin::programs::paths::HOSTILE).unwrap();
        let up = s
            .http
            .post(format!("{}/v1/plugins?name=hostile", s.base))
            .bearer_auth(&k)
            .body(bytes)
            .send()
            .await
            .unwrap();
        let id = up.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let path = format!("/v1/plugins/{id}/activate");
        let activate =
            |settings: serde_json::Value| s.post(&path, &k, json!({ "settings": settings }));
        // `ttl` mode allows with ttl-ms 60 000: the answer is cached.
        assert_eq!(activate(json!({"mode": "ttl"})).await.status, 200);
        let ask = json!({"subject": {"username": "rita"}, "action": "read", "resource": {"kind": "document", "id": "1"}});
        for _ in 0..2 {
            let a = s.post("/v1/authorize", &k, ask.clone()).await;
            assert_eq!(a.body["decision"], "allow", "{}", a.text);
        }
        // The same component, re-activated with an emergency deny rule: denied at once.
        let a = activate(json!({"mode": "allow", "deny_actions": ["read"]})).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let a = s.post("/v1/authorize", &k, ask.clone()).await;
        assert_eq!(a.body["decision"], "deny", "{}", a.text);
        s.stop().await;
    }
);

/// A batch whose top-level context (256 KiB) is the default of 1000 empty items: 250 MiB
/// once each item is built with its own copy.
fn amplifying_batch() -> serde_json::Value {
    let context: serde_json::Map<String, serde_json::Value> = (0..64)
        .map(|i| (format!("k{i}"), json!("x".repeat(4000))))
        .collect();
    json!({
        "subject": {"type": "user", "id": "admin"},
        "action": {"name": "read"},
        "resource": {"type": "document", "id": "1"},
        "context": context,
        "evaluations": vec![json!({}); 1000],
    })
}

portcullis_tests::both!(
    async fn authzen_batch_amplification_is_refused_before_items_are_built() {
        let s = TestServer::start_with(configured).await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        let batch = amplifying_batch();
        // Without authorize.evaluate: refused before anything is built — even a body that
        // is malformed deeper down gets the 403.
        let a = s.post("/access/v1/evaluations", &jane, batch.clone()).await;
        assert_eq!((a.status, a.code()), (403, "forbidden"), "{}", a.text);
        let a = s
            .post(
                "/access/v1/evaluations",
                &jane,
                json!({"evaluations": "nonsense"}),
            )
            .await;
        assert_eq!((a.status, a.code()), (403, "forbidden"), "{}", a.text);
        // With it: the batch as built is bounded, with a message naming the field.
        let a = s.post("/access/v1/evaluations", &k, batch).await;
        assert_eq!(a.status, 413, "{}", a.text);
        assert!(a.message().starts_with("evaluations:"), "{}", a.text);
        // A batch of the same shape within the bound (1 MiB once built: three items of
        // about 257 kB) is answered.
        let mut small = amplifying_batch();
        small["evaluations"] = json!(vec![json!({}); 3]);
        let a = s.post("/access/v1/evaluations", &k, small).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["evaluations"].as_array().unwrap().len(), 3);
        s.stop().await;
    }
);

fn short_http_timeouts(c: &mut portcullis_app::config::Config) {
    configured(c);
    c.http.header_read_timeout = std::time::Duration::from_secs(1);
    c.http.body_read_timeout = std::time::Duration::from_secs(1);
}

/// Read until the server closes the connection (or resets it); panics if it is still
/// open after `PATIENCE`. Returns what it sent.
async fn until_closed(conn: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    match tokio::time::timeout(portcullis_tests::PATIENCE, conn.read_to_end(&mut got)).await {
        Ok(_) => got,
        Err(_) => panic!(
            "the server still holds the connection after {:?}",
            portcullis_tests::PATIENCE
        ),
    }
}

#[tokio::test]
async fn slowloris_half_sent_headers_and_bodies_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let s = TestServer::start_with(short_http_timeouts).await;
    // A connection that sends nothing at all.
    let mut silent = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    until_closed(&mut silent).await;
    // Headers that never end.
    let mut headers = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    headers
        .write_all(b"GET /health HTTP/1.1\r\nHost: portcullis\r\nX-Slow: 1\r\n")
        .await
        .unwrap();
    until_closed(&mut headers).await;
    // A body that stops after 10 of 100 bytes: answered (not held), then closed.
    let mut body = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    body.write_all(
        b"POST /v1/login HTTP/1.1\r\nHost: portcullis\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"username\"",
    )
    .await
    .unwrap();
    let answer = String::from_utf8_lossy(&until_closed(&mut body).await).to_string();
    assert!(
        answer.starts_with("HTTP/1.1 4"),
        "a stalled body gets a 4xx answer: {answer:?}"
    );
    // The server still serves.
    assert_eq!(s.call("GET", "/health", None, None).await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn connection_flood_beyond_the_cap_waits_in_the_backlog() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start_with(|c| {
        configured(c);
        c.http.max_connections = 4;
        c.http.header_read_timeout = std::time::Duration::from_secs(3600);
    })
    .await;
    let open = || s.state.metrics.connections.get();
    // Four idle connections take every slot …
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
        held.push(c);
    }
    portcullis_tests::wait_until(
        "four connections served",
        portcullis_tests::PATIENCE,
        || async { open() == 4 },
    )
    .await;
    // … so a fifth is not served (it waits in the kernel's backlog) …
    let mut fifth = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    fifth
        .write_all(b"GET /health HTTP/1.1\r\nHost: portcullis\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    let early =
        tokio::time::timeout(std::time::Duration::from_millis(300), fifth.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "a fifth connection was served past the cap of four"
    );
    assert_eq!(open(), 4);
    // … until a slot frees up.
    drop(held.pop());
    let answer = String::from_utf8_lossy(&until_closed(&mut fifth).await).to_string();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    drop(held);
    s.stop().await;
}

#[tokio::test]
async fn data_files_are_private_even_in_a_directory_that_was_world_readable() {
    use std::os::unix::fs::PermissionsExt;
    let s = TestServer::start_with(|c| {
        configured(c);
        std::fs::create_dir_all(&c.data_dir).unwrap();
        std::fs::set_permissions(&c.data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    })
    .await;
    let k = s.admin_key().await;
    s.account(&k, "acme", "user").await;
    let data = s.dir.path().join("data");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    for name in ["portcullis.db", "portcullis.db-wal", "portcullis.db-shm"] {
        let p = data.join(name);
        assert!(p.exists(), "{name}");
        assert_eq!(mode(&p), 0o600, "{name}");
    }
    s.stop().await;
}

portcullis_tests::both!(
    async fn users_created_without_an_account_never_become_administrators() {
        let s = TestServer::start_with(configured).await;
        let k = s.admin_key().await;
        assert_eq!(
            s.get("/v1/whoami", &k).await.body["default_account"],
            "users"
        );
        let a = s
            .post("/v1/users", &k, json!({"email": "bob@example.org"}))
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        assert_eq!(a.body["account"], "users");
        let users = s.get("/v1/accounts/users", &k).await;
        assert_eq!(users.body["type"], "user", "{}", users.text);
        // A user-account member's default is her own account.
        s.account(&k, "acme", "user").await;
        let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        assert_eq!(
            s.get("/v1/whoami", &jane).await.body["default_account"],
            "acme"
        );
        let a = s
            .post("/v1/users", &jane, json!({"email": "carl@acme.example"}))
            .await;
        assert_eq!(
            (a.status, a.body["account"].as_str()),
            (201, Some("acme")),
            "{}",
            a.text
        );
        // The admin account only when named.
        let a = s
            .post(
                "/v1/users",
                &k,
                json!({"email": "root@example.org", "account": "admin"}),
            )
            .await;
        assert_eq!(
            (a.status, a.body["account"].as_str()),
            (201, Some("admin")),
            "{}",
            a.text
        );
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn the_admin_username_cannot_be_squatted_outside_the_admin_account() {
        let s = TestServer::start_with(|c| c.bootstrap.mode = BootstrapMode::Iact).await;
        let token = std::fs::read_to_string(s.dir.path().join("data/initial-admin-token"))
            .unwrap()
            .trim()
            .to_string();
        let a = s
            .call(
                "POST",
                &format!("/admin/initial-admin-user?token={token}"),
                None,
                Some(json!({"username": "root", "email": "root@example.org", "password": "root passphrase 1"})),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        let k = a.body["token"].as_str().unwrap().to_string();
        s.account(&k, "acme", "user").await;
        for (path, body) in [
            (
                "/v1/accounts/acme/users",
                json!({"username": "admin", "password": "squatter pass 1"}),
            ),
            (
                "/v1/users",
                json!({"email": "admin@acme.example", "username": "admin", "account": "acme"}),
            ),
        ] {
            let a = s.post(path, &k, body).await;
            assert_eq!(a.status, 409, "{path}: {}", a.text);
            assert!(
                a.message().contains("reserved for the admin account"),
                "{}",
                a.text
            );
        }
        let csv = "username,email,account,roles\nadmin,admin@acme.example,acme,\n";
        let a = s
            .http
            .post(format!("{}/v1/users/import", s.base))
            .bearer_auth(&k)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        let status = a.status().as_u16();
        let report: serde_json::Value = a.json().await.unwrap();
        assert_eq!(status, 422, "{report}");
        assert!(
            report
                .to_string()
                .contains("reserved for the admin account"),
            "{report}"
        );
        // In the admin account it is fine.
        let a = s
            .post(
                "/v1/accounts/admin/users",
                &k,
                json!({"username": "admin", "password": "real admin pass 1"}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        s.stop().await;
    }
);

/// How many password checks the audit log shows for `username`, and how many refusals
/// because the user was locked.
async fn checks_and_locked(s: &TestServer, k: &str, username: &str) -> (usize, usize) {
    let a = s
        .get(&format!("/v1/audit?actor={username}&limit=1000"), k)
        .await;
    let items = a.body["items"].as_array().unwrap().clone();
    let count = |detail: &str| items.iter().filter(|e| e["detail"] == detail).count();
    (count("wrong password"), count("user locked"))
}

portcullis_tests::both!(
    async fn parallel_password_guesses_get_at_most_threshold_checks() {
        let s = TestServer::start_with(|c| {
            configured(c);
            c.auth.lockout_threshold = 5;
        })
        .await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        let guesses = (0..40).map(|i| {
            s.call(
                "POST",
                "/v1/login",
                None,
                Some(json!({"username": "jane", "password": format!("guess number {i}")})),
            )
        });
        let mut busy = 0;
        for a in futures::future::join_all(guesses).await {
            // A flood of one username may also meet its share of the hashing pool (503).
            match a.status {
                401 => {}
                503 => busy += 1,
                other => panic!("{other}: {}", a.text),
            }
        }
        let (checked, locked) = checks_and_locked(&s, &k, "jane").await;
        assert!(checked <= 5, "{checked} password checks (threshold 5)");
        assert_eq!(checked + locked + busy, 40, "{checked} {locked} {busy}");
        assert_eq!(s.get("/v1/users/jane", &k).await.body["locked"], true);
        // Even the right password waits for the lock to end.
        let a = s.try_login("jane", "jane passphrase 1").await;
        assert_eq!(a.status, 401);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn own_password_change_is_not_an_unlimited_password_oracle() {
        let s = TestServer::start_with(|c| {
            configured(c);
            c.auth.lockout_threshold = 3;
        })
        .await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        let change = |current: &'static str| {
            s.put(
                "/v1/users/jane/password",
                &jane,
                json!({"password": "a brand new passphrase", "current_password": current}),
            )
        };
        for _ in 0..3 {
            let a = change("not my password").await;
            assert_eq!(
                (a.status, a.code()),
                (403, "invalid_current_password"),
                "{}",
                a.text
            );
        }
        // Locked now: even the right current password is not checked.
        let a = change("jane passphrase 1").await;
        assert_eq!((a.status, a.code()), (403, "user_locked"), "{}", a.text);
        assert_eq!(s.get("/v1/users/jane", &k).await.body["locked"], true);
        // And the login is locked too: the guesses counted toward the same lockout.
        let a = s.try_login("jane", "jane passphrase 1").await;
        assert_eq!(a.status, 401);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn megabyte_login_usernames_do_not_grow_the_audit_log() {
        let s = TestServer::start_with(configured).await;
        let k = s.admin_key().await;
        let huge = "é".repeat(400_000);
        for _ in 0..3 {
            let a = s.try_login(&huge, "whatever pass").await;
            assert_eq!((a.status, a.code()), (401, "invalid_credentials"));
        }
        let audit = s.get("/v1/audit?limit=1000", &k).await;
        assert!(
            audit.text.len() < 64 * 1024,
            "{} bytes of audit",
            audit.text.len()
        );
        assert!(!audit.text.contains("éé"));
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn uploads_from_callers_without_permission_are_refused_before_the_body_is_read() {
        let s = TestServer::start_with(configured).await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        // 20 MB that the server must not take in for someone who may not upload.
        let big = vec![0u8; 20 << 20];
        for path in ["/v1/plugins?name=x", "/v1/users/import"] {
            let r = s
                .http
                .post(format!("{}{path}", s.base))
                .bearer_auth(&jane)
                .body(big.clone())
                .send()
                .await;
            // The 403 may arrive while the client is still sending (the server closes the
            // connection then): either the 403 or a broken send, never a 413 or a 422.
            if let Ok(r) = r {
                assert_eq!(r.status().as_u16(), 403, "{path}");
            }
        }
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn the_audit_log_is_bounded_by_age_and_count() {
        let s = TestServer::start_with(|c| {
            configured(c);
            c.audit.max_entries = 10;
        })
        .await;
        let k = s.admin_key().await;
        for i in 0..15 {
            s.account(&k, &format!("acct{i}"), "user").await;
        }
        let count = || async {
            s.get("/v1/audit?limit=1000", &k).await.body["items"]
                .as_array()
                .unwrap()
                .len()
        };
        assert!(count().await > 10);
        portcullis_app::audit::prune(&s.state).await.unwrap();
        let items = s.get("/v1/audit?limit=1000", &k).await;
        let left = items.body["items"].as_array().unwrap().clone();
        assert!(left.len() <= 10, "{} entries left", left.len());
        // The newest are kept.
        assert!(items.text.contains("acct14"), "{}", items.text);
        // By age: entries older than the retention go.
        s.sql("UPDATE audit SET at = 1000").await;
        portcullis_app::audit::prune(&s.state).await.unwrap();
        assert_eq!(count().await, 0);
        s.stop().await;
    }
);
