//! OpenID AuthZEN 1.0 conformance (SPEC §11), against live servers:
//! - the interop decision sets vendored unmodified under `tests/fixtures/authzen/` (Todo
//!   drafts 01 and 02, the API gateway set, the search sets, the IdP set), each request
//!   sent byte for byte as the official runners send it (`JSON.stringify` of the case's
//!   `request`, `Authorization` and `Content-Type` only) to a policy's base URL, and each
//!   answer compared as the runners compare it (stricter: a non-200 fails);
//! - the certification scenario (`certification/authorization-api-1_0-scenario.md`), every
//!   check C1–C71 as `tests/fixtures/authzen/NOTES.md` §7 numbers them, on the fixture the
//!   scenario describes (§C-1) run by the `records` plugin.
//!
//! The policies are the worked example `examples/authzen-todo` (with its `settings.json`
//! and `users.json`) and the fixture plugin `plugins/records`.

use portcullis_tests::{TestServer, ADMIN_PASSWORD};
use serde_json::{json, Value};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/authzen");

fn fixture(path: &str) -> Value {
    let full = format!("{FIXTURES}/{path}");
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn example(path: &str) -> Value {
    let full = format!("{}/../examples/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A server whose AuthZEN `user` subjects are found by username, email or SSO subject.
async fn server() -> (TestServer, String) {
    let s = TestServer::start_with(|c| {
        c.bootstrap.mode = portcullis_app::config::BootstrapMode::Configured;
        c.bootstrap.admin_password = ADMIN_PASSWORD.into();
        use portcullis_app::config::SubjectLookup;
        c.authzen.subject_lookup = vec![
            SubjectLookup::Username,
            SubjectLookup::Email,
            SubjectLookup::SsoSubject,
        ];
    })
    .await;
    let k = s.admin_key().await;
    s.account(&k, "acme", "user").await;
    (s, k)
}

/// Upload the component at `path` and make it the policy `name` with `settings`.
async fn policy(s: &TestServer, k: &str, name: &str, path: &str, settings: Value) {
    let a = s.upload_plugin(k, path, name).await;
    assert!(a.status == 201 || a.status == 200, "{}", a.text);
    let id = a.body["id"].as_str().unwrap().to_string();
    let a = s
        .put(
            &format!("/v1/policies/{name}"),
            k,
            json!({"plugin": id, "settings": settings}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
}

/// A user of account `acme`.
async fn user(s: &TestServer, k: &str, body: Value) {
    let a = s.post("/v1/accounts/acme/users", k, body).await;
    assert_eq!(a.status, 201, "{}", a.text);
}

/// POST `request` as the official runners do: `JSON.stringify(request)` (serde_json keeps
/// the file's member order), `Authorization` as given, `Content-Type: application/json`.
async fn send(s: &TestServer, k: &str, path: &str, request: &Value) -> Value {
    let auth = format!("Bearer {k}");
    let (a, headers) = s
        .raw(
            "POST",
            path,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(serde_json::to_vec(request).unwrap()),
        )
        .await;
    assert_eq!(a.status, 200, "{path} {request}: {}", a.text);
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/json",
        "{path}"
    );
    a.body
}

/// The decision sets of one file: every `evaluation` case (`decision` compared) and every
/// `evaluations` case (`evaluations` compared as text, as the Todo runner does). Returns
/// the number of cases that passed; panics listing the failures.
async fn decision_sets(s: &TestServer, k: &str, base: &str, file: &str) -> usize {
    let cases = fixture(file);
    let mut failures = Vec::new();
    let mut passed = 0;
    for (i, case) in cases["evaluation"].as_array().unwrap().iter().enumerate() {
        let body = send(
            s,
            k,
            &format!("{base}/access/v1/evaluation"),
            &case["request"],
        )
        .await;
        let got = match &body["decision"] {
            Value::Bool(b) => Value::Bool(*b),
            _ => Value::Bool(false),
        };
        if got == case["expected"] {
            passed += 1;
        } else {
            failures.push(format!("evaluation {i}: {} → {body}", case["request"]));
        }
    }
    if let Some(batches) = cases["evaluations"].as_array() {
        for (i, case) in batches.iter().enumerate() {
            let body = send(
                s,
                k,
                &format!("{base}/access/v1/evaluations"),
                &case["request"],
            )
            .await;
            let got = serde_json::to_string(&body["evaluations"]).unwrap();
            if got == serde_json::to_string(&case["expected"]).unwrap() {
                passed += 1;
            } else {
                failures.push(format!("evaluations {i}: {got}"));
            }
        }
    }
    assert!(failures.is_empty(), "{file}:\n{}", failures.join("\n"));
    passed
}

#[tokio::test]
async fn the_interop_todo_and_gateway_decisions_pass_unmodified() {
    let (s, k) = server().await;
    // The Todo users as Portcullis users: roles, email, and the IdP subject (the PID the
    // Todo application sends) as their SSO link.
    for u in example("authzen-todo/users.json").as_array().unwrap() {
        let username = u["username"].as_str().unwrap();
        user(
            &s,
            &k,
            json!({"username": username, "email": u["email"], "roles": u["roles"]}),
        )
        .await;
        let a = s
            .put(
                &format!("/v1/users/{username}/sso-link"),
                &k,
                json!({"issuer": "https://idp.example", "subject": u["sso_subject"]}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    policy(
        &s,
        &k,
        "todo",
        portcullis_plugin::programs::paths::TODO,
        example("authzen-todo/settings.json"),
    )
    .await;
    let todo = "interop/authzen-todo-backend/test";
    let base = "/policies/todo";
    assert_eq!(
        decision_sets(
            &s,
            &k,
            base,
            &format!("{todo}/decisions-authorization-api-1_0-01.json")
        )
        .await,
        40
    );
    assert_eq!(
        decision_sets(
            &s,
            &k,
            base,
            &format!("{todo}/decisions-authorization-api-1_0-02.json")
        )
        .await,
        43
    );
    assert_eq!(
        decision_sets(
            &s,
            &k,
            base,
            "interop/authzen-api-gateways/test-harness/test/decisions.json"
        )
        .await,
        25
    );
    s.stop().await;
}

/// Sort search results as the search runner does (by `type` then `id`, or by `name`) and
/// write them as text without `null` members.
fn sorted(results: &Value) -> String {
    let mut items: Vec<Value> = results
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut v| {
            if let Some(o) = v.as_object_mut() {
                o.retain(|_, v| !v.is_null());
            }
            v
        })
        .collect();
    items.sort_by(|a, b| {
        let key = |v: &Value| {
            (
                v["type"].as_str().unwrap_or("").to_string(),
                v["id"].as_str().unwrap_or("").to_string(),
                v["name"].as_str().unwrap_or("").to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    serde_json::to_string(&items).unwrap()
}

async fn search_sets(
    s: &TestServer,
    k: &str,
    base: &str,
    file: &str,
    key: &str,
    kind: &str,
) -> usize {
    let cases = fixture(file);
    let mut failures = Vec::new();
    let mut passed = 0;
    for (i, case) in cases[key].as_array().unwrap().iter().enumerate() {
        let body = send(
            s,
            k,
            &format!("{base}/access/v1/search/{kind}"),
            &case["request"],
        )
        .await;
        let (got, want) = (
            sorted(&body["results"]),
            sorted(&case["expected"]["results"]),
        );
        if got == want {
            passed += 1;
        } else {
            failures.push(format!(
                "{kind} {i}: {} → {got}, want {want}",
                case["request"]
            ));
        }
    }
    assert!(failures.is_empty(), "{file}:\n{}", failures.join("\n"));
    passed
}

#[tokio::test]
async fn the_interop_search_and_idp_sets_pass_unmodified() {
    let (s, k) = server().await;
    let data = "interop/authzen-search-demo/data";
    for u in fixture(&format!("{data}/users.json")).as_array().unwrap() {
        user(
            &s,
            &k,
            json!({"username": u["id"], "attributes": {"role": u["role"], "department": u["department"]}}),
        )
        .await;
    }
    let records: serde_json::Map<String, Value> = fixture(&format!("{data}/records.json"))
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].to_string().trim_matches('"').to_string(),
                json!({"department": r["department"], "owner": r["owner"]}),
            )
        })
        .collect();
    policy(
        &s,
        &k,
        "search",
        portcullis_plugin::programs::paths::RECORDS,
        json!({"rules": "search", "records": records}),
    )
    .await;
    let harness = "interop/authzen-search-demo/test-harness/src";
    let base = "/policies/search";
    let mut total = 0;
    for kind in ["subject", "resource", "action"] {
        total += search_sets(
            &s,
            &k,
            base,
            &format!("{harness}/{kind}/results.json"),
            "evaluation",
            kind,
        )
        .await;
    }
    assert_eq!(total, 60 + 18 + 120);
    let idp = search_sets(
        &s,
        &k,
        base,
        "interop/authzen-idp/test-harness/src/results.json",
        "search",
        "resource",
    )
    .await;
    assert_eq!(idp, 6);
    s.stop().await;
}

// ------------------------------------------------------------------ certification

/// The certification harness: requests against one PDP base, counting checks.
struct Harness<'a> {
    s: &'a TestServer,
    key: String,
    base: String,
    checks: Vec<&'static str>,
}

impl Harness<'_> {
    async fn post_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> (portcullis_tests::Answer, reqwest::header::HeaderMap) {
        let auth = format!("Bearer {}", self.key);
        let mut all = vec![("authorization", auth.as_str())];
        all.extend_from_slice(headers);
        self.s
            .raw("POST", &format!("{}{path}", self.base), &all, body)
            .await
    }

    /// POST `body` as JSON; status, body.
    async fn post(&self, path: &str, body: Value) -> portcullis_tests::Answer {
        self.post_with(
            path,
            &[("content-type", "application/json")],
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await
        .0
    }

    /// An evaluation that must answer 200 with a boolean `decision` equal to `want`
    /// (C10, C11: `context`, if any, is an object).
    async fn decide(&mut self, check: &'static str, body: Value, want: bool) {
        let a = self.post("/access/v1/evaluation", body.clone()).await;
        assert_eq!(a.status, 200, "{check}: {body} → {}", a.text);
        assert_eq!(
            a.body["decision"],
            Value::Bool(want),
            "{check}: {body} → {}",
            a.text
        );
        assert!(
            a.body.get("context").is_none_or(Value::is_object),
            "{check}: context must be an object"
        );
        self.checks.push(check);
    }

    /// A request that must be refused with 400.
    async fn refused(&mut self, check: &'static str, path: &str, body: Value) {
        let a = self.post(path, body.clone()).await;
        assert_eq!(a.status, 400, "{check}: {body} → {}", a.text);
        self.checks.push(check);
    }

    /// A batch that must answer these decisions, in order, each item with a boolean
    /// `decision` (C35–C38).
    async fn batch(&mut self, check: &'static str, body: Value, want: &[bool]) -> Value {
        let a = self.post("/access/v1/evaluations", body.clone()).await;
        assert_eq!(a.status, 200, "{check}: {body} → {}", a.text);
        let items = a.body["evaluations"]
            .as_array()
            .unwrap_or_else(|| panic!("{check}: {}", a.text));
        let got: Vec<bool> = items
            .iter()
            .map(|i| i["decision"].as_bool().unwrap())
            .collect();
        assert_eq!(got, want, "{check}: {body} → {}", a.text);
        assert!(a.body.get("decision").is_none(), "{check}: C38");
        self.checks.push(check);
        a.body
    }

    /// A search whose results must include `want` (`type`/`id` items, or `name` items).
    async fn search(
        &mut self,
        check: &'static str,
        kind: &str,
        body: Value,
        want: &[&str],
    ) -> Value {
        let a = self
            .post(&format!("/access/v1/search/{kind}"), body.clone())
            .await;
        assert_eq!(a.status, 200, "{check}: {body} → {}", a.text);
        let results = a.body["results"]
            .as_array()
            .unwrap_or_else(|| panic!("{check}: {}", a.text));
        let found: Vec<&str> = results
            .iter()
            .map(|r| {
                if kind == "action" {
                    r["name"].as_str().unwrap()
                } else {
                    let sought = if kind == "subject" {
                        &body["subject"]["type"]
                    } else {
                        &body["resource"]["type"]
                    };
                    assert_eq!(&r["type"], sought, "{check}: {}", a.text);
                    r["id"].as_str().unwrap()
                }
            })
            .collect();
        for w in want {
            assert!(found.contains(w), "{check}: {w} missing from {}", a.text);
        }
        self.checks.push(check);
        a.body
    }
}

#[tokio::test]
async fn the_certification_scenario_passes_in_full() {
    let (s, k) = server().await;
    // Fixture C-1: alice (no properties), bob (role admin); record-1 active, record-2
    // archived; alice writes.
    user(&s, &k, json!({"username": "alice"})).await;
    user(
        &s,
        &k,
        json!({"username": "bob", "attributes": {"role": "admin"}}),
    )
    .await;
    policy(
        &s,
        &k,
        "cert",
        portcullis_plugin::programs::paths::RECORDS,
        json!({
            "rules": "certification",
            "records": {"record-1": {"status": "active"}, "record-2": {"status": "archived"}},
            "writers": ["alice"],
        }),
    )
    .await;

    // Discovery (C70, C71) gives the base URL the other levels use.
    let (a, headers) = s
        .raw(
            "GET",
            "/.well-known/authzen-configuration/policies/cert",
            &[],
            None,
        )
        .await;
    assert_eq!(a.status, 200, "C71: {}", a.text);
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/json",
        "C70"
    );
    let pdp = a.body["policy_decision_point"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(pdp, format!("{}/policies/cert", s.base), "C70");
    assert_eq!(
        a.body["access_evaluation_endpoint"],
        json!(format!("{pdp}/access/v1/evaluation")),
        "C70"
    );
    for member in [
        "access_evaluations_endpoint",
        "search_subject_endpoint",
        "search_resource_endpoint",
        "search_action_endpoint",
    ] {
        assert!(
            a.body[member].as_str().unwrap().starts_with(&pdp),
            "C70 {member}"
        );
    }
    let mut h = Harness {
        s: &s,
        key: k.clone(),
        base: pdp.strip_prefix(&s.base).unwrap().to_string(),
        checks: vec!["C70", "C71"],
    };

    let alice = json!({"type": "user", "id": "alice"});
    let bob = json!({"type": "user", "id": "bob"});
    let r1 = json!({"type": "record", "id": "record-1"});
    let r2 = json!({"type": "record", "id": "record-2"});
    let r1_active = json!({"type": "record", "id": "record-1", "properties": {"status": "active"}});
    let r2_archived =
        json!({"type": "record", "id": "record-2", "properties": {"status": "archived"}});
    let bob_admin = json!({"type": "user", "id": "bob", "properties": {"role": "admin"}});
    let read = json!({"name": "read"});
    let write = json!({"name": "write"});
    let when = json!({"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1"});

    // ---- Basic: Access Evaluation
    h.decide(
        "C1",
        json!({"subject": alice, "action": read, "resource": r1}),
        true,
    )
    .await;
    h.decide(
        "C2",
        json!({"subject": bob, "action": write, "resource": r1}),
        false,
    )
    .await;
    h.decide(
        "C3",
        json!({"subject": alice, "action": read, "resource": r1, "context": when}),
        true,
    )
    .await;
    h.decide(
        "C4",
        json!({"subject": alice, "action": write, "resource": r2_archived}),
        false,
    )
    .await;
    h.decide(
        "C5",
        json!({"subject": bob_admin, "action": write, "resource": r2_archived}),
        true,
    )
    .await;
    h.decide("C6", json!({"subject": alice, "action": {"name": "delete", "properties": {"soft": true}}, "resource": r1}), true).await;
    h.decide("C7", json!({"subject": alice, "action": {"name": "delete", "properties": {"soft": false}}, "resource": r1}), false).await;
    h.decide(
        "C8",
        json!({
            "subject": {"type": "user", "id": "alice", "properties": {"department": "Sales", "role": "manager"}},
            "action": {"name": "read", "properties": {"method": "GET"}},
            "resource": {"type": "record", "id": "record-1", "properties": {"status": "active", "owner": "bob"}},
        }),
        true,
    )
    .await;
    h.decide("C9", json!({"subject": alice, "action": read, "resource": r1, "foo": "bar", "futureField": {"nested": true}}), true).await;
    // C10 and C11 are asserted on every evaluation answer (`Harness::decide`).
    h.checks.extend(["C10", "C11"]);
    let ev = "/access/v1/evaluation";
    h.refused("C12", ev, json!({"action": read, "resource": r1}))
        .await;
    h.refused("C13", ev, json!({"subject": alice, "resource": r1}))
        .await;
    h.refused("C14", ev, json!({"subject": alice, "action": read}))
        .await;
    h.refused(
        "C15",
        ev,
        json!({"subject": {"id": "alice"}, "action": read, "resource": r1}),
    )
    .await;
    h.refused(
        "C16",
        ev,
        json!({"subject": {"type": "user"}, "action": read, "resource": r1}),
    )
    .await;
    h.refused(
        "C17",
        ev,
        json!({"subject": alice, "action": {}, "resource": r1}),
    )
    .await;
    h.refused(
        "C18",
        ev,
        json!({"subject": alice, "action": read, "resource": {"id": "record-1"}}),
    )
    .await;
    h.refused(
        "C19",
        ev,
        json!({"subject": alice, "action": read, "resource": {"type": "record"}}),
    )
    .await;
    let valid =
        serde_json::to_vec(&json!({"subject": alice, "action": read, "resource": r1})).unwrap();
    let (a, _) = h
        .post_with(ev, &[("content-type", "text/plain")], Some(valid.clone()))
        .await;
    assert_eq!(a.status, 400, "C20: {}", a.text);
    let (a, _) = h.post_with(ev, &[], Some(valid.clone())).await;
    assert_eq!(a.status, 400, "C20 (no Content-Type): {}", a.text);
    h.checks.push("C20");
    let (a, _) = h
        .post_with(
            ev,
            &[("content-type", "application/json")],
            Some(b"{\"subject\": {".to_vec()),
        )
        .await;
    assert_eq!(a.status, 400, "C21: {}", a.text);
    h.checks.push("C21");
    let (a, _) = h
        .post_with(ev, &[("content-type", "application/json")], None)
        .await;
    assert_eq!(a.status, 400, "C22: {}", a.text);
    h.checks.push("C22");
    h.refused(
        "C23",
        ev,
        json!({"subject": "alice", "action": read, "resource": r1}),
    )
    .await;
    h.refused(
        "C24",
        ev,
        json!({"subject": alice, "action": {"name": 123}, "resource": r1}),
    )
    .await;
    let (a, headers) = h
        .post_with(
            ev,
            &[
                ("content-type", "application/json"),
                ("x-request-id", "req-Abc_123 xyz"),
            ],
            Some(valid.clone()),
        )
        .await;
    assert_eq!(a.status, 200, "C25");
    assert_eq!(
        headers.get("x-request-id").unwrap(),
        "req-Abc_123 xyz",
        "C25"
    );
    h.checks.push("C25");
    let (a, _) = h
        .post_with(
            ev,
            &[("content-type", "application/json")],
            Some(valid.clone()),
        )
        .await;
    assert_eq!(a.status, 200, "C26");
    h.checks.push("C26");
    for _ in 0..5 {
        h.decide(
            "C27",
            json!({"subject": alice, "action": read, "resource": r1}),
            true,
        )
        .await;
        h.checks.pop();
    }
    h.checks.push("C27");

    // ---- Batch: Access Evaluations
    h.batch("C28", json!({"subject": alice, "action": read, "evaluations": [{"resource": r1}, {"resource": r2}]}), &[true, true]).await;
    h.batch("C29", json!({"subject": bob, "resource": r1, "evaluations": [{"action": read}, {"action": write}]}), &[true, false]).await;
    h.batch("C30", json!({"subject": alice, "action": write, "evaluations": [{"resource": r1_active}, {"resource": r2_archived}]}), &[true, false]).await;
    h.batch("C31", json!({"action": write, "resource": r2_archived, "evaluations": [{"subject": alice}, {"subject": bob_admin}]}), &[false, true]).await;
    h.batch(
        "C32",
        json!({"evaluations": [{"subject": alice, "action": read, "resource": r1}, {"subject": bob, "action": write, "resource": r1}]}),
        &[true, false],
    )
    .await;
    h.batch(
        "C33",
        json!({"subject": alice, "action": read, "context": {"time": "2025-06-27T18:03-07:00"},
               "evaluations": [{"resource": r1}, {"resource": r2, "context": {"time": "2025-06-27T19:00-07:00", "source": "batch-override"}}]}),
        &[true, true],
    )
    .await;
    h.batch("C34", json!({"subject": alice, "action": write, "resource": r1_active, "evaluations": [{}, {"resource": r2_archived}]}), &[true, false]).await;
    // C35–C38 are asserted on every batch answer (`Harness::batch`).
    h.checks.extend(["C35", "C36", "C37", "C38"]);
    let c39 = h
        .batch(
            "C39",
            json!({"subject": alice, "action": read, "options": {"evaluations_semantic": "execute_all"}, "evaluations": [{"resource": r1}, {}]}),
            &[true, false],
        )
        .await;
    assert!(c39["evaluations"][1]["context"].is_object(), "C39: {c39}");
    let a = h
        .post(
            "/access/v1/evaluations",
            json!({"subject": alice, "action": read, "resource": r1}),
        )
        .await;
    assert_eq!(
        (a.status, &a.body),
        (200, &json!({"decision": true})),
        "C40"
    );
    h.checks.push("C40");
    let a = h
        .post(
            "/access/v1/evaluations",
            json!({"subject": alice, "action": read, "resource": r1, "evaluations": []}),
        )
        .await;
    assert_eq!(
        (a.status, &a.body),
        (200, &json!({"decision": true})),
        "C41"
    );
    h.checks.push("C41");

    // ---- Search
    let user_type = json!({"type": "user"});
    let record_type = json!({"type": "record"});
    let c42 = h
        .search(
            "C42",
            "subject",
            json!({"subject": user_type, "action": read, "resource": r1}),
            &["alice", "bob"],
        )
        .await;
    let mut everyone: Vec<String> = c42["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    everyone.sort();
    h.search(
        "C43",
        "subject",
        json!({"subject": user_type, "action": read, "resource": r1, "context": when}),
        &["alice", "bob"],
    )
    .await;
    h.search(
        "C44",
        "subject",
        json!({"subject": alice, "action": read, "resource": r1}),
        &["alice", "bob"],
    )
    .await;
    h.search(
        "C45",
        "subject",
        json!({"subject": user_type, "action": write, "resource": r2_archived}),
        &["bob"],
    )
    .await;
    h.search(
        "C46",
        "resource",
        json!({"subject": alice, "action": read, "resource": record_type}),
        &["record-1"],
    )
    .await;
    h.search(
        "C47",
        "resource",
        json!({"subject": alice, "action": read, "resource": record_type, "context": when}),
        &["record-1"],
    )
    .await;
    h.search(
        "C48",
        "resource",
        json!({"subject": alice, "action": read, "resource": r1}),
        &["record-1"],
    )
    .await;
    h.search(
        "C49",
        "resource",
        json!({"subject": bob_admin, "action": write, "resource": record_type}),
        &["record-2"],
    )
    .await;
    h.search(
        "C50",
        "action",
        json!({"subject": alice, "resource": r1}),
        &["read", "write"],
    )
    .await;
    h.search(
        "C51",
        "action",
        json!({"subject": alice, "resource": r1, "context": when}),
        &["read", "write"],
    )
    .await;
    h.search(
        "C52",
        "action",
        json!({"subject": bob_admin, "resource": r2_archived}),
        &["write"],
    )
    .await;
    // Paging: one result per page, then the rest by the token, until `next_token` is "".
    let first = h
        .search(
            "C53",
            "subject",
            json!({"subject": user_type, "action": read, "resource": r1, "page": {"limit": 1}}),
            &[],
        )
        .await;
    assert_eq!(
        first["results"].as_array().unwrap().len(),
        1,
        "C53: {first}"
    );
    let mut token = first["page"]["next_token"]
        .as_str()
        .expect("C53/C55: next_token")
        .to_string();
    assert!(!token.is_empty(), "C53: more results remain: {first}");
    let mut seen = vec![first["results"][0]["id"].as_str().unwrap().to_string()];
    while !token.is_empty() {
        let next = h
            .search("C54", "subject", json!({"subject": user_type, "action": read, "resource": r1, "page": {"token": token, "limit": 1}}), &[])
            .await;
        h.checks.pop();
        token = next["page"]["next_token"]
            .as_str()
            .expect("C54/C55: next_token")
            .to_string();
        seen.extend(
            next["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        assert!(seen.len() < 100, "C54: paging does not end: {seen:?}");
    }
    seen.sort();
    assert_eq!(
        seen, everyone,
        "C54: every page together is the whole result"
    );
    h.checks.extend(["C54", "C55"]);
    // C56: a request with `page` and no limit gets everything.
    h.search(
        "C56",
        "subject",
        json!({"subject": user_type, "action": read, "resource": r1, "page": {}}),
        &["alice", "bob"],
    )
    .await;
    let nobody = json!({"type": "user", "id": "nonexistent-user"});
    for (kind, body) in [
        ("action", json!({"subject": nobody, "resource": r1})),
        (
            "resource",
            json!({"subject": nobody, "action": read, "resource": record_type}),
        ),
        (
            "subject",
            json!({"subject": user_type, "action": read, "resource": {"type": "record", "id": "no-such-record"}}),
        ),
    ] {
        let a = h.post(&format!("/access/v1/search/{kind}"), body).await;
        assert_eq!(
            (a.status, &a.body["results"]),
            (200, &json!([])),
            "C57 {kind}: {}",
            a.text
        );
    }
    h.checks.push("C57");
    let spaceship = json!({"type": "spaceship"});
    for (kind, body) in [
        (
            "subject",
            json!({"subject": spaceship, "action": read, "resource": r1}),
        ),
        (
            "resource",
            json!({"subject": alice, "action": read, "resource": spaceship}),
        ),
        (
            "action",
            json!({"subject": alice, "resource": {"type": "spaceship", "id": "enterprise"}}),
        ),
    ] {
        let a = h.post(&format!("/access/v1/search/{kind}"), body).await;
        assert_eq!(
            (a.status, &a.body["results"]),
            (200, &json!([])),
            "C58 {kind}: {}",
            a.text
        );
    }
    h.checks.push("C58");
    h.refused(
        "C59",
        "/access/v1/search/subject",
        json!({"subject": user_type, "resource": r1}),
    )
    .await;
    h.refused(
        "C60",
        "/access/v1/search/resource",
        json!({"action": read, "resource": record_type}),
    )
    .await;
    h.refused("C61", "/access/v1/search/action", json!({"subject": alice}))
        .await;
    let incomplete = json!({"subject": user_type, "action": read, "resource": record_type});
    h.refused("C62", "/access/v1/search/subject", incomplete.clone())
        .await;
    h.refused("C63", "/access/v1/search/resource", incomplete)
        .await;
    h.refused(
        "C64",
        "/access/v1/search/action",
        json!({"subject": user_type, "resource": r1}),
    )
    .await;

    // ---- Transport: C65 (the test rig is plain HTTP; TLS is the operator's, see
    // docs/authzen.md), C66 (every `send`/evaluation above checked 200 and, here, the
    // media type), C67 (C12–C19, C59–C64), C68 (C25), C69 (C9).
    let (a, headers) = h
        .post_with(
            "/access/v1/search/action",
            &[("content-type", "application/json")],
            Some(serde_json::to_vec(&json!({"subject": alice, "resource": r1})).unwrap()),
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/json",
        "C66"
    );
    h.checks.extend(["C65", "C66", "C67", "C68", "C69"]);

    let mut checks = h.checks.clone();
    checks.sort_by_key(|c| c[1..].parse::<u32>().unwrap());
    checks.dedup();
    let all: Vec<String> = (1..=71).map(|i| format!("C{i}")).collect();
    assert_eq!(checks, all, "every certification check ran");
    s.stop().await;
}
