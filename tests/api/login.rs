//! §3.2: login, logout, whoami, lockout, and identical failures.

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use portcullis_tests::{TestServer, ADMIN_PASSWORD};
use serde_json::json;
use std::time::Duration;

portcullis_tests::both!(
    async fn every_login_failure_looks_the_same() {
        let s = TestServer::start_with(|c| {
            c.bootstrap.mode = portcullis_app::config::BootstrapMode::Configured;
            c.bootstrap.admin_password = ADMIN_PASSWORD.into();
            c.auth.lockout_threshold = 2;
        })
        .await;
        let admin = s.admin_key().await;
        s.account(&admin, "acme", "user").await;
        s.user(&admin, "acme", "jane", "jane passphrase 1", &[])
            .await;
        s.user(&admin, "acme", "lock", "lock passphrase 1", &[])
            .await;
        // A user without a password.
        let a = s
            .post(
                "/v1/accounts/acme/users",
                &admin,
                json!({"username": "keyonly"}),
            )
            .await;
        assert_eq!(a.status, 201);
        for _ in 0..2 {
            assert_eq!(s.try_login("lock", "wrong password!").await.status, 401);
        }
        s.account(&admin, "off", "user").await;
        s.user(&admin, "off", "bob", "bob passphrase 1", &[]).await;
        assert_eq!(
            s.put(
                "/v1/accounts/off/state",
                &admin,
                json!({"state":"disabled"})
            )
            .await
            .status,
            200
        );

        let cases = [
            ("unknown user", s.try_login("nobody", "whatever pass").await),
            (
                "wrong password",
                s.try_login("jane", "not her passphrase").await,
            ),
            (
                "disabled account",
                s.try_login("bob", "bob passphrase 1").await,
            ),
            (
                "locked user",
                s.try_login("lock", "lock passphrase 1").await,
            ),
            (
                "no password",
                s.try_login("keyonly", "anything at all").await,
            ),
        ];
        let first = &cases[0].1;
        assert_eq!(first.status, 401);
        assert_eq!(first.code(), "invalid_credentials");
        for (what, a) in &cases {
            assert_eq!((a.status, &a.text), (first.status, &first.text), "{what}");
        }
        // The audit log says why.
        let entries = s
            .state
            .store
            .list_audit(0, 1000, &Default::default())
            .await
            .unwrap();
        for reason in [
            "unknown user",
            "wrong password",
            "account not enabled",
            "user locked",
            "no password set",
        ] {
            assert!(
                entries
                    .iter()
                    .any(|e| e.action == "login" && e.outcome == "failure" && e.detail == reason),
                "{reason}"
            );
        }
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn lockout_after_threshold_and_unlock_after_duration() {
        let s = TestServer::start_with(|c| {
            c.bootstrap.mode = portcullis_app::config::BootstrapMode::Configured;
            c.bootstrap.admin_password = ADMIN_PASSWORD.into();
            c.auth.lockout_threshold = 3;
            // Long enough that no machine is slow enough to see the lock end by itself
            // during the test; its end is shown by moving `locked_until` into the past.
            c.auth.lockout_duration = Duration::from_secs(3600);
        })
        .await;
        let admin = s.admin_key().await;
        s.account(&admin, "acme", "user").await;
        s.user(&admin, "acme", "jane", "jane passphrase 1", &[])
            .await;

        // A success resets the counter: 2 failures, success, 2 failures → not locked.
        for _ in 0..2 {
            s.try_login("jane", "bad bad bad").await;
        }
        s.login("jane", "jane passphrase 1").await;
        for _ in 0..2 {
            s.try_login("jane", "bad bad bad").await;
        }
        s.login("jane", "jane passphrase 1").await;

        // Three in a row lock the user: the right password is refused.
        for _ in 0..3 {
            assert_eq!(s.try_login("jane", "bad bad bad").await.status, 401);
        }
        assert_eq!(s.try_login("jane", "jane passphrase 1").await.status, 401);
        let d = s.get("/v1/users/jane", &admin).await;
        assert_eq!(d.body["locked"], true);
        // The lock lasts `lockout_duration` from the third failure…
        let locked_until = s
            .state
            .store
            .get_user("jane")
            .await
            .unwrap()
            .unwrap()
            .locked_until;
        let now = portcullis_store::now_ms();
        assert!(
            locked_until.is_some_and(|t| t > now + 3_000_000 && t <= now + 3_600_000),
            "locked until {locked_until:?}, now {now}"
        );
        // … and once that time has passed, the right password works again.
        s.sql(&format!(
            "UPDATE users SET locked_until = {} WHERE username = 'jane'",
            now - 1
        ))
        .await;
        s.login("jane", "jane passphrase 1").await;
        let d = s.get("/v1/users/jane", &admin).await;
        assert_eq!(d.body["locked"], false);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn logout_revokes_only_the_calling_key() {
        let s = TestServer::configured().await;
        let k1 = s.admin_key().await;
        let k2 = s.admin_key().await;
        assert_eq!(
            s.call("POST", "/v1/logout", Some(&k1), None).await.status,
            204
        );
        assert_eq!(s.get("/v1/whoami", &k1).await.status, 401);
        assert_eq!(s.get("/v1/whoami", &k2).await.status, 200);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn keys_only_in_the_authorization_header() {
        let s = TestServer::configured().await;
        let key = s.admin_key().await;
        assert_eq!(s.call("GET", "/v1/whoami", None, None).await.status, 401);
        let a = s
            .call("GET", &format!("/v1/whoami?api_key={key}"), None, None)
            .await;
        assert_eq!(a.status, 401, "a key in the query string is never read");
        let a = s.call("GET", "/v1/accounts?api_key=x", None, None).await;
        assert_eq!(a.status, 401);
        // Malformed, tampered and unknown keys.
        let mut tampered = key.clone().into_bytes();
        let i = tampered.len() - 10;
        tampered[i] = if tampered[i] == b'a' { b'b' } else { b'a' };
        let tampered = String::from_utf8(tampered).unwrap();
        for bad in [
            "garbage",
            "pcs_",
            &tampered,
            &portcullis_core::keys::generate().secret,
        ] {
            let a = s.get("/v1/whoami", bad).await;
            assert_eq!((a.status, a.code()), (401, "unauthorized"), "{bad}");
        }
        let r = s
            .http
            .get(format!("{}/v1/whoami", s.base))
            .header("Authorization", format!("Basic {key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn weaker_stored_hash_is_upgraded_at_login() {
        let s = TestServer::configured().await;
        let admin = s.admin_key().await;
        s.account(&admin, "acme", "user").await;
        s.user(&admin, "acme", "old", "old user passphrase", &[])
            .await;
        let weak = argon2::Argon2::new(
            argon2::Algorithm::Argon2i,
            argon2::Version::V0x13,
            argon2::Params::new(4096, 1, 1, None).unwrap(),
        )
        .hash_password(b"old user passphrase", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        s.state
            .store
            .set_password("old", &weak, false, None)
            .await
            .unwrap();
        s.login("old", "old user passphrase").await;
        let stored = s
            .state
            .store
            .get_user("old")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        s.login("old", "old user passphrase").await;
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn absurd_stored_hash_is_refused_not_verified() {
        let s = TestServer::configured().await;
        let admin = s.admin_key().await;
        s.account(&admin, "acme", "user").await;
        s.user(&admin, "acme", "evil", "evil user passphrase", &[])
            .await;
        let absurd = "$argon2id$v=19$m=4194304,t=100,p=1$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo";
        s.state
            .store
            .set_password("evil", absurd, false, None)
            .await
            .unwrap();
        let a = s.try_login("evil", "evil user passphrase").await;
        assert_eq!(a.status, 401);
        s.stop().await;
    }
);
