//! The admin web console (SPEC §14): static pages under `/ui/`, compiled into the binary
//! (`host/server/ui/`: one HTML page, one stylesheet, one script; no build step, no CDN),
//! and the three endpoints that turn a password into the console's cookie and back.
//!
//! The console holds no powers of its own: the page calls the same `/v1` API as every
//! client, and [`caller_from_cookie`] turns its cookie into the same caller a bearer key
//! gives, so every action meets the same authorization. What the cookie adds is checked
//! there: the key in it is a `console` key (accepted from this cookie only, never as a
//! bearer key or in forward auth), the request is the console's own (`Sec-Fetch-Site:
//! same-origin`, else a matching `Origin`), and a write carries the session's CSRF token in
//! `X-CSRF-Token` (a digest of the cookie's key: only a page of this origin can read it,
//! from `GET /ui/session`).

use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_app::session;
use serde::{Deserialize, Serialize};

/// The page, its stylesheet and its script, served as they are in the repository.
const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const APP_CSS: &str = include_str!("../ui/app.css");
const FAVICON_SVG: &str = include_str!("../ui/favicon.svg");

/// No script or style but the console's own files; nothing framed, nothing posted away.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// The header that carries the CSRF token on a cookie-authenticated write.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Is the console's cookie `Secure` (over HTTPS only)? Always with `[tls]`; otherwise
/// unless the operator turned `[console] secure_cookie` off (browsers keep a `Secure`
/// cookie on `http://localhost` and `http://127.0.0.1` too).
fn secure(state: &SharedState) -> bool {
    state.config.tls.enabled() || state.config.console.secure_cookie
}

/// The cookie's name: `__Host-` when `Secure` (the browser then refuses it without
/// `Secure`, with a `Domain`, or with another `Path`: no sibling host can plant one).
pub fn cookie_name(state: &SharedState) -> &'static str {
    if secure(state) {
        "__Host-portcullis-console"
    } else {
        "portcullis-console"
    }
}

/// The CSRF token of a console session: a digest of its key, so the server keeps nothing
/// and the token dies with the key.
pub fn csrf_token(secret: &str) -> String {
    portcullis_core::keys::sha256_hex(format!("portcullis console csrf\n{secret}").as_bytes())
}

/// The console cookie's key in `headers`, if there is exactly one.
fn cookie_of<'h>(state: &SharedState, headers: &'h HeaderMap) -> Option<&'h str> {
    if !state.config.console.enabled {
        return None;
    }
    portcullis_app::forward::cookie(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        cookie_name(state),
    )
}

fn cross_site(why: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        portcullis_core::ErrorCode::Forbidden,
        format!(
            "cross-site request refused: {} (the console's cookie works only for the console's own pages)",
            why.into()
        ),
    )
}

/// Is this request the console's own page talking to its server, rather than another site
/// riding on the browser's cookie? `Sec-Fetch-Site` (every current browser sends it) must
/// say `same-origin`; without it, an `Origin` must name this host. A write must also carry
/// the session's CSRF token.
fn check_same_origin(method: &Method, headers: &HeaderMap, secret: &str) -> Result<(), ApiError> {
    check_site(headers)?;
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let expected = csrf_token(secret);
    match headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        Some(given) if portcullis_core::keys::digest_eq(given, &expected) => Ok(()),
        Some(_) => Err(cross_site(format!(
            "{CSRF_HEADER} does not match the session"
        ))),
        None => Err(cross_site(format!(
            "a write needs the session's {CSRF_HEADER} header"
        ))),
    }
}

/// `Sec-Fetch-Site: same-origin`, or (a browser without it) an `Origin` naming this host;
/// a request with neither passes (it is no browser's cross-site request: every browser
/// that omits `Sec-Fetch-Site` still sends `Origin` on a cross-site `POST`).
fn check_site(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
        Some(b"same-origin") => {}
        Some(other) => {
            return Err(cross_site(format!(
                "Sec-Fetch-Site is {:?}",
                String::from_utf8_lossy(other)
            )))
        }
        None => {
            if let Some(origin) = headers.get(header::ORIGIN) {
                let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
                let origin_host = origin
                    .to_str()
                    .ok()
                    .and_then(|o| o.split_once("://"))
                    .map(|(_, rest)| rest);
                if host.is_none() || origin_host != host {
                    return Err(cross_site("Origin is not this server"));
                }
            }
        }
    }
    Ok(())
}

/// The caller of a request that carries no `Authorization` header but the console's
/// cookie: `None` without the cookie (the request is then anonymous), else the cookie's
/// user once the request has passed the cross-site checks.
pub async fn caller_from_cookie(
    state: &SharedState,
    method: &Method,
    headers: &HeaderMap,
) -> Option<ApiResult<portcullis_app::Caller>> {
    let secret = cookie_of(state, headers)?;
    Some(
        async {
            check_same_origin(method, headers, secret)?;
            Ok(session::authenticate_console(state, Some(secret)).await?)
        }
        .await,
    )
}

/// Security headers of every console response.
fn page_headers(content_type: &'static str) -> [(HeaderName, HeaderValue); 7] {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ]
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    (page_headers(content_type), body).into_response()
}

fn disabled(state: &SharedState) -> Option<Response> {
    (!state.config.console.enabled).then(|| ApiError::not_found("route").into_response())
}

/// `GET /`: to the console.
pub async fn root(axum::extract::State(state): axum::extract::State<SharedState>) -> Response {
    if let Some(off) = disabled(&state) {
        return off;
    }
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/ui/")]).into_response()
}

