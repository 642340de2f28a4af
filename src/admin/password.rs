//! The admin password: argon2id at rest, checked in constant time, with the
//! hashing work bounded so a login flood cannot starve the proxy.

pub use crate::domain::password::hash;
use crate::domain::password::verify_phc;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// At most this many argon2 computations at once, each on a blocking thread.
const HASHING_SLOTS: usize = 2;

pub struct AdminPassword {
    /// Set when `ADMIN_PASSWORD` is given in plaintext: compared by digest.
    plaintext_digest: Option<[u8; 32]>,
    phc: RwLock<Option<String>>,
    /// Digests of passwords that verified against the current hash, so that
    /// scripts calling the JSON API do not pay for argon2 on every request.
    verified: Mutex<HashSet<[u8; 32]>>,
    slots: Arc<Semaphore>,
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl AdminPassword {
    pub fn plaintext(password: &str) -> Self {
        AdminPassword { plaintext_digest: Some(digest(password)), ..AdminPassword::hashed(None) }
    }

    pub fn hashed(phc: Option<String>) -> Self {
        AdminPassword {
            plaintext_digest: None,
            phc: RwLock::new(phc),
            verified: Mutex::new(HashSet::new()),
            slots: Arc::new(Semaphore::new(HASHING_SLOTS)),
        }
    }

    /// A new hash, from a password change in the console.
    pub fn set_hash(&self, phc: String) {
        *self.phc.write().unwrap_or_else(|e| e.into_inner()) = Some(phc);
        self.verified.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The hash as another replica stored it; a no-op when it is the same.
    pub fn replace_if_changed(&self, phc: String) {
        let same = self.phc.read().unwrap_or_else(|e| e.into_inner()).as_deref() == Some(phc.as_str());
        if !same {
            self.set_hash(phc);
        }
    }

    /// Already proven right (or the plaintext from the environment): no
    /// hashing, and no guess spent. Never true for a wrong password.
    pub fn is_known(&self, candidate: &str) -> bool {
        let candidate_digest = digest(candidate);
        if let Some(expected) = &self.plaintext_digest {
            return bool::from(expected.ct_eq(&candidate_digest));
        }
        self.verified.lock().unwrap_or_else(|e| e.into_inner()).contains(&candidate_digest)
    }

    pub async fn verify(&self, candidate: &str) -> bool {
        let candidate_digest = digest(candidate);
        if let Some(expected) = &self.plaintext_digest {
            return bool::from(expected.ct_eq(&candidate_digest));
        }
        // No stored password is longer (the console refuses one): a megabyte
        // guess is wrong without feeding it to argon2.
        if candidate.len() > crate::domain::lengths::PASSWORD {
            return false;
        }
        if self.verified.lock().unwrap_or_else(|e| e.into_inner()).contains(&candidate_digest) {
            return true;
        }
        let Some(phc) = self.phc.read().unwrap_or_else(|e| e.into_inner()).clone() else {
            return false;
        };
        let Ok(_slot) = self.slots.clone().acquire_owned().await else { return false };
        let candidate = candidate.to_owned();
        let ok = tokio::task::spawn_blocking(move || verify_phc(&phc, &candidate)).await.unwrap_or(false);
        if ok {
            self.verified.lock().unwrap_or_else(|e| e.into_inner()).insert(candidate_digest);
        }
        ok
    }
}
