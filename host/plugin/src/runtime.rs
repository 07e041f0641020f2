//! Engine, compilation cache, plugin instances and the decision call.

use crate::sandbox::bindings::portcullis::authorizer::types as wit;
use crate::sandbox::bindings::{Authorizer as World, AuthorizerPre};
use crate::sandbox::{linker, HostState};
use portcullis_core::authz::{self, Decision, PluginFailure};
use portcullis_core::AccountType;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};

/// How often the epoch ticker advances; deadlines are counted in these ticks.
const TICK: Duration = Duration::from_millis(1);
/// Reasons past this many, or longer than this, make an answer malformed.
const MAX_REASONS: usize = 16;
const MAX_REASON_BYTES: usize = 1024;
/// Warm instances kept per plugin beyond those in use.
const MAX_IDLE: usize = 16;
/// The largest memory limit a plugin may be given.
pub const MAX_MEMORY_LIMIT: usize = 1024 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deadline of one call (configure, authorize, on-event).
    pub timeout: Duration,
    /// Linear memory cap of one instance.
    pub memory_bytes: usize,
    /// A warm instance is discarded after this many calls.
    pub max_calls_per_instance: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_millis(50),
            memory_bytes: 64 * 1024 * 1024,
            max_calls_per_instance: 10_000,
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LoadError {
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    #[error("refused before compiling: {0}")]
    TooBig(String),
    #[error("the component does not implement {world}: {0}", world = crate::WORLD_VERSION)]
    WrongWorld(String),
    #[error("configure failed: {0}")]
    Configure(String),
    #[error("instantiation failed: {0}")]
    Instantiate(String),
}

/// A component compiled once, with its pre-instantiated template.
pub struct Compiled {
    pub digest: String,
    pub size: usize,
    pre: AuthorizerPre<HostState>,
}

/// What a component may contain before any of it is compiled: Cranelift's time and
/// memory grow with the size and the locals of a function, so a "compile bomb" (one
/// function with tens of thousands of locals) is refused from its headers, in
/// milliseconds, rather than compiled for half a minute with gigabytes of memory.
#[derive(Debug, Clone, Copy)]
pub struct CodeLimits {
    /// Functions in all the component's core modules together.
    pub max_functions: u64,
    /// Bytes of one function body.
    pub max_function_bytes: usize,
    /// Locals one function declares.
    pub max_locals_per_function: u64,
    /// Locals of all functions together.
    pub max_locals: u64,
}

impl Default for CodeLimits {
    fn default() -> Self {
        CodeLimits {
            max_functions: 100_000,
            max_function_bytes: 1024 * 1024,
            max_locals_per_function: 10_000,
            max_locals: 2_000_000,
        }
    }
}

/// Compiled components kept beyond those in use (by an active, shadow or loading plugin).
const MAX_CACHED: usize = 16;
/// Refused digests remembered (so the same bad upload is not parsed twice).
const MAX_REFUSED: usize = 256;

/// Process-wide plugin machinery; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    cache: Arc<Mutex<HashMap<String, Arc<Compiled>>>>,
    refused: Arc<Mutex<HashMap<String, LoadError>>>,
    /// One compile at a time, on a blocking thread: the async workers keep serving.
    compiling: Arc<tokio::sync::Semaphore>,
    code_limits: CodeLimits,
}

