//! `GET /openapi.json` tells the truth about the router: every routed method and path is
//! documented, every documented operation is routed, and only the public endpoints are
//! documented without a security requirement. (Schemathesis, `scripts/schemathesis.sh`,
//! checks every response against the document.)

use portcullis_tests::TestServer;
use serde_json::Value;
use std::collections::BTreeSet;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// A concrete path for a template: each `{param}` becomes `probe`.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|seg| if seg.starts_with('{') { "probe" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_is_routed() {
    let s = TestServer::start_with(|_| {}).await;
    let r = s
        .http
        .get(format!("{}/openapi.json", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| METHODS.contains(&m.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();

    // Ask the router itself: a method it does not route on a known path answers 405.
    let mut routed = BTreeSet::new();
    for template in portcullis_server::routes::route_paths(&s.state) {
        for method in METHODS {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = s
                .http
                .request(m, format!("{}{}", s.base, concrete(template)))
                .send()
                .await
                .unwrap();
            if r.status() != 405 {
                // A catch-all `{*rest}` is the parameter `{rest}` in OpenAPI.
                routed.insert((method.to_string(), template.replace("{*", "{")));
            }
        }
    }
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routed but missing from /openapi.json: {undocumented:?}; documented but not routed: {unrouted:?}"
    );
    assert!(routed.len() >= 40, "only {} operations found", routed.len());

    // Security: public operations say so explicitly; everything else needs the bearer key
    // and documents 401 and 403.
    let public: BTreeSet<&str> = [
        "/health",
        "/ready",
        "/metrics",
        "/openapi.json",
        "/admin/retrieve-iact",
        "/admin/initial-admin-user",
        "/v1/login",
        "/v1/login/oidc",
        "/.well-known/authzen-configuration",
        "/.well-known/authzen-configuration/policies/{name}",
    ]
    .into();
    assert!(doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer");
    for (method, path) in &documented {
        let op = &doc["paths"][path][method];
        let security = op["security"].as_array().expect("explicit security");
        if public.contains(path.as_str()) {
            assert!(security.is_empty(), "{method} {path} should be public");
        } else if path.starts_with("/v1/forward-auth") {
            // The end user's key is optional there (a session cookie instead), and a check
            // from an untrusted peer is refused before any key is read.
            assert_eq!(
                security,
                &vec![serde_json::json!({}), serde_json::json!({"bearer": []})],
                "{method} {path}"
            );
        } else {
            assert_eq!(
                security,
                &vec![serde_json::json!({"bearer": []})],
                "{method} {path}"
            );
            for status in ["401", "403"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path} does not document {status}"
                );
            }
        }
        assert!(
            op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with('2')),
            "{method} {path} documents no success"
        );
    }
}
