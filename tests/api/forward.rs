//! Forward auth (SPEC §13): `/v1/forward-auth[/{policy}]` with each proxy's header set,
//! trusted and untrusted peers, the session cookie, the gRPC `ext_authz` listener, and real
//! nginx and Caddy in front of an upstream (`proxies`).

use portcullis_tests::{wait_until, TestServer, ADMIN_PASSWORD, PATIENCE};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

/// The application's rules: anyone signed in may read; `/public/` is open to every method;
/// only `app-admin` may change anything else.
pub const APP_POLICY: &str = r#"package portcullis

default allow := false

allow if input.action.name == "get"

allow if startswith(input.resource.properties.path, "/public/")

allow if "app-admin" in input.principal.roles

allow if input.resource.properties.headers["x-break-glass"] == "yes"

reasons contains sprintf("%s %s needs the app-admin role", [input.action.name, input.resource.id]) if not allow
"#;

/// A server with the `app` policy, trusting `trusted` as proxies; keys of `rita` (a
/// reader) and `ada` (an `app-admin`), and the admin's.
pub struct App {
    pub s: TestServer,
    pub admin: String,
    pub rita: String,
    pub ada: String,
}

pub async fn app_server(tweak: impl FnOnce(&mut portcullis_app::config::Config)) -> App {
    let s = TestServer::start_with(|c| {
        c.bootstrap.mode = portcullis_app::config::BootstrapMode::Configured;
        c.bootstrap.admin_password = ADMIN_PASSWORD.into();
        tweak(c);
    })
    .await;
    let admin = s.admin_key().await;
    let a = s
        .put(
            "/v1/policies/app",
            &admin,
            json!({"plugin": "builtin:rego", "settings": {"modules": {"app.rego": APP_POLICY}}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    s.account(&admin, "acme", "user").await;
    let rita = s
        .user(&admin, "acme", "rita", "rita's password", &["reader"])
        .await;
    let ada = s
        .user(&admin, "acme", "ada", "ada's password", &["app-admin"])
        .await;
    App {
        s,
        admin,
        rita,
        ada,
    }
}

/// rita logs in with `"session": true`: the `Set-Cookie` header and the body.
async fn session_login(s: &TestServer) -> (String, Value) {
    let r = s
        .http
        .post(format!("{}/v1/login", s.base))
        .json(&json!({"username": "rita", "password": "rita's password", "session": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    (cookie, r.json().await.unwrap())
}

/// Revoke every key of `username` (as the admin).
pub async fn revoke_all_keys(s: &TestServer, admin: &str, username: &str) {
    let keys = s.get(&format!("/v1/users/{username}/keys"), admin).await;
    let listed = keys.body.get("items").unwrap_or(&keys.body).clone();
    for k in listed.as_array().unwrap() {
        let id = k["id"].as_str().unwrap();
        let a = s
            .delete(&format!("/v1/users/{username}/keys/{id}"), admin)
            .await;
        assert_eq!(a.status, 204, "{}", a.text);
    }
}

fn trusted_loopback(c: &mut portcullis_app::config::Config) {
    c.forward_auth.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

/// Ask `path` with `method` and these headers (from the test client's 127.0.0.1).
pub async fn ask(
    s: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, HeaderMap, Value) {
    ask_with(&s.http, s, method, path, headers).await
}

async fn ask_with(
    http: &reqwest::Client,
    s: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, HeaderMap, Value) {
    let mut req = http.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{}{path}", s.base),
    );
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let h = r.headers().clone();
    let text = r.text().await.unwrap();
    (
        status,
        h,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> &'h str {
    h.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

/// `/v1/forward-auth/app` asked with Traefik's headers for `method uri`.
async fn traefik_check(
    s: &TestServer,
    method: &str,
    uri: &str,
    bearer: &str,
) -> (u16, HeaderMap, Value) {
    ask(
        s,
        "GET",
        "/v1/forward-auth/app",
        &traefik(method, uri, bearer),
    )
    .await
}

/// Traefik's `forwardAuth` request (its docs): a GET carrying the original request's
/// headers and `X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri`, `-For`.
fn traefik<'a>(method: &'a str, uri: &'a str, bearer: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("x-forwarded-method", method),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "app.example.com"),
        ("x-forwarded-uri", uri),
        ("x-forwarded-for", "203.0.113.7"),
        ("authorization", bearer),
        ("accept", "text/html"),
        ("user-agent", "Mozilla/5.0"),
    ]
}

#[tokio::test]
async fn forward_auth_reads_each_proxys_convention_and_answers_with_the_user() {
    let App {
        s,
        admin,
        rita,
        ada,
    } = app_server(|c| {
        trusted_loopback(c);
        c.forward_auth.headers = vec!["x-break-glass".into()];
        c.authorizer.default_policy = "app".into();
        c.forward_auth.actions = [("PROPFIND".to_string(), "get".to_string())].into();
        c.forward_auth.response_headers =
            [("X-Portcullis-Email".to_string(), "email".to_string())].into();
    })
    .await;
    let rita_b = format!("Bearer {rita}");
    let ada_b = format!("Bearer {ada}");

    // Traefik (and Caddy: the same headers): reading is allowed, POST /admin is not.
    let (status, h, _) = traefik_check(&s, "GET", "/admin/x?y=1", &rita_b).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-portcullis-user"), "rita");
    assert_eq!(header(&h, "x-portcullis-account"), "acme");
    assert_eq!(header(&h, "x-portcullis-roles"), "reader");
    assert_eq!(
        header(&h, "x-portcullis-email"),
        "",
        "rita has no email: named, empty"
    );
    assert!(!header(&h, "x-portcullis-decision-id").is_empty());
    let (status, h, body) = traefik_check(&s, "POST", "/admin/x", &rita_b).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(
        body["error"]["reasons"][0],
        "post app.example.com/admin/x needs the app-admin role"
    );
    assert!(!header(&h, "x-portcullis-decision-id").is_empty());
    let (status, _, _) = traefik_check(&s, "POST", "/admin/x", &ada_b).await;
    assert_eq!(status, 200, "ada is an app-admin");
    // A listed header reaches the policy; a mapped method is the action it names.
    let mut glass = traefik("POST", "/admin/x", &rita_b);
    glass.push(("x-break-glass", "yes"));
    assert_eq!(ask(&s, "GET", "/v1/forward-auth/app", &glass).await.0, 200);
    // A listed header that cannot be shown to the policy is a 400, never left out.
    let padded = "no".repeat(3000);
    let mut glass = traefik("POST", "/admin/x", &rita_b);
    glass.push(("x-break-glass", padded.as_str()));
    let (status, _, body) = ask(&s, "GET", "/v1/forward-auth/app", &glass).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("x-break-glass: "),
        "{body}"
    );
    let (status, _, _) = traefik_check(&s, "PROPFIND", "/admin/x", &rita_b).await;
    assert_eq!(status, 200, "PROPFIND is `get` here");
    // Paths are normalised before the policy sees them.
    let (status, _, _) = traefik_check(&s, "POST", "/%70ublic/form", &rita_b).await;
    assert_eq!(status, 200, "%70 is p: /public/form");

    // nginx `auth_request` (docs/proxies.md): a GET subrequest with X-Original-*.
    let nginx = |method: &'static str, uri: &'static str, bearer: String| {
        vec![
            ("x-original-method", method),
            ("x-original-uri", uri),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-proto", "http"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .chain([("authorization", bearer)])
        .collect::<Vec<_>>()
    };
    let as_refs = |v: &Vec<(&'static str, String)>| -> Vec<(&'static str, String)> { v.clone() };
    for (method, uri, bearer, want) in [
        ("POST", "/admin", rita_b.clone(), 403),
        ("POST", "/admin", ada_b.clone(), 200),
        ("DELETE", "/public/x", rita_b.clone(), 200),
    ] {
        let h = as_refs(&nginx(method, uri, bearer));
        let refs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, body) = ask(&s, "GET", "/v1/forward-auth/app", &refs).await;
        assert_eq!(status, want, "nginx {method} {uri}: {body}");
    }

    // Kubernetes ingress-nginx (its auth template, with `auth-method: GET`): X-Original-URL,
    // X-Original-URI (the same request), X-Original-Method, X-Sent-From, X-Real-IP,
    // X-Forwarded-For, X-Auth-Request-Redirect.
    let ingress = |method: &'static str, bearer: &str| {
        vec![
            (
                "x-original-url",
                "https://app.example.com/admin/x?y=1".to_string(),
            ),
            ("x-original-uri", "/admin/x?y=1".to_string()),
            ("x-original-method", method.to_string()),
            ("x-sent-from", "nginx-ingress-controller".to_string()),
            ("x-real-ip", "203.0.113.7".to_string()),
            ("x-forwarded-for", "203.0.113.7".to_string()),
            ("x-auth-request-redirect", "/admin/x?y=1".to_string()),
            ("authorization", bearer.to_string()),
        ]
    };
    for (method, bearer, want) in [
        ("POST", &rita_b, 403),
        ("POST", &ada_b, 200),
        ("GET", &rita_b, 200),
    ] {
        let h = ingress(method, bearer);
        let refs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, body) = ask(&s, "GET", "/v1/forward-auth/app", &refs).await;
        assert_eq!(status, want, "ingress-nginx {method}: {body}");
        if want == 403 {
            assert_eq!(
                body["error"]["reasons"][0],
                "post app.example.com/admin/x needs the app-admin role"
            );
        }
    }
    // An X-Original-URI that is another request than X-Original-URL: two descriptions.
    let mut h = ingress("POST", &rita_b);
    h[1].1 = "/public/form".into();
    let refs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, body) = ask(&s, "GET", "/v1/forward-auth/app", &refs).await;
    assert_eq!(status, 400, "{body}");
    // A port is no other site: `admin.example.com:1` is decided as `admin.example.com`.
    let mut ported = traefik("POST", "/admin/x", &rita_b);
    ported.retain(|(k, _)| *k != "x-forwarded-host");
    ported.push(("x-forwarded-host", "app.example.com:0443"));
    let (status, _, body) = ask(&s, "GET", "/v1/forward-auth/app", &ported).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["reasons"][0],
        "post app.example.com/admin/x needs the app-admin role"
    );

    // Envoy's HTTP ext_authz: the original method, the path appended to path_prefix, the
    // original Host, and its default allowed headers (Host, Method, Path, Content-Length,
    // Authorization).
    fn envoy(bearer: &str) -> Vec<(&str, &str)> {
        vec![
            ("host", "app.example.com"),
            ("content-length", "0"),
            ("authorization", bearer),
        ]
    }
    let (status, _, body) = ask(
        &s,
        "POST",
        "/v1/forward-auth/app/admin/users?x=1",
        &envoy(&rita_b),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["reasons"][0],
        "post app.example.com/admin/users needs the app-admin role"
    );
    let (status, h, _) = ask(
        &s,
        "POST",
        "/v1/forward-auth/app/admin/users",
        &envoy(&ada_b),
    )
    .await;
    assert_eq!((status, header(&h, "x-portcullis-user")), (200, "ada"));
    // Envoy with the application's root: the path appended is "/".
    let (status, h, _) = ask(&s, "POST", "/v1/forward-auth/app/", &envoy(&ada_b)).await;
    assert_eq!((status, header(&h, "x-portcullis-user")), (200, "ada"));
    // A client's X-Forwarded-Host is not read in Envoy's form (Envoy sends the Host).
    let mut forged_host = envoy(&rita_b);
    forged_host.push(("x-forwarded-host", "public.example.com"));
    let (status, _, body) = ask(&s, "POST", "/v1/forward-auth/app/admin", &forged_host).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["reasons"][0],
        "post app.example.com/admin needs the app-admin role"
    );
    // `-` and no name: `[authorizer] default_policy` (`app` here).
    let (status, h, _) = ask(&s, "POST", "/v1/forward-auth/-/admin", &envoy(&ada_b)).await;
    assert_eq!((status, header(&h, "x-portcullis-user")), (200, "ada"));
    let (status, _, _) = ask(
        &s,
        "GET",
        "/v1/forward-auth",
        &traefik("POST", "/admin", &rita_b),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, body) = ask(
        &s,
        "GET",
        "/v1/forward-auth/nope",
        &traefik("GET", "/", &ada_b),
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // The Cedar version of the rules in docs/proxies.md decides the same.
    let cedar = r#"permit (principal, action == Action::"get", resource);
permit (principal in Portcullis::Role::"app-admin", action, resource);
permit (principal, action, resource) when { resource.path like "/public/*" };
"#;
    let a = s
        .put(
            "/v1/policies/app-cedar",
            &admin,
            json!({"plugin": "builtin:cedar", "settings": {"policies": cedar}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    for (method, uri, bearer, want) in [
        ("GET", "/admin", &rita_b, 200),
        ("POST", "/admin", &rita_b, 403),
        ("POST", "/admin", &ada_b, 200),
        ("POST", "/public/form", &rita_b, 200),
        ("POST", "/public/../admin", &rita_b, 400),
    ] {
        let (status, _, body) = ask(
            &s,
            "GET",
            "/v1/forward-auth/app-cedar",
            &traefik(method, uri, bearer),
        )
        .await;
        assert_eq!(status, want, "cedar {method} {uri}: {body}");
    }

    // Mapped actions and the headers the policy sees are in the decision log, with the route.
    let a = s.get("/v1/decisions?policy=app&limit=100", &admin).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let text = a.text.clone();
    assert!(text.contains("app.example.com/admin/x"), "{text}");
    assert!(!text.contains(&rita), "no key in the decision log");
    let metrics = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"portcullis_forward_auth_total{policy="app",outcome="allow"}"#)
            && metrics.contains(r#"portcullis_forward_auth_total{policy="app",outcome="deny"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn path_tricks_that_walk_around_a_prefix_rule_are_refused() {
    // The policy lets anyone POST under /public/; each of these reaches /admin in some
    // application or proxy (nginx decodes %2F and resolves dots again, Tomcat reads ..;,
    // IIS a backslash, Go keeps a raw # in the path).
    let App { s, rita, .. } = app_server(trusted_loopback).await;
    let rita_b = format!("Bearer {rita}");
    for walk in [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public/x%2F..%2F..%2Fadmin",
        "/public/..;/admin",
        "/public/x%5C..%5Cadmin",
        "/public/x#/../../admin",
    ] {
        let (status, _, body) = traefik_check(&s, "POST", walk, &rita_b).await;
        assert_eq!(status, 400, "{walk}: {body}");
    }
}

#[tokio::test]
async fn a_leaked_session_cookie_is_no_api_key() {
    // An application behind the proxy receives the browser's cookies; one that logs them
    // must not hand out a key to the whole API.
    let App { s, .. } = app_server(|c| {
        trusted_loopback(c);
        c.forward_auth.cookie = "portcullis_session".into();
    })
    .await;
    let (cookie, _) = session_login(&s).await;
    let key = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string();
    for path in ["/v1/whoami", "/v1/users/rita/keys", "/v1/accounts"] {
        let a = s.get(path, &key).await;
        assert_eq!(a.status, 401, "{path}: {}", a.text);
    }
    let a = s
        .post("/v1/users/rita/keys", &key, json!({"name": "stolen"}))
        .await;
    assert_eq!(a.status, 401, "{}", a.text);
    // What it is for still works.
    let mut h = traefik("GET", "/", "");
    h.retain(|(k, _)| *k != "authorization");
    let pair = format!("portcullis_session={key}");
    h.push(("cookie", pair.as_str()));
    assert_eq!(ask(&s, "GET", "/v1/forward-auth/app", &h).await.0, 200);
}

#[tokio::test]
async fn unauthenticated_requests_get_401_with_a_bearer_challenge() {
    let App { s, admin, rita, .. } = app_server(trusted_loopback).await;
    let challenge = |h: &HeaderMap| header(h, "www-authenticate").starts_with("Bearer");
    for bearer in [None, Some("Bearer garbage"), Some("Basic cml0YTpwdw==")] {
        let mut h = traefik("GET", "/", "");
        h.retain(|(k, _)| *k != "authorization");
        if let Some(b) = bearer {
            h.push(("authorization", b));
        }
        let (status, headers, body) = ask(&s, "GET", "/v1/forward-auth/app", &h).await;
        assert_eq!(status, 401, "{bearer:?}: {body}");
        assert!(challenge(&headers), "{bearer:?}");
    }
    // A revoked key is refused on the next request.
    let rita_b = format!("Bearer {rita}");
    assert_eq!(traefik_check(&s, "GET", "/", &rita_b).await.0, 200);
    revoke_all_keys(&s, &admin, "rita").await;
    assert_eq!(traefik_check(&s, "GET", "/", &rita_b).await.0, 401);
    // A user whose password is temporary cannot use a key until it is changed.
    let a = s
        .post(
            "/v1/accounts/acme/users",
            &admin,
            json!({"username": "tim", "password": "a temporary one", "temporary_password": true}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let a = s
        .post("/v1/users/tim/keys", &admin, json!({"name": "tim's"}))
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let tim = format!(
        "Bearer {}",
        a.body["key"]
            .as_str()
            .or(a.body["api_key"].as_str())
            .unwrap()
    );
    let (status, headers, body) = traefik_check(&s, "GET", "/", &tim).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("password_change_required")),
        "{body}"
    );
    assert!(challenge(&headers));
    // The admin is a user like any other here: the policy decides (it may read).
    let (status, headers, _) = ask(
        &s,
        "GET",
        "/v1/forward-auth/app",
        &traefik("GET", "/", &format!("Bearer {admin}")),
    )
    .await;
    assert_eq!(
        (status, header(&headers, "x-portcullis-account")),
        (200, "admin")
    );
}

#[tokio::test]
async fn bad_forwarded_headers_from_a_trusted_proxy_are_400_never_an_allow() {
    let App { s, ada, .. } = app_server(trusted_loopback).await;
    let ada_b = format!("Bearer {ada}");
    let auth = ("authorization", ada_b.as_str());
    for (headers, field) in [
        (vec![auth], "X-Forwarded-Uri: missing"),
        (
            vec![auth, ("x-forwarded-uri", "/x")],
            "X-Forwarded-Method: missing",
        ),
        (
            vec![auth, ("x-original-uri", "/x")],
            "X-Original-Method: missing",
        ),
        (
            vec![
                auth,
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "admin"),
            ],
            "X-Forwarded-Uri: ",
        ),
        (
            vec![
                auth,
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/a%zz"),
            ],
            "X-Forwarded-Uri: ",
        ),
        (
            vec![
                auth,
                ("x-forwarded-method", "G(ET"),
                ("x-forwarded-uri", "/"),
            ],
            "X-Forwarded-Method: ",
        ),
        (
            vec![
                auth,
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/"),
                ("x-forwarded-proto", "gopher"),
            ],
            "X-Forwarded-Proto: ",
        ),
        (
            vec![
                auth,
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/"),
                ("x-forwarded-host", "a/b"),
            ],
            "X-Forwarded-Host: ",
        ),
        (
            vec![
                auth,
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/"),
                ("x-forwarded-uri", "/public/"),
            ],
            "X-Forwarded-Uri: sent more than once",
        ),
        // Two conventions at once: a client added the other proxy's header.
        (
            vec![
                auth,
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/public/"),
                ("x-original-method", "GET"),
                ("x-original-uri", "/admin"),
            ],
            "X-Original-URI: sent with X-Forwarded-Uri",
        ),
        (
            vec![
                auth,
                ("x-original-method", "GET"),
                ("x-original-url", "/admin"),
            ],
            "X-Original-URL: ",
        ),
        (
            vec![
                auth,
                ("x-original-method", "GET"),
                ("x-original-url", "gopher://h/x"),
            ],
            "X-Original-URL: ",
        ),
    ] {
        let (status, _, body) = ask(&s, "GET", "/v1/forward-auth/app", &headers).await;
        assert_eq!(status, 400, "{headers:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_request");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{headers:?}: {message}");
    }
    // No policy named and no `[authorizer] default_policy`: 404, never the management
    // authorizer (whose native rules let admins do anything).
    let (status, _, body) = ask(
        &s,
        "GET",
        "/v1/forward-auth",
        &[
            auth,
            ("x-forwarded-method", "GET"),
            ("x-forwarded-uri", "/"),
        ],
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("default_policy"),
        "{body}"
    );
    // Envoy's form with a forwarded header too.
    let (status, _, body) = ask(
        &s,
        "GET",
        "/v1/forward-auth/app/admin",
        &[auth, ("x-forwarded-uri", "/public/")],
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn forward_auth_from_an_untrusted_peer_is_refused_whatever_it_forwards() {
    // The proxy is 127.0.0.1. The attacker connects from 127.0.0.2 and claims to be a
    // proxy asking about /public/ (forged headers), or sends a plain GET that would be
    // decided as itself (a `get`, which the policy allows): neither may ever pass.
    let App { s, rita, .. } = app_server(trusted_loopback).await;
    let rita_b = format!("Bearer {rita}");
    let forged = [
        ("x-forwarded-method", "POST"),
        ("x-forwarded-uri", "/public/form"),
        ("x-forwarded-host", "app.example.com"),
        ("authorization", rita_b.as_str()),
    ];
    // From the trusted proxy the same headers are believed (and allowed): the test can fail.
    assert_eq!(
        ask(&s, "POST", "/v1/forward-auth/app", &forged).await.0,
        200
    );
    let attacker = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    for (method, path, headers) in [
        ("POST", "/v1/forward-auth/app", &forged[..]),
        (
            "GET",
            "/v1/forward-auth/app",
            &[("authorization", rita_b.as_str())][..],
        ),
        (
            "POST",
            "/v1/forward-auth/app/public/x",
            &[("authorization", rita_b.as_str())][..],
        ),
        ("GET", "/v1/forward-auth/app", &[][..]),
    ] {
        let (status, _, body) = ask_with(&attacker, &s, method, path, headers).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert!(
            body["error"]["reasons"][0]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.2 is not in [forward_auth] trusted_proxies"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_session_cookie_from_login_signs_the_browser_in() {
    let App { s, .. } = app_server(|c| {
        trusted_loopback(c);
        c.forward_auth.cookie = "portcullis_session".into();
        c.forward_auth.cookie_domain = "example.com".into();
    })
    .await;
    let (cookie, body) = session_login(&s).await;
    assert!(
        body.get("api_key").is_none(),
        "the key is in the cookie only: {body}"
    );
    assert_eq!(body["user"]["username"], "rita");
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Domain=example.com",
        "Max-Age=",
    ] {
        assert!(cookie.contains(attribute), "{attribute}: {cookie}");
    }
    let pair = cookie.split(';').next().unwrap().to_string();
    let mut h = traefik("GET", "/", "");
    h.retain(|(k, _)| *k != "authorization");
    let with_cookie = format!("theme=dark; {pair}");
    h.push(("cookie", with_cookie.as_str()));
    let (status, headers, body) = ask(&s, "GET", "/v1/forward-auth/app", &h).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "x-portcullis-user"), "rita");

    // Logging out with the cookie revokes its key and clears it.
    let r = s
        .http
        .post(format!("{}/v1/logout", s.base))
        .header("cookie", with_cookie.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let cleared = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("portcullis_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(ask(&s, "GET", "/v1/forward-auth/app", &h).await.0, 401);

    // Without a configured cookie, asking for a session is an error naming the field.
    let t = TestServer::configured().await;
    let a = t
        .call(
            "POST",
            "/v1/login",
            None,
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD, "session": true})),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert!(a.message().starts_with("session: "), "{}", a.text);
}

#[tokio::test]
async fn a_plugin_that_fails_is_a_deny_never_a_5xx() {
    let App { s, admin, ada, .. } = app_server(trusted_loopback).await;
    // A Rego policy that cannot finish within the plugin's memory: the sandbox stops it.
    let a = s
        .put(
            "/v1/policies/slow",
            &admin,
            json!({"plugin": "builtin:rego", "settings": {"modules": {"slow.rego": "package portcullis\nallow if {\n  input.action.name == \"get\"\n  count([x | some x in numbers.range(1, 100000000)]) > 0\n}\n"}}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let (status, _, body) = ask(
        &s,
        "GET",
        "/v1/forward-auth/slow",
        &traefik("GET", "/", &format!("Bearer {ada}")),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
}

// ------------------------------------------------------------------- gRPC ext_authz

mod grpc {
    use super::*;
    use envoy_types::ext_authz::v3::pb::CheckRequest;
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
    use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
    use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
    use envoy_types::pb::envoy::service::auth::v3::AttributeContext;

    async fn client(s: &TestServer) -> AuthorizationClient<tonic::transport::Channel> {
        wait_until("the gRPC listener is bound", PATIENCE, || async {
            s.state.grpc_addr.get().is_some()
        })
        .await;
        let addr = s.state.grpc_addr.get().unwrap();
        AuthorizationClient::connect(format!("http://{addr}"))
            .await
            .unwrap()
    }

    /// A `CheckRequest` as Envoy builds it (`attribute_context.proto`).
    fn check(method: &str, path: &str, bearer: Option<&str>, policy: Option<&str>) -> CheckRequest {
        let mut headers: std::collections::HashMap<String, String> = [
            (":authority".to_string(), "app.example.com".to_string()),
            (":method".to_string(), method.to_string()),
            (":path".to_string(), path.to_string()),
            ("x-forwarded-proto".to_string(), "https".to_string()),
        ]
        .into();
        if let Some(b) = bearer {
            headers.insert("authorization".into(), format!("Bearer {b}"));
        }
        CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(Request {
                    http: Some(HttpRequest {
                        id: "1".into(),
                        method: method.into(),
                        headers,
                        path: path.into(),
                        host: "app.example.com".into(),
                        scheme: "https".into(),
                        protocol: "HTTP/1.1".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                context_extensions: policy
                    .map(|p| [("policy".to_string(), p.to_string())].into())
                    .unwrap_or_default(),
                ..Default::default()
            }),
        }
    }

    /// The HTTP request inside a `CheckRequest` built by [`check`].
    fn http_of(check: &mut CheckRequest) -> &mut HttpRequest {
        check
            .attributes
            .as_mut()
            .and_then(|a| a.request.as_mut())
            .and_then(|r| r.http.as_mut())
            .expect("a CheckRequest with an HTTP request")
    }

    /// The HTTP answer of a refused check.
    fn denied(
        r: &envoy_types::ext_authz::v3::pb::CheckResponse,
    ) -> &envoy_types::ext_authz::v3::pb::DeniedHttpResponse {
        match &r.http_response {
            Some(HttpResponse::DeniedResponse(d)) => d,
            _ => panic!("not a denied response: {r:?}"),
        }
    }

    fn headers_of(r: &envoy_types::ext_authz::v3::pb::CheckResponse) -> Vec<(String, String)> {
        let list = match &r.http_response {
            Some(HttpResponse::OkResponse(ok)) => &ok.headers,
            Some(HttpResponse::DeniedResponse(d)) => &d.headers,
            _ => return Vec::new(),
        };
        list.iter()
            .filter_map(|h| h.header.as_ref())
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect()
    }

    #[tokio::test]
    async fn envoy_grpc_ext_authz_checks_with_the_policy_of_the_route() {
        let App { s, rita, ada, .. } = app_server(|c| {
            trusted_loopback(c);
            c.forward_auth.grpc_listen = "127.0.0.1:0".into();
            c.forward_auth.headers = vec!["x-break-glass".into()];
        })
        .await;
        let mut c = client(&s).await;
        // `encode_raw_headers: true`: one entry per header line. A second `x-break-glass`
        // line does not replace the first: the policy sees both ("no, yes") and denies.
        let mut raw = check("POST", "/admin", Some(&rita), Some("app"));
        let http = http_of(&mut raw);
        let line = |key: &str, value: &str| envoy_types::pb::envoy::config::core::v3::HeaderValue {
            key: key.into(),
            raw_value: value.as_bytes().to_vec(),
            ..Default::default()
        };
        http.header_map = Some(envoy_types::pb::envoy::config::core::v3::HeaderMap {
            headers: vec![
                line("authorization", &format!("Bearer {rita}")),
                line("x-break-glass", "no"),
                line("x-break-glass", "yes"),
            ],
        });
        http.headers.clear();
        let r = c.check(raw.clone()).await.unwrap().into_inner();
        assert_eq!(r.status.as_ref().unwrap().code, 7, "{r:?}");
        // (the same with one line is an allow: the test can fail)
        let http = http_of(&mut raw);
        http.header_map.as_mut().unwrap().headers.remove(1);
        let r = c.check(raw).await.unwrap().into_inner();
        assert_eq!(r.status.as_ref().unwrap().code, 0, "{r:?}");
        let r = c
            .check(check("GET", "/docs?page=2", Some(&rita), Some("app")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status.as_ref().unwrap().code, 0, "{r:?}");
        let h = headers_of(&r);
        assert!(
            h.contains(&("x-portcullis-user".into(), "rita".into())),
            "{h:?}"
        );
        let r = c
            .check(check("POST", "/admin", Some(&rita), Some("app")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status.as_ref().unwrap().code,
            7,
            "PERMISSION_DENIED: {r:?}"
        );
        let d = denied(&r);
        assert_eq!(d.status.as_ref().unwrap().code, 403);
        assert!(
            d.body
                .contains("post app.example.com/admin needs the app-admin role"),
            "{}",
            d.body
        );
        let r = c
            .check(check("POST", "/admin", Some(&ada), Some("app")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status.as_ref().unwrap().code, 0);
        // No key: UNAUTHENTICATED with a 401 and the challenge.
        let r = c
            .check(check("GET", "/", None, Some("app")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status.as_ref().unwrap().code, 16, "{r:?}");
        assert!(headers_of(&r)
            .iter()
            .any(|(k, v)| k == "www-authenticate" && v.starts_with("Bearer")));
        // A garbled request: INVALID_ARGUMENT with a 400 naming the field.
        let r = c
            .check(check("GET", "no-slash", Some(&ada), Some("app")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status.as_ref().unwrap().code, 3, "{r:?}");
        let d = denied(&r);
        assert_eq!(d.status.as_ref().unwrap().code, 400);
        assert!(
            d.body.contains("attributes.request.http.path"),
            "{}",
            d.body
        );
        // An empty request (no attributes at all) is a 400 too, never an allow.
        let r = c.check(CheckRequest::default()).await.unwrap().into_inner();
        assert_eq!(r.status.as_ref().unwrap().code, 3, "{r:?}");
        // `-` names the default policy, as in the HTTP path: none is set here, so 404.
        let r = c
            .check(check("GET", "/", Some(&ada), Some("-")))
            .await
            .unwrap()
            .into_inner();
        let d = denied(&r);
        assert_eq!(d.status.as_ref().unwrap().code, 404, "{r:?}");
        // No policy named and no default policy: never the management authorizer; a 404.
        let r = c
            .check(check("GET", "/", Some(&ada), None))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status.as_ref().unwrap().code, 3, "{r:?}");
        let d = denied(&r);
        assert_eq!(d.status.as_ref().unwrap().code, 404);
    }

    #[tokio::test]
    async fn the_grpc_listener_closes_connections_from_untrusted_peers() {
        let App { s, ada, .. } = app_server(|c| {
            c.forward_auth.trusted_proxies = vec!["127.0.0.2/32".parse().unwrap()];
            c.forward_auth.grpc_listen = "127.0.0.1:0".into();
        })
        .await;
        wait_until("the gRPC listener is bound", PATIENCE, || async {
            s.state.grpc_addr.get().is_some()
        })
        .await;
        let addr = *s.state.grpc_addr.get().unwrap();
        // From 127.0.0.1 (not trusted): the connection is closed, the call fails.
        let untrusted = match AuthorizationClient::connect(format!("http://{addr}")).await {
            Ok(mut c) => c
                .check(check("GET", "/", Some(&ada), Some("app")))
                .await
                .is_err(),
            Err(_) => true,
        };
        assert!(untrusted, "an untrusted peer was answered");
        // From 127.0.0.2 (trusted): answered.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let mut slot = Some(stream);
        let channel = tonic::transport::Endpoint::from_static("http://trusted")
            .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                let stream = slot.take();
                async move {
                    stream
                        .map(hyper_util::rt::TokioIo::new)
                        .ok_or_else(|| std::io::Error::other("one connection only"))
                }
            }))
            .await
            .unwrap();
        let r = AuthorizationClient::new(channel)
            .check(check("GET", "/", Some(&ada), Some("app")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status.unwrap().code, 0);
    }
}