/// Refuse what would be too costly to compile, from the component's headers alone.
fn precheck(bytes: &[u8], limits: &CodeLimits) -> Result<(), LoadError> {
    use wasmparser::{Encoding, Parser, Payload};
    let mut functions: u64 = 0;
    let mut all_locals: u64 = 0;
    // Nesting depth: 1 = the component itself (its imports and exports are the world's).
    let mut depth = 0u32;
    let mut exports: Vec<String> = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| LoadError::NotAComponent(e.to_string()))?;
        match payload {
            Payload::Version { encoding, .. } => {
                depth += 1;
                if depth == 1 && encoding == Encoding::Module {
                    return Err(LoadError::NotAComponent(
                        "this is a core WebAssembly module, not a component: build the plugin for the wasm32-wasip2 target (or wrap it with `wasm-tools component new`)".into(),
                    ));
                }
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(|e| LoadError::NotAComponent(e.to_string()))?;
                    let name = import.name.name;
                    // Interfaces (`ns:pkg/name`) only; plain names are the world's types.
                    let interface = name.contains(':');
                    if interface && !SANDBOX_IMPORTS.iter().any(|p| name.starts_with(p)) {
                        return Err(LoadError::WrongWorld(format!(
                            "it imports {}, which the sandbox does not provide (plugins get no filesystem, network, clock or environment): remove the code that needs it, e.g. std::fs, std::net, SystemTime/Instant",
                            plugin_text(name)
                        )));
                    }
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export = export.map_err(|e| LoadError::NotAComponent(e.to_string()))?;
                    exports.push(export.name.name.to_string());
                }
            }
            Payload::CodeSectionEntry(body) => {
                functions += 1;
                if functions > limits.max_functions {
                    return Err(LoadError::TooBig(format!(
                        "more than {} functions",
                        limits.max_functions
                    )));
                }
                let size = body.range().len();
                if size > limits.max_function_bytes {
                    return Err(LoadError::TooBig(format!(
                        "a function of {size} bytes (at most {})",
                        limits.max_function_bytes
                    )));
                }
                let mut locals: u64 = 0;
                let reader = body
                    .get_locals_reader()
                    .map_err(|e| LoadError::NotAComponent(e.to_string()))?;
                for entry in reader {
                    let (n, _) = entry.map_err(|e| LoadError::NotAComponent(e.to_string()))?;
                    locals += u64::from(n);
                }
                if locals > limits.max_locals_per_function {
                    return Err(LoadError::TooBig(format!(
                        "a function declaring {locals} locals (at most {})",
                        limits.max_locals_per_function
                    )));
                }
                all_locals += locals;
                if all_locals > limits.max_locals {
                    return Err(LoadError::TooBig(format!(
                        "more than {} locals in all functions",
                        limits.max_locals
                    )));
                }
            }
            _ => {}
        }
    }
    let missing: Vec<&str> = ["configure", "authorize", "on-event"]
        .into_iter()
        .filter(|f| !exports.iter().any(|e| e == f))
        .collect();
    if !missing.is_empty() {
        return Err(LoadError::WrongWorld(format!(
            "it does not export {} (a plugin implements the world `authorizer` of {})",
            missing.join(", "),
            crate::WORLD_VERSION
        )));
    }
    Ok(())
}

/// Import names a plugin may have: the world's own interface and the WASI plumbing a
/// toolchain's standard library links (see `sandbox::linker`).
const SANDBOX_IMPORTS: &[&str] = &[
    "portcullis:authorizer/",
    "wasi:io/",
    "wasi:cli/",
    "wasi:random/",
];

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

fn engine_config(pooling: bool) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.max_wasm_stack(512 * 1024);
    if pooling {
        let mut p = PoolingAllocationConfig::default();
        p.total_component_instances(256)
            .total_core_instances(1024)
            .total_memories(256)
            .total_tables(512)
            .max_memory_size(MAX_MEMORY_LIMIT);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    c
}

/// The digest of a component (lowercase hex SHA-256): its identity in caches and the store.
pub fn digest(bytes: &[u8]) -> String {
    portcullis_core::keys::sha256_hex(bytes)
}

