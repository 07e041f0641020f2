//! End-to-end tests of the real `portcullis` binary: the server as a child process, the
//! CLI as further child processes, all on loopback.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

struct Server {
    child: Child,
    base: String,
    data: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
    /// The thread that copies the server's stderr into `log`; it ends at end of file.
    reader: Option<std::thread::JoinHandle<()>>,
}

/// How long a test waits for something that should happen "soon" before calling it a
/// failure. Generous on purpose: the verdict is whether it happens, never how fast.
const PATIENCE: Duration = Duration::from_secs(60);

/// Poll `condition` until it holds; panic naming `what` after `PATIENCE`.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(10);
    while !condition() {
        assert!(
            started.elapsed() < PATIENCE,
            "{what}: still not true after {:?}",
            started.elapsed()
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

fn clean_command(home: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    c
}

impl Server {
    fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        let data = dir.join("data");
        let mut cmd = clean_command(dir);
        cmd.args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(&data)
        // A plugin deadline no well-behaved decision reaches on a loaded machine (the
        // product's default is 50 ms); a test may set its own.
        .env("PORTCULLIS_AUTHORIZER_TIMEOUT_MS", "30000")
        // Pooled client connections are never closed under a test's feet (the server
        // closes connections idle past this).
        .env("PORTCULLIS_HTTP_HEADER_READ_TIMEOUT", "600s")
        .envs(env.iter().copied())
        .env("PORTCULLIS_LOG", "debug,sqlx=warn,hyper=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start server");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["fields"]["message"] == "portcullis listening" {
                        let _ =
                            tx.send(v["fields"]["addr"].as_str().unwrap_or_default().to_string());
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("server did not start: {:?}", log.lock().unwrap()));
        Server {
            child,
            base: format!("http://{addr}"),
            data,
            log,
            reader: Some(reader),
        }
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// A line of /proc/<pid>/status in KiB (VmRSS, VmHWM).
    fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// SIGKILL: no shutdown of any kind.
    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait: a graceful stop exits 0.
    fn stop(mut self) -> String {
        send_sigterm(self.child.id());
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "server exit: {status:?}\n{}",
            self.log_text()
        );
        // Every line the server wrote is in the log once its reader reaches end of file.
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        self.log_text()
    }
}

/// The workspace forbids `unsafe`, so signal through kill(1) rather than libc.
fn send_sigterm(pid: u32) {
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill -TERM {pid}");
}

/// Run the CLI with `stdin`, against `server`, with HOME = `home`.
fn cli(home: &Path, server: &str, args: &[&str], stdin: &str) -> Output {
    let mut cmd = clean_command(home);
    cmd.args(args)
        .env("PORTCULLIS_SERVER", server)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run cli");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[track_caller]
fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "failed: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[track_caller]
fn fails(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "unexpectedly succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.lines().any(|l| l.starts_with("error: ")),
        "no `error:` line: {stderr}"
    );
    stderr
}

/// `POST url` with `key` and a JSON body.
fn post(url: &str, key: &str, body: Value) -> (u16, Value) {
    http("POST", url, Some(key), Some(body))
}

fn http(method: &str, url: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut req = ureq::request(method, url);
    if let Some(k) = key {
        req = req.set("Authorization", &format!("Bearer {k}"));
    }
    let r = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    match r {
        Ok(resp) => (resp.status(), resp.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, resp)) => (code, resp.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("{e}"),
    }
}

fn stored_key(home: &Path, server: &str) -> String {
    let path = home.join(".config/portcullis/credentials");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["servers"][server]["api_key"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Bytes of every file of the SQLite database (main file and WAL).
fn database_bytes(data: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["portcullis.db", "portcullis.db-wal"] {
        if let Ok(b) = std::fs::read(data.join(name)) {
            all.extend(b);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn first_start_forced_change_accounts_users_keys_recovery_and_no_secret_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let admin_home = dir.path().join("admin-home");
    let jane_home = dir.path().join("jane-home");
    let server = Server::start(dir.path(), &[]);
    let base = server.base.clone();
    let mut secrets: Vec<String> = Vec::new();

    let temp = std::fs::read_to_string(server.data.join("initial-admin-password"))
        .unwrap()
        .trim()
        .to_string();
    secrets.push(temp.clone());
    let admin_pw = "first real admin passphrase";
    secrets.push(admin_pw.into());

    // Forced change through the CLI: current password, then the new one.
    let out = ok(&cli(
        &admin_home,
        &base,
        &["login", "admin", "--password-stdin"],
        &format!("{temp}\n{admin_pw}\n"),
    ));
    assert!(out.contains("logged in"), "{out}");
    let admin_key = stored_key(&admin_home, &base);
    secrets.push(admin_key.clone());
    let who: Value =
        serde_json::from_str(&ok(&cli(&admin_home, &base, &["whoami", "-o", "json"], ""))).unwrap();
    assert_eq!(who["username"], "admin");

    ok(&cli(
        &admin_home,
        &base,
        &["accounts", "add", "acme", "--email", "ops@acme.io"],
        "",
    ));
    let table = ok(&cli(&admin_home, &base, &["accounts", "list"], ""));
    assert!(
        table.starts_with("NAME") && table.contains("acme") && table.contains("enabled"),
        "{table}"
    );
    assert!(!table.contains("system"));

    let jane_temp = "jane temporary pass";
    let jane_pw = "jane chose this passphrase";
    secrets.extend([jane_temp.to_string(), jane_pw.to_string()]);
    ok(&cli(
        &admin_home,
        &base,
        &[
            "users",
            "create",
            "jane",
            "--account",
            "acme",
            "--temp-password",
            "--password-stdin",
            "--role",
            "acme:read:*",
        ],
        &format!("{jane_temp}\n"),
    ));
    let d: Value = serde_json::from_str(&ok(&cli(
        &admin_home,
        &base,
        &["users", "describe", "jane", "-o", "json"],
        "",
    )))
    .unwrap();
    assert_eq!(d["must_change_password"], true);
    // A mismatched login fails with one error line.
    fails(&cli(
        &jane_home,
        &base,
        &["login", "jane", "--password-stdin"],
        "not the password\n",
    ));
    ok(&cli(
        &jane_home,
        &base,
        &["login", "jane", "--password-stdin"],
        &format!("{jane_temp}\n{jane_pw}\n"),
    ));
    let jane_key = stored_key(&jane_home, &base);
    secrets.push(jane_key.clone());

    // Personal key: printed once, usable, listed without its secret.
    let created: Value = serde_json::from_str(&ok(&cli(
        &jane_home,
        &base,
        &["keys", "create", "ci", "-o", "json"],
        "",
    )))
    .unwrap();
    let personal = created["key"].as_str().unwrap().to_string();
    secrets.push(personal.clone());
    assert_eq!(
        http("GET", &format!("{base}/v1/whoami"), Some(&personal), None).0,
        200
    );
    let list = ok(&cli(&jane_home, &base, &["keys", "list"], ""));
    assert!(list.contains("ci") && !list.contains(&personal));

    // Self-service password change through the CLI.
    let jane_pw2 = "jane changed it again";
    secrets.push(jane_pw2.into());
    ok(&cli(
        &jane_home,
        &base,
        &["users", "set-password", "--password-stdin"],
        &format!("{jane_pw}\n{jane_pw2}\n"),
    ));
    assert_eq!(
        http("GET", &format!("{base}/v1/whoami"), Some(&personal), None).0,
        401,
        "other keys are revoked"
    );

    // Account deletion: refused while enabled (with the hint), then disable, then delete.
    let err = fails(&cli(
        &admin_home,
        &base,
        &["accounts", "delete", "acme", "--yes"],
        "",
    ));
    assert!(err.contains("portcullis accounts disable acme"), "{err}");
    fails(&cli(
        &admin_home,
        &base,
        &["accounts", "delete", "acme"],
        "n\n",
    ));
    ok(&cli(
        &admin_home,
        &base,
        &["accounts", "disable", "acme"],
        "",
    ));
    assert_eq!(
        http("GET", &format!("{base}/v1/whoami"), Some(&jane_key), None).0,
        401
    );
    ok(&cli(
        &admin_home,
        &base,
        &["accounts", "delete", "acme"],
        "y\n",
    ));

    // Host-side recovery while the server runs: every admin key dies, the new password works.
    let recovered = "recovered admin passphrase";
    secrets.push(recovered.into());
    let mut cmd = clean_command(dir.path());
    cmd.args([
        "server",
        "recover-admin-user",
        "--password-stdin",
        "--data-dir",
    ])
    .arg(&server.data);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{recovered}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(ok(&out).contains("recovered"));
    assert_eq!(
        http("GET", &format!("{base}/v1/whoami"), Some(&admin_key), None).0,
        401
    );
    fails(&cli(&admin_home, &base, &["whoami"], ""));
    ok(&cli(
        &admin_home,
        &base,
        &["login", "admin", "--password-stdin"],
        &format!("{recovered}\n"),
    ));
    secrets.push(stored_key(&admin_home, &base));
    // The alias form works too.
    let mut cmd = clean_command(dir.path());
    cmd.args([
        "server",
        "--recover-admin-user",
        "--password-stdin",
        "--data-dir",
    ])
    .arg(&server.data);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"alias recovery passphrase\n")
        .unwrap();
    ok(&child.wait_with_output().unwrap());
    secrets.push("alias recovery passphrase".into());

    ok(&cli(
        &admin_home,
        &base,
        &["login", "admin", "--password-stdin"],
        "alias recovery passphrase\n",
    ));
    secrets.push(stored_key(&admin_home, &base));
    ok(&cli(&admin_home, &base, &["logout"], ""));

    let data = server.data.clone();
    let log = server.stop();
    assert!(
        log.contains("portcullis listening") && log.contains("login failed"),
        "the log was captured"
    );
    let db = database_bytes(&data);
    assert!(!db.is_empty());
    for s in &secrets {
        assert!(
            !log.contains(s.as_str()),
            "secret {s:?} appears in the server log"
        );
        assert!(
            !contains(&db, s),
            "secret {s:?} appears in the database files"
        );
    }
}

#[test]
fn iact_mode_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("PORTCULLIS_BOOTSTRAP_MODE", "iact")]);
    let retrieve = || {
        let mut cmd = clean_command(dir.path());
        cmd.args(["server", "retrieve-iact", "--data-dir"])
            .arg(&server.data);
        cmd.output().unwrap()
    };
    let token = ok(&retrieve());
    let token = token.trim().to_string();
    assert_eq!(token.lines().count(), 1);
    let (status, body) = http(
        "POST",
        &format!("{}/admin/initial-admin-user?token={token}", server.base),
        None,
        Some(json!({"username":"root","email":"root@example.org","password":"root passphrase 1"})),
    );
    assert_eq!((status, body["status"].as_str()), (200, Some("created")));
    let api_key = body["token"].as_str().unwrap().to_string();
    fails(&retrieve());
    // Locked out later: recovery does not quietly add a second administrator `admin`; it
    // names the one there is.
    let recover = |extra: &[&str]| {
        let mut cmd = clean_command(dir.path());
        cmd.args([
            "server",
            "recover-admin-user",
            "--password-stdin",
            "--data-dir",
        ])
        .arg(&server.data)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"root recovered passphrase\n")
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let err = fails(&recover(&[]));
    assert!(
        err.contains("the admin account has root")
            && err.contains("--user NAME")
            && err.contains("--create"),
        "{err}"
    );
    let text = ok(&recover(&["--user", "root"]));
    assert!(text.contains("user root recovered"), "{text}");
    let (status, _) = http(
        "POST",
        &format!("{}/v1/login", server.base),
        None,
        Some(json!({"username": "root", "password": "root recovered passphrase"})),
    );
    assert_eq!(status, 200);
    let (status, _) = http(
        "POST",
        &format!("{}/v1/login", server.base),
        None,
        Some(json!({"username": "admin", "password": "root recovered passphrase"})),
    );
    assert_ne!(status, 200, "a second administrator was created");
    let log = server.stop();
    assert!(!log.contains(&token), "the IACT appears in the log");
    assert!(!log.contains(&api_key));
    assert!(!log.contains("root passphrase 1"));
}

#[test]
fn bad_configuration_fails_fast_and_says_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = clean_command(dir.path())
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("d"))
        .env("PORTCULLIS_BOOTSTRAP_MODE", "configured")
        .output()
        .unwrap();
    let err = fails(&out);
    assert!(err.contains("PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD"), "{err}");

    let cfg = dir.path().join("p.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:0\"\n[auth]\nlockout_treshold = 5\n",
    )
    .unwrap();
    let out = clean_command(dir.path())
        .args(["server", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = fails(&out);
    assert!(err.contains("lockout_treshold"), "{err}");

    let out = clean_command(dir.path())
        .args(["whoami"])
        .env("PORTCULLIS_SERVER", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let err = fails(&out);
    assert!(err.contains("not logged in"), "{err}");
}

#[test]
fn plugins_check_reports_each_case_and_fails_on_a_mismatch() {
    use portcullis_plugin::programs::paths;
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // A deadline no case reaches on a loaded machine (the default is the server's 50 ms).
    let run = |args: &[&str]| {
        clean_command(dir.path())
            .args(args)
            .args(["--timeout-ms", "30000"])
            .output()
            .unwrap()
    };

    let cases = repo.join("plugins/native/cases.json");
    let out = run(&[
        "plugins",
        "check",
        "builtin:native",
        "--cases",
        cases.to_str().unwrap(),
    ]);
    let text = ok(&out);
    assert!(
        text.contains("PASS  admin accounts may do everything"),
        "{text}"
    );
    let summary = text.lines().last().unwrap();
    assert!(
        summary.contains(" passed, 0 failed; decisions: median "),
        "{text}"
    );

    // A wrong expectation: FAIL with the plugin's reason, a count, and a non-zero exit.
    let wrong = dir.path().join("wrong.json");
    std::fs::write(
        &wrong,
        r#"{"cases": [{"name": "users may create accounts", "principal": {"username": "jane", "account": "acme", "account_type": "user"},
            "action": "accounts.create", "target": {"kind": "account", "id": "x", "account": "x"}, "expect": "allow"}]}"#,
    )
    .unwrap();
    let out = run(&[
        "plugins",
        "check",
        paths::NATIVE,
        "--cases",
        wrong.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAIL  users may create accounts  → expected allow, got deny; reasons: account type user may not accounts.create"), "{text}");
    assert!(text.contains("0 passed, 1 failed"), "{text}");

    // Settings from the command line win; a configure error is one error line.
    let out = run(&[
        "plugins",
        "check",
        paths::HOSTILE,
        "--settings",
        r#"{"mode":"fail-configure"}"#,
    ]);
    let err = fails(&out);
    assert!(err.contains("configure failed"), "{err}");
    let out = run(&[
        "plugins",
        "check",
        paths::RBAC,
        "--settings",
        "{\"roles\": {}}",
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["configure"], "ok");
    assert_eq!(v["world_version"], "portcullis:authorizer@0.2.0");
    let out = run(&["plugins", "check", "/nonexistent.wasm"]);
    fails(&out);

    // --show-logs: the plugin's own lines under the call that wrote them; a time per case.
    let tutorial_cases = repo.join("examples/plugin-tutorial/cases.json");
    let out = run(&[
        "plugins",
        "check",
        paths::TUTORIAL,
        "--cases",
        tutorial_cases.to_str().unwrap(),
        "--show-logs",
        "--repeat",
        "3",
    ]);
    let text = ok(&out);
    let lines: Vec<&str> = text.lines().collect();
    let configure = lines
        .iter()
        .position(|l| l.starts_with("configure: ok"))
        .unwrap();
    assert_eq!(
        lines[configure + 1],
        "      log info: plugin-tutorial compares attribute department",
        "{text}"
    );
    let case = lines
        .iter()
        .find(|l| l.starts_with("PASS  same department: allowed  → allow"))
        .unwrap();
    assert!(case.ends_with(" µs]") || case.ends_with(" ms]"), "{text}");
    assert!(
        lines
            .last()
            .unwrap()
            .ends_with("(median of 3 calls per case)"),
        "{text}"
    );
    // Without the flag, no log line.
    let out = run(&[
        "plugins",
        "check",
        paths::TUTORIAL,
        "--cases",
        tutorial_cases.to_str().unwrap(),
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert!(v["configure_logs"].is_null(), "{v}");
    assert!(v["cases"][0]["duration_us"].as_f64().unwrap() > 0.0, "{v}");
}

#[test]
fn policies_check_runs_cedar_and_rego_files_locally_and_explains_a_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Compiled built-ins are kept in the cache folder the other test processes use too
    // (<target>/<profile>/xdg-cache/portcullis/precompiled): one compile for the suite.
    let exe = std::env::current_exe().unwrap();
    let cache = exe.parent().unwrap().parent().unwrap().join("xdg-cache");
    let run = |args: &[&str]| {
        clean_command(dir.path())
            .env("XDG_CACHE_HOME", &cache)
            .args(args)
            .args(["--timeout-ms", "30000"])
            .output()
            .unwrap()
    };
    let policies = repo.join("docs/policies");
    let cases = repo.join("plugins/native/cases.json");
    for engine in ["cedar", "rego"] {
        let out = run(&[
            "policies",
            "check",
            "--engine",
            engine,
            "--policies",
            policies.to_str().unwrap(),
            "--cases",
            cases.to_str().unwrap(),
        ]);
        let text = ok(&out);
        assert!(
            text.lines().last().unwrap().contains(" passed, 0 failed;"),
            "{engine}: {text}"
        );
    }

    // AuthZEN questions against a Rego folder; a wrong expectation is a FAIL with the
    // engine's reasons and a non-zero exit.
    let rego = dir.path().join("rego");
    std::fs::create_dir(&rego).unwrap();
    std::fs::write(
        rego.join("todo.rego"),
        "package portcullis\n\nallow if data.owners[input.resource.id] == input.subject.id\n\nreasons contains \"not the owner\" if not allow\n",
    )
    .unwrap();
    std::fs::write(rego.join("data.json"), r#"{"owners": {"t1": "rick"}}"#).unwrap();
    let zen = dir.path().join("zen.json");
    std::fs::write(
        &zen,
        r#"{"cases": [
            {"name": "rick edits his todo", "request": {"subject": {"type": "identity", "id": "rick"}, "action": {"name": "edit"}, "resource": {"type": "todo", "id": "t1"}}, "expected": true},
            {"name": "morty edits rick's todo", "request": {"subject": {"type": "identity", "id": "morty"}, "action": {"name": "edit"}, "resource": {"type": "todo", "id": "t1"}}, "expected": true}
        ]}"#,
    )
    .unwrap();
    let out = run(&[
        "policies",
        "check",
        "--engine",
        "rego",
        "--policies",
        rego.to_str().unwrap(),
        "--cases",
        zen.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("PASS  rick edits his todo"), "{text}");
    assert!(
        text.contains(
            "FAIL  morty edits rick's todo  → expected true, got false; reasons: not the owner"
        ),
        "{text}"
    );
    assert!(text.contains("1 passed, 1 failed"), "{text}");

    // A Cedar parse error is one error line with Cedar's words.
    let cedar = dir.path().join("cedar");
    std::fs::create_dir(&cedar).unwrap();
    std::fs::write(
        cedar.join("bad.cedar"),
        "permit(principal, action, resource",
    )
    .unwrap();
    let out = run(&[
        "policies",
        "check",
        "--engine",
        "cedar",
        "--policies",
        cedar.to_str().unwrap(),
        "--cases",
        zen.to_str().unwrap(),
    ]);
    let err = fails(&out);
    assert!(err.contains("policies:"), "{err}");
    // Neither a policy name nor an engine: told what to give.
    let out = run(&["policies", "check", "--cases", zen.to_str().unwrap()]);
    assert!(!out.status.success());
}

#[test]
fn authorize_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (server, base) = configured_and_logged_in(dir.path(), &home);
    ok(&cli(&home, &base, &["accounts", "add", "acme"], ""));
    ok(&cli(
        &home,
        &base,
        &[
            "users",
            "create",
            "rita",
            "--account",
            "acme",
            "--role",
            "acme:read:*",
        ],
        "",
    ));
    // Without --account a user lands in the default user account, never beside the
    // administrator (who would make it an administrator too).
    let text = ok(&cli(
        &home,
        &base,
        &["users", "create", "bob", "-o", "json"],
        "",
    ));
    let bob: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(bob["account"], "users", "{text}");
    let out = cli(
        &home,
        &base,
        &[
            "authorize",
            "--user",
            "rita",
            "--action",
            "read",
            "--resource",
            "document/1",
            "--account",
            "acme",
        ],
        "",
    );
    let text = ok(&out);
    assert!(text.starts_with("allow"), "{text}");
    let out = cli(
        &home,
        &base,
        &[
            "authorize",
            "--user",
            "rita",
            "--action",
            "write",
            "--resource",
            "document/1",
            "--account",
            "acme",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("deny"));
    fails(&cli(
        &home,
        &base,
        &[
            "authorize",
            "--user",
            "rita",
            "--action",
            "read",
            "--resource",
            "no-slash",
        ],
        "",
    ));
    server.stop();
}

#[test]
fn plugins_upload_activate_status_decisions_and_reset_authorizer() {
    use portcullis_plugin::programs::paths;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    // Start with a plugin that denies everything: only the host-side reset gets us out.
    let settings = r#"{"mode":"deny"}"#;
    let server = Server::start(
        dir.path(),
        &[
            ("PORTCULLIS_BOOTSTRAP_MODE", "configured"),
            (
                "PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD",
                "cli admin passphrase",
            ),
            ("PORTCULLIS_AUTHORIZER_PLUGIN", paths::HOSTILE),
            ("PORTCULLIS_AUTHORIZER_SETTINGS", settings),
        ],
    );
    let base = server.base.clone();
    ok(&cli(
        &home,
        &base,
        &["login", "admin", "--password-stdin"],
        "cli admin passphrase\n",
    ));
    let err = fails(&cli(&home, &base, &["whoami"], ""));
    assert!(err.contains("forbidden"), "{err}");

    let mut cmd = clean_command(dir.path());
    cmd.args(["server", "reset-authorizer", "--data-dir"])
        .arg(&server.data);
    let text = ok(&cmd.output().unwrap());
    assert!(
        text.contains("builtin:native is the active authorizer"),
        "{text}"
    );
    wait_until("the running server picks up the reset", || {
        cli(&home, &base, &["whoami"], "").status.success()
    });

    // Upload, list, describe, activate in shadow mode, status, then enforce.
    let up: Value = serde_json::from_str(&ok(&cli(
        &home,
        &base,
        &[
            "plugins",
            "upload",
            paths::RBAC,
            "--name",
            "rbac",
            "-o",
            "json",
        ],
        "",
    )))
    .unwrap();
    let id = up["id"].as_str().unwrap().to_string();
    let list = ok(&cli(&home, &base, &["plugins", "list"], ""));
    assert!(
        list.contains("builtin:native") && list.contains(&id),
        "{list}"
    );
    let d = ok(&cli(&home, &base, &["plugins", "describe", &id], ""));
    assert!(d.contains("rbac"), "{d}");
    let settings_file = dir.path().join("rbac.json");
    std::fs::write(
        &settings_file,
        r#"{"roles": {}, "deny": [{"action": "users.delete", "reason": "never"}]}"#,
    )
    .unwrap();
    let at = format!("@{}", settings_file.display());
    let status = ok(&cli(
        &home,
        &base,
        &["plugins", "activate", &id, "--settings", &at, "--shadow"],
        "",
    ));
    assert!(
        status.contains("active:  builtin:native") && status.contains(&format!("shadow:  {id}")),
        "{status}"
    );
    let status = ok(&cli(
        &home,
        &base,
        &["plugins", "activate", &id, "--settings", &at],
        "",
    ));
    assert!(status.contains(&format!("active:  {id}")), "{status}");
    // A plugin that would lock the admin out is refused by the self-check.
    let up: Value = serde_json::from_str(&ok(&cli(
        &home,
        &base,
        &["plugins", "upload", paths::HOSTILE, "-o", "json"],
        "",
    )))
    .unwrap();
    let err = fails(&cli(
        &home,
        &base,
        &[
            "plugins",
            "activate",
            up["id"].as_str().unwrap(),
            "--settings",
            r#"{"mode":"deny"}"#,
        ],
        "",
    ));
    assert!(err.contains("self_check_failed"), "{err}");
    let st = ok(&cli(&home, &base, &["plugins", "status"], ""));
    assert!(st.contains(&format!("active:  {id}")), "{st}");
    let log = ok(&cli(
        &home,
        &base,
        &["decisions", "--action", "plugins.activate"],
        "",
    ));
    assert!(
        log.starts_with("TIME") && log.contains("plugins.activate"),
        "{log}"
    );
    server.stop();
}

#[test]
fn tokens_users_by_email_csv_and_audit_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (server, base) = configured_and_logged_in(dir.path(), &home);
    ok(&cli(&home, &base, &["accounts", "add", "acme"], ""));
    // create-by-email prints ID EMAIL ACCESS_TOKEN.
    let out = ok(&cli(
        &home,
        &base,
        &[
            "users",
            "create-by-email",
            "ann@example.org",
            "--account",
            "acme",
            "--grant-token",
        ],
        "",
    ));
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        vec!["ID", "EMAIL", "ACCESS_TOKEN"]
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..2], &["ann@example.org", "ann@example.org"]);
    let token = row[2].to_string();
    assert_eq!(
        http("GET", &format!("{base}/v1/whoami"), Some(&token), None).0,
        200
    );
    // tokens revoke / grant; users get shows the TOKEN STATUS column.
    ok(&cli(
        &home,
        &base,
        &["tokens", "revoke", "ann@example.org"],
        "",
    ));
    assert_eq!(
        http("GET", &format!("{base}/v1/whoami"), Some(&token), None).0,
        401
    );
    let list = ok(&cli(&home, &base, &["users", "get"], ""));
    assert!(
        list.contains("TOKEN STATUS") && list.contains("revoked"),
        "{list}"
    );
    let out = ok(&cli(
        &home,
        &base,
        &["tokens", "grant", "ann@example.org"],
        "",
    ));
    assert!(out.contains("access token (shown once"), "{out}");
    // Export to a file and import it into a fresh server with progress.
    let csv = ok(&cli(
        &home,
        &base,
        &["users", "export", "--include-password-hashes"],
        "",
    ));
    assert!(csv
        .starts_with("username,email,account,roles,created_at,access_token_status,password_hash"));
    let file = dir.path().join("users.csv");
    std::fs::write(&file, &csv).unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let home2 = dir2.path().join("home");
    let fresh = Server::start(
        dir2.path(),
        &[
            ("PORTCULLIS_BOOTSTRAP_MODE", "configured"),
            (
                "PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD",
                "other admin passphrase",
            ),
        ],
    );
    ok(&cli(
        &home2,
        &fresh.base,
        &["login", "admin", "--password-stdin"],
        "other admin passphrase\n",
    ));
    let out = cli(
        &home2,
        &fresh.base,
        &[
            "users",
            "import",
            "--file",
            file.to_str().unwrap(),
            "--on-conflict",
            "skip",
        ],
        "",
    );
    let text = ok(&out);
    assert!(
        text.contains("created 1, updated 0, skipped 1, accounts created 1"),
        "{text}"
    );
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(progress.contains("sent 100%"), "{progress}");
    // The exported access token (ann's, from create-by-email) is not imported, and the
    // import says so for its row.
    assert!(csv.contains(",active,"), "{csv}");
    assert!(
        progress.contains("note: row") && progress.contains("\"active\" is not imported"),
        "{progress}"
    );
    // A bad file: each refused row on stderr, one error line, non-zero exit.
    std::fs::write(&file, "username,account\nGood,acme\n").unwrap();
    let err = fails(&cli(
        &home2,
        &fresh.base,
        &["users", "import", "--file", file.to_str().unwrap()],
        "",
    ));
    assert!(err.contains("row 2: username"), "{err}");
    // The audit log from the CLI.
    let audit = ok(&cli(
        &home,
        &base,
        &["audit", "--action", "access-tokens.revoke"],
        "",
    ));
    assert!(
        audit.starts_with("TIME") && audit.contains("ann@example.org"),
        "{audit}"
    );
    fresh.stop();
    server.stop();
}

