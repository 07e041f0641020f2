//! Authentication of `/v1` calls: `Authorization: Bearer <key>` → the calling user
//! (`portcullis_app::session::authenticate` decides; this reads the header).

use crate::error::ApiError;
use crate::state::SharedState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use portcullis_app::session::authenticate;

/// An authenticated caller whose password is not temporary.
#[derive(Debug, Clone)]
pub struct Caller(pub portcullis_app::Caller);

impl std::ops::Deref for Caller {
    type Target = portcullis_app::Caller;
    fn deref(&self) -> &portcullis_app::Caller {
        &self.0
    }
}

/// The bearer key of a request, if it carries one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    bearer_of(&parts.headers)
}

/// The bearer key in `headers`, if there is one.
pub fn bearer_of(headers: &axum::http::HeaderMap) -> Option<&str> {
    portcullis_app::session::bearer(headers.get(AUTHORIZATION)?.to_str().ok()?)
}

impl FromRequestParts<SharedState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let presented = bearer(parts);
        if presented.is_none() {
            // No bearer key: the admin console's cookie, if the request carries it.
            if let Some(caller) =
                crate::console::caller_from_cookie(state, &parts.method, &parts.headers).await
            {
                return Ok(Caller(caller?));
            }
        }
        Ok(Caller(authenticate(state, presented, false).await?))
    }
}
