//! Forward auth (SPEC §13): a reverse proxy holds a request and asks whether it may pass.
//! The adapters (`/v1/forward-auth` over HTTP, Envoy's gRPC `ext_authz`) read the original
//! request from their proxy's convention into a [`Route`] with the checks here; [`decide`]
//! authenticates the end user's key and asks the policy:
//!
//! - subject: the Portcullis user (type `user`, id the username; the principal filled in
//!   from the store, as for AuthZEN);
//! - action: the method, lower case, or `[forward_auth.actions]`'s name for it;
//! - resource: `{type: "route", id: "<host><path>", properties: {host, path, query,
//!   method, scheme, headers: {…}}}` with the headers `[forward_auth] headers` lists;
//! - context: `{"client_ip": "…"}` when known.
//!
//! A plugin failure is a deny like any other (never a 5xx); an unauthenticated request is
//! [`crate::AppError::unauthorized`] before any policy is looked at. The management
//! authorizer is never asked (its rules are about Portcullis, not routes): without a named
//! policy or `[authorizer] default_policy` the answer is 404.

use crate::decide::{self, Pdp, ZenQuestion, USER_TYPE};
use crate::error::{AppError, AppResult};
use crate::session::authenticate_session;
use crate::App;
use portcullis_core::authz::{self, Entity};
use portcullis_core::names;
use serde_json::{json, Map, Value};
use std::net::IpAddr;

/// The resource type of a forward-auth decision.
pub const ROUTE_TYPE: &str = "route";
/// The longest original path and query accepted (bytes each).
pub const MAX_URI: usize = 8 * 1024;
/// The longest value of a header shown to the policy.
pub const MAX_HEADER_VALUE: usize = 4096;

/// The request a proxy holds, checked and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// As sent (`GET`, `POST`, …).
    pub method: String,
    /// `http` or `https` (and `ws`, `wss`), when known.
    pub scheme: Option<String>,
    /// Lower case, with the port when one was given.
    pub host: String,
    /// Normalised ([`normalize_path`]).
    pub path: String,
    /// As sent, without the `?`; empty when there is none.
    pub query: String,
    /// The configured headers the request carries (lower-case names).
    pub headers: Vec<(String, String)>,
    pub client_ip: Option<IpAddr>,
}

impl Route {
    /// The host as one name per site and the port apart: a trailing dot dropped
    /// (`app.example.com.`), the port split off (proxies route by name whatever the port
    /// says, so `admin.example.com:1` is the admin site) and kept only when it is not the
    /// scheme's default (`:443` for https, `:80` for http; either when the scheme is not
    /// known). A host rule cannot be dodged by spelling the host another way.
    fn site(&self) -> (String, Option<String>) {
        let host = self.host.as_str();
        // `name:port`, `[v6]:port`, or no port.
        let (name, port) = match host.rfind(':') {
            Some(i)
                if !host[i + 1..].is_empty()
                    && host[i + 1..].bytes().all(|b| b.is_ascii_digit())
                    && (!host.starts_with('[') || host[..i].ends_with(']')) =>
            {
                (&host[..i], Some(&host[i + 1..]))
            }
            _ => (host, None),
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        // `0443` is 443.
        let port = port
            .map(|p| p.trim_start_matches('0'))
            .map(|p| if p.is_empty() { "0" } else { p });
        let default = matches!(
            (self.scheme.as_deref(), port),
            (_, None)
                | (Some("https" | "wss"), Some("443"))
                | (Some("http" | "ws"), Some("80"))
                | (None, Some("443" | "80"))
        );
        (
            name.to_string(),
            port.filter(|_| !default).map(str::to_string),
        )
    }
}

/// What a forward-auth check answers when the user is authenticated.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Let it pass, with these headers for the application.
    Allowed {
        headers: Vec<(String, String)>,
        decision_id: String,
    },
    /// Refuse it (403) for these reasons.
    Denied {
        reasons: Vec<String>,
        decision_id: String,
    },
}

