//! Black-box API tests: each test starts its own server (fresh SQLite file, loopback
//! port) and talks HTTP to it.

mod accounts;
mod attacks;
mod authz_seam;
mod bootstrap;
mod cluster;
mod decide;
mod input;
mod keycache;
mod login;
mod migrations;
mod openapi;
mod plugins;
mod ratelimit;
mod reana;
mod runtime;
mod sso;
mod users;