/// A server in `configured` mode, and the CLI (HOME = `home`) logged in to it as admin.
fn configured_and_logged_in(dir: &Path, home: &Path) -> (Server, String) {
    let server = Server::start(
        dir,
        &[
            ("PORTCULLIS_BOOTSTRAP_MODE", "configured"),
            (
                "PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD",
                "cli admin passphrase",
            ),
        ],
    );
    let base = server.base.clone();
    ok(&cli(
        home,
        &base,
        &["login", "admin", "--password-stdin"],
        "cli admin passphrase\n",
    ));
    (server, base)
}

fn admin_key(base: &str, password: &str) -> String {
    let (status, body) = http(
        "POST",
        &format!("{base}/v1/login"),
        None,
        Some(json!({"username": "admin", "password": password})),
    );
    assert_eq!(status, 200, "{body}");
    body["api_key"].as_str().unwrap().to_string()
}

#[test]
fn sigkill_during_a_write_burst_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("PORTCULLIS_BOOTSTRAP_MODE", "configured"),
        (
            "PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD",
            "crash admin passphrase",
        ),
    ];
    let server = Server::start(dir.path(), &env);
    let key = admin_key(&server.base, "crash admin passphrase");
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for t in 0..4 {
        let (base, key, acked, stop) = (
            server.base.clone(),
            key.clone(),
            acked.clone(),
            stop.clone(),
        );
        writers.push(std::thread::spawn(move || {
            let agent = ureq::AgentBuilder::new().timeout(PATIENCE).build();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let name = format!("crash-{t}-{i}");
                i += 1;
                let r = agent
                    .post(&format!("{base}/v1/accounts"))
                    .set("Authorization", &format!("Bearer {key}"))
                    .send_json(json!({"name": name}));
                match r {
                    Ok(resp) if resp.status() == 201 => acked.lock().unwrap().push(name),
                    Ok(_) | Err(ureq::Error::Status(..)) => {}
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    // Kill the server in the middle of the burst.
    wait_until("100 acknowledged writes", || {
        acked.lock().unwrap().len() >= 100
    });
    server.kill9();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 100);

    // Restart on the same data directory: every acknowledged write is there.
    let server = Server::start(dir.path(), &env);
    let key = admin_key(&server.base, "crash admin passphrase");
    for name in &acked {
        let (status, _) = http(
            "GET",
            &format!("{}/v1/accounts/{name}", server.base),
            Some(&key),
            None,
        );
        assert_eq!(
            status, 200,
            "acknowledged account {name} is missing after the crash"
        );
    }
    let data = server.data.clone();
    server.stop();
    let mut cmd = clean_command(dir.path());
    cmd.args(["server", "check-db", "--data-dir"]).arg(&data);
    let text = ok(&cmd.output().unwrap());
    assert!(text.contains("integrity: ok"), "{text}");
}

#[test]
fn two_hundred_concurrent_bad_logins_do_not_exhaust_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("PORTCULLIS_BOOTSTRAP_MODE", "configured"),
            (
                "PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD",
                "memory admin passphrase",
            ),
            ("PORTCULLIS_RATE_LIMIT_LOGIN_PER_MINUTE", "100000"),
        ],
    );
    let idle = server.memory_kib("VmRSS:");
    let threads: Vec<_> = (0..200)
        .map(|i| {
            let base = server.base.clone();
            std::thread::spawn(move || {
                let user = if i % 2 == 0 {
                    "admin".to_string()
                } else {
                    format!("ghost{i}")
                };
                http(
                    "POST",
                    &format!("{base}/v1/login"),
                    None,
                    Some(json!({"username": user, "password": "not the password"})),
                )
                .0
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 503),
        "{statuses:?}"
    );
    assert!(statuses.iter().filter(|s| **s == 401).count() >= 100);
    // Hashing is bounded by the core count: 200 unbounded argon2 runs would need 200 x 19 MiB.
    let peak = server.memory_kib("VmHWM:");
    eprintln!(
        "idle RSS {} MiB, peak RSS after 200 concurrent bad logins {} MiB",
        idle / 1024,
        peak / 1024
    );
    assert!(peak < 512 * 1024, "peak RSS {} MiB", peak / 1024);
    server.stop();
}

#[test]
fn policies_put_list_describe_check_and_delete_from_the_cli() {
    use portcullis_plugin::programs::paths;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (server, base) = configured_and_logged_in(dir.path(), &home);
    ok(&cli(&home, &base, &["accounts", "add", "acme"], ""));
    ok(&cli(
        &home,
        &base,
        &[
            "users",
            "create",
            "rita",
            "--account",
            "acme",
            "--role",
            "reader",
        ],
        "",
    ));
    let up: Value = serde_json::from_str(&ok(&cli(
        &home,
        &base,
        &["plugins", "upload", paths::RBAC, "-o", "json"],
        "",
    )))
    .unwrap();
    let id = up["id"].as_str().unwrap().to_string();
    // Refused settings: an error naming them, and no policy.
    let err = fails(&cli(
        &home,
        &base,
        &[
            "policies",
            "put",
            "docs",
            "--plugin",
            &id,
            "--settings",
            r#"{"roles": 5}"#,
        ],
        "",
    ));
    assert!(err.contains("settings"), "{err}");
    let settings = r#"{"roles": {"reader": ["read:document/*"]}, "admins": false}"#;
    let text = ok(&cli(
        &home,
        &base,
        &[
            "policies",
            "put",
            "docs",
            "--plugin",
            &id,
            "--settings",
            settings,
        ],
        "",
    ));
    assert!(
        text.contains("/policies/docs") && text.contains(&id),
        "{text}"
    );
    let list = ok(&cli(&home, &base, &["policies", "list"], ""));
    assert!(list.contains("docs") && list.contains(&id), "{list}");
    ok(&cli(&home, &base, &["policies", "describe", "docs"], ""));

    // `check`: every case passes, then one that does not (exit 1, the case named).
    let case = |action: &str, expected: bool| {
        json!({"name": format!("rita {action}"), "expected": expected, "request": {
            "subject": {"type": "user", "id": "rita"}, "action": {"name": action},
            "resource": {"type": "document", "id": "1"}}})
    };
    let cases = dir.path().join("cases.json");
    std::fs::write(
        &cases,
        json!({"cases": [case("read", true), case("write", false)]}).to_string(),
    )
    .unwrap();
    let cases_arg = cases.to_str().unwrap();
    let text = ok(&cli(
        &home,
        &base,
        &["policies", "check", "docs", "--cases", cases_arg],
        "",
    ));
    assert!(text.contains("2 cases, 0 failed"), "{text}");
    std::fs::write(
        &cases,
        json!({"evaluation": [case("write", true)]}).to_string(),
    )
    .unwrap();
    let out = cli(
        &home,
        &base,
        &["policies", "check", "docs", "--cases", cases_arg],
        "",
    );
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAIL rita write"), "{text}");

    // `authorize --policy` and the policy's decision log.
    ok(&cli(
        &home,
        &base,
        &[
            "authorize",
            "--user",
            "rita",
            "--action",
            "read",
            "--resource",
            "document/1",
            "--policy",
            "docs",
        ],
        "",
    ));
    let log = ok(&cli(&home, &base, &["decisions", "--policy", "docs"], ""));
    assert!(log.contains("rita"), "{log}");

    ok(&cli(&home, &base, &["policies", "delete", "docs"], ""));
    let err = fails(&cli(&home, &base, &["policies", "describe", "docs"], ""));
    assert!(err.contains("not found"), "{err}");
    drop(server);
}

/// Automation authenticates with an API key (`keys create`, an access token, the IACT
/// admin's key) from `PORTCULLIS_API_KEY` or `--api-key-file`, without a password or a
/// stored login; a refused key says where it came from, and an expired login says to log
/// in again.
#[test]
fn the_cli_authenticates_with_an_api_key_and_says_what_to_do_when_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (server, base) = configured_and_logged_in(dir.path(), &home);
    let key = admin_key(&base, "cli admin passphrase");
    // A HOME that never logged in.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let out = clean_command(&other)
        .args(["whoami", "-o", "json"])
        .env("PORTCULLIS_SERVER", &base)
        .env("PORTCULLIS_API_KEY", &key)
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["username"], "admin");
    let file = dir.path().join("key");
    std::fs::write(&file, format!("{key}\n")).unwrap();
    let out = clean_command(&other)
        .args(["users", "get", "--api-key-file", file.to_str().unwrap()])
        .env("PORTCULLIS_SERVER", &base)
        .output()
        .unwrap();
    assert!(ok(&out).contains("admin"));

    // Refused keys: exit 2, one error line naming where the key came from.
    let out = clean_command(&other)
        .args(["whoami"])
        .env("PORTCULLIS_SERVER", &base)
        .env("PORTCULLIS_API_KEY", "pk_nottherightkey")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PORTCULLIS_API_KEY was refused"), "{err}");
    let out = clean_command(&other)
        .args(["whoami", "--api-key-file", "/nonexistent/key"])
        .env("PORTCULLIS_SERVER", &base)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--api-key-file: reading /nonexistent/key")
    );
    // A key with a byte-order mark (a file saved by an editor): refused before it is sent,
    // and never printed (the HTTP library's header error would repeat it).
    let bom = dir.path().join("bom-key");
    std::fs::write(&bom, format!("\u{feff}{key}\n")).unwrap();
    let out = clean_command(&other)
        .args(["whoami", "--api-key-file", bom.to_str().unwrap()])
        .env("PORTCULLIS_SERVER", &base)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("it was not sent") && !err.contains(&key),
        "{err}"
    );
    // logout with a given key would revoke it and forget the stored login: refused.
    let out = clean_command(&home)
        .args(["logout"])
        .env("PORTCULLIS_SERVER", &base)
        .env("PORTCULLIS_API_KEY", &key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Not logged in at all: the message names both ways in.
    let err = fails(&cli(&other, &base, &["whoami"], ""));
    assert!(
        err.contains("portcullis login") && err.contains("PORTCULLIS_API_KEY"),
        "{err}"
    );

    // The stored login revoked behind the CLI's back (expired, revoked): "log in again",
    // not "a valid API key is required".
    let stored = stored_key(&home, &base);
    let (status, v) = http("GET", &format!("{base}/v1/whoami"), Some(&stored), None);
    assert_eq!(status, 200);
    let id = v["key"]["id"].as_str().unwrap().to_string();
    let (status, _) = http(
        "DELETE",
        &format!("{base}/v1/users/admin/keys/{id}"),
        Some(&key),
        None,
    );
    assert_eq!(status, 204);
    let out = cli(&home, &base, &["whoami"], "");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("run `portcullis login <username>` again"),
        "{err}"
    );
    server.stop();
}