/// A method as sent: an HTTP token of at most 32 characters.
pub fn check_method(field: &str, method: &str) -> AppResult<String> {
    if method.is_empty() || method.len() > 32 || !method.bytes().all(is_tchar) {
        return Err(AppError::invalid(
            field,
            format!("{:?} is not an HTTP method", names::printable(method, 40)),
        ));
    }
    Ok(method.to_string())
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A host (`name`, `name:port`, `[v6]:port`), lower case.
pub fn check_host(field: &str, host: &str) -> AppResult<String> {
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b));
    if !ok {
        return Err(AppError::invalid(
            field,
            format!("{:?} is not a host name", names::printable(host, 64)),
        ));
    }
    Ok(host.to_ascii_lowercase())
}

/// `http`, `https`, `ws` or `wss` (any case).
pub fn check_scheme(field: &str, scheme: &str) -> AppResult<String> {
    let lower = scheme.to_ascii_lowercase();
    if !["http", "https", "ws", "wss"].contains(&lower.as_str()) {
        return Err(AppError::invalid(
            field,
            format!("{:?} is not http or https", names::printable(scheme, 40)),
        ));
    }
    Ok(lower)
}

/// An origin-form request target (`/path?query`): the normalised path and the raw query.
pub fn split_uri(field: &str, uri: &str, encoded_slash_ok: bool) -> AppResult<(String, String)> {
    let (path, query) = match uri.split_once('?') {
        Some((p, q)) => (p, q),
        None => (uri, ""),
    };
    if query.len() > MAX_URI || !query.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::invalid(
            field,
            format!("the query must be at most {MAX_URI} visible ASCII characters"),
        ));
    }
    let path = normalize_path(path, encoded_slash_ok).map_err(|e| AppError::invalid(field, e))?;
    Ok((path, query.to_string()))
}

/// The path as the application will see it, so a policy's prefixes cannot be walked
/// around: percent-encoded unreserved characters decoded (`%61dmin` → `admin`), other
/// escapes kept with upper-case hex, empty segments merged (`//`). Refused, because
/// applications and proxies read them differently and an attacker picks the reading that
/// suits: dot segments (`.`, `..`, also encoded and as `..;x`), encoded slashes and
/// backslashes (`%2F`, `%5C`), a raw backslash or `#`, encoded control characters.
pub fn normalize_path(raw: &str, encoded_slash_ok: bool) -> Result<String, String> {
    if !raw.starts_with('/') {
        return Err(format!(
            "{:?} is not a path (it must start with /)",
            names::printable(raw, 64)
        ));
    }
    if raw.len() > MAX_URI || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the path must be at most {MAX_URI} visible ASCII characters"
        ));
    }
    if raw.contains(['\\', '#']) {
        return Err(
            "a path with a backslash or # is refused (applications read it differently)".into(),
        );
    }
    let bytes = raw.as_bytes();
    let mut decoded = String::with_capacity(raw.len());
    // Every escape decoded, to refuse sequences that are not UTF-8 (an overlong `%C0%AE`
    // is a dot to some decoders).
    let mut all = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: u8| (b as char).to_digit(16);
            let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err("a % in the path is not followed by two hex digits".into());
            };
            let c = (hi * 16 + lo) as u8;
            all.push(c);
            if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
                decoded.push(c as char);
            } else if c == b'/' && encoded_slash_ok {
                decoded.push_str("%2F");
            } else if c == b'/' || c == b'\\' || c < 0x20 || c == 0x7f {
                return Err(format!(
                    "an encoded slash, backslash or control character (%{c:02X}) in the path is refused (applications read it differently)"
                ));
            } else {
                decoded.push_str(&format!("%{c:02X}"));
            }
            i += 3;
        } else {
            decoded.push(bytes[i] as char);
            all.push(bytes[i]);
            i += 1;
        }
    }
    if std::str::from_utf8(&all).is_err() {
        return Err("percent-escapes in the path that are not UTF-8 are refused".into());
    }
    let mut path = String::with_capacity(decoded.len());
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        // `..;jsessionid=x` (also `..%3Bx`) is `..` to Tomcat and Jetty; with
        // `encoded_slash`, what lies between `%2F`s is a segment to those that decode it.
        let dotted = segment.split("%2F").any(|part| {
            let name = part
                .split(';')
                .next()
                .and_then(|n| n.split("%3B").next())
                .unwrap_or_default();
            name == "." || name == ".."
        });
        if dotted {
            return Err("a path with . or .. segments is refused (browsers never send one; applications resolve them differently)".into());
        }
        path.push('/');
        path.push_str(segment);
    }
    if path.is_empty() || decoded.ends_with('/') {
        path.push('/');
    }
    Ok(path)
}

