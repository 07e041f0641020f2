//! Personal API keys (§2): what `/v1/users/{username}/keys` reads and answers, and the key
//! part of `GET /v1/whoami`. Secrets appear only in [`KeyCreated`], once.

use super::schema;
use portcullis_app::keys::{Issued, Lifetime};
use portcullis_app::timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    Personal,
    Login,
    AccessToken,
    Session,
    Console,
}

impl From<portcullis_core::KeyKind> for KeyKind {
    fn from(k: portcullis_core::KeyKind) -> Self {
        use portcullis_core::KeyKind as K;
        match k {
            K::Personal => KeyKind::Personal,
            K::Login => KeyKind::Login,
            K::AccessToken => KeyKind::AccessToken,
            K::Session => KeyKind::Session,
            K::Console => KeyKind::Console,
        }
    }
}

/// A key as listed (never its secret).
#[derive(Debug, ToSchema, Serialize)]
pub struct Key {
    pub id: String,
    pub name: String,
    #[schema(inline)]
    pub kind: KeyKind,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl From<&portcullis_store::ApiKey> for Key {
    fn from(k: &portcullis_store::ApiKey) -> Self {
        Key {
            id: k.id.clone(),
            name: k.name.clone(),
            kind: k.kind.into(),
            created_at: timestamp(k.created_at),
            last_used_at: k.last_used_at.map(timestamp),
            expires_at: k.expires_at.map(timestamp),
            revoked_at: k.revoked_at.map(timestamp),
        }
    }
}

/// A new key with its secret.
#[derive(Debug, ToSchema, Serialize)]
pub struct KeyCreated {
    #[schema(inline)]
    #[serde(flatten)]
    pub record: Key,
    /// The secret, shown once.
    pub key: String,
}

impl From<&Issued> for KeyCreated {
    fn from(issued: &Issued) -> Self {
        KeyCreated {
            record: Key::from(&issued.key),
            key: issued.secret.clone(),
        }
    }
}

list!(KeyList of Key);

#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ExpiresIn {
    Seconds(u64),
    /// JSON has one number type: `86400.0` is an integer too; a fraction is refused.
    Float(f64),
    /// A duration such as `"30d"` or `"12h 30m"`.
    Text(String),
}

impl From<ExpiresIn> for Lifetime {
    fn from(e: ExpiresIn) -> Self {
        match e {
            ExpiresIn::Seconds(s) => Lifetime::Seconds(s),
            ExpiresIn::Float(f) => Lifetime::Float(f),
            ExpiresIn::Text(t) => Lifetime::Text(t),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 128
    )]
    pub name: String,
    /// Seconds, or a duration like `"30d"`; absent = never expires.
    #[schema(schema_with = schema::expires_in)]
    pub expires_in: Option<ExpiresIn>,
}
