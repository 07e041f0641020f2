//! First start: the hidden `system` account, the `admin` account, and — when no user
//! exists yet — the first administrator according to `bootstrap.mode` (§3.1).

use crate::config::{BootstrapMode, Config};
use anyhow::{bail, Context};
use portcullis_core::names::{ADMIN_ACCOUNT, SYSTEM_ACCOUNT};
use portcullis_core::{keys, password, AccountType};
use portcullis_store::{NewAudit, NewUser, Store, StoreError};
use std::io::Write;
use std::path::{Path, PathBuf};

pub use portcullis_core::names::ADMIN_USER;
pub const PASSWORD_FILE: &str = "initial-admin-password";
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

async fn run_modes(store: &Store, config: &Config) -> anyhow::Result<Bootstrapped> {
    store
        .ensure_account(SYSTEM_ACCOUNT, None, AccountType::Service)
        .await?;
    let admin_email = Some(config.bootstrap.admin_email.as_str()).filter(|e| !e.is_empty());
    store
        .ensure_account(ADMIN_ACCOUNT, admin_email, AccountType::Admin)
        .await?;
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
            audit(store, "iact.create", "initial-admin-token").await;
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
            audit(store, "users.create", ADMIN_USER).await;
            Ok(true)
        }
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn audit(store: &Store, action: &str, target: &str) {
    let e = NewAudit {
        actor: SYSTEM_ACCOUNT,
        action,
        target,
        outcome: "success",
        detail: "bootstrap",
    };
    if let Err(err) = store.append_audit(&e).await {
        tracing::error!(error = %err, "could not append to the audit log");
    }
}
