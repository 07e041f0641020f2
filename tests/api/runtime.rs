//! Plugins at run time (§6): the plugin store, activation with self-check, hot swap under
//! load, shadow mode, decision cache and log, metrics.

use portcullis_plugin::programs::paths;
use portcullis_tests::{Answer, TestServer, ADMIN_PASSWORD, PATIENCE};
use serde_json::{json, Value};

async fn upload(s: &TestServer, key: &str, path: &str, name: &str) -> Answer {
    s.upload_plugin(key, path, name).await
}

async fn activate(s: &TestServer, key: &str, id: &str, settings: Value, mode: &str) -> Answer {
    s.post(
        &format!("/v1/plugins/{id}/activate"),
        key,
        json!({"settings": settings, "mode": mode}),
    )
    .await
}

fn hostile_denying(action: &str) -> Value {
    json!({"mode": "allow", "deny_actions": [action]})
}

portcullis_tests::both!(
    async fn upload_validates_and_stores_by_digest() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        let a = upload(&s, &k, paths::RBAC, "rbac").await;
        assert_eq!(a.status, 201, "{}", a.text);
        for f in ["id", "name", "digest", "size", "world_version"] {
            assert!(a.body.get(f).is_some(), "{f}: {}", a.text);
        }
        assert_eq!(a.body["world_version"], "portcullis:authorizer@0.2.0");
        // A component of the released world 0.1.0 is still accepted.
        let old = upload(&s, &k, paths::HOSTILE, "hostile").await;
        assert_eq!(old.status, 201, "{}", old.text);
        assert_eq!(old.body["world_version"], "portcullis:authorizer@0.1.0");
        let id = a.body["id"].as_str().unwrap().to_string();
        // The same bytes again: the same record, 200.
        let again = upload(&s, &k, paths::RBAC, "again").await;
        assert_eq!(
            (again.status, again.body["id"].as_str()),
            (200, Some(id.as_str()))
        );
        // Not a component, or not the world: 422 with the reason.
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.wasm");
        std::fs::write(&junk, b"\0asm junk").unwrap();
        let a = upload(&s, &k, junk.to_str().unwrap(), "junk").await;
        assert_eq!((a.status, a.code()), (422, "invalid_plugin"), "{}", a.text);
        let list = s.get("/v1/plugins", &k).await;
        let ids: Vec<&str> = list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids.len(),
            portcullis_plugin::BUILTINS.len() + 2,
            "the built-ins, rbac, hostile: {ids:?}"
        );
        assert!(
            ids[0] == "builtin:native" && ids.contains(&id.as_str()),
            "{ids:?}"
        );
        let one = s.get(&format!("/v1/plugins/{id}"), &k).await;
        assert_eq!(
            (one.body["active"].as_bool(), one.body["name"].as_str()),
            (Some(false), Some("rbac"))
        );
        assert_eq!(
            s.get("/v1/plugins/builtin:native", &k).await.body["active"],
            true
        );
        assert_eq!(s.get("/v1/plugins/p_nope", &k).await.status, 404);
        // Users may not upload.
        s.account(&k, "acme", "user").await;
        let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        assert_eq!(upload(&s, &jane, paths::RBAC, "x").await.status, 403);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn activation_configures_self_checks_persists_and_survives_restart() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        let rbac = upload(&s, &k, paths::RBAC, "rbac").await.body["id"]
            .as_str()
            .unwrap()
            .to_string();
        let hostile = upload(&s, &k, paths::HOSTILE, "hostile").await.body["id"]
            .as_str()
            .unwrap()
            .to_string();
        // configure fails: 409, nothing changes.
        let a = activate(&s, &k, &rbac, json!({"roles": 5}), "enforce").await;
        assert_eq!(
            (a.status, a.code()),
            (409, "plugin_configure_failed"),
            "{}",
            a.text
        );
        // A plugin that would lock the admin out: 409, nothing changes.
        let a = activate(&s, &k, &hostile, json!({"mode": "deny"}), "enforce").await;
        assert_eq!(
            (a.status, a.code()),
            (409, "self_check_failed"),
            "{}",
            a.text
        );
        assert_eq!(
            a.body["error"]["reasons"][0],
            "hostile plugin denies everything"
        );
        let a = activate(
            &s,
            &k,
            &hostile,
            hostile_denying("plugins.activate"),
            "enforce",
        )
        .await;
        assert_eq!(a.status, 409);
        assert_eq!(
            s.get("/v1/authorizer", &k).await.body["active"]["id"],
            "builtin:native"
        );
        // A good activation: rbac decides from now on.
        let a = activate(
            &s,
            &k,
            &rbac,
            json!({"roles": {"auditor": ["users.read"]}}),
            "enforce",
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["active"]["id"], rbac.as_str());
        s.account(&k, "acme", "user").await;
        let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        let d = s.get("/v1/whoami", &jane).await;
        assert_eq!(d.status, 403);
        assert!(
            d.text.contains("no role of jane grants users.read"),
            "{}",
            d.text
        );
        // The choice survives a restart (the database wins over the config file).
        let s = s.restart().await;
        let k = s.admin_key().await;
        let a = s.get("/v1/authorizer", &k).await;
        assert_eq!(a.body["active"]["id"], rbac.as_str(), "{}", a.text);
        assert_eq!(
            a.body["active"]["settings"],
            json!({"roles": {"auditor": ["users.read"]}})
        );
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn hot_swap_under_load_never_fails_or_misdecides_a_request() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        let hostile = upload(&s, &k, paths::HOSTILE, "hostile").await.body["id"]
            .as_str()
            .unwrap()
            .to_string();
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        const WORKERS: u64 = 4;
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        // Answers so far, by outcome: the swap loop waits on these, never on the clock.
        let answered = std::sync::Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let mut workers = Vec::new();
        for _ in 0..WORKERS {
            let (http, base, key, stop, answered) = (
                s.http.clone(),
                s.base.clone(),
                k.clone(),
                stop.clone(),
                answered.clone(),
            );
            workers.push(tokio::spawn(async move {
                let mut bad = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let r = http
                        .get(format!("{base}/v1/accounts/acme"))
                        .bearer_auth(&key)
                        .send()
                        .await;
                    match r {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let text = r.text().await.unwrap_or_default();
                            if status == 200 {
                                answered[0].fetch_add(1, Ordering::Relaxed);
                            } else if status == 403
                                && text.contains("hostile plugin denies accounts.read")
                            {
                                answered[1].fetch_add(1, Ordering::Relaxed);
                            } else {
                                bad.push(format!("{status} {text}"));
                            }
                        }
                        Err(e) => bad.push(e.to_string()),
                    }
                }
                bad
            }));
        }
        let total = || answered[0].load(Ordering::Relaxed) + answered[1].load(Ordering::Relaxed);
        for i in 0..20 {
            let a = if i % 2 == 0 {
                activate(
                    &s,
                    &k,
                    &hostile,
                    hostile_denying("accounts.read"),
                    "enforce",
                )
                .await
            } else {
                activate(&s, &k, "builtin:native", json!({}), "enforce").await
            };
            assert_eq!(a.status, 200, "swap {i}: {}", a.text);
            // Each worker has at most one request in flight at the swap, so once WORKERS + 1
            // more have been answered, at least one was asked of the new plugin.
            let seen = total();
            portcullis_tests::wait_until("requests answered after a swap", PATIENCE, || async {
                total() > seen + WORKERS
            })
            .await;
        }
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            let bad = w.await.unwrap();
            assert!(bad.is_empty(), "failed or mis-decided requests: {bad:?}");
        }
        let (allowed, denied) = (
            answered[0].load(Ordering::Relaxed),
            answered[1].load(Ordering::Relaxed),
        );
        assert!(
            allowed > 0 && denied > 0,
            "both plugins answered: {allowed} allowed, {denied} denied"
        );
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn shadow_disagreements_are_counted() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        let hostile = upload(&s, &k, paths::HOSTILE, "hostile").await.body["id"]
            .as_str()
            .unwrap()
            .to_string();
        let a = activate(&s, &k, &hostile, hostile_denying("accounts.read"), "shadow").await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["active"]["id"], "builtin:native");
        assert_eq!(a.body["shadow"]["id"], hostile.as_str());
        // 5 requests the shadow would deny (only the active answer counts: all 200) …
        for _ in 0..5 {
            assert_eq!(s.get("/v1/accounts/acme", &k).await.status, 200);
        }
        // … and 3 it agrees with.
        for _ in 0..3 {
            assert_eq!(s.get("/v1/whoami", &k).await.status, 200);
        }
        // The shadow answers in the background: wait until it has answered all eight.
        portcullis_tests::wait_until("the shadow answered all eight", PATIENCE, || async {
            let c = &s.state.authz.counts;
            let seen = c
                .shadow_agreements
                .load(std::sync::atomic::Ordering::Relaxed)
                + c.shadow_disagreements
                    .load(std::sync::atomic::Ordering::Relaxed);
            seen >= 8
        })
        .await;
        let a = s.get("/v1/authorizer", &k).await;
        assert_eq!(a.body["shadow_disagreements"], 5, "{}", a.text);
        let sample = &a.body["disagreement_samples"][0];
        assert_eq!(
            (
                sample["action"].as_str(),
                sample["active"].as_str(),
                sample["shadow"].as_str()
            ),
            (Some("accounts.read"), Some("allow"), Some("deny"))
        );
        // Promote it: enforce clears the shadow.
        let a = activate(
            &s,
            &k,
            &hostile,
            hostile_denying("accounts.read"),
            "enforce",
        )
        .await;
        assert_eq!(
            (a.body["active"]["id"].as_str(), &a.body["shadow"]),
            (Some(hostile.as_str()), &Value::Null)
        );
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn the_cache_reuses_decisions_within_ttl_and_sees_role_changes_at_once() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        s.user(&k, "acme", "rita", "rita passphrase 1", &["reader"])
            .await;
        let hostile = upload(&s, &k, paths::HOSTILE, "hostile").await.body["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            activate(&s, &k, &hostile, json!({"mode": "ttl"}), "enforce")
                .await
                .status,
            200
        );
        let ask = json!({"subject": {"username": "rita"}, "action": "read", "resource": {"kind": "document", "id": "1", "account": "acme"}});
        let first = s.post("/v1/authorize", &k, ask.clone()).await;
        let second = s.post("/v1/authorize", &k, ask.clone()).await;
        assert_eq!(
            first.body["reasons"], second.body["reasons"],
            "the second answer is the cached first one"
        );
        assert_ne!(first.body["decision_id"], second.body["decision_id"]);
        let metrics = s.call("GET", "/metrics", None, None).await.text;
        let hits: f64 = metrics
            .lines()
            .find(|l| l.starts_with("portcullis_decision_cache_hits_total"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        assert!(hits >= 1.0, "{metrics}");
        let log = s.get("/v1/decisions?username=rita&action=read", &k).await;
        let cached: Vec<bool> = log.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["cached"].as_bool().unwrap())
            .collect();
        assert_eq!(cached, vec![false, true]);
        // A role change is seen on the very next request.
        let p = s
            .call(
                "PATCH",
                "/v1/users/rita",
                Some(&k),
                Some(json!({"roles": ["writer"]})),
            )
            .await;
        assert_eq!(p.status, 200);
        let third = s.post("/v1/authorize", &k, ask.clone()).await;
        assert_ne!(
            third.body["reasons"], first.body["reasons"],
            "{}",
            third.text
        );
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn decision_log_and_metrics() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        assert_eq!(s.get("/v1/accounts", &jane).await.status, 403);
        let log = s.get("/v1/decisions?username=jane&outcome=deny", &k).await;
        assert_eq!(log.status, 200, "{}", log.text);
        let e = &log.body["items"][0];
        assert_eq!(
            (
                e["action"].as_str(),
                e["target"].as_str(),
                e["allowed"].as_bool()
            ),
            (Some("accounts.list"), Some("account/*"), Some(false))
        );
        assert_eq!(e["plugin"], "builtin:native");
        assert_eq!(e["plugin_digest"].as_str().unwrap().len(), 64);
        // Paging with the cursor.
        let page = s.get("/v1/decisions?limit=1", &k).await;
        let next = page.body["next"].as_str().unwrap().to_string();
        let after = s
            .get(&format!("/v1/decisions?limit=1&after={next}"), &k)
            .await;
        assert_ne!(page.body["items"][0]["seq"], after.body["items"][0]["seq"]);
        assert_eq!(s.get("/v1/decisions", &jane).await.status, 403);
        let m = s.call("GET", "/metrics", None, None).await.text;
        for needle in [
            "portcullis_http_requests_total{method=\"GET\",route=\"/v1/accounts\",status=\"403\"}",
            "portcullis_decisions_total{outcome=\"deny\"",
            "portcullis_logins_total{outcome=\"success\"}",
            "portcullis_http_request_duration_seconds_bucket",
            "portcullis_decision_duration_seconds_count",
        ] {
            assert!(m.contains(needle), "{needle} missing from\n{m}");
        }
        assert!(!m.contains("jane"), "no usernames in metric labels");
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn a_stored_reset_reaches_a_server_whose_plugin_denies_everything() {
        let s = TestServer::start_with(|c| {
            c.bootstrap.mode = portcullis_app::config::BootstrapMode::Configured;
            c.bootstrap.admin_password = ADMIN_PASSWORD.into();
            c.authorizer.plugin = paths::HOSTILE.into();
            c.authorizer.settings = json!({"mode": "deny"});
        })
        .await;
        let k = s.admin_key().await;
        assert_eq!(s.get("/v1/whoami", &k).await.status, 403);
        // What `portcullis server reset-authorizer` writes (tested end to end in host/cli/tests).
        s.state
            .store
            .set_authorizer_state(&portcullis_store::AuthorizerState {
                version: 0,
                active_id: "builtin:native".into(),
                active_settings: "{}".into(),
                active_since: portcullis_store::now_ms(),
                shadow_id: None,
                shadow_settings: None,
                shadow_since: None,
                changed_by: "system".into(),
            })
            .await
            .unwrap();
        portcullis_tests::wait_until("recovered after the reset", PATIENCE, || async {
            s.get("/v1/whoami", &k).await.status == 200
        })
        .await;
        s.stop().await;
    }
);
