//! Configuration: defaults ← TOML file ← `PORTCULLIS_<SECTION>_<KEY>` environment
//! variables ← command-line flags. Unknown keys anywhere are an error that names the key.

use anyhow::{bail, Context};
use ipnet::IpNet;
use serde::{de, Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; empty = `sqlite://<data_dir>/portcullis.db`.
    pub database_url: String,
    /// How long a request waits for a database connection before it is answered
    /// `503 store_unavailable` (the database is down or unreachable): requests fail fast
    /// instead of hanging while it is away.
    #[serde(with = "humantime_serde_compat")]
    pub database_timeout: Duration,
    /// `text` (human-readable) or `json`.
    pub log_format: LogFormat,
    /// Largest JSON body accepted, in bytes.
    #[serde(deserialize_with = "de_num")]
    pub max_body_bytes: u64,
    /// Largest CSV accepted by `POST /v1/users/import`, in bytes.
    #[serde(deserialize_with = "de_num")]
    pub max_import_bytes: u64,
    pub bootstrap: BootstrapConfig,
    pub auth: AuthConfig,
    pub authorizer: AuthorizerConfig,
    /// Single sign-on; absent = `POST /v1/login/oidc` answers 404.
    pub oidc: Option<OidcConfig>,
    pub rate_limit: RateLimitConfig,
    pub http: HttpConfig,
    pub audit: AuditConfig,
    pub users: UsersConfig,
    pub authzen: AuthzenConfig,
    pub tls: TlsConfig,
    pub forward_auth: ForwardAuthConfig,
    pub console: ConsoleConfig,
}

/// `[console]`: the admin web console at `/ui/` (SPEC §14).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Serve the console (`/ui/`, and `/` redirecting there). Off: both answer 404; the API
    /// is unchanged.
    pub enabled: bool,
    /// Mark the console's cookie `Secure` and name it `__Host-portcullis-console` (the
    /// browser then sends it over HTTPS only, and no sibling host can plant or shadow it).
    /// On by default: right behind a proxy that terminates TLS, and browsers also keep such
    /// a cookie on `http://localhost` and `http://127.0.0.1`. Turn it off only to use the
    /// console over plain HTTP on another name (a warning is logged). With `[tls]` the
    /// cookie is always `Secure`.
    pub secure_cookie: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            secure_cookie: true,
        }
    }
}

/// `[forward_auth]`: `/v1/forward-auth[/{policy}]` for reverse proxies (nginx
/// `auth_request`, Caddy `forward_auth`, Traefik `forwardAuth`, Envoy `ext_authz`; SPEC §13).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardAuthConfig {
    /// Proxies (CIDRs) whose forwarded headers (`X-Forwarded-*`, `X-Original-*`, Envoy's
    /// appended path) describe the original request, and the only peers the gRPC listener
    /// serves. Anyone else's check is refused (403). Empty = none.
    #[serde(deserialize_with = "de_list")]
    pub trusted_proxies: Vec<IpNet>,
    /// The session cookie accepted beside `Authorization: Bearer`, set by `POST /v1/login`
    /// with `"session": true`. Empty = bearer keys only.
    pub cookie: String,
    /// The cookie's `Domain` (`example.com`: every host below it gets the cookie). Empty =
    /// the host that answered the login only.
    pub cookie_domain: String,
    /// `Secure`: the browser sends the cookie over HTTPS only. Turn off only for a trial on
    /// plain HTTP.
    pub cookie_secure: bool,
    /// `strict` (default) or `lax` (a link from another site into the application arrives
    /// signed in).
    pub cookie_same_site: SameSite,
    /// Request headers the policy sees, as `resource.properties.headers.<name>` (lower
    /// case). `authorization`, `cookie` and `proxy-authorization` cannot be listed.
    #[serde(deserialize_with = "de_list")]
    pub headers: Vec<String>,
    /// HTTP method (upper case) → action (`GET = "read"`); a method not listed is its
    /// lower-case name.
    pub actions: BTreeMap<String, String>,
    /// Extra headers on an allow: header name → `email`, `account_type`, `decision_id` or
    /// `attributes.<key>` of the user. (`X-Portcullis-User`, `-Account`, `-Roles` always.)
    pub response_headers: BTreeMap<String, String>,
    /// Accept `%2F` (an encoded slash) in paths, kept as it is (RabbitMQ's `/api/queues/%2F/q`,
    /// GitLab's `group%2Fproject`); refused by default, since applications that decode it
    /// see other segments than the policy. Dot segments stay refused either way.
    pub encoded_slash: bool,
    /// Envoy's gRPC `ext_authz` (`envoy.service.auth.v3.Authorization/Check`) on this
    /// address (`127.0.0.1:9191`); serves `trusted_proxies` only. Empty = off.
    pub grpc_listen: String,
}

