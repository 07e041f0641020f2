//! Passwords: the policy for new passwords, argon2id hashing with OWASP's parameters, and
//! verification that refuses stored hashes whose parameters could exhaust the server.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::OnceLock;
use subtle::ConstantTimeEq;
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
/// The most work (memory in KiB × iterations) one verification may cost: four times ours.
/// Each bound above may hold while their product does not (m = 256 MiB with t = 10 took
/// 4.7 s per login), so an imported hash is also bounded by its total cost.
pub const MAX_COST: u64 = 4 * MEMORY_KIB as u64 * ITERATIONS as u64;

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

fn ours() -> Params {
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("valid argon2 params")
}

thread_local! {
    /// argon2's working memory, kept per thread and reused: allocating and freeing 19 MiB
    /// per hash fragments the allocator's arenas until a burst of logins costs hundreds of
    /// MiB. Hashing runs on a fixed set of threads (the server's hash pool), so this is
    /// bounded by threads × the largest `m` seen (≤ `MAX_MEMORY_KIB`).
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Run argon2 into `out` with this thread's reusable memory.
fn compute(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    BLOCKS.with(|cell| {
        let mut blocks = cell.borrow_mut();
        let need = params.block_count();
        if blocks.len() < need {
            blocks.resize(need, Block::default());
        }
        let result = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
            password,
            salt,
            out,
            &mut blocks[..need],
        );
        // After a larger (imported) hash, shrink back to our own size: one such login
        // must not pin its memory on this thread for good.
        let ours = ours().block_count();
        if blocks.len() > ours {
            blocks.truncate(ours);
            blocks.shrink_to_fit();
        }
        result
    })
}

/// Give this thread's argon2 memory back; for threads that hash once (bootstrap, host-side
/// commands) rather than the server's hashing pool.
pub fn release_memory() {
    BLOCKS.with(|cell| *cell.borrow_mut() = Vec::new());
}

/// Hash a password with argon2id and a fresh random salt; returns the PHC string.
pub fn hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let mut out = [0u8; 32];
    compute(
        Algorithm::Argon2id,
        Version::V0x13,
        ours(),
        password.as_bytes(),
        &salt,
        &mut out,
    )
    .expect("argon2 with valid parameters cannot fail");
    let salt = SaltString::encode_b64(&salt).expect("16-byte salt");
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ours().try_into().expect("params encode"),
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).expect("32-byte output")),
    };
    phc.to_string()
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum HashError {
    #[error("not a PHC string")]
    Format,
    #[error("algorithm must be argon2id, argon2i or argon2d")]
    Algorithm,
    #[error("argon2 parameters out of bounds (m <= {MAX_MEMORY_KIB} KiB, t <= {MAX_ITERATIONS}, p <= {MAX_PARALLELISM}, m × t <= {MAX_COST}: at most four times the cost of this server's own hashes)")]
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
        || u64::from(params.m_cost()) * u64::from(params.t_cost()) > MAX_COST
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
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|_| HashError::Algorithm)?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|_| HashError::Format)?,
        None => Version::V0x13,
    };
    let weaker = algorithm != Algorithm::Argon2id
        || params.m_cost() < MEMORY_KIB
        || params.t_cost() < ITERATIONS;
    let expected = parsed.hash.ok_or(HashError::Format)?;
    let mut salt_buf = [0u8; 64];
    let salt = parsed
        .salt
        .ok_or(HashError::Format)?
        .decode_b64(&mut salt_buf)
        .map_err(|_| HashError::Format)?;
    let mut out = vec![0u8; expected.len()];
    if compute(
        algorithm,
        version,
        params,
        password.as_bytes(),
        salt,
        &mut out,
    )
    .is_err()
    {
        return Ok(Verified::Mismatch);
    }
    if bool::from(out.as_slice().ct_eq(expected.as_bytes())) {
        Ok(Verified::Match { rehash: weaker })
    } else {
        Ok(Verified::Mismatch)
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
        use argon2::password_hash::PasswordHasher;
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
    fn hashes_from_the_reference_implementation_verify() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        // Made by the argon2 crate's own API: our buffer-reusing path must agree both ways.
        let reference = Argon2::default()
            .hash_password(b"interop passphrase", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert_eq!(
            verify("interop passphrase", &reference),
            Ok(Verified::Match { rehash: false })
        );
        assert_eq!(
            verify("interop passphrasE", &reference),
            Ok(Verified::Mismatch)
        );
        let ours = hash("interop passphrase");
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"interop passphrase", &parsed)
            .is_ok());
        // Argon2i and v0x10 hashes (older imports) verify too, and ask for a rehash.
        let old = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(8192, 3, 1, None).unwrap(),
        )
        .hash_password(b"old passphrase", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        assert_eq!(
            verify("old passphrase", &old),
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

    /// Each parameter within its bound, the product far beyond: 4.7 s per login and
    /// 256 MiB pinned per hashing thread, measured by the security review.
    #[test]
    fn imported_hashes_costing_more_than_four_times_ours_are_refused() {
        let heavy = "$argon2id$v=19$m=262144,t=10,p=1$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo";
        assert_eq!(check_hash(heavy), Err(HashError::Bounds));
        assert_eq!(verify("x", heavy), Err(HashError::Bounds));
        // Four times ours is still accepted (e.g. m = 38 MiB, t = 4).
        let four = "$argon2id$v=19$m=38912,t=4,p=1$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo";
        assert_eq!(check_hash(four), Ok(()));
    }

    #[test]
    fn a_large_verification_gives_its_memory_back() {
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::encode_b64(b"somesaltsomesalt").unwrap();
        let params = Params::new(4 * MEMORY_KIB, 2, 1, None).unwrap();
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"big passphrase", &salt)
            .unwrap()
            .to_string();
        assert_eq!(
            verify("big passphrase", &phc),
            Ok(Verified::Match { rehash: false })
        );
        let kept = BLOCKS.with(|b| b.borrow().capacity());
        assert!(kept <= ours().block_count(), "{kept} blocks kept");
    }
}
