//! Real nginx and real Caddy (Debian's packages) in front of a small upstream, with
//! Portcullis as their auth service, configured as `docs/proxies.md` says. Without the
//! binaries the tests say so and pass, unless `PORTCULLIS_TEST_PROXIES=required` (set by
//! `.ci/run`, which installs both): then a missing proxy is a failure.

use super::forward::{app_server, revoke_all_keys, App};
use portcullis_tests::{wait_until, TestServer, PATIENCE};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A proxy binary, from `PATH` or `/usr/sbin`; `None` (with a note) when it is missing and
/// not required.
fn binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("PORTCULLIS_TEST_PROXIES").as_deref() != Ok("required"),
            "{name} is not installed and PORTCULLIS_TEST_PROXIES=required (apt-get install nginx caddy)"
        );
        eprintln!("note: {name} is not installed: its forward-auth test did not run (apt-get install nginx caddy; CI requires it)");
    }
    found
}

/// A free loopback port (bound and released; the proxy binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An upstream application: answers every request with what it was told about the user.
async fn upstream() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let first = head.lines().next().unwrap_or_default().to_string();
                let field = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                        })
                        .unwrap_or_default()
                };
                let body = format!(
                    "upstream: {first} user={} roles={}\n",
                    field("x-portcullis-user"),
                    field("x-portcullis-roles")
                );
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    port
}

/// A proxy process, stopped when dropped.
struct Proxy {
    /// Behind a lock so the readiness poll can ask whether it exited.
    child: std::sync::Mutex<Child>,
    port: u16,
    log: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Proxy {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn start(mut command: Command, port: u16, log: PathBuf) -> Proxy {
    let out = std::fs::File::create(&log).unwrap();
    let child = command
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
    Proxy {
        child: std::sync::Mutex::new(child),
        port,
        log,
    }
}

fn nginx(bin: &Path, dir: &Path, portcullis: u16, upstream: u16) -> Proxy {
    let port = free_port();
    let d = dir.display();
    // docs/proxies.md's nginx server block, with this test's ports and folders.
    let conf = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};

    location = /_portcullis {{
      internal;
      proxy_pass http://127.0.0.1:{portcullis}/v1/forward-auth/app;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Uri "";
      proxy_set_header X-Forwarded-Method "";
    }}

    location / {{
      auth_request /_portcullis;
      auth_request_set $portcullis_user $upstream_http_x_portcullis_user;
      auth_request_set $portcullis_account $upstream_http_x_portcullis_account;
      auth_request_set $portcullis_roles $upstream_http_x_portcullis_roles;
      auth_request_set $portcullis_decision $upstream_http_x_portcullis_decision_id;
      proxy_set_header X-Portcullis-User $portcullis_user;
      proxy_set_header X-Portcullis-Account $portcullis_account;
      proxy_set_header X-Portcullis-Roles $portcullis_roles;
      proxy_set_header X-Portcullis-Decision-Id $portcullis_decision;
      proxy_pass http://127.0.0.1:{upstream};
    }}
  }}
}}
"#
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let mut command = Command::new(bin);
    command
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"));
    start(command, port, dir.join("nginx.out"))
}

fn caddy(bin: &Path, dir: &Path, portcullis: u16, upstream: u16) -> Proxy {
    let port = free_port();
    // docs/proxies.md's Caddyfile, with this test's ports.
    let conf = format!(
        r#"{{
	admin off
	auto_https off
}}

http://127.0.0.1:{port} {{
	route {{
		request_header -X-Portcullis-*
		forward_auth 127.0.0.1:{portcullis} {{
			uri /v1/forward-auth/app
			copy_headers X-Portcullis-User X-Portcullis-Account X-Portcullis-Roles X-Portcullis-Decision-Id
		}}
		reverse_proxy 127.0.0.1:{upstream}
	}}
}}
"#
    );
    std::fs::write(dir.join("Caddyfile"), conf).unwrap();
    let mut command = Command::new(bin);
    command
        .arg("run")
        .arg("--config")
        .arg(dir.join("Caddyfile"))
        .arg("--adapter")
        .arg("caddyfile")
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"));
    start(command, port, dir.join("caddy.out"))
}

/// Through `proxy`: (status, body).
async fn through(
    proxy: &Proxy,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let http = reqwest::Client::new();
    let mut req = http.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("http://127.0.0.1:{}{path}", proxy.port),
    );
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    match req.send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

