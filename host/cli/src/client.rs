//! The HTTP client side of the CLI: requests, error lines, stored credentials.

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

pub struct Client {
    pub base: String,
    key: Option<String>,
    /// Where the key came from, for the hint when the server refuses it.
    source: KeySource,
    agent: ureq::Agent,
}

/// Where a client's key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// No key (login, public endpoints).
    None,
    /// Stored by `portcullis login`.
    Login,
    /// `PORTCULLIS_API_KEY`.
    Environment,
    /// `--api-key-file`.
    File,
}

/// A key given for this run (`--api-key-file` or `PORTCULLIS_API_KEY`), which wins over
/// the one `portcullis login` stored: automation runs with a key from `keys create`, an
/// access token or the IACT admin's key, without a password.
static KEY_OVERRIDE: std::sync::OnceLock<(String, KeySource)> = std::sync::OnceLock::new();

/// A TLS client configuration trusting only the CA certificates of `--ca-file`.
static CA: std::sync::OnceLock<std::sync::Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();

/// Trust the CA certificate(s) in `path` (PEM) for HTTPS servers, instead of the public
/// roots: a server with a private or self-signed certificate.
pub fn use_ca_file(path: &std::path::Path) -> anyhow::Result<()> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("--ca-file: reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("--ca-file: {} is not PEM certificates", path.display()))?;
    if certs.is_empty() {
        bail!("--ca-file: {} holds no certificate", path.display());
    }
    for c in certs {
        roots
            .add(c)
            .with_context(|| format!("--ca-file: a certificate of {}", path.display()))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let _ = CA.set(std::sync::Arc::new(config));
    Ok(())
}

/// An HTTP agent with `timeout`, trusting `--ca-file` when it was given.
pub fn agent(timeout: std::time::Duration) -> ureq::Agent {
    let mut b = ureq::AgentBuilder::new().timeout(timeout);
    if let Some(tls) = CA.get() {
        b = b.tls_config(tls.clone());
    }
    b.build()
}

/// A key is printable ASCII (what the server issues): anything else would reach the HTTP
/// library, whose error for a bad header repeats the header — key and all — on stderr.
fn check_key(key: &str, source: KeySource) -> anyhow::Result<()> {
    if key.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    let from = match source {
        KeySource::File => "the file of --api-key-file",
        KeySource::Environment => "PORTCULLIS_API_KEY",
        KeySource::Login | KeySource::None => "the stored login (run `portcullis login` again)",
    };
    bail!("{from} holds a key with characters a key never has (a byte-order mark, a second line, spaces?); it was not sent")
}

/// Whether this run uses a key given for it (`PORTCULLIS_API_KEY`, `--api-key-file`).
pub fn key_given() -> bool {
    KEY_OVERRIDE.get().is_some()
}

/// Take the key for this run from `--api-key-file FILE` (first line, trimmed) or else from
/// `PORTCULLIS_API_KEY`. A key is never a command-line argument: other users see those.
pub fn use_key_from(file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let (key, source) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--api-key-file: reading {}", path.display()))?;
            let key = text.lines().next().unwrap_or("").trim().to_string();
            if key.is_empty() {
                bail!(
                    "--api-key-file: {} is empty (expected the API key on its first line)",
                    path.display()
                );
            }
            (key, KeySource::File)
        }
        None => match std::env::var("PORTCULLIS_API_KEY") {
            Ok(k) if !k.trim().is_empty() => (k.trim().to_string(), KeySource::Environment),
            _ => return Ok(()),
        },
    };
    check_key(&key, source)?;
    let _ = KEY_OVERRIDE.set((key, source));
    Ok(())
}

/// An error answer from the server, printed as `error: <message>`.
#[derive(Debug)]
pub struct ServerError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, HTTP {})", self.message, self.code, self.status)
    }
}
impl std::error::Error for ServerError {}

impl Client {
    pub fn new(base: &str, key: Option<String>) -> Client {
        let agent = agent(std::time::Duration::from_secs(120));
        Client {
            base: base.trim_end_matches('/').to_string(),
            source: if key.is_some() {
                KeySource::Login
            } else {
                KeySource::None
            },
            key,
            agent,
        }
    }

