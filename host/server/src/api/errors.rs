//! Error bodies: `{"error":{"code","message","reasons"?}}` of every `/v1` failure (the
//! shape the HTTP error type writes) and the Terraform Enterprise shape of the
//! `/admin` endpoints.

use serde::Serialize;
use utoipa::ToSchema;

/// `{"error":{"code","message","reasons"?}}`.
#[derive(Debug, ToSchema, Serialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, ToSchema, Serialize)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `invalid_request`, `forbidden`, `not_found`.
    pub code: String,
    /// Human-readable; names the offending field for 422.
    pub message: String,
    /// The authorizer's reasons, on a 403 decision (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
}

/// The Terraform Enterprise error shape of the `/admin` endpoints.
#[derive(Debug, ToSchema, Serialize)]
pub struct PtfeError {
    /// Always `error`.
    pub status: String,
    pub error: String,
}

impl PtfeError {
    /// `{"status":"error","error":message}`.
    pub fn new(message: String) -> Self {
        PtfeError {
            status: "error".into(),
            error: message,
        }
    }
}
