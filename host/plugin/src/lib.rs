//! The plugin runtime: the only crate that knows wasmtime.
//!
//! - One [`Runtime`] per process: an engine (component model, pooling allocator, epoch
//!   interruption with one ticker thread), a linker with the host's imports, and a cache
//!   of compiled components by SHA-256 digest.
//! - A [`Plugin`] is a compiled component plus its settings: a pre-instantiated template
//!   and a pool of warm instances (each `configure`d once), reused across calls and thrown
//!   away after a failure or after `max_calls_per_instance` calls.
//! - Every failure — trap, timeout, memory overrun, malformed answer — becomes a deny whose
//!   first reason names it (`plugin_trap`, `plugin_timeout`, …). Nothing here panics on a
//!   plugin's behalf.
//!
//! The sandbox links only `portcullis:authorizer/host` and the WASI interfaces that a
//! toolchain's standard library needs for its plumbing (`wasi:io`, `wasi:cli` with empty
//! stdin, discarded stdout/stderr and no environment, `wasi:random`). No filesystem or
//! sockets; the WASI clocks, which stand still during a call, only for the built-in
//! plugins (an uploaded component importing them is refused at load time).

pub mod check;
mod convert;
mod runtime;
mod sandbox;

pub use runtime::{
    digest, plugin_text, CodeLimits, Compiled, EngineError, Limits, LoadError, Plugin, Runtime,
    MAX_CANDIDATES, MAX_PLUGIN_TEXT,
};

/// The plugins built by `build.rs`.
pub mod programs {
    include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
}

/// The plugins built into the binary, by id (`builtin:NAME`), with the world version each
/// implements (a test compiles each and holds it to that): the one list every part of the
/// host (config, plugin store listing, activation, CLI) reads.
pub const BUILTINS: &[(&str, Builtin, &str)] = &[
    ("builtin:native", || programs::NATIVE, WORLD_V2),
    ("builtin:cedar", || programs::CEDAR, WORLD_V2),
    ("builtin:rego", || programs::REGO, WORLD_V2),
];

/// The bytes of a built-in plugin, embedded in the binary.
pub type Builtin = fn() -> &'static [u8];

/// The plugin the host starts with and returns to (`server reset-authorizer`).
pub const DEFAULT_PLUGIN: &str = "builtin:native";

/// The bytes of a built-in plugin (`builtin:NAME`; `name` without the prefix).
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    BUILTINS
        .iter()
        .find(|(id, _, _)| id.strip_prefix("builtin:") == Some(name))
        .map(|(_, bytes, _)| bytes())
}

/// Whether `id` names a built-in plugin (`builtin:native`).
pub fn is_builtin(id: &str) -> bool {
    BUILTINS.iter().any(|(b, _, _)| *b == id)
}

/// The ids of the built-in plugins, comma-separated (for error messages).
pub fn builtin_ids() -> String {
    BUILTINS
        .iter()
        .map(|(id, _, _)| *id)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first released version of the WIT world (`wit/0.1.0/`), still served unchanged.
pub const WORLD_V1: &str = "portcullis:authorizer@0.1.0";
/// The current version of the WIT world (`wit/authorizer.wit`).
pub const WORLD_V2: &str = "portcullis:authorizer@0.2.0";
/// Every version this host serves, newest first.
pub const WORLD_VERSIONS: &[&str] = &[WORLD_V2, WORLD_V1];
