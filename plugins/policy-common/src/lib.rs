//! What the policy-language plugins (`builtin:cedar`, `builtin:rego`) share.
#![no_std]
extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Reasons the host keeps (more make an answer malformed, a deny).
pub const MAX_REASONS: usize = 16;
/// The longest reason a plugin sends (the host's limit is 1024 bytes; `…` fits after).
pub const MAX_REASON_BYTES: usize = 1000;

/// At most [`MAX_REASONS`] reasons (the last one says how many more there were) of at
/// most [`MAX_REASON_BYTES`] bytes each (cut at a character boundary, marked `…`).
pub fn bounded(mut reasons: Vec<String>) -> Vec<String> {
    if reasons.len() > MAX_REASONS {
        let more = reasons.len() - (MAX_REASONS - 1);
        reasons.truncate(MAX_REASONS - 1);
        reasons.push(format!("… and {more} more"));
    }
    for r in &mut reasons {
        if r.len() > MAX_REASON_BYTES {
            let mut cut = MAX_REASON_BYTES;
            while !r.is_char_boundary(cut) {
                cut -= 1;
            }
            r.truncate(cut);
            r.push('…');
        }
    }
    reasons
}
