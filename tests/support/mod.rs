//! Test support: a real Portcullis server on a loopback port with a fresh SQLite database
//! in a temporary directory, and a small HTTP client for it.

use portcullis_app::config::Config;
use portcullis_server::state::SharedState;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;

/// The password every test admin ends up with.
pub const ADMIN_PASSWORD: &str = "admin passphrase for tests";

/// The plugin deadline of test servers (the product's default is 50 ms): a busy machine can
/// hold a thread off the CPU for longer than that, and only deadline tests may depend on it.
pub const PATIENT_PLUGIN_TIMEOUT_MS: u64 = 30_000;

/// How long a test waits for something that should happen "soon" (a background task, a
/// cache expiring, another server catching up) before calling it a failure. Generous on
/// purpose: the verdict is whether it happens, never how fast; speed is for benchmarks.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Poll `condition` until it holds; panic naming `what` if it still does not after
/// `bound`. The poll interval grows from 10 ms to 200 ms so a slow machine is not flooded.
pub async fn wait_until<F, Fut>(what: &str, bound: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(10);
    while !condition().await {
        assert!(
            started.elapsed() < bound,
            "{what}: still not true after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Which database a test's servers use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// The admin URL of a PostgreSQL server (`PORTCULLIS_TEST_DATABASE_URL`); each test gets
    /// a fresh database on it.
    Postgres(String),
}

tokio::task_local! {
    static BACKEND: Backend;
}

/// Run a test body with every `TestServer` it starts on `backend`.
pub async fn with_backend<F: std::future::Future<Output = ()>>(backend: Backend, body: F) {
    BACKEND.scope(backend, body).await
}

pub fn current_backend() -> Backend {
    BACKEND.try_with(|b| b.clone()).unwrap_or(Backend::Sqlite)
}

/// `PORTCULLIS_TEST_DATABASE_URL`. Unset: in CI (`CI` set) that is a failure — the
/// PostgreSQL half of the suite must run there; on a developer's machine with only Rust
/// the PostgreSQL variants are skipped with a note.
pub fn postgres_url() -> Option<String> {
    match std::env::var("PORTCULLIS_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "PORTCULLIS_TEST_DATABASE_URL is not set, and CI is: in CI the PostgreSQL half of the suite must run. Set it to a PostgreSQL admin URL (e.g. postgres://postgres@127.0.0.1:5432/postgres; see the lines under the README's test command), or unset CI to skip that half on this machine"
                );
            }
            // Once per test binary, straight to stderr (the harness captures eprintln!
            // output of passing tests, which would make the skip silent).
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "note: PORTCULLIS_TEST_DATABASE_URL is not set: {} PostgreSQL tests of this binary (named ::postgres, and the cluster tests) pass without running. Set it to a PostgreSQL admin URL to run them (see the lines under the README's test command).",
                    postgres_tests_here()
                );
            });
            None
        }
    }
}

/// How many PostgreSQL tests this test binary has: its own `--list`, counted (the tests
/// named `…::postgres`, and the cluster tests, which need two servers on one database).
fn postgres_tests_here() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "the".into();
    };
    let Ok(out) = std::process::Command::new(exe)
        .args(["--list", "--format", "terse"])
        .output()
    else {
        return "the".into();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .filter(|name| name.ends_with("::postgres") || name.starts_with("cluster::"))
        .count()
        .to_string()
}

/// Run one scenario on SQLite and on PostgreSQL: `both!(async fn name() { … })` makes the
/// tests `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both {
    ($(#[$m:meta])* async fn $name:ident() $body:block) => {
        $(#[$m])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                $crate::with_backend($crate::Backend::Sqlite, async move $body).await
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(url) = $crate::postgres_url() {
                    $crate::with_backend($crate::Backend::Postgres(url), async move $body).await
                }
            }
        }
    };
}

/// A fresh PostgreSQL database, dropped (even when the test panics) with its guard.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(admin_url: &str) -> PgDatabase {
        use sqlx::Connection;
        let name = format!(
            "pcs_test_{}",
            portcullis_core::keys::random_token(12).to_lowercase()
        );
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .expect("connect to PORTCULLIS_TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create test database");
        conn.close().await.ok();
        let url = with_database(admin_url, &name);
        PgDatabase {
            admin_url: admin_url.to_string(),
            name,
            url,
        }
    }
}

