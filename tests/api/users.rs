//! Users, passwords and personal keys (§2, §4).

use portcullis_tests::{TestServer, PATIENCE};
use serde_json::json;

portcullis_tests::both!(
    async fn create_describe_patch_and_unique_usernames() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        s.account(&k, "beta", "user").await;
        let a = s
        .post(
            "/v1/accounts/acme/users",
            &k,
            json!({"username":"jane@acme.io","password":"jane passphrase 1","email":"jane@acme.io","roles":["acme:read:*"],"attributes":{"team":"red"}}),
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.text);
        // Usernames are unique across accounts.
        let a = s
            .post(
                "/v1/accounts/beta/users",
                &k,
                json!({"username":"jane@acme.io"}),
            )
            .await;
        assert_eq!((a.status, a.code()), (409, "already_exists"));
        let a = s
            .post("/v1/accounts/nope/users", &k, json!({"username":"x"}))
            .await;
        assert_eq!(a.status, 404);
        let d = s.get("/v1/users/jane@acme.io", &k).await;
        assert_eq!(d.status, 200);
        for field in [
            "account",
            "email",
            "roles",
            "attributes",
            "created_at",
            "last_login_at",
            "must_change_password",
            "locked",
            "access_token_status",
            "key_count",
        ] {
            assert!(
                d.body.get(field).is_some(),
                "describe lacks {field}: {}",
                d.text
            );
        }
        assert_eq!(d.body["last_login_at"], serde_json::Value::Null);
        assert_eq!(d.body["key_count"], 0);
        s.login("jane@acme.io", "jane passphrase 1").await;
        let d = s.get("/v1/users/jane@acme.io", &k).await;
        assert!(d.body["last_login_at"].is_string());
        assert_eq!(d.body["key_count"], 1);
        // Patch: email cleared, roles replaced, attributes untouched.
        let a = s
            .call(
                "PATCH",
                "/v1/users/jane@acme.io",
                Some(&k),
                Some(json!({"email":null,"roles":["acme:*:*"]})),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["email"], serde_json::Value::Null);
        assert_eq!(a.body["roles"], json!(["acme:*:*"]));
        assert_eq!(a.body["attributes"], json!({"team":"red"}));
        let a = s
            .call(
                "PATCH",
                "/v1/users/jane@acme.io",
                Some(&k),
                Some(json!({"username":"x"})),
            )
            .await;
        assert_eq!(a.status, 422);
        let a = s
            .call(
                "PATCH",
                "/v1/users/ghost",
                Some(&k),
                Some(json!({"roles":[]})),
            )
            .await;
        assert_eq!(a.status, 404);
        // Bad input names the field.
        for (bad, field) in [
            (json!({"username":"UPPER"}), "username"),
            (json!({"username":"ok1","password":"short"}), "password"),
            (
                json!({"username":"ok2","password":"password123"}),
                "password",
            ),
            (
                json!({"username":"ok3","temporary_password":true}),
                "temporary_password",
            ),
            (json!({"username":"ok4","roles":["bad\nrole"]}), "roles[0]"),
            (json!({"username":"ok5","roles":"admin"}), "roles"),
        ] {
            let a = s.post("/v1/accounts/acme/users", &k, bad.clone()).await;
            assert_eq!(a.status, 422, "{bad}: {}", a.text);
            assert!(a.message().contains(field), "{bad}: {}", a.message());
        }
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn temporary_password_user_must_change_it() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        let a = s
            .post(
                "/v1/accounts/acme/users",
                &k,
                json!({"username":"tmp","password":"temporary pass 1","temporary_password":true}),
            )
            .await;
        assert_eq!(a.body["must_change_password"], true);
        // A key issued to it by an admin does not work until the password is changed.
        let key = s
            .post("/v1/users/tmp/keys", &k, json!({"name":"early"}))
            .await
            .body["key"]
            .as_str()
            .unwrap()
            .to_string();
        let a = s.get("/v1/whoami", &key).await;
        assert_eq!((a.status, a.code()), (403, "password_change_required"));
        let a = s
            .call(
                "POST",
                "/v1/login",
                None,
                Some(json!({"username":"tmp","password":"temporary pass 1"})),
            )
            .await;
        assert_eq!((a.status, a.code()), (403, "password_change_required"));
        let a = s
        .call("POST", "/v1/login", None, Some(json!({"username":"tmp","password":"temporary pass 1","new_password":"my own passphrase"})))
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        s.login("tmp", "my own passphrase").await;
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn deleting_a_user_kills_all_its_keys() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        let login = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        let personal = s
            .post("/v1/users/jane/keys", &login, json!({"name":"ci"}))
            .await
            .body["key"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(s.get("/v1/whoami", &personal).await.status, 200);
        assert_eq!(s.delete("/v1/users/jane", &k).await.status, 204);
        assert_eq!(s.get("/v1/whoami", &login).await.status, 401);
        assert_eq!(s.get("/v1/whoami", &personal).await.status, 401);
        assert_eq!(s.get("/v1/users/jane", &k).await.status, 404);
        assert_eq!(s.delete("/v1/users/jane", &k).await.status, 404);
        // The bootstrap admin is the recovery path and cannot be deleted.
        let a = s.delete("/v1/users/admin", &k).await;
        assert_eq!((a.status, a.code()), (409, "protected_user"));
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn set_password_for_self_and_by_an_admin() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        let jane1 = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        let jane2 = s.login("jane", "jane passphrase 1").await;
        // Self: the current password is required and must be right.
        let a = s
            .put(
                "/v1/users/jane/password",
                &jane1,
                json!({"password":"jane passphrase 2"}),
            )
            .await;
        assert_eq!((a.status, a.code()), (403, "current_password_required"));
        assert!(a.message().contains("current_password"));
        let a = s
            .put(
                "/v1/users/jane/password",
                &jane1,
                json!({"password":"jane passphrase 2","current_password":"wrong one!"}),
            )
            .await;
        assert_eq!((a.status, a.code()), (403, "invalid_current_password"));
        let a = s
            .put(
                "/v1/users/jane/password",
                &jane1,
                json!({"password":"jane passphrase 2","current_password":"jane passphrase 1"}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["keys_revoked"], 1);
        // The calling key survives; the other is revoked.
        assert_eq!(s.get("/v1/whoami", &jane1).await.status, 200);
        assert_eq!(s.get("/v1/whoami", &jane2).await.status, 401);
        s.login("jane", "jane passphrase 2").await;
        // Admin for another user, temporary: all of the user's keys die and a change is forced.
        let a = s
            .put(
                "/v1/users/jane/password",
                &k,
                json!({"password":"reset by admin 1","temporary":true}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(s.get("/v1/whoami", &jane1).await.status, 401);
        let a = s
            .call(
                "POST",
                "/v1/login",
                None,
                Some(json!({"username":"jane","password":"reset by admin 1"})),
            )
            .await;
        assert_eq!(a.code(), "password_change_required");
        // A user-account user may not set another account's user's password.
        s.account(&k, "other", "user").await;
        let bob = s.user(&k, "other", "bob", "bob passphrase 1", &[]).await;
        let a = s
            .put(
                "/v1/users/admin/password",
                &bob,
                json!({"password":"i am admin now!"}),
            )
            .await;
        assert_eq!((a.status, a.code()), (403, "forbidden"));
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn personal_keys_are_shown_once_and_revocable() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        let a = s
            .post(
                "/v1/users/jane/keys",
                &jane,
                json!({"name":"ci","expires_in":"30d"}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        let secret = a.body["key"].as_str().unwrap().to_string();
        let id = a.body["id"].as_str().unwrap().to_string();
        assert!(secret.starts_with("pcs_") && secret.contains(&id));
        assert!(a.body["expires_at"].is_string());
        assert_eq!(a.body["kind"], "personal");
        let list = s.get("/v1/users/jane/keys", &jane).await;
        assert!(!list.text.contains(&secret), "a list never shows secrets");
        assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
        let me = s.get("/v1/whoami", &secret).await;
        assert_eq!(me.body["key"]["id"], id.as_str());
        // last_used_at is recorded (asynchronously, at most once a minute).
        portcullis_tests::wait_until("last_used_at recorded", PATIENCE, || async {
            let list = s.get("/v1/users/jane/keys", &jane).await;
            list.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["id"] == id.as_str() && k["last_used_at"].is_string())
        })
        .await;
        for bad in [
            json!({"name":"x","expires_in":"soon"}),
            json!({"name":"x","expires_in":0}),
            json!({"name":""}),
            json!({}),
        ] {
            assert_eq!(
                s.post("/v1/users/jane/keys", &jane, bad.clone())
                    .await
                    .status,
                422,
                "{bad}"
            );
        }
        assert_eq!(
            s.delete(&format!("/v1/users/jane/keys/{id}"), &jane)
                .await
                .status,
            204
        );
        assert_eq!(s.get("/v1/whoami", &secret).await.status, 401);
        assert_eq!(
            s.delete("/v1/users/jane/keys/nokey", &jane).await.status,
            404
        );
        // Expired keys fail. A key lives `expires_in` seconds …
        let before = portcullis_store::now_ms();
        let a = s
            .post(
                "/v1/users/jane/keys",
                &jane,
                json!({"name":"brief","expires_in":3600}),
            )
            .await;
        let brief = a.body["key"].as_str().unwrap().to_string();
        let brief_id = a.body["id"].as_str().unwrap().to_string();
        let expires = chrono::DateTime::parse_from_rfc3339(a.body["expires_at"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        assert!(
            expires >= before + 3_600_000 && expires <= portcullis_store::now_ms() + 3_600_000,
            "{}",
            a.text
        );
        assert_eq!(s.get("/v1/whoami", &brief).await.status, 200);
        // … and is refused once that time has passed (moved into the past here rather
        // than waited for; a server may serve it from its key cache for a moment).
        s.sql(&format!(
            "UPDATE api_keys SET expires_at = {} WHERE id = '{brief_id}'",
            portcullis_store::now_ms() - 1
        ))
        .await;
        portcullis_tests::wait_until("the expired key is refused", PATIENCE, || async {
            s.get("/v1/whoami", &brief).await.status == 401
        })
        .await;
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn fifty_parallel_creations_of_one_username_have_one_winner() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        s.account(&k, "beta", "user").await;
        let calls = (0..50).map(|i| {
            let account = if i % 2 == 0 { "acme" } else { "beta" };
            let (s, k) = (&s, &k);
            async move {
                s.post(
                    &format!("/v1/accounts/{account}/users"),
                    k,
                    json!({"username":"same","email":format!("u{i}@example.org")}),
                )
                .await
            }
        });
        let answers = futures::future::join_all(calls).await;
        let created = answers.iter().filter(|a| a.status == 201).count();
        let conflicts = answers
            .iter()
            .filter(|a| a.status == 409 && a.code() == "already_exists")
            .count();
        assert_eq!(
            (created, conflicts),
            (1, 49),
            "{:?}",
            answers.iter().map(|a| a.status).collect::<Vec<_>>()
        );
        s.stop().await;
    }
);