/// The `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SameSite {
    Strict,
    Lax,
}

impl Default for ForwardAuthConfig {
    fn default() -> Self {
        ForwardAuthConfig {
            trusted_proxies: Vec::new(),
            cookie: String::new(),
            cookie_domain: String::new(),
            cookie_secure: true,
            cookie_same_site: SameSite::Strict,
            headers: Vec::new(),
            actions: BTreeMap::new(),
            response_headers: BTreeMap::new(),
            encoded_slash: false,
            grpc_listen: String::new(),
        }
    }
}

impl ForwardAuthConfig {
    fn validate(&self) -> anyhow::Result<()> {
        let token = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        };
        if !self.cookie.is_empty() && !token(&self.cookie) {
            bail!("forward_auth.cookie: {:?} is not a cookie name (letters, digits, - _ . and the like; at most 64)", self.cookie);
        }
        if !self.cookie_domain.is_empty()
            && !self
                .cookie_domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            bail!(
                "forward_auth.cookie_domain: {:?} is not a domain name",
                self.cookie_domain
            );
        }
        if self.headers.len() > 32 {
            bail!("forward_auth.headers: at most 32 headers");
        }
        for h in &self.headers {
            if !token(h) || h.bytes().any(|b| b.is_ascii_uppercase()) {
                bail!("forward_auth.headers: {h:?} is not a lower-case header name");
            }
            if ["authorization", "cookie", "proxy-authorization"].contains(&h.as_str()) {
                bail!("forward_auth.headers: {h:?} carries credentials and is never shown to a policy");
            }
        }
        for (method, action) in &self.actions {
            if !token(method) || method.bytes().any(|b| b.is_ascii_lowercase()) {
                bail!("forward_auth.actions: {method:?} is not an upper-case HTTP method");
            }
            portcullis_core::names::validate_label(action, 256)
                .map_err(|e| anyhow::anyhow!("forward_auth.actions.{method}: {e}"))?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for (header, source) in &self.response_headers {
            if !token(header) {
                bail!("forward_auth.response_headers: {header:?} is not a header name");
            }
            let lower = header.to_ascii_lowercase();
            let reserved = lower.starts_with("x-portcullis-")
                || lower.starts_with("proxy-")
                || [
                    "host",
                    "cookie",
                    "set-cookie",
                    "authorization",
                    "www-authenticate",
                    "content-length",
                    "content-type",
                    "transfer-encoding",
                    "connection",
                    "keep-alive",
                    "te",
                    "trailer",
                    "upgrade",
                    "location",
                ]
                .contains(&lower.as_str());
            if reserved {
                bail!("forward_auth.response_headers: {header:?} is reserved (X-Portcullis-*, hop-by-hop, framing and credential headers cannot be set)");
            }
            if !seen.insert(lower) {
                bail!("forward_auth.response_headers: {header:?} is named twice (header names ignore case)");
            }
            let known = matches!(source.as_str(), "email" | "account_type" | "decision_id")
                || source
                    .strip_prefix("attributes.")
                    .is_some_and(|k| !k.is_empty());
            if !known {
                bail!("forward_auth.response_headers.{header}: {source:?} is not one of email, account_type, decision_id, attributes.<key>");
            }
        }
        if !self.grpc_listen.is_empty() && self.grpc_listen.parse::<std::net::SocketAddr>().is_err()
        {
            bail!(
                "forward_auth.grpc_listen: {:?} is not an address like 127.0.0.1:9191",
                self.grpc_listen
            );
        }
        Ok(())
    }
}

/// `[tls]`: serve HTTPS (TLS 1.2 and 1.3, rustls) with a certificate chain and its key,
/// both PEM files; both empty = plain HTTP. The files are read again on SIGHUP (a renewed
/// certificate needs no restart; a bad pair is logged and the previous one kept).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The certificate chain, leaf first (PEM).
    pub cert_file: String,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        !self.cert_file.is_empty()
    }
}

