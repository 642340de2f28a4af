//! A short-lived cache of key lookups by hash.
//!
//! Admission re-checks the key inside its transaction (active, expiry, hash), so
//! the cache only decides authentication and scopes. A change made through the
//! admin clears it at once in this process; other processes see it within the TTL.

use crate::store::KeyRecord;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Bounds memory when someone sends many well-formed but unknown keys.
const MAX_ENTRIES: usize = 10_000;

/// When a lookup was made, and what it found (`None`: no such key).
type Entry = (Instant, Option<Arc<KeyRecord>>);

pub struct KeyCache {
    ttl: Duration,
    entries: RwLock<HashMap<String, Entry>>,
    /// When each public key's `last_used_at` was last written by this process.
    marked: Mutex<HashMap<String, Instant>>,
}

/// How often a public key's `last_used_at` is written, at most.
const MARK_EVERY: Duration = Duration::from_secs(60);

/// The cache entry of a public key (the base64 of its `.pub` line). Key
/// hashes are hex, so the prefix keeps the two apart.
pub fn public_key_entry(base64: &str) -> String {
    format!("pk:{base64}")
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        KeyCache { ttl, entries: RwLock::new(HashMap::new()), marked: Mutex::new(HashMap::new()) }
    }

    /// True when `last_used_at` of this public key is due to be written
    /// (once a minute per public key and process), and notes that it is.
    pub fn use_due(&self, public_key: &str) -> bool {
        let mut marked = self.marked.lock().unwrap_or_else(|e| e.into_inner());
        if marked.get(public_key).is_some_and(|at| at.elapsed() < MARK_EVERY) {
            return false;
        }
        if marked.len() >= MAX_ENTRIES {
            marked.retain(|_, at| at.elapsed() < MARK_EVERY);
        }
        marked.insert(public_key.to_owned(), Instant::now());
        true
    }

    /// `Some(None)` is a cached "no such key".
    pub fn get(&self, hash: &str) -> Option<Option<Arc<KeyRecord>>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let (at, key) = entries.get(hash)?;
        (at.elapsed() < self.ttl).then(|| key.clone())
    }

    pub fn put(&self, hash: String, key: Option<Arc<KeyRecord>>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(hash, (Instant::now(), key));
    }

    /// Drops one key's entry: its next request reads the key and its usage afresh.
    pub fn forget(&self, hash: &str) {
        self.entries.write().unwrap_or_else(|e| e.into_inner()).remove(hash);
    }

    pub fn clear(&self) {
        self.entries.write().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
