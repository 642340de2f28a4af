//! Argon2id password hashes (PHC strings): made, checked and verified.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;

/// A well-formed argon2id PHC string, as `ADMIN_PASSWORD_HASH` must be.
pub fn check_phc(phc: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(phc).map_err(|e| format!("not a PHC string: {e}"))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!("expected an argon2id hash, got {}", parsed.algorithm));
    }
    Ok(())
}

/// Argon2id with the crate's defaults: m=19 MiB, t=2, p=1 (OWASP's minimum).
pub fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash password: {e}"))
}

pub fn verify_phc(phc: &str, candidate: &str) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|parsed| Argon2::default().verify_password(candidate.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_password() {
        let phc = hash("correct horse").unwrap();
        assert!(check_phc(&phc).is_ok());
        assert!(verify_phc(&phc, "correct horse"));
        assert!(!verify_phc(&phc, "battery staple"));
        assert!(check_phc("$2b$12$notargon").is_err());
    }
}