    /// A client using the key given for this run (`--api-key-file`, `PORTCULLIS_API_KEY`),
    /// else the key stored for this server by `portcullis login`.
    pub fn logged_in(base: &str) -> anyhow::Result<Client> {
        if let Some((key, source)) = KEY_OVERRIDE.get() {
            let mut c = Client::new(base, Some(key.clone()));
            c.source = *source;
            return Ok(c);
        }
        let creds = Credentials::load()?;
        let key = creds
            .servers
            .get(base.trim_end_matches('/'))
            .map(|e| e.api_key.clone())
            .ok_or_else(|| {
                anyhow!("not logged in to {base}: run `portcullis login <username>` first, or give an API key with PORTCULLIS_API_KEY or --api-key-file")
            })?;
        check_key(&key, KeySource::Login)?;
        Ok(Client::new(base, Some(key)))
    }

    /// What to do about a refused key (HTTP 401), by where it came from.
    fn refused_key_hint(&self) -> Option<String> {
        match self.source {
            KeySource::None => None,
            KeySource::Login => Some(format!(
                "the key `portcullis login` stored for {} is no longer valid (expired, revoked or logged out): run `portcullis login <username>` again",
                self.base
            )),
            KeySource::Environment => Some("the key in PORTCULLIS_API_KEY was refused".into()),
            KeySource::File => Some("the key in --api-key-file was refused".into()),
        }
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Option<Value>> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.request(method, &url);
        if let Some(k) = &self.key {
            req = req.set("Authorization", &format!("Bearer {k}"));
        }
        let result = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match result {
            Ok(resp) => {
                let text = resp.into_string().context("reading the response")?;
                if text.is_empty() {
                    Ok(None)
                } else {
                    Ok(Some(serde_json::from_str(&text).with_context(|| {
                        format!("the server answered something that is not JSON: {text}")
                    })?))
                }
            }
            Err(ureq::Error::Status(status, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let (code, message) = match v.get("error") {
                    Some(e) if e.is_object() => (
                        e["code"].as_str().unwrap_or("error").to_string(),
                        e["message"].as_str().unwrap_or("").to_string(),
                    ),
                    Some(Value::String(m)) => ("error".into(), m.clone()),
                    _ => ("error".into(), text),
                };
                let message = match (status, self.refused_key_hint()) {
                    (401, Some(hint)) => format!("{message}; {hint}"),
                    _ => message,
                };
                Err(ServerError {
                    status,
                    code,
                    message,
                }
                .into())
            }
            Err(ureq::Error::Transport(t)) => bail!("cannot reach {}: {t}", self.base),
        }
    }

    /// POST raw bytes (a plugin upload).
    /// POST a component. With `progress`, stderr shows how much has been sent and then,
    /// every two seconds, how long the server has been compiling it (a 20 MB component
    /// built by componentize-js or componentize-py takes seconds).
    pub fn post_bytes(&self, path: &str, bytes: Vec<u8>, progress: bool) -> anyhow::Result<Value> {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{mpsc, Arc};
        use std::time::{Duration, Instant};
        let url = format!("{}{path}", self.base);
        let mut req = self
            .agent
            .post(&url)
            .set("Content-Type", "application/wasm");
        if let Some(k) = &self.key {
            req = req.set("Authorization", &format!("Bearer {k}"));
        }
        // A length, not chunks: a proxy in front can refuse an oversized upload at once.
        req = req.set("Content-Length", &bytes.len().to_string());
        let uploaded = Arc::new(AtomicBool::new(false));
        let reader = Progress {
            total: bytes.len(),
            inner: std::io::Cursor::new(bytes),
            sent: 0,
            shown: 0,
            enabled: progress,
            finished: Some(uploaded.clone()),
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let ticker = progress.then(|| {
            std::thread::spawn(move || {
                let mut since: Option<Instant> = None;
                let mut shown = 0;
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Duration::from_millis(250))
                {
                    if !uploaded.load(Ordering::Relaxed) {
                        continue;
                    }
                    let secs = since.get_or_insert_with(Instant::now).elapsed().as_secs();
                    if secs >= shown + 2 {
                        shown = secs - secs % 2;
                        eprintln!("  the server is checking and compiling it… {shown} s");
                    }
                }
            })
        });
        let result = req.send(reader);
        drop(stop);
        if let Some(t) = ticker {
            let _ = t.join();
        }
        match result {
            Ok(resp) => Ok(serde_json::from_str(&resp.into_string()?)?),
            Err(ureq::Error::Status(status, resp)) => Err(error_of(status, resp)),
            Err(ureq::Error::Transport(t)) => bail!("cannot reach {}: {t}", self.base),
        }
    }

    /// GET a non-JSON body (CSV).
    pub fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.get(&url);
        if let Some(k) = &self.key {
            req = req.set("Authorization", &format!("Bearer {k}"));
        }
        match req.call() {
            Ok(resp) => Ok(resp.into_string()?),
            Err(ureq::Error::Status(status, resp)) => Err(error_of(status, resp)),
            Err(ureq::Error::Transport(t)) => bail!("cannot reach {}: {t}", self.base),
        }
    }

