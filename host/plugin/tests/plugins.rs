//! The plugin runtime against real components built by build.rs.

use portcullis_core::authz::{Principal, Request, Target};
use portcullis_core::AccountType;
use portcullis_plugin::check::{self, CaseFile};
use portcullis_plugin::{programs::paths, Limits, LoadError};
use std::time::Duration;

#[path = "common/plain.rs"]
mod plain;

#[path = "common/runtime.rs"]
mod shared;
use shared::{repo, runtime};

fn bytes(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn request(action: &str) -> Request {
    Request {
        principal: std::sync::Arc::new(Principal {
            username: "jane".into(),
            account: "acme".into(),
            account_type: AccountType::User,
            roles: vec![],
            attributes: vec![],
            email: None,
        }),
        action: action.into(),
        target: Target::new("user", "jane", Some("acme")),
        context: vec![("portcullis.origin".into(), "management".into())],
    }
}

/// Limits whose deadline no well-behaved call reaches, however busy the machine: only the
/// test of the deadline itself uses a short one, so each test meets the limit it is about.
fn patient() -> Limits {
    Limits {
        timeout: Duration::from_secs(30),
        ..Limits::default()
    }
}

async fn hostile(mode: &str, limits: Limits) -> Result<portcullis_plugin::Plugin, LoadError> {
    runtime()
        .load(
            "hostile",
            &bytes(paths::HOSTILE),
            &format!("{{\"mode\":\"{mode}\"}}"),
            limits,
        )
        .await
}

/// Every plugin crate in `plugins/` and `examples/` has a case table that it passes.
#[tokio::test]
async fn every_plugin_passes_its_case_table() {
    let built = [
        ("native", paths::NATIVE),
        ("cedar", paths::CEDAR),
        ("rego", paths::REGO),
        ("rbac", paths::RBAC),
        ("hostile", paths::HOSTILE),
        ("plugin-tutorial", paths::TUTORIAL),
        ("records", paths::RECORDS),
        ("authzen-todo", paths::TODO),
    ];
    let mut checked = 0;
    for parent in ["plugins", "examples"] {
        for entry in std::fs::read_dir(repo().join(parent)).unwrap() {
            let dir = entry.unwrap().path();
            let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
                continue;
            };
            if !manifest.contains("cdylib") {
                continue;
            }
            let name = dir.file_name().unwrap().to_string_lossy().to_string();
            let cases_path = dir.join("cases.json");
            assert!(
                cases_path.exists(),
                "plugin {name} has no case table ({})",
                cases_path.display()
            );
            let wasm = built
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap_or_else(|| panic!("plugin {name} is not built by host/plugin/build.rs"))
                .1;
            let file: CaseFile =
                serde_json::from_str(&std::fs::read_to_string(&cases_path).unwrap()).unwrap();
            assert!(!file.cases.is_empty(), "{name}: empty case table");
            let settings = file
                .settings
                .clone()
                .unwrap_or(serde_json::json!({}))
                .to_string();
            let plugin = runtime()
                .load(&name, &bytes(wasm), &settings, patient())
                .await
                .unwrap();
            let failures: Vec<String> = check::run(&plugin, &file.cases)
                .await
                .into_iter()
                .filter(|o| !o.passed)
                .map(|o| {
                    format!(
                        "{}: {} (reasons: {:?})",
                        o.name,
                        o.problem.unwrap(),
                        o.decision.reasons
                    )
                })
                .collect();
            assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
            checked += 1;
        }
    }
    assert_eq!(checked, built.len());
}

/// Every built-in plugin implements the world version `BUILTINS` says it does.
#[tokio::test]
async fn every_builtin_implements_its_listed_world() {
    for (id, bytes, world) in portcullis_plugin::BUILTINS {
        // The policy languages need a policy; the native rules take no settings.
        let settings = match *id {
            "builtin:cedar" => r#"{"policies": "permit(principal, action, resource);"}"#,
            "builtin:rego" => r#"{"modules": {"p.rego": "package portcullis\nallow := true"}}"#,
            _ => "{}",
        };
        assert!(
            portcullis_plugin::programs::BUILTIN_DIGESTS
                .contains(&portcullis_plugin::digest(bytes()).as_str()),
            "{id}: its digest is not among those build.rs computed"
        );
        let plugin = runtime()
            .load(id, bytes(), settings, patient())
            .await
            .unwrap();
        assert_eq!(plugin.world_version(), *world, "{id}");
    }
}

