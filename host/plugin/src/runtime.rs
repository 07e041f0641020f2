//! Engine, compilation cache, plugin instances and the decision call.

use crate::convert;
use crate::sandbox::bindings::{v1, v2};
use crate::sandbox::{linker, HostState};
use portcullis_core::authz::{self, Decision, PluginFailure, SearchKind};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
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
    /// Deadline of one call (authorize, candidates, on-event).
    pub timeout: Duration,
    /// Deadline of `configure` when longer than `timeout`: a policy plugin parses its
    /// whole policy set there, once per instance.
    pub configure_timeout: Duration,
    /// Linear memory cap of one instance.
    pub memory_bytes: usize,
    /// A warm instance is discarded after this many calls.
    pub max_calls_per_instance: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_millis(50),
            configure_timeout: Duration::from_secs(2),
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
    #[error("the component does not implement {world}: {0}", world = crate::WORLD_VERSIONS.join(" or "))]
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
    /// Bytes of compiled machine code and data this holds in memory.
    pub code_bytes: usize,
    pre: Pre,
}

impl Compiled {
    /// The version of the world the component implements (`portcullis:authorizer@0.2.0`).
    pub fn world_version(&self) -> &'static str {
        match self.pre {
            Pre::V1(_) => crate::WORLD_V1,
            Pre::V2(_) => crate::WORLD_V2,
        }
    }
}

/// The pre-instantiated template, by the world version the component implements.
enum Pre {
    V1(v1::AuthorizerPre<HostState>),
    V2(v2::AuthorizerPre<HostState>),
}

impl Pre {
    fn component(&self) -> &Component {
        match self {
            Pre::V1(p) => p.instance_pre().component(),
            Pre::V2(p) => p.instance_pre().component(),
        }
    }
}

/// A live instance, by world version.
enum World {
    V1(v1::Authorizer),
    V2(v2::Authorizer),
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

/// Compiled components kept beyond those in use (by an active, shadow or loading plugin),
/// by count and by the bytes of their compiled code (a component built by componentize-js
/// or componentize-py holds tens of MiB).
const MAX_CACHED: usize = 16;
const MAX_CACHED_CODE_BYTES: usize = 256 * 1024 * 1024;
/// Uploaded components from this size on keep their compiled code in the precompiled
/// folder (smaller ones compile in well under a second).
const KEEP_COMPILED_FROM: usize = 1024 * 1024;
/// Compiled files the precompiled folder holds at most, by count and by bytes (the least
/// recently written go first).
const MAX_PRECOMPILED_FILES: usize = 32;
const MAX_PRECOMPILED_BYTES: u64 = 1024 * 1024 * 1024;
/// The largest compiled file kept (larger ones are compiled at every start).
const MAX_PRECOMPILED_FILE: u64 = 256 * 1024 * 1024;
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
    /// Where compiled built-in plugins are kept between runs (set once; see
    /// [`Runtime::keep_precompiled_in`]).
    precompiled: Arc<OnceLock<PathBuf>>,
    /// Built-in plugins read from there instead of compiled (for tests and logs).
    precompiled_loads: Arc<std::sync::atomic::AtomicU64>,
}

/// The digests of the plugins built into the binary: ours, so they skip the static checks
/// meant for uploads (`builtin:cedar` is larger than an upload may be) and may import the
/// clocks of the sandbox, and their compiled code may be kept on disk.
/// (Computed by build.rs: hashing them here would read megabytes of built-ins the server
/// may never use; `every_builtin_implements_its_listed_world` holds the two together.)
fn builtin_digests() -> &'static HashSet<&'static str> {
    static DIGESTS: OnceLock<HashSet<&'static str>> = OnceLock::new();
    DIGESTS.get_or_init(|| crate::programs::BUILTIN_DIGESTS.iter().copied().collect())
}

