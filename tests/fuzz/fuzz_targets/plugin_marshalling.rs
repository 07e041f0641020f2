//! Plugin request marshalling: any request (arbitrary Unicode, any sizes) crosses the
//! component boundary intact — the native plugin's answer equals the plain rules' on the
//! same request, and a call never fails.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis_core::authz::{Principal, Request, Target};
use portcullis_core::AccountType;
use portcullis_plugin::{Limits, Plugin, Runtime};
use std::sync::OnceLock;

#[path = "../../../host/plugin/tests/common/plain.rs"]
mod common;

struct Fixture {
    rt: tokio::runtime::Runtime,
    plugin: Plugin,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let runtime = Runtime::new().unwrap();
        let native = portcullis_plugin::builtin("native").unwrap();
        // A deadline no decision reaches on a loaded machine: a timeout would be a deny
        // the plain rules never give, and this target is about marshalling, not speed.
        let limits = Limits {
            timeout: std::time::Duration::from_secs(30),
            ..Limits::default()
        };
        let plugin = rt
            .block_on(runtime.load("builtin:native", native, "{}", limits))
            .unwrap();
        Fixture { rt, plugin }
    })
}

/// Strings drawn from the input: NUL-separated pieces, lossily decoded.
fn pieces(data: &[u8]) -> impl Iterator<Item = String> + '_ {
    data.split(|b| *b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .chain(std::iter::repeat_with(String::new))
}

fuzz_target!(|data: &[u8]| {
    let kind = data.first().copied().unwrap_or(0);
    let mut p = pieces(data.get(1..).unwrap_or_default());
    let mut next = || p.next().unwrap();
    let account_type = match kind % 3 {
        0 => AccountType::Admin,
        1 => AccountType::User,
        _ => AccountType::Service,
    };
    let principal = Principal {
        username: next(),
        account: next(),
        account_type,
        roles: (0..(kind / 3 % 4)).map(|_| next()).collect(),
        attributes: (0..(kind / 12 % 3)).map(|_| (next(), next())).collect(),
        email: (kind & 0x40 != 0).then(&mut next),
    };
    let account = (kind & 0x80 != 0).then(&mut next);
    let mut target = Target::new(&next(), &next(), account.as_deref());
    target.attributes = (0..(kind / 36 % 3)).map(|_| (next(), next())).collect();
    let request = Request {
        principal: std::sync::Arc::new(principal),
        action: next(),
        target,
        context: vec![(next(), next())],
    };
    let f = fixture();
    let decision = f.rt.block_on(f.plugin.decide(&request));
    assert_eq!(
        decision.allowed,
        common::plain(&request).allowed,
        "plugin and plain rules disagree on {request:?}: {decision:?}"
    );
});