/// `admin_url` with its database replaced by `name` (query string kept).
fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    format!("{}/{name}{query}", &base[..host_end])
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside a runtime: do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                    let _ = conn.close().await;
                }
            })
        })
        .join();
    }
}

pub struct TestServer {
    /// The PostgreSQL database of this server (and of servers started on it with
    /// [`TestServer::start_beside`]); dropped last.
    pub pg: Option<std::sync::Arc<PgDatabase>>,
    pub base: String,
    pub addr: SocketAddr,
    pub state: SharedState,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// An HTTP answer: status and JSON (or text) body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The stable error code of a `/v1` error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

impl TestServer {
    /// Start with the default configuration, changed by `tweak`, on the current backend
    /// (a fresh database).
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let pg = match current_backend() {
            Backend::Sqlite => None,
            Backend::Postgres(admin) => Some(std::sync::Arc::new(PgDatabase::create(&admin).await)),
        };
        Self::start_on(pg, tweak).await
    }

    /// A second server on the same database as `self` (its own data directory).
    pub async fn start_beside(&self, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let pg = self
            .pg
            .clone()
            .expect("start_beside needs a PostgreSQL backend");
        Self::start_on(Some(pg), tweak).await
    }

    async fn start_on(
        pg: Option<std::sync::Arc<PgDatabase>>,
        tweak: impl FnOnce(&mut Config),
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::load(None, Vec::new(), Vec::new()).expect("default config");
        config.data_dir = dir.path().join("data");
        config.listen = "127.0.0.1:0".into();
        if let Some(db) = &pg {
            config.database_url = db.url.clone();
        }
        // A deadline no well-behaved decision reaches on a loaded machine: a test that is
        // about the deadline sets its own.
        config.authorizer.timeout_ms = PATIENT_PLUGIN_TIMEOUT_MS;
        // The server closes a connection idle past `http.header_read_timeout` (10 s); a
        // pooled client connection reused at that very moment fails. Test clients keep
        // connections idle for up to 90 s, so test servers wait longer than that; the
        // slowloris tests set their own short timeout.
        config.http.header_read_timeout = Duration::from_secs(600);
        // A database a starved machine answers slowly (PostgreSQL shares the two cores) is
        // not an outage: requests wait up to 30 s for a connection instead of answering
        // 503 after the product's 2 s. The outage tests set the product's value.
        config.database_timeout = Duration::from_secs(30);
        tweak(&mut config);
        let mut s = Self::start_config(config, dir).await;
        s.pg = pg;
        s
    }