/// The plain-Rust rules (the benchmark peer) decide every native case exactly as the
/// WebAssembly plugin does.
#[tokio::test]
async fn native_plugin_and_plain_rules_agree() {
    let file: CaseFile = serde_json::from_str(
        &std::fs::read_to_string(repo().join("plugins/native/cases.json")).unwrap(),
    )
    .unwrap();
    let plugin = runtime()
        .load(
            "builtin:native",
            portcullis_plugin::builtin("native").unwrap(),
            "{}",
            patient(),
        )
        .await
        .unwrap();
    for case in &file.cases {
        let r = case.request();
        let wasm = plugin.decide(&r).await;
        let plain = plain::plain(&r);
        assert_eq!(
            (wasm.allowed, &wasm.reasons[0]),
            (plain.allowed, &plain.reason),
            "{}",
            case.name
        );
    }
}

#[tokio::test]
async fn an_infinite_loop_is_a_timeout_deny() {
    let p = hostile(
        "loop",
        Limits {
            timeout: Duration::from_millis(20),
            ..patient()
        },
    )
    .await
    .unwrap();
    let d = p.decide(&request("users.read")).await;
    assert!(!d.allowed);
    assert!(
        d.reasons[0].starts_with("plugin_timeout"),
        "{:?}",
        d.reasons
    );
    // And again: a fresh instance, the same answer; nothing is wedged.
    assert!(p.decide(&request("users.read")).await.reasons[0].starts_with("plugin_timeout"));
}

#[tokio::test]
async fn unbounded_allocation_is_a_memory_limit_deny() {
    let p = hostile(
        "alloc",
        Limits {
            memory_bytes: 16 * 1024 * 1024,
            ..patient()
        },
    )
    .await
    .unwrap();
    let d = p.decide(&request("users.read")).await;
    assert!(!d.allowed);
    assert!(
        d.reasons[0].starts_with("plugin_memory_limit"),
        "{:?}",
        d.reasons
    );
}

#[tokio::test]
async fn step_by_step_allocation_is_a_memory_limit_deny() {
    let p = hostile(
        "alloc-steps",
        Limits {
            memory_bytes: 16 * 1024 * 1024,
            ..patient()
        },
    )
    .await
    .unwrap();
    let d = p.decide(&request("users.read")).await;
    assert!(!d.allowed);
    assert!(
        d.reasons[0].starts_with("plugin_memory_limit"),
        "{:?}",
        d.reasons
    );
}

#[tokio::test]
async fn a_trap_is_a_trap_deny() {
    let p = hostile("trap", patient()).await.unwrap();
    let d = p.decide(&request("users.read")).await;
    assert!(!d.allowed);
    assert!(d.reasons[0].starts_with("plugin_trap"), "{:?}", d.reasons);
}

#[tokio::test]
async fn a_stack_overflow_is_a_deny() {
    let p = hostile("stack", patient()).await.unwrap();
    let d = p.decide(&request("users.read")).await;
    assert!(!d.allowed);
    assert!(
        d.reasons[0].starts_with("plugin_stack_overflow")
            || d.reasons[0].starts_with("plugin_trap"),
        "{:?}",
        d.reasons
    );
}

#[tokio::test]
async fn a_malformed_answer_is_a_deny() {
    let p = hostile("garbage", patient()).await.unwrap();
    let d = p.decide(&request("users.read")).await;
    assert!(!d.allowed);
    assert!(
        d.reasons[0].starts_with("plugin_malformed"),
        "{:?}",
        d.reasons
    );
}

#[tokio::test]
async fn a_log_flood_is_cut_short_and_answers() {
    let p = hostile(
        "log-flood",
        Limits {
            timeout: Duration::from_secs(5),
            ..patient()
        },
    )
    .await
    .unwrap();
    assert!(p.decide(&request("users.read")).await.allowed);
}

