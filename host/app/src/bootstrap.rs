//! First start: the hidden `system` account, the `admin` account, and — when no user
//! exists yet — the first administrator according to `bootstrap.mode` (§3.1).

use crate::audit::Audit;
use crate::config::{BootstrapMode, Config, TimeLimit};
use crate::error::{AppError, AppResult};
use crate::App;
use anyhow::{bail, Context};
use portcullis_core::names::{self, ADMIN_ACCOUNT, SYSTEM_ACCOUNT};
use portcullis_core::{keys, password, AccountType, AuditAction, KeyKind};
use portcullis_store::{NewUser, RedeemOutcome, Store, StoreError};
use std::io::Write;
use std::path::{Path, PathBuf};

pub use portcullis_core::names::ADMIN_USER;
pub const PASSWORD_FILE: &str = "initial-admin-password";

/// Remove the initial admin password file once the admin has chosen its own password: the
/// temporary one is no use any more, and a file with a password in it should not outlive
/// its purpose. (Best effort: a file that is gone or cannot be removed is only logged.)
pub fn forget_initial_password(config: &Config) {
    let path = config.data_dir.join(PASSWORD_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => {
            tracing::info!(file = %path.display(), "removed the initial admin password file: the admin has its own password now")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "could not remove the initial admin password file")
        }
    }
}
pub const IACT_FILE: &str = "initial-admin-token";
const IACT_LEN: usize = 40;

/// What bootstrap did, for the server to keep (the IACT to serve over HTTP).
#[derive(Default)]
pub struct Bootstrapped {
    pub iact: Option<String>,
}

/// Write a secret to a file only its owner can read (0600), replacing any old one.
pub fn write_secret_file(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(f, "{secret}")?;
    f.sync_all()?;
    Ok(())
}

pub fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
    }
    // A directory made earlier (by hand, or by an older version) may let other local users
    // in: the password hashes are in it. Tighten it rather than refuse to start.
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("reading data directory {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), mode = format!("{:o}", mode & 0o777), "the data directory was open to other users; setting it to 0700");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("setting data directory {} to 0700", dir.display()))?;
    }
    Ok(())
}

/// Create (or tighten) a SQLite database file as 0600 before SQLite opens it: SQLite
/// gives its `-wal` and `-shm` files the database file's mode, so they are 0600 too,
/// whatever the process's umask.
pub fn ensure_private_file(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating database file {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("setting {} to 0600", path.display()))?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            std::fs::set_permissions(&side, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("setting {} to 0600", side.display()))?;
        }
    }
    Ok(())
}

pub fn iact_path(config: &Config) -> PathBuf {
    config.data_dir.join(IACT_FILE)
}

/// Read the IACT this data directory holds, if it is still the live one in the store.
pub async fn live_iact_from_file(store: &Store, config: &Config) -> anyhow::Result<Option<String>> {
    let Some(live) = store.live_iact().await? else {
        return Ok(None);
    };
    let path = iact_path(config);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let token = text.trim().to_string();
    Ok(keys::digest_eq(&keys::digest(&token), &live).then_some(token))
}

pub async fn run(store: &Store, config: &Config) -> anyhow::Result<Bootstrapped> {
    let result = run_modes(store, config).await;
    // Bootstrap hashes on a runtime thread, once: do not keep argon2's 19 MiB there.
    password::release_memory();
    result
}

/// The built-in accounts: the hidden `system` account and the `admin` account.
pub async fn ensure_builtin_accounts(
    store: &Store,
    admin_email: Option<&str>,
) -> Result<(), StoreError> {
    store
        .ensure_account(SYSTEM_ACCOUNT, None, AccountType::Service)
        .await?;
    store
        .ensure_account(ADMIN_ACCOUNT, admin_email, AccountType::Admin)
        .await?;
    Ok(())
}

/// Host-side recovery (`server recover-admin-user`, with access to the database): give the
/// built-in `admin` user `new_password` (creating it if it is gone), clear its lockout and
/// revoke its keys. Refused when a user named `admin` exists outside the admin account.
/// Returns how many keys were revoked.
/// What a host-side recovery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The administrator whose password was set.
    pub username: String,
    /// Whether that user was created (there was none to recover).
    pub created: bool,
    /// Keys of that user revoked.
    pub revoked: u64,
}

