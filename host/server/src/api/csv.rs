//! `GET /v1/users/export` and `POST /v1/users/import`: their queries and the import's
//! report.

use super::errors::ErrorBody;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Add a `password_hash` column (admins only).
    #[serde(default)]
    pub include_password_hashes: bool,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// `fail` (default), `skip` or `update`.
    #[param(pattern = "^(fail|skip|update)$")]
    pub on_conflict: Option<String>,
}

/// What an import did (200), or why it wrote nothing (422, with `errors`).
#[derive(Debug, ToSchema, Serialize)]
pub struct ImportReport {
    pub created: u64,
    pub skipped: u64,
    pub updated: u64,
    /// Accounts the import created for rows that named a new one.
    pub accounts_created: Vec<String>,
    pub errors: Vec<RowError>,
    /// What was read but not imported, by row (e.g. an `access_token_status` of `active`:
    /// access tokens are not imported). The import still happened.
    pub notes: Vec<RowNote>,
}

#[derive(Debug, ToSchema, Serialize)]
pub struct RowNote {
    /// 1 is the header row.
    pub row: u64,
    pub note: String,
}

impl From<&portcullis_store::ImportReport> for ImportReport {
    fn from(r: &portcullis_store::ImportReport) -> Self {
        ImportReport {
            created: r.created,
            skipped: r.skipped,
            updated: r.updated,
            accounts_created: r.accounts_created.clone(),
            errors: r.errors.iter().map(RowError::from).collect(),
            notes: r
                .notes
                .iter()
                .map(|n| RowNote {
                    row: n.row as u64,
                    note: n.error.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, ToSchema, Serialize)]
pub struct RowError {
    /// 1 is the header row.
    pub row: u64,
    pub error: String,
}

impl From<&portcullis_store::RowError> for RowError {
    fn from(e: &portcullis_store::RowError) -> Self {
        RowError {
            row: e.row as u64,
            error: e.error.clone(),
        }
    }
}

/// A 422 of `POST /v1/users/import`: the report naming each bad row, or (a query field is
/// invalid) the usual error body.
// Schema only: each is written as itself.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum ImportRejected {
    Report(ImportReport),
    Error(ErrorBody),
}
