//! API keys: `pcs_<id>_<secret><checksum>`.
//!
//! - `id`: 12 base62 characters, visible, the lookup handle (stored in clear);
//! - `secret`: 32 base62 characters (≈190 random bits);
//! - `checksum`: CRC32 of everything before it, 6 base62 characters, so a mistyped or
//!   truncated key is refused before any database lookup.
//!
//! Only the SHA-256 digest of the whole key is stored. SHA-256 (not a password hash) is
//! enough because the secret has far more entropy than any brute force can cover.

use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const PREFIX: &str = "pcs_";
pub const ID_LEN: usize = 12;
pub const SECRET_LEN: usize = 32;
pub const CHECKSUM_LEN: usize = 6;
/// Total length of a well-formed key.
pub const KEY_LEN: usize = PREFIX.len() + ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn base62_fixed(mut n: u64, len: usize) -> String {
    let mut out = vec![b'0'; len];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out).expect("ascii")
}

fn checksum(body: &str) -> String {
    base62_fixed(crc32fast::hash(body.as_bytes()) as u64, CHECKSUM_LEN)
}

/// A freshly generated key. `secret` is the full key to hand to the client once.
pub struct NewKey {
    pub id: String,
    pub secret: String,
    pub digest: String,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

pub fn random_token(len: usize) -> String {
    Alphanumeric.sample_string(&mut OsRng, len)
}

pub fn generate() -> NewKey {
    let id = random_token(ID_LEN);
    let body = format!("{PREFIX}{id}_{}", random_token(SECRET_LEN));
    let secret = format!("{body}{}", checksum(&body));
    let digest = digest(&secret);
    NewKey { id, secret, digest }
}

/// SHA-256 of a secret, lowercase hex.
pub fn digest(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

/// SHA-256 of any bytes (a key, a plugin component), lowercase hex: the one digest the host
/// stores and compares.
pub fn sha256_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(2 * d.len());
    for b in d {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// Constant-time comparison of two digests.
pub fn digest_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Check a presented key's shape and checksum; returns its id. No IO.
pub fn parse(key: &str) -> Option<&str> {
    if key.len() != KEY_LEN || !key.is_ascii() {
        return None;
    }
    let rest = key.strip_prefix(PREFIX)?;
    let (id, tail) = rest.split_at(ID_LEN);
    let tail = tail.strip_prefix('_')?;
    if !id.bytes().all(|b| b.is_ascii_alphanumeric())
        || !tail.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return None;
    }
    let (body, sum) = key.split_at(KEY_LEN - CHECKSUM_LEN);
    if checksum(body) != sum {
        return None;
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse() {
        for _ in 0..100 {
            let k = generate();
            assert_eq!(k.secret.len(), KEY_LEN);
            assert_eq!(parse(&k.secret), Some(k.id.as_str()));
            assert!(digest_eq(&digest(&k.secret), &k.digest));
            assert!(!format!("{k:?}").contains(&k.secret));
        }
    }

    #[test]
    fn malformed_keys_are_refused() {
        let k = generate().secret;
        // Flip one character of the secret: the checksum no longer matches.
        let mut bad = k.clone().into_bytes();
        let i = PREFIX.len() + ID_LEN + 3;
        bad[i] = if bad[i] == b'a' { b'b' } else { b'a' };
        assert_eq!(parse(std::str::from_utf8(&bad).unwrap()), None);
        assert_eq!(parse(&k[..k.len() - 1]), None);
        assert_eq!(parse(&format!("{k}x")), None);
        assert_eq!(parse(&k.replacen("pcs_", "pcx_", 1)), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse(&"é".repeat(KEY_LEN / 2)), None);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Key parsing never panics, whatever it is handed.
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = parse(&s);
        }

        /// Changing any one character of a valid key makes it invalid (the CRC32 catches
        /// every single-character change), so a typo never reaches the database.
        #[test]
        fn any_single_character_change_is_refused(pos in 0usize..KEY_LEN, c in proptest::char::range('!', '~')) {
            let key = generate().secret;
            let mut bytes = key.clone().into_bytes();
            prop_assume!(bytes[pos] != c as u8);
            bytes[pos] = c as u8;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(parse(&changed), None);
        }

        /// Strings shaped like keys (right prefix, lengths and alphabet) with random content
        /// pass only with a matching checksum.
        #[test]
        fn random_key_shaped_strings_are_refused(id in "[A-Za-z0-9]{12}", secret in "[A-Za-z0-9]{32}", sum in "[A-Za-z0-9]{6}") {
            let s = format!("{PREFIX}{id}_{secret}{sum}");
            let body = &s[..KEY_LEN - CHECKSUM_LEN];
            prop_assert_eq!(parse(&s).is_some(), checksum(body) == sum);
        }
    }
}
