//! Builds the WebAssembly plugins (the `plugins/` workspace, which also builds
//! `examples/authzen-todo`, and the tutorial plugin in `examples/`) for `wasm32-wasip2`
//! and writes their paths into `$OUT_DIR/plugins.rs`:
//! `builtin:native`, `builtin:cedar` and `builtin:rego` are embedded in the binary; the
//! others are test programs.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.join("../..").canonicalize().unwrap();
    for p in [
        "plugins/Cargo.toml",
        "plugins/native",
        "plugins/native-rules",
        "plugins/policy-common",
        "plugins/cedar",
        "plugins/rego",
        "plugins/rbac",
        "plugins/hostile",
        "plugins/records",
        "examples/authzen-todo/Cargo.toml",
        "examples/authzen-todo/src",
        "wit",
        "examples/plugin-tutorial/Cargo.toml",
        "examples/plugin-tutorial/src",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // <target>/<profile>/build/<pkg>/out → <target>/wasm-plugins, shared by debug and release.
    let target_dir = out.ancestors().nth(4).unwrap().join("wasm-plugins");

    ensure_target();
    build(
        &root.join("plugins/Cargo.toml"),
        &target_dir,
        &["--workspace"],
    );
    build(
        &root.join("examples/plugin-tutorial/Cargo.toml"),
        &target_dir,
        &[],
    );

    let wasm = target_dir.join(TARGET).join("release");
    let path = |name: &str| {
        let p = wasm.join(format!("{name}.wasm"));
        assert!(p.exists(), "plugin build did not produce {}", p.display());
        p.display().to_string()
    };
    let code = format!(
        "/// `builtin:native`, embedded.\npub const NATIVE: &[u8] = include_bytes!({native:?});\n\
         /// `builtin:cedar`, embedded.\npub const CEDAR: &[u8] = include_bytes!({cedar:?});\n\
         /// `builtin:rego`, embedded.\npub const REGO: &[u8] = include_bytes!({rego:?});\n\
         /// Paths of the plugins built for tests and the check harness.\npub mod paths {{\n\
         pub const NATIVE: &str = {native:?};\npub const CEDAR: &str = {cedar:?};\npub const REGO: &str = {rego:?};\npub const RBAC: &str = {rbac:?};\npub const HOSTILE: &str = {hostile:?};\npub const TUTORIAL: &str = {tutorial:?};\npub const RECORDS: &str = {records:?};\npub const TODO: &str = {todo:?};\n}}\n",
        native = path("portcullis_plugin_native"),
        cedar = path("portcullis_plugin_cedar"),
        rego = path("portcullis_plugin_rego"),
        rbac = path("portcullis_plugin_rbac"),
        hostile = path("portcullis_plugin_hostile"),
        tutorial = path("plugin_tutorial"),
        records = path("portcullis_plugin_records"),
        todo = path("authzen_todo"),
    );
    // The built-ins' digests, computed here so the server never reads (and so never pages
    // in) the megabytes of a built-in it does not use just to tell ours from uploads.
    let digests: Vec<String> = [
        "portcullis_plugin_native",
        "portcullis_plugin_cedar",
        "portcullis_plugin_rego",
    ]
    .iter()
    .map(|n| {
        use sha2::Digest;
        let bytes = std::fs::read(path(n)).unwrap();
        let d = sha2::Sha256::digest(&bytes);
        d.iter().map(|b| format!("{b:02x}")).collect()
    })
    .collect();
    let code = format!(
        "{code}/// SHA-256 of `NATIVE`, `CEDAR` and `REGO` (lowercase hex).\npub const BUILTIN_DIGESTS: &[&str] = &{digests:?};\n"
    );
    std::fs::write(out.join("plugins.rs"), code).unwrap();
}

/// Install the wasm32-wasip2 standard library with rustup when it is missing, so a fresh
/// machine with only Rust can build.
fn ensure_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc --print sysroot");
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    if Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .exists()
    {
        return;
    }
    println!(
        "cargo:warning=installing the {TARGET} target with rustup (needed to build the plugins)"
    );
    let ok = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "the {TARGET} target is missing and `rustup target add {TARGET}` failed; install it and build again");
}

fn build(manifest: &Path, target_dir: &Path, extra: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(manifest)
        .args(extra)
        .env("CARGO_TARGET_DIR", target_dir);
    // Nothing of the outer build (flags for the host, clippy as a wrapper, coverage
    // instrumentation) applies to the plugins.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("running cargo for {}: {e}", manifest.display()));
    assert!(
        status.success(),
        "building the plugin(s) in {} failed",
        manifest.display()
    );
}