/// A header value shown to the policy: visible ASCII and spaces, at most
/// [`MAX_HEADER_VALUE`] bytes; an error naming the header otherwise (never dropped: a
/// policy rule about a header must not be dodged by padding it).
pub fn header_value(name: &str, value: &[u8]) -> AppResult<String> {
    if value.len() > MAX_HEADER_VALUE || !value.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(AppError::invalid(
            name,
            format!("a header the policy sees must be at most {MAX_HEADER_VALUE} visible ASCII characters"),
        ));
    }
    Ok(String::from_utf8_lossy(value).into_owned())
}

/// The headers `names` (`[forward_auth] headers`) lists that the request carries, as `get`
/// finds them (several values of one header joined with `, `); 400 for one that cannot be
/// shown ([`header_value`]).
pub fn shown_headers<'h>(
    names: &[String],
    get: impl Fn(&str) -> Vec<&'h [u8]>,
) -> AppResult<Vec<(String, String)>> {
    let mut shown = Vec::new();
    for name in names {
        let values = get(name);
        if values.is_empty() {
            continue;
        }
        shown.push((name.clone(), header_value(name, &values.join(&b", "[..]))?));
    }
    Ok(shown)
}

/// A value for a response header: visible ASCII and spaces as they are; `%`, anything else,
/// and (with `comma`) `,` percent-encoded — never dropped, so a proxy always overwrites
/// what a client sent under the name.
pub fn header_safe(value: &str, comma: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' && !(comma && b == b',') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The end user's key: an `Authorization: Bearer` value, else (when `cookie_name` is
/// configured) the session cookie of that name.
pub fn presented_key<'a>(
    authorization: Option<&'a str>,
    cookies: impl IntoIterator<Item = &'a str>,
    cookie_name: &str,
) -> Option<&'a str> {
    authorization.and_then(crate::session::bearer).or_else(|| {
        (!cookie_name.is_empty())
            .then(|| cookie(cookies, cookie_name))
            .flatten()
    })
}

/// The value of the cookie `name` in a request's `Cookie` headers; `None` when it is
/// absent or there more than once (a sibling host can plant a second cookie of the same
/// name for a narrower path: neither is believed).
pub fn cookie<'a>(headers: impl IntoIterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    let mut found = None;
    for header in headers {
        for pair in header.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if k == name {
                if found.is_some() {
                    return None;
                }
                found = Some(v.trim().trim_matches('"'));
            }
        }
    }
    found
}

