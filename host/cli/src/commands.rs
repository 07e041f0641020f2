//! The client subcommands: each one an HTTP call (or two) to a running server.

use crate::client::{Client, Credentials, Entry, ServerError};
use crate::host::read_new_password;
use crate::output::{self, Format};
use crate::Global;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::io::{BufRead, IsTerminal, Write};

pub fn enc(s: &str) -> String {
    // Path segments: names are [a-z0-9._@-]; anything else is percent-encoded.
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Args)]
pub struct LoginArgs {
    /// The user to log in as (not with --sso: the ID token names the user).
    #[arg(required_unless_present = "sso", conflicts_with = "sso")]
    username: Option<String>,
    /// Read the password from stdin (first line); when a change is required, the new
    /// password from the second line.
    #[arg(long)]
    password_stdin: bool,
    /// Single sign-on: log in with an ID token from the configured identity provider
    /// (`[oidc]`), pasted at the prompt (not echoed) or, with --password-stdin, read from
    /// the first line of stdin. The server finds or creates the user the token names.
    #[arg(long)]
    sso: bool,
    /// Print {"api_key": …} instead of storing the key.
    #[arg(long)]
    raw: bool,
}

pub fn login(g: &Global, args: LoginArgs) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    if args.sso {
        let token = if args.password_stdin {
            lines
                .next()
                .context("expected the ID token on stdin")??
                .trim()
                .to_string()
        } else {
            rpassword::prompt_password("ID token: ").context(
                "reading the ID token from the terminal (without one, pass --password-stdin and write it on stdin)",
            )?
        };
        let client = Client::new(&g.server, None);
        let answer = client.post("/v1/login/oidc", &json!({ "id_token": token.trim() }))?;
        let username = answer["user"]["username"]
            .as_str()
            .context("the server answered without a user")?
            .to_string();
        return store_login(g.output, &client, &username, &answer, args.raw);
    }
    let username = args.username.clone().unwrap_or_default();
    let password = if args.password_stdin {
        lines
            .next()
            .context("expected the password on stdin")??
            .trim_end_matches(['\r', '\n'])
            .to_string()
    } else {
        rpassword::prompt_password("Password: ")
            .context("reading the password from the terminal")?
    };
    let client = Client::new(&g.server, None);
    let body = json!({ "username": username, "password": password });
    let answer = match client.post("/v1/login", &body) {
        Ok(v) => v,
        Err(e) => match e.downcast_ref::<ServerError>() {
            Some(se) if se.code == "password_change_required" => {
                if !args.password_stdin {
                    eprintln!("Your password is temporary and must be changed now.");
                }
                let new_password =
                    read_new_password(args.password_stdin, &mut lines, "New password")
                        .context("the password is temporary and must be changed now: with --password-stdin, write the new password on the second line")?;
                client.post("/v1/login", &json!({ "username": username, "password": password, "new_password": new_password }))?
            }
            _ => return Err(e),
        },
    };
    store_login(g.output, &client, &username, &answer, args.raw)
}

/// Keep (or with `raw`, print) the key a login answered.
fn store_login(
    format: Format,
    client: &Client,
    username: &str,
    answer: &Value,
    raw: bool,
) -> anyhow::Result<()> {
    let key = answer["api_key"]
        .as_str()
        .context("the server answered without an api_key")?
        .to_string();
    if raw {
        println!(
            "{}",
            json!({ "api_key": key, "expires_at": answer["expires_at"] })
        );
        return Ok(());
    }
    let mut creds = Credentials::load()?;
    creds.servers.insert(
        client.base.clone(),
        Entry {
            username: username.to_string(),
            api_key: key,
        },
    );
    creds.save()?;
    output::done(
        format,
        &format!(
            "logged in to {} as {} (key expires {})",
            client.base,
            username,
            output::cell(&answer["expires_at"])
        ),
        &json!({"server": client.base, "username": username, "expires_at": answer["expires_at"]}),
    );
    Ok(())
}

