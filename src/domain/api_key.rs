//! API keys: `sk-og-` + 32 random base62 characters + a 6-character checksum.
//!
//! The checksum lets a typo be refused without touching the database and lets
//! secret scanners recognise a leaked key. Only the SHA-256 of a key is stored.

use rand::Rng;
use sha2::{Digest, Sha256};
use std::fmt;

pub const PREFIX: &str = "sk-og-";
const SECRET_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A well-formed key in plaintext. Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyFormatError {
    #[error("API key does not start with sk-og-")]
    Prefix,
    #[error("API key has the wrong length")]
    Length,
    #[error("API key contains characters that are not base62")]
    Charset,
    #[error("API key checksum does not match (mistyped key?)")]
    Checksum,
}

impl ApiKey {
    pub fn generate() -> Self {
        let mut rng = rand::thread_rng();
        let secret: String =
            (0..SECRET_LEN).map(|_| BASE62[rng.gen_range(0..BASE62.len())] as char).collect();
        let checksum = checksum(&secret);
        ApiKey(format!("{PREFIX}{secret}{checksum}"))
    }

    pub fn parse(candidate: &str) -> Result<Self, KeyFormatError> {
        let body = candidate.strip_prefix(PREFIX).ok_or(KeyFormatError::Prefix)?;
        if body.len() != SECRET_LEN + CHECKSUM_LEN {
            return Err(KeyFormatError::Length);
        }
        if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(KeyFormatError::Charset);
        }
        let (secret, sum) = body.split_at(SECRET_LEN);
        if checksum(secret) != sum {
            return Err(KeyFormatError::Checksum);
        }
        Ok(ApiKey(candidate.to_owned()))
    }

    /// Hex SHA-256 of the whole key: what the database stores and looks up.
    pub fn hash(&self) -> String {
        hex_sha256(self.0.as_bytes())
    }

    /// `sk-og-…` and the last four characters: enough to tell keys apart.
    pub fn hint(&self) -> String {
        format!("{PREFIX}…{}", &self.0[self.0.len() - 4..])
    }

    /// The plaintext, for the one response that hands it out.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({})", self.hint())
    }
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        use fmt::Write;
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn checksum(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_parses_and_has_the_documented_shape() {
        let key = ApiKey::generate();
        assert!(key.expose().starts_with("sk-og-"));
        assert_eq!(key.expose().len(), 6 + 32 + 6);
        assert_eq!(ApiKey::parse(key.expose()), Ok(key.clone()));
        assert_eq!(key.hash().len(), 64);
        assert!(key.hint().starts_with("sk-og-…"));
    }

    #[test]
    fn a_single_changed_character_fails_the_checksum() {
        let key = ApiKey::generate();
        let mut chars: Vec<char> = key.expose().chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert_eq!(ApiKey::parse(&typo), Err(KeyFormatError::Checksum));
    }

    #[test]
    fn malformed_keys_are_refused_for_the_right_reason() {
        assert_eq!(ApiKey::parse("sk-abc"), Err(KeyFormatError::Prefix));
        assert_eq!(ApiKey::parse("sk-og-abc"), Err(KeyFormatError::Length));
        let bad = format!("sk-og-{}", "!".repeat(38));
        assert_eq!(ApiKey::parse(&bad), Err(KeyFormatError::Charset));
    }

    #[test]
    fn debug_output_does_not_reveal_the_secret() {
        let key = ApiKey::generate();
        assert!(!format!("{key:?}").contains(&key.expose()[6..30]));
    }
}