/// A request written byte for byte to `proxy`; its whole answer.
async fn raw(proxy: &Proxy, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port))
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// The scenario of the issue, through one real proxy.
async fn scenario(name: &str, app: &App, proxy: Proxy) {
    let App {
        s,
        admin,
        rita,
        ada,
    } = app;
    // Up when it answers; a proxy that exited (a bad configuration) fails at once with
    // what it printed.
    wait_until(&format!("{name} answers"), PATIENCE, || async {
        if let Ok(Some(exit)) = proxy.child.lock().unwrap().try_wait() {
            panic!("{name} exited ({exit}): {}", proxy.log());
        }
        through(&proxy, "GET", "/hello", &[]).await.0 != 0
    })
    .await;
    let rita_b = format!("Bearer {rita}");
    let ada_b = format!("Bearer {ada}");
    let nora = s.user(admin, "acme", "nora", "nora's password", &[]).await;
    let nora_b = format!("Bearer {nora}");
    let log = || proxy.log();

    let (status, body) = through(&proxy, "GET", "/hello", &[]).await;
    assert_eq!(status, 401, "{name}: no key: {body} {}", log());
    let (status, body) = through(&proxy, "POST", "/admin", &[("authorization", &rita_b)]).await;
    assert_eq!(
        status,
        403,
        "{name}: rita may not POST /admin: {body} {}",
        log()
    );
    let (status, body) = through(&proxy, "GET", "/hello", &[("authorization", &rita_b)]).await;
    assert_eq!(status, 200, "{name}: {body} {}", log());
    assert!(
        body.starts_with("upstream: GET /hello HTTP/1.")
            && body.ends_with(" user=rita roles=reader\n"),
        "{name}: {body}"
    );
    let (status, body) = through(&proxy, "POST", "/admin", &[("authorization", &ada_b)]).await;
    assert_eq!(status, 200, "{name}: ada is an app-admin: {body} {}", log());
    assert!(
        body.contains("POST /admin") && body.contains("user=ada"),
        "{name}: {body}"
    );
    // What the client says about the user or the request is not believed.
    let (status, body) = through(
        &proxy,
        "GET",
        "/hello",
        &[("authorization", &rita_b), ("x-portcullis-user", "ada")],
    )
    .await;
    assert_eq!(status, 200, "{name}: {body}");
    assert!(
        body.contains("user=rita"),
        "{name}: a forged X-Portcullis-User reached the app: {body}"
    );
    let (status, body) = through(
        &proxy,
        "POST",
        "/admin",
        &[
            ("authorization", &rita_b),
            ("x-forwarded-uri", "/public/form"),
            ("x-forwarded-method", "GET"),
        ],
    )
    .await;
    assert_eq!(
        status,
        403,
        "{name}: a forged X-Forwarded-Uri was believed: {body} {}",
        log()
    );
    // A user without roles cannot give itself some: the proxy overwrites (or removes) the
    // header even when its value is empty.
    let (status, body) = through(
        &proxy,
        "GET",
        "/hello",
        &[
            ("authorization", &nora_b),
            ("x-portcullis-roles", "app-admin"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{name}: {body}");
    assert!(
        body.ends_with(" user=nora roles=\n"),
        "{name}: a forged X-Portcullis-Roles reached the app: {body}"
    );
    // Paths that walk around a prefix, sent raw (an HTTP client would tidy them first):
    // never the upstream.
    for walk in [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public/x%2F..%2F..%2Fadmin",
        "/public/..;/admin",
    ] {
        let request = format!(
            "POST {walk} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: {rita_b}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        let answer = raw(&proxy, &request).await;
        assert!(
            answer.starts_with("HTTP/1.1 ")
                && !answer.contains("upstream:")
                && !answer.starts_with("HTTP/1.1 2"),
            "{name}: {walk} reached the application: {answer}"
        );
    }
    // A revoked key: 401 on the next request.
    revoke_all_keys(s, admin, "rita").await;
    let (status, body) = through(&proxy, "GET", "/hello", &[("authorization", &rita_b)]).await;
    assert_eq!(status, 401, "{name}: a revoked key: {body}");
}

async fn server() -> App {
    app_server(|c| {
        c.forward_auth.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await
}

fn port_of(s: &TestServer) -> u16 {
    s.addr.port()
}

#[tokio::test]
async fn nginx_auth_request_in_front_of_an_upstream() {
    let Some(bin) = binary("nginx") else { return };
    let app = server().await;
    let up = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = nginx(&bin, dir.path(), port_of(&app.s), up);
    scenario("nginx", &app, proxy).await;
}

#[tokio::test]
async fn caddy_forward_auth_in_front_of_an_upstream() {
    let Some(bin) = binary("caddy") else { return };
    let app = server().await;
    let up = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = caddy(&bin, dir.path(), port_of(&app.s), up);
    scenario("caddy", &app, proxy).await;
}