/// `[authzen]`: how an AuthZEN subject of type `user` finds its Portcullis user, and the
/// URL clients reach the server at.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthzenConfig {
    /// Tried in order until one finds exactly one user: `username` (case-insensitive),
    /// `email` (case-insensitive), `sso_subject` (exact, any issuer).
    #[serde(deserialize_with = "de_list")]
    pub subject_lookup: Vec<SubjectLookup>,
    /// The server's external base URL (`https://pdp.example.com`), for the PDP metadata at
    /// `/.well-known/authzen-configuration`. Empty: `http://` and the request's `Host`.
    pub base_url: String,
}

/// One way of finding the user an AuthZEN subject id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectLookup {
    Username,
    Email,
    SsoSubject,
}

impl Default for AuthzenConfig {
    fn default() -> Self {
        AuthzenConfig {
            subject_lookup: vec![SubjectLookup::Username],
            base_url: String::new(),
        }
    }
}

impl std::str::FromStr for SubjectLookup {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "username" => Ok(SubjectLookup::Username),
            "email" => Ok(SubjectLookup::Email),
            "sso_subject" => Ok(SubjectLookup::SsoSubject),
            _ => Err("not one of username, email, sso_subject"),
        }
    }
}

/// `[http]`: what a client may hold of the server's connections and time. Nothing an
/// unauthenticated client sends slowly keeps a connection past these bounds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// A connection that has not sent a request's complete headers within this is closed.
    #[serde(with = "humantime_serde_compat")]
    pub header_read_timeout: Duration,
    /// A request whose body stalls (no data) for this long is answered 408.
    #[serde(with = "humantime_serde_compat")]
    pub body_read_timeout: Duration,
    /// The longest a request may take in all (body, work, answer): 408 after it.
    #[serde(with = "humantime_serde_compat")]
    pub request_timeout: Duration,
    /// Connections served at once; more wait in the kernel's backlog.
    #[serde(deserialize_with = "de_num")]
    pub max_connections: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(300),
            max_connections: 2048,
        }
    }
}

/// `[audit]`: how long the audit log is kept.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Entries older than this are deleted (hourly).
    #[serde(with = "humantime_serde_compat")]
    pub retention: Duration,
    /// At most this many entries are kept (the oldest go first).
    #[serde(deserialize_with = "de_num")]
    pub max_entries: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention: Duration::from_secs(90 * 24 * 3600),
            max_entries: 1_000_000,
        }
    }
}

/// `[users]`: where users created without a named account go.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsersConfig {
    /// A `user`-type account (created on first use): `POST /v1/users` and the CLI's
    /// `users create` without `--account` put users here, never in the admin account.
    pub default_account: String,
}

impl Default for UsersConfig {
    fn default() -> Self {
        UsersConfig {
            default_account: "users".into(),
        }
    }
}

/// `[rate_limit]`: attempts per client address on login, SSO login and the IACT endpoints.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    #[serde(deserialize_with = "de_num")]
    pub login_per_minute: u32,
    /// Proxies whose `X-Forwarded-For` is believed (CIDRs); empty = none.
    #[serde(deserialize_with = "de_list")]
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            login_per_minute: 120,
            trusted_proxies: Vec::new(),
        }
    }
}

/// `[oidc]`: accept ID tokens from one issuer (§3.3).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// A JWKS document on disk …
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// … or at a URL (fetched at start and when a token names an unknown key).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The account new users are created in (created if missing, type `user`).
    pub account: String,
    /// The claim that becomes the username (lowercased).
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
}