/// Whether only this process's user can change `path`: it exists, is not a symbolic link,
/// is a directory (`dir`) or a regular file, is owned by the effective user and is not
/// writable by group or others. (Elsewhere than on Unix, nothing is trusted: built-ins are
/// compiled at every start.)
#[cfg(unix)]
fn private(path: &Path, dir: bool) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let kind = if dir { m.is_dir() } else { m.is_file() };
    kind && !m.file_type().is_symlink()
        && m.uid() == rustix::process::geteuid().as_raw()
        && m.mode() & 0o022 == 0
}

#[cfg(not(unix))]
fn private(_path: &Path, _dir: bool) -> bool {
    false
}

/// The folder `dir` is private to this user ([`private`]) and no one else can swap it:
/// the folder holding it is private too, or has the sticky bit (as /tmp: others may not
/// rename or remove what they do not own). No one else can have put a file there.
fn private_dir(dir: &Path) -> bool {
    private(dir, true) && dir.parent().is_none_or(|p| private(p, true) || sticky(p))
}

#[cfg(unix)]
fn sticky(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o1000 != 0)
}

#[cfg(not(unix))]
fn sticky(_path: &Path) -> bool {
    false
}

/// Read a built-in plugin's compiled code written by an earlier run.
///
/// This is the one `unsafe` of the code base: wasmtime runs deserialized code as it is,
/// so it must be code wasmtime wrote for us. It is: the file is only ever written by
/// [`store_precompiled`] from our own compile (of an embedded component, or of an upload
/// that passed `precheck`: the code is what compiling it again would produce, and runs in
/// the same sandbox), into a folder only this user can write (checked here, with
/// the folder holding it, before anything is read: an operator's shared or group-writable
/// folder is ignored), under a temporary name renamed into place (never seen half-written),
/// and its SHA-256, kept beside it, is checked before wasmtime sees a byte (a damaged
/// file is compiled again). The bytes are read once and deserialized from memory.
///
/// The checks hold for what is read, not only for the paths: the folder is opened without
/// following a symbolic link and checked through that handle, and both files are opened
/// relative to it (again not following links) and checked through their own handles, so
/// renaming a folder above it between the check and the read changes nothing.
#[allow(unsafe_code)]
fn load_precompiled(engine: &Engine, path: &Path) -> Option<Component> {
    let dir = path.parent()?;
    if !private_dir(dir) {
        return None;
    }
    let (bytes, want) = read_private_pair(path)?;
    if digest(&bytes) != want.trim() {
        tracing::warn!(path = %path.display(), "precompiled plugin does not match its digest; compiling again");
        return None;
    }
    // SAFETY: see above: bytes wasmtime serialized for us, in a folder no one else can
    // write, unchanged since (digest checked), for an engine of this configuration (named
    // in the file name; wasmtime checks it too).
    match unsafe { Component::deserialize(engine, &bytes) } {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "precompiled plugin refused; compiling again");
            None
        }
    }
}

/// The bytes of `path` and of its `.sha256` beside it, read through handles: the folder's
/// (a directory owned by this user, writable by no one else, opened without following a
/// link) and each file's (regular, owned by this user, writable by no one else, opened
/// relative to that folder without following a link). A kept file read successfully is
/// marked used (its modification time), so pruning drops the least recently used first.
#[cfg(unix)]
fn read_private_pair(path: &Path) -> Option<(Vec<u8>, String)> {
    use rustix::fs::{fstat, open, openat, FileType, Mode, OFlags};
    use std::io::Read;
    let euid = rustix::process::geteuid().as_raw();
    let owned = |st: &rustix::fs::Stat, kind: FileType| {
        FileType::from_raw_mode(st.st_mode) == kind && st.st_uid == euid && st.st_mode & 0o022 == 0
    };
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let dir = open(path.parent()?, flags | OFlags::DIRECTORY, Mode::empty()).ok()?;
    if !owned(&fstat(&dir).ok()?, FileType::Directory) {
        return None;
    }
    let read = |name: &std::ffi::OsStr| -> Option<(std::fs::File, Vec<u8>)> {
        let fd = openat(&dir, name, flags, Mode::empty()).ok()?;
        if !owned(&fstat(&fd).ok()?, FileType::RegularFile) {
            return None;
        }
        let mut file = std::fs::File::from(fd);
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        Some((file, bytes))
    };
    let (file, bytes) = read(path.file_name()?)?;
    let (_, want) = read(path.with_extension("sha256").file_name()?)?;
    let _ = file.set_modified(std::time::SystemTime::now());
    Some((bytes, String::from_utf8(want).ok()?))
}

