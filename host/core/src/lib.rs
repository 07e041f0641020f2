//! Domain types and rules of Portcullis: account and user names, the account state
//! machine, the password policy and hashing, the API key format, and the authorization
//! request/decision types with the seam every decision goes through.
//!
//! This crate does no IO: no database, no HTTP, no WebAssembly. Everything here is a pure
//! function of its inputs (plus the OS random generator for new secrets), so it can be
//! tested exhaustively and shared by the store, the server and the CLI.

pub mod authz;
pub mod codes;
pub mod keys;
pub mod model;
pub mod names;
pub mod password;

pub use codes::{AuditAction, ErrorCode, Outcome};
pub use model::{AccessTokenStatus, AccountState, AccountType, KeyKind};
