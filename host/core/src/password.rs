//! Passwords: the policy for new passwords, argon2id hashing with OWASP's parameters, and
//! verification that refuses stored hashes whose parameters could exhaust the server.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::HashSet;
use std::sync::OnceLock;
use thiserror::Error;

/// OWASP's minimum for argon2id: m = 19 MiB, t = 2, p = 1.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

/// Upper bounds for any hash we agree to verify (stored or imported): beyond these a
/// single verification could take seconds or hundreds of MiB.
pub const MAX_MEMORY_KIB: u32 = 256 * 1024;
pub const MAX_ITERATIONS: u32 = 10;
pub const MAX_PARALLELISM: u32 = 16;

pub const MIN_CHARS: usize = 8;
pub const MAX_CHARS: usize = 1024;

static COMMON: &str = include_str!("common-passwords.txt");

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON.lines().filter(|l| !l.is_empty()).collect())
}

/// How many passwords the built-in list refuses.
pub fn common_password_count() -> usize {
    common_passwords().len()
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("must be at least {MIN_CHARS} characters")]
    TooShort,
    #[error("must be at most {MAX_CHARS} characters")]
    TooLong,
    #[error("is too common; choose a password that is not on lists of leaked passwords")]
    Common,
}

/// The policy for a new password: 8–1024 Unicode code points, not on the common list
/// (compared case-insensitively). No composition rules (NIST SP 800-63B).
pub fn check_policy(password: &str) -> Result<(), PolicyError> {
    let n = password.chars().count();
    if n < MIN_CHARS {
        return Err(PolicyError::TooShort);
    }
    if n > MAX_CHARS {
        return Err(PolicyError::TooLong);
    }
    if common_passwords().contains(password.to_lowercase().as_str()) {
        return Err(PolicyError::Common);
    }
    Ok(())
}

fn hasher() -> Argon2<'static> {
    let params =
        Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("valid argon2 params");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hash a password with argon2id and a fresh random salt; returns the PHC string.
pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid parameters cannot fail")
        .to_string()
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum HashError {
    #[error("not a PHC string")]
    Format,
    #[error("algorithm must be argon2id, argon2i or argon2d")]
    Algorithm,
    #[error("argon2 parameters out of bounds (m <= {MAX_MEMORY_KIB} KiB, t <= {MAX_ITERATIONS}, p <= {MAX_PARALLELISM})")]
    Bounds,
}

/// Check that a stored or imported PHC string is an argon2 hash we are willing to verify.
pub fn check_hash(phc: &str) -> Result<(), HashError> {
    parse_bounded(phc).map(|_| ())
}

fn parse_bounded(phc: &str) -> Result<(PasswordHash<'_>, Params), HashError> {
    if phc.len() > 512 {
        return Err(HashError::Format);
    }
    let parsed = PasswordHash::new(phc).map_err(|_| HashError::Format)?;
    Algorithm::try_from(parsed.algorithm).map_err(|_| HashError::Algorithm)?;
    let params = Params::try_from(&parsed).map_err(|_| HashError::Format)?;
    if params.m_cost() > MAX_MEMORY_KIB
        || params.t_cost() > MAX_ITERATIONS
        || params.p_cost() > MAX_PARALLELISM
    {
        return Err(HashError::Bounds);
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err(HashError::Format);
    }
    Ok((parsed, params))
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// The password matches; `rehash` says the stored parameters are weaker than ours and
    /// the caller should store a fresh `hash(password)`.
    Match {
        rehash: bool,
    },
    Mismatch,
}

/// Verify `password` against a stored PHC string. A hash outside the bounds is an error,
/// never a verification.
pub fn verify(password: &str, phc: &str) -> Result<Verified, HashError> {
    let (parsed, params) = parse_bounded(phc)?;
    let weaker = parsed.algorithm.as_str() != "argon2id"
        || params.m_cost() < MEMORY_KIB
        || params.t_cost() < ITERATIONS;
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(Verified::Match { rehash: weaker }),
        Err(_) => Ok(Verified::Mismatch),
    }
}

/// Spend the same time a real verification would, for a user that does not exist or has
/// no password, so that timing does not tell which usernames exist.
pub fn dummy_verify(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash("portcullis-dummy-password-for-timing"));
    let _ = verify(password, phc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert_eq!(check_policy("short"), Err(PolicyError::TooShort));
        assert_eq!(check_policy("password"), Err(PolicyError::Common));
        assert_eq!(check_policy("PassWord1"), Err(PolicyError::Common));
        assert!(check_policy("correct horse battery").is_ok());
        // Counted in code points, not bytes: 8 emoji are 32 bytes but 8 characters.
        assert!(check_policy("🦀🦀🦀🦀🦀🦀🦀🦀").is_ok());
        assert_eq!(check_policy("🦀🦀🦀🦀🦀🦀🦀"), Err(PolicyError::TooShort));
        assert!(check_policy(&"x".repeat(1024)).is_ok());
        assert_eq!(check_policy(&"x".repeat(1025)), Err(PolicyError::TooLong));
        assert!(common_password_count() >= 1000);
    }

    #[test]
    fn hash_and_verify() {
        let h = hash("a fine passphrase");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(
            verify("a fine passphrase", &h),
            Ok(Verified::Match { rehash: false })
        );
        assert_eq!(verify("a fine passphrasE", &h), Ok(Verified::Mismatch));
        // Never truncated: a 1024-character password differs from its 1023-character prefix.
        let long = "y".repeat(1024);
        let h = hash(&long);
        assert_eq!(verify(&long[..1023], &h), Ok(Verified::Mismatch));
    }

    #[test]
    fn weaker_hash_asks_for_rehash() {
        let params = Params::new(8 * 1024, 1, 1, None).unwrap();
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"a fine passphrase", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert_eq!(
            verify("a fine passphrase", &weak),
            Ok(Verified::Match { rehash: true })
        );
    }

    #[test]
    fn absurd_parameters_are_refused_without_hashing() {
        let absurd = "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo";
        assert_eq!(verify("x", absurd), Err(HashError::Bounds));
        let slow = "$argon2id$v=19$m=19456,t=1000,p=1$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo";
        assert_eq!(check_hash(slow), Err(HashError::Bounds));
        assert_eq!(
            check_hash("$2b$12$abcdefghijklmnopqrstuv"),
            Err(HashError::Format)
        );
        assert_eq!(check_hash("plaintext"), Err(HashError::Format));
    }
}
