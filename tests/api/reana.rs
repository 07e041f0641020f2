//! REANA's workflow: access tokens, users by email, CSV export/import (§2, §4).

use portcullis_tests::{Answer, TestServer};
use serde_json::{json, Value};

async fn csv_import(s: &TestServer, key: &str, mode: &str, body: &str) -> Answer {
    let r = s
        .http
        .post(format!("{}/v1/users/import?on_conflict={mode}", s.base))
        .bearer_auth(key)
        .header("content-type", "text/csv")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

async fn export(s: &TestServer, key: &str, hashes: bool) -> (u16, String) {
    let q = if hashes {
        "?include_password_hashes=true"
    } else {
        ""
    };
    let r = s
        .http
        .get(format!("{}/v1/users/export{q}", s.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

portcullis_tests::both!(
    async fn every_access_token_transition_and_its_effect() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        let status = |k: String| {
            let (http, base) = (s.http.clone(), s.base.clone());
            async move {
                let v: Value = http
                    .get(format!("{base}/v1/users/jane"))
                    .bearer_auth(k)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                v["access_token_status"].clone()
            }
        };
        assert_eq!(status(k.clone()).await, Value::Null);
        // none → requested (by the user; requesting again changes nothing)
        let a = s
            .post("/v1/users/jane/access-token/request", &jane, json!({}))
            .await;
        assert_eq!(
            (a.status, a.body["access_token_status"].as_str()),
            (200, Some("requested")),
            "{}",
            a.text
        );
        assert_eq!(
            s.post("/v1/users/jane/access-token/request", &jane, json!({}))
                .await
                .body["access_token_status"],
            "requested"
        );
        // A user may not grant itself a token.
        assert_eq!(
            s.post("/v1/users/jane/access-token/grant", &jane, json!({}))
                .await
                .status,
            403
        );
        // requested → active (admin): the token works and is shown once.
        let a = s
            .post("/v1/users/jane/access-token/grant", &k, json!({}))
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        let t1 = a.body["access_token"].as_str().unwrap().to_string();
        assert_eq!(
            s.get("/v1/whoami", &t1).await.body["key"]["kind"],
            "access-token"
        );
        assert_eq!(status(k.clone()).await, "active");
        // A request while active keeps it active.
        assert_eq!(
            s.post("/v1/users/jane/access-token/request", &jane, json!({}))
                .await
                .body["access_token_status"],
            "active"
        );
        // active → active: a new grant revokes the earlier token.
        let t2 = s
            .post("/v1/users/jane/access-token/grant", &k, json!({}))
            .await
            .body["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(s.get("/v1/whoami", &t1).await.status, 401);
        assert_eq!(s.get("/v1/whoami", &t2).await.status, 200);
        // active → revoked: it stops working at once.
        let a = s
            .post("/v1/users/jane/access-token/revoke", &k, json!({}))
            .await;
        assert_eq!(a.body["access_token_status"], "revoked");
        assert_eq!(s.get("/v1/whoami", &t2).await.status, 401);
        assert_eq!(status(k.clone()).await, "revoked");
        // revoked → requested → active again.
        assert_eq!(
            s.post("/v1/users/jane/access-token/request", &jane, json!({}))
                .await
                .body["access_token_status"],
            "requested"
        );
        let t3 = s
            .post("/v1/users/jane/access-token/grant", &k, json!({}))
            .await
            .body["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(s.get("/v1/whoami", &t3).await.status, 200);
        // The list shows the status too.
        let list = s.get("/v1/accounts/acme/users", &k).await;
        assert_eq!(list.body["items"][0]["access_token_status"], "active");
        // The audit log has every transition.
        let audit = s
            .get("/v1/audit?action=access-tokens.grant&limit=1000", &k)
            .await;
        assert_eq!(audit.body["items"].as_array().unwrap().len(), 3);
        assert!(!audit.text.contains(&t3), "no token in the audit log");
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn fifty_parallel_grants_leave_exactly_one_working_token() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        let calls = (0..50).map(|_| s.post("/v1/users/jane/access-token/grant", &k, json!({})));
        let answers = futures::future::join_all(calls).await;
        let tokens: Vec<String> = answers
            .iter()
            .filter(|a| a.status == 200)
            .map(|a| a.body["access_token"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            tokens.len(),
            50,
            "{:?}",
            answers.iter().map(|a| a.status).collect::<Vec<_>>()
        );
        let mut working = 0;
        for t in &tokens {
            if s.get("/v1/whoami", t).await.status == 200 {
                working += 1;
            }
        }
        assert_eq!(working, 1, "at most one access token is active");
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn users_created_by_email() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        let a = s.post("/v1/users", &k, json!({"email": "Jane.Doe@Example.org", "account": "acme", "grant_access_token": true})).await;
        assert_eq!(a.status, 201, "{}", a.text);
        assert_eq!(a.body["username"], "jane.doe@example.org");
        assert_eq!(a.body["id"], "jane.doe@example.org");
        assert_eq!(a.body["email"], "Jane.Doe@Example.org");
        let token = a.body["access_token"].as_str().unwrap().to_string();
        assert_eq!(
            s.get("/v1/whoami", &token).await.body["username"],
            "jane.doe@example.org"
        );
        // Without a token, in the default user account (never the admin's).
        let a = s
            .post("/v1/users", &k, json!({"email": "bob@example.org"}))
            .await;
        assert_eq!(
            (a.body["account"].as_str(), &a.body["access_token"]),
            (Some("users"), &Value::Null)
        );
        assert_eq!(
            s.post("/v1/users", &k, json!({"email": "bob@example.org"}))
                .await
                .status,
            409
        );
        assert_eq!(
            s.post("/v1/users", &k, json!({"email": "not an email"}))
                .await
                .status,
            422
        );
        s.stop().await;
    }
);

const FORMULA: &str = "=HYPERLINK(\"http://x\")";

portcullis_tests::both!(
    async fn export_then_import_into_a_fresh_server_preserves_users_roles_accounts() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        s.account(&k, "beta", "service").await;
        s.user(
            &k,
            "acme",
            "jane",
            "jane passphrase 1",
            &["acme:read:*", "acme:write:doc/*"],
        )
        .await;
        s.user(&k, "beta", "bot", "bot passphrase 11", &[]).await;
        let a = s.post("/v1/accounts/acme/users", &k, json!({"username": "evil", "email": "evil@example.org", "roles": [FORMULA, "-2+3"]})).await;
        assert_eq!(a.status, 201, "{}", a.text);
        let (status, plain) = export(&s, &k, false).await;
        assert_eq!(status, 200);
        let mut lines = plain.lines();
        assert_eq!(
            lines.next(),
            Some("username,email,account,roles,created_at,access_token_status")
        );
        assert!(!plain.contains("argon2"), "no hashes unless asked");
        // Formula-looking fields are neutralised.
        let evil = plain.lines().find(|l| l.starts_with("evil")).unwrap();
        assert!(
            evil.contains("'=HYPERLINK") || evil.contains("\"'=HYPERLINK"),
            "{evil}"
        );
        let (status, with_hashes) = export(&s, &k, true).await;
        assert_eq!(status, 200);
        assert!(with_hashes
            .lines()
            .next()
            .unwrap()
            .ends_with(",password_hash"));
        assert!(with_hashes.contains("$argon2id$"));
        // A user account may not export.
        let jane = s.login("jane", "jane passphrase 1").await;
        assert_eq!(export(&s, &jane, false).await.0, 403);
        // Import into a fresh server: accounts, users, roles and passwords come back.
        let t = TestServer::configured().await;
        let tk = t.admin_key().await;
        let r = csv_import(&t, &tk, "skip", &with_hashes).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            (r.body["created"].as_u64(), r.body["skipped"].as_u64()),
            (Some(3), Some(1)),
            "admin exists: skipped; {}",
            r.text
        );
        let mut created: Vec<&str> = r.body["accounts_created"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        created.sort();
        assert_eq!(created, vec!["acme", "beta"]);
        let jane = t.get("/v1/users/jane", &tk).await;
        assert_eq!(
            jane.body["roles"],
            json!(["acme:read:*", "acme:write:doc/*"])
        );
        assert_eq!(jane.body["account"], "acme");
        let evil = t.get("/v1/users/evil", &tk).await;
        assert_eq!(
            evil.body["roles"],
            json!([FORMULA, "-2+3"]),
            "the escaping round-trips"
        );
        t.login("jane", "jane passphrase 1").await;
        t.stop().await;
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn conflict_modes_and_all_or_nothing() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        s.user(&k, "acme", "jane", "jane passphrase 1", &["old"])
            .await;
        let csv = "username,email,account,roles\njane,jane@acme.io,acme,new;roles\njoe,,acme,\n";
        // fail: one conflict refuses the whole file; nothing written.
        let r = csv_import(&s, &k, "fail", csv).await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert_eq!(
            r.body["errors"],
            json!([{"row": 2, "error": "username jane already exists"}])
        );
        assert_eq!(s.get("/v1/users/joe", &k).await.status, 404);
        // skip: jane untouched, joe created.
        let r = csv_import(&s, &k, "skip", csv).await;
        assert_eq!(
            (r.body["created"].as_u64(), r.body["skipped"].as_u64()),
            (Some(1), Some(1)),
            "{}",
            r.text
        );
        assert_eq!(
            s.get("/v1/users/jane", &k).await.body["roles"],
            json!(["old"])
        );
        // update: jane's email and roles change; joe (existing now) too.
        let r = csv_import(&s, &k, "update", csv).await;
        assert_eq!(r.body["updated"].as_u64(), Some(2), "{}", r.text);
        let jane = s.get("/v1/users/jane", &k).await;
        assert_eq!(
            (jane.body["email"].as_str(), &jane.body["roles"]),
            (Some("jane@acme.io"), &json!(["new", "roles"]))
        );
        s.login("jane", "jane passphrase 1").await;
        // A malformed row anywhere rejects the whole file and names its row.
        let bad = "username,email,account,roles\nann,,acme,\nBad Name,,acme,\ncid,nope,acme,\n";
        let r = csv_import(&s, &k, "skip", bad).await;
        assert_eq!(r.status, 422);
        let rows: Vec<u64> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["row"].as_u64().unwrap())
            .collect();
        assert_eq!(rows, vec![3, 4], "{}", r.text);
        assert_eq!(
            s.get("/v1/users/ann", &k).await.status,
            404,
            "nothing written"
        );
        // Hashes outside the bounds, duplicate rows, unknown columns, moves between accounts.
        let absurd = "username,account,password_hash\nx1,acme,\"$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo\"\n";
        let r = csv_import(&s, &k, "fail", absurd).await;
        assert!(r.text.contains("out of bounds"), "{}", r.text);
        let r = csv_import(&s, &k, "fail", "username,account\ndup,acme\ndup,acme\n").await;
        assert!(r.text.contains("also appears in row 2"), "{}", r.text);
        let r = csv_import(&s, &k, "fail", "username,account,password\nx,acme,secret\n").await;
        assert!(
            r.text.contains("unknown column \\\"password\\\""),
            "{}",
            r.text
        );
        s.account(&k, "beta", "user").await;
        let r = csv_import(&s, &k, "update", "username,account\njane,beta\n").await;
        assert!(r.text.contains("does not move users"), "{}", r.text);
        assert_eq!(
            csv_import(&s, &k, "sometimes", "username,account\n")
                .await
                .status,
            422
        );
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn ten_thousand_users_import_in_one_go() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        let mut csv = String::from("username,email,account,roles\n");
        for i in 0..10_000 {
            csv.push_str(&format!(
                "user{i:05},u{i}@example.org,team{},reader\n",
                i % 10
            ));
        }
        let r = csv_import(&s, &k, "fail", &csv).await;
        assert_eq!(r.status, 200, "{}", &r.text[..r.text.len().min(500)]);
        assert_eq!(r.body["created"].as_u64(), Some(10_000));
        assert_eq!(
            s.get("/v1/users/user09999", &k).await.body["account"],
            "team9"
        );
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn audit_log_filters_and_no_forged_lines() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        // A username with CR/LF cannot forge an entry.
        let forged = "nobody\nadmin login success";
        let a = s
            .call(
                "POST",
                "/v1/login",
                None,
                Some(json!({"username": forged, "password": "whatever pass"})),
            )
            .await;
        assert_eq!(a.status, 401);
        let all = s.get("/v1/audit?limit=1000", &k).await;
        assert_eq!(all.status, 200);
        let items = all.body["items"].as_array().unwrap();
        for e in items {
            for f in ["actor", "target", "detail"] {
                let v = e[f].as_str().unwrap();
                assert!(!v.contains('\n') && !v.contains('\r'), "{f}: {v:?}");
            }
        }
        // A name that cannot be a username is never stored: the entry names a placeholder.
        assert!(!all.text.contains("nobody"), "{}", all.text);
        assert!(items
            .iter()
            .any(|e| e["actor"] == "<invalid username>" && e["detail"] == "invalid username"));
        let logins = s
            .get("/v1/audit?action=login&actor=admin&limit=1000", &k)
            .await;
        assert!(logins.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"] == "login" && e["actor"] == "admin"));
        let future = s.get("/v1/audit?since=2999-01-01T00:00:00Z", &k).await;
        assert_eq!(future.body["items"], json!([]));
        assert_eq!(s.get("/v1/audit?since=yesterday", &k).await.status, 422);
        let page = s.get("/v1/audit?limit=2", &k).await;
        let next = page.body["next"].as_str().unwrap().to_string();
        let page2 = s.get(&format!("/v1/audit?limit=2&after={next}"), &k).await;
        assert!(page2.body["items"][0]["id"].as_i64() > page.body["items"][1]["id"].as_i64());
        s.account(&k, "acme", "user").await;
        let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        assert_eq!(s.get("/v1/audit", &jane).await.status, 403);
        s.stop().await;
    }
);