    pub async fn start_config(config: Config, dir: tempfile::TempDir) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = portcullis_server::prepare_with(config, shared_runtime())
            .await
            .expect("prepare server");
        let (tx, rx) = oneshot::channel::<()>();
        let s = state.clone();
        let task = tokio::spawn(async move {
            portcullis_server::serve(s, listener, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        TestServer {
            pg: None,
            base: format!("http://{addr}"),
            addr,
            state,
            dir,
            // Answers exactly as the server gave them: a redirect is the answer, not followed.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// A server in `configured` mode whose admin has [`ADMIN_PASSWORD`].
    pub async fn configured() -> TestServer {
        Self::start_with(|c| {
            c.bootstrap.mode = portcullis_app::config::BootstrapMode::Configured;
            c.bootstrap.admin_password = ADMIN_PASSWORD.into();
        })
        .await
    }

    /// Stop and start again on the same configuration, data directory and database.
    pub async fn restart(mut self) -> TestServer {
        self.halt().await;
        let config = (*self.state.config).clone();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        let pg = self.pg.take();
        drop(self);
        let mut s = Self::start_config(config, dir).await;
        s.pg = pg;
        s
    }

    pub async fn stop(mut self) {
        self.halt().await;
    }

    async fn halt(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, body, text }
    }

    pub async fn get(&self, path: &str, key: &str) -> Answer {
        self.call("GET", path, Some(key), None).await
    }

    /// `POST /v1/plugins?name=NAME` with the component at `path`, whatever the answer.
    pub async fn upload_plugin(&self, key: &str, path: &str, name: &str) -> Answer {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let auth = format!("Bearer {key}");
        self.raw(
            "POST",
            &format!("/v1/plugins?name={name}"),
            &[
                ("authorization", &auth),
                ("content-type", "application/wasm"),
            ],
            Some(bytes),
        )
        .await
        .0
    }

    /// A request exactly as given: these headers (none added) and these body bytes; the
    /// answer and its headers.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> (Answer, reqwest::header::HeaderMap) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        (Answer { status, body, text }, headers)
    }
    pub async fn post(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call("POST", path, Some(key), Some(body)).await
    }
    pub async fn put(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call("PUT", path, Some(key), Some(body)).await
    }
    pub async fn delete(&self, path: &str, key: &str) -> Answer {
        self.call("DELETE", path, Some(key), None).await
    }

    /// Run one SQL statement on this server's database behind its back: a test's way to
    /// move a stored time (a lock, an expiry) into the past instead of waiting for the clock.
    pub async fn sql(&self, statement: &str) {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let url = self.state.config.database_url();
        let mut conn = sqlx::AnyConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        if url.starts_with("sqlite:") {
            // Wait for the server's own writers instead of failing on a busy database.
            sqlx::query("PRAGMA busy_timeout = 30000")
                .execute(&mut conn)
                .await
                .expect("busy_timeout");
        }
        sqlx::query(statement)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        conn.close().await.ok();
    }

    /// `POST /v1/login` with `username` and `password`, whatever the answer.
    pub async fn try_login(&self, username: &str, password: &str) -> Answer {
        self.call(
            "POST",
            "/v1/login",
            None,
            Some(json!({ "username": username, "password": password })),
        )
        .await
    }

    /// Log in and return the API key; panics unless the login succeeds.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let a = self.try_login(username, password).await;
        assert_eq!(a.status, 200, "login {username}: {}", a.text);
        a.body["api_key"].as_str().expect("api_key").to_string()
    }

    pub async fn admin_key(&self) -> String {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// Create an account (type `user` unless given) as `key`.
    pub async fn account(&self, key: &str, name: &str, kind: &str) {
        let a = self
            .post("/v1/accounts", key, json!({ "name": name, "type": kind }))
            .await;
        assert_eq!(a.status, 201, "create account {name}: {}", a.text);
    }

    /// Create a user with a password and return a login key for it.
    pub async fn user(
        &self,
        key: &str,
        account: &str,
        username: &str,
        password: &str,
        roles: &[&str],
    ) -> String {
        let a = self
            .post(
                &format!("/v1/accounts/{account}/users"),
                key,
                json!({ "username": username, "password": password, "roles": roles }),
            )
            .await;
        assert_eq!(a.status, 201, "create user {username}: {}", a.text);
        self.login(username, password).await
    }
}

/// One plugin runtime for every test server of this process: each plugin (the native one
/// above all) is compiled once per process instead of once per server, and the built-in
/// plugins (`builtin:cedar` and `builtin:rego` take seconds each) once per build of the
/// test binaries: their compiled code is kept under the target directory for every test
/// process after the first.
pub fn shared_runtime() -> portcullis_plugin::Runtime {
    static RUNTIME: std::sync::OnceLock<portcullis_plugin::Runtime> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let runtime = portcullis_plugin::Runtime::new().expect("plugin runtime");
            // <target>/<profile>/deps/<test binary> → <target>/<profile>/xdg-cache/…, the
            // folder the CLI keeps them in when XDG_CACHE_HOME is <target>/<profile>/xdg-cache
            // (host/cli/tests/cli.rs): one compile of each built-in for the whole suite.
            if let Some(profile) = std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent()?.parent().map(|p| p.to_path_buf()))
            {
                runtime.keep_precompiled_in(profile.join("xdg-cache/portcullis/precompiled"));
            }
            runtime
        })
        .clone()
}

/// A TCP proxy on a loopback port the test can take down and bring back: a database
/// outage (connections cut, the port closed) without touching the database server.
pub struct TcpProxy {
    pub addr: SocketAddr,
    target: SocketAddr,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl TcpProxy {
    /// Forward a free loopback port to `target`.
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let proxy = TcpProxy {
            addr,
            target,
            task: std::sync::Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let target = self.target;
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        *self.task.lock().unwrap() = Some(task);
    }

    /// The outage: every proxied connection is cut and the port refuses new ones
    /// (dropping the task drops the listener and the connection set).
    pub async fn down(&self) {
        let task = self.task.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// The database is back on the same port.
    pub async fn up(&self) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("bind the proxy's port again");
        self.serve(listener);
    }
}
