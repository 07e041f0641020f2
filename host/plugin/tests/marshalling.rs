//! Property: any request — arbitrary Unicode in every string, empty and long lists — crosses
//! the component boundary intact: the native plugin's answer equals the plain rules'.

use portcullis_core::authz::{Principal, Request, Target};
use portcullis_core::AccountType;
use portcullis_plugin::{Limits, Runtime};
use proptest::prelude::*;

#[path = "common/plain.rs"]
mod plain;

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec((".{0,12}", ".{0,24}"), 0..6)
}

fn request() -> impl Strategy<Value = Request> {
    (
        (
            ".{0,16}",
            ".{0,16}",
            prop_oneof![
                Just(AccountType::Admin),
                Just(AccountType::User),
                Just(AccountType::Service)
            ],
        ),
        proptest::collection::vec(".{0,20}", 0..5),
        pairs(),
        (
            ".{0,20}",
            ".{0,10}",
            ".{0,16}",
            proptest::option::of(".{0,16}"),
        ),
        pairs(),
        pairs(),
        any::<bool>(),
    )
        .prop_map(
            |(
                (username, account, account_type),
                roles,
                attributes,
                (action, kind, id, target_account),
                target_attributes,
                mut context,
                external,
            )| {
                context.push((
                    "portcullis.origin".into(),
                    if external { "external" } else { "management" }.into(),
                ));
                Request {
                    principal: std::sync::Arc::new(Principal {
                        username,
                        account,
                        account_type,
                        roles,
                        attributes,
                        email: None,
                    }),
                    action,
                    target: Target {
                        kind,
                        id,
                        account: target_account,
                        attributes: target_attributes,
                    },
                    context,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    fn requests_cross_the_boundary_intact(r in request()) {
        thread_local! {
            static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            static PLUGIN: portcullis_plugin::Plugin = RT.with(|rt| rt.block_on(async {
                // A deadline no decision reaches on a loaded machine: this test is about
                // marshalling, not speed.
                let limits = Limits { timeout: std::time::Duration::from_secs(30), ..Limits::default() };
                Runtime::new().unwrap().load("builtin:native", portcullis_plugin::builtin("native").unwrap(), "{}", limits).await.unwrap()
            }));
        }
        let d = PLUGIN.with(|p| RT.with(|rt| rt.block_on(p.decide(&r))));
        let expected = plain::plain(&r);
        prop_assert_eq!(d.allowed, expected.allowed);
        // Reasons come back escaped (plugin text never reaches a log or terminal raw).
        prop_assert_eq!(&d.reasons[0], &portcullis_plugin::plugin_text(&expected.reason));
    }
}
