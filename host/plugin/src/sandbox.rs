//! Per-instance host state: the WASI context (locked down), the resource limiter, and the
//! `host` interface plugins import.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime::ResourceLimiter;
use wasmtime_wasi::clocks::{HostMonotonicClock, HostWallClock};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The two versions of the world the host serves: 0.1.0 (released, unchanged) and 0.2.0.
pub(crate) mod bindings {
    pub(crate) mod v1 {
        wasmtime::component::bindgen!({ world: "authorizer", path: "../../wit/0.1.0", exports: { default: async } });
    }
    pub(crate) mod v2 {
        wasmtime::component::bindgen!({ world: "authorizer", path: "../../wit", exports: { default: async } });
    }
}

use bindings::v1::portcullis::authorizer as v1;
use bindings::v2::portcullis::authorizer as v2;

/// At most this many log lines per call, each cut to this many bytes.
const MAX_LOG_LINES: u32 = 100;
const MAX_LOG_BYTES: usize = 1024;

pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) plugin: Arc<str>,
    log_lines: u32,
    call_time: CallTime,
}

/// The time the current call began: the only time a component can read. Both WASI clocks
/// stand still during a call (so nothing can be timed with them) and move on at the next;
/// only the built-in plugins may import them (`builtin:rego` answers `time.now_ns()`
/// with it, as OPA gives one time per evaluation): an uploaded component importing a
/// clock is refused before it is compiled (SPEC §5.5).
#[derive(Clone, Default)]
pub(crate) struct CallTime(Arc<CallTimes>);

#[derive(Default)]
pub(crate) struct CallTimes {
    /// Nanoseconds since the UNIX epoch, in whole milliseconds.
    wall_ns: AtomicU64,
    /// Nanoseconds since the process's first call.
    monotonic_ns: AtomicU64,
}

impl CallTime {
    fn start(&self) {
        static ANCHOR: OnceLock<Instant> = OnceLock::new();
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        self.0
            .wall_ns
            .store(wall.saturating_mul(1_000_000), Ordering::Relaxed);
        let since = ANCHOR.get_or_init(Instant::now).elapsed().as_nanos() as u64;
        self.0.monotonic_ns.fetch_max(since, Ordering::Relaxed);
    }
}

impl HostWallClock for CallTime {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.wall_ns.load(Ordering::Relaxed))
    }
}

impl HostMonotonicClock for CallTime {
    fn resolution(&self) -> u64 {
        1_000_000
    }
    fn now(&self) -> u64 {
        self.0.monotonic_ns.load(Ordering::Relaxed)
    }
}

impl HostState {
    pub(crate) fn new(plugin: Arc<str>, memory_bytes: usize) -> Self {
        // No args, no environment, no preopened directories, empty stdin, discarded
        // stdout/stderr, clocks that stand still during a call; sockets are not even linked.
        let call_time = CallTime::default();
        call_time.start();
        let wasi = WasiCtx::builder()
            .wall_clock(call_time.clone())
            .monotonic_clock(call_time.clone())
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter {
                memory_bytes,
                exceeded: false,
            },
            plugin,
            log_lines: 0,
            call_time,
        }
    }

    pub(crate) fn start_call(&mut self) {
        self.log_lines = 0;
        self.call_time.start();
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl v1::types::Host for HostState {}
impl v2::types::Host for HostState {}

/// The `host` interface's levels, the same in every version.
pub(crate) enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl HostState {
    fn log(&mut self, level: Level, message: String) {
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES {
            return;
        }
        let mut end = message.len().min(MAX_LOG_BYTES);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let text = message[..end].escape_default().to_string();
        let plugin = &*self.plugin;
        match level {
            Level::Debug => tracing::debug!(target: "plugin", plugin, "{text}"),
            Level::Info => tracing::info!(target: "plugin", plugin, "{text}"),
            Level::Warn => tracing::warn!(target: "plugin", plugin, "{text}"),
            Level::Error => tracing::error!(target: "plugin", plugin, "{text}"),
        }
    }
}

impl v1::host::Host for HostState {
    fn log(&mut self, level: v1::host::Level, message: String) {
        use v1::host::Level as L;
        let level = match level {
            L::Debug => Level::Debug,
            L::Info => Level::Info,
            L::Warn => Level::Warn,
            L::Error => Level::Error,
        };
        HostState::log(self, level, message)
    }
}

impl v2::host::Host for HostState {
    fn log(&mut self, level: v2::host::Level, message: String) {
        use v2::host::Level as L;
        let level = match level {
            L::Debug => Level::Debug,
            L::Info => Level::Info,
            L::Warn => Level::Warn,
            L::Error => Level::Error,
        };
        HostState::log(self, level, message)
    }
}

/// Caps linear memory per instance and remembers when it had to refuse, so the failure
/// that follows can be reported as `plugin_memory_limit` rather than a bare trap.
pub(crate) struct Limiter {
    memory_bytes: usize,
    pub(crate) exceeded: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

struct HasIo;
impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// The linker: the world's imports plus the harmless WASI plumbing (async bindings: the
/// server calls plugins from its tokio tasks, where blocking bindings cannot run).
pub(crate) fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<HostState>> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, random};
    use wasmtime_wasi::random::WasiRandom;
    use wasmtime_wasi_io::bindings::wasi::io;

    let mut l = Linker::<HostState>::new(engine);
    bindings::v1::Authorizer::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
        &mut l,
        |s| s,
    )?;
    bindings::v2::Authorizer::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
        &mut l,
        |s| s,
    )?;
    io::error::add_to_linker::<HostState, HasIo>(&mut l, |t| t.ctx().table)?;
    io::poll::add_to_linker::<HostState, HasIo>(&mut l, |t| t.ctx().table)?;
    io::streams::add_to_linker::<HostState, HasIo>(&mut l, |t| t.ctx().table)?;
    random::random::add_to_linker::<HostState, WasiRandom>(&mut l, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<HostState, WasiRandom>(&mut l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<HostState, WasiRandom>(&mut l, |t| {
        t.ctx().ctx.random()
    })?;
    // Built-in plugins only (`precheck` refuses an uploaded component that imports them).
    clocks::wall_clock::add_to_linker::<HostState, WasiClocks>(&mut l, HostState::clocks)?;
    clocks::monotonic_clock::add_to_linker::<HostState, WasiClocks>(&mut l, HostState::clocks)?;
    cli::exit::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::environment::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::stdin::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::stdout::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::stderr::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    Ok(l)
}
