//! Both backends' migrations bring an empty database to the latest schema, and carry the
//! same steps.

use portcullis_tests::TestServer;

portcullis_tests::both!(
    async fn an_empty_database_reaches_the_latest_schema() {
        let s = TestServer::configured().await;
        let applied = s.state.store.applied_migrations().await.unwrap();
        let known = s.state.store.known_migrations();
        assert_eq!(applied, known);
        assert!(known.len() >= 2);
        let ready = s.call("GET", "/ready", None, None).await;
        assert_eq!(
            ready.body["schema_version"],
            *known.last().unwrap(),
            "{}",
            ready.text
        );
        // Every table of the schema answers.
        s.admin_key().await;
        let k = s.admin_key().await;
        for path in ["/v1/accounts", "/v1/users", "/v1/plugins", "/v1/authorizer"] {
            assert_eq!(s.get(path, &k).await.status, 200, "{path}");
        }
        s.stop().await;
    }
);

#[test]
fn each_backend_has_the_same_migration_steps() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/store/migrations");
    let names = |b: &str| {
        let mut v: Vec<String> = std::fs::read_dir(root.join(b))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("sqlite"), names("postgres"));
}
