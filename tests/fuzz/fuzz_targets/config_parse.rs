//! Configuration loading: any file text and any `PORTCULLIS_*` value is a configuration or
//! an error message, never a panic; an accepted configuration validates.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line, if it looks like NAME=value, is an environment variable; the rest is
    // the file.
    let (env, file) = match text.split_once('\n') {
        Some((first, rest)) if first.contains('=') => {
            let (k, v) = first.split_once('=').unwrap();
            (vec![(format!("PORTCULLIS_{k}"), v.to_string())], rest)
        }
        _ => (Vec::new(), text),
    };
    match portcullis_app::fuzzing::config(file, env) {
        Ok(c) => assert!(c.auth.lockout_threshold >= 1),
        Err(e) => assert!(!e.is_empty()),
    }
});
