//! §3.1: the three first-start modes.

use portcullis_app::config::{BootstrapMode, TimeLimit};
use portcullis_tests::{TestServer, ADMIN_PASSWORD};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

portcullis_tests::both!(
    async fn temporary_admin_random_password_forces_a_change() {
        let s = TestServer::start_with(|_| {}).await;
        let path = s.dir.path().join("data/initial-admin-password");
        let meta = std::fs::metadata(&path).expect("password file");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let temp = std::fs::read_to_string(&path).unwrap().trim().to_string();
        assert!(temp.len() >= 16);

        // Right password, no new one: 403 password_change_required.
        let a = s
            .call(
                "POST",
                "/v1/login",
                None,
                Some(json!({"username":"admin","password":temp})),
            )
            .await;
        assert_eq!(
            (a.status, a.code()),
            (403, "password_change_required"),
            "{}",
            a.text
        );
        // The new password must differ and follow the policy.
        let a = s
            .call(
                "POST",
                "/v1/login",
                None,
                Some(json!({"username":"admin","password":temp,"new_password":temp})),
            )
            .await;
        assert_eq!(a.status, 422, "{}", a.text);
        assert!(a.message().contains("new_password"));
        let a = s
            .call(
                "POST",
                "/v1/login",
                None,
                Some(json!({"username":"admin","password":temp,"new_password":"password1"})),
            )
            .await;
        assert_eq!(a.status, 422, "{}", a.text);
        // Change it at login: 200 with a login key.
        let a = s
            .call(
                "POST",
                "/v1/login",
                None,
                Some(json!({"username":"admin","password":temp,"new_password":ADMIN_PASSWORD})),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["user"]["must_change_password"], false);
        assert!(a.body["user"]["last_login_at"].is_string());
        assert!(a.body["expires_at"].is_string());
        let key = a.body["api_key"].as_str().unwrap().to_string();
        let me = s.get("/v1/whoami", &key).await;
        assert_eq!(me.status, 200);
        assert_eq!(me.body["username"], "admin");
        assert_eq!(me.body["account"]["type"], "admin");
        assert_eq!(me.body["key"]["kind"], "login");
        // The temporary password is dead.
        let a = s
            .call(
                "POST",
                "/v1/login",
                None,
                Some(json!({"username":"admin","password":temp})),
            )
            .await;
        assert_eq!(a.status, 401);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn temporary_admin_with_configured_password_like_iagctl() {
        let s = TestServer::start_with(|c| c.bootstrap.temporary_password = "admin".into()).await;
        assert!(!s.dir.path().join("data/initial-admin-password").exists());
        let a = s
            .call(
                "POST",
                "/v1/login",
                None,
                Some(json!({"username":"admin","password":"admin"})),
            )
            .await;
        assert_eq!((a.status, a.code()), (403, "password_change_required"));
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn configured_mode_logs_in_without_a_change() {
        let s = TestServer::configured().await;
        let key = s.admin_key().await;
        let me = s.get("/v1/whoami", &key).await;
        assert_eq!(me.body["account"]["email"], "admin@localhost");
        // A restart with users present creates nothing new and keeps the password.
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn the_system_account_is_invisible() {
        let s = TestServer::configured().await;
        let key = s.admin_key().await;
        let list = s.get("/v1/accounts", &key).await;
        let names: Vec<_> = list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, vec!["admin"]);
        assert_eq!(s.get("/v1/accounts/system", &key).await.status, 404);
        assert_eq!(s.get("/v1/accounts/system/users", &key).await.status, 404);
        let a = s
            .post(
                "/v1/accounts/system/users",
                &key,
                json!({"username":"sneaky","password":"a long enough pass"}),
            )
            .await;
        assert_eq!(a.status, 404, "{}", a.text);
        let a = s
            .put(
                "/v1/accounts/system/state",
                &key,
                json!({"state":"disabled"}),
            )
            .await;
        assert_eq!(a.status, 404);
        let a = s.post("/v1/accounts", &key, json!({"name":"system"})).await;
        assert_eq!((a.status, a.code()), (409, "already_exists"));
        s.stop().await;
    }
);

fn iact_server() -> impl FnOnce(&mut portcullis_app::config::Config) {
    |c| c.bootstrap.mode = BootstrapMode::Iact
}

portcullis_tests::both!(
    async fn iact_end_to_end() {
        let s = TestServer::start_with(iact_server()).await;
        // No user was created.
        let a = s
            .call(
                "POST",
                "/v1/login",
                None,
                Some(json!({"username":"admin","password":"admin"})),
            )
            .await;
        assert_eq!(a.status, 401);
        let file = s.dir.path().join("data/initial-admin-token");
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let token = std::fs::read_to_string(&file).unwrap().trim().to_string();

        let r = s.call("GET", "/admin/retrieve-iact", None, None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text, token);

        let good =
            json!({"username":"root","email":"root@example.org","password":"root passphrase 1"});
        // Missing or wrong token: 404 in PTFE's shape, whatever the body.
        let a = s
            .call(
                "POST",
                "/admin/initial-admin-user",
                None,
                Some(good.clone()),
            )
            .await;
        assert_eq!((a.status, a.body["status"].as_str()), (404, Some("error")));
        let a = s
            .call(
                "POST",
                "/admin/initial-admin-user?token=nope",
                None,
                Some(json!({"x":1})),
            )
            .await;
        assert_eq!(a.status, 404);
        // Malformed bodies: 422.
        let path = format!("/admin/initial-admin-user?token={token}");
        for bad in [
            json!({"username":"root","email":"root@example.org"}),
            json!({"username":"root","email":"root@example.org","password":12345678}),
            json!({"username":"root","email":"root@example.org","password":"password"}),
            json!({"username":"root","email":"not-an-email","password":"root passphrase 1"}),
            json!({"username":"Root!","email":"root@example.org","password":"root passphrase 1"}),
            json!({"username":"root","email":"root@example.org","password":"root passphrase 1","admin":true}),
        ] {
            let a = s.call("POST", &path, None, Some(bad.clone())).await;
            assert_eq!(a.status, 422, "{bad}: {}", a.text);
            assert_eq!(a.body["status"], "error");
            assert!(a.body["error"].is_string());
        }
        let a = s.call("POST", &path, None, Some(good.clone())).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["status"], "created");
        let api_key = a.body["token"].as_str().unwrap().to_string();
        let me = s.get("/v1/whoami", &api_key).await;
        assert_eq!(me.body["username"], "root");
        assert_eq!(me.body["account"]["name"], "admin");
        // The token is dead: redemption, retrieval and the file.
        let a = s
        .call(
            "POST",
            &path,
            None,
            Some(
                json!({"username":"root2","email":"r@example.org","password":"root passphrase 2"}),
            ),
        )
        .await;
        assert_eq!(a.status, 404);
        assert_eq!(
            s.call("GET", "/admin/retrieve-iact", None, None)
                .await
                .status,
            404
        );
        assert!(!file.exists());
        // The new admin can log in with its password.
        s.login("root", "root passphrase 1").await;
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn iact_fifty_parallel_redemptions_have_one_winner() {
        let s = TestServer::start_with(iact_server()).await;
        let token = std::fs::read_to_string(s.dir.path().join("data/initial-admin-token"))
            .unwrap()
            .trim()
            .to_string();
        let path = format!("/admin/initial-admin-user?token={token}");
        let calls = (0..50).map(|i| {
        let body = json!({"username": format!("admin{i}"), "email": format!("a{i}@example.org"), "password": "root passphrase 1"});
        s.call("POST", &path, None, Some(body))
    });
        let answers = futures::future::join_all(calls).await;
        let ok = answers.iter().filter(|a| a.status == 200).count();
        let not_found = answers.iter().filter(|a| a.status == 404).count();
        assert_eq!(
            (ok, not_found),
            (1, 49),
            "{:?}",
            answers.iter().map(|a| a.status).collect::<Vec<_>>()
        );
        let key = answers.iter().find(|a| a.status == 200).unwrap().body["token"]
            .as_str()
            .unwrap()
            .to_string();
        let users = s.get("/v1/users", &key).await;
        assert_eq!(users.body["items"].as_array().unwrap().len(), 1);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn iact_retrieval_is_limited_by_subnet_and_time() {
        let s = TestServer::start_with(|c| {
            c.bootstrap.mode = BootstrapMode::Iact;
            c.bootstrap.iact_subnets = vec!["10.0.0.0/8".parse().unwrap()];
        })
        .await;
        assert_eq!(
            s.call("GET", "/admin/retrieve-iact", None, None)
                .await
                .status,
            404
        );
        s.stop().await;

        let s = TestServer::start_with(|c| {
            c.bootstrap.mode = BootstrapMode::Iact;
            c.bootstrap.iact_time_limit_minutes = TimeLimit::Minutes(0);
        })
        .await;
        assert_eq!(
            s.call("GET", "/admin/retrieve-iact", None, None)
                .await
                .status,
            404
        );
        // The token itself still works from the host-side file.
        let token = std::fs::read_to_string(s.dir.path().join("data/initial-admin-token"))
            .unwrap()
            .trim()
            .to_string();
        let a = s
        .call(
            "POST",
            &format!("/admin/initial-admin-user?token={token}"),
            None,
            Some(json!({"username":"root","email":"r@example.org","password":"root passphrase 1"})),
        )
        .await;
        assert_eq!(a.status, 200);
        s.stop().await;

        let s = TestServer::start_with(|c| {
            c.bootstrap.mode = BootstrapMode::Iact;
            c.bootstrap.iact_time_limit_minutes = TimeLimit::Unlimited;
        })
        .await;
        assert_eq!(
            s.call("GET", "/admin/retrieve-iact", None, None)
                .await
                .status,
            200
        );
        s.stop().await;
    }
);

#[tokio::test]
async fn iact_is_refused_when_a_user_exists() {
    // A configured admin exists; switching the same data directory to iact mode creates
    // no token, and the endpoints answer 404.
    let dir = tempfile::tempdir().unwrap();
    let mut config = portcullis_app::config::Config::load(None, Vec::new(), Vec::new()).unwrap();
    config.data_dir = dir.path().join("data");
    config.bootstrap.mode = BootstrapMode::Configured;
    config.bootstrap.admin_password = ADMIN_PASSWORD.into();
    let state = portcullis_server::prepare(config.clone()).await.unwrap();
    state.store.close().await;
    config.bootstrap.mode = BootstrapMode::Iact;
    let s = TestServer::start_config(config, dir).await;
    assert!(!s.dir.path().join("data/initial-admin-token").exists());
    assert_eq!(
        s.call("GET", "/admin/retrieve-iact", None, None)
            .await
            .status,
        404
    );
    let a = s
        .call(
            "POST",
            "/admin/initial-admin-user?token=anything",
            None,
            Some(json!({"username":"x","email":"x@example.org","password":"root passphrase 1"})),
        )
        .await;
    assert_eq!(a.status, 404);
    s.admin_key().await;
    s.stop().await;
}