#[cfg(not(unix))]
fn read_private_pair(_path: &Path) -> Option<(Vec<u8>, String)> {
    None
}

/// Create `dir` (and what is missing above it) readable and writable by this user only.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Write `bytes` to a new file only this user can read and write.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)?.write_all(bytes)
}

/// Keep a component's compiled code for the next run (best effort: a read-only or full
/// disk, or a folder someone else could write, only costs the next start a compile). The
/// folder keeps at most `MAX_PRECOMPILED_FILES` files and `MAX_PRECOMPILED_BYTES`, room
/// being made before the new file is written; a file larger than `MAX_PRECOMPILED_FILE`
/// is not kept.
fn store_precompiled(component: &Component, path: &Path) {
    let Ok(bytes) = component.serialize() else {
        return;
    };
    if bytes.len() as u64 > MAX_PRECOMPILED_FILE {
        return;
    }
    let Some(dir) = path.parent() else { return };
    let tmp = tempfile_name(path);
    let tmp_digest = tempfile_name(&path.with_extension("sha256"));
    let write = || -> std::io::Result<()> {
        create_private_dir(dir)?;
        if !private_dir(dir) {
            return Err(std::io::Error::other(
                "the folder (or the one holding it) can be written by other users",
            ));
        }
        prune_precompiled(dir, bytes.len() as u64);
        write_private(&tmp, &bytes)?;
        write_private(&tmp_digest, digest(&bytes).as_bytes())?;
        std::fs::rename(&tmp_digest, path.with_extension("sha256"))?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        // Nothing half-written stays behind (a full disk is where this happens).
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(&tmp_digest);
        tracing::warn!(path = %path.display(), error = %e, "could not keep the compiled plugin");
    }
}

/// Make room for a file of `incoming` bytes: remove the least recently used compiled
/// files (with their digests) until the folder, with it, is within
/// `MAX_PRECOMPILED_FILES` and `MAX_PRECOMPILED_BYTES`; also temporary files and digests
/// left behind by a process that died (an hour old). Another process may prune at the
/// same time: a file already gone is fine, and a reader that loses one compiles again.
/// Called only for a folder that passed [`private_dir`].
fn prune_precompiled(dir: &Path, incoming: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let stale = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = Vec::new();
    for p in entries.filter_map(Result::ok).map(|e| e.path()) {
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let Ok(modified) = m.modified() else { continue };
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        let orphan = name.ends_with(".sha256") && !p.with_extension("cwasm").exists();
        if (name.contains(".tmp.") || orphan) && modified < stale {
            let _ = std::fs::remove_file(&p);
        } else if p.extension().is_some_and(|x| x == "cwasm") {
            files.push((modified, m.len(), p));
        }
    }
    files.sort();
    let mut count = files.len() + 1;
    let mut bytes: u64 = files.iter().map(|(_, len, _)| len).sum::<u64>() + incoming;
    for (_, len, p) in files {
        if count <= MAX_PRECOMPILED_FILES && bytes <= MAX_PRECOMPILED_BYTES {
            break;
        }
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_file(p.with_extension("sha256"));
        count -= 1;
        bytes = bytes.saturating_sub(len);
    }
}

/// A temporary name beside `path`, unique to this process and call (a random part too:
/// in containers every server is process 1).
fn tempfile_name(path: &Path) -> PathBuf {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(N.fetch_add(1, Ordering::Relaxed));
    path.with_extension(format!("tmp.{}.{:016x}", std::process::id(), h.finish()))
}