/// Set the password of `username` (default `admin`), a user of the admin account: clears
/// lockout and the forced change, revokes its keys. A missing `admin` is created only when
/// the admin account has no other user, or with `create`: after an IACT bootstrap the
/// administrator has another name, and recovery must not quietly add a second one.
pub async fn recover_admin(
    store: &Store,
    new_password: &str,
    username: Option<&str>,
    create: bool,
) -> anyhow::Result<Recovered> {
    if let Err(e) = password::check_policy(new_password) {
        bail!("password {e}");
    }
    ensure_builtin_accounts(store, None).await?;
    let name = username.unwrap_or(ADMIN_USER);
    let phc = password::hash(new_password);
    let (revoked, created) = match store.get_user(name).await? {
        Some(u) if u.account == ADMIN_ACCOUNT => {
            (store.set_password(name, &phc, false, None).await?, false)
        }
        // Made before the name was reserved: recovery must not hand the squatter a fresh
        // password (and the operator's trust).
        Some(u) if name == ADMIN_USER => bail!(
            "a user named {ADMIN_USER} exists in account {}, not in the admin account: it is not the administrator. \
             Delete it (portcullis users delete {ADMIN_USER}, as an administrator) and run recover-admin-user again",
            u.account
        ),
        Some(u) => bail!(
            "{name} is a user of account {}, not of the admin account: only administrators are recovered here",
            u.account
        ),
        None if username.is_some() => {
            bail!("there is no user {name}: name a user of the admin account, or leave --user out")
        }
        None => {
            let others: Vec<String> = store
                .list_users(Some(ADMIN_ACCOUNT), None, 10)
                .await?
                .into_iter()
                .map(|u| u.username)
                .collect();
            if !others.is_empty() && !create {
                bail!(
                    "there is no user {ADMIN_USER}; the admin account has {}: recover one of them with --user NAME, or add a user {ADMIN_USER} with --create",
                    others.join(", ")
                );
            }
            let new = NewUser {
                username: ADMIN_USER.into(),
                account: ADMIN_ACCOUNT.into(),
                password_hash: Some(phc),
                ..Default::default()
            };
            store.create_user(&new).await?;
            (0, true)
        }
    };
    let detail = if created {
        "host-side recovery; user created".to_string()
    } else {
        format!("host-side recovery; {revoked} keys revoked")
    };
    Audit::by_host(AuditAction::UsersRecoverAdmin, name)
        .detail(detail)
        .try_append(store)
        .await?;
    Ok(Recovered {
        username: name.to_string(),
        created,
        revoked,
    })
}

async fn run_modes(store: &Store, config: &Config) -> anyhow::Result<Bootstrapped> {
    let admin_email = Some(config.bootstrap.admin_email.as_str()).filter(|e| !e.is_empty());
    ensure_builtin_accounts(store, admin_email).await?;
    if store.count_users().await? > 0 {
        return Ok(Bootstrapped::default());
    }
    let mut new = NewUser {
        username: ADMIN_USER.into(),
        account: ADMIN_ACCOUNT.into(),
        email: admin_email.map(Into::into),
        ..Default::default()
    };
    match config.bootstrap.mode {
        BootstrapMode::TemporaryAdmin => {
            let configured = !config.bootstrap.temporary_password.is_empty();
            let temp = if configured {
                config.bootstrap.temporary_password.clone()
            } else {
                keys::random_token(20)
            };
            // A temporary password is not checked against the policy (`admin` is allowed
            // for parity with iagctl): it cannot be used for anything but changing it.
            new.password_hash = Some(password::hash(&temp));
            new.must_change_password = true;
            if create_first_admin(store, &new).await? {
                if configured {
                    tracing::info!("created user admin with the configured temporary password; it must be changed at first login");
                } else {
                    ensure_data_dir(&config.data_dir)?;
                    let path = config.data_dir.join(PASSWORD_FILE);
                    write_secret_file(&path, &temp)?;
                    tracing::info!(file = %path.display(), "created user admin with a random temporary password, written to the file (mode 0600); it must be changed at first login");
                }
            }
        }
        BootstrapMode::Configured => {
            if let Err(e) = password::check_policy(&config.bootstrap.admin_password) {
                bail!("bootstrap.admin_password {e}");
            }
            new.password_hash = Some(password::hash(&config.bootstrap.admin_password));
            if create_first_admin(store, &new).await? {
                tracing::info!("created user admin with the configured password");
            }
        }
        BootstrapMode::Iact => {
            ensure_data_dir(&config.data_dir)?;
            if let Some(token) = live_iact_from_file(store, config).await? {
                tracing::info!(file = %iact_path(config).display(), "no user exists yet; the initial admin creation token is unchanged");
                return Ok(Bootstrapped { iact: Some(token) });
            }
            if store.live_iact().await?.is_some() {
                // Created by another server sharing this database (or this data directory
                // lost its copy): keep it; it stays exactly-once wherever it is redeemed.
                tracing::warn!(
                    "no user exists yet and an initial admin creation token is live, but this data directory does not hold it: \
                     retrieve it on the server that created it, or create the first admin with `portcullis server recover-admin-user`"
                );
                return Ok(Bootstrapped::default());
            }
            let token = keys::random_token(IACT_LEN);
            if !store.put_iact(&keys::digest(&token)).await? {
                if store.live_iact().await?.is_some() {
                    tracing::warn!("another server created the initial admin creation token at the same moment; retrieve it there");
                } else {
                    tracing::warn!("the initial admin creation token was used already and no user is left: create an admin with `portcullis server recover-admin-user`");
                }
                return Ok(Bootstrapped::default());
            }
            let path = iact_path(config);
            write_secret_file(&path, &token)?;
            Audit::by_host(AuditAction::IactCreate, "initial-admin-token")
                .detail("bootstrap")
                .append(store)
                .await;
            tracing::info!(
                file = %path.display(),
                "no user exists yet: created an initial admin creation token (read it with `portcullis server retrieve-iact`, then POST /admin/initial-admin-user?token=…)"
            );
            return Ok(Bootstrapped { iact: Some(token) });
        }
    }
    Ok(Bootstrapped::default())
}

