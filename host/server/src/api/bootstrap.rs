//! Terraform Enterprise's initial admin bootstrap (`/admin/…`): the body of
//! `POST /admin/initial-admin-user` and its answer. Errors there are
//! [`PtfeError`](super::errors::PtfeError)s.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InitialAdmin {
    #[schema(pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")]
    pub username: String,
    #[schema(
        pattern = r"^[!-+\--:<-?A-~]+@([!-+\-/-:<-?A-~]|[!-+\-/-:<-?A-~][!-+\--:<-?A-~]*[!-+\-/-:<-?A-~])$",
        max_length = 254
    )]
    pub email: String,
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

impl From<InitialAdmin> for portcullis_app::bootstrap::FirstAdmin {
    fn from(a: InitialAdmin) -> Self {
        portcullis_app::bootstrap::FirstAdmin {
            username: a.username,
            email: a.email,
            password: a.password,
        }
    }
}

#[derive(Debug, ToSchema, Serialize)]
pub struct IactCreated {
    /// `created`.
    pub status: String,
    /// The new admin's API key (shown once).
    pub token: String,
}

impl IactCreated {
    /// The first admin exists; `token` is its API key.
    pub fn new(token: String) -> Self {
        IactCreated {
            status: "created".into(),
            token,
        }
    }
}
