//! Test support: a real Portcullis server on a loopback port with a fresh SQLite database
//! in a temporary directory, and a small HTTP client for it.

use portcullis_server::config::Config;
use portcullis_server::state::SharedState;
use serde_json::{json, Value};
use std::net::SocketAddr;
use tokio::sync::oneshot;

/// The password every test admin ends up with.
pub const ADMIN_PASSWORD: &str = "admin passphrase for tests";

pub struct TestServer {
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
    /// Start with the default configuration, changed by `tweak`.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::load(None, Vec::new(), Vec::new()).expect("default config");
        config.data_dir = dir.path().join("data");
        config.listen = "127.0.0.1:0".into();
        tweak(&mut config);
        Self::start_config(config, dir).await
    }

    pub async fn start_config(config: Config, dir: tempfile::TempDir) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = portcullis_server::prepare(config)
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
            base: format!("http://{addr}"),
            addr,
            state,
            dir,
            http: reqwest::Client::new(),
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// A server in `configured` mode whose admin has [`ADMIN_PASSWORD`].
    pub async fn configured() -> TestServer {
        Self::start_with(|c| {
            c.bootstrap.mode = portcullis_server::config::BootstrapMode::Configured;
            c.bootstrap.admin_password = ADMIN_PASSWORD.into();
        })
        .await
    }

    /// Stop, keeping the data directory for a restart.
    pub async fn stop_keep_dir(mut self) -> tempfile::TempDir {
        self.halt().await;
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
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
    pub async fn post(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call("POST", path, Some(key), Some(body)).await
    }
    pub async fn put(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call("PUT", path, Some(key), Some(body)).await
    }
    pub async fn delete(&self, path: &str, key: &str) -> Answer {
        self.call("DELETE", path, Some(key), None).await
    }

    /// Log in and return the API key; panics unless the login succeeds.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let a = self
            .call(
                "POST",
                "/v1/login",
                None,
                Some(json!({ "username": username, "password": password })),
            )
            .await;
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