impl Runtime {
    /// An engine with the pooling allocator (falling back to on-demand allocation where
    /// the machine refuses the address-space reservation) and its epoch ticker.
    pub fn new() -> Result<Runtime, EngineError> {
        let engine = match Engine::new(&engine_config(true)) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "pooling allocator unavailable; using on-demand instance allocation");
                Engine::new(&engine_config(false)).map_err(|e| EngineError(e.to_string()))?
            }
        };
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("portcullis-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(TICK);
                match weak.upgrade() {
                    Some(e) => e.increment_epoch(),
                    None => return,
                }
            })
            .map_err(|e| EngineError(e.to_string()))?;
        let linker = linker(&engine).map_err(|e| EngineError(e.to_string()))?;
        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            cache: Arc::new(Mutex::new(HashMap::new())),
            refused: Arc::new(Mutex::new(HashMap::new())),
            compiling: Arc::new(tokio::sync::Semaphore::new(1)),
            code_limits: CodeLimits::default(),
        })
    }

    /// [`Runtime::compile`] on a blocking thread, one compile at a time: the async
    /// workers keep answering (`/health`, logins, decisions) while a large component
    /// compiles, and an identical upload arriving meanwhile waits for the first one and
    /// takes its result from the cache instead of compiling again.
    pub async fn compile_async(&self, bytes: Arc<[u8]>) -> Result<Arc<Compiled>, LoadError> {
        let key = digest(&bytes);
        if let Some(known) = self.known(&key) {
            return known;
        }
        let one_at_a_time =
            self.compiling.clone().acquire_owned().await.map_err(|_| {
                LoadError::Instantiate("the plugin runtime is shutting down".into())
            })?;
        let this = self.clone();
        // The permit goes with the compile, not with this future: a client that hangs up
        // does not free the slot while its compile still runs.
        tokio::task::spawn_blocking(move || {
            let result = this.compile(&bytes);
            drop(one_at_a_time);
            result
        })
        .await
        .map_err(|e| LoadError::Instantiate(format!("the compile task failed: {e}")))?
    }

    /// A cached answer for `digest`: compiled, or refused before.
    fn known(&self, digest: &str) -> Option<Result<Arc<Compiled>, LoadError>> {
        if let Some(c) = self.cache.lock().expect("cache lock").get(digest) {
            return Some(Ok(c.clone()));
        }
        self.refused
            .lock()
            .expect("refused lock")
            .get(digest)
            .map(|e| Err(e.clone()))
    }

    fn remember_refusal(&self, digest: &str, e: &LoadError) {
        let mut refused = self.refused.lock().expect("refused lock");
        if refused.len() >= MAX_REFUSED {
            refused.clear();
        }
        refused.insert(digest.to_string(), e.clone());
    }

    /// Compile a component (once per digest) and check that it implements the world and
    /// imports nothing the sandbox does not provide.
    pub fn compile(&self, bytes: &[u8]) -> Result<Arc<Compiled>, LoadError> {
        let digest = digest(bytes);
        if let Some(known) = self.known(&digest) {
            return known;
        }
        let pre = self
            .compile_fresh(bytes)
            .inspect_err(|e| self.remember_refusal(&digest, e))?;
        let compiled = Arc::new(Compiled {
            digest: digest.clone(),
            size: bytes.len(),
            pre,
        });
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() >= MAX_CACHED {
            // Keep what is in use (an active or shadow plugin holds its `Arc`); forget
            // the rest, which a later activation compiles again.
            cache.retain(|_, c| Arc::strong_count(c) > 1);
        }
        cache.insert(digest, compiled.clone());
        Ok(compiled)
    }

    fn compile_fresh(&self, bytes: &[u8]) -> Result<AuthorizerPre<HostState>, LoadError> {
        precheck(bytes, &self.code_limits)?;
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| LoadError::NotAComponent(plugin_text(&root_cause(&e))))?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::WrongWorld(plugin_text(&root_cause(&e))))?;
        AuthorizerPre::new(instance_pre)
            .map_err(|e| LoadError::WrongWorld(plugin_text(&root_cause(&e))))
    }

    /// Compile, configure one instance with `settings` (a JSON object) and return the
    /// plugin ready to decide.
    pub async fn load(
        &self,
        name: &str,
        bytes: &[u8],
        settings: &str,
        limits: Limits,
    ) -> Result<Plugin, LoadError> {
        let compiled = self.compile_async(Arc::from(bytes)).await?;
        let plugin = Plugin {
            name: name.into(),
            compiled,
            settings: settings.to_string(),
            limits: Limits {
                memory_bytes: limits.memory_bytes.min(MAX_MEMORY_LIMIT),
                ..limits
            },
            engine: self.engine.clone(),
            pool: Mutex::new(Vec::new()),
        };
        let warm = plugin.instantiate().await?;
        plugin.pool.lock().expect("pool lock").push(warm);
        Ok(plugin)
    }
}

