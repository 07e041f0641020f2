//! Export users to CSV and import them back (REANA's workflow), all-or-nothing.
//!
//! Columns: `username,email,account,roles,created_at,access_token_status` (roles joined
//! with `;`), plus `password_hash` with `?include_password_hashes=true`. A field starting
//! with `=`, `+`, `-`, `@`, tab or CR is written with a leading `'` so a spreadsheet never
//! runs it; import strips that quote again. Row numbers count the header as row 1.

use crate::audit::Audit;
use crate::caller::Caller;
use crate::error::{AppError, AppResult};
use crate::{timestamp, App};
use portcullis_core::authz::{actions, Target};
use portcullis_core::{names, password, AuditAction};
use portcullis_store::{ImportReport, ImportRow, OnConflict, RowError};
use std::collections::HashMap;

pub const COLUMNS: &[&str] = &[
    "username",
    "email",
    "account",
    "roles",
    "created_at",
    "access_token_status",
];
const HASH_COLUMN: &str = "password_hash";

/// A field a spreadsheet could run: one that starts with a formula character. (Fields
/// never hold a `,` or `;` followed by one: emails refuse both separators, usernames and
/// account names cannot hold them, and roles are escaped one by one.)
fn needs_quote(field: &str) -> bool {
    matches!(
        field.chars().next(),
        Some('=' | '+' | '-' | '@' | '\t' | '\r')
    )
}

/// Make a field safe for spreadsheets: a leading `'` before a formula character, and
/// before a leading `'` too, so that [`unescape`] can tell the two apart (a field that
/// really starts with `'-` must come back as `'-`, not `-`; found by the
/// `escaping_round_trips` property).
pub fn escape(field: &str) -> String {
    if needs_quote(field) || field.starts_with('\'') {
        format!("'{field}")
    } else {
        field.to_string()
    }
}

/// Undo [`escape`]: drop a leading `'` that stands before a formula character or another
/// `'`; any other leading `'` is data.
pub fn unescape(field: &str) -> &str {
    match field.strip_prefix('\'') {
        Some(rest) if needs_quote(rest) || rest.starts_with('\'') => rest,
        _ => field,
    }
}

/// The roles cell: roles joined with `;`, each escaped on its own, since a spreadsheet
/// that splits cells on `;` starts a new cell at every role.
fn roles_field(roles: &[String]) -> String {
    roles
        .iter()
        .map(|r| escape(r))
        .collect::<Vec<_>>()
        .join(";")
}

/// Every user as CSV (with a `password_hash` column when `include_password_hashes`; the
/// authorizer sees that as the target attribute `password_hashes`).
pub async fn export(
    app: &App,
    caller: &Caller,
    include_password_hashes: bool,
) -> AppResult<Vec<u8>> {
    let mut target = Target::new("account", "*", None);
    target.attributes = vec![(
        "password_hashes".into(),
        include_password_hashes.to_string(),
    )];
    app.require(&caller.principal, actions::USERS_EXPORT, target)
        .await?;
    let users = app.store.all_users().await?;
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let mut header: Vec<&str> = COLUMNS.to_vec();
    if include_password_hashes {
        header.push(HASH_COLUMN);
    }
    w.write_record(&header).map_err(AppError::internal_from)?;
    for u in &users {
        let mut record = vec![
            escape(&u.username),
            escape(u.email.as_deref().unwrap_or("")),
            escape(&u.account),
            escape(&roles_field(&u.roles)),
            timestamp(u.created_at),
            escape(u.access_token_status.map_or("", |s| s.as_str())),
        ];
        if include_password_hashes {
            record.push(escape(u.password_hash.as_deref().unwrap_or("")));
        }
        w.write_record(&record).map_err(AppError::internal_from)?;
    }
    let body = w.into_inner().map_err(AppError::internal_from)?;
    let detail = format!(
        "{} users{}",
        users.len(),
        if include_password_hashes {
            ", with password hashes"
        } else {
            ""
        }
    );
    app.audit(Audit::success(&caller.user.username, AuditAction::UsersExport, "*").detail(detail))
        .await;
    Ok(body)
}

/// The rows of an import, and what about them is not imported (as a note per row).
pub struct Parsed {
    pub rows: Vec<ImportRow>,
    pub notes: Vec<RowError>,
}

