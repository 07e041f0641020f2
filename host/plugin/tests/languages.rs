//! The policy-language plugins, `builtin:cedar` and `builtin:rego` (SPEC §12), in the
//! runtime: the request mapping, refused settings with the engine's own words, hostile
//! policies contained like hostile plugins, the Rego conformance table, and compiled code
//! kept between runs.

use portcullis_core::authz::{Decision, Entity, Principal, Query};
use portcullis_core::AccountType;
use portcullis_plugin::{Limits, LoadError, Plugin, Runtime};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

#[path = "common/runtime.rs"]
mod shared;
use shared::{repo, runtime};

/// Limits whose deadline no well-behaved call reaches, however busy the machine.
fn patient() -> Limits {
    Limits {
        timeout: Duration::from_secs(30),
        configure_timeout: Duration::from_secs(30),
        ..Limits::default()
    }
}

async fn load(engine: &str, settings: Value, limits: Limits) -> Result<Plugin, LoadError> {
    let id = format!("builtin:{engine}");
    runtime()
        .load(
            &id,
            portcullis_plugin::builtin(engine).unwrap(),
            &settings.to_string(),
            limits,
        )
        .await
}

fn user(username: &str, roles: &[&str]) -> Principal {
    Principal {
        username: username.into(),
        account: "acme".into(),
        account_type: AccountType::User,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        attributes: vec![("department".into(), "sales".into())],
        email: Some(format!("{username}@acme.example")),
    }
}

fn entity(kind: &str, id: &str, properties: Value) -> Entity {
    Entity {
        kind: kind.into(),
        id: id.into(),
        properties: properties.to_string(),
    }
}

/// An application policy's question (`principal` for a `user` subject).
fn query(
    subject: Entity,
    principal: Option<Principal>,
    action: &str,
    resource: Entity,
    context: Value,
) -> Query {
    Query {
        subject,
        principal: principal.map(std::sync::Arc::new),
        action: action.into(),
        action_properties: "{}".into(),
        resource,
        context: context.to_string(),
        policy: "p".into(),
        decision_id: "d-1".into(),
    }
}

