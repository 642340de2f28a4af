//! A short-lived cache of key lookups by hash.
//!
//! Admission re-checks the key inside its transaction (active, expiry, hash), so
//! the cache only decides authentication and scopes. A change made through the
//! admin clears it at once in this process; other processes see it within the TTL.

use crate::store::KeyRecord;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Bounds memory when someone sends many well-formed but unknown keys.
const MAX_ENTRIES: usize = 10_000;

/// When a lookup was made, and what it found (`None`: no such key).
type Entry = (Instant, Option<Arc<KeyRecord>>);

pub struct KeyCache {
    ttl: Duration,
    entries: RwLock<HashMap<String, Entry>>,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        KeyCache { ttl, entries: RwLock::new(HashMap::new()) }
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
