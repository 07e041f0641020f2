//! `builtin:cedar` (SPEC §12): the cedar-policy `cedar-example-use-cases`, vendored
//! unmodified under tests/fixtures/cedar-examples, each use case a policy, every request
//! sent through AuthZEN.

use portcullis_tests::{TestServer, ADMIN_PASSWORD};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn configured(c: &mut portcullis_app::config::Config) {
    c.bootstrap.mode = portcullis_app::config::BootstrapMode::Configured;
    c.bootstrap.admin_password = ADMIN_PASSWORD.into();
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cedar-examples/cedar-example-use-cases")
}

/// The use cases `run.sh` of cedar-examples runs, by folder, and whether its `authorize`
/// step passes the schema (document_cloud and github_example authorize without one: their
/// entities do not conform to their schema, which only validates their policies).
const USE_CASES: &[(&str, bool)] = &[
    ("document_cloud", false),
    ("github_example", false),
    ("hotel_chains/static", true),
    ("hotel_chains/templated", true),
    ("sales_orgs/static", true),
    ("sales_orgs/templated", true),
    ("streaming_service", true),
    ("tags_n_roles", true),
    ("tax_preparer", true),
];

/// The requests of cedar-example-use-cases, all of them.
const REQUESTS: usize = 46;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A use case's files as `builtin:cedar` settings.
fn settings(dir: &Path, schema: bool) -> Value {
    let mut s = json!({
        "policies": read(&dir.join("policies.cedar")),
        "entities": serde_json::from_str::<Value>(&read(&dir.join("entities.json"))).unwrap(),
    });
    if schema {
        s["schema"] = json!(read(&dir.join("policies.cedarschema")));
    }
    if dir.join("linked").exists() {
        s["template_links"] = serde_json::from_str(&read(&dir.join("linked"))).unwrap();
    }
    s
}

/// `Type::"id"` (namespaced types allowed) split into its type and id.
fn split_uid(uid: &str) -> (String, String) {
    let (t, id) = uid
        .split_once("::\"")
        .unwrap_or_else(|| panic!("not a uid: {uid}"));
    (t.to_string(), id.trim_end_matches('"').to_string())
}

/// A cedar-examples request as an AuthZEN evaluation: principal and resource uids as
/// subject and resource, the action's id as its name when its type is `Action` (the
/// whole uid otherwise), the context as it is.
fn evaluation(request: &Value) -> Value {
    let (st, sid) = split_uid(request["principal"].as_str().unwrap());
    let (rt, rid) = split_uid(request["resource"].as_str().unwrap());
    let action = request["action"].as_str().unwrap();
    let name = match split_uid(action) {
        (t, id) if t == "Action" => id,
        _ => action.to_string(),
    };
    json!({
        "subject": {"type": st, "id": sid},
        "action": {"name": name},
        "resource": {"type": rt, "id": rid},
        "context": request.get("context").cloned().unwrap_or(json!({})),
    })
}

#[tokio::test]
async fn the_cedar_example_use_cases_pass_through_authzen() {
    let s = TestServer::start_with(configured).await;
    let k = s.admin_key().await;
    let mut sent = 0;
    let mut wrong = Vec::new();
    for (case, schema) in USE_CASES {
        let dir = fixtures().join(case);
        let name = case.replace(['/', '_'], "-");
        let a = s
            .put(
                &format!("/v1/policies/{name}"),
                &k,
                json!({"plugin": "builtin:cedar", "settings": settings(&dir, *schema)}),
            )
            .await;
        assert_eq!(a.status, 201, "{case}: {}", a.text);
        for (folder, expected) in [("ALLOW", true), ("DENY", false)] {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(folder))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            for file in files {
                let request: Value = serde_json::from_str(&read(&file)).unwrap();
                let mut body = evaluation(&request);
                // Ask for the reasons too: they explain a failure.
                body["options"] = json!({});
                let a = s
                    .post(&format!("/policies/{name}/access/v1/evaluation"), &k, body)
                    .await;
                assert_eq!(a.status, 200, "{}: {}", file.display(), a.text);
                sent += 1;
                if a.body["decision"] != json!(expected) {
                    wrong.push(format!(
                        "{case}/{folder}/{}: got {}, reasons {}",
                        file.file_name().unwrap().to_string_lossy(),
                        a.body["decision"],
                        a.body["context"]["reasons"]
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {sent} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(sent, REQUESTS, "every vendored request must run");
    assert_eq!(
        sent,
        vendored_requests(&fixtures()),
        "a vendored request was not sent"
    );
}

/// Every request file under an `ALLOW/` or `DENY/` folder of the vendored tree.
fn vendored_requests(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name == "ALLOW" || name == "DENY" {
                n += std::fs::read_dir(&path).unwrap().count();
            } else {
                n += vendored_requests(&path);
            }
        }
    }
    n
}

/// The native rules written in Cedar and in Rego (docs/policies) govern the API as the
/// management authorizer: an admin may do everything, a user-account member reads its own
/// account but not another's, and a shadow run of the Rego version beside the Cedar one
/// agrees with it.
#[tokio::test]
async fn the_native_rules_in_cedar_and_rego_govern_the_api_as_the_management_authorizer() {
    use portcullis_plugin::check::{policy_settings, Engine};
    let s = TestServer::start_with(configured).await;
    let k = s.admin_key().await;
    s.account(&k, "acme", "user").await;
    s.account(&k, "beta", "user").await;
    let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/policies");
    let cedar = policy_settings(Engine::Cedar, &docs, None, None).unwrap();
    let rego = policy_settings(Engine::Rego, &docs, None, None).unwrap();

    let a = s
        .post(
            "/v1/plugins/builtin:cedar/activate",
            &k,
            json!({"settings": cedar, "mode": "enforce"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = s
        .post(
            "/v1/plugins/builtin:rego/activate",
            &k,
            json!({"settings": rego, "mode": "shadow"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);

    assert_eq!(s.get("/v1/accounts/acme", &jane).await.status, 200);
    let a = s.get("/v1/accounts/beta", &jane).await;
    assert_eq!(a.status, 403, "{}", a.text);
    assert!(a.text.contains("no Cedar policy permits"), "{}", a.text);
    assert_eq!(s.get("/v1/users/jane", &jane).await.status, 200);
    assert_eq!(s.get("/v1/audit", &jane).await.status, 403);
    assert_eq!(s.get("/v1/accounts/beta", &k).await.status, 200);
    assert_eq!(
        s.post(
            "/v1/accounts",
            &jane,
            json!({"name": "gamma", "type": "user"})
        )
        .await
        .status,
        403
    );

    // The shadow (Rego) agreed with the active (Cedar) plugin on every call.
    portcullis_tests::wait_until(
        "the shadow answers are counted",
        portcullis_tests::PATIENCE,
        || async {
            let a = s.get("/v1/authorizer", &k).await;
            a.body["shadow_agreements"].as_u64().unwrap_or(0) >= 6
        },
    )
    .await;
    let a = s.get("/v1/authorizer", &k).await;
    assert_eq!(a.body["shadow_disagreements"], 0, "{}", a.text);
}
