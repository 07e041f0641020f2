//! Names: account names, usernames, key names. One place decides what is a valid name so
//! the API, the CSV import and the bootstrap agree.

use thiserror::Error;

/// Account names that no client may create: `admin` is made by bootstrap, `system` is the
/// hidden service account.
pub const RESERVED_ACCOUNT_NAMES: &[&str] = &["admin", "system"];

/// The name of the account that holds the administrators.
pub const ADMIN_ACCOUNT: &str = "admin";
/// The hidden service account that acts for the server itself (background jobs, host-side
/// commands). Never listed, never returned.
pub const SYSTEM_ACCOUNT: &str = "system";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NameError {
    #[error("must be 1 to 63 characters")]
    Length,
    #[error("must start with a lowercase letter or digit")]
    Start,
    #[error("may only contain lowercase letters, digits, '.', '_', '-'{0}")]
    Charset(&'static str),
    #[error("is reserved")]
    Reserved,
}

fn check(name: &str, allow_at: bool) -> Result<(), NameError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > 63 {
        return Err(NameError::Length);
    }
    let first = bytes[0];
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(NameError::Start);
    }
    let ok = bytes.iter().all(|&b| {
        b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || matches!(b, b'.' | b'_' | b'-')
            || (allow_at && b == b'@')
    });
    if ok {
        Ok(())
    } else if allow_at {
        Err(NameError::Charset(", '@'"))
    } else {
        Err(NameError::Charset(""))
    }
}

/// `[a-z0-9][a-z0-9._-]{0,62}`
pub fn validate_account_name(name: &str) -> Result<(), NameError> {
    check(name, false)
}

/// Usernames that would collide with routes under `/v1/users/`.
pub const RESERVED_USERNAMES: &[&str] = &["export", "import"];

/// Same as account names, plus `@` so that an email address can serve as a username.
pub fn validate_username(name: &str) -> Result<(), NameError> {
    check(name, true)?;
    if RESERVED_USERNAMES.contains(&name) {
        return Err(NameError::Reserved);
    }
    Ok(())
}

/// A loose email check: `local@domain` in printable ASCII (a single-label domain such as
/// `localhost` is allowed, as the bootstrap's default `admin@localhost` needs), no
/// whitespace, at most 254 characters. Deliverability is not our business; forged log lines
/// are. ASCII only, like usernames (an email often serves as one); the OpenAPI document
/// states the same rule as a pattern.
pub fn validate_email(email: &str) -> Result<(), &'static str> {
    if email.len() > 254 {
        return Err("must be at most 254 characters");
    }
    if !email.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be printable ASCII without whitespace");
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@') =>
        {
            Ok(())
        }
        _ => Err("must look like name@example.org"),
    }
}

/// Key names, roles and attribute keys/values are free text, but never control characters
/// (they end up in logs, tables and CSV) and never unbounded.
pub fn validate_label(value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names() {
        assert!(validate_account_name("acme").is_ok());
        assert!(validate_account_name("a").is_ok());
        assert!(validate_account_name("0-a._b").is_ok());
        assert!(validate_account_name(&"a".repeat(63)).is_ok());
        assert_eq!(
            validate_account_name(&"a".repeat(64)),
            Err(NameError::Length)
        );
        assert_eq!(validate_account_name(""), Err(NameError::Length));
        assert_eq!(validate_account_name("-a"), Err(NameError::Start));
        assert_eq!(validate_account_name("Acme"), Err(NameError::Start));
        assert!(validate_account_name("a@b").is_err());
        assert!(validate_account_name("a b").is_err());
        assert!(validate_account_name("é").is_err());
    }

    #[test]
    fn usernames_allow_at() {
        assert!(validate_username("jane@example.org").is_ok());
        assert!(validate_username("@jane").is_err());
        assert!(validate_username("jane\r\nadmin").is_err());
        assert_eq!(validate_username("export"), Err(NameError::Reserved));
        assert_eq!(validate_username("import"), Err(NameError::Reserved));
    }

    #[test]
    fn emails() {
        assert!(validate_email("a@b.org").is_ok());
        assert!(validate_email("admin@localhost").is_ok());
        assert!(validate_email("a@").is_err());
        assert!(validate_email("@b.org").is_err());
        assert!(validate_email("a@b@c").is_err());
        assert!(validate_email("a b@c.org").is_err());
        assert!(validate_email("a@b.org\n").is_err());
        assert!(validate_email("jürgen@example.org").is_err());
    }
}
