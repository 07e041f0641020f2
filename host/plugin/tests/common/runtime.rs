//! What the plugin-crate test files share: one runtime per test process, keeping compiled
//! built-ins where the API and CLI tests keep them, and the repository root.

use portcullis_plugin::Runtime;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where the test runtimes keep compiled built-in plugins: one folder per build profile,
/// shared with the API and CLI tests, so each is compiled once per build.
pub fn precompiled_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("xdg-cache/portcullis/precompiled")
}

pub fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let rt = Runtime::new().expect("runtime");
        rt.keep_precompiled_in(precompiled_dir());
        rt
    })
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}
