//! Running response streams by key, so that a key deactivated, rotated,
//! expired or deleted stops streaming within `REVOKED_STREAM_CHECK_SECS`.
//!
//! Replicas share the database and another one may have revoked the key, so
//! one task per process reads, every period, the keys that have streams
//! running here, one query per key (not per stream, never per chunk). A
//! stream learns of its key's end through its [`Watch`], which wakes it.

use crate::proxy::ProxyState;
use actix_web::web::Data;
use futures_util::task::AtomicWaker;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Context;

#[derive(Default)]
pub struct StreamWatch {
    streams: Mutex<HashMap<u64, Watched>>,
    next_id: AtomicU64,
}

struct Watched {
    key_hash: Arc<str>,
    signal: Arc<Signal>,
}

#[derive(Default)]
struct Signal {
    revoked: AtomicBool,
    waker: AtomicWaker,
}

/// One stream's registration; dropping it ends the watch.
pub struct Watch {
    id: u64,
    streams: Arc<StreamWatch>,
    signal: Arc<Signal>,
}

impl StreamWatch {
    pub fn watch(watch: &Arc<StreamWatch>, key_hash: &str) -> Watch {
        let id = watch.next_id.fetch_add(1, Ordering::Relaxed);
        let signal = Arc::new(Signal::default());
        watch.lock().insert(id, Watched { key_hash: Arc::from(key_hash), signal: signal.clone() });
        Watch { id, streams: watch.clone(), signal }
    }

    /// Streams running now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Watched>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn running_keys(&self) -> HashSet<Arc<str>> {
        self.lock().values().map(|w| w.key_hash.clone()).collect()
    }

    fn revoke(&self, key_hash: &str) -> usize {
        let streams = self.lock();
        let mut ended = 0;
        for watched in streams.values().filter(|w| &*w.key_hash == key_hash) {
            watched.signal.revoked.store(true, Ordering::Release);
            watched.signal.waker.wake();
            ended += 1;
        }
        ended
    }
}

impl Watch {
    /// True once the key is gone; else the stream is woken when it goes.
    pub fn revoked(&self, cx: &mut Context<'_>) -> bool {
        if self.signal.revoked.load(Ordering::Acquire) {
            return true;
        }
        self.signal.waker.register(cx.waker());
        self.signal.revoked.load(Ordering::Acquire)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.streams.lock().remove(&self.id);
    }
}

/// Runs for the life of the process.
pub async fn recheck(state: Data<ProxyState>) {
    let mut tick = tokio::time::interval(state.settings.revoked_stream_check);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        recheck_once(&state).await;
    }
}

async fn recheck_once(state: &ProxyState) {
    for key_hash in state.streams.running_keys() {
        let now = state.clock.now().timestamp();
        let usable = match state.store.find_key_by_hash(&key_hash, now).await {
            // A rotated-out secret's streams run until its grace period ends.
            Ok(Some(key)) => key.active && !key.is_expired(now) && key.opened_by(&key_hash, now),
            Ok(None) => false,
            // A database outage does not cut running streams; the next period tries again.
            Err(e) => {
                log::warn!("could not recheck the key of running streams: {e}");
                continue;
            }
        };
        if !usable {
            let ended = state.streams.revoke(&key_hash);
            log::info!(
                "ended {ended} running stream(s) of a key that was revoked, rotated, expired or deleted"
            );
        }
    }
}
