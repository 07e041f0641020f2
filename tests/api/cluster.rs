//! Two servers on one PostgreSQL database (§7): what one does, the other honours.

use portcullis_app::config::{BootstrapMode, Config};
use portcullis_plugin::programs::paths;
use portcullis_tests::{wait_until, with_backend, Backend, TestServer, ADMIN_PASSWORD, PATIENCE};
use serde_json::json;

fn configured(c: &mut Config) {
    c.bootstrap.mode = BootstrapMode::Configured;
    c.bootstrap.admin_password = ADMIN_PASSWORD.into();
}

/// Run `body` with two servers `a` and `b` sharing one fresh PostgreSQL database.
macro_rules! cluster {
    ($name:ident, |$a:ident, $b:ident| $body:block) => {
        cluster!($name, configured, |$a, $b| $body);
    };
    ($name:ident, $tweak:expr, |$a:ident, $b:ident| $body:block) => {
        #[tokio::test]
        async fn $name() {
            let Some(url) = portcullis_tests::postgres_url() else { return };
            with_backend(Backend::Postgres(url), async {
                let $a = TestServer::start_with($tweak).await;
                let $b = $a.start_beside($tweak).await;
                $body
                $b.stop().await;
                $a.stop().await;
            })
            .await
        }
    };
}

/// A server serves a verified key from memory for up to `auth.key_cache_ttl` (2 s by
/// default); what another server changes is seen after that, what it changes itself at
/// once. The tests wait far longer than the TTL so a loaded machine cannot fail them; a
/// key that is *never* refused still fails them.
async fn refused_soon(server: &TestServer, key: &str) {
    wait_until("the other server refuses the key", PATIENCE, || async {
        let status = server.get("/v1/whoami", key).await.status;
        assert!(status == 200 || status == 401, "{status}");
        status == 401
    })
    .await;
}

cluster!(
    revocation_deletion_and_disable_are_seen_by_the_other_server,
    |a, b| {
        let k = a.admin_key().await;
        a.account(&k, "acme", "user").await;
        let jane = a.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        let joe = a.user(&k, "acme", "joe", "joe passphrase 11", &[]).await;
        assert_eq!(b.get("/v1/whoami", &jane).await.status, 200);
        // A key revoked on A.
        assert_eq!(
            a.call("POST", "/v1/logout", Some(&jane), None).await.status,
            204
        );
        refused_soon(&b, &jane).await;
        // A user deleted on A.
        assert_eq!(b.get("/v1/whoami", &joe).await.status, 200);
        assert_eq!(a.delete("/v1/users/joe", &k).await.status, 204);
        refused_soon(&b, &joe).await;
        // An account disabled on A, enabled again on B.
        let jane = b.login("jane", "jane passphrase 1").await;
        assert_eq!(
            a.put("/v1/accounts/acme/state", &k, json!({"state": "disabled"}))
                .await
                .status,
            200
        );
        refused_soon(&b, &jane).await;
        assert_eq!(
            b.put("/v1/accounts/acme/state", &k, json!({"state": "enabled"}))
                .await
                .status,
            200
        );
        // A sees the account enabled again (within the key-cache bound).
        wait_until("A sees the account enabled", PATIENCE, || async {
            a.get("/v1/whoami", &jane).await.status == 200
        })
        .await;
    }
);

cluster!(
    a_plugin_activated_on_one_server_is_active_on_the_other_within_two_seconds,
    |a, b| {
        let k = a.admin_key().await;
        let bytes = std::fs::read(paths::HOSTILE).unwrap();
        let up = a
            .http
            .post(format!("{}/v1/plugins?name=hostile", a.base))
            .bearer_auth(&k)
            .body(bytes)
            .send()
            .await
            .unwrap();
        let id = up.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let settings = json!({"mode": "allow", "deny_actions": ["accounts.list"]});
        let r = a
            .post(
                &format!("/v1/plugins/{id}/activate"),
                &k,
                json!({"settings": settings}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(a.get("/v1/accounts", &k).await.status, 403);
        wait_until("B runs the plugin activated on A", PATIENCE, || async {
            b.get("/v1/authorizer", &k).await.body["active"]["id"] == id.as_str()
        })
        .await;
        assert_eq!(b.get("/v1/accounts", &k).await.status, 403);
    }
);

cluster!(
    lockout_counts_failures_on_both_servers,
    |c: &mut Config| {
        configured(c);
        c.auth.lockout_threshold = 4;
    },
    |a, b| {
        let k = a.admin_key().await;
        a.account(&k, "acme", "user").await;
        a.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        for s in [&a, &b, &a, &b] {
            let r = s.try_login("jane", "wrong wrong").await;
            assert_eq!(r.status, 401);
        }
        for s in [&a, &b] {
            let r = s.try_login("jane", "jane passphrase 1").await;
            assert_eq!(
                r.status, 401,
                "four failures across both servers lock the user"
            );
        }
    }
);

cluster!(
    fifty_iact_redemptions_split_across_two_servers_have_one_winner,
    |c: &mut Config| c.bootstrap.mode = BootstrapMode::Iact,
    |a, b| {
        // A created the token; B found it live and kept it (it holds no copy).
        let token = std::fs::read_to_string(a.dir.path().join("data/initial-admin-token"))
            .unwrap()
            .trim()
            .to_string();
        assert!(!b.dir.path().join("data/initial-admin-token").exists());
        let path = format!("/admin/initial-admin-user?token={token}");
        let calls = (0..50).map(|i| {
        let server = if i % 2 == 0 { &a } else { &b };
        let path = path.clone();
        async move {
            server
                .call("POST", &path, None, Some(json!({"username": format!("root{i}"), "email": format!("r{i}@example.org"), "password": "root passphrase 1"})))
                .await
        }
    });
        let answers = futures::future::join_all(calls).await;
        let ok = answers.iter().filter(|r| r.status == 200).count();
        let not_found = answers.iter().filter(|r| r.status == 404).count();
        assert_eq!(
            (ok, not_found),
            (1, 49),
            "{:?}",
            answers.iter().map(|r| r.status).collect::<Vec<_>>()
        );
    }
);

cluster!(
    parallel_guesses_across_two_servers_get_at_most_threshold_checks,
    |c: &mut Config| {
        configured(c);
        c.auth.lockout_threshold = 5;
    },
    |a, b| {
        let k = a.admin_key().await;
        a.account(&k, "acme", "user").await;
        a.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        let guesses = (0..40).map(|i| {
            let s = if i % 2 == 0 { &a } else { &b };
            s.call(
                "POST",
                "/v1/login",
                None,
                Some(json!({"username": "jane", "password": format!("guess number {i}")})),
            )
        });
        for r in futures::future::join_all(guesses).await {
            assert!(r.status == 401 || r.status == 503, "{}", r.text);
        }
        let audit = a.get("/v1/audit?actor=jane&limit=1000", &k).await;
        let checked = audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["detail"] == "wrong password")
            .count();
        assert!(
            checked <= 5,
            "{checked} password checks across both servers (threshold 5)"
        );
        assert_eq!(b.get("/v1/users/jane", &k).await.body["locked"], true);
    }
);
