//! The native rules as plain Rust, read from the same `Request` a plugin is handed: the
//! peer the tests compare the WebAssembly plugin with, and the benchmark's baseline.

use portcullis_core::authz::Request;
use portcullis_core::AccountType;
use portcullis_native_rules::{decide, AccountType as A, Input, Outcome};

pub fn plain(r: &Request) -> Outcome {
    decide(&Input {
        username: &r.principal.username,
        account: &r.principal.account,
        account_type: match r.principal.account_type {
            AccountType::Admin => A::Admin,
            AccountType::User => A::User,
            AccountType::Service => A::Service,
        },
        roles: &r.principal.roles,
        action: &r.action,
        kind: &r.target.kind,
        id: &r.target.id,
        target_account: r.target.account.as_deref(),
        changes: r
            .target
            .attributes
            .iter()
            .find(|(k, _)| k == "changes")
            .map(|(_, v)| v.as_str()),
        sso_linked: r
            .target
            .attributes
            .iter()
            .any(|(k, v)| k == "sso" && v == "linked"),
        external: r.context_value("portcullis.origin") == Some("external"),
    })
}
