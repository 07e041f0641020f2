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

/// The administrator user `temporary-admin`/`configured` bootstrap creates and
/// `recover-admin-user` repairs; this username exists only in the admin account.
pub const ADMIN_USER: &str = "admin";

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

/// The rules of the validators below as JSON-schema (ECMA-262) patterns, for the OpenAPI
/// document: written once, here, beside the code they describe (a unit test holds each to
/// its validator; `tests/tidy.rs` holds every pattern of the API types to this list).
pub mod patterns {
    /// [`super::validate_account_name`].
    pub const ACCOUNT_NAME: &str = r"^[a-z0-9][a-z0-9._-]{0,62}$";
    /// [`super::validate_username`] (the reserved names aside).
    pub const USERNAME: &str = r"^[a-z0-9][a-z0-9._@-]{0,62}$";
    /// [`super::validate_email`] (its length bound is the schema's `maxLength`).
    pub const EMAIL: &str =
        r"^[!-+\--:<-?A-~]+@([!-+\-/-:<-?A-~]|[!-+\-/-:<-?A-~][!-+\--:<-?A-~]*[!-+\-/-:<-?A-~])$";
    /// [`super::validate_label`] (its length bound is the schema's `maxLength`).
    pub const LABEL: &str = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$";
    /// A label that may be empty (attribute values).
    pub const VALUE: &str = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]*$";
    /// Every pattern above.
    pub const ALL: [&str; 5] = [ACCOUNT_NAME, USERNAME, EMAIL, LABEL, VALUE];
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
    // Separators of CSV cells in some spreadsheet locales: `a;=1+1@evil.example` would
    // become a formula cell in an exported file opened there.
    if email.contains([',', ';']) {
        return Err("must not contain ',' or ';'");
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
    if value.chars().any(is_invisible_format) {
        return Err(
            "must not contain invisible formatting characters (bidirectional controls, zero-width characters)"
                .into(),
        );
    }
    Ok(())
}

/// `value` made safe for a log line, an audit column or a terminal: control and format
/// characters escaped (`\u{1b}`), and at most `max` characters kept, with a note of how
/// many bytes were cut. Whatever a client or a plugin sends, the result is bounded.
pub fn printable(value: &str, max: usize) -> String {
    let mut out = String::with_capacity(value.len().min(max) + 16);
    for (kept, (i, c)) in value.char_indices().enumerate() {
        if kept >= max {
            out.push_str(&format!("…[{} more bytes]", value.len() - i));
            return out;
        }
        if c.is_control() || is_invisible_format(c) || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Unicode format characters that reorder or hide text (Trojan Source, CVE-2021-42574): a
/// role or key name holding them reads differently in a table than it compares.
pub fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}')
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
    fn printable_escapes_and_bounds() {
        assert_eq!(printable("jane", 10), "jane");
        assert_eq!(printable("a\u{1b}[2Jb", 10), "a\\u{1b}[2Jb");
        assert_eq!(printable("x\nINFO forged", 100), "x\\nINFO forged");
        let long = "é".repeat(1000);
        let p = printable(&long, 8);
        assert!(p.starts_with("éééééééé…[1984 more bytes]"), "{p}");
        assert!(printable(&"\u{1b}".repeat(100_000), 64).len() < 64 * 8 + 32);
    }

    #[test]
    fn labels_with_bidi_controls_are_refused() {
        assert!(validate_label("reader", 64).is_ok());
        assert!(validate_label("café", 64).is_ok());
        for evil in [
            "admin\u{202E}nimda",
            "a\u{200B}b",
            "x\u{2066}y",
            "\u{FEFF}role",
        ] {
            assert!(validate_label(evil, 64).is_err(), "{evil:?}");
        }
    }

    #[test]
    fn emails() {
        assert!(validate_email("a@b.org").is_ok());
        assert!(validate_email("admin@localhost").is_ok());
        assert!(validate_email("a@").is_err());
        assert!(validate_email("@b.org").is_err());
        assert!(validate_email("a@b@c").is_err());
        assert!(validate_email("a b@c.org").is_err());
        assert!(validate_email("a;=1+1@evil.example").is_err());
        assert!(validate_email("a,=1@b.org").is_err());
        assert!(validate_email("a@b.org\n").is_err());
        assert!(validate_email("jürgen@example.org").is_err());
    }

    /// The OpenAPI patterns say what the validators do: the same verdict on samples of
    /// every kind (what the validators check beyond a pattern — length caps stated as
    /// `maxLength`, reserved names — stays out of the samples).
    #[test]
    fn the_patterns_agree_with_the_validators() {
        let re = |p: &str| regex::Regex::new(p).expect(p);
        let (account, user, email, label, value) = (
            re(patterns::ACCOUNT_NAME),
            re(patterns::USERNAME),
            re(patterns::EMAIL),
            re(patterns::LABEL),
            re(patterns::VALUE),
        );
        let names = [
            "acme",
            "a",
            "0x",
            "a.b_c-d",
            "jane@acme",
            "Acme",
            "-a",
            ".a",
            "a b",
            "",
            "é",
            "a/b",
            "a@b@c",
            &"a".repeat(63),
            &"a".repeat(64),
        ];
        for n in names {
            assert_eq!(
                account.is_match(n),
                validate_account_name(n).is_ok(),
                "{n:?}"
            );
            assert_eq!(user.is_match(n), validate_username(n).is_ok(), "{n:?}");
        }
        let emails = [
            "jane@example.org",
            "a@b",
            "admin@localhost",
            "a@.b",
            "a@b.",
            "@b",
            "a@",
            "a b@c",
            "a,b@c",
            "a;b@c",
            "a@b@c",
            "jürgen@x.org",
            "a@b.org\n",
            "x'y@z",
            "a@b-c.d",
        ];
        for e in emails {
            assert_eq!(email.is_match(e), validate_email(e).is_ok(), "{e:?}");
        }
        let labels = [
            "reader",
            "acme:read:*",
            "Ünïcödé",
            "",
            "a\nb",
            "a\u{7f}",
            "a\u{200b}b",
            "\u{202e}x",
            "a\u{ad}",
            "tab\there",
            "emoji 🙂",
        ];
        for l in labels {
            assert_eq!(label.is_match(l), validate_label(l, 1000).is_ok(), "{l:?}");
            assert_eq!(
                value.is_match(l),
                l.is_empty() || validate_label(l, 1000).is_ok(),
                "{l:?}"
            );
        }
    }
}