/// `portcullis … | head`: a reader that closes early ends the CLI quietly (exit 141, as
/// a Unix tool killed by SIGPIPE), never a panic and exit 101.
#[test]
fn a_closed_pipe_ends_the_cli_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (server, base) = configured_and_logged_in(dir.path(), &home);
    for args in [
        &["whoami"][..],
        &["users", "get", "-o", "json"],
        &["users", "export"],
        &["users", "get", "admin"],
    ] {
        // The reader is gone before the CLI writes a byte: no timing involved.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = clean_command(&home)
            .args(args)
            .env("PORTCULLIS_SERVER", &base)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && err.is_empty(),
            "{args:?}: {err}"
        );
    }
    server.stop();
}

/// Text logs written to a file or a pipe carry no colour codes; with `--log-format json`
/// even a fatal start-up error is a JSON line; an error exits 2 and a deny 1.
#[test]
fn logs_to_a_pipe_are_plain_and_fatal_errors_follow_the_log_format() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = clean_command(dir.path())
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "text",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env("PORTCULLIS_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        let done = line.contains("portcullis listening");
        seen.push(line);
        if done {
            break;
        }
    }
    send_sigterm(child.id());
    child.wait().unwrap();
    let text = seen.join("\n");
    assert!(text.contains("portcullis listening"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a piped log: {text:?}"
    );

    // A fatal error in JSON mode: one JSON line, exit 2.
    let out = clean_command(dir.path())
        .args([
            "server",
            "--listen",
            "not-an-address",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(dir.path().join("data2"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert_eq!(v["level"], "ERROR");
    assert_eq!(v["fields"]["message"], "portcullis cannot start");
    assert!(
        v["fields"]["error"]
            .as_str()
            .unwrap()
            .contains("not-an-address"),
        "{v}"
    );
    assert!(!err.contains("error: "), "printed twice: {err}");
    // A configuration error before the log format is known from the file: JSON too.
    let out = clean_command(dir.path())
        .args([
            "server",
            "--log-format",
            "json",
            "--config",
            "/nonexistent.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let v: Value = serde_json::from_str(err.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {err}"));
    assert_eq!(v["level"], "ERROR");
    // A client error exits 2 (a deny is 1: authorize_from_the_cli).
    let out = clean_command(dir.path())
        .args(["whoami", "--server", "http://127.0.0.1:9"])
        .env("PORTCULLIS_API_KEY", "pk_x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `audit` and `decisions` read the log page by page: a page says when more follow and
/// how to get them (`--after`), `--all` reads to the end, and `--follow` keeps printing
/// new entries as they are written.
#[test]
fn audit_and_decisions_page_all_and_follow() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (server, base) = configured_and_logged_in(dir.path(), &home);
    let key = admin_key(&base, "cli admin passphrase");
    for i in 0..5 {
        let (status, _) = post(
            &format!("{base}/v1/accounts"),
            &key,
            json!({"name": format!("team{i}"), "type": "user"}),
        );
        assert_eq!(status, 201);
    }
    let run = |args: &[&str]| cli(&home, &base, args, "");
    let out = run(&["audit", "--action", "accounts.create", "--limit", "2"]);
    let text = ok(&out);
    assert_eq!(text.lines().count(), 3, "a header and two rows: {text}");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let after = err
        .split("--after ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no --after hint: {err}"))
        .to_string();
    let text = ok(&run(&[
        "audit",
        "--action",
        "accounts.create",
        "--limit",
        "2",
        "--after",
        &after,
    ]));
    assert!(
        text.contains("team2") && text.contains("team3") && !text.contains("team0"),
        "{text}"
    );
    let text = ok(&run(&[
        "audit",
        "--action",
        "accounts.create",
        "--limit",
        "2",
        "--all",
    ]));
    for i in 0..5 {
        assert!(text.contains(&format!("team{i}")), "{text}");
    }
    let out = run(&["decisions", "--limit", "1000", "--all", "-o", "json"]);
    let v: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert!(v["items"].as_array().unwrap().len() >= 5);

    // --follow: what is there, then what comes.
    let mut child = clean_command(&home)
        .args([
            "audit",
            "--action",
            "accounts.create",
            "--follow",
            "-o",
            "json",
            "--limit",
            "2",
        ])
        .env("PORTCULLIS_SERVER", &base)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let wait_for = |target: &str, seen: &mut Vec<String>| {
        let started = std::time::Instant::now();
        while !seen.iter().any(|l| l.contains(target)) {
            let left = PATIENCE.saturating_sub(started.elapsed());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("{target} never followed: {seen:?}"));
            seen.push(line);
        }
    };
    wait_for("\"team4\"", &mut seen);
    let (status, _) = post(
        &format!("{base}/v1/accounts"),
        &key,
        json!({"name": "late", "type": "user"}),
    );
    assert_eq!(status, 201);
    wait_for("\"late\"", &mut seen);
    for line in &seen {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(v["action"], "accounts.create");
    }
    assert_eq!(
        seen.iter().filter(|l| l.contains("\"team")).count(),
        5,
        "each entry once: {seen:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    server.stop();
}

/// Host-side commands say what to do: a database that is not there is named with the flag
/// that points to the right one (and is not created empty), and a password prompt without
/// a terminal names `--password-stdin`.
#[test]
fn host_side_errors_name_the_database_and_password_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let out = clean_command(dir.path())
        .args(["server", "check-db", "--data-dir"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "there is no database at {}",
            missing.join("portcullis.db").display()
        )) && err.contains("--data-dir"),
        "{err}"
    );
    assert!(
        !missing.join("portcullis.db").exists(),
        "an empty database was created"
    );

    // No terminal (a new session has no controlling terminal): the prompt cannot be shown.
    let out = Command::new("setsid")
        .arg(BIN)
        .args(["server", "recover-admin-user", "--data-dir"])
        .arg(&missing)
        .env_clear()
        .env("HOME", dir.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .output()
        .expect("setsid (util-linux)");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--password-stdin"), "{err}");
}

/// What operators of Keycloak, Vault and kubectl expect: `version` (the CLI's and the
/// server's), shell completion, manual pages; the server's version in `/health` and
/// `/metrics`, with the process's memory, CPU time and open files.
#[test]
fn version_completion_man_pages_and_process_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (server, base) = configured_and_logged_in(dir.path(), &home);
    let version = env!("CARGO_PKG_VERSION");
    let text = ok(&cli(&home, &base, &["version"], ""));
    assert_eq!(
        text,
        format!("portcullis {version}\nserver {version} at {base}\n")
    );
    let v: Value =
        serde_json::from_str(&ok(&cli(&home, &base, &["version", "-o", "json"], ""))).unwrap();
    assert_eq!(
        (v["client"].as_str(), v["server"].as_str()),
        (Some(version), Some(version))
    );
    // No server: the CLI's version all the same, exit 0.
    let out = cli(&home, "http://127.0.0.1:9", &["version"], "");
    assert_eq!(ok(&out), format!("portcullis {version}\n"));

    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&cli(&home, &base, &["completion", shell], ""));
        assert!(
            script.contains("portcullis") && script.contains("policies"),
            "{shell}"
        );
    }
    let page = ok(&cli(&home, &base, &["man"], ""));
    assert!(page.contains(".TH portcullis 1"), "{page}");
    let mandir = dir.path().join("man1");
    ok(&cli(
        &home,
        &base,
        &["man", "--dir", mandir.to_str().unwrap()],
        "",
    ));
    for p in [
        "portcullis.1",
        "portcullis-policies-check.1",
        "portcullis-users-import.1",
    ] {
        assert!(mandir.join(p).exists(), "{p}");
    }

    let (status, health) = http("GET", &format!("{base}/health"), None, None);
    assert_eq!((status, health["version"].as_str()), (200, Some(version)));
    let metrics = ureq::get(&format!("{base}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics.contains(&format!("portcullis_build_info{{version=\"{version}\"}} 1")),
        "{metrics}"
    );
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last()?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {metrics}"))
    };
    assert!(value("portcullis_process_resident_memory_bytes") > 1_000_000.0);
    assert!(value("portcullis_process_open_fds") >= 3.0);
    assert!(value("portcullis_process_cpu_seconds") > 0.0);
    server.stop();
}