/// `GET /ui/` and `GET /ui/{file}`: the page (every view is a `#/…` fragment of it), the
/// script, the stylesheet, the icon.
pub async fn asset(
    axum::extract::State(state): axum::extract::State<SharedState>,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Response {
    if let Some(off) = disabled(&state) {
        return off;
    }
    match file.as_str() {
        "index.html" => page("text/html; charset=utf-8", INDEX_HTML),
        "app.js" => page("text/javascript; charset=utf-8", APP_JS),
        "app.css" => page("text/css; charset=utf-8", APP_CSS),
        "favicon.svg" => page("image/svg+xml", FAVICON_SVG),
        _ => ApiError::not_found("console file").into_response(),
    }
}

/// `GET /ui/`: the page.
pub async fn index(axum::extract::State(state): axum::extract::State<SharedState>) -> Response {
    disabled(&state).unwrap_or_else(|| page("text/html; charset=utf-8", INDEX_HTML))
}

/// `GET /ui`: the page lives at `/ui/` (relative links resolve there).
pub async fn ui_slash(axum::extract::State(state): axum::extract::State<SharedState>) -> Response {
    if let Some(off) = disabled(&state) {
        return off;
    }
    (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, "/ui/")]).into_response()
}

/// `POST /ui/login`: the password login of `POST /v1/login` (the same checks, lockout,
/// rate limit and forced change), answered with the console's cookie.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleLogin {
    pub username: String,
    pub password: String,
    pub new_password: Option<String>,
}

/// What the page keeps in memory for the session (nothing in storage).
#[derive(Serialize)]
pub struct ConsoleSession {
    pub csrf_token: String,
    pub whoami: crate::api::session::WhoAmI,
}

pub async fn login(
    axum::extract::State(state): axum::extract::State<SharedState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    if let Some(off) = disabled(&state) {
        return Ok(off);
    }
    // A login form posted from another site would plant the attacker's session (login
    // CSRF): the same-origin check, without a token (there is no session yet), and JSON
    // only (an HTML form cannot send `application/json`; a cross-site fetch that does
    // needs a CORS preflight, which this server never grants).
    check_site(&headers)?;
    if !crate::api::content_type_is_json(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            portcullis_core::ErrorCode::UnsupportedMediaType,
            "content-type: the console's sign-in takes application/json",
        ));
    }
    let body: ConsoleLogin = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            portcullis_core::ErrorCode::InvalidRequest,
            format!(
                "body: {}",
                portcullis_core::names::printable(&e.to_string(), 200)
            ),
        )
    })?;
    let done = session::login(
        &state,
        &body.username,
        body.password,
        body.new_password,
        portcullis_core::KeyKind::Console,
    )
    .await?;
    let secret = &done.issued.secret;
    let who = async {
        // The session this browser had before, if any, ends: one sign-in, one live key.
        if let Some(previous) = cookie_of(&state, &headers) {
            session::end_console(&state, previous).await?;
        }
        let caller = session::authenticate_console(&state, Some(secret)).await?;
        let (account, default_account) = session::whoami(&state, &caller).await?;
        ApiResult::Ok(crate::api::session::WhoAmI::new(
            &caller,
            &account,
            default_account,
        ))
    }
    .await;
    let whoami = match who {
        Ok(w) => w,
        Err(e) => {
            // Refused (say, a plugin that denies reading oneself) or the previous session
            // could not be ended: the new key is never handed out, so it goes too.
            session::end_console(&state, secret).await?;
            return Err(e);
        }
    };
    let mut response = session_answer(secret, whoami);
    // No `Max-Age`: the cookie ends with the browser; the key ends at its expiry anyway.
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&state, secret, "")?);
    Ok(response)
}

/// The console's `Set-Cookie` value: `value` with the attributes every console cookie has,
/// then `extra`.
fn set_cookie(state: &SharedState, value: &str, extra: &str) -> ApiResult<HeaderValue> {
    let secure = if secure(state) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{extra}",
        cookie_name(state)
    ))
    .map_err(|_| ApiError::internal())
}

/// The session's answer to the page (never cached: it holds the CSRF token).
fn session_answer(secret: &str, whoami: crate::api::session::WhoAmI) -> Response {
    let answer = ConsoleSession {
        csrf_token: csrf_token(secret),
        whoami,
    };
    let mut response = axum::Json(answer).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /ui/session`: who the cookie is, and the session's CSRF token (401 without a live
/// session: the page then shows the sign-in form).
pub async fn current(
    axum::extract::State(state): axum::extract::State<SharedState>,
    method: Method,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(off) = disabled(&state) {
        return Ok(off);
    }
    let secret = cookie_of(&state, &headers)
        .ok_or_else(|| ApiError::from(portcullis_app::AppError::unauthorized()))?;
    let caller = caller_from_cookie(&state, &method, &headers)
        .await
        .ok_or_else(ApiError::internal)??;
    let (account, default_account) = session::whoami(&state, &caller).await?;
    Ok(session_answer(
        secret,
        crate::api::session::WhoAmI::new(&caller, &account, default_account),
    ))
}

/// `POST /ui/logout`: revoke the cookie's key and clear the cookie (cleared also when the
/// key was already dead). A session ends itself without asking the plugin, whatever the
/// state of its account; when the store cannot revoke it, the answer is that error and
/// the cookie stays, so the page can say so and try again.
pub async fn logout(
    axum::extract::State(state): axum::extract::State<SharedState>,
    method: Method,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(off) = disabled(&state) {
        return Ok(off);
    }
    if let Some(secret) = cookie_of(&state, &headers) {
        check_same_origin(&method, &headers, secret)?;
        session::end_console(&state, secret).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&state, "", "; Max-Age=0")?);
    Ok(response)
}
