//! Single sign-on (§3.3): ID tokens signed by a key the test generates; no network.

use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use portcullis_tests::{Answer, TestServer, ADMIN_PASSWORD};
use rand::RngCore;
use serde_json::{json, Value};

const ISSUER: &str = "https://idp.example.org";
const AUDIENCE: &str = "portcullis";

/// An Ed25519 key pair: the PKCS#8 DER of the private key and its public JWK.
struct Signer {
    der: Vec<u8>,
    jwk: Value,
}

fn signer(kid: &str) -> Signer {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    // PKCS#8 v1 for Ed25519: a fixed prefix and the 32-byte seed.
    let mut der = hex_prefix();
    der.extend_from_slice(&seed);
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public);
    Signer {
        der,
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}),
    }
}

fn hex_prefix() -> Vec<u8> {
    vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ]
}

fn token(s: &Signer, kid: &str, claims: Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.into());
    encode(&header, &claims, &EncodingKey::from_ed_der(&s.der)).unwrap()
}

fn claims(email: &str, iss: &str, aud: &str, exp_offset: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": iss, "aud": aud, "sub": "123", "email": email, "email_verified": true, "iat": now, "exp": now + exp_offset})
}

async fn sso_login(s: &TestServer, id_token: &str) -> Answer {
    s.call(
        "POST",
        "/v1/login/oidc",
        None,
        Some(json!({"id_token": id_token})),
    )
    .await
}

portcullis_tests::both!(
    async fn oidc_accepts_new_and_returning_users_and_refuses_bad_tokens() {
        let good = signer("k1");
        let other = signer("k1");
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, json!({"keys": [good.jwk]}).to_string()).unwrap();
        let s = TestServer::start_with(|c| {
            c.bootstrap.mode = portcullis_app::config::BootstrapMode::Configured;
            c.bootstrap.admin_password = ADMIN_PASSWORD.into();
            c.oidc = Some(portcullis_app::config::OidcConfig {
                issuer: ISSUER.into(),
                audience: AUDIENCE.into(),
                jwks_file: Some(jwks.clone()),
                jwks_url: None,
                account: "sso".into(),
                username_claim: "email".into(),
            });
        })
        .await;
        let k = s.admin_key().await;
        // A new user: created on the spot in the configured account.
        let a = sso_login(
            &s,
            &token(
                &good,
                "k1",
                claims("Ann@Example.org", ISSUER, AUDIENCE, 300),
            ),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(
            (
                a.body["user"]["username"].as_str(),
                a.body["user"]["account"].as_str()
            ),
            (Some("ann@example.org"), Some("sso"))
        );
        let key = a.body["api_key"].as_str().unwrap().to_string();
        assert_eq!(s.get("/v1/whoami", &key).await.body["key"]["kind"], "login");
        // Returning: the same user, no second account or user.
        let a = sso_login(
            &s,
            &token(
                &good,
                "k1",
                claims("ann@example.org", ISSUER, AUDIENCE, 300),
            ),
        )
        .await;
        assert_eq!(a.status, 200);
        let users = s.get("/v1/accounts/sso/users", &k).await;
        assert_eq!(users.body["items"].as_array().unwrap().len(), 1);
        // Refused: bad signature, wrong issuer, wrong audience, expired, garbage, HMAC.
        let cases = [
            (
                "bad signature",
                token(
                    &other,
                    "k1",
                    claims("ann@example.org", ISSUER, AUDIENCE, 300),
                ),
            ),
            (
                "wrong issuer",
                token(
                    &good,
                    "k1",
                    claims("ann@example.org", "https://evil.example", AUDIENCE, 300),
                ),
            ),
            (
                "wrong audience",
                token(
                    &good,
                    "k1",
                    claims("ann@example.org", ISSUER, "someone-else", 300),
                ),
            ),
            (
                "expired",
                token(
                    &good,
                    "k1",
                    claims("ann@example.org", ISSUER, AUDIENCE, -3600),
                ),
            ),
            (
                "unknown signing key",
                token(
                    &good,
                    "k2",
                    claims("ann@example.org", ISSUER, AUDIENCE, 300),
                ),
            ),
            ("malformed token", "not.a.jwt".to_string()),
            (
                "algorithm not allowed",
                encode(
                    &Header::new(Algorithm::HS256),
                    &claims("ann@example.org", ISSUER, AUDIENCE, 300),
                    &EncodingKey::from_secret(b"k"),
                )
                .unwrap(),
            ),
        ];
        for (reason, t) in &cases {
            let a = sso_login(&s, t).await;
            assert_eq!(
                (a.status, a.code()),
                (401, "invalid_token"),
                "{reason}: {}",
                a.text
            );
        }
        // The audit log says why each one failed, and holds no token.
        let audit = s.get("/v1/audit?action=login.oidc&limit=100", &k).await;
        let details: Vec<&str> = audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["detail"].as_str().unwrap())
            .collect();
        for (reason, t) in &cases {
            assert!(details.contains(reason), "{reason} not in {details:?}");
            assert!(!audit.text.contains(t.as_str()));
        }
        let created = s.get("/v1/audit?action=users.create&actor=sso", &k).await;
        assert_eq!(created.body["items"].as_array().unwrap().len(), 1);
        // A disabled account: refused.
        assert_eq!(
            s.put("/v1/accounts/sso/state", &k, json!({"state": "disabled"}))
                .await
                .status,
            200
        );
        let a = sso_login(
            &s,
            &token(
                &good,
                "k1",
                claims("ann@example.org", ISSUER, AUDIENCE, 300),
            ),
        )
        .await;
        assert_eq!(a.status, 401);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn oidc_is_404_when_not_configured() {
        let s = TestServer::configured().await;
        let a = sso_login(&s, "x.y.z").await;
        assert_eq!((a.status, a.code()), (404, "sso_not_configured"));
        s.stop().await;
    }
);