fn default_username_claim() -> String {
    "email".into()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8700".into(),
            data_dir: PathBuf::from("./portcullis-data"),
            database_url: String::new(),
            database_timeout: portcullis_store::DEFAULT_TIMEOUT,
            log_format: LogFormat::Text,
            max_body_bytes: 1024 * 1024,
            max_import_bytes: 64 * 1024 * 1024,
            bootstrap: BootstrapConfig::default(),
            auth: AuthConfig::default(),
            authorizer: AuthorizerConfig::default(),
            oidc: None,
            rate_limit: RateLimitConfig::default(),
            http: HttpConfig::default(),
            audit: AuditConfig::default(),
            users: UsersConfig::default(),
            authzen: AuthzenConfig::default(),
            tls: TlsConfig::default(),
            forward_auth: ForwardAuthConfig::default(),
            console: ConsoleConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootstrapMode {
    TemporaryAdmin,
    Iact,
    Configured,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapConfig {
    pub mode: BootstrapMode,
    pub admin_email: String,
    #[serde(skip_serializing)]
    pub admin_password: String,
    #[serde(skip_serializing)]
    pub temporary_password: String,
    #[serde(deserialize_with = "de_list")]
    pub iact_subnets: Vec<IpNet>,
    pub iact_time_limit_minutes: TimeLimit,
}

// Hand-written so the admin password never reaches a log line through `{:?}`.
impl std::fmt::Debug for BootstrapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapConfig")
            .field("mode", &self.mode)
            .field("admin_email", &self.admin_email)
            .field(
                "admin_password",
                &if self.admin_password.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field(
                "temporary_password",
                &if self.temporary_password.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("iact_subnets", &self.iact_subnets)
            .field("iact_time_limit_minutes", &self.iact_time_limit_minutes)
            .finish()
    }
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            mode: BootstrapMode::TemporaryAdmin,
            admin_email: "admin@localhost".into(),
            admin_password: String::new(),
            temporary_password: String::new(),
            iact_subnets: vec![
                "127.0.0.1/32".parse().expect("net"),
                "::1/128".parse().expect("net"),
            ],
            iact_time_limit_minutes: TimeLimit::Minutes(60),
        }
    }
}

/// A number of minutes, or `"unlimited"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TimeLimit {
    Minutes(u64),
    Unlimited,
}