/// Parse and check every row; errors carry their row numbers: the header is row 1 and
/// each record the next (what a spreadsheet shows, whatever the line endings — CRLF from
/// Excel or Python's csv module — and however many lines a quoted field spans).
pub fn parse(body: &[u8]) -> Result<Parsed, Vec<RowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(body);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            return Err(vec![RowError {
                row: 1,
                error: format!("header: {e}"),
            }])
        }
    };
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, name) in headers.iter().enumerate() {
        if !COLUMNS.contains(&name) && name != HASH_COLUMN {
            return Err(vec![RowError {
                row: 1,
                error: format!(
                    "header: unknown column {name:?} (expected {})",
                    COLUMNS.join(",")
                ),
            }]);
        }
        if index.insert(name, i).is_some() {
            return Err(vec![RowError {
                row: 1,
                error: format!("header: column {name:?} appears twice"),
            }]);
        }
    }
    for required in ["username", "account"] {
        if !index.contains_key(required) {
            return Err(vec![RowError {
                row: 1,
                error: format!("header: the column {required:?} is required"),
            }]);
        }
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(RowError {
                    row,
                    error: e.to_string(),
                });
                continue;
            }
        };
        let get = |name: &str| {
            index
                .get(name)
                .and_then(|&i| record.get(i))
                .map(unescape)
                .unwrap_or("")
        };
        let mut fail = |error: String| errors.push(RowError { row, error });
        let username = get("username").to_string();
        if let Err(e) = names::validate_username(&username) {
            fail(format!("username: {e}"));
            continue;
        }
        if let Some(first) = seen.insert(username.clone(), row) {
            fail(format!("username {username} also appears in row {first}"));
            continue;
        }
        let account = get("account").to_string();
        if let Err(e) = names::validate_account_name(&account) {
            fail(format!("account: {e}"));
            continue;
        }
        if account == names::SYSTEM_ACCOUNT {
            fail("account: system is reserved".into());
            continue;
        }
        let email = Some(get("email").to_string()).filter(|e| !e.is_empty());
        if let Some(e) = &email {
            if let Err(problem) = names::validate_email(e) {
                fail(format!("email: {problem}"));
                continue;
            }
        }
        let roles: Vec<String> = get("roles")
            .split(';')
            .filter(|r| !r.is_empty())
            .map(|r| unescape(r).to_string())
            .collect();
        if let Some(bad) = roles
            .iter()
            .find(|r| names::validate_label(r, 256).is_err())
        {
            fail(format!("roles: {bad:?} is not a valid role"));
            continue;
        }
        let created_at = match get("created_at") {
            "" => None,
            t => match chrono::DateTime::parse_from_rfc3339(t) {
                Ok(d) => Some(d.timestamp_millis()),
                Err(_) => {
                    fail(format!("created_at: {t:?} is not an RFC 3339 time"));
                    continue;
                }
            },
        };
        match get("access_token_status") {
            "" | "none" => {}
            status => notes.push(RowError {
                row,
                error: format!(
                    "access_token_status {status:?} is not imported: {username} has no access token here until one is requested and granted again"
                ),
            }),
        }
        let password_hash = Some(get(HASH_COLUMN).to_string()).filter(|h| !h.is_empty());
        if let Some(h) = &password_hash {
            if let Err(e) = password::check_hash(h) {
                fail(format!("password_hash: {e}"));
                continue;
            }
        }
        rows.push(ImportRow {
            row,
            username,
            email,
            account,
            roles,
            created_at,
            password_hash,
        });
    }
    if errors.is_empty() {
        Ok(Parsed { rows, notes })
    } else {
        Err(errors)
    }
}

/// How an import treats a username that exists.
pub fn on_conflict(text: Option<&str>) -> AppResult<OnConflict> {
    match text.unwrap_or("fail") {
        "fail" => Ok(OnConflict::Fail),
        "skip" => Ok(OnConflict::Skip),
        "update" => Ok(OnConflict::Update),
        other => Err(AppError::invalid(
            "on_conflict",
            format!("{other:?} must be fail, skip or update"),
        )),
    }
}

/// Permission to import, checked before the body is read. Only [`may_import`] makes one.
pub struct ImportTicket {
    mode: OnConflict,
    /// Read at most this many bytes of the body.
    pub max_bytes: usize,
}

/// Check the mode and the caller's permission to import.
pub async fn may_import(
    app: &App,
    caller: &Caller,
    on_conflict_text: Option<&str>,
) -> AppResult<ImportTicket> {
    let mode = on_conflict(on_conflict_text)?;
    app.require(
        &caller.principal,
        actions::USERS_IMPORT,
        Target::new("account", "*", None),
    )
    .await?;
    Ok(ImportTicket {
        mode,
        max_bytes: app.config.max_import_bytes as usize,
    })
}

/// Import every row or none: the report (with each refused row's number and error when
/// nothing was written).
pub async fn import(
    app: &App,
    caller: &Caller,
    ticket: ImportTicket,
    body: &[u8],
) -> AppResult<ImportReport> {
    let failed = |detail: String| {
        Audit::failure(&caller.user.username, AuditAction::UsersImport, "*").detail(detail)
    };
    let Parsed { rows, notes } = match parse(body) {
        Ok(parsed) => parsed,
        Err(errors) => {
            let report = ImportReport {
                errors,
                ..Default::default()
            };
            app.audit(failed(format!(
                "{} malformed rows; nothing written",
                report.errors.len()
            )))
            .await;
            return Ok(report);
        }
    };
    let mut report = app.store.import_users(&rows, ticket.mode).await?;
    report.notes = notes;
    if !report.errors.is_empty() {
        app.audit(failed(format!(
            "{} rows refused; nothing written",
            report.errors.len()
        )))
        .await;
        return Ok(report);
    }
    let detail = format!(
        "created {}, updated {}, skipped {}, accounts created {}",
        report.created,
        report.updated,
        report.skipped,
        report.accounts_created.len()
    );
    app.audit(Audit::success(&caller.user.username, AuditAction::UsersImport, "*").detail(detail))
        .await;
    Ok(report)
}