/// The engine could not be started (the configuration of wasmtime was refused).
#[derive(Debug, Error)]
#[error("starting the plugin runtime: {0}")]
pub struct EngineError(String);

fn root_cause(e: &wasmtime::Error) -> String {
    let mut parts: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    parts.dedup();
    parts.join(": ")
}

/// The longest text of a plugin's (configure errors, event refusals) or of the host's own
/// failure reasons that reaches a reason, a log line or an HTTP answer.
pub const MAX_PLUGIN_TEXT: usize = 1024;

/// Text that came from a plugin, made safe to show: escaped (no terminal escapes, no
/// forged log lines) and bounded.
pub fn plugin_text(s: &str) -> String {
    portcullis_core::names::printable(s, MAX_PLUGIN_TEXT)
}

struct Warm {
    store: Store<HostState>,
    world: World,
    calls: u32,
}

/// A configured plugin: decides through a pool of warm instances.
pub struct Plugin {
    name: Arc<str>,
    compiled: Arc<Compiled>,
    settings: String,
    limits: Limits,
    engine: Engine,
    pool: Mutex<Vec<Warm>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("digest", &self.compiled.digest)
            .finish()
    }
}

/// Why a call failed: the failure and its detail (the deny reason after the code).
fn classify(err: &wasmtime::Error, state: &HostState, limits: &Limits) -> Decision {
    if state.limiter.exceeded {
        return Decision::failed(
            PluginFailure::MemoryLimit,
            format_args!(
                "the plugin tried to grow its memory past {} MiB",
                limits.memory_bytes / (1024 * 1024)
            ),
        );
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Decision::failed(
            PluginFailure::Timeout,
            format_args!("no answer within {} ms", limits.timeout.as_millis()),
        ),
        Some(Trap::StackOverflow) => Decision::failed(
            PluginFailure::StackOverflow,
            "the plugin overflowed its stack",
        ),
        Some(trap) => Decision::failed(PluginFailure::Trap, trap),
        None => {
            // Never the backtrace (it names the plugin's functions, which a hostile
            // plugin chooses): the root cause only, escaped and bounded; the whole chain
            // at debug level, bounded too.
            tracing::debug!(plugin = %state.plugin, error = %plugin_text(&root_cause(err)), "plugin call failed");
            if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
                return Decision::failed(
                    PluginFailure::Exit,
                    format_args!("the plugin called exit({})", exit.0),
                );
            }
            Decision::failed(
                PluginFailure::Error,
                portcullis_core::names::printable(&err.root_cause().to_string(), 200),
            )
        }
    }
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn digest(&self) -> &str {
        &self.compiled.digest
    }
    pub fn size(&self) -> usize {
        self.compiled.size
    }
    pub fn settings(&self) -> &str {
        &self.settings
    }

    fn deadline_ticks(&self) -> u64 {
        (self.limits.timeout.as_micros() / TICK.as_micros()).max(1) as u64 + 1
    }

    /// A fresh instance from the template, configured with the settings.
    async fn instantiate(&self) -> Result<Warm, LoadError> {
        let mut store = Store::new(
            &self.engine,
            HostState::new(self.name.clone(), self.limits.memory_bytes),
        );
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(self.deadline_ticks());
        let world = self
            .compiled
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| {
                let failed = classify(&e, store.data(), &self.limits);
                LoadError::Instantiate(failed.reasons.join("; "))
            })?;
        store.data_mut().start_call();
        store.set_epoch_deadline(self.deadline_ticks());
        match world.call_configure(&mut store, &self.settings).await {
            Ok(Ok(())) => Ok(Warm {
                store,
                world,
                calls: 0,
            }),
            Ok(Err(message)) => Err(LoadError::Configure(plugin_text(&message))),
            Err(e) => Err(LoadError::Configure(
                classify(&e, store.data(), &self.limits).reasons.join("; "),
            )),
        }
    }

    async fn take(&self) -> Result<Warm, LoadError> {
        let idle = self.pool.lock().expect("pool lock").pop();
        match idle {
            Some(w) => Ok(w),
            None => self.instantiate().await,
        }
    }

    fn give_back(&self, warm: Warm) {
        if warm.calls < self.limits.max_calls_per_instance {
            let mut pool = self.pool.lock().expect("pool lock");
            if pool.len() < MAX_IDLE {
                pool.push(warm);
            }
        }
    }

    /// Ask the plugin. Never fails: every failure is a deny naming it.
    pub async fn decide(&self, request: &authz::Request) -> Decision {
        let req = to_wit(request);
        let mut warm = match self.take().await {
            Ok(w) => w,
            Err(e) => return Decision::failed(PluginFailure::Unavailable, e),
        };
        warm.store.data_mut().start_call();
        warm.store.set_epoch_deadline(self.deadline_ticks());
        match warm.world.call_authorize(&mut warm.store, &req).await {
            Ok(d) => {
                warm.calls += 1;
                let verdict = validate(d);
                self.give_back(warm);
                verdict
            }
            Err(e) => {
                // The instance is thrown away: its state after a trap is unknown.
                let denied = classify(&e, warm.store.data(), &self.limits);
                tracing::warn!(plugin = %self.name, reason = %denied.reasons[0], action = %request.action, "plugin call failed; denied");
                denied
            }
        }
    }

    /// Tell one warm instance about a lifecycle event. Failures are logged.
    pub async fn notify(&self, event: &authz::Event) {
        let ev = match event {
            authz::Event::AccountCreated(n) => wit::Event::AccountCreated(n.clone()),
            authz::Event::AccountDeleted(n) => wit::Event::AccountDeleted(n.clone()),
            authz::Event::UserCreated(p) => wit::Event::UserCreated(principal_to_wit(p)),
            authz::Event::UserDeleted(n) => wit::Event::UserDeleted(n.clone()),
        };
        let mut warm = match self.take().await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(plugin = %self.name, error = %e, "could not deliver an event");
                return;
            }
        };
        warm.store.data_mut().start_call();
        warm.store.set_epoch_deadline(self.deadline_ticks());
        match warm.world.call_on_event(&mut warm.store, &ev).await {
            Ok(result) => {
                if let Err(message) = result {
                    tracing::warn!(plugin = %self.name, message = %plugin_text(&message), "plugin refused an event");
                }
                warm.calls += 1;
                self.give_back(warm);
            }
            Err(e) => {
                let failed = classify(&e, warm.store.data(), &self.limits);
                tracing::warn!(plugin = %self.name, reason = %failed.reasons[0], "event delivery failed");
            }
        }
    }
}