/// Create the first admin; false when another server sharing the database won the race.
async fn create_first_admin(store: &Store, new: &NewUser) -> anyhow::Result<bool> {
    match store.create_user(new).await {
        Ok(_) => {
            Audit::by_host(AuditAction::UsersCreate, ADMIN_USER)
                .detail("bootstrap")
                .append(store)
                .await;
            Ok(true)
        }
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The IACT, for a client at `client` (its address resolved through trusted proxies):
/// only to clients in `iact_subnets`, within the time limit since this server started,
/// while the token is live and no user exists. `None` otherwise.
pub async fn retrievable_iact(app: &App, client: std::net::IpAddr) -> AppResult<Option<String>> {
    let boot = &app.config.bootstrap;
    if !boot.iact_subnets.iter().any(|net| net.contains(&client)) {
        return Ok(None);
    }
    if let TimeLimit::Minutes(m) = boot.iact_time_limit_minutes {
        if app.started.elapsed().as_secs() >= m * 60 {
            return Ok(None);
        }
    }
    let token = app.iact_token.read().expect("iact lock").clone();
    let Some(token) = token else {
        return Ok(None);
    };
    // A token is served only while it can still be redeemed: live, and no user yet.
    if app.store.count_users().await? != 0 {
        return Ok(None);
    }
    Ok(match app.store.live_iact().await? {
        Some(live) if keys::digest_eq(&keys::digest(&token), &live) => Some(token),
        _ => None,
    })
}

/// A presented IACT that is live while no user exists. Only [`check_iact`] makes one: the
/// token is checked before the body is looked at, so nothing about the body is revealed to
/// a caller without it.
pub struct IactTicket {
    digest: String,
}

/// Check a presented IACT (`not_found` for a missing, wrong or dead token, or once a user
/// exists).
pub async fn check_iact(app: &App, token: Option<&str>) -> AppResult<IactTicket> {
    let token = token.ok_or_else(|| AppError::not_found("token"))?;
    let digest = keys::digest(token);
    match app.store.live_iact().await? {
        Some(live) if keys::digest_eq(&digest, &live) => {}
        _ => {
            Audit::failure("anonymous", AuditAction::IactRedeem, ADMIN_ACCOUNT)
                .detail("wrong or dead token")
                .append(&app.store)
                .await;
            return Err(AppError::not_found("token"));
        }
    }
    if app.store.count_users().await? != 0 {
        return Err(AppError::not_found("token"));
    }
    Ok(IactTicket { digest })
}

/// The first administrator, as the IACT's holder names it.
pub struct FirstAdmin {
    pub username: String,
    pub email: String,
    pub password: String,
}

/// Redeem the IACT (exactly once, across servers): create the first administrator and
/// its API key (the secret, shown once). The token is dead afterwards.
pub async fn redeem_iact(app: &App, ticket: IactTicket, input: FirstAdmin) -> AppResult<String> {
    names::validate_username(&input.username).map_err(|e| AppError::invalid("username", e))?;
    names::validate_email(&input.email).map_err(|e| AppError::invalid("email", e))?;
    password::check_policy(&input.password).map_err(|e| AppError::invalid("password", e))?;
    let phc = app
        .hash_password(&format!("iact:{}", input.username), input.password)
        .await?;
    let new = NewUser {
        username: input.username,
        account: ADMIN_ACCOUNT.into(),
        email: Some(input.email),
        password_hash: Some(phc),
        ..Default::default()
    };
    match app.store.redeem_iact(&ticket.digest, &new).await? {
        RedeemOutcome::Created => {}
        _ => return Err(AppError::not_found("token")),
    }
    app.iact_token.write().expect("iact lock").take();
    let issued = crate::keys::issue(
        &app.store,
        &new.username,
        "initial-admin-user",
        KeyKind::Personal,
        None,
    )
    .await?;
    let _ = std::fs::remove_file(iact_path(&app.config));
    app.audit(
        Audit::success("anonymous", AuditAction::IactRedeem, &new.username)
            .detail("initial admin user created"),
    )
    .await;
    tracing::info!(username = %new.username, "initial admin user created with the IACT; the token is now dead");
    Ok(issued.secret)
}
