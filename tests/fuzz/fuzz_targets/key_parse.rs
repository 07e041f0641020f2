//! Key parsing: never panics; whatever it accepts is a well-formed key whose id it returns.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis_core::keys;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(id) = keys::parse(text) {
        assert!(text.starts_with("pcs_"), "accepted {text:?}");
        assert!(text.contains(id), "id {id:?} is not part of {text:?}");
        assert!(
            text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "accepted {text:?}"
        );
    }
    let _ = keys::digest(text);
});