/// A Rego `input` (the AuthZEN-shaped request) as the question that produces it.
fn query_from_input(input: &Value) -> Query {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let e = |v: &Value| Entity {
        kind: text(&v["type"]),
        id: text(&v["id"]),
        properties: v
            .get("properties")
            .cloned()
            .unwrap_or(json!({}))
            .to_string(),
    };
    let principal = input.get("principal").map(|p| Principal {
        username: text(&p["username"]),
        account: text(&p["account"]),
        account_type: serde_json::from_value(p["account_type"].clone()).unwrap(),
        roles: p["roles"]
            .as_array()
            .map(|r| r.iter().map(text).collect())
            .unwrap_or_default(),
        attributes: p["attributes"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
            .unwrap_or_default(),
        email: p.get("email").map(text),
    });
    Query {
        subject: e(&input["subject"]),
        principal: principal.map(std::sync::Arc::new),
        action: text(&input["action"]["name"]),
        action_properties: input["action"]
            .get("properties")
            .cloned()
            .unwrap_or(json!({}))
            .to_string(),
        resource: e(&input["resource"]),
        context: input
            .get("context")
            .cloned()
            .unwrap_or(json!({}))
            .to_string(),
        policy: "conformance".into(),
        decision_id: "d-1".into(),
    }
}

fn explain(d: &Decision) -> String {
    format!("allowed={} reasons={:?}", d.allowed, d.reasons)
}

#[tokio::test]
async fn cedar_sees_a_portcullis_user_with_roles_account_and_attributes() {
    let policies = r#"
        @id("readers read")
        permit(principal in Portcullis::Role::"reader", action == Action::"read", resource is Doc)
        when { resource.owner_account == principal.account && principal.attributes.department == "sales" };
        @id("own account")
        permit(principal in Portcullis::Account::"acme", action == Action::"list", resource);
        @id("no secrets")
        forbid(principal, action, resource) when { resource has secret && resource.secret };
    "#;
    let p = load(
        "cedar",
        json!({"policies": policies, "ttl_ms": 250}),
        patient(),
    )
    .await
    .unwrap();
    let ask = |roles: &[&str], action: &str, props: Value| {
        query(
            Entity::new("user", "rita"),
            Some(user("rita", roles)),
            action,
            entity("Doc", "1", props),
            json!({}),
        )
    };
    let d = p
        .evaluate(&ask(&["reader"], "read", json!({"owner_account": "acme"})))
        .await;
    assert!(d.allowed, "{}", explain(&d));
    assert_eq!(d.reasons, vec!["readers read"]);
    assert_eq!(d.ttl_ms, 250, "ttl_ms comes from the settings");
    let d = p
        .evaluate(&ask(&[], "read", json!({"owner_account": "acme"})))
        .await;
    assert!(!d.allowed, "{}", explain(&d));
    assert_eq!(d.reasons, vec!["no Cedar policy permits the request"]);
    let d = p
        .evaluate(&ask(&["reader"], "read", json!({"owner_account": "beta"})))
        .await;
    assert!(!d.allowed, "{}", explain(&d));
    let d = p.evaluate(&ask(&[], "list", json!({}))).await;
    assert!(d.allowed, "{}", explain(&d));
    let d = p
        .evaluate(&ask(
            &["reader"],
            "read",
            json!({"owner_account": "acme", "secret": true}),
        ))
        .await;
    assert!(!d.allowed, "{}", explain(&d));
    assert_eq!(d.reasons, vec!["no secrets"]);
    // An evaluation error is a reason too (the attribute is missing).
    let d = p
        .evaluate(&ask(&["reader"], "read", json!({"secret": false})))
        .await;
    assert!(!d.allowed);
    assert!(
        d.reasons
            .iter()
            .any(|r| r.starts_with("evaluation error:") && r.contains("owner_account")),
        "{}",
        explain(&d)
    );
}

#[tokio::test]
async fn cedar_reads_json_escapes_in_context_and_properties_and_listed_entities_win() {
    let policies = r#"
        permit(principal, action, resource)
        when { context.from == Team::"red" && resource.addr.isInRange(ip("10.0.0.0/8"))
               && context.at > datetime("2026-01-01") && resource.level.greaterThan(decimal("1.5")) };
    "#;
    let entities = json!([{"uid": {"type": "Doc", "id": "listed"}, "attrs": {
        "addr": {"__extn": {"fn": "ip", "arg": "192.168.0.1"}}, "level": {"__extn": {"fn": "decimal", "arg": "9.0"}}}, "parents": []}]);
    let p = load(
        "cedar",
        json!({"policies": policies, "entities": entities}),
        patient(),
    )
    .await
    .unwrap();
    // Without a schema, extension values need the explicit `__extn` escape (the short
    // `{"fn", "arg"}` form is typed by a schema: the streaming_service use case of
    // cedar-examples has it, tests/api/cedar.rs).
    let context = json!({"from": {"__entity": {"type": "Team", "id": "red"}}, "at": {"__extn": {"fn": "datetime", "arg": "2026-06-01"}}});
    let props = json!({"addr": {"__extn": {"fn": "ip", "arg": "10.1.2.3"}}, "level": {"__extn": {"fn": "decimal", "arg": "2.0"}}});
    let d = p
        .evaluate(&query(
            Entity::new("Bot", "b"),
            None,
            "get",
            entity("Doc", "new", props.clone()),
            context.clone(),
        ))
        .await;
    assert!(d.allowed, "{}", explain(&d));
    // The listed entity's attributes win over the request's properties.
    let d = p
        .evaluate(&query(
            Entity::new("Bot", "b"),
            None,
            "get",
            entity("Doc", "listed", props),
            context,
        ))
        .await;
    assert!(!d.allowed, "{}", explain(&d));
}

#[tokio::test]
async fn cedar_refuses_bad_settings_with_cedars_own_words() {
    for (settings, words) in [
        (
            json!({"policies": "permit(principal, action, resource"}),
            "policies:",
        ),
        (
            json!({"policies": "permit(principal, action, resource);", "schema": "entity User; action view appliesTo { principal: [Usr], resource: [User] };"}),
            "schema:",
        ),
        (
            json!({"policies": "permit(principal == Usr::\"a\", action, resource);", "schema": "entity User; action view appliesTo { principal: [User], resource: [User] };"}),
            "do not validate",
        ),
        (
            json!({"policies": "permit(principal == ?principal, action, resource);", "template_links": [{"template_id": "policy0", "link_id": "l", "args": {"?resource": "User::\"a\""}}]}),
            "template_links[0]",
        ),
        (
            json!({"policies": "", "entities": [{"uid": {"type": "User"}, "attrs": {}, "parents": []}]}),
            "entities:",
        ),
        (json!({"policy": ""}), "builtin:cedar settings"),
    ] {
        match load("cedar", settings.clone(), patient()).await {
            Err(LoadError::Configure(m)) => assert!(m.contains(words), "{settings}: {m}"),
            Err(e) => panic!("{settings}: {e}"),
            Ok(_) => panic!("{settings} was accepted"),
        }
    }
}

#[tokio::test]
async fn rego_sees_the_authzen_shaped_input_and_gives_its_reasons() {
    let module = r#"
package portcullis

default allow := false

allow if {
    "reader" in input.principal.roles
    input.action.name == "read"
    input.resource.properties.owner == input.principal.account
    input.context.level >= 2
}

reasons contains "not a reader" if not "reader" in input.principal.roles
reasons contains sprintf("%s may read", [input.subject.id]) if allow
"#;
    let p = load(
        "rego",
        json!({"modules": {"authz.rego": module}, "ttl_ms": 100}),
        patient(),
    )
    .await
    .unwrap();
    let ask = |roles: &[&str], level: i64| {
        query(
            Entity::new("user", "rita"),
            Some(user("rita", roles)),
            "read",
            entity("doc", "1", json!({"owner": "acme"})),
            json!({"level": level}),
        )
    };
    let d = p.evaluate(&ask(&["reader"], 3)).await;
    assert!(d.allowed, "{}", explain(&d));
    assert_eq!(d.reasons, vec!["rita may read"]);
    assert_eq!(d.ttl_ms, 100);
    let d = p.evaluate(&ask(&[], 3)).await;
    assert!(!d.allowed);
    assert_eq!(d.reasons, vec!["not a reader"]);
    // JSON types survive: a level of 1 is below 2.
    let d = p.evaluate(&ask(&["reader"], 1)).await;
    assert!(!d.allowed, "{}", explain(&d));
}

#[tokio::test]
async fn rego_undefined_or_not_true_is_a_deny() {
    for (module, why) in [
        (
            "package portcullis\nallow if input.action.name == \"never\"",
            "is undefined",
        ),
        ("package portcullis\nallow := \"yes\"", "is \"yes\""),
    ] {
        let p = load("rego", json!({"modules": {"p.rego": module}}), patient())
            .await
            .unwrap();
        let d = p
            .evaluate(&query(
                Entity::new("svc", "a"),
                None,
                "read",
                Entity::new("doc", "1"),
                json!({}),
            ))
            .await;
        assert!(!d.allowed, "{module}");
        assert!(
            d.reasons.iter().any(|r| r.contains(why)),
            "{module}: {}",
            explain(&d)
        );
    }
}

#[tokio::test]
async fn rego_reads_the_time_of_the_call() {
    // `time.now_ns()` is the time the call began (the sandbox's clocks stand still during
    // a call); a policy may compare it with a date.
    let module = "package portcullis\nallow if time.now_ns() > time.parse_rfc3339_ns(\"2020-01-01T00:00:00Z\")";
    let p = load("rego", json!({"modules": {"p.rego": module}}), patient())
        .await
        .unwrap();
    let d = p
        .evaluate(&query(
            Entity::new("svc", "a"),
            None,
            "read",
            Entity::new("doc", "1"),
            json!({}),
        ))
        .await;
    assert!(d.allowed, "{}", explain(&d));
}

#[tokio::test]
async fn rego_refuses_a_parse_error_naming_the_file_and_line() {
    let bad = "package portcullis\n\nallow if {{ input.x = \n";
    match load(
        "rego",
        json!({"modules": {"good.rego": "package portcullis\nx := 1", "bad.rego": bad}}),
        patient(),
    )
    .await
    {
        Err(LoadError::Configure(m)) => {
            assert!(m.contains("bad.rego"), "{m}");
            assert!(m.contains(":3:"), "the line: {m}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a parse error was accepted"),
    }
    for (settings, words) in [
        (json!({"modules": {}}), "at least one"),
        (
            json!({"modules": {"p.rego": "package p\nx := 1"}, "data": [1]}),
            "data:",
        ),
        (json!({"module": {}}), "builtin:rego settings"),
    ] {
        match load("rego", settings.clone(), patient()).await {
            Err(LoadError::Configure(m)) => assert!(m.contains(words), "{settings}: {m}"),
            Err(e) => panic!("{settings}: {e}"),
            Ok(_) => panic!("{settings} was accepted"),
        }
    }
}

/// Hostile policies are contained like hostile plugins: refused (or denied) with a reason
/// that names the limit, and the runtime keeps deciding for everyone else.
#[tokio::test]
async fn hostile_policies_are_refused_with_a_reason_and_the_runtime_keeps_deciding() {
    let limits = Limits {
        timeout: Duration::from_secs(30),
        configure_timeout: Duration::from_secs(30),
        memory_bytes: 64 * 1024 * 1024,
        ..Limits::default()
    };
    // 100 000 Cedar policies: more than 64 MiB to hold, refused at configure.
    let many: String = (0..100_000)
        .map(|i| format!("permit(principal == User::\"u{i}\", action == Action::\"a{i}\", resource == Doc::\"d{i}\") when {{ context.n == {i} }};\n"))
        .collect();
    match load("cedar", json!({"policies": many}), limits).await {
        Err(LoadError::Configure(m)) => assert!(m.contains("plugin_memory_limit"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("100 000 policies in 64 MiB were accepted"),
    }
    // Huge `data`: refused the same way.
    let data: serde_json::Map<String, Value> = (0..200_000)
        .map(|i| {
            (
                format!("key-{i}"),
                json!({"owner": format!("user-{i}"), "tags": ["a", "b", "c"]}),
            )
        })
        .collect();
    match load(
        "rego",
        json!({"modules": {"p.rego": "package portcullis\nallow := true"}, "data": data}),
        limits,
    )
    .await
    {
        Err(LoadError::Configure(m)) => assert!(m.contains("plugin_memory_limit"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("huge data in 64 MiB was accepted"),
    }
    // A rule that recurses: the engine recurses with it until the sandbox's stack limit
    // stops it (a trap, like any plugin's).
    let recursive = "package portcullis\nallow if f(1)\nf(x) if f(x)";
    let outcome = load("rego", json!({"modules": {"p.rego": recursive}}), limits).await;
    let refused = match &outcome {
        Err(LoadError::Configure(m)) => m.clone(),
        Err(e) => panic!("{e}"),
        Ok(p) => {
            let d = p
                .evaluate(&query(
                    Entity::new("svc", "a"),
                    None,
                    "read",
                    Entity::new("doc", "1"),
                    json!({}),
                ))
                .await;
            assert!(!d.allowed);
            d.reasons.join("; ")
        }
    };
    assert!(
        refused.contains("plugin_stack_overflow") || refused.to_lowercase().contains("recurs"),
        "{refused}"
    );
    // Everyone else is still answered.
    let p = load(
        "cedar",
        json!({"policies": "permit(principal, action, resource);"}),
        patient(),
    )
    .await
    .unwrap();
    let d = p
        .evaluate(&query(
            Entity::new("svc", "a"),
            None,
            "read",
            Entity::new("doc", "1"),
            json!({}),
        ))
        .await;
    assert!(d.allowed, "{}", explain(&d));
}

/// The compiled code of a built-in plugin is kept and read back by the next runtime; a
/// tampered file is not used (it is compiled again).
#[tokio::test]
async fn builtins_are_compiled_once_and_kept_for_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    // builtin:native: the smallest built-in, kept like the large ones.
    let cedar = portcullis_plugin::builtin("native").unwrap();
    let first = Runtime::new().unwrap();
    first.keep_precompiled_in(dir.path().to_path_buf());
    first.compile(cedar).unwrap();
    assert_eq!(first.precompiled_loads(), 0);
    let kept: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");

    let second = Runtime::new().unwrap();
    second.keep_precompiled_in(dir.path().to_path_buf());
    second.compile(cedar).unwrap();
    assert_eq!(second.precompiled_loads(), 1, "read back, not compiled");

    // One byte changed: the digest beside it no longer matches, so it is compiled again.
    let mut bytes = std::fs::read(&kept[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&kept[0], bytes).unwrap();
    let third = Runtime::new().unwrap();
    third.keep_precompiled_in(dir.path().to_path_buf());
    let compiled = third.compile(cedar).unwrap();
    assert_eq!(
        third.precompiled_loads(),
        0,
        "a tampered file is not loaded"
    );
    assert_eq!(compiled.world_version(), portcullis_plugin::WORLD_V2);

    // A small uploaded component is not kept (it compiles in milliseconds) …
    let upload = std::fs::read(portcullis_plugin::programs::paths::RBAC).unwrap();
    let fourth = Runtime::new().unwrap();
    let other = tempfile::tempdir().unwrap();
    fourth.keep_precompiled_in(other.path().to_path_buf());
    fourth.compile(&upload).unwrap();
    let cwasm = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "cwasm")
                })
                .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(cwasm(other.path()), 0);

    // … a large one (a JavaScript or Python plugin is 10-20 MB) is, so that a restart
    // with it active does not compile it again. A custom section makes this one large.
    let padded = |component: &[u8]| {
        let mut large = component.to_vec();
        let payload = vec![b'x'; 1024 * 1024];
        let name = b"padding";
        let mut section = vec![name.len() as u8];
        section.extend_from_slice(name);
        section.extend_from_slice(&payload);
        large.push(0); // custom section id
        let mut n = section.len();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            large.push(if n == 0 { byte } else { byte | 0x80 });
            if n == 0 {
                break;
            }
        }
        large.extend_from_slice(&section);
        large
    };
    // A large component that passes the header checks and compiles, but is no plugin (its
    // exports have the world's names and the wrong types), is refused and leaves nothing
    // on disk.
    let wrong_types = wat::parse_str(
        r#"(component
            (core module $m (func (export "f")))
            (core instance $i (instantiate $m))
            (func $f (canon lift (core func $i "f")))
            (export "configure" (func $f))
            (export "authorize" (func $f))
            (export "candidates" (func $f))
            (export "on-event" (func $f)))"#,
    )
    .unwrap();
    match fourth.compile(&padded(&wrong_types)) {
        Err(portcullis_plugin::LoadError::WrongWorld(_)) => {}
        other => panic!("{:?}", other.map(|c| c.digest.clone())),
    }
    assert_eq!(cwasm(other.path()), 0);
    let large = padded(&upload);
    fourth.compile(&large).unwrap();
    assert_eq!(cwasm(other.path()), 1);
    assert_eq!(fourth.precompiled_loads(), 0);
    let fifth = Runtime::new().unwrap();
    fifth.keep_precompiled_in(other.path().to_path_buf());
    fifth.compile(&large).unwrap();
    assert_eq!(fifth.precompiled_loads(), 1, "read back, not compiled");
}

/// The Rego conformance table (tests/fixtures/rego/conformance.json): OPA's documented
/// examples (HTTP API authorization, RBAC) and the language features policies lean on.
#[tokio::test]
async fn the_rego_conformance_table_passes() {
    let path = repo().join("tests/fixtures/rego/conformance.json");
    let table: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut ran = 0;
    let mut wrong = Vec::new();
    for suite in table["suites"].as_array().unwrap() {
        let mut settings = json!({"modules": suite["modules"]});
        for key in ["data", "query"] {
            if let Some(v) = suite.get(key) {
                settings[key] = v.clone();
            }
        }
        let p = load("rego", settings, patient())
            .await
            .unwrap_or_else(|e| panic!("suite {}: {e}", suite["name"]));
        for case in suite["cases"].as_array().unwrap() {
            let d = p.evaluate(&query_from_input(&case["input"])).await;
            ran += 1;
            if json!(d.allowed) != case["expected"] {
                wrong.push(format!(
                    "{} / {}: {}",
                    suite["name"],
                    case["name"],
                    explain(&d)
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {ran} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(ran >= 40, "only {ran} cases");
}

/// docs/policies/native.cedar and native.rego reproduce the native rules: the native
/// plugin's own case table (decisions and reasons) passes against each.
#[tokio::test]
async fn the_native_rules_written_in_cedar_and_rego_pass_the_native_case_table() {
    use portcullis_plugin::check::{policy_settings, run_table, Engine, Table};
    let table =
        Table::parse(&std::fs::read_to_string(repo().join("plugins/native/cases.json")).unwrap())
            .unwrap();
    let Table::Plugin(file) = &table else {
        panic!("a plugin case table")
    };
    assert!(file.cases.len() >= 46);
    for engine in [Engine::Cedar, Engine::Rego] {
        let settings = policy_settings(engine, &repo().join("docs/policies"), None, None).unwrap();
        let plugin = runtime()
            .load(
                engine.plugin(),
                portcullis_plugin::builtin(engine.plugin().trim_start_matches("builtin:")).unwrap(),
                &settings.to_string(),
                patient(),
            )
            .await
            .unwrap_or_else(|e| panic!("{engine:?}: {e}"));
        let failed: Vec<String> = run_table(&plugin, &table)
            .await
            .into_iter()
            .filter(|o| !o.passed)
            .map(|o| {
                format!(
                    "{}: {:?}; reasons {:?}",
                    o.name, o.problem, o.decision.reasons
                )
            })
            .collect();
        assert!(failed.is_empty(), "{engine:?}:\n{}", failed.join("\n"));
    }
}

/// As in OPA: a built-in's error leaves its expression undefined (another body may still
/// allow), and the query may be any expression, such as a path into a rule's value.
#[tokio::test]
async fn rego_builtin_errors_are_undefined_and_the_query_may_be_an_expression() {
    let module = r#"package portcullis
allow if time.parse_rfc3339_ns(input.context.when) > 0
allow if input.action.name == "read"
decision := {"allow": input.action.name == "list"}
"#;
    let p = load("rego", json!({"modules": {"p.rego": module}}), patient())
        .await
        .unwrap();
    let d = p
        .evaluate(&query(
            Entity::new("svc", "a"),
            None,
            "read",
            Entity::new("doc", "1"),
            json!({"when": "garbage"}),
        ))
        .await;
    assert!(d.allowed, "{}", explain(&d));
    let p = load(
        "rego",
        json!({"modules": {"p.rego": module}, "query": "data.portcullis.decision.allow"}),
        patient(),
    )
    .await
    .unwrap();
    for (action, allowed) in [("list", true), ("read", false)] {
        let d = p
            .evaluate(&query(
                Entity::new("svc", "a"),
                None,
                action,
                Entity::new("doc", "1"),
                json!({}),
            ))
            .await;
        assert_eq!(d.allowed, allowed, "{action}: {}", explain(&d));
    }
}

/// The attack: someone who can write the precompiled folder (a data directory under a
/// shared /tmp, a shared cache) plants compiled code with its matching digest beside it.
/// A folder others can write is neither written to nor read from.
#[cfg(unix)]
#[tokio::test]
async fn a_precompiled_file_planted_in_a_folder_others_can_write_is_not_loaded() {
    use std::os::unix::fs::PermissionsExt;
    let native = portcullis_plugin::builtin("native").unwrap();
    // Valid compiled code, as an attacker with the same binary could make it.
    let private = tempfile::tempdir().unwrap();
    let maker = Runtime::new().unwrap();
    maker.keep_precompiled_in(private.path().to_path_buf());
    maker.compile(native).unwrap();

    let base = tempfile::tempdir().unwrap();
    let shared = base.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    // Nothing is kept in a world-writable folder…
    let first = Runtime::new().unwrap();
    first.keep_precompiled_in(shared.clone());
    first.compile(native).unwrap();
    assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0);
    // …and what is planted there is not loaded.
    for f in std::fs::read_dir(private.path()).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, shared.join(f.file_name().unwrap())).unwrap();
    }
    let victim = Runtime::new().unwrap();
    victim.keep_precompiled_in(shared.clone());
    victim.compile(native).unwrap();
    assert_eq!(victim.precompiled_loads(), 0, "planted code was loaded");
    // The same files in a private folder are (the check is the folder, not the files).
    let trusted = Runtime::new().unwrap();
    trusted.keep_precompiled_in(private.path().to_path_buf());
    trusted.compile(native).unwrap();
    assert_eq!(trusted.precompiled_loads(), 1);
}
