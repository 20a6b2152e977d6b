//! Read tokens: made at random, shown once, stored only as a SHA-256 hash, compared in
//! constant time.
//!
//! A token is `tly_` and 32 hex digits (128 random bits from the operating system). Its hash
//! goes into the site's document (`tokens: [{hash, created_at}]`); the token itself is printed
//! once by `tally site token` and kept nowhere. This module must not know about HTTP.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "tly_";

/// A new token, and the hash to store for it.
pub fn generate() -> Result<(String, String), getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    let token = format!("{PREFIX}{}", hex::encode(bytes));
    let hash = hash(&token);
    Ok((token, hash))
}

/// The stored form of a token: its SHA-256, in hex.
pub fn hash(token: &str) -> String {
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    hex::encode(digest)
}

/// Whether `token` hashes to `stored`, in time independent of where they differ.
pub fn matches(token_hash: &str, stored: &str) -> bool {
    token_hash.len() == stored.len() && bool::from(token_hash.as_bytes().ct_eq(stored.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, ha) = generate().unwrap();
        let (b, hb) = generate().unwrap();
        assert_ne!(ha, hb);
        assert_ne!(a, b);
        assert!(a.starts_with("tly_") && a.len() == 36);
        assert_eq!(ha, hash(&a));
        assert!(!ha.contains(&a[4..]));
        assert!(matches(&hash(&a), &ha));
        assert!(!matches(&hash(&b), &ha));
        assert!(!matches("", &ha));
    }
}