/// Why `bytes` are not a WebAssembly binary at all, in words that say what to upload
/// instead (the commonest mistakes: a source file, WebAssembly text, a JavaScript or
/// Python file handed over instead of the build's output).
fn not_binary(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(b"\0asm") {
        return None;
    }
    // Text when the head is UTF-8 (a character cut at the end of the head is fine).
    let text = std::str::from_utf8(&bytes[..bytes.len().min(4096)])
        .map_or_else(|e| e.error_len().is_none(), |_| true);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |i| &bytes[i..]);
    let build = "upload what the build produced: `target/wasm32-wasip2/release/NAME.wasm` from `cargo build --release --target wasm32-wasip2` (Rust), or the `plugin.wasm` that the build script of examples/plugin-js or examples/plugin-python writes";
    Some(if start.starts_with(b"(") || start.starts_with(b";;") {
        format!("this is WebAssembly text (WAT), which is not accepted: the server takes binary components only; convert it with `wasm-tools parse FILE.wat -o FILE.wasm`, or {build}")
    } else if text {
        format!("this is a text file (source code?), and a component is binary (it starts with the bytes \\0asm): {build}")
    } else {
        format!("its first bytes are not \\0asm: {build}")
    })
}

/// Refuse what would be too costly to compile, from the component's headers alone.
fn precheck(bytes: &[u8], limits: &CodeLimits) -> Result<(), LoadError> {
    use wasmparser::{Encoding, Parser, Payload};
    if let Some(why) = not_binary(bytes) {
        return Err(LoadError::NotAComponent(why));
    }
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
                            "it imports {}, which the sandbox does not provide. {IMPORT_ADVICE}",
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
            crate::WORLD_VERSIONS.join(" or ")
        )));
    }
    Ok(())
}