/// A server with `[oidc]` trusting `signer`'s key (account `sso`, username from `email`),
/// in `mode`, and its admin key when an admin exists.
async fn sso_server(
    signer: &Signer,
    mode: portcullis_app::config::BootstrapMode,
) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, json!({"keys": [signer.jwk]}).to_string()).unwrap();
    let s = TestServer::start_with(|c| {
        c.bootstrap.mode = mode;
        c.bootstrap.admin_password = ADMIN_PASSWORD.into();
        c.auth.lockout_threshold = 3;
        c.oidc = Some(portcullis_app::config::OidcConfig {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            jwks_file: Some(jwks.clone()),
            jwks_url: None,
            account: "sso".into(),
            username_claim: "email".into(),
        });
    })
    .await;
    (s, dir)
}

/// Claims for `email` with subject `sub`, valid for five minutes.
fn identity(email: &str, sub: &str) -> Value {
    let mut c = claims(email, ISSUER, AUDIENCE, 300);
    c["sub"] = json!(sub);
    c
}

async fn audit_details(s: &TestServer, k: &str) -> Vec<String> {
    s.get("/v1/audit?action=login.oidc&limit=1000", k)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap().to_string())
        .collect()
}

portcullis_tests::both!(
    async fn sso_takeover_of_an_existing_local_user_or_admin_is_refused() {
        use portcullis_app::config::BootstrapMode;
        let idp = signer("k1");
        let (s, _dir) = sso_server(&idp, BootstrapMode::Configured).await;
        let k = s.admin_key().await;
        // A local administrator whose username is an email the IdP also knows …
        s.user(&k, "admin", "boss@corp.example", "boss passphrase 1", &[])
            .await;
        // … and a user-account member who pre-creates the CFO's address with a password
        // she knows, hoping to read the keys the real CFO will create after SSO.
        s.account(&k, "acme", "user").await;
        let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        let a = s
            .post(
                "/v1/accounts/acme/users",
                &jane,
                json!({"username": "cfo@corp.example", "password": "mallory passphrase 1"}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        for (email, sub) in [
            ("boss@corp.example", "boss-sub"),
            ("cfo@corp.example", "cfo-sub"),
        ] {
            let a = sso_login(&s, &token(&idp, "k1", identity(email, sub))).await;
            assert_eq!(
                (a.status, a.code()),
                (401, "invalid_token"),
                "{email}: {}",
                a.text
            );
        }
        let details = audit_details(&s, &k).await;
        assert!(
            details
                .iter()
                .filter(|d| d.contains("taken by a user not linked"))
                .count()
                == 2,
            "{details:?}"
        );
        // Only an administrator may link the identity to a user, and jane may not.
        let link = json!({"issuer": ISSUER, "subject": "cfo-sub"});
        let a = s
            .put("/v1/users/cfo@corp.example/sso-link", &jane, link.clone())
            .await;
        assert_eq!((a.status, a.code()), (403, "forbidden"), "{}", a.text);
        let a = s
            .put("/v1/users/cfo@corp.example/sso-link", &k, link.clone())
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["sso"], link);
        // From then on that identity signs in as that user — whatever email it carries.
        let a = sso_login(
            &s,
            &token(&idp, "k1", identity("renamed@corp.example", "cfo-sub")),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["user"]["username"], "cfo@corp.example");
        let session = a.body["api_key"].as_str().unwrap().to_string();
        // The identity cannot be linked to a second user.
        let a = s.put("/v1/users/jane/sso-link", &k, link.clone()).await;
        assert_eq!((a.status, a.code()), (409, "conflict"), "{}", a.text);
        // Unlinked: refused again, and the session the identity opened is over.
        assert_eq!(s.get("/v1/whoami", &session).await.status, 200);
        assert_eq!(
            s.delete("/v1/users/cfo@corp.example/sso-link", &k)
                .await
                .status,
            204
        );
        assert_eq!(s.get("/v1/whoami", &session).await.status, 401);
        let a = sso_login(
            &s,
            &token(&idp, "k1", identity("cfo@corp.example", "cfo-sub")),
        )
        .await;
        assert_eq!(a.status, 401, "{}", a.text);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn sso_with_an_unverified_email_or_before_nbf_is_refused() {
        use portcullis_app::config::BootstrapMode;
        let idp = signer("k1");
        let (s, _dir) = sso_server(&idp, BootstrapMode::Configured).await;
        let k = s.admin_key().await;
        let mut unverified = identity("ann@example.org", "ann-sub");
        unverified["email_verified"] = json!(false);
        let mut missing = identity("ann@example.org", "ann-sub");
        missing.as_object_mut().unwrap().remove("email_verified");
        let mut early = identity("ann@example.org", "ann-sub");
        early["nbf"] = json!(chrono::Utc::now().timestamp() + 3600);
        let mut no_sub = identity("ann@example.org", "ann-sub");
        no_sub.as_object_mut().unwrap().remove("sub");
        for (what, claims) in [
            ("unverified", unverified),
            ("no email_verified", missing),
            ("nbf in an hour", early),
            ("no sub", no_sub),
        ] {
            let a = sso_login(&s, &token(&idp, "k1", claims)).await;
            assert_eq!(a.status, 401, "{what}: {}", a.text);
        }
        let details = audit_details(&s, &k).await;
        assert!(
            details
                .iter()
                .filter(|d| d.contains("email_verified"))
                .count()
                == 2,
            "{details:?}"
        );
        assert!(details.iter().any(|d| d.contains("nbf")), "{details:?}");
        assert!(details.iter().any(|d| d.contains("sub")), "{details:?}");
        assert_eq!(s.get("/v1/users/ann@example.org", &k).await.status, 404);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn sso_sign_in_does_not_clear_a_password_lockout() {
        use portcullis_app::config::BootstrapMode;
        let idp = signer("k1");
        let (s, _dir) = sso_server(&idp, BootstrapMode::Configured).await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        let link = json!({"issuer": ISSUER, "subject": "jane-sub"});
        assert_eq!(s.put("/v1/users/jane/sso-link", &k, link).await.status, 200);
        for _ in 0..3 {
            let a = s.try_login("jane", "wrong wrong").await;
            assert_eq!(a.status, 401);
        }
        assert_eq!(s.get("/v1/users/jane", &k).await.body["locked"], true);
        let a = sso_login(
            &s,
            &token(&idp, "k1", identity("jane@acme.example", "jane-sub")),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        // Still locked for passwords: the right one is refused.
        assert_eq!(s.get("/v1/users/jane", &k).await.body["locked"], true);
        let a = s.try_login("jane", "jane passphrase 1").await;
        assert_eq!(a.status, 401);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn sso_before_the_first_admin_would_kill_the_iact_and_is_refused() {
        use portcullis_app::config::BootstrapMode;
        let idp = signer("k1");
        let (s, _dir) = sso_server(&idp, BootstrapMode::Iact).await;
        let a = sso_login(
            &s,
            &token(&idp, "k1", identity("ann@example.org", "ann-sub")),
        )
        .await;
        assert_eq!(a.status, 401, "{}", a.text);
        // The bootstrap still works: the token is served and redeemed.
        let t = s.call("GET", "/admin/retrieve-iact", None, None).await;
        assert_eq!(t.status, 200, "{}", t.text);
        let a = s
            .call(
                "POST",
                &format!("/admin/initial-admin-user?token={}", t.text.trim()),
                None,
                Some(json!({"username": "root", "email": "root@example.org", "password": "root passphrase 1"})),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        let k = a.body["token"].as_str().unwrap().to_string();
        let details = audit_details(&s, &k).await;
        assert!(
            details
                .iter()
                .any(|d| d.contains("no administrator exists yet")),
            "{details:?}"
        );
        // Once an admin exists, SSO works, and the dead token is no longer served.
        let a = sso_login(
            &s,
            &token(&idp, "k1", identity("ann@example.org", "ann-sub")),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(
            s.call("GET", "/admin/retrieve-iact", None, None)
                .await
                .status,
            404
        );
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn sso_never_creates_users_outside_a_user_account() {
        use portcullis_app::config::BootstrapMode;
        let idp = signer("k1");
        let (s, _dir) = sso_server(&idp, BootstrapMode::Configured).await;
        let k = s.admin_key().await;
        // Someone made `sso` a service account (all powers under the native rules).
        s.account(&k, "sso", "service").await;
        let a = sso_login(
            &s,
            &token(&idp, "k1", identity("ann@example.org", "ann-sub")),
        )
        .await;
        assert_eq!(a.status, 401, "{}", a.text);
        assert_eq!(s.get("/v1/users/ann@example.org", &k).await.status, 404);
        let details = audit_details(&s, &k).await;
        assert!(
            details.iter().any(|d| d.contains("is a service account")),
            "{details:?}"
        );
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn sso_users_sharing_the_sso_account_cannot_take_each_other_over() {
        use portcullis_app::config::BootstrapMode;
        let idp = signer("k1");
        let (s, _dir) = sso_server(&idp, BootstrapMode::Configured).await;
        let k = s.admin_key().await;
        let mut keys = Vec::new();
        for (email, sub) in [
            ("mallory@corp.example", "m-sub"),
            ("cfo@corp.example", "cfo-sub"),
        ] {
            let a = sso_login(&s, &token(&idp, "k1", identity(email, sub))).await;
            assert_eq!(a.status, 200, "{}", a.text);
            keys.push(a.body["api_key"].as_str().unwrap().to_string());
        }
        let mallory = &keys[0];
        // Both are members of `sso`, a user account: the native rules would let a member
        // manage its fellows — not a user who signs in with SSO.
        let a = s
            .post(
                "/v1/users/cfo@corp.example/keys",
                mallory,
                json!({"name": "mine"}),
            )
            .await;
        assert_eq!((a.status, a.code()), (403, "forbidden"), "{}", a.text);
        let a = s
            .put(
                "/v1/users/cfo@corp.example/password",
                mallory,
                json!({"password": "mallory knows this one"}),
            )
            .await;
        assert_eq!((a.status, a.code()), (403, "forbidden"), "{}", a.text);
        let a = s.delete("/v1/users/cfo@corp.example", mallory).await;
        assert_eq!((a.status, a.code()), (403, "forbidden"), "{}", a.text);
        // Each still manages itself; an administrator manages both.
        let a = s
            .post(
                "/v1/users/cfo@corp.example/keys",
                &keys[1],
                json!({"name": "cli"}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        let a = s
            .post(
                "/v1/users/cfo@corp.example/keys",
                &k,
                json!({"name": "by-admin"}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        s.stop().await;
    }
);