/// Authenticate `presented` (the end user's key), then ask `policy` (`None`: the default
/// policy, as for AuthZEN) whether `route` may pass.
pub async fn decide(
    app: &App,
    presented: Option<&str>,
    policy: Option<&str>,
    route: Route,
) -> AppResult<Outcome> {
    let counted = |outcome: &str, policy: &str| {
        app.metrics
            .forward_auth
            .get_or_create(&crate::metrics::PolicyOutcomeLabels {
                policy: policy.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    };
    let caller = match authenticate_session(app, presented).await {
        Ok(c) => c,
        Err(e) => {
            counted("unauthenticated", "");
            return Err(e);
        }
    };
    if let Some(name) = policy {
        names::validate_account_name(name).map_err(|e| AppError::invalid("policy", e))?;
    }
    let pdp = Pdp::named(app, policy)?;
    if matches!(pdp, Pdp::Management) {
        // The management authorizer decides about Portcullis itself; its rules (admins may
        // do anything) are no route policy.
        return Err(AppError::new(
            portcullis_core::ErrorCode::NotFound,
            "no application policy: name one (/v1/forward-auth/<policy>, or Envoy's context_extensions `policy`) or set [authorizer] default_policy",
        ));
    }
    let policy_label = pdp.name().unwrap_or_default().to_string();
    let user = &caller.verified.user;
    if user.account == names::SYSTEM_ACCOUNT {
        counted("deny", &policy_label);
        return Ok(Outcome::Denied {
            reasons: vec![format!(
                "{} is a user of the {} account, which is not a subject of application decisions",
                user.username,
                names::SYSTEM_ACCOUNT
            )],
            decision_id: crate::authorizer::decision_id(),
        });
    }
    let mut route = route;
    let (host, port) = route.site();
    route.host = host;
    let config = &app.config.forward_auth;
    let action = config
        .actions
        .get(&route.method.to_ascii_uppercase())
        .cloned()
        .unwrap_or_else(|| route.method.to_ascii_lowercase());
    let mut properties = Map::new();
    properties.insert("host".into(), json!(route.host));
    if let Some(port) = port {
        properties.insert("port".into(), json!(port));
    }
    properties.insert("path".into(), json!(route.path));
    properties.insert("query".into(), json!(route.query));
    properties.insert("method".into(), json!(route.method));
    if let Some(scheme) = &route.scheme {
        properties.insert("scheme".into(), json!(scheme));
    }
    let headers: Map<String, Value> = route
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    properties.insert("headers".into(), Value::Object(headers));
    let mut context = Map::new();
    if let Some(ip) = route.client_ip {
        context.insert("client_ip".into(), json!(ip.to_string()));
    }
    let q = ZenQuestion {
        subject: Entity::new(USER_TYPE, &user.username),
        action,
        action_properties: authz::EMPTY_OBJECT.into(),
        resource: Entity {
            kind: ROUTE_TYPE.into(),
            id: format!("{}{}", route.host, route.path),
            properties: authz::object_text(&properties),
        },
        context: authz::object_text(&context),
    };
    let (decision, decision_id) =
        decide::ask_zen(app, &pdp, q, Some(caller.verified.principal.clone())).await;
    if !decision.allowed {
        counted("deny", &policy_label);
        return Ok(Outcome::Denied {
            reasons: decision.reasons,
            decision_id,
        });
    }
    counted("allow", &policy_label);
    let roles: Vec<String> = user.roles.iter().map(|r| header_safe(r, true)).collect();
    let mut headers = vec![
        (
            "x-portcullis-user".to_string(),
            header_safe(&user.username, false),
        ),
        (
            "x-portcullis-account".to_string(),
            header_safe(&user.account, false),
        ),
        ("x-portcullis-roles".to_string(), roles.join(",")),
    ];
    for (name, source) in &config.response_headers {
        let value = match source.as_str() {
            "email" => user.email.clone(),
            "account_type" => Some(user.account_type.to_string()),
            "decision_id" => Some(decision_id.clone()),
            other => other
                .strip_prefix("attributes.")
                .and_then(|k| user.attributes.get(k).cloned()),
        };
        // Always named, empty when the user has no such value: the proxy then overwrites
        // (or removes) whatever the client sent under that name.
        let value = value.map(|v| header_safe(&v, false)).unwrap_or_default();
        headers.push((name.to_ascii_lowercase(), value));
    }
    Ok(Outcome::Allowed {
        headers,
        decision_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_so_prefixes_cannot_be_walked_around() {
        for (raw, want) in [
            ("/", "/"),
            ("/admin", "/admin"),
            ("/admin/", "/admin/"),
            ("/%61dmin", "/admin"),
            ("//admin//x", "/admin/x"),
            ("/a%20b", "/a%20b"),
            ("/a%3bb", "/a%3Bb"),
            ("/a;v=1/b", "/a;v=1/b"),
            ("/x...", "/x..."),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/100%25", "/100%25"),
            ("/a+b", "/a+b"),
        ] {
            assert_eq!(normalize_path(raw, false).unwrap(), want, "{raw}");
        }
        for bad in [
            "admin",
            "",
            "/a%zz",
            "/a%4",
            "/a b",
            "/\u{e9}",
            "/public/../admin",
            "/public/%2e%2e/admin",
            "/public/%2E./admin",
            "/./admin",
            "/admin/.",
            "/..",
            "/x//../admin",
            "/public/..;/admin",
            "/public/.;x/admin",
            "/public/x%2F..%2F..%2Fadmin",
            "/public/x%2f",
            "/public/x%5Cadmin",
            "/public\\admin",
            "/public/x#/../../admin",
            "/a%00b",
            "/a%0Ab",
            "/a%7Fb",
            "/public/..%3B/admin",
            "/public/%2e%2e%3bx/admin",
            "/%C0%AE%C0%AE/admin",
            "/a%FF",
        ] {
            assert!(normalize_path(bad, false).is_err(), "{bad:?}");
        }
        // `[forward_auth] encoded_slash`: %2F kept opaque, dots still refused.
        assert_eq!(
            normalize_path("/api/queues/%2f/q", true).unwrap(),
            "/api/queues/%2F/q"
        );
        assert!(normalize_path("/public/x%2F..%2F..%2Fadmin", true).is_err());
        assert!(normalize_path("/public/%2F../admin", true).is_err());
    }

    #[test]
    fn uris_split_into_path_and_query() {
        assert_eq!(
            split_uri("x", "/a//b?x=1&y=%20", false).unwrap(),
            ("/a/b".to_string(), "x=1&y=%20".to_string())
        );
        assert!(split_uri("x", "/a#frag", false).is_err());
        let e = split_uri("X-Forwarded-Uri", "no-slash", false).unwrap_err();
        assert!(e.message.starts_with("X-Forwarded-Uri: "), "{}", e.message);
    }

    #[test]
    fn hosts_are_one_name_per_site() {
        let route = |host: &str, scheme: Option<&str>| Route {
            method: "GET".into(),
            scheme: scheme.map(String::from),
            host: host.into(),
            path: "/".into(),
            query: String::new(),
            headers: Vec::new(),
            client_ip: None,
        };
        for (host, scheme, want, port) in [
            ("app.example.com", Some("https"), "app.example.com", None),
            ("app.example.com.", Some("https"), "app.example.com", None),
            (
                "app.example.com:443",
                Some("https"),
                "app.example.com",
                None,
            ),
            (
                "app.example.com:0443",
                Some("https"),
                "app.example.com",
                None,
            ),
            ("app.example.com.:443", None, "app.example.com", None),
            ("app.example.com:80", Some("http"), "app.example.com", None),
            (
                "app.example.com:80",
                Some("https"),
                "app.example.com",
                Some("80"),
            ),
            ("admin.example.com:1", None, "admin.example.com", Some("1")),
            (
                "app.example.com:8443",
                None,
                "app.example.com",
                Some("8443"),
            ),
            ("[::1]:443", Some("https"), "[::1]", None),
            ("[::1]", None, "[::1]", None),
        ] {
            assert_eq!(
                route(host, scheme).site(),
                (want.to_string(), port.map(String::from)),
                "{host} {scheme:?}"
            );
        }
    }

    #[test]
    fn methods_hosts_schemes_and_cookies() {
        assert!(check_method("m", "GET").is_ok());
        assert!(check_method("m", "PROPFIND").is_ok());
        assert!(check_method("m", "GE T").is_err());
        assert!(check_method("m", "").is_err());
        assert_eq!(
            check_host("h", "App.Example.COM:8443").unwrap(),
            "app.example.com:8443"
        );
        assert!(check_host("h", "a/b").is_err());
        assert!(check_host("h", "").is_err());
        assert_eq!(check_scheme("s", "HTTPS").unwrap(), "https");
        assert!(check_scheme("s", "ftp").is_err());
        assert_eq!(cookie(["a=1; pc=k3y; b=2"], "pc"), Some("k3y"));
        assert_eq!(cookie(["apc=1"], "pc"), None);
        assert_eq!(cookie(["pc=1", "pc=2"], "pc"), None, "two: neither");
        assert_eq!(cookie(["pc=1; pc=2"], "pc"), None);
        assert_eq!(header_value("h", b"ok value").unwrap(), "ok value");
        assert!(header_value("h", b"bad\nvalue").is_err());
        assert_eq!(header_safe("Zo\u{eb}, 100%", false), "Zo%C3%AB, 100%25");
        assert_eq!(header_safe("a,b", true), "a%2Cb");
    }
}