/// `users list --account A` (Anchore's `account user list --account`), and `whoami` shows
/// the account's email without `-o json`.
#[test]
fn users_list_by_account_and_whoami_shows_the_account_email() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (server, base) = configured_and_logged_in(dir.path(), &home);
    let key = admin_key(&base, "cli admin passphrase");
    for (account, user) in [("acme", "ann"), ("beta", "bob")] {
        let (status, _) = post(
            &format!("{base}/v1/accounts"),
            &key,
            json!({"name": account, "type": "user", "email": format!("ops@{account}.example")}),
        );
        assert_eq!(status, 201);
        let (status, body) = post(
            &format!("{base}/v1/accounts/{account}/users"),
            &key,
            json!({"username": user}),
        );
        assert_eq!(status, 201, "{body}");
    }
    let text = ok(&cli(
        &home,
        &base,
        &["users", "list", "--account", "acme"],
        "",
    ));
    assert!(text.contains("ann") && !text.contains("bob"), "{text}");
    let text = ok(&cli(&home, &base, &["users", "get"], ""));
    assert!(text.contains("ann") && text.contains("bob"), "{text}");
    let text = ok(&cli(&home, &base, &["whoami"], ""));
    assert!(text.contains("account email:"), "{text}");
    // A typo in --type is told with the choices, before anything is sent.
    let out = cli(
        &home,
        &base,
        &["accounts", "add", "gamma", "--type", "bogus"],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("possible values: admin, user, service"),
        "{err}"
    );
    server.stop();
}

