//! The policy languages' WebAssembly overhead: a decision through `builtin:cedar` next to
//! the same policy, entities and schema evaluated in-process by `cedar-policy`, and a
//! decision through `builtin:rego` next to the same modules and data evaluated in-process
//! by `regorus` — each pair measured side by side in one run. See docs/benchmarks.md.
//!
//! Run: `cargo bench -p portcullis-plugin --features bench-peers --bench languages`
//! (the `bench-peers` feature builds the native `regorus` peer, which nothing else needs).

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis_core::authz::{Entity, Query};
use portcullis_plugin::{Limits, Runtime};
use serde_json::{json, Value};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::str::FromStr;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn query(subject: (&str, &str), action: &str, resource: (&str, &str), context: &Value) -> Query {
    Query {
        subject: Entity::new(subject.0, subject.1),
        principal: None,
        action: action.into(),
        action_properties: "{}".into(),
        resource: Entity::new(resource.0, resource.1),
        context: context.to_string(),
        policy: "bench".into(),
        decision_id: "d".into(),
    }
}

/// cedar-examples' tags_n_roles (policies, entities, schema): Alice reads workspace-1.
struct CedarCase {
    policies: String,
    entities: Value,
    schema: String,
}

fn cedar_case() -> CedarCase {
    let dir = repo().join("tests/fixtures/cedar-examples/cedar-example-use-cases/tags_n_roles");
    CedarCase {
        policies: read(&dir.join("policies.cedar")),
        entities: serde_json::from_str(&read(&dir.join("entities.json"))).unwrap(),
        schema: read(&dir.join("policies.cedarschema")),
    }
}

/// The native peer: policies, schema and entities built once; per call the request is
/// built from the same uids and context text the plugin receives.
struct CedarPeer {
    policies: cedar_policy::PolicySet,
    entities: cedar_policy::Entities,
    schema: cedar_policy::Schema,
    authorizer: cedar_policy::Authorizer,
}

impl CedarPeer {
    fn new(c: &CedarCase) -> CedarPeer {
        let schema = cedar_policy::Schema::from_cedarschema_str(&c.schema)
            .unwrap()
            .0;
        CedarPeer {
            policies: c.policies.parse().unwrap(),
            entities: cedar_policy::Entities::from_json_value(c.entities.clone(), Some(&schema))
                .unwrap(),
            schema,
            authorizer: cedar_policy::Authorizer::new(),
        }
    }

    fn decide(&self, principal: &str, action: &str, resource: &str, context: &str) -> bool {
        use cedar_policy::{Context, Decision, EntityUid, Request};
        let action = EntityUid::from_str(action).unwrap();
        let context = Context::from_json_str(context, Some((&self.schema, &action))).unwrap();
        let request = Request::new(
            EntityUid::from_str(principal).unwrap(),
            action,
            EntityUid::from_str(resource).unwrap(),
            context,
            Some(&self.schema),
        )
        .unwrap();
        self.authorizer
            .is_authorized(&request, &self.policies, &self.entities)
            .decision()
            == Decision::Allow
    }
}

/// The Rego conformance suite with data (the Rego Playground's RBAC), its first case.
fn rego_suite() -> (Value, Value) {
    let table: Value =
        serde_json::from_str(&read(&repo().join("tests/fixtures/rego/conformance.json"))).unwrap();
    let suite = table["suites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["name"]
                .as_str()
                .unwrap()
                .starts_with("Rego Playground RBAC")
        })
        .unwrap()
        .clone();
    let case = suite["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["expected"] == true)
        .unwrap()
        .clone();
    (suite, case["input"].clone())
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new().unwrap();

    // Cedar.
    let case = cedar_case();
    let settings =
        json!({"policies": case.policies, "entities": case.entities, "schema": case.schema});
    let cedar = rt
        .block_on(runtime.load(
            "builtin:cedar",
            portcullis_plugin::builtin("cedar").unwrap(),
            &settings.to_string(),
            Limits::default(),
        ))
        .unwrap();
    let peer = CedarPeer::new(&case);
    let q = query(
        ("User", "Alice"),
        "ReadWorkspace",
        ("Workspace", "workspace-1"),
        &json!({}),
    );
    let decide_peer = || {
        peer.decide(
            r#"User::"Alice""#,
            r#"Action::"ReadWorkspace""#,
            r#"Workspace::"workspace-1""#,
            "{}",
        )
    };
    assert!(
        rt.block_on(cedar.evaluate(&q)).allowed,
        "builtin:cedar allows"
    );
    assert!(decide_peer(), "cedar-policy allows");

    // Rego.
    let (suite, input) = rego_suite();
    let mut settings = json!({"modules": suite["modules"]});
    if let Some(d) = suite.get("data") {
        settings["data"] = d.clone();
    }
    let rego = rt
        .block_on(runtime.load(
            "builtin:rego",
            portcullis_plugin::builtin("rego").unwrap(),
            &settings.to_string(),
            Limits::default(),
        ))
        .unwrap();
    let rq = Query {
        subject: Entity {
            kind: input["subject"]["type"].as_str().unwrap().into(),
            id: input["subject"]["id"].as_str().unwrap().into(),
            properties: input["subject"]
                .get("properties")
                .cloned()
                .unwrap_or(json!({}))
                .to_string(),
        },
        principal: None,
        action: input["action"]["name"].as_str().unwrap().into(),
        action_properties: "{}".into(),
        resource: Entity {
            kind: input["resource"]["type"].as_str().unwrap().into(),
            id: input["resource"]["id"].as_str().unwrap().into(),
            properties: input["resource"]
                .get("properties")
                .cloned()
                .unwrap_or(json!({}))
                .to_string(),
        },
        context: input
            .get("context")
            .cloned()
            .unwrap_or(json!({}))
            .to_string(),
        policy: "bench".into(),
        decision_id: "d".into(),
    };
    // The peer's input: what the plugin builds (host context keys included).
    let mut peer_input = input.clone();
    peer_input["context"] = serde_json::from_str(&rq.plugin_context()).unwrap();
    let peer_input = peer_input.to_string();
    let mut engine = regorus::Engine::new();
    engine.set_strict_builtin_errors(false);
    for (file, text) in suite["modules"].as_object().unwrap() {
        engine
            .add_policy(file.clone(), text.as_str().unwrap().to_string())
            .unwrap();
    }
    if let Some(d) = suite.get("data") {
        engine
            .add_data(regorus::Value::from_json_str(&d.to_string()).unwrap())
            .unwrap();
    }
    let mut rego_peer = |input: &str| {
        engine.set_input(regorus::Value::from_json_str(input).unwrap());
        engine.eval_rule("data.portcullis.allow".into()).unwrap() == regorus::Value::Bool(true)
    };
    assert!(
        rt.block_on(rego.evaluate(&rq)).allowed,
        "builtin:rego allows"
    );
    assert!(rego_peer(&peer_input), "regorus allows");

    let mut g = c.benchmark_group("languages");
    g.bench_function("cedar_policy_native", |b| {
        b.iter(|| black_box(decide_peer()))
    });
    g.bench_function("builtin_cedar_warm", |b| {
        b.to_async(&rt)
            .iter(|| async { cedar.evaluate(black_box(&q)).await.allowed })
    });
    g.bench_function("regorus_native", |b| {
        b.iter(|| rego_peer(black_box(&peer_input)))
    });
    g.bench_function("builtin_rego_warm", |b| {
        b.to_async(&rt)
            .iter(|| async { rego.evaluate(black_box(&rq)).await.allowed })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
