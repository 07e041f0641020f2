//! Case tables: a plugin, its settings, and a list of (request, expected decision). The
//! same format drives `portcullis plugins check --cases FILE` and the test that every
//! plugin in the repository passes its own table.
//!
//! ```json
//! {
//!   "settings": {},
//!   "cases": [{
//!     "name": "admins may create accounts",
//!     "principal": {"username": "root", "account": "admin", "account_type": "admin",
//!                   "roles": [], "attributes": {}},
//!     "action": "accounts.create",
//!     "target": {"kind": "account", "id": "acme", "account": "acme", "attributes": {}},
//!     "context": {"portcullis.origin": "management"},
//!     "expect": "allow",
//!     "reason": "optional substring of one of the reasons"
//!   }]
//! }
//! ```
//!
//! `context` defaults to `{"portcullis.origin": "management"}` when it does not name an
//! origin.

use crate::Plugin;
use portcullis_core::authz::{self, Decision, CONTEXT_ORIGIN};
use portcullis_core::AccountType;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    #[serde(default)]
    pub settings: Option<serde_json::Value>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub principal: PrincipalSpec,
    pub action: String,
    pub target: TargetSpec,
    #[serde(default)]
    pub context: BTreeMap<String, String>,
    pub expect: Expect,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalSpec {
    pub username: String,
    pub account: String,
    pub account_type: AccountType,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub kind: String,
    pub id: String,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Allow,
    Deny,
}

impl Case {
    pub fn request(&self) -> authz::Request {
        let mut context: Vec<(String, String)> = self
            .context
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !self.context.contains_key(CONTEXT_ORIGIN) {
            context.push((CONTEXT_ORIGIN.into(), "management".into()));
        }
        authz::Request {
            principal: authz::Principal {
                username: self.principal.username.clone(),
                account: self.principal.account.clone(),
                account_type: self.principal.account_type,
                roles: self.principal.roles.clone(),
                attributes: self
                    .principal
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                email: self.principal.email.clone(),
            },
            action: self.action.clone(),
            target: authz::Target {
                kind: self.target.kind.clone(),
                id: self.target.id.clone(),
                account: self.target.account.clone(),
                attributes: self
                    .target
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            },
            context,
        }
    }
}

/// The result of one case.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub expected: Expect,
    pub decision: Decision,
    pub passed: bool,
    /// Why it failed, in one line.
    pub problem: Option<String>,
}

/// Run every case against `plugin`.
pub async fn run(plugin: &Plugin, cases: &[Case]) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(cases.len());
    for case in cases {
        let decision = plugin.decide(&case.request()).await;
        outcomes.push({
            let got = if decision.allowed {
                Expect::Allow
            } else {
                Expect::Deny
            };
            let mut problem = None;
            if got != case.expect {
                problem = Some(format!("expected {:?}, got {:?}", case.expect, got).to_lowercase());
            } else if let Some(want) = &case.reason {
                if !decision.reasons.iter().any(|r| r.contains(want.as_str())) {
                    problem = Some(format!("no reason contains {want:?}"));
                }
            }
            Outcome {
                name: case.name.clone(),
                expected: case.expect,
                passed: problem.is_none(),
                decision,
                problem,
            }
        });
    }
    outcomes
}
