//! Black-box API tests: each test starts its own server (loopback port, fresh database)
//! and talks HTTP to it. Scenarios written with `both!` run twice, as `name::sqlite` (a fresh
//! SQLite file) and `name::postgres` (a fresh database on the PostgreSQL server named by
//! `PORTCULLIS_TEST_DATABASE_URL`; skipped with a note when it is unset, a failure in CI);
//! `cluster` runs two servers on one PostgreSQL database.

mod accounts;
mod attacks;
mod authz_seam;
mod authzen;
mod bootstrap;
mod cedar;
mod cluster;
mod console;
mod decide;
mod examples;
mod forward;
mod input;
mod keycache;
mod login;
mod migrations;
mod openapi;
mod plugins;
mod policies;
mod proxies;
mod ratelimit;
mod reana;
mod runtime;
mod sso;
mod users;