/// A private CA and a server certificate for 127.0.0.1 it signed (with its key), made
/// with openssl in `dir`: (CA certificate, server certificate, server key).
fn certificates(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let p = |f: &str| dir.join(format!("{name}-{f}"));
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (ca, ca_key, cert, key, csr, ext) = (
        p("ca.pem"),
        p("ca-key.pem"),
        p("cert.pem"),
        p("key.pem"),
        p("csr.pem"),
        p("ext.cnf"),
    );
    let s = |x: &PathBuf| x.to_str().unwrap().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN={name} test CA"),
        "-keyout",
        &s(&ca_key),
        "-out",
        &s(&ca),
    ]);
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
    ]);
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &s(&ext),
        "-out",
        &s(&cert),
    ]);
    (ca, cert, key)
}

/// The README's first start, over HTTPS: a server with `[tls]` (a self-signed certificate
/// made here), the CLI trusting it with --ca-file: the forced password change at first
/// login, accounts, users, keys; plain HTTP and an untrusted certificate are refused; a
/// renewed certificate is taken on SIGHUP without a restart.
#[test]
fn the_quick_start_over_https_with_a_certificate_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (ca, cert, key) = certificates(dir.path(), "first");
    let server = Server::start(
        dir.path(),
        &[
            ("PORTCULLIS_TLS_CERT_FILE", cert.to_str().unwrap()),
            ("PORTCULLIS_TLS_KEY_FILE", key.to_str().unwrap()),
        ],
    );
    let base = server.base.replace("http://", "https://");
    let initial = std::fs::read_to_string(server.data.join("initial-admin-password")).unwrap();
    let run = |ca: &Path, args: &[&str], stdin: &str| {
        let mut cmd = clean_command(&home);
        cmd.args(args)
            .env("PORTCULLIS_SERVER", &base)
            .env("PORTCULLIS_CA_FILE", ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    // The forced change at first login, with --password-stdin: the second line is the new
    // password (without it, the message says so).
    let err = fails(&run(
        &ca,
        &["login", "admin", "--password-stdin"],
        &format!("{}\n", initial.trim()),
    ));
    assert!(
        err.contains("write the new password on the second line"),
        "{err}"
    );
    let text = ok(&run(
        &ca,
        &["login", "admin", "--password-stdin"],
        &format!("{}\nhttps admin passphrase 1\n", initial.trim()),
    ));
    assert!(
        text.contains(&format!("logged in to {base} as admin")),
        "{text}"
    );
    // The temporary password's file goes once the admin has its own.
    assert!(!server.data.join("initial-admin-password").exists());
    ok(&run(
        &ca,
        &["accounts", "add", "acme", "--email", "ops@acme.io"],
        "",
    ));
    ok(&run(
        &ca,
        &[
            "users",
            "create",
            "jane",
            "--account",
            "acme",
            "--temp-password",
            "--role",
            "acme:read:*",
            "--password-stdin",
        ],
        "jane temporary 1\n",
    ));
    let users = ok(&run(&ca, &["users", "get"], ""));
    assert!(
        users.contains("jane") && users.contains("acme:read:*"),
        "{users}"
    );
    ok(&run(&ca, &["users", "describe", "jane"], ""));
    let created = ok(&run(
        &ca,
        &["keys", "create", "ci", "--expires-in", "30d"],
        "",
    ));
    assert!(created.contains("key (shown once"), "{created}");

    // Plain HTTP to the TLS port, and a certificate the CLI does not trust: refused.
    let plain = ureq::get(&format!("{}/health", server.base)).call();
    assert!(
        matches!(plain, Err(ureq::Error::Transport(_))),
        "plain HTTP answered on the TLS port: {plain:?}"
    );
    let (other, _, _) = certificates(dir.path(), "stranger");
    let out = run(&other, &["whoami"], "");
    assert_eq!(out.status.code(), Some(2));

    // A renewed certificate (another key and subject): SIGHUP, and new connections get it.
    let (renewed, renewed_cert, renewed_key) = certificates(dir.path(), "renewed");
    std::fs::copy(&renewed_cert, &cert).unwrap();
    std::fs::copy(&renewed_key, &key).unwrap();
    send_sigterm_like(server.child.id(), "HUP");
    wait_until("the renewed certificate is served", || {
        run(&renewed, &["whoami"], "").status.success()
    });
    let out = run(&other, &["whoami"], "");
    assert_eq!(out.status.code(), Some(2));
    let log = server.stop();
    assert!(log.contains("TLS certificate reloaded"), "{log}");
}

/// `kill -SIGNAL pid` (the workspace denies `unsafe`, so no libc).
fn send_sigterm_like(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill -{signal} {pid}");
}

/// `server check-config` says what the server would run with, or the first problem (exit
/// 2); `server backup --to FILE` copies a live SQLite database, and a server started on
/// the copy has the data.
#[test]
fn check_config_and_a_backup_restored_into_a_new_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = clean_command(dir.path())
        .args([
            "server",
            "check-config",
            "--listen",
            "0.0.0.0:8443",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    let text = ok(&out);
    assert!(
        text.starts_with("configuration ok") && text.contains("0.0.0.0:8443 (http)"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("plain HTTP on a non-loopback address"));
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key").unwrap();
    for (env, words) in [
        (
            vec![("PORTCULLIS_TLS_CERT_FILE", garbage.to_str().unwrap())],
            "tls.cert_file and tls.key_file go together",
        ),
        (
            vec![
                ("PORTCULLIS_TLS_CERT_FILE", garbage.to_str().unwrap()),
                ("PORTCULLIS_TLS_KEY_FILE", garbage.to_str().unwrap()),
            ],
            "tls.cert_file:",
        ),
        (
            vec![("PORTCULLIS_HTTP_MAX_CONNECTIONS", "many")],
            "max_connections",
        ),
    ] {
        let out = clean_command(dir.path())
            .args(["server", "check-config", "--data-dir"])
            .arg(&data)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{env:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(words), "{env:?}: {err}");
    }

    let home = dir.path().join("home");
    let (server, base) = configured_and_logged_in(dir.path(), &home);
    ok(&cli(&home, &base, &["accounts", "add", "acme"], ""));
    let copy = dir.path().join("backup.db");
    let text = ok(&clean_command(dir.path())
        .args([
            "server",
            "backup",
            "--to",
            copy.to_str().unwrap(),
            "--data-dir",
        ])
        .arg(&server.data)
        .output()
        .unwrap());
    assert!(text.contains("backed up to"), "{text}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the copy holds password hashes: {mode:o}");
    }
    // Never over an existing file.
    let out = clean_command(dir.path())
        .args([
            "server",
            "backup",
            "--to",
            copy.to_str().unwrap(),
            "--data-dir",
        ])
        .arg(&server.data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    server.stop();

    let restored = tempfile::tempdir().unwrap();
    let restored_data = restored.path().join("data");
    std::fs::create_dir_all(&restored_data).unwrap();
    std::fs::copy(&copy, restored_data.join("portcullis.db")).unwrap();
    let second = Server::start(restored.path(), &[]);
    let key = admin_key(&second.base, "cli admin passphrase");
    let (status, body) = http(
        "GET",
        &format!("{}/v1/accounts/acme", second.base),
        Some(&key),
        None,
    );
    assert_eq!(status, 200, "{body}");
    second.stop();
}

/// `users unlock` clears a lockout without resetting the password: the user logs in with
/// the password it had.
#[test]
fn users_unlock_clears_a_lockout_without_a_password_reset() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (server, base) = configured_and_logged_in(dir.path(), &home);
    let key = admin_key(&base, "cli admin passphrase");
    post(
        &format!("{base}/v1/accounts"),
        &key,
        json!({"name": "acme", "type": "user"}),
    );
    let (status, body) = post(
        &format!("{base}/v1/accounts/acme/users"),
        &key,
        json!({"username": "jo", "password": "jo's own passphrase 1"}),
    );
    assert_eq!(status, 201, "{body}");
    let login = |password: &str| {
        http(
            "POST",
            &format!("{base}/v1/login"),
            None,
            Some(json!({"username": "jo", "password": password})),
        )
        .0
    };
    // Wrong passwords until the lock holds: then even the right one is refused.
    for tries in 0.. {
        let (_, v) = http("GET", &format!("{base}/v1/users/jo"), Some(&key), None);
        if v["locked"] == true {
            break;
        }
        assert!(tries < 100, "no lockout after {tries} failures");
        assert_ne!(login("not it"), 200);
    }
    let (_, v) = http("GET", &format!("{base}/v1/users/jo"), Some(&key), None);
    assert_eq!(v["locked"], true, "{v}");
    assert_ne!(login("jo's own passphrase 1"), 200);
    let text = ok(&cli(&home, &base, &["users", "unlock", "jo"], ""));
    assert!(text.contains("user jo unlocked"), "{text}");
    let (_, v) = http("GET", &format!("{base}/v1/users/jo"), Some(&key), None);
    assert_eq!(v["locked"], false, "{v}");
    assert_eq!(login("jo's own passphrase 1"), 200);
    server.stop();
}

/// `-o yaml`, `-o wide` and `--no-headers` for scripts and people.
#[test]
fn output_as_yaml_wide_and_without_headers() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (server, base) = configured_and_logged_in(dir.path(), &home);
    ok(&cli(
        &home,
        &base,
        &["accounts", "add", "acme", "--email", "ops@acme.io"],
        "",
    ));
    let yaml = ok(&cli(
        &home,
        &base,
        &["accounts", "get", "acme", "-o", "yaml"],
        "",
    ));
    assert!(yaml.contains("\"name\": \"acme\"\n"), "{yaml}");
    assert!(yaml.contains("\"email\": \"ops@acme.io\"\n"), "{yaml}");
    let table = ok(&cli(&home, &base, &["accounts", "list"], ""));
    let bare = ok(&cli(
        &home,
        &base,
        &["accounts", "list", "--no-headers"],
        "",
    ));
    assert_eq!(
        bare.lines().count() + 1,
        table.lines().count(),
        "{table}\n{bare}"
    );
    assert!(!bare.contains("NAME"), "{bare}");
    // -o json is never ignored: commands without an answer of their own say what they did.
    ok(&cli(
        &home,
        &base,
        &[
            "users",
            "create",
            "tmp",
            "--account",
            "acme",
            "--password-stdin",
        ],
        "tmp user passphrase 1\n",
    ));
    let v: Value = serde_json::from_str(&ok(&cli(
        &home,
        &base,
        &["users", "delete", "tmp", "-o", "json"],
        "",
    )))
    .unwrap();
    assert_eq!(v["deleted"], "tmp");
    let key: Value = serde_json::from_str(&ok(&cli(
        &home,
        &base,
        &["keys", "create", "k", "-o", "json"],
        "",
    )))
    .unwrap();
    let id = key["id"].as_str().unwrap();
    let v: Value = serde_json::from_str(&ok(&cli(
        &home,
        &base,
        &["keys", "revoke", id, "-o", "json"],
        "",
    )))
    .unwrap();
    assert_eq!(v["revoked"], id);
    let users = ok(&cli(&home, &base, &["users", "get"], ""));
    let wide = ok(&cli(&home, &base, &["users", "get", "-o", "wide"], ""));
    let header = wide.lines().next().unwrap();
    assert!(
        header.contains("MUST_CHANGE_PASSWORD") && !users.contains("MUST_CHANGE_PASSWORD"),
        "{header}"
    );
    server.stop();
}

/// `login --sso`: an ID token from the identity provider, pasted or on stdin, logs its
/// user in and the key is stored like a password login's.
#[test]
fn login_with_an_id_token_from_single_sign_on() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let seed = [7u8; 32];
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public);
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "alg": "EdDSA", "use": "sig"}]}).to_string(),
    )
    .unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("PORTCULLIS_BOOTSTRAP_MODE", "configured"),
            (
                "PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD",
                "cli admin passphrase",
            ),
            ("PORTCULLIS_OIDC_ISSUER", "https://idp.example.org"),
            ("PORTCULLIS_OIDC_AUDIENCE", "portcullis"),
            ("PORTCULLIS_OIDC_JWKS_FILE", jwks.to_str().unwrap()),
            ("PORTCULLIS_OIDC_ACCOUNT", "sso"),
        ],
    );
    let base = server.base.clone();
    let key = admin_key(&base, "cli admin passphrase");
    let (status, body) = post(
        &format!("{base}/v1/accounts"),
        &key,
        json!({"name": "sso", "type": "user"}),
    );
    assert_eq!(status, 201, "{body}");
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("k1".into());
    let token = jsonwebtoken::encode(
        &header,
        &json!({"iss": "https://idp.example.org", "aud": "portcullis", "sub": "u-42", "email": "rae@corp.example", "email_verified": true, "iat": now, "exp": now + 600}),
        &jsonwebtoken::EncodingKey::from_ed_der(&der),
    )
    .unwrap();
    let home = dir.path().join("home");
    let text = ok(&cli(
        &home,
        &base,
        &["login", "--sso", "--password-stdin"],
        &format!("{token}\n"),
    ));
    assert!(text.contains("as rae@corp.example"), "{text}");
    let who: Value =
        serde_json::from_str(&ok(&cli(&home, &base, &["whoami", "-o", "json"], ""))).unwrap();
    assert_eq!(who["username"], "rae@corp.example");
    assert_eq!(who["account"]["name"], "sso");
    // A forged token: refused, nothing stored over the good login.
    let err = fails(&cli(
        &home,
        &base,
        &["login", "--sso", "--password-stdin"],
        "not.a.token\n",
    ));
    assert!(err.contains("HTTP 401"), "{err}");
    ok(&cli(&home, &base, &["whoami"], ""));
    server.stop();
}