fn validate(d: wit::Decision) -> Decision {
    if d.reasons.len() > MAX_REASONS {
        return Decision::failed(
            PluginFailure::Malformed,
            format_args!("{} reasons (at most {MAX_REASONS})", d.reasons.len()),
        );
    }
    if let Some(r) = d.reasons.iter().find(|r| r.len() > MAX_REASON_BYTES) {
        return Decision::failed(
            PluginFailure::Malformed,
            format_args!("a reason of {} bytes (at most {MAX_REASON_BYTES})", r.len()),
        );
    }
    Decision {
        allowed: d.allowed,
        // Escaped: reasons reach logs, terminals (`plugins check`) and HTTP answers.
        reasons: d.reasons.iter().map(|r| plugin_text(r)).collect(),
        ttl_ms: d.ttl_ms,
        failure: None,
    }
}

fn principal_to_wit(p: &authz::Principal) -> wit::Principal {
    wit::Principal {
        username: p.username.clone(),
        account: p.account.clone(),
        account_type: match p.account_type {
            AccountType::Admin => wit::AccountType::Admin,
            AccountType::User => wit::AccountType::User,
            AccountType::Service => wit::AccountType::Service,
        },
        roles: p.roles.clone(),
        attributes: p.attributes.clone(),
    }
}

fn to_wit(r: &authz::Request) -> wit::Request {
    wit::Request {
        principal: principal_to_wit(&r.principal),
        action: r.action.clone(),
        target: wit::Target {
            kind: r.target.kind.clone(),
            id: r.target.id.clone(),
            account: r.target.account.clone(),
            attributes: r.target.attributes.clone(),
        },
        context: r.context.clone(),
    }
}