    /// POST a CSV body, reporting upload progress on stderr when `progress` is set. A 422
    /// with an import report prints each refused row before failing.
    pub fn post_csv(&self, path: &str, bytes: Vec<u8>, progress: bool) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let total = bytes.len();
        let mut req = self.agent.post(&url).set("Content-Type", "text/csv");
        if let Some(k) = &self.key {
            req = req.set("Authorization", &format!("Bearer {k}"));
        }
        let reader = Progress {
            inner: std::io::Cursor::new(bytes),
            sent: 0,
            total,
            shown: 0,
            enabled: progress,
            finished: None,
        };
        match req.send(reader) {
            Ok(resp) => {
                if progress {
                    eprintln!("uploaded; the server imported it");
                }
                Ok(serde_json::from_str(&resp.into_string()?)?)
            }
            Err(ureq::Error::Status(422, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if let Some(errors) = v["errors"].as_array() {
                    for e in errors {
                        eprintln!("row {}: {}", e["row"], e["error"].as_str().unwrap_or(""));
                    }
                    bail!("{} rows refused; nothing was imported", errors.len());
                }
                bail!("{}", v["error"]["message"].as_str().unwrap_or(&text))
            }
            Err(ureq::Error::Status(status, resp)) => Err(error_of(status, resp)),
            Err(ureq::Error::Transport(t)) => bail!("cannot reach {}: {t}", self.base),
        }
    }

    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.request("GET", path, None)?.unwrap_or(Value::Null))
    }
    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        Ok(self
            .request("POST", path, Some(body))?
            .unwrap_or(Value::Null))
    }
}

fn error_of(status: u16, resp: ureq::Response) -> anyhow::Error {
    let v: Value =
        serde_json::from_str(&resp.into_string().unwrap_or_default()).unwrap_or(Value::Null);
    ServerError {
        status,
        code: v["error"]["code"].as_str().unwrap_or("error").into(),
        message: v["error"]["message"].as_str().unwrap_or("").into(),
    }
    .into()
}

/// A reader that prints how much of a large upload has been sent.
struct Progress {
    inner: std::io::Cursor<Vec<u8>>,
    sent: usize,
    total: usize,
    shown: usize,
    enabled: bool,
    /// Set once everything has been read (the body is sent).
    finished: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl std::io::Read for Progress {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n;
        if n == 0 && !buf.is_empty() {
            if let Some(f) = &self.finished {
                f.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        if self.enabled && self.total > 0 {
            let pct = self.sent * 100 / self.total;
            if pct >= self.shown + 10 || (n == 0 && self.shown < 100) {
                self.shown = pct - pct % 10;
                eprintln!("  sent {pct}% ({} of {} bytes)", self.sent, self.total);
            }
        }
        Ok(n)
    }
}

/// `~/.config/portcullis/credentials` (or `$XDG_CONFIG_HOME/portcullis/credentials`):
/// one API key per server, mode 0600.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    pub servers: BTreeMap<String, Entry>,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub username: String,
    pub api_key: String,
}

impl Credentials {
    pub fn path() -> anyhow::Result<PathBuf> {
        let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            Some(x) => PathBuf::from(x),
            None => {
                PathBuf::from(std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set"))?)
                    .join(".config")
            }
        };
        Ok(base.join("portcullis").join("credentials"))
    }

    pub fn load() -> anyhow::Result<Credentials> {
        let path = Self::path()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Credentials::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save(&self) -> anyhow::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let path = Self::path()?;
        let dir = path.parent().expect("has a parent");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let tmp = path.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(serde_json::to_string_pretty(self)?.as_bytes())?;
        f.sync_all()?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}
