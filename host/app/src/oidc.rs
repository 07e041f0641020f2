//! Single sign-on (§3.3): verify an OpenID Connect ID token against the configured issuer's
//! JWKS (signature, `iss`, `aud`, `exp`, `nbf`) and name the identity it is for: the pair
//! (issuer, `sub`), plus the username a first sign-in would create. With
//! `username_claim = "email"` the email must be verified (`email_verified: true`).

use crate::config::OidcConfig;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{decode, decode_header, errors::ErrorKind, Algorithm, DecodingKey, Validation};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Why a token was refused (for the audit log; the client always gets the same 401).
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    UnknownKey,
    Algorithm,
    Signature,
    Issuer,
    Audience,
    Expired,
    NotYetValid,
    Claim(String),
    EmailNotVerified,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Malformed => f.write_str("malformed token"),
            Refused::UnknownKey => f.write_str("unknown signing key"),
            Refused::Algorithm => f.write_str("algorithm not allowed"),
            Refused::Signature => f.write_str("bad signature"),
            Refused::Issuer => f.write_str("wrong issuer"),
            Refused::Audience => f.write_str("wrong audience"),
            Refused::Expired => f.write_str("expired"),
            Refused::NotYetValid => f.write_str("not valid yet (nbf)"),
            Refused::Claim(c) => write!(f, "claim {c} missing or not a valid username"),
            Refused::EmailNotVerified => {
                f.write_str("email_verified is not true (username_claim = \"email\")")
            }
        }
    }
}

/// The identity a verified token names.
#[derive(Debug)]
pub struct Identity {
    /// (issuer, `sub`): what a sign-in is resolved through.
    pub link: portcullis_store::SsoLink,
    /// The username a first sign-in creates (from `username_claim`).
    pub username: String,
    pub email: Option<String>,
}

pub struct Sso {
    pub config: OidcConfig,
    keys: RwLock<JwkSet>,
    last_fetch: RwLock<Option<Instant>>,
}

/// Refetch a JWKS URL at most this often when tokens name unknown keys.
const REFETCH_EVERY: Duration = Duration::from_secs(30);

fn fetch(url: &str) -> Result<JwkSet, String> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let text = agent
        .get(url)
        .call()
        .map_err(|e| e.to_string())?
        .into_string()
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("not a JWKS document: {e}"))
}

impl Sso {
    pub fn new(config: OidcConfig) -> anyhow::Result<Sso> {
        let keys = match (&config.jwks_file, &config.jwks_url) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("oidc.jwks_file {}: {e}", path.display()))?;
                serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("oidc.jwks_file {}: not a JWKS document: {e}", path.display()))?
            }
            (None, Some(url)) => fetch(url).unwrap_or_else(|e| {
                tracing::warn!(url = %url, error = %e, "could not fetch the JWKS; will retry when a token arrives");
                JwkSet { keys: Vec::new() }
            }),
            (None, None) => JwkSet { keys: Vec::new() },
        };
        Ok(Sso {
            config,
            keys: RwLock::new(keys),
            last_fetch: RwLock::new(None),
        })
    }

    fn find(&self, kid: Option<&str>) -> Option<Jwk> {
        let keys = self.keys.read().expect("jwks lock");
        match kid {
            Some(k) => keys.find(k).cloned(),
            None if keys.keys.len() == 1 => keys.keys.first().cloned(),
            None => None,
        }
    }

    async fn key_for(&self, kid: Option<&str>) -> Option<Jwk> {
        if let Some(k) = self.find(kid) {
            return Some(k);
        }
        // An unknown key with a JWKS URL: the issuer may have rotated keys.
        let url = self.config.jwks_url.clone()?;
        {
            // Check and claim the refetch in one critical section: of many tokens naming
            // an unknown key at once, exactly one fetches (single flight).
            let mut last = self.last_fetch.write().expect("fetch lock");
            if last.is_some_and(|t| t.elapsed() < REFETCH_EVERY) {
                return None;
            }
            *last = Some(Instant::now());
        }
        match tokio::task::spawn_blocking(move || fetch(&url)).await {
            Ok(Ok(set)) => *self.keys.write().expect("jwks lock") = set,
            Ok(Err(e)) => tracing::warn!(error = %e, "refetching the JWKS failed"),
            Err(_) => {}
        }
        self.find(kid)
    }

    /// Verify an ID token and return the identity it names.
    pub async fn verify(&self, token: &str) -> Result<Identity, Refused> {
        let header = decode_header(token).map_err(|_| Refused::Malformed)?;
        // Only asymmetric algorithms: a public JWK used as an HMAC secret would let anyone
        // sign tokens.
        if matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(Refused::Algorithm);
        }
        let jwk = self
            .key_for(header.kid.as_deref())
            .await
            .ok_or(Refused::UnknownKey)?;
        if let Some(alg) = jwk.common.key_algorithm {
            if alg.to_string() != format!("{:?}", header.alg) {
                return Err(Refused::Algorithm);
            }
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| Refused::UnknownKey)?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&self.config.issuer]);
        v.set_audience(&[&self.config.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.validate_nbf = true;
        v.leeway = 30;
        let data = decode::<serde_json::Value>(token, &key, &v).map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => Refused::Signature,
            ErrorKind::InvalidIssuer => Refused::Issuer,
            ErrorKind::InvalidAudience => Refused::Audience,
            ErrorKind::ExpiredSignature => Refused::Expired,
            ErrorKind::ImmatureSignature => Refused::NotYetValid,
            ErrorKind::InvalidAlgorithm => Refused::Algorithm,
            ErrorKind::MissingRequiredClaim(c) if c == "exp" => Refused::Expired,
            ErrorKind::MissingRequiredClaim(c) => Refused::Claim(c.clone()),
            _ => Refused::Malformed,
        })?;
        let subject = data
            .claims
            .get("sub")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty() && s.len() <= 255)
            .ok_or_else(|| Refused::Claim("sub".into()))?
            .to_string();
        let claim = &self.config.username_claim;
        if claim == "email" {
            let verified = matches!(
                data.claims.get("email_verified"),
                Some(serde_json::Value::Bool(true))
            ) || matches!(data.claims.get("email_verified"), Some(serde_json::Value::String(s)) if s == "true");
            if !verified {
                return Err(Refused::EmailNotVerified);
            }
        }
        let username = data
            .claims
            .get(claim)
            .and_then(|v| v.as_str())
            .map(str::to_lowercase)
            .ok_or_else(|| Refused::Claim(claim.clone()))?;
        portcullis_core::names::validate_username(&username)
            .map_err(|_| Refused::Claim(claim.clone()))?;
        let email = data
            .claims
            .get("email")
            .and_then(|v| v.as_str())
            .filter(|e| portcullis_core::names::validate_email(e).is_ok())
            .map(String::from);
        Ok(Identity {
            link: portcullis_store::SsoLink {
                issuer: self.config.issuer.clone(),
                subject,
            },
            username,
            email,
        })
    }
}
