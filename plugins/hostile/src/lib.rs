//! A test fixture, not an example: each `mode` in the settings is one way a plugin can go
//! wrong, so the host's sandbox can be shown to turn it into a deny.
//!
//! Settings: `{"mode": "...", "deny_actions": ["..."]}` with mode one of
//! `allow` (default: allow everything except `deny_actions`), `deny` (deny everything),
//! `loop`, `alloc` (one allocation past any cap), `alloc-steps` (1 MiB at a time), `trap`, `stack`, `garbage` (a malformed answer), `log-flood`,
//! `fail-configure`, `fail-configure-huge` (a 20 MB error with terminal escapes), `exit`
//! (calls `exit(3)`), `escape-reasons` (reasons with terminal escapes and a newline), `ttl` (allow with ttl-ms 60000; the reason counts calls and events).
//! `"misbehave_on": ["accounts.create"]` limits the mode to those actions.

// The export glue that `generate!` writes takes one argument per flattened field of a
// request; that is the canonical ABI, not a design choice of ours.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "authorizer", path: "../../wit/0.1.0" });

use portcullis::authorizer::host::{log, Level};
use serde::Deserialize;
use std::cell::RefCell;

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    deny_actions: Vec<String>,
    /// When given, the mode applies only to these actions; every other action is allowed.
    #[serde(default)]
    misbehave_on: Vec<String>,
}

thread_local! {
    static SETTINGS: RefCell<Settings> = RefCell::new(Settings::default());
    static CALLS: RefCell<u64> = const { RefCell::new(0) };
    static EVENTS: RefCell<u64> = const { RefCell::new(0) };
}

#[inline(never)]
fn recurse(n: u64, sink: &mut [u64; 64]) -> u64 {
    sink[(n % 64) as usize] = n;
    if n == u64::MAX {
        return 0;
    }
    recurse(n + 1, sink) + sink[(n % 7) as usize]
}

struct Hostile;

impl Guest for Hostile {
    fn configure(settings: String) -> Result<(), String> {
        let s: Settings =
            serde_json::from_str(&settings).map_err(|e| format!("hostile settings: {e}"))?;
        if s.mode == "fail-configure" {
            return Err("this plugin refuses every configuration (fail-configure)".into());
        }
        if s.mode == "fail-configure-huge" {
            // 20 MB of error with terminal escapes and a forged log line in it.
            let mut e = String::from("\u{1b}[2J\r\nINFO portcullis: forged line ");
            e.push_str(&"x".repeat(20 << 20));
            return Err(e);
        }
        SETTINGS.with(|c| *c.borrow_mut() = s);
        Ok(())
    }

    fn authorize(r: Request) -> Decision {
        let s = SETTINGS.with(|c| c.borrow().clone());
        let n = CALLS.with(|c| {
            *c.borrow_mut() += 1;
            *c.borrow()
        });
        let mode = if s.misbehave_on.is_empty() || s.misbehave_on.iter().any(|a| a == &r.action) {
            s.mode.as_str()
        } else {
            "allow"
        };
        match mode {
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "alloc" => {
                // One request for more than any memory cap the host allows (1 GiB), so
                // the very first `memory.grow` meets the limiter: the verdict is the memory
                // cap whatever the deadline and the machine's load.
                let hoard: Vec<u8> = Vec::with_capacity(1536 << 20);
                std::hint::black_box(&hoard);
                Decision {
                    allowed: true,
                    reasons: vec!["the memory cap did not hold".into()],
                    ttl_ms: 0,
                }
            }
            "alloc-steps" => {
                // Grows 1 MiB at a time: the cap must stop a plugin that never asks for
                // much at once, too (tested with a deadline far beyond its run time).
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => panic!("hostile plugin traps on purpose"),
            "exit" => std::process::exit(3),
            "escape-reasons" => Decision {
                allowed: false,
                reasons: vec![
                    "\u{1b}[2J\u{1b}[31mcleared your screen".into(),
                    "fine\nINFO portcullis: forged log line".into(),
                ],
                ttl_ms: 0,
            },
            "stack" => {
                let mut sink = [0u64; 64];
                let v = recurse(0, &mut sink);
                Decision {
                    allowed: v == 42,
                    reasons: vec![],
                    ttl_ms: 0,
                }
            }
            "garbage" => Decision {
                allowed: true,
                reasons: (0..1000).map(|i| format!("reason {i}")).collect(),
                ttl_ms: 0,
            },
            "log-flood" => {
                for i in 0..10_000 {
                    log(Level::Info, &format!("line {i} {}", "x".repeat(5000)));
                }
                Decision {
                    allowed: true,
                    reasons: vec!["logged a lot".into()],
                    ttl_ms: 0,
                }
            }
            "deny" => Decision {
                allowed: false,
                reasons: vec!["hostile plugin denies everything".into()],
                ttl_ms: 0,
            },
            "ttl" => {
                let events = EVENTS.with(|e| *e.borrow());
                Decision {
                    allowed: true,
                    reasons: vec![format!("call {n} events {events}")],
                    ttl_ms: 60_000,
                }
            }
            _ => {
                if s.deny_actions.iter().any(|a| a == &r.action) {
                    Decision {
                        allowed: false,
                        reasons: vec![format!("hostile plugin denies {}", r.action)],
                        ttl_ms: 0,
                    }
                } else {
                    Decision {
                        allowed: true,
                        reasons: vec!["hostile plugin allows".into()],
                        ttl_ms: 0,
                    }
                }
            }
        }
    }

    fn on_event(event: Event) -> Result<(), String> {
        EVENTS.with(|e| *e.borrow_mut() += 1);
        match event {
            Event::AccountCreated(name) if name == "refused" => {
                Err("hostile plugin refuses this event".into())
            }
            _ => Ok(()),
        }
    }
}

export!(Hostile);
