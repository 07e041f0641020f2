//! Tidy tests: the invariants of docs/ARCHITECTURE.md, checked by reading the source tree
//! (after rust-analyzer's `xtask/src/tidy.rs`). Nothing here compiles or runs the host; each
//! test reads files under the repository root and fails listing every offender, so a broken
//! rule names the file and line to fix.
//!
//!   cargo test --workspace --test tidy
//!
//! Rust sources are read through a small lexer ([`lex`]) that drops comments and keeps
//! string literals as single tokens: prose that mentions `sqlx::` or `crate::routes` is not
//! code, and a `"crate::x"` in a string is not a path.
//!
//! Scope: the host crates (every directory under `host/`). The `tests/` crate, dev-
//! dependencies, and `tests/` / `benches/` inside host crates are exempt (they may reach
//! anything); `plugins/` and `examples/` are workspaces of their own.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Foreign crates owned by one host crate: (the name Cargo.toml spells, the home crate under
/// `host/`). In Rust paths the same crate is spelled with `_` for `-`.
const HOMES: &[(&str, &str)] = &[
    ("sqlx", "store"),
    ("axum", "server"),
    ("hyper", "server"),
    ("hyper-util", "server"),
    ("tower-http", "server"),
    ("wasmtime", "plugin"),
    ("wasmtime-wasi", "plugin"),
    ("wasmtime-wasi-io", "plugin"),
    ("wasmparser", "plugin"),
];

/// Crates the use-case crate `host/app` must not name at all (nor any `<word>-…` / `<word>_…`
/// crate of the same family, such as `hyper-util` or `wasmtime-wasi`).
const APP_FORBIDDEN: &[&str] = &["axum", "hyper", "sqlx", "wasmtime"];

/// String literals of the form `portcullis.<word>` that name files, not context keys.
const NOT_CONTEXT_KEYS: &[&str] = &[
    "portcullis.db",
    "portcullis.db-wal",
    "portcullis.db-shm",
    "portcullis.toml",
];

/// The repository root (this crate lives in `tests/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `path` relative to the repository root, with `/` separators, for messages.
fn rel(path: &Path) -> String {
    let root = root();
    let p = path.strip_prefix(&root).unwrap_or(path);
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Fail with every offender, one per line, under a heading saying which rule broke.
fn check(rule: &str, offenders: Vec<String>) {
    if !offenders.is_empty() {
        panic!(
            "\n{rule}\n{} offender(s):\n  {}\n",
            offenders.len(),
            offenders.join("\n  ")
        );
    }
}

/// The host crates: `(directory name under host/, path)`, sorted.
fn host_crates() -> Vec<(String, PathBuf)> {
    let mut crates: Vec<_> = fs::read_dir(root().join("host"))
        .expect("reading host/")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file() || p.join("src").is_dir())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    crates.sort();
    crates
}

/// Every `.rs` file under `dir` (recursively, `target/` aside), sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|x| x == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The code a host crate ships: `src/**.rs` and `build.rs` (not its tests or benches).
fn shipped_rust_files(krate: &Path) -> Vec<PathBuf> {
    let mut files = rust_files(&krate.join("src"));
    if krate.join("build.rs").is_file() {
        files.push(krate.join("build.rs"));
    }
    files
}

// ---------------------------------------------------------------------------------------
// A lexer just good enough to tell code from comments and strings.

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Ident,
    /// A string literal's contents (escapes left as written).
    Str,
    /// `::` or any other single character.
    Punct,
    /// Numbers, char literals, lifetimes' quote.
    Other,
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    text: String,
    line: usize,
}

