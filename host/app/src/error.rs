//! The one error type of the use cases: a stable [`ErrorCode`], a message for the client
//! (naming the field when the input is at fault) and, for a denied action, the
//! authorizer's reasons. The HTTP adapter picks the status from the code; internal causes
//! are logged here and never reach the message.

use portcullis_core::ErrorCode;
use portcullis_store::StoreError;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    /// The authorizer's reasons, for [`ErrorCode::Forbidden`].
    pub reasons: Vec<String>,
    /// When to try again ([`ErrorCode::RateLimited`], [`ErrorCode::Busy`]).
    pub retry_after: Option<Duration>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError {
            code,
            message: message.into(),
            reasons: Vec::new(),
            retry_after: None,
        }
    }
    /// A field of the request is wrong: the message names it.
    pub fn invalid(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::InvalidRequest, format!("{field}: {problem}"))
    }
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AlreadyExists, message)
    }
    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidStateTransition, message)
    }
    /// The authorizer said no: its reasons go with the answer.
    pub fn forbidden(message: impl Into<String>, reasons: Vec<String>) -> Self {
        AppError {
            reasons,
            ..Self::new(ErrorCode::Forbidden, message)
        }
    }
    pub fn unauthorized() -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            "a valid API key is required (Authorization: Bearer <key>)",
        )
    }
    pub fn invalid_credentials() -> Self {
        Self::new(
            ErrorCode::InvalidCredentials,
            "invalid username or password",
        )
    }
    pub fn password_change_required() -> Self {
        Self::new(
            ErrorCode::PasswordChangeRequired,
            "the password is temporary and must be changed: log in again with new_password",
        )
    }
    /// The client address has used up its attempts.
    pub fn rate_limited(wait: Duration) -> Self {
        let wait = wait.max(Duration::from_secs(1));
        AppError {
            retry_after: Some(wait),
            ..Self::new(
                ErrorCode::RateLimited,
                format!(
                    "too many attempts from this address; retry in {} s",
                    wait.as_secs()
                ),
            )
        }
    }
    /// The password hashing queue is full.
    pub fn busy() -> Self {
        tracing::warn!("password hashing queue full; refusing");
        Self::new(
            ErrorCode::Busy,
            "too many password checks in progress; retry shortly",
        )
    }
    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "internal server error")
    }
    /// An unexpected failure: logged with its cause, answered without it.
    pub fn internal_from(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::internal()
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::not_found("resource"),
            StoreError::Conflict(m) => AppError::new(ErrorCode::Conflict, m),
            StoreError::State(m) => AppError::invalid_state(m),
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "the database is unavailable; answering 503");
                AppError {
                    retry_after: Some(Duration::from_secs(2)),
                    ..AppError::new(
                        ErrorCode::StoreUnavailable,
                        "the database is unavailable; retry shortly",
                    )
                }
            }
            other => {
                tracing::error!(error = %other, "store error");
                AppError::internal()
            }
        }
    }
}
