//! The one HTTP error type. Every failure a handler returns becomes
//! `{"error":{"code","message"}}` with a stable snake_case code ([`ErrorCode`]); 5xx never
//! carry details. The status of each code is fixed here, in [`status_of`].

use crate::api::errors::{ErrorBody, ErrorDetail};
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use portcullis_app::AppError;
use portcullis_core::ErrorCode;

/// The HTTP status of an error code. Exhaustive: a new code does not compile until it has
/// a status.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidRequest => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Unauthorized | ErrorCode::InvalidCredentials | ErrorCode::InvalidToken => {
            StatusCode::UNAUTHORIZED
        }
        ErrorCode::PasswordChangeRequired
        | ErrorCode::Forbidden
        | ErrorCode::CurrentPasswordRequired
        | ErrorCode::InvalidCurrentPassword
        | ErrorCode::UserLocked => StatusCode::FORBIDDEN,
        ErrorCode::NotFound | ErrorCode::SsoNotConfigured => StatusCode::NOT_FOUND,
        ErrorCode::AlreadyExists
        | ErrorCode::Conflict
        | ErrorCode::InvalidStateTransition
        | ErrorCode::InvalidDefaultAccount
        | ErrorCode::ProtectedUser
        | ErrorCode::PluginStoreFull
        | ErrorCode::SelfCheckFailed
        | ErrorCode::PluginConfigureFailed
        | ErrorCode::PluginLoadFailed => StatusCode::CONFLICT,
        ErrorCode::InvalidPlugin => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Busy | ErrorCode::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub reasons: Vec<String>,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            reasons: Vec::new(),
            retry_after: None,
        }
    }
    /// A field of the request is wrong: 422 naming it.
    pub fn invalid(field: &str, problem: impl std::fmt::Display) -> Self {
        AppError::invalid(field, problem).into()
    }
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        AppError::not_found(what).into()
    }
    pub fn internal() -> Self {
        AppError::internal().into()
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            message,
        )
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError {
            status: status_of(e.code),
            code: e.code,
            message: e.message,
            reasons: e.reasons,
            retry_after: e.retry_after.map(|d| d.as_secs().max(1)),
        }
    }
}

impl From<portcullis_store::StoreError> for ApiError {
    fn from(e: portcullis_store::StoreError) -> Self {
        AppError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_string(),
                message: self.message,
                reasons: (!self.reasons.is_empty()).then_some(self.reasons),
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "expected a body with Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::too_large("request body is too large")
            }
            // serde's message names the field ("unknown field `x`", "missing field `y`").
            other => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidRequest,
                format!("body: {}", other.body_text()),
            ),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidRequest,
            format!("query: {}", r.body_text()),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidRequest,
            format!("path: {}", r.body_text()),
        )
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large("request body is too large")
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                format!("body: {}", r.body_text()),
            )
        }
    }
}
