//! Hostile plugins behind the HTTP API: each failure is a deny naming it, the server keeps
//! serving, and the next request works. Plugins that cannot load stop the start.

use portcullis_plugin::programs::paths;
use portcullis_tests::{TestServer, ADMIN_PASSWORD};
use serde_json::json;

async fn hostile_server(mode: &str) -> TestServer {
    let mode = mode.to_string();
    TestServer::start_with(move |c| {
        c.bootstrap.mode = portcullis_app::config::BootstrapMode::Configured;
        c.bootstrap.admin_password = ADMIN_PASSWORD.into();
        c.authorizer.plugin = paths::HOSTILE.into();
        c.authorizer.settings = json!({"mode": mode, "misbehave_on": ["accounts.create"]});
        // Each mode must meet the limit it is about, however busy the machine: only the
        // endless loop gets a short deadline; the others get one they never reach.
        c.authorizer.timeout_ms = if mode == "loop" { 30 } else { 30_000 };
        c.authorizer.memory_limit_mib = 16;
    })
    .await
}

portcullis_tests::both!(
    async fn each_misbehaviour_is_a_named_deny_and_the_server_keeps_serving() {
        for (mode, code) in [
            ("loop", "plugin_timeout"),
            ("alloc", "plugin_memory_limit"),
            ("alloc-steps", "plugin_memory_limit"),
            ("trap", "plugin_trap"),
            ("stack", "plugin_"),
            ("garbage", "plugin_malformed"),
        ] {
            let s = hostile_server(mode).await;
            let k = s.admin_key().await;
            for _ in 0..2 {
                let a = s.post("/v1/accounts", &k, json!({"name":"acme"})).await;
                assert_eq!(
                    (a.status, a.code()),
                    (403, "forbidden"),
                    "{mode}: {}",
                    a.text
                );
                let reason = a.body["error"]["reasons"][0]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                assert!(reason.starts_with(code), "{mode}: {reason}");
                // The next request on the same server succeeds.
                let ok = s.get("/v1/whoami", &k).await;
                assert_eq!(ok.status, 200, "{mode}: {}", ok.text);
            }
            s.stop().await;
        }
    }
);

#[tokio::test]
async fn plugins_that_cannot_load_stop_the_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm").unwrap();
    for (plugin, settings, expect) in [
        (
            paths::HOSTILE.to_string(),
            json!({"mode": "fail-configure"}),
            "configure failed",
        ),
        (
            junk.display().to_string(),
            json!({}),
            "not a WebAssembly component",
        ),
        (
            paths::NATIVE.to_string(),
            json!({"unexpected": true}),
            "takes no settings",
        ),
        ("builtin:nope".to_string(), json!({}), "no built-in plugin"),
        (
            "/nonexistent/plugin.wasm".to_string(),
            json!({}),
            "reading the component",
        ),
    ] {
        let mut config =
            portcullis_app::config::Config::load(None, Vec::new(), Vec::new()).unwrap();
        config.data_dir = dir.path().join("data");
        config.authorizer.plugin = plugin.clone();
        config.authorizer.settings = settings;
        let err = portcullis_server::prepare(config)
            .await
            .err()
            .unwrap_or_else(|| panic!("{plugin} loaded"));
        let text = format!("{err:#}");
        assert!(text.contains(expect), "{plugin}: {text}");
    }
}

portcullis_tests::both!(
    async fn a_plugin_from_a_path_with_settings() {
        let s = TestServer::start_with(|c| {
        c.bootstrap.mode = portcullis_app::config::BootstrapMode::Configured;
        c.bootstrap.admin_password = ADMIN_PASSWORD.into();
        c.authorizer.plugin = paths::RBAC.into();
        c.authorizer.settings = json!({"roles": {"auditor": ["users.read", "users.list"]}, "deny": [{"action": "accounts.delete", "reason": "never"}]});
    })
    .await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        let ann = s
            .user(&k, "acme", "ann", "ann passphrase 1", &["auditor"])
            .await;
        assert_eq!(
            s.get("/v1/users/admin", &ann).await.status,
            200,
            "the auditor role reads any user"
        );
        let a = s.get("/v1/accounts/acme", &ann).await;
        assert_eq!(a.status, 403);
        assert!(
            a.text.contains("no role of ann grants accounts.read"),
            "{}",
            a.text
        );
        assert_eq!(
            s.put("/v1/accounts/acme/state", &k, json!({"state":"disabled"}))
                .await
                .status,
            200
        );
        let a = s.delete("/v1/accounts/acme", &k).await;
        assert!(
            a.text.contains("deny rule accounts.delete: never"),
            "{}",
            a.text
        );
        s.stop().await;
    }
);