pub fn logout(g: &Global) -> anyhow::Result<()> {
    if crate::client::key_given() {
        anyhow::bail!("logout ends the login `portcullis login` stored; unset PORTCULLIS_API_KEY (or drop --api-key-file) to run it — to revoke an API key, use `portcullis keys revoke ID`");
    }
    let client = Client::logged_in(&g.server)?;
    let result = client.request("POST", "/v1/logout", None);
    let mut creds = Credentials::load()?;
    creds.servers.remove(&client.base);
    creds.save()?;
    match result {
        Ok(_) => output::done(
            g.output,
            &format!("logged out of {}", client.base),
            &json!({"server": client.base, "logged_out": true}),
        ),
        Err(e)
            if e.downcast_ref::<ServerError>()
                .is_some_and(|s| s.status == 401) =>
        {
            output::done(
                g.output,
                &format!(
                    "logged out of {} (the key was no longer valid)",
                    client.base
                ),
                &json!({"server": client.base, "logged_out": true, "key_was_valid": false}),
            )
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// `portcullis version`: this CLI's version, and the server's from `/health` (no key
/// needed) when it answers within a few seconds.
pub fn version(g: &Global) -> anyhow::Result<()> {
    let client_version = env!("CARGO_PKG_VERSION");
    let agent = crate::client::agent(std::time::Duration::from_secs(5));
    let url = format!("{}/health", g.server.trim_end_matches('/'));
    let server: Result<String, String> = agent
        .get(&url)
        .call()
        .map_err(|e| e.to_string())
        .and_then(|r| r.into_json::<Value>().map_err(|e| e.to_string()))
        .map(|v| v["version"].as_str().unwrap_or("unknown").to_string());
    match g.output {
        Format::Json => output::json(&json!({
            "client": client_version,
            "server": server.as_ref().ok(),
            "server_url": g.server,
        })),
        Format::Table => {
            println!("portcullis {client_version}");
            match &server {
                Ok(v) => println!("server {v} at {}", g.server),
                Err(e) => eprintln!("server at {}: not reachable ({e})", g.server),
            }
        }
    }
    Ok(())
}

/// `accounts add --type`: checked by the CLI, so a typo is told with the choices.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum AccountKind {
    /// Administrators: may do everything (native rules).
    Admin,
    /// People: act inside their own account.
    User,
    /// Automation: may do everything (native rules).
    Service,
}

impl AccountKind {
    fn as_str(self) -> &'static str {
        match self {
            AccountKind::Admin => "admin",
            AccountKind::User => "user",
            AccountKind::Service => "service",
        }
    }
}

pub fn whoami(g: &Global) -> anyhow::Result<()> {
    let v = Client::logged_in(&g.server)?.get("/v1/whoami")?;
    match g.output {
        Format::Json => output::json(&v),
        Format::Table => {
            let flat = json!({
                "username": v["username"], "account_email": v["account"]["email"], "account": v["account"]["name"], "type": v["account"]["type"],
                "state": v["account"]["state"], "roles": v["roles"], "attributes": v["attributes"],
                "key": v["key"]["id"], "kind": v["key"]["kind"], "expires_at": v["key"]["expires_at"],
            });
            output::record(
                &flat,
                &[
                    ("username", "username"),
                    ("account", "account"),
                    ("account email", "account_email"),
                    ("account type", "type"),
                    ("account state", "state"),
                    ("roles", "roles"),
                    ("attributes", "attributes"),
                    ("key", "key"),
                    ("key kind", "kind"),
                    ("key expires", "expires_at"),
                ],
            );
        }
    }
    Ok(())
}

fn print(g: &Global, v: &Value, columns: &[(&str, &str)]) {
    match g.output {
        Format::Json => output::json(v),
        Format::Table => {
            if let Some(items) = v["items"].as_array() {
                output::table(items, columns);
            } else {
                output::table(std::slice::from_ref(v), columns);
            }
        }
    }
}

/// Fetch every page of a list endpoint.
fn all_pages(client: &Client, path: &str) -> anyhow::Result<Value> {
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &after {
            Some(a) => format!("{path}{sep}limit=1000&after={}", enc(a)),
            None => format!("{path}{sep}limit=1000"),
        };
        let page = client.get(&url)?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    Ok(json!({ "items": items }))
}

const ACCOUNT_COLUMNS: &[(&str, &str)] = &[
    ("NAME", "name"),
    ("TYPE", "type"),
    ("STATE", "state"),
    ("EMAIL", "email"),
    ("CREATED", "created_at"),
];

#[derive(Subcommand)]
pub enum AccountsCmd {
    /// Create an account, e.g. `portcullis accounts add acme --email ops@acme.io`.
    Add {
        /// The account's name (`[a-z0-9][a-z0-9._-]{0,62}`).
        name: String,
        /// A contact address for the account.
        #[arg(long)]
        email: Option<String>,
        /// What the account is for (default user).
        #[arg(long = "type", value_enum)]
        kind: Option<AccountKind>,
    },
    /// List accounts.
    List,
    /// Show one account.
    Get {
        /// The account.
        name: String,
    },
    /// Enable an account.
    Enable {
        /// The account.
        name: String,
    },
    /// Disable an account: every key of its users fails until it is enabled again.
    Disable {
        /// The account.
        name: String,
    },
    /// Delete a disabled account with all its users and keys.
    Delete {
        /// The account (disable it first: `portcullis accounts disable NAME`).
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

pub fn accounts(g: &Global, cmd: AccountsCmd) -> anyhow::Result<()> {
    let client = Client::logged_in(&g.server)?;
    match cmd {
        AccountsCmd::Add { name, email, kind } => {
            let mut body = json!({ "name": name });
            if let Some(e) = email {
                body["email"] = json!(e);
            }
            if let Some(k) = kind {
                body["type"] = json!(k.as_str());
            }
            print(g, &client.post("/v1/accounts", &body)?, ACCOUNT_COLUMNS);
        }
        AccountsCmd::List => print(g, &all_pages(&client, "/v1/accounts")?, ACCOUNT_COLUMNS),
        AccountsCmd::Get { name } => print(
            g,
            &client.get(&format!("/v1/accounts/{}", enc(&name)))?,
            ACCOUNT_COLUMNS,
        ),
        AccountsCmd::Enable { name } => set_state(g, &client, &name, "enabled")?,
        AccountsCmd::Disable { name } => set_state(g, &client, &name, "disabled")?,
        AccountsCmd::Delete { name, yes } => {
            if !yes
                && !confirm(&format!(
                    "Delete account {name} with all its users and keys?"
                ))?
            {
                bail!("not deleted");
            }
            match client.request("DELETE", &format!("/v1/accounts/{}", enc(&name)), None) {
                Ok(v) => match g.output {
                    Format::Json => output::json(&v.unwrap_or(Value::Null)),
                    Format::Table => println!("account {name} is being deleted"),
                },
                Err(e) => {
                    if e.downcast_ref::<ServerError>()
                        .is_some_and(|s| s.code == "invalid_state_transition")
                    {
                        eprintln!("hint: disable it first: portcullis accounts disable {name}");
                    }
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

fn set_state(g: &Global, client: &Client, name: &str, state: &str) -> anyhow::Result<()> {
    let v = client.request(
        "PUT",
        &format!("/v1/accounts/{}/state", enc(name)),
        Some(&json!({ "state": state })),
    )?;
    print(g, &v.unwrap_or(Value::Null), ACCOUNT_COLUMNS);
    Ok(())
}

/// Ask `y/N` on the terminal (or stdin); anything but y/yes is no.
fn confirm(question: &str) -> anyhow::Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !std::io::stdin().is_terminal() {
        // The answer was not echoed by a terminal: end the prompt's line ourselves.
        eprintln!();
    }
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

const USER_COLUMNS: &[(&str, &str)] = &[
    ("USERNAME", "username"),
    ("ACCOUNT", "account"),
    ("EMAIL", "email"),
    ("ROLES", "roles"),
    ("LAST LOGIN", "last_login_at"),
    ("TOKEN STATUS", "access_token_status"),
];

#[derive(Subcommand)]
pub enum UsersCmd {
    /// Create a user (in the server's default user account unless --account is given;
    /// never the admin account unless named).
    Create {
        /// The new user's name (`[a-z0-9][a-z0-9._@-]{0,62}`), e.g. `jane`.
        username: String,
        /// The account it belongs to (default: yours, or the server's default user account).
        #[arg(long)]
        account: Option<String>,
        /// Its email address (REANA's and SSO's identity).
        #[arg(long)]
        email: Option<String>,
        /// The password is temporary: the user must change it at first login.
        #[arg(long)]
        temp_password: bool,
        /// Read the password from one line of stdin (otherwise asked on a terminal; empty = no password).
        #[arg(long)]
        password_stdin: bool,
        /// A role (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// List the users you may see (of one account with --account), or one user.
    #[command(visible_alias = "list")]
    Get {
        /// One user to show (default: list them).
        username: Option<String>,
        /// Only the users of this account (Anchore's `account user list --account`).
        #[arg(long, conflicts_with = "username")]
        account: Option<String>,
    },
    /// Everything about one user.
    Describe {
        /// The user.
        username: String,
    },
    /// Delete a user and every key of it.
    Delete {
        /// The user (its keys go with it).
        username: String,
    },
    /// Clear a user's lockout (after too many failed logins) without resetting its password.
    Unlock {
        /// The locked user.
        username: String,
    },
    /// Create a user by email (REANA); prints ID EMAIL ACCESS_TOKEN.
    CreateByEmail {
        /// The user's email address; the username is taken from it unless --username.
        email: String,
        /// The account it belongs to.
        #[arg(long)]
        account: Option<String>,
        /// The username (default: taken from the email address).
        #[arg(long)]
        username: Option<String>,
        /// Grant an access token at once (printed once).
        #[arg(long)]
        grant_token: bool,
    },
    /// Write all users as CSV to stdout.
    Export {
        /// Add the password_hash column (admins only).
        #[arg(long)]
        include_password_hashes: bool,
    },
    /// Import users from CSV (all-or-nothing).
    Import {
        /// The CSV file (as `users export` writes it; header row first).
        #[arg(long)]
        file: std::path::PathBuf,
        /// What to do with a username that exists: fail the whole import, skip the row, or
        /// update the user.
        #[arg(long, value_parser = ["fail", "skip", "update"], default_value = "fail")]
        on_conflict: String,
    },
    /// Change your own password, or (admin) another user's.
    SetPassword {
        /// Another user (administrators); default: yourself.
        username: Option<String>,
        /// Force the user to change it at next login.
        #[arg(long)]
        temporary: bool,
        /// Read passwords from stdin: for yourself the current one, then the new one.
        #[arg(long)]
        password_stdin: bool,
    },
}

fn me(client: &Client) -> anyhow::Result<Value> {
    client.get("/v1/whoami")
}

pub fn users(g: &Global, cmd: UsersCmd) -> anyhow::Result<()> {
    let client = Client::logged_in(&g.server)?;
    match cmd {
        UsersCmd::Create {
            username,
            account,
            email,
            temp_password,
            password_stdin,
            roles,
        } => {
            // Without --account the server's default: never the admin account.
            let account = match account {
                Some(a) => a,
                None => me(&client)?["default_account"]
                    .as_str()
                    .context("whoami without default_account (server too old?)")?
                    .to_string(),
            };
            let stdin = std::io::stdin();
            let mut lines = stdin.lock().lines();
            let password = if password_stdin || std::io::stdin().is_terminal() {
                let p = read_new_password(
                    password_stdin,
                    &mut lines,
                    "Password for the new user (empty for none)",
                )?;
                Some(p).filter(|p| !p.is_empty())
            } else {
                None
            };
            let mut body = json!({ "username": username, "roles": roles, "temporary_password": temp_password });
            if let Some(p) = password {
                body["password"] = json!(p);
            }
            if let Some(e) = email {
                body["email"] = json!(e);
            }
            print(
                g,
                &client.post(&format!("/v1/accounts/{}/users", enc(&account)), &body)?,
                USER_COLUMNS,
            );
        }
        UsersCmd::Get {
            username: None,
            account,
        } => {
            let path = match account {
                Some(a) => format!("/v1/accounts/{}/users", enc(&a)),
                None => "/v1/users".to_string(),
            };
            print(g, &all_pages(&client, &path)?, USER_COLUMNS)
        }
        UsersCmd::Get {
            username: Some(u), ..
        } => print(
            g,
            &client.get(&format!("/v1/users/{}", enc(&u)))?,
            USER_COLUMNS,
        ),
        UsersCmd::Describe { username } => {
            let v = client.get(&format!("/v1/users/{}", enc(&username)))?;
            match g.output {
                Format::Json => output::json(&v),
                Format::Table => output::record(
                    &v,
                    &[
                        ("username", "username"),
                        ("account", "account"),
                        ("email", "email"),
                        ("roles", "roles"),
                        ("attributes", "attributes"),
                        ("created", "created_at"),
                        ("last login", "last_login_at"),
                        ("must change password", "must_change_password"),
                        ("locked", "locked"),
                        ("access token", "access_token_status"),
                        ("keys", "key_count"),
                    ],
                ),
            }
        }
        UsersCmd::Delete { username } => {
            client.request("DELETE", &format!("/v1/users/{}", enc(&username)), None)?;
            output::done(
                g.output,
                &format!("user {username} deleted with all its keys"),
                &json!({"deleted": username}),
            );
        }
        UsersCmd::Unlock { username } => {
            let v = client
                .request(
                    "PATCH",
                    &format!("/v1/users/{}", enc(&username)),
                    Some(&json!({ "unlock": true })),
                )?
                .unwrap_or_default();
            match g.output {
                Format::Json => output::json(&v),
                Format::Table => println!("user {username} unlocked (failed logins cleared)"),
            }
        }
        UsersCmd::CreateByEmail {
            email,
            account,
            username,
            grant_token,
        } => {
            let mut body = json!({ "email": email, "grant_access_token": grant_token });
            if let Some(a) = account {
                body["account"] = json!(a);
            }
            if let Some(u) = username {
                body["username"] = json!(u);
            }
            let v = client.post("/v1/users", &body)?;
            match g.output {
                Format::Json => output::json(&v),
                Format::Table => output::table(
                    std::slice::from_ref(&v),
                    &[
                        ("ID", "id"),
                        ("EMAIL", "email"),
                        ("ACCESS_TOKEN", "access_token"),
                    ],
                ),
            }
        }
        UsersCmd::Export {
            include_password_hashes,
        } => {
            let q = if include_password_hashes {
                "?include_password_hashes=true"
            } else {
                ""
            };
            let text = client.get_text(&format!("/v1/users/export{q}"))?;
            print!("{text}");
        }
        UsersCmd::Import { file, on_conflict } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let rows = bytes
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                .saturating_sub(1);
            let show = g.output == Format::Table;
            if show {
                eprintln!(
                    "importing {} ({} bytes, about {rows} rows)…",
                    file.display(),
                    bytes.len()
                );
            }
            let v = client.post_csv(
                &format!("/v1/users/import?on_conflict={on_conflict}"),
                bytes,
                show,
            )?;
            match g.output {
                Format::Json => output::json(&v),
                Format::Table => {
                    println!(
                        "created {}, updated {}, skipped {}, accounts created {}",
                        output::cell(&v["created"]),
                        output::cell(&v["updated"]),
                        output::cell(&v["skipped"]),
                        v["accounts_created"]
                            .as_array()
                            .map(|a| a.len())
                            .unwrap_or(0)
                    );
                    for n in v["notes"].as_array().into_iter().flatten() {
                        eprintln!(
                            "note: row {}: {}",
                            output::cell(&n["row"]),
                            output::cell(&n["note"])
                        );
                    }
                }
            }
        }
        UsersCmd::SetPassword {
            username,
            temporary,
            password_stdin,
        } => {
            let my_name = me(&client)?["username"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let target = username.unwrap_or_else(|| my_name.clone());
            let stdin = std::io::stdin();
            let mut lines = stdin.lock().lines();
            let mut body = json!({ "temporary": temporary });
            if target == my_name {
                let current = if password_stdin {
                    lines
                        .next()
                        .context("expected the current password on stdin")??
                } else {
                    rpassword::prompt_password("Current password: ")?
                };
                body["current_password"] = json!(current.trim_end_matches(['\r', '\n']));
            }
            body["password"] = json!(read_new_password(
                password_stdin,
                &mut lines,
                "New password"
            )?);
            let v = client
                .request(
                    "PUT",
                    &format!("/v1/users/{}/password", enc(&target)),
                    Some(&body),
                )?
                .unwrap_or(Value::Null);
            match g.output {
                Format::Json => output::json(&v),
                Format::Table => println!(
                    "password of {target} changed; {} other keys revoked",
                    output::cell(&v["keys_revoked"])
                ),
            }
        }
    }
    Ok(())
}

const KEY_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("KIND", "kind"),
    ("CREATED", "created_at"),
    ("LAST USED", "last_used_at"),
    ("EXPIRES", "expires_at"),
    ("REVOKED", "revoked_at"),
];

#[derive(Subcommand)]
pub enum KeysCmd {
    /// List keys (yours unless --user).
    List {
        /// Another user's keys (default: yours).
        #[arg(long)]
        user: Option<String>,
    },
    /// Create a personal key; it is printed once.
    Create {
        /// A name to tell the key by, e.g. `ci`.
        name: String,
        /// Create it for another user (administrators); default: yourself.
        #[arg(long)]
        user: Option<String>,
        /// e.g. 30d, 12h; default never.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// Revoke a key by id.
    Revoke {
        /// The key's id (`portcullis keys list`).
        id: String,
        /// The key's owner, when it is not you.
        #[arg(long)]
        user: Option<String>,
    },
}

pub fn keys(g: &Global, cmd: KeysCmd) -> anyhow::Result<()> {
    let client = Client::logged_in(&g.server)?;
    let who = |user: Option<String>| -> anyhow::Result<String> {
        match user {
            Some(u) => Ok(u),
            None => Ok(me(&client)?["username"]
                .as_str()
                .context("whoami without username")?
                .to_string()),
        }
    };
    match cmd {
        KeysCmd::List { user } => {
            let u = who(user)?;
            print(
                g,
                &client.get(&format!("/v1/users/{}/keys", enc(&u)))?,
                KEY_COLUMNS,
            );
        }
        KeysCmd::Create {
            name,
            user,
            expires_in,
        } => {
            let u = who(user)?;
            let mut body = json!({ "name": name });
            if let Some(e) = expires_in {
                body["expires_in"] = json!(e);
            }
            let v = client.post(&format!("/v1/users/{}/keys", enc(&u)), &body)?;
            match g.output {
                Format::Json => output::json(&v),
                Format::Table => {
                    output::table(std::slice::from_ref(&v), KEY_COLUMNS);
                    println!(
                        "\nkey (shown once, store it now): {}",
                        output::cell(&v["key"])
                    );
                }
            }
        }
        KeysCmd::Revoke { id, user } => {
            let u = who(user)?;
            client.request(
                "DELETE",
                &format!("/v1/users/{}/keys/{}", enc(&u), enc(&id)),
                None,
            )?;
            output::done(
                g.output,
                &format!("key {id} revoked"),
                &json!({"revoked": id, "user": u}),
            );
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct AuthorizeArgs {
    /// The subject's username.
    #[arg(long)]
    user: String,
    /// The action, e.g. read.
    #[arg(long)]
    action: String,
    /// The resource as KIND/ID, e.g. document/42.
    #[arg(long)]
    resource: String,
    /// The account that owns the resource.
    #[arg(long)]
    account: Option<String>,
    /// A resource attribute KEY=VALUE (repeatable).
    #[arg(long = "attr")]
    attributes: Vec<String>,
    /// A context entry KEY=VALUE (repeatable).
    #[arg(long = "context")]
    context: Vec<String>,
    /// Ask this application policy instead of the management authorizer.
    #[arg(long)]
    policy: Option<String>,
}

/// A deny from `portcullis authorize`: exit 1 without an `error:` line.
#[derive(Debug)]
pub struct Denied;
impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("denied")
    }
}
impl std::error::Error for Denied {}

fn pairs(flag: &str, items: &[String]) -> anyhow::Result<serde_json::Map<String, Value>> {
    let mut map = serde_json::Map::new();
    for item in items {
        let (k, v) = item
            .split_once('=')
            .with_context(|| format!("--{flag} {item:?}: expected KEY=VALUE"))?;
        map.insert(k.to_string(), json!(v));
    }
    Ok(map)
}

pub fn authorize(g: &Global, args: AuthorizeArgs) -> anyhow::Result<()> {
    let (kind, id) = args
        .resource
        .split_once('/')
        .with_context(|| format!("--resource {:?}: expected KIND/ID", args.resource))?;
    let mut resource =
        json!({ "kind": kind, "id": id, "attributes": pairs("attr", &args.attributes)? });
    if let Some(a) = &args.account {
        resource["account"] = json!(a);
    }
    let mut body = json!({
        "subject": { "username": args.user },
        "action": args.action,
        "resource": resource,
        "context": pairs("context", &args.context)?,
    });
    if let Some(p) = &args.policy {
        body["policy"] = json!(p);
    }
    let v = Client::logged_in(&g.server)?.post("/v1/authorize", &body)?;
    match g.output {
        Format::Json => output::json(&v),
        Format::Table => {
            println!("{}", output::cell(&v["decision"]));
            for r in v["reasons"].as_array().cloned().unwrap_or_default() {
                println!("  {}", output::cell(&r));
            }
            println!("  decision id: {}", output::cell(&v["decision_id"]));
        }
    }
    if v["decision"] == "allow" {
        Ok(())
    } else {
        Err(Denied.into())
    }
}

/// `path?key=value&…` for each filter that is set.
fn filtered(path: &str, filters: &[(&str, &Option<String>)]) -> String {
    let mut q = path.to_string();
    for (k, v) in filters {
        if let Some(v) = v {
            let sep = if q.contains('?') { '&' } else { '?' };
            q.push_str(&format!("{sep}{k}={}", enc(v)));
        }
    }
    q
}

#[derive(Args)]
pub struct DecisionsArgs {
    /// Read this application policy's log instead of the management authorizer's.
    #[arg(long)]
    policy: Option<String>,
    /// Only decisions about this user.
    #[arg(long)]
    user: Option<String>,
    /// Only this action, e.g. `users.read`.
    #[arg(long)]
    action: Option<String>,
    /// allow, deny, timeout, trap, memory_limit, malformed, unavailable
    #[arg(long)]
    outcome: Option<String>,
    #[command(flatten)]
    paging: LogPaging,
}

/// Reading a log (oldest first): one page, every page, or every page and then new
/// entries as they come.
#[derive(Args)]
pub struct LogPaging {
    /// Entries per page (1–1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: u32,
    /// Start after this cursor (the `next` of an earlier page; printed when more follow).
    #[arg(long)]
    after: Option<String>,
    /// Every page to the end, not only the first.
    #[arg(long, conflicts_with = "follow")]
    all: bool,
    /// Every page to the end, then keep printing new entries as they are written (until
    /// interrupted). With `-o json`, one JSON object per line.
    #[arg(long, short = 'f')]
    follow: bool,
}

pub fn decisions(g: &Global, a: DecisionsArgs) -> anyhow::Result<()> {
    let q = filtered(
        "/v1/decisions",
        &[
            ("policy", &a.policy),
            ("username", &a.user),
            ("action", &a.action),
            ("outcome", &a.outcome),
        ],
    );
    read_log(
        g,
        &Client::logged_in(&g.server)?,
        &q,
        &a.paging,
        "seq",
        &[
            ("TIME", "time"),
            ("USER", "username"),
            ("ACTION", "action"),
            ("TARGET", "target"),
            ("OUTCOME", "outcome"),
            ("REASONS", "reasons"),
            ("US", "duration_us"),
        ],
    )
}

/// How often `--follow` asks for new entries.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Read a log endpoint page by page (see [`LogPaging`]). `cursor` names the entry field
/// that continues after it (`?after=`) once the last page is read.
fn read_log(
    g: &Global,
    client: &Client,
    path: &str,
    p: &LogPaging,
    cursor: &str,
    columns: &[(&str, &str)],
) -> anyhow::Result<()> {
    let mut after = p.after.clone();
    let mut collected = Vec::new();
    let mut header = true;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &after {
            Some(a) => format!("{path}{sep}limit={}&after={}", p.limit, enc(a)),
            None => format!("{path}{sep}limit={}", p.limit),
        };
        let page = client.get(&url)?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let next = page["next"].as_str().map(str::to_string);
        if p.follow {
            match g.output {
                Format::Json => {
                    for item in &items {
                        output::line(item);
                    }
                }
                Format::Table if !items.is_empty() => {
                    output::table_rows(&items, columns, header);
                    header = false;
                }
                Format::Table => {}
            }
            // Continue after the last entry seen (the cursor of a short page is its last
            // entry's).
            let last = items.last().map(|i| match &i[cursor] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            after = next.or(last).or(after);
            if page["next"].is_null() {
                std::io::Write::flush(&mut std::io::stdout())?;
                std::thread::sleep(FOLLOW_EVERY);
            }
            continue;
        }
        if p.all {
            collected.extend(items);
            match next {
                Some(n) => {
                    after = Some(n);
                    continue;
                }
                None => {
                    print(g, &json!({ "items": collected, "next": null }), columns);
                    return Ok(());
                }
            }
        }
        print(g, &page, columns);
        if let (Some(n), Format::Table) = (next, g.output) {
            eprintln!("more entries follow: add --after {n} for the next page, or --all");
        }
        return Ok(());
    }
}

#[derive(Subcommand)]
pub enum TokensCmd {
    /// Ask for an access token (status requested).
    Request {
        /// The user the token is for (yourself, usually).
        username: String,
    },
    /// Grant an access token (admin); printed once; any earlier one is revoked.
    Grant {
        /// The user whose request is granted.
        username: String,
    },
    /// Revoke the access token; it stops working at once.
    Revoke {
        /// The user whose token is revoked.
        username: String,
    },
}

pub fn tokens(g: &Global, cmd: TokensCmd) -> anyhow::Result<()> {
    let client = Client::logged_in(&g.server)?;
    let (verb, username) = match &cmd {
        TokensCmd::Request { username } => ("request", username),
        TokensCmd::Grant { username } => ("grant", username),
        TokensCmd::Revoke { username } => ("revoke", username),
    };
    let v = client.post(
        &format!("/v1/users/{}/access-token/{verb}", enc(username)),
        &json!({}),
    )?;
    match g.output {
        Format::Json => output::json(&v),
        Format::Table => {
            println!(
                "{}: access token {}",
                username,
                output::cell(&v["access_token_status"])
            );
            if let Some(t) = v["access_token"].as_str() {
                println!("access token (shown once, store it now): {t}");
            }
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct AuditArgs {
    /// Only what this user (or `host` for host-side commands) did.
    #[arg(long)]
    actor: Option<String>,
    /// Only this action, e.g. `users.create`.
    #[arg(long)]
    action: Option<String>,
    /// Entries at or after this RFC 3339 time, e.g. 2026-11-22T00:00:00Z
    #[arg(long)]
    since: Option<String>,
    #[command(flatten)]
    paging: LogPaging,
}

pub fn audit(g: &Global, a: AuditArgs) -> anyhow::Result<()> {
    let q = filtered(
        "/v1/audit",
        &[
            ("actor", &a.actor),
            ("action", &a.action),
            ("since", &a.since),
        ],
    );
    read_log(
        g,
        &Client::logged_in(&g.server)?,
        &q,
        &a.paging,
        "id",
        &[
            ("TIME", "time"),
            ("ACTOR", "actor"),
            ("ACTION", "action"),
            ("TARGET", "target"),
            ("OUTCOME", "outcome"),
            ("DETAIL", "detail"),
        ],
    )
}