/// What to do about an import the sandbox does not provide, for each toolchain.
const IMPORT_ADVICE: &str = "Plugins get no filesystem, network, clock or environment: only `portcullis:authorizer/host`, `wasi:io`, `wasi:cli` (empty stdin, discarded output) and `wasi:random`. Tell the toolchain not to import the rest: Rust: remove the code that needs it (std::fs, std::net, SystemTime, Instant); JavaScript (componentize-js): `-d stdio random clocks http fetch-event` (examples/plugin-js/build.sh); Python (componentize-py): `--stub-wasi` (examples/plugin-python/build.sh). See \"What a plugin must not import\" in docs/writing-plugins.md.";

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
            precompiled: Arc::new(OnceLock::new()),
            precompiled_loads: Arc::default(),
        })
    }

    /// Keep the compiled code of built-in plugins in `dir` (the server passes
    /// `<data_dir>/precompiled`), so a restart deserializes them instead of compiling
    /// them again. The first directory set wins (a runtime shared by several servers in
    /// one process keeps one); returns whether this one was taken.
    pub fn keep_precompiled_in(&self, dir: PathBuf) -> bool {
        self.precompiled.set(dir).is_ok()
    }

    /// How many built-in plugins this runtime read from the precompiled folder instead of
    /// compiling them.
    pub fn precompiled_loads(&self) -> u64 {
        self.precompiled_loads
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The file a built-in plugin's compiled code is kept in: named after its digest and
    /// the engine's configuration and version.
    fn precompiled_path(&self, digest: &str) -> Option<PathBuf> {
        use std::hash::{Hash, Hasher};
        let dir = self.precompiled.get()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        Some(dir.join(format!("{digest}-{:016x}.cwasm", h.finish())))
    }

    /// A component kept from an earlier run (`None` beside it), or compiled, with the path
    /// to keep it at once it has passed the world checks (built-in plugins, and uploads
    /// large enough to be worth it).
    fn kept_component(
        &self,
        bytes: &[u8],
        digest: &str,
    ) -> Result<(Component, Option<PathBuf>), LoadError> {
        let path = self.precompiled_path(digest);
        if let Some(c) = path
            .as_deref()
            .and_then(|p| load_precompiled(&self.engine, p))
        {
            self.precompiled_loads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok((c, None));
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| LoadError::NotAComponent(plugin_text(&root_cause(&e))))?;
        Ok((component, path))
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
            .compile_fresh(bytes, &digest)
            .inspect_err(|e| self.remember_refusal(&digest, e))?;
        let image = pre.component().image_range();
        let compiled = Arc::new(Compiled {
            digest: digest.clone(),
            size: bytes.len(),
            code_bytes: (image.end as usize).saturating_sub(image.start as usize),
            pre,
        });
        let mut cache = self.cache.lock().expect("cache lock");
        cache.insert(digest.clone(), compiled.clone());
        trim_cache(&mut cache, &digest);
        Ok(compiled)
    }

    fn compile_fresh(&self, bytes: &[u8], digest: &str) -> Result<Pre, LoadError> {
        let (component, keep_at) = if builtin_digests().contains(digest) {
            self.kept_component(bytes, digest)?
        } else {
            precheck(bytes, &self.code_limits)?;
            if bytes.len() >= KEEP_COMPILED_FROM {
                self.kept_component(bytes, digest)?
            } else {
                let c = Component::new(&self.engine, bytes)
                    .map_err(|e| LoadError::NotAComponent(plugin_text(&root_cause(&e))))?;
                (c, None)
            }
        };
        let pre = self.world_of(&component)?;
        // Kept only once it is known to be a plugin: a refused upload writes nothing.
        if let Some(path) = keep_at {
            store_precompiled(&component, &path);
        }
        Ok(pre)
    }

    /// The pre-instantiated template of `component`, by the world version it implements.
    fn world_of(&self, component: &Component) -> Result<Pre, LoadError> {
        let instance_pre = self.linker.instantiate_pre(component).map_err(|e| {
            let why = plugin_text(&root_cause(&e));
            // An import of an interface the sandbox links, but a function of it (or a
            // version of it) that this host does not have.
            if why.contains("implementation is missing") {
                LoadError::WrongWorld(format!(
                    "{why}: the component imports a function the sandbox does not provide. {IMPORT_ADVICE}"
                ))
            } else {
                LoadError::WrongWorld(why)
            }
        })?;
        // The version is told by the exports' types: try the current one, then 0.1.0, and
        // explain with the error of the version the component's imports name.
        let v2 = match v2::AuthorizerPre::new(instance_pre.clone()) {
            Ok(pre) => return Ok(Pre::V2(pre)),
            Err(e) => e,
        };
        let v1 = match v1::AuthorizerPre::new(instance_pre) {
            Ok(pre) => return Ok(Pre::V1(pre)),
            Err(e) => e,
        };
        let names_v1 = component
            .component_type()
            .imports(&self.engine)
            .any(|(name, _)| name.ends_with("@0.1.0"));
        let e = if names_v1 { v1 } else { v2 };
        Err(LoadError::WrongWorld(plugin_text(&root_cause(&e))))
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

/// Forget compiled components no plugin uses (an active, shadow or loading plugin holds
/// its `Arc`) until the cache is within its count and its code bytes; `keep` (the one
/// just compiled) stays. A later activation of a forgotten one compiles it again (or
/// reads it from the precompiled folder).
fn trim_cache(cache: &mut HashMap<String, Arc<Compiled>>, keep: &str) {
    let mut bytes: usize = cache.values().map(|c| c.code_bytes).sum();
    if cache.len() <= MAX_CACHED && bytes <= MAX_CACHED_CODE_BYTES {
        return;
    }
    let mut unused: Vec<(String, usize)> = cache
        .iter()
        .filter(|(k, c)| k.as_str() != keep && Arc::strong_count(c) == 1)
        .map(|(k, c)| (k.clone(), c.code_bytes))
        .collect();
    // The largest first: the fewest recompiles for the memory given back.
    unused.sort_by_key(|(_, b)| std::cmp::Reverse(*b));
    for (k, b) in unused {
        if cache.len() <= MAX_CACHED && bytes <= MAX_CACHED_CODE_BYTES {
            break;
        }
        cache.remove(&k);
        bytes -= b;
    }
}

/// Epoch ticks of a deadline (at least one, plus one for the tick already under way).
fn ticks(d: Duration) -> u64 {
    (d.as_micros() / TICK.as_micros()).max(1) as u64 + 1
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

/// What a call on a warm instance did.
type Called<T> = Result<T, wasmtime::Error>;

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
        ticks(self.limits.timeout)
    }

    fn configure_deadline_ticks(&self) -> u64 {
        ticks(self.limits.timeout.max(self.limits.configure_timeout))
    }

    /// A fresh instance from the template, configured with the settings.
    async fn instantiate(&self) -> Result<Warm, LoadError> {
        let mut store = Store::new(
            &self.engine,
            HostState::new(self.name.clone(), self.limits.memory_bytes),
        );
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(self.deadline_ticks());
        let world = match &self.compiled.pre {
            Pre::V1(pre) => pre.instantiate_async(&mut store).await.map(World::V1),
            Pre::V2(pre) => pre.instantiate_async(&mut store).await.map(World::V2),
        };
        let world = world.map_err(|e| {
            let failed = classify(&e, store.data(), &self.limits);
            LoadError::Instantiate(failed.reasons.join("; "))
        })?;
        store.data_mut().start_call();
        store.set_epoch_deadline(self.configure_deadline_ticks());
        let configured = match &world {
            World::V1(w) => w.call_configure(&mut store, &self.settings).await,
            World::V2(w) => w.call_configure(&mut store, &self.settings).await,
        };
        match configured {
            Ok(Ok(())) => Ok(Warm {
                store,
                world,
                calls: 0,
            }),
            Ok(Err(message)) => Err(LoadError::Configure(plugin_text(&message))),
            Err(e) => {
                let limits = Limits {
                    timeout: self.limits.timeout.max(self.limits.configure_timeout),
                    ..self.limits
                };
                Err(LoadError::Configure(
                    classify(&e, store.data(), &limits).reasons.join("; "),
                ))
            }
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

    /// The version of the world the plugin implements.
    pub fn world_version(&self) -> &'static str {
        self.compiled.world_version()
    }

    /// Run `call` on a warm instance, with the deadline set; the instance goes back to the
    /// pool after an answer and is thrown away after a failure (its state after a trap is
    /// unknown). `Err` holds the failure as a deny naming it.
    async fn with_instance<T>(
        &self,
        what: &str,
        call: impl AsyncFnOnce(&World, &mut Store<HostState>) -> Called<T>,
    ) -> Result<T, Decision> {
        let mut warm = match self.take().await {
            Ok(w) => w,
            Err(e) => return Err(Decision::failed(PluginFailure::Unavailable, e)),
        };
        warm.store.data_mut().start_call();
        warm.store.set_epoch_deadline(self.deadline_ticks());
        match call(&warm.world, &mut warm.store).await {
            Ok(answer) => {
                warm.calls += 1;
                self.give_back(warm);
                Ok(answer)
            }
            Err(e) => {
                let denied = classify(&e, warm.store.data(), &self.limits);
                tracing::warn!(plugin = %self.name, reason = %denied.reasons[0], call = what, "plugin call failed; denied");
                Err(denied)
            }
        }
    }

    /// Ask the plugin about a management call or `/v1/authorize`. Never fails: every
    /// failure is a deny naming it.
    pub async fn decide(&self, request: &authz::Request) -> Decision {
        let answer = self
            .with_instance(&request.action, async |world, store| match world {
                World::V1(w) => {
                    let req = convert::request_to_v1(request);
                    w.call_authorize(store, &req)
                        .await
                        .map(convert::decision_v1)
                }
                World::V2(w) => {
                    let req = convert::request_to_v2(request);
                    w.call_authorize(store, &req)
                        .await
                        .map(convert::decision_v2)
                }
            })
            .await;
        answer.map_or_else(|failed| failed, validate)
    }

    /// Ask the plugin an application policy's question. A 0.1.0 plugin only knows
    /// Portcullis users: a subject of another type is a deny that says so.
    pub async fn evaluate(&self, query: &authz::Query) -> Decision {
        let v1_request = match (&self.compiled.pre, &query.principal) {
            (Pre::V1(_), None) => {
                return Decision::deny(format!(
                    "the policy's plugin implements {}, which only knows Portcullis users: a subject of type {} needs a plugin for {}",
                    crate::WORLD_V1,
                    portcullis_core::names::printable(&query.subject.kind, 128),
                    crate::WORLD_V2
                ))
            }
            (Pre::V1(_), Some(p)) => Some(convert::query_to_v1(query, p)),
            (Pre::V2(_), _) => None,
        };
        let answer = self
            .with_instance(&query.action, async |world, store| match world {
                World::V1(w) => {
                    let req = v1_request.expect("built for a 0.1.0 plugin");
                    w.call_authorize(store, &req)
                        .await
                        .map(convert::decision_v1)
                }
                World::V2(w) => {
                    let req = convert::query_to_v2(query);
                    w.call_authorize(store, &req)
                        .await
                        .map(convert::decision_v2)
                }
            })
            .await;
        answer.map_or_else(|failed| failed, validate)
    }

    /// What an AuthZEN search may return for entities of `of_type` (action search: the
    /// resource's type), as the plugin enumerates them. `Ok(None)`: the plugin cannot
    /// enumerate (every 0.1.0 plugin). `Err`: the call failed (a deny naming it), or the
    /// plugin answered more than [`MAX_CANDIDATES`] candidates or one longer than 1024 bytes.
    pub async fn candidates(
        &self,
        kind: SearchKind,
        of_type: &str,
    ) -> Result<Option<Vec<String>>, Decision> {
        if let Pre::V1(_) = self.compiled.pre {
            return Ok(None);
        }
        let kind_wit = match kind {
            SearchKind::Subject => v2::portcullis::authorizer::types::SearchKind::Subject,
            SearchKind::Resource => v2::portcullis::authorizer::types::SearchKind::Resource,
            SearchKind::Action => v2::portcullis::authorizer::types::SearchKind::Action,
        };
        let found = self
            .with_instance("candidates", async |world, store| match world {
                World::V2(w) => w.call_candidates(store, kind_wit, of_type).await,
                World::V1(_) => Ok(None),
            })
            .await?;
        match found {
            Some(list) if list.len() > MAX_CANDIDATES => Err(Decision::failed(
                PluginFailure::Malformed,
                format_args!("{} candidates (at most {MAX_CANDIDATES})", list.len()),
            )),
            Some(list) if list.iter().any(|c| c.len() > MAX_REASON_BYTES) => Err(Decision::failed(
                PluginFailure::Malformed,
                "a candidate longer than 1024 bytes",
            )),
            other => Ok(other),
        }
    }

    /// Tell one warm instance about a lifecycle event. Failures are logged.
    pub async fn notify(&self, event: &authz::Event) {
        let refused = self
            .with_instance("on-event", async |world, store| match world {
                World::V1(w) => w.call_on_event(store, &convert::event_v1(event)).await,
                World::V2(w) => w.call_on_event(store, &convert::event_v2(event)).await,
            })
            .await;
        match refused {
            Ok(Err(message)) => {
                tracing::warn!(plugin = %self.name, message = %plugin_text(&message), "plugin refused an event")
            }
            Ok(Ok(())) => {}
            Err(failed) => {
                tracing::warn!(plugin = %self.name, reason = %failed.reasons[0], "event delivery failed")
            }
        }
    }
}

/// Most candidates one `candidates` call may answer.
pub const MAX_CANDIDATES: usize = 10_000;

/// A plugin's answer, held to the contract: too many or too long reasons make it a
/// malformed answer (deny); reasons are escaped (they reach logs, terminals and HTTP).
fn validate(d: Decision) -> Decision {
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
        reasons: d.reasons.iter().map(|r| plugin_text(r)).collect(),
        ..d
    }
}
