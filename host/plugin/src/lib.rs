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
//! stdin, discarded stdout/stderr and no environment, `wasi:random`). No filesystem,
//! sockets or clocks: a component importing them is refused at load time.

pub mod check;
mod runtime;
mod sandbox;

pub use runtime::{
    digest, plugin_text, CodeLimits, Compiled, Limits, LoadError, Plugin, Runtime, MAX_PLUGIN_TEXT,
};

/// The plugins built by `build.rs`.
pub mod programs {
    include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
}

/// The bytes of a built-in plugin (`builtin:NAME`).
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    match name {
        "native" => Some(programs::NATIVE),
        _ => None,
    }
}

/// The version of the WIT world this host implements.
pub const WORLD_VERSION: &str = "portcullis:authorizer@0.1.0";