/// Parse a CSV import body as an import does: the number of good rows, or each bad row's
/// number and error (for the fuzz target).
pub fn parse_summary(body: &[u8]) -> Result<usize, Vec<(usize, String)>> {
    parse(body)
        .map(|parsed| parsed.rows.len())
        .map_err(|errors| errors.into_iter().map(|e| (e.row, e.error)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_escaping_round_trips() {
        for f in ["=cmd|' /C calc'!A0", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(escape(f).starts_with('\''));
            assert_eq!(unescape(&escape(f)), f);
        }
        assert_eq!(escape("plain"), "plain");
        assert_eq!(
            unescape("'quoted"),
            "'quoted",
            "a quote before an ordinary character is data"
        );
    }

    #[test]
    fn row_numbers_are_the_spreadsheets_whatever_the_line_endings() {
        // Excel and Python's csv module write CRLF; a quoted field may span lines.
        for body in [
            "username,account\r\nann,acme\r\nBad Name,acme\r\n",
            "username,account\nann,acme\nBad Name,acme\n",
            "username,account,email\r\nann,acme,\"\"\r\nBad Name,acme,\r\n",
        ] {
            let errors = match parse(body.as_bytes()) {
                Err(e) => e,
                Ok(_) => panic!("{body:?} was accepted"),
            };
            assert_eq!(errors.len(), 1, "{body:?}");
            assert_eq!(errors[0].row, 3, "{body:?}: {}", errors[0].error);
        }
    }

    #[test]
    fn an_access_token_status_that_is_not_imported_is_said_per_row() {
        let body = "username,account,access_token_status\r\nann,acme,active\r\nbob,acme,none\r\ncid,acme,\r\ndee,acme,requested\r\n";
        let parsed = parse(body.as_bytes()).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(parsed.rows.len(), 4);
        let notes: Vec<(usize, &str)> = parsed
            .notes
            .iter()
            .map(|n| (n.row, n.error.as_str()))
            .collect();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert_eq!(notes[0].0, 2);
        assert!(
            notes[0].1.contains("\"active\" is not imported"),
            "{notes:?}"
        );
        assert_eq!(notes[1].0, 5);
    }

    #[test]
    fn csv_formula_after_a_semicolon_is_escaped_for_semicolon_split_spreadsheets() {
        let roles: Vec<String> = ["reader", "=1+1", "'-x", "@SUM(A1)"]
            .iter()
            .map(|r| r.to_string())
            .collect();
        let cell = escape(&roles_field(&roles));
        // No `;`-split piece of the cell starts with a formula character.
        for piece in cell.split(';') {
            assert!(!needs_quote(piece), "{cell}");
        }
        let back: Vec<String> = unescape(&cell)
            .split(';')
            .map(|r| unescape(r).to_string())
            .collect();
        assert_eq!(back, roles);
    }

    /// Found by the property `escaping_round_trips` (minimal input `'-`): a field that
    /// starts with a quote before a formula character came back without its quote.
    #[test]
    fn escaping_round_trips_a_quote_before_a_formula_character() {
        assert_eq!(escape("'-"), "''-");
        assert_eq!(unescape(&escape("'-")), "'-");
        assert_eq!(unescape(&escape("''")), "''");
        assert_eq!(unescape(&escape("'=1+1")), "'=1+1");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The import parser never panics on any bytes; it either yields rows or row errors.
        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse(&body);
        }

        /// Near-valid files (the right header, arbitrary cells) never panic either, and every
        /// error names a row that exists.
        #[test]
        fn errors_name_existing_rows(cells in proptest::collection::vec(("[ -~]{0,20}", "[ -~]{0,20}", "[ -~]{0,12}"), 1..20)) {
            let mut body = String::from("username,email,account\n");
            for (u, e, a) in &cells {
                body.push_str(&format!("\"{}\",\"{}\",\"{}\"\n", u.replace('"', "\"\""), e.replace('"', "\"\""), a.replace('"', "\"\"")));
            }
            if let Err(errors) = parse(body.as_bytes()) {
                for e in errors {
                    prop_assert!(e.row >= 2 && e.row <= cells.len() + 1, "row {} of {}", e.row, cells.len());
                }
            }
        }

        /// Escaping for spreadsheets always round-trips and never leaves a formula prefix.
        #[test]
        fn escaping_round_trips(s in ".*") {
            let e = escape(&s);
            prop_assert!(!needs_quote(&e));
            prop_assert_eq!(unescape(&e), s.as_str());
        }
    }
}