impl Token {
    fn is(&self, text: &str) -> bool {
        self.kind != Kind::Str && self.text == text
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Tokens of Rust source: identifiers, string literals, punctuation; comments dropped.
fn lex(src: &str) -> Vec<Token> {
    let s: Vec<char> = src.chars().collect();
    let at = |i: usize| s.get(i).copied().unwrap_or('\0');
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < s.len() {
        let c = s[i];
        let start_line = line;
        let mut push = |kind, text: String| {
            out.push(Token {
                kind,
                text,
                line: start_line,
            })
        };
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < s.len() {
                if s[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if s[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(s[i] == '\n');
                    i += 1;
                }
            }
        } else if let Some((len, hashes)) = raw_string_start(&s, i) {
            // r"…", r#"…"#, br"…", cr"…": ends at a quote followed by as many hashes.
            let mut j = i + len;
            let body_start = j;
            loop {
                if j >= s.len() {
                    break;
                }
                if s[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#') {
                    break;
                }
                line += usize::from(s[j] == '\n');
                j += 1;
            }
            push(Kind::Str, s[body_start..j.min(s.len())].iter().collect());
            i = j + 1 + hashes;
        } else if c == '"' || ((c == 'b' || c == 'c') && at(i + 1) == '"') {
            let mut j = if c == '"' { i + 1 } else { i + 2 };
            let body_start = j;
            while j < s.len() && s[j] != '"' {
                if s[j] == '\\' {
                    j += 1;
                }
                line += usize::from(at(j) == '\n');
                j += 1;
            }
            push(Kind::Str, s[body_start..j.min(s.len())].iter().collect());
            i = j + 1;
        } else if c == '\'' || (c == 'b' && at(i + 1) == '\'') {
            // A char literal ('x', '\n', b'x') or a lifetime ('a: just the quote).
            let q = if c == '\'' { i } else { i + 1 };
            if at(q + 1) == '\\' {
                let mut j = q + 3;
                while j < s.len() && s[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
                push(Kind::Other, "'…'".into());
            } else if at(q + 2) == '\'' {
                i = q + 3;
                push(Kind::Other, "'…'".into());
            } else {
                i = q + 1;
                push(Kind::Other, "'".into());
            }
        } else if c == 'r' && at(i + 1) == '#' && is_ident_start(at(i + 2)) {
            // A raw identifier: r#type is the identifier `type`.
            let mut j = i + 2;
            while j < s.len() && is_ident_char(s[j]) {
                j += 1;
            }
            push(Kind::Ident, s[i + 2..j].iter().collect());
            i = j;
        } else if is_ident_start(c) {
            let mut j = i;
            while j < s.len() && is_ident_char(s[j]) {
                j += 1;
            }
            push(Kind::Ident, s[i..j].iter().collect());
            i = j;
        } else if c.is_ascii_digit() {
            let mut j = i;
            while j < s.len() && is_ident_char(s[j]) {
                j += 1;
            }
            push(Kind::Other, s[i..j].iter().collect());
            i = j;
        } else if c == ':' && at(i + 1) == ':' {
            push(Kind::Punct, "::".into());
            i += 2;
        } else {
            push(Kind::Punct, c.to_string());
            i += 1;
        }
    }
    out
}

/// At `i`, the start of a raw string (`r"`, `r#"`, `br#"`, `cr"`…): the length of its
/// opening (prefix, hashes, quote) and the number of hashes.
fn raw_string_start(s: &[char], i: usize) -> Option<(usize, usize)> {
    if i > 0 && is_ident_char(s[i - 1]) {
        return None;
    }
    let mut j = i;
    if matches!(s.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if s.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = s[j..].iter().take_while(|&&c| c == '#').count();
    (s.get(j + hashes) == Some(&'"')).then_some((j + hashes + 1 - i, hashes))
}

/// The tokens without `#[cfg(test)] mod … { … }` blocks: unit tests may reach anything.
fn without_test_modules(tokens: &[Token]) -> Vec<Token> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if is_cfg_test(tokens, i) {
            // Skip this and any further attributes, then look for `mod name {`.
            let mut j = i;
            while j < tokens.len() && tokens[j].is("#") {
                j = matching(tokens, j + 1).map_or(tokens.len(), |k| k + 1);
            }
            let vis = usize::from(tokens.get(j).is_some_and(|t| t.is("pub")));
            let is_mod = tokens.get(j + vis).is_some_and(|t| t.is("mod"))
                && tokens.get(j + vis + 2).is_some_and(|t| t.is("{"));
            if is_mod {
                i = matching(tokens, j + vis + 2).map_or(tokens.len(), |k| k + 1);
                continue;
            }
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}

/// `#[cfg(test)]` starts at `i`.
fn is_cfg_test(tokens: &[Token], i: usize) -> bool {
    let want = ["#", "[", "cfg", "(", "test", ")", "]"];
    want.iter()
        .enumerate()
        .all(|(k, w)| tokens.get(i + k).is_some_and(|t| t.is(w)))
}

/// The index of the bracket closing the one at `open` (`(`, `[` or `{`).
fn matching(tokens: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        if t.is("(") || t.is("[") || t.is("{") {
            depth += 1;
        } else if t.is(")") || t.is("]") || t.is("}") {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// Cargo.toml, read line by line (no TOML dependency).

/// One dependency named in a Cargo.toml: the crate's name (a `package = "…"` rename is
/// followed), its line, and whether it is a dev-dependency.
struct Dependency {
    name: String,
    line: usize,
    dev: bool,
}

/// The dependencies of a member's Cargo.toml: `[dependencies]`, `[build-dependencies]`,
/// `[dev-dependencies]`, their `[target.….…]` forms, and `[dependencies.NAME]` tables.
fn dependencies(toml: &str) -> Vec<Dependency> {
    const TABLES: [&str; 3] = ["dependencies", "build-dependencies", "dev-dependencies"];
    let mut deps: Vec<Dependency> = Vec::new();
    let mut table: Option<bool> = None; // Some(dev) inside a table of dependencies
    let mut named = false; // inside a [dependencies.NAME] table
    let mut depth = 0; // inside a multi-line inline table or array
    for (n, line) in toml.lines().map(str::trim).enumerate() {
        if depth > 0 {
            depth += brackets(line);
        } else if line.starts_with('[') {
            let section = line.trim_matches(|c| c == '[' || c == ']').trim();
            let (head, last) = section.rsplit_once('.').unwrap_or(("", section));
            let head_last = head.rsplit('.').next().unwrap_or(head);
            table = None;
            named = false;
            if section.starts_with("workspace.") {
                // [workspace.dependencies] declares versions; members choose.
            } else if TABLES.contains(&last) {
                table = Some(last == "dev-dependencies");
            } else if TABLES.contains(&head_last) {
                named = true;
                deps.push(Dependency {
                    name: last.trim_matches('"').to_string(),
                    line: n + 1,
                    dev: head_last == "dev-dependencies",
                });
            }
        } else if line.starts_with('#') {
            // a comment
        } else if named && line.starts_with("package") {
            if let (Some(dep), Some(renamed)) = (deps.last_mut(), quoted(line)) {
                dep.name = renamed;
            }
        } else if let (Some(dev), Some((key, value))) = (table, line.split_once('=')) {
            let key = key.trim().split('.').next().unwrap_or("").trim_matches('"');
            let name = value
                .split_once("package")
                .and_then(|(_, rest)| quoted(rest))
                .unwrap_or_else(|| key.to_string());
            deps.push(Dependency {
                name,
                line: n + 1,
                dev,
            });
            depth = brackets(value);
        }
    }
    deps
}

/// Opening minus closing brackets and braces on a line.
fn brackets(line: &str) -> i32 {
    let count = |set: [char; 2]| line.matches(set).count() as i32;
    count(['{', '[']) - count(['}', ']'])
}

/// The first `"…"` in `s`.
fn quoted(s: &str) -> Option<String> {
    let start = s.find('"')? + 1;
    let len = s[start..].find('"')?;
    Some(s[start..start + len].to_string())
}

/// `name` is `word` or `word-…` / `word_…`.
fn in_family(name: &str, word: &str) -> bool {
    name == word
        || name
            .strip_prefix(word)
            .is_some_and(|rest| rest.starts_with('-') || rest.starts_with('_'))
}

// ---------------------------------------------------------------------------------------
// 1. Foreign dependencies stay home.

/// The architecture narrows each heavy foreign dependency to one crate (only `store` knows
/// SQL, only `server` knows axum/hyper, only `plugin` knows wasmtime), so replacing or
/// upgrading it touches one crate and the rest of the host cannot grow a hidden coupling to
/// it. Checked twice: the `[dependencies]` of every host crate, and paths like `sqlx::…`
/// in the code the crates ship (their `src/` and `build.rs`, unit tests aside).
#[test]
fn foreign_dependencies_stay_in_their_home_crate() {
    let mut offenders = Vec::new();
    for (krate, dir) in host_crates() {
        let manifest = dir.join("Cargo.toml");
        if manifest.is_file() {
            for dep in dependencies(&read(&manifest)) {
                if dep.dev {
                    continue;
                }
                for &(foreign, home) in HOMES {
                    if dep.name == foreign && krate != home {
                        offenders.push(format!(
                            "{}:{}: depends on {foreign} (only host/{home} may)",
                            rel(&manifest),
                            dep.line
                        ));
                    }
                }
            }
        }
        for file in shipped_rust_files(&dir) {
            let tokens = without_test_modules(&lex(&read(&file)));
            for (k, t) in tokens.iter().enumerate() {
                let path_root = tokens.get(k + 1).is_some_and(|n| n.is("::"))
                    || (k > 0 && (tokens[k - 1].is("use") || tokens[k - 1].is("crate")));
                if t.kind != Kind::Ident || !path_root {
                    continue;
                }
                for &(foreign, home) in HOMES {
                    if t.text == foreign.replace('-', "_") && krate != home {
                        offenders.push(format!(
                            "{}:{}: uses {}:: (only host/{home} may)",
                            rel(&file),
                            t.line,
                            t.text
                        ));
                    }
                }
            }
        }
    }
    check(
        "A foreign dependency is used outside its home crate (docs/ARCHITECTURE.md, Invariants).",
        offenders,
    );
}

// ---------------------------------------------------------------------------------------
// 2. Every module says what it owns.

/// Each file of the host says what it owns in its first lines (`//!`), so a reader finds
/// their way from the code map to the file and from the file to its purpose without
/// reading it all; a module that cannot say what it owns in a sentence is a module to split.
#[test]
fn every_host_module_starts_with_a_module_doc() {
    let mut offenders = Vec::new();
    for (_, dir) in host_crates() {
        for file in rust_files(&dir.join("src")) {
            if !starts_with_module_doc(&read(&file)) {
                offenders.push(format!("{}: no leading `//!` module doc", rel(&file)));
            }
        }
    }
    check(
        "A module under host/*/src does not start with a `//!` doc comment.",
        offenders,
    );
}

/// The first line that is not blank and not part of a `#![…]` inner attribute is `//!`.
fn starts_with_module_doc(src: &str) -> bool {
    let mut in_attribute = false;
    for line in src.lines().map(str::trim) {
        if in_attribute || line.starts_with("#![") {
            in_attribute = !line.ends_with(']');
        } else if !line.is_empty() {
            return line.starts_with("//!");
        }
    }
    false
}

// ---------------------------------------------------------------------------------------
// 3. The use cases know no transport, no SQL, no runtime.

/// `host/app` holds the use cases (login, accounts, keys, activation, …), called by the HTTP
/// layer and by the CLI's host-side commands alike. It must not name axum, hyper, sqlx or
/// wasmtime — not even as a dev-dependency — or it would stop being callable (and testable)
/// without a socket, a database driver or a WebAssembly engine. Until `host/app` exists this
/// test checks nothing.
#[test]
fn app_crate_knows_no_transport_sql_or_wasm_runtime() {
    let dir = root().join("host/app");
    let mut offenders = Vec::new();
    let manifest = dir.join("Cargo.toml");
    if manifest.is_file() {
        for dep in dependencies(&read(&manifest)) {
            if let Some(word) = APP_FORBIDDEN.iter().find(|w| in_family(&dep.name, w)) {
                offenders.push(format!(
                    "{}:{}: depends on {} ({word} belongs elsewhere)",
                    rel(&manifest),
                    dep.line,
                    dep.name
                ));
            }
        }
    }
    for file in rust_files(&dir) {
        for t in lex(&read(&file)) {
            if t.kind != Kind::Ident {
                continue;
            }
            if let Some(word) = APP_FORBIDDEN.iter().find(|w| in_family(&t.text, w)) {
                offenders.push(format!(
                    "{}:{}: names {} ({word} belongs elsewhere)",
                    rel(&file),
                    t.line,
                    t.text
                ));
            }
        }
    }
    check(
        "host/app names axum, hyper, sqlx or wasmtime (STYLE: the use cases know none of them).",
        offenders,
    );
}

// ---------------------------------------------------------------------------------------
// 4. The context keys the host uses are the ones the WIT documents.

/// The `portcullis.<key>` string literals in the code the host ships (the constants of
/// `portcullis_core::authz` and any key written out by hand), file names aside:
/// `(key, "file:line")`, every occurrence.
fn host_context_keys() -> Vec<(String, String)> {
    let mut keys = Vec::new();
    for (_, dir) in host_crates() {
        for file in rust_files(&dir.join("src")) {
            for t in lex(&read(&file)) {
                if t.kind == Kind::Str && is_context_key(&t.text) {
                    keys.push((t.text.clone(), format!("{}:{}", rel(&file), t.line)));
                }
            }
        }
    }
    keys
}

/// `portcullis.` followed by a lower-case word (letters, digits, `-`), not a file name.
fn is_context_key(s: &str) -> bool {
    let Some(word) = s.strip_prefix("portcullis.") else {
        return false;
    };
    word.starts_with(|c: char| c.is_ascii_lowercase())
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !NOT_CONTEXT_KEYS.contains(&s)
}

/// Every file under wit/, concatenated.
fn wit_text() -> String {
    let mut files = Vec::new();
    let mut stack = vec![root().join("wit")];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)
            .expect("reading wit/")
            .filter_map(|e| e.ok())
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files.iter().map(|f| read(f)).collect::<Vec<_>>().join("\n")
}

/// The `portcullis.<key>` names in `text` (a key ends where letters, digits and `-` end).
fn keys_in(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for (start, _) in text.match_indices("portcullis.") {
        let rest = &text[start + "portcullis.".len()..];
        let len = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(rest.len());
        let key = format!("portcullis.{}", rest[..len].trim_end_matches('-'));
        if is_context_key(&key) {
            keys.insert(key);
        }
    }
    keys
}

/// Plugins see the host's context keys (`portcullis.origin`, …) and the WIT is their only
/// contract: a key the host sets or reads that the WIT does not document is a key plugin
/// authors cannot know about (or a leftover the host should drop).
#[test]
fn context_keys_of_the_host_are_documented_in_the_wit() {
    let documented = keys_in(&wit_text());
    let offenders = host_context_keys()
        .into_iter()
        .filter(|(key, _)| !documented.contains(key))
        .map(|(key, at)| format!("{at}: context key {key} is not documented under wit/"))
        .collect();
    check(
        "The host uses a `portcullis.*` context key that no file under wit/ documents.",
        offenders,
    );
}

/// The other direction: a key the WIT documents but the host never names is documentation
/// of something that does not happen (the WIT once promised `portcullis.request-id`).
#[test]
fn the_wit_documents_only_context_keys_the_host_uses() {
    let used: BTreeSet<String> = host_context_keys().into_iter().map(|(k, _)| k).collect();
    let offenders = keys_in(&wit_text())
        .into_iter()
        .filter(|key| !used.contains(key))
        .map(|key| format!("wit/: documents context key {key}, which host/*/src never names"))
        .collect();
    check(
        "The WIT documents a `portcullis.*` context key the host does not use.",
        offenders,
    );
}

// ---------------------------------------------------------------------------------------
// 5. No circles between the modules of a crate.

/// Where a module refers to another: the first reference, for the message.
type Edges = BTreeMap<String, BTreeMap<String, String>>;

/// The top-level modules of a crate: each file `src/NAME.rs` and directory `src/NAME/`
/// except the crate roots (`lib.rs`, `main.rs`, `src/bin/`).
fn top_level_modules(src: &Path) -> BTreeSet<String> {
    fs::read_dir(src)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let path = e.path();
                    let name = path.file_name()?.to_string_lossy().into_owned();
                    if path.is_dir() {
                        (name != "bin").then_some(name)
                    } else {
                        let stem = name.strip_suffix(".rs")?;
                        (stem != "lib" && stem != "main").then(|| stem.to_string())
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The module path of a file under `src/`: `[]` for the crate root, `["routes"]` for
/// `routes/mod.rs`, `["routes", "users"]` for `routes/users.rs`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let mut parts: Vec<String> = file
        .strip_prefix(src)
        .unwrap_or(file)
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
        parts.clear();
    }
    parts
}

/// One leaf of a `use` tree: its full path, and the name it binds.
struct UseLeaf {
    path: Vec<String>,
    name: String,
}

/// The leaves of the `use` tree starting at `tokens[*i]` (after `use`), up to `;`.
fn use_leaves(tokens: &[Token], i: &mut usize, prefix: Vec<String>, out: &mut Vec<UseLeaf>) {
    let mut path = prefix;
    while let Some(t) = tokens.get(*i) {
        if t.is("::") {
            *i += 1;
        } else if t.is("{") {
            *i += 1;
            while let Some(t) = tokens.get(*i) {
                if t.is("}") {
                    *i += 1;
                    break;
                } else if t.is(",") {
                    *i += 1;
                } else {
                    use_leaves(tokens, i, path.clone(), out);
                }
            }
            return;
        } else if t.is("*") {
            *i += 1;
            path.push("*".into());
            out.push(UseLeaf {
                path,
                name: "*".into(),
            });
            return;
        } else if t.kind == Kind::Ident {
            path.push(t.text.clone());
            *i += 1;
            if tokens.get(*i).is_some_and(|n| n.is("::")) {
                continue;
            }
            if path.last().is_some_and(|p| p == "self") {
                path.pop();
            }
            let mut name = path.last().cloned().unwrap_or_default();
            if tokens.get(*i).is_some_and(|n| n.is("as")) {
                name = tokens
                    .get(*i + 1)
                    .map(|n| n.text.clone())
                    .unwrap_or_default();
                *i += 2;
            }
            out.push(UseLeaf { path, name });
            return;
        } else {
            return; // `;`, `,`, `}`: the caller's
        }
    }
}

/// What a crate's paths can name: its top-level modules, and the names the crate root
/// imports from them (`use state::AppState;` in lib.rs makes `crate::AppState` the `state`
/// module's). Items defined in the crate root itself belong to no module.
struct Names {
    modules: BTreeSet<String>,
    root_imports: BTreeMap<String, String>,
}

impl Names {
    /// The top-level module `name` (a path's first segment after `crate::`) stands for.
    fn crate_level(&self, name: &str) -> Option<String> {
        if self.modules.contains(name) {
            Some(name.to_string())
        } else {
            self.root_imports.get(name).cloned()
        }
    }

    /// The top-level module a path written in module `here` refers to, if it is one of
    /// this crate's (`crate::…`, `super::…`, `self::…`; at the crate root, `NAME::…` too).
    fn resolve(&self, here: &[String], path: &[String]) -> Option<String> {
        let first = path.first()?.as_str();
        match first {
            "crate" => self.crate_level(path.get(1)?),
            "super" | "self" => {
                let supers = path.iter().take_while(|s| *s == "super").count();
                let ups = if first == "self" { 0 } else { supers };
                let rest = if first == "self" { 1 } else { supers };
                let base = here.get(..here.len().checked_sub(ups)?)?;
                match base.first() {
                    Some(top) => Some(top.clone()),
                    None => self.crate_level(path.get(rest)?),
                }
            }
            _ if here.is_empty() => self.crate_level(first),
            _ => None,
        }
    }
}

/// The `use` statements of the crate root, as `crate::NAME` → module.
fn root_imports(src: &Path, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let names = Names {
        modules: modules.clone(),
        root_imports: BTreeMap::new(),
    };
    let mut imports = BTreeMap::new();
    for root_file in ["lib.rs", "main.rs"].map(|f| src.join(f)) {
        if !root_file.is_file() {
            continue;
        }
        let tokens = without_test_modules(&lex(&read(&root_file)));
        let mut depth = 0usize;
        for (k, t) in tokens.iter().enumerate() {
            if t.is("{") {
                depth += 1;
            } else if t.is("}") {
                depth = depth.saturating_sub(1);
            } else if t.is("use") && depth == 0 {
                let mut leaves = Vec::new();
                use_leaves(&tokens, &mut (k + 1), Vec::new(), &mut leaves);
                for leaf in leaves {
                    if let Some(module) = names.resolve(&[], &leaf.path) {
                        if leaf.name != "*" && leaf.name != module {
                            imports.insert(leaf.name, module);
                        }
                    }
                }
            }
        }
    }
    imports
}

/// The references from each top-level module of the crate in `src` to the others.
fn module_graph(src: &Path) -> Edges {
    let modules = top_level_modules(src);
    let names = Names {
        root_imports: root_imports(src, &modules),
        modules,
    };
    let mut edges: Edges = names
        .modules
        .iter()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for file in rust_files(src) {
        let file_path = module_path(src, &file);
        let Some(from) = file_path
            .first()
            .filter(|m| names.modules.contains(*m))
            .cloned()
        else {
            continue; // the crate root, or a file no module declares
        };
        let tokens = without_test_modules(&lex(&read(&file)));
        // Inline `mod name { … }` blocks deepen the path `super::` counts from.
        let mut here = file_path.clone();
        let mut inline: Vec<usize> = Vec::new(); // brace depth at each inline mod's `{`
        let mut depth = 0usize;
        let mut k = 0;
        while k < tokens.len() {
            let t = &tokens[k];
            let starts_path = (t.is("crate") || t.is("super") || t.is("self"))
                && tokens.get(k + 1).is_some_and(|n| n.is("::"))
                && !(k > 0 && (tokens[k - 1].is("$") || tokens[k - 1].is("::")));
            if t.is("mod") && tokens.get(k + 2).is_some_and(|n| n.is("{")) {
                here.push(tokens[k + 1].text.clone());
                inline.push(depth);
                depth += 1;
                k += 3;
            } else if t.is("{") {
                depth += 1;
                k += 1;
            } else if t.is("}") {
                depth = depth.saturating_sub(1);
                if inline.last() == Some(&depth) {
                    inline.pop();
                    here.pop();
                }
                k += 1;
            } else if t.is("use") {
                let mut leaves = Vec::new();
                k += 1;
                use_leaves(&tokens, &mut k, Vec::new(), &mut leaves);
                for leaf in leaves {
                    add_edge(&mut edges, &names, &here, &from, &leaf.path, &file, t.line);
                }
            } else if starts_path {
                // crate::a::b, super::x, self::y in an expression, type or attribute.
                let mut path = vec![t.text.clone()];
                k += 1;
                while tokens.get(k).is_some_and(|n| n.is("::"))
                    && tokens.get(k + 1).is_some_and(|n| n.kind == Kind::Ident)
                {
                    path.push(tokens[k + 1].text.clone());
                    k += 2;
                }
                add_edge(&mut edges, &names, &here, &from, &path, &file, t.line);
            } else {
                k += 1;
            }
        }
    }
    edges
}

/// Record that module `from` refers (at `file:line`, through `path`) to the module `path`
/// resolves to, unless that is `from` itself.
fn add_edge(
    edges: &mut Edges,
    names: &Names,
    here: &[String],
    from: &str,
    path: &[String],
    file: &Path,
    line: usize,
) {
    if let Some(to) = names.resolve(here, path) {
        if to != from {
            edges
                .get_mut(from)
                .expect("every module is a node")
                .entry(to)
                .or_insert_with(|| format!("{}:{line}: {}", rel(file), path.join("::")));
        }
    }
}

/// The strongly connected components of `edges` (Tarjan), each sorted.
fn strongly_connected(edges: &Edges) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        edges: &'a Edges,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        components: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            let edges = self.edges;
            for w in edges[v].keys() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    self.low.insert(v, self.low[v].min(self.low[w]));
                } else if self.on_stack.contains(w) {
                    self.low.insert(v, self.low[v].min(self.index[w]));
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                component.sort();
                self.components.push(component);
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.components.sort();
    t.components
}

/// A shortest cycle through `start` inside `component` (breadth-first), as
/// `start -> … -> start`.
fn cycle_through(edges: &Edges, component: &[String], start: &str) -> Vec<String> {
    let inside: BTreeSet<&str> = component.iter().map(String::as_str).collect();
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in edges[v]
            .keys()
            .map(String::as_str)
            .filter(|w| inside.contains(w))
        {
            if w == start {
                let mut path = vec![start.to_string(), v.to_string()];
                let mut at = v;
                while at != start {
                    at = came_from[at];
                    path.push(at.to_string());
                }
                path.reverse();
                return path;
            }
            if !came_from.contains_key(w) && w != start {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    vec![start.to_string()]
}

/// Modules of one crate form layers: a module may use the ones below it, never the ones
/// that use it. A circle (`authorizer` → `routes` → `state` → `authorizer`) means none of
/// its modules can be understood, tested or moved to another crate without the others —
/// splitting `host/server` into `app` and `server` is exactly such a move. References from
/// `#[cfg(test)] mod … { … }` blocks do not count.
#[test]
fn modules_of_a_crate_do_not_import_each_other_in_a_circle() {
    let mut offenders = Vec::new();
    for (krate, dir) in host_crates() {
        let edges = module_graph(&dir.join("src"));
        for component in strongly_connected(&edges)
            .into_iter()
            .filter(|c| c.len() > 1)
        {
            let cycle = cycle_through(&edges, &component, &component[0]);
            let mut message = format!(
                "host/{krate}: modules {} import each other; for example {}",
                component.join(", "),
                cycle.join(" -> ")
            );
            for from in &component {
                for (to, at) in &edges[from] {
                    if component.contains(to) {
                        message.push_str(&format!("\n      {from} -> {to}  ({at})"));
                    }
                }
            }
            offenders.push(message);
        }
    }
    check(
        "Modules of a host crate import each other in a circle (cut one arrow of each).",
        offenders,
    );
}

// ---------------------------------------------------------------------------------------
// The checkers checked: small inputs with known answers.

#[test]
fn tidy_lexer_drops_comments_and_keeps_strings() {
    let src = "// sqlx::x\n/* crate::a /* nested */ */ let s = r#\"crate::b\"#; 'a'; '\\n'; fn f<'a>() { crate::c::d(\"portcullis.x\") }";
    let tokens = lex(src);
    let idents: Vec<&str> = tokens
        .iter()
        .filter(|t| t.kind == Kind::Ident)
        .map(|t| t.text.as_str())
        .collect();
    assert_eq!(idents, ["let", "s", "fn", "f", "a", "crate", "c", "d"]);
    let strings: Vec<&str> = tokens
        .iter()
        .filter(|t| t.kind == Kind::Str)
        .map(|t| t.text.as_str())
        .collect();
    assert_eq!(strings, ["crate::b", "portcullis.x"]);
    assert_eq!(tokens.last().unwrap().line, 2);
}

#[test]
fn tidy_use_trees_resolve_to_top_level_modules() {
    let names = Names {
        modules: ["a", "b", "routes", "state"].map(String::from).into(),
        root_imports: [("AppState".to_string(), "state".to_string())].into(),
    };
    let tokens = lex("crate::{a::{X, Y as Z}, b, AppState, routes::self};");
    let mut leaves = Vec::new();
    use_leaves(&tokens, &mut 0, Vec::new(), &mut leaves);
    let here = ["routes".to_string(), "users".to_string()];
    let resolved: Vec<Option<String>> = leaves
        .iter()
        .map(|l| names.resolve(&here, &l.path))
        .collect();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        resolved,
        [
            some("a"),
            some("a"),
            some("b"),
            some("state"),
            some("routes")
        ]
    );
    assert_eq!(leaves[1].name, "Z");
    let path = |p: &str| p.split("::").map(String::from).collect::<Vec<_>>();
    assert_eq!(
        names.resolve(&here, &path("super::openapi")),
        some("routes")
    );
    assert_eq!(names.resolve(&here, &path("super::super::a::f")), some("a"));
    assert_eq!(
        names.resolve(&["a".into()], &path("super::b::f")),
        some("b")
    );
    assert_eq!(names.resolve(&["a".into()], &path("std::fmt")), None);
}

#[test]
fn tidy_cargo_toml_reader_finds_dependencies() {
    let toml = "[package]\nname = \"x\"\n\n[dependencies]\nsqlx.workspace = true\ndb = { package = \"hyper\", features = [\n  \"a = b\",\n] }\n\n[dev-dependencies]\naxum = \"1\"\n\n[target.'cfg(unix)'.dependencies.wasmtime]\nversion = \"1\"\n";
    let deps: Vec<(String, usize, bool)> = dependencies(toml)
        .into_iter()
        .map(|d| (d.name, d.line, d.dev))
        .collect();
    let want = [
        ("sqlx", 5, false),
        ("hyper", 6, false),
        ("axum", 11, true),
        ("wasmtime", 13, false),
    ];
    assert_eq!(deps, want.map(|(n, l, d)| (n.to_string(), l, d)));
}

#[test]
fn tidy_finds_every_circle() {
    let mut edges = Edges::new();
    for (from, to) in [
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
        ("c", "d"),
        ("d", "e"),
        ("e", "d"),
    ] {
        edges
            .entry(from.into())
            .or_default()
            .insert(to.into(), String::new());
        edges.entry(to.into()).or_default();
    }
    let big: Vec<Vec<String>> = strongly_connected(&edges)
        .into_iter()
        .filter(|c| c.len() > 1)
        .collect();
    assert_eq!(big, [vec!["a", "b", "c"], vec!["d", "e"]]);
    assert_eq!(cycle_through(&edges, &big[0], "a"), ["a", "b", "c", "a"]);
}

/// Schema attributes take string literals only, so the API types repeat the domain's
/// patterns (`portcullis_core::names::patterns`) as literals: each one must be one of them
/// (or a pattern of a closed list of words), or the document would describe a rule the
/// validators do not apply.
#[test]
fn every_schema_pattern_is_one_the_domain_states() {
    let mut offenders = Vec::new();
    for file in rust_files(&root().join("host/server/src/api")) {
        let tokens = lex(&read(&file));
        for w in tokens.windows(3) {
            if w[0].kind == Kind::Ident
                && w[0].text == "pattern"
                && w[1].is("=")
                && w[2].kind == Kind::Str
            {
                let text = &w[2].text;
                let words = text.starts_with("^(")
                    && text.ends_with(")$")
                    && text[2..text.len() - 2].split('|').all(|w| {
                        !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    });
                if !portcullis_core::names::patterns::ALL.contains(&text.as_str()) && !words {
                    offenders.push(format!("{}:{}: {text}", rel(&file), w[2].line));
                }
            }
        }
    }
    check(
        "A schema pattern in host/server/src/api is not one of portcullis_core::names::patterns",
        offenders,
    );
}

/// The packaging keeps its promises (issue "the operator's day"): the image runs as a
/// non-root user with its data in a volume and a health check on `/ready`; the systemd unit
/// runs without privileges in a read-only system. (`scripts/lint-packaging.sh` runs
/// `systemd-analyze verify` on the unit in CI.)
#[test]
fn the_image_and_the_unit_run_unprivileged() {
    let dockerfile = fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let mut problems = Vec::new();
    let last_user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("USER "))
        .map(str::trim);
    if matches!(last_user, None | Some("root") | Some("0")) {
        problems.push(format!(
            "Dockerfile: the final USER is {last_user:?}, not an unprivileged user"
        ));
    }
    for needed in ["VOLUME", "HEALTHCHECK", "/ready", "EXPOSE 8700"] {
        if !dockerfile.contains(needed) {
            problems.push(format!("Dockerfile: no {needed}"));
        }
    }
    let unit = fs::read_to_string(root().join("examples/portcullis.service")).expect("unit");
    for needed in [
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "StateDirectoryMode=0700",
        "CapabilityBoundingSet=\n",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        if !unit.contains(needed) {
            problems.push(format!("examples/portcullis.service: no {}", needed.trim()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
