//! Recently verified keys and subjects come from memory (no database round trip), yet
//! changes made through the server are seen on the very next request, and changes made
//! behind its back (another server or process) within `auth.key_cache_ttl`.

use portcullis_tests::TestServer;
use serde_json::json;

fn key_lookups(metrics: &str, from: &str) -> f64 {
    metrics
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "portcullis_key_lookups_total{{outcome=\"{from}\"}}"
            ))
        })
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

portcullis_tests::both!(
    async fn a_busy_key_is_served_from_memory_and_revocation_is_still_immediate() {
        // A TTL no run of this test outlasts, however slow the machine: every repeat must
        // come from memory, and revocation through this server must still be immediate.
        let s = TestServer::start_with(|c| {
            c.bootstrap.mode = portcullis_app::config::BootstrapMode::Configured;
            c.bootstrap.admin_password = portcullis_tests::ADMIN_PASSWORD.into();
            c.auth.key_cache_ttl = std::time::Duration::from_secs(3600);
        })
        .await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        let before = s.call("GET", "/metrics", None, None).await.text;
        for _ in 0..10 {
            assert_eq!(s.get("/v1/whoami", &jane).await.status, 200);
        }
        let after = s.call("GET", "/metrics", None, None).await.text;
        let memory = key_lookups(&after, "memory") - key_lookups(&before, "memory");
        let store = key_lookups(&after, "store") - key_lookups(&before, "store");
        assert!(
            memory >= 9.0 && store <= 1.0,
            "memory {memory}, store {store}: {after}"
        );

        // Revoked by an admin on this server: refused on the next request.
        let id = s.get("/v1/whoami", &jane).await.body["key"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            s.delete(&format!("/v1/users/jane/keys/{id}"), &k)
                .await
                .status,
            204
        );
        assert_eq!(s.get("/v1/whoami", &jane).await.status, 401);

        // The account disabled: refused at once; enabled: accepted at once.
        let jane = s.login("jane", "jane passphrase 1").await;
        assert_eq!(s.get("/v1/whoami", &jane).await.status, 200);
        let set =
            |state: &'static str| s.put("/v1/accounts/acme/state", &k, json!({"state": state}));
        assert_eq!(set("disabled").await.status, 200);
        assert_eq!(s.get("/v1/whoami", &jane).await.status, 401);
        assert_eq!(set("enabled").await.status, 200);
        assert_eq!(s.get("/v1/whoami", &jane).await.status, 200);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn an_authorize_subject_role_change_is_seen_on_the_next_decision() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        s.user(&k, "acme", "rita", "rita passphrase 1", &["acme:read:*"])
            .await;
        let ask = || {
            s.post(
                "/v1/authorize",
                &k,
                json!({"subject":{"username":"rita"},"action":"read","resource":{"kind":"document","id":"42","account":"acme"}}),
            )
        };
        assert_eq!(ask().await.body["decision"], "allow");
        assert_eq!(ask().await.body["decision"], "allow");
        let a = s
            .call(
                "PATCH",
                "/v1/users/rita",
                Some(&k),
                Some(json!({"roles": []})),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(ask().await.body["decision"], "deny");
        s.stop().await;
    }
);

/// A revocation written to the database by another process (here: a second `Store` on the
/// same database, as `portcullis server recover-admin-user` does) is seen within the TTL.
#[tokio::test]
async fn a_revocation_by_another_process_is_seen_within_the_ttl() {
    let s = TestServer::configured().await;
    let k = s.admin_key().await;
    s.account(&k, "acme", "user").await;
    let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
    assert_eq!(s.get("/v1/whoami", &jane).await.status, 200);
    let other = portcullis_store::Store::connect(&s.state.config.database_url())
        .await
        .unwrap();
    let id = s.get("/v1/whoami", &jane).await.body["key"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    other.revoke_key("jane", &id).await.unwrap();
    portcullis_tests::wait_until(
        "a revocation by another process is seen",
        portcullis_tests::PATIENCE,
        || async { s.get("/v1/whoami", &jane).await.status == 401 },
    )
    .await;
    s.stop().await;
}