#[tokio::test]
async fn a_failing_configure_refuses_the_plugin() {
    match hostile("fail-configure", patient()).await {
        Err(LoadError::Configure(m)) => assert!(m.contains("refuses every configuration"), "{m}"),
        other => panic!("{other:?}"),
    }
    match runtime()
        .load(
            "native",
            portcullis_plugin::builtin("native").unwrap(),
            "{\"x\":1}",
            patient(),
        )
        .await
    {
        Err(LoadError::Configure(m)) => assert!(m.contains("takes no settings"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn components_that_are_not_authorizers_are_refused() {
    match runtime().compile(b"definitely not wasm") {
        Err(LoadError::NotAComponent(_)) => {}
        other => panic!("{:?}", other.map(|c| c.digest.clone())),
    }
    // A core module is not a component.
    let module = wat::parse_str("(module)").unwrap();
    assert!(matches!(
        runtime().compile(&module),
        Err(LoadError::NotAComponent(_))
    ));
    // A component that exports nothing does not implement the world.
    let empty = wat::parse_str("(component)").unwrap();
    match runtime().compile(&empty) {
        Err(LoadError::WrongWorld(m)) => {
            assert!(m.contains("configure") || m.contains("authorize"), "{m}")
        }
        other => panic!("{:?}", other.map(|c| c.digest.clone())),
    }
    // A component that wants a clock (or a filesystem, or sockets) gets none, and is told
    // how each toolchain is asked not to import it.
    let clock = wat::parse_str(r#"(component (import "wasi:clocks/monotonic-clock@0.2.6" (instance (export "now" (func (result u64))))))"#).unwrap();
    match runtime().compile(&clock) {
        Err(LoadError::WrongWorld(m)) => {
            assert!(m.contains("wasi:clocks/monotonic-clock"), "{m}");
            assert!(m.contains("--stub-wasi") && m.contains("-d stdio"), "{m}");
        }
        other => panic!("{:?}", other.map(|c| c.digest.clone())),
    }
}

#[tokio::test]
async fn source_files_and_webassembly_text_are_refused_with_what_to_upload() {
    // WebAssembly text is not read as a component (it once was: a Rust source file got
    // "expected `(`" from the WAT parser).
    match runtime().compile(b"(component)") {
        Err(LoadError::NotAComponent(m)) => {
            assert!(m.contains("WebAssembly text (WAT)"), "{m}");
            assert!(m.contains("wasm-tools parse"), "{m}");
        }
        other => panic!("{:?}", other.map(|c| c.digest.clone())),
    }
    for source in [
        &b"wit_bindgen::generate!({ world: \"authorizer\" });\nfn main() {}\n"[..],
        b"export function authorize(request) { return { allowed: false }; }\n",
        b"class Authorizer:\n    def authorize(self, request):\n        pass\n",
    ] {
        match runtime().compile(source) {
            Err(LoadError::NotAComponent(m)) => {
                assert!(m.contains("text file (source code?)"), "{m}");
                assert!(
                    m.contains("wasm32-wasip2") && m.contains("plugin.wasm"),
                    "{m}"
                );
                assert!(!m.contains("expected `(`"), "{m}");
            }
            other => panic!("{:?}", other.map(|c| c.digest.clone())),
        }
    }
    match runtime().compile(&[0xff, 0xfe, 0x00, 0x01, 0x80, 0x81]) {
        Err(LoadError::NotAComponent(m)) => assert!(m.contains("first bytes are not"), "{m}"),
        other => panic!("{:?}", other.map(|c| c.digest.clone())),
    }
}

#[tokio::test]
async fn warm_instances_are_reused_and_recycled() {
    let p = hostile("ttl", patient()).await.unwrap();
    // One instance, configured once, answers calls 1, 2, 3.
    for n in 1..=3 {
        let d = p.decide(&request("users.read")).await;
        assert_eq!(d.reasons, vec![format!("call {n} events 0")]);
        assert_eq!(d.ttl_ms, 60_000);
    }
    // With one call per instance, every call sees a fresh instance.
    let p = hostile(
        "ttl",
        Limits {
            max_calls_per_instance: 1,
            ..patient()
        },
    )
    .await
    .unwrap();
    for _ in 0..3 {
        assert_eq!(
            p.decide(&request("users.read")).await.reasons,
            vec!["call 1 events 0".to_string()]
        );
    }
}

#[tokio::test]
async fn compiled_once_per_digest() {
    let a = runtime()
        .compile(portcullis_plugin::builtin("native").unwrap())
        .unwrap();
    let b = runtime()
        .compile(portcullis_plugin::builtin("native").unwrap())
        .unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert_eq!(a.digest.len(), 64);
}

#[tokio::test]
async fn lifecycle_events_reach_a_warm_instance() {
    use portcullis_core::authz::Event;
    let p = hostile("ttl", patient()).await.unwrap();
    p.notify(&Event::AccountCreated("acme".into())).await;
    p.notify(&Event::UserDeleted("jane".into())).await;
    // A refused event is logged, not fatal.
    p.notify(&Event::AccountCreated("refused".into())).await;
    let d = p.decide(&request("users.read")).await;
    assert_eq!(d.reasons, vec!["call 1 events 3".to_string()]);
}

/// Text a plugin controls reaches reasons, logs and terminals only escaped and bounded.
#[tokio::test]
async fn plugin_text_with_terminal_escapes_is_escaped_in_reasons() {
    let p = hostile("escape-reasons", patient()).await.unwrap();
    let d = p.decide(&request("users.read")).await;
    assert!(!d.allowed);
    for r in &d.reasons {
        assert!(!r.chars().any(|c| c.is_control()), "{r:?}");
    }
    assert!(d.reasons[0].contains("\\u{1b}[2J"), "{:?}", d.reasons);
}

#[tokio::test]
async fn a_huge_configure_error_is_cut_and_escaped() {
    match hostile("fail-configure-huge", patient()).await {
        Err(LoadError::Configure(m)) => {
            assert!(m.len() < 4 * 1024, "{} bytes", m.len());
            assert!(!m.chars().any(|c| c.is_control()), "{:?}", &m[..200]);
            assert!(m.contains("more bytes]"), "{}", &m[m.len() - 100..]);
        }
        other => panic!("{:?}", other.map(|p| p.name().to_string())),
    }
}

#[tokio::test]
async fn exit_from_a_plugin_is_a_bounded_deny_without_a_backtrace() {
    let p = hostile("exit", patient()).await.unwrap();
    let d = p.decide(&request("users.read")).await;
    assert!(!d.allowed);
    // WASI 0.2's exit carries only success or failure: exit(3) arrives as exit(1).
    assert_eq!(
        d.reasons,
        vec!["plugin_exit: the plugin called exit(1)".to_string()]
    );
}

/// A component whose one function declares 40 000 locals compiled for half a minute with
/// gigabytes of memory; it is refused from its headers before any compiling.
#[tokio::test]
async fn a_compile_bomb_is_refused_before_compiling() {
    let locals = "(local i64)".repeat(40_000);
    let bomb = wat::parse_str(format!(
        "(component (core module (func {locals} (drop (i64.const 0)))))"
    ))
    .unwrap();
    match runtime().compile(&bomb) {
        Err(LoadError::TooBig(m)) => assert!(m.contains("40000 locals"), "{m}"),
        other => panic!("{:?}", other.map(|c| c.digest.clone())),
    }
    // Refused again from memory, with the same reason.
    assert!(matches!(
        runtime().compile(&bomb),
        Err(LoadError::TooBig(_))
    ));
}

#[tokio::test]
async fn a_core_module_is_refused_with_the_target_to_build_for() {
    let module = wat::parse_str("(module (func))").unwrap();
    match runtime().compile(&module) {
        Err(LoadError::NotAComponent(m)) => assert!(m.contains("wasm32-wasip2"), "{m}"),
        other => panic!("{:?}", other.map(|c| c.digest.clone())),
    }
}
