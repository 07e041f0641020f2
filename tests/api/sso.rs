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
    json!({"iss": iss, "aud": aud, "sub": "123", "email": email, "iat": now, "exp": now + exp_offset})
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
            c.bootstrap.mode = portcullis_server::config::BootstrapMode::Configured;
            c.bootstrap.admin_password = ADMIN_PASSWORD.into();
            c.oidc = Some(portcullis_server::config::OidcConfig {
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
