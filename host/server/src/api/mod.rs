//! The types of the HTTP API, one home for each: what a handler reads from a request (the
//! `Deserialize` bodies and query strings) and what it answers (the `Serialize` responses,
//! built `From` the store's and the application's records). Both derive their OpenAPI
//! schema, so `/openapi.json` describes exactly what is read and written; `routes`
//! translates, `routes::openapi` only assembles the document.
//!
//! One module per resource. A response field that is `Option` is always written (`null`
//! when absent) unless it says `skip_serializing_if`; the schema makes such a field
//! optional and nullable.

/// A page of a list endpoint, `{"items":[…],"next":…}`: `list!(Name of Item)` defines
/// `Name` with a schema of that name and `Name::page(records, limit, cursor)`, which views
/// each record as an `Item` (`Item: From<&Record>`) and sets `next` by [`next_cursor`].
macro_rules! list {
    ($(#[$meta:meta])* $name:ident of $item:ty) => {
        $(#[$meta])*
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            /// Cursor for `?after=` while more may follow.
            pub next: Option<String>,
        }

        impl $name {
            /// The page `records` (read with `limit`); `cursor` names a record for `?after=`.
            pub fn page<R>(records: &[R], limit: i64, cursor: impl Fn(&R) -> String) -> Self
            where
                $item: for<'r> From<&'r R>,
            {
                $name {
                    items: records.iter().map(<$item>::from).collect(),
                    next: $crate::api::next_cursor(records, limit, cursor),
                }
            }
        }
    };
}

pub mod accounts;
pub mod audit;
pub mod bootstrap;
pub mod csv;
pub mod decide;
pub mod errors;
pub mod health;
pub mod keys;
pub mod plugins;
pub mod policies;
pub mod schema;
pub mod session;
pub mod tokens;
pub mod users;

use portcullis_app::AppError;
use serde::Deserialize;

/// `?limit=&after=` for list endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
}

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

impl Page {
    pub fn limit(&self) -> Result<i64, AppError> {
        page_size(self.limit)
    }
}

/// A page size from `?limit=`: [`DEFAULT_LIMIT`] when absent, 422 outside 1 to
/// [`MAX_LIMIT`].
pub fn page_size(requested: Option<i64>) -> Result<i64, AppError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(AppError::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// The `next` cursor of a page read with `limit`: the last record's while the page is full
/// (more may follow), else `None`.
pub fn next_cursor<R>(page: &[R], limit: i64, cursor: impl Fn(&R) -> String) -> Option<String> {
    (page.len() as i64 == limit)
        .then(|| page.last().map(cursor))
        .flatten()
}

/// Does the request say its body is JSON (`Content-Type: application/json`, parameters
/// such as `charset` allowed)?
pub fn content_type_is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}