impl<'de> Deserialize<'de> for TimeLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumOrString::deserialize(d)? {
            NumOrString::Num(n) if n >= 0 => Ok(TimeLimit::Minutes(n as u64)),
            NumOrString::Str(s) if s == "unlimited" => Ok(TimeLimit::Unlimited),
            NumOrString::Str(s) => s.parse::<u64>().map(TimeLimit::Minutes).map_err(|_| {
                de::Error::custom(format!(
                    "expected a number of minutes or \"unlimited\", got {s:?}"
                ))
            }),
            NumOrString::Num(n) => Err(de::Error::custom(format!(
                "expected a non-negative number of minutes, got {n}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    #[serde(with = "humantime_serde_compat")]
    pub login_key_ttl: Duration,
    #[serde(deserialize_with = "de_num")]
    pub lockout_threshold: u32,
    #[serde(with = "humantime_serde_compat")]
    pub lockout_duration: Duration,
    /// How long a verified key (and an `/v1/authorize` subject) is served from memory
    /// without a database round trip. Changes made through this server are seen at once;
    /// changes made by another server or process within this time. `0s` turns it off; at
    /// most 5 s (the bound `recover-admin-user` promises).
    #[serde(with = "humantime_serde_compat")]
    pub key_cache_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            login_key_ttl: Duration::from_secs(24 * 3600),
            lockout_threshold: 10,
            lockout_duration: Duration::from_secs(15 * 60),
            key_cache_ttl: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthorizerConfig {
    /// `builtin:NAME`, a path to a `.wasm` component, or a stored plugin id.
    pub plugin: String,
    /// JSON handed to the plugin's `configure()`.
    #[serde(deserialize_with = "de_json")]
    pub settings: serde_json::Value,
    #[serde(deserialize_with = "de_num")]
    pub timeout_ms: u64,
    /// Deadline of a plugin's `configure` (parsing a Cedar or Rego policy set), when
    /// longer than `timeout_ms`.
    #[serde(deserialize_with = "de_num")]
    pub configure_timeout_ms: u64,
    #[serde(deserialize_with = "de_num")]
    pub memory_limit_mib: u64,
    /// Decisions kept in the in-memory decision log (`GET /v1/decisions`).
    #[serde(deserialize_with = "de_num")]
    pub decision_log_size: u64,
    /// Most decisions kept in the decision cache (plugins opt in with `ttl-ms`).
    #[serde(deserialize_with = "de_num")]
    pub cache_entries: u64,
    /// Largest plugin accepted by `POST /v1/plugins`, in bytes.
    #[serde(deserialize_with = "de_num")]
    pub max_plugin_bytes: u64,
    /// The longest a cached decision is reused, whatever `ttl-ms` the plugin asks for.
    #[serde(deserialize_with = "de_num")]
    pub max_cache_ttl_ms: u64,
    /// Most plugins the plugin store keeps (`POST /v1/plugins` answers 409 beyond).
    #[serde(deserialize_with = "de_num")]
    pub max_stored_plugins: u64,
    /// The application policy the root AuthZEN endpoints (`/access/v1/*`,
    /// `/.well-known/authzen-configuration`) serve; empty = the management authorizer.
    /// (`/v1/authorize` without `policy` always asks the management authorizer.)
    pub default_policy: String,
    /// Most application policies (`PUT /v1/policies/{name}` answers 409 beyond).
    #[serde(deserialize_with = "de_num")]
    pub max_policies: u64,
}

impl Default for AuthorizerConfig {
    fn default() -> Self {
        AuthorizerConfig {
            plugin: portcullis_plugin::DEFAULT_PLUGIN.into(),
            settings: serde_json::json!({}),
            timeout_ms: 50,
            configure_timeout_ms: 2000,
            memory_limit_mib: 64,
            decision_log_size: 10_000,
            cache_entries: 10_000,
            max_plugin_bytes: 32 * 1024 * 1024,
            max_cache_ttl_ms: 60_000,
            max_stored_plugins: 100,
            default_policy: String::new(),
            max_policies: 100,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrString {
    Num(i64),
    Str(String),
}

/// Numbers may come as TOML integers or, from the environment, as strings.
fn de_num<'de, D: Deserializer<'de>, T: TryFrom<i64> + std::str::FromStr>(
    d: D,
) -> Result<T, D::Error> {
    match NumOrString::deserialize(d)? {
        NumOrString::Num(n) => {
            T::try_from(n).map_err(|_| de::Error::custom(format!("number {n} out of range")))
        }
        NumOrString::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| de::Error::custom(format!("expected a number, got {s:?}"))),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ListOrString {
    List(Vec<String>),
    Str(String),
}

/// Lists may come as TOML arrays or, from the environment, as comma-separated strings.
fn de_list<'de, D: Deserializer<'de>, T: std::str::FromStr>(d: D) -> Result<Vec<T>, D::Error>
where
    T::Err: std::fmt::Display,
{
    let items = match ListOrString::deserialize(d)? {
        ListOrString::List(v) => v,
        ListOrString::Str(s) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
    };
    items
        .iter()
        .map(|s| {
            s.parse()
                .map_err(|e| de::Error::custom(format!("{s:?}: {e}")))
        })
        .collect()
}

/// Plugin settings: a TOML table, or (from the environment) a JSON string.
fn de_json<'de, D: Deserializer<'de>>(d: D) -> Result<serde_json::Value, D::Error> {
    let v = toml::Value::deserialize(d)?;
    match v {
        toml::Value::String(s) => serde_json::from_str(&s)
            .map_err(|e| de::Error::custom(format!("settings must be JSON: {e}"))),
        other => serde_json::to_value(other).map_err(de::Error::custom),
    }
}

mod humantime_serde_compat {
    use serde::{de, Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        let dur = humantime::parse_duration(&s).map_err(|e| {
            de::Error::custom(format!(
                "{s:?} is not a duration like \"15m\" or \"24h\": {e}"
            ))
        })?;
        if dur.is_zero() {
            return Err(de::Error::custom("duration must be greater than zero"));
        }
        Ok(dur)
    }
}

/// The sections a `PORTCULLIS_<SECTION>_<KEY>` variable may name.
const SECTIONS: &[&str] = &[
    "bootstrap",
    "auth",
    "authorizer",
    "oidc",
    "rate_limit",
    "http",
    "audit",
    "users",
    "authzen",
    "tls",
    "forward_auth",
    "console",
];

/// Environment variables with the prefix that are not server configuration (the CLI's
/// and the test suite's).
const NOT_CONFIG: &[&str] = &[
    "PORTCULLIS_SERVER",
    "PORTCULLIS_API_KEY",
    "PORTCULLIS_API_KEY_FILE",
    "PORTCULLIS_CA_FILE",
    "PORTCULLIS_CONFIG",
    "PORTCULLIS_LOG",
    "PORTCULLIS_TEST_DATABASE_URL",
];

/// Flags that override everything else, as (section, key, value); section "" = top level.
pub type Overrides = Vec<(String, String, String)>;

impl Config {
    /// Load the configuration from an optional file, the given environment, and flags.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: Overrides,
    ) -> anyhow::Result<Config> {
        let text = match file {
            Some(path) => Some((
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?,
                path,
            )),
            None => None,
        };
        Self::from_text(text.as_ref().map(|(t, p)| (t.as_str(), *p)), env, flags)
    }

    /// [`Config::load`] with the file's content already read (`(text, path for messages)`).
    pub fn from_text(
        file: Option<(&str, &Path)>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: Overrides,
    ) -> anyhow::Result<Config> {
        let mut table = match file {
            Some((text, path)) => text
                .parse::<toml::Table>()
                .with_context(|| format!("parsing config file {}", path.display()))?,
            None => toml::Table::new(),
        };
        let mut env_pairs = Vec::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("PORTCULLIS_") else {
                continue;
            };
            if NOT_CONFIG.contains(&name.as_str()) || name.starts_with("PORTCULLIS_TEST_") {
                continue;
            }
            let lower = rest.to_ascii_lowercase();
            let (section, key) = match SECTIONS
                .iter()
                .find(|s| lower.starts_with(&format!("{s}_")))
            {
                Some(s) => (s.to_string(), lower[s.len() + 1..].to_string()),
                None => (String::new(), lower),
            };
            env_pairs.push((section, key, value, name));
        }
        for (section, key, value, name) in env_pairs {
            set(&mut table, &section, &key, value)
                .with_context(|| format!("environment variable {name}"))?;
        }
        for (section, key, value) in flags {
            set(&mut table, &section, &key, value)?;
        }
        let config: Config = Config::deserialize(toml::Value::Table(table)).map_err(|e| {
            let source = file
                .map(|p| format!(" (file {}, environment and flags)", p.1.display()))
                .unwrap_or_default();
            anyhow::anyhow!("invalid configuration{source}: {}", e.to_string().trim())
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.forward_auth.validate()?;
        if self.tls.cert_file.is_empty() != self.tls.key_file.is_empty() {
            bail!("tls.cert_file and tls.key_file go together: give both PEM files (or neither, for plain HTTP)");
        }
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            bail!(
                "listen: {:?} is not an address like 127.0.0.1:8700",
                self.listen
            );
        }
        if self.database_timeout.is_zero() || self.database_timeout > Duration::from_secs(60) {
            bail!("database_timeout must be between 1ms and 60s");
        }
        if self.rate_limit.login_per_minute == 0 {
            bail!("rate_limit.login_per_minute must be at least 1");
        }
        if self.auth.key_cache_ttl > Duration::from_secs(5) {
            bail!("auth.key_cache_ttl must be at most 5s (revocations by other servers must be seen within 5 s)");
        }
        if let Some(o) = &self.oidc {
            if portcullis_core::names::RESERVED_ACCOUNT_NAMES.contains(&o.account.as_str()) {
                bail!(
                    "oidc.account: {:?} is reserved; single sign-on creates users only in a user account (e.g. \"sso\")",
                    o.account
                );
            }
            portcullis_core::names::validate_account_name(&o.account)
                .map_err(|e| anyhow::anyhow!("oidc.account: {e}"))?;
        }
        if portcullis_core::names::RESERVED_ACCOUNT_NAMES
            .contains(&self.users.default_account.as_str())
        {
            bail!(
                "users.default_account: {:?} is reserved; name a user account (default \"users\")",
                self.users.default_account
            );
        }
        portcullis_core::names::validate_account_name(&self.users.default_account)
            .map_err(|e| anyhow::anyhow!("users.default_account: {e}"))?;
        if self.http.max_connections == 0 {
            bail!("http.max_connections must be at least 1");
        }
        for (key, value) in [
            ("http.header_read_timeout", self.http.header_read_timeout),
            ("http.body_read_timeout", self.http.body_read_timeout),
            ("http.request_timeout", self.http.request_timeout),
        ] {
            if value.is_zero() {
                bail!("{key} must be longer than 0s");
            }
        }
        if self.auth.lockout_threshold == 0 {
            bail!("auth.lockout_threshold must be at least 1");
        }
        let base = &self.authzen.base_url;
        let authority = base
            .strip_prefix("https://")
            .or_else(|| base.strip_prefix("http://"))
            .map(|rest| rest.trim_end_matches('/'));
        if !base.is_empty()
            && !authority.is_some_and(|a| {
                !a.is_empty()
                    && a.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
        {
            // A path would move the metadata (RFC 8414 inserts the well-known segment
            // before it), which this server does not serve: a proxy that mounts Portcullis
            // under a path maps the well-known URLs itself.
            bail!("authzen.base_url: {base:?} is not an origin like https://pdp.example.com (scheme, host, optional port; no path, query or fragment)");
        }
        if self.authzen.subject_lookup.is_empty() {
            bail!("authzen.subject_lookup must name at least one of username, email, sso_subject");
        }
        if !self.authorizer.default_policy.is_empty() {
            portcullis_core::names::validate_account_name(&self.authorizer.default_policy)
                .map_err(|e| anyhow::anyhow!("authorizer.default_policy: {e}"))?;
        }
        if !self.authorizer.settings.is_object() {
            bail!("authorizer.settings must be a JSON object");
        }
        if self.authorizer.timeout_ms == 0 || self.authorizer.memory_limit_mib == 0 {
            bail!(
                "authorizer.timeout_ms and authorizer.memory_limit_mib must be greater than zero"
            );
        }
        if self.bootstrap.mode == BootstrapMode::Configured
            && self.bootstrap.admin_password.is_empty()
        {
            bail!(
                "bootstrap.mode = \"configured\" needs an admin password: set bootstrap.admin_password in the config file \
                 or the environment variable PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD"
            );
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("portcullis.db").display())
        } else {
            self.database_url.clone()
        }
    }
}

fn set(table: &mut toml::Table, section: &str, key: &str, value: String) -> anyhow::Result<()> {
    let target = if section.is_empty() {
        table
    } else {
        let entry = table
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        match entry {
            toml::Value::Table(t) => t,
            _ => bail!("{section} must be a table"),
        }
    };
    target.insert(key.to_string(), toml::Value::String(value));
    Ok(())
}

/// For `settings = {}` given on the command line or in the environment as JSON.
pub fn settings_map(v: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    v.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let c = Config::load(None, vec![], vec![]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8700");
        assert_eq!(c.auth.lockout_threshold, 10);
        assert_eq!(c.bootstrap.mode, BootstrapMode::TemporaryAdmin);
        assert!(c.database_url().starts_with("sqlite://"));
    }

    #[test]
    fn precedence_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\n[auth]\nlockout_threshold = 3\nlogin_key_ttl = \"1h\"\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&path),
            env(&[
                ("PORTCULLIS_AUTH_LOCKOUT_THRESHOLD", "4"),
                ("PORTCULLIS_LISTEN", "127.0.0.1:2"),
            ]),
            vec![],
        )
        .unwrap();
        assert_eq!(c.auth.lockout_threshold, 4);
        assert_eq!(c.listen, "127.0.0.1:2");
        assert_eq!(c.auth.login_key_ttl, Duration::from_secs(3600));
        let c = Config::load(
            Some(&path),
            env(&[("PORTCULLIS_LISTEN", "127.0.0.1:2")]),
            vec![("".into(), "listen".into(), "127.0.0.1:3".into())],
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:3");
        assert_eq!(c.auth.lockout_threshold, 3);
    }

    #[test]
    fn authzen_settings_from_the_environment_and_their_checks() {
        let c = Config::load(
            None,
            env(&[
                (
                    "PORTCULLIS_AUTHZEN_SUBJECT_LOOKUP",
                    "username, email,sso_subject",
                ),
                (
                    "PORTCULLIS_AUTHZEN_BASE_URL",
                    "https://pdp.example.com:8443/",
                ),
                ("PORTCULLIS_AUTHORIZER_DEFAULT_POLICY", "todo"),
            ]),
            vec![],
        )
        .unwrap();
        assert_eq!(
            c.authzen.subject_lookup,
            vec![
                SubjectLookup::Username,
                SubjectLookup::Email,
                SubjectLookup::SsoSubject
            ]
        );
        assert_eq!(c.authorizer.default_policy, "todo");
        for (key, value, named) in [
            ("PORTCULLIS_AUTHZEN_SUBJECT_LOOKUP", "phone", "phone"),
            ("PORTCULLIS_AUTHZEN_SUBJECT_LOOKUP", "", "subject_lookup"),
            (
                "PORTCULLIS_AUTHZEN_BASE_URL",
                "https://h.example/authz",
                "base_url",
            ),
            ("PORTCULLIS_AUTHZEN_BASE_URL", "pdp.example.com", "base_url"),
            (
                "PORTCULLIS_AUTHZEN_BASE_URL",
                "https://h.example?x=1",
                "base_url",
            ),
            (
                "PORTCULLIS_AUTHORIZER_DEFAULT_POLICY",
                "Todo App",
                "default_policy",
            ),
        ] {
            let e = Config::load(None, env(&[(key, value)]), vec![])
                .unwrap_err()
                .to_string();
            assert!(e.contains(named), "{key}={value}: {e}");
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "[auth]\nlockout_treshold = 3\n").unwrap();
        let e = Config::load(Some(&path), vec![], vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("lockout_treshold"), "{e}");
        let e = Config::load(None, env(&[("PORTCULLIS_BOOTSTRAP_MODEE", "iact")]), vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("modee"), "{e}");
        let e = Config::load(
            None,
            env(&[("PORTCULLIS_BOOTSTRAP_MODE", "sometimes")]),
            vec![],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sometimes"), "{e}");
    }

    #[test]
    fn sso_into_the_admin_account_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "[oidc]\nissuer = \"https://idp\"\naudience = \"p\"\naccount = \"admin\"\n",
        )
        .unwrap();
        let e = Config::load(Some(&path), vec![], vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("oidc.account") && e.contains("reserved"), "{e}");
    }

    #[test]
    fn env_lists_numbers_and_limits() {
        let c = Config::load(
            None,
            env(&[
                ("PORTCULLIS_BOOTSTRAP_IACT_SUBNETS", "10.0.0.0/8, ::1/128"),
                ("PORTCULLIS_BOOTSTRAP_IACT_TIME_LIMIT_MINUTES", "unlimited"),
                ("PORTCULLIS_AUTHORIZER_SETTINGS", "{\"a\":1}"),
                ("PORTCULLIS_SERVER", "http://elsewhere"),
            ]),
            vec![],
        )
        .unwrap();
        assert_eq!(c.bootstrap.iact_subnets.len(), 2);
        assert_eq!(c.bootstrap.iact_time_limit_minutes, TimeLimit::Unlimited);
        assert_eq!(c.authorizer.settings["a"], 1);
    }

    #[test]
    fn configured_mode_needs_a_password() {
        let e = Config::load(
            None,
            env(&[("PORTCULLIS_BOOTSTRAP_MODE", "configured")]),
            vec![],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD"), "{e}");
        let c = Config::load(
            None,
            env(&[
                ("PORTCULLIS_BOOTSTRAP_MODE", "configured"),
                ("PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD", "12345678901"),
            ]),
            vec![],
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("12345678901"));
    }

    #[test]
    fn forward_auth_response_headers_cannot_replace_ours_or_framing() {
        for name in [
            "X-Portcullis-User",
            "x-portcullis-roles",
            "Host",
            "Content-Length",
            "Set-Cookie",
            "Transfer-Encoding",
        ] {
            let text = format!("[forward_auth.response_headers]\n\"{name}\" = \"attributes.x\"\n");
            let e =
                Config::from_text(Some((&text, Path::new("t.toml"))), vec![], vec![]).unwrap_err();
            assert!(e.to_string().contains("is reserved"), "{name}: {e}");
        }
        let text =
            "[forward_auth.response_headers]\nX-Team = \"attributes.team\"\nx-team = \"email\"\n";
        let e = Config::from_text(Some((text, Path::new("t.toml"))), vec![], vec![]).unwrap_err();
        assert!(e.to_string().contains("named twice"), "{e}");
        let text = "[forward_auth.response_headers]\nX-Team = \"attributes.team\"\n";
        assert!(Config::from_text(Some((text, Path::new("t.toml"))), vec![], vec![]).is_ok());
    }

    #[test]
    fn the_example_config_parses_and_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/portcullis.toml");
        let c = Config::load(Some(&path), vec![], vec![]).unwrap();
        let d = Config::default();
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::to_value(&d).unwrap()
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any file content and any PORTCULLIS_* environment value is either a valid
        /// configuration or an error message; never a panic.
        #[test]
        fn loading_never_panics(file in ".{0,300}", key in "[A-Z_]{1,30}", value in ".{0,40}") {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p.toml");
            std::fs::write(&path, &file).unwrap();
            let _ = Config::load(Some(&path), vec![(format!("PORTCULLIS_{key}"), value.clone())], vec![]);
            let _ = Config::load(None, vec![(format!("PORTCULLIS_{key}"), value)], vec![]);
        }

        /// Valid TOML of the right shape with random values: accepted or refused by name.
        #[test]
        fn wrong_values_are_named(threshold in any::<i64>(), ttl in "[a-z0-9 ]{0,8}") {
            let text = format!("[auth]\nlockout_threshold = {threshold}\nlogin_key_ttl = \"{ttl}\"\n");
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p.toml");
            std::fs::write(&path, text).unwrap();
            if let Err(e) = Config::load(Some(&path), vec![], vec![]) {
                let e = e.to_string();
                prop_assert!(e.contains("lockout_threshold") || e.contains("login_key_ttl") || e.contains("duration") || e.contains("number"), "{}", e);
            }
        }
    }
}
