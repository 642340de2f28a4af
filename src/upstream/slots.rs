//! Taking a backend's slot for a request, or a place in the fair queue until
//! one is free: [`super::queue`] behind one lock, with a channel per waiter.
//!
//! A slot is a [`Slot`] guard: held while the request runs upstream (through
//! the whole streamed answer), given back when dropped, and the next waiter
//! for that model is served then and there. A waiter that goes away (its
//! client hung up, its wait ran out) leaves the queue when its [`Waiter`] is
//! dropped; a slot granted to it in that instant is given back, never lost.

use super::pool::{offer, Backend};
use super::queue::{KeyFull, Who};
use super::Upstreams;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A slot handed to a waiter.
pub struct Grant {
    backend: Arc<Backend>,
}

/// One running request on a backend, for one model.
pub struct Slot {
    upstreams: Arc<Upstreams>,
    pub backend: Arc<Backend>,
    model: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.upstreams.release(self.backend.url().as_str(), &self.model);
    }
}

pub enum Acquired {
    Now(Slot),
    Wait(Waiter),
}

#[derive(Debug)]
pub enum Refused {
    /// No backend that takes work serves the model.
    NoBackend,
    /// The key has `QUEUE_MAX_PER_KEY` requests waiting already.
    KeyFull(u32),
}

pub struct Waiter {
    upstreams: Arc<Upstreams>,
    model: String,
    id: u64,
    granted: oneshot::Receiver<Grant>,
}

impl Waiter {
    /// Resolves once a slot is free and this waiter's turn has come.
    pub async fn slot(&mut self) -> Option<Slot> {
        let grant = (&mut self.granted).await.ok()?;
        Some(Slot { upstreams: self.upstreams.clone(), backend: grant.backend, model: self.model.clone() })
    }

    /// Requests waiting for this waiter's model, itself included.
    pub fn queued(&self) -> usize {
        self.upstreams.lock_queue().waiting(&self.model)
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.upstreams.lock_queue().leave(&self.model, self.id);
        // Granted after all, but never taken: given back.
        self.granted.close();
        if let Ok(grant) = self.granted.try_recv() {
            self.upstreams.release(grant.backend.url().as_str(), &self.model);
        }
    }
}

impl Upstreams {
    /// A slot for a request for `model` now, or a place in the queue.
    /// `tried` are backends this request already failed on.
    pub fn acquire(self: &Arc<Self>, model: &str, who: Who, tried: &[String]) -> Result<Acquired, Refused> {
        let pool = self.pool();
        let backends: Vec<_> = pool
            .for_model(model)
            .into_iter()
            .filter(|b| !tried.iter().any(|t| t == b.url().as_str()))
            .collect();
        if backends.is_empty() {
            return Err(Refused::NoBackend);
        }
        let mut queue = self.lock_queue();
        let offers: Vec<_> = backends.iter().map(|b| offer(b, model)).collect();
        if queue.waiting(model) == 0 {
            if let Some(i) = queue.pick(model, &offers) {
                queue.take(offers[i].url, model);
                queue.charge(model, who);
                drop(queue);
                let backend = backends[i].clone();
                return Ok(Acquired::Now(Slot { upstreams: self.clone(), backend, model: model.to_owned() }));
            }
        }
        // A retry does not wait: another backend now, or the failure it had.
        if !tried.is_empty() {
            return Err(Refused::NoBackend);
        }
        let (tx, rx) = oneshot::channel();
        let id = queue
            .enqueue(model, who, self.queue_limits.max_per_key, tx)
            .map_err(|KeyFull(n)| Refused::KeyFull(n))?;
        drop(queue);
        // Someone may have freed a slot in between.
        self.serve_waiting(model);
        Ok(Acquired::Wait(Waiter { upstreams: self.clone(), model: model.to_owned(), id, granted: rx }))
    }

    fn release(&self, url: &str, model: &str) {
        self.lock_queue().give(url, model);
        self.serve_waiting(model);
    }

    /// Hands free slots for the model to its waiters, in fair order.
    pub(super) fn serve_waiting(&self, model: &str) {
        let pool = self.pool();
        let backends = pool.for_model(model);
        let offers: Vec<_> = backends.iter().map(|b| offer(b, model)).collect();
        let mut queue = self.lock_queue();
        while queue.waiting(model) > 0 {
            let Some(i) = queue.pick(model, &offers) else { break };
            let Some(waiter) = queue.next(model) else { break };
            queue.take(offers[i].url, model);
            if waiter.payload.send(Grant { backend: backends[i].clone() }).is_err() {
                // It went away a moment ago.
                queue.give(offers[i].url, model);
            }
        }
    }

    /// After new settings or a backend back: every queue may move.
    pub(super) fn serve_all_waiting(&self) {
        let models: Vec<String> = self.lock_queue().waiting_models().into_iter().map(|(m, _)| m).collect();
        for model in models {
            self.serve_waiting(&model);
        }
    }

    /// Requests running on a backend, and waiting for models it would take.
    pub fn load_of(&self, backend: &Backend) -> (u32, usize) {
        let pool = self.pool();
        let (busy, waiting) = {
            let queue = self.lock_queue();
            (queue.busy_on(backend.url().as_str()), queue.waiting_models())
        };
        let queued = waiting
            .into_iter()
            .filter(|(model, _)| pool.for_model(model).iter().any(|b| b.url() == backend.url()))
            .map(|(_, n)| n)
            .sum();
        (busy, queued)
    }
}

#[cfg(test)]
mod tests {
    use super::super::queue::Flow;
    use super::*;
    use crate::domain::backend::parse_list;
    use std::time::Duration;

    fn upstreams(urls: &[&str]) -> Arc<Upstreams> {
        let limits = super::super::QueueLimits { max_wait: Duration::from_secs(5), max_per_key: 2 };
        Arc::new(Upstreams::new(parse_list(urls.iter().copied(), 1).unwrap(), vec![], limits, 1))
    }

    fn key(id: i64) -> Who {
        Who { key_id: id, flow: Flow::Key(id), weight: 1 }
    }

    fn now(a: Result<Acquired, Refused>) -> Slot {
        match a {
            Ok(Acquired::Now(slot)) => slot,
            _ => panic!("expected a slot at once"),
        }
    }

    fn wait(a: Result<Acquired, Refused>) -> Waiter {
        match a {
            Ok(Acquired::Wait(w)) => w,
            _ => panic!("expected to wait"),
        }
    }

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_fair_next_waiter() {
        let u = upstreams(&["http://a?name=a"]);
        let running = now(u.acquire("m", key(1), &[]));
        let mut heavy = wait(u.acquire("m", key(1), &[]));
        let mut light = wait(u.acquire("m", key(2), &[]));
        assert_eq!(light.queued(), 2);
        // Key 1's running request was its turn: key 2 goes next.
        drop(running);
        let first = light.slot().await.unwrap();
        assert_eq!(first.backend.spec.name, "a");
        assert_eq!(u.load_of(&u.pool().backends[0]), (1, 1));
        drop(first);
        let _second = heavy.slot().await.unwrap();
        assert_eq!(u.load_of(&u.pool().backends[0]), (1, 0));
    }

    #[tokio::test]
    async fn a_waiter_that_leaves_takes_no_slot_with_it() {
        let u = upstreams(&["http://a?name=a"]);
        let running = now(u.acquire("m", key(1), &[]));
        let gone = wait(u.acquire("m", key(2), &[]));
        let mut next = wait(u.acquire("m", key(3), &[]));
        drop(running);
        // Granted to `gone`, which never looks: dropping it passes the slot on.
        drop(gone);
        assert!(next.slot().await.is_some());
        assert_eq!(u.load_of(&u.pool().backends[0]).1, 0);
    }

    #[tokio::test]
    async fn the_queue_is_bounded_per_key_and_models_have_their_own_slots() {
        let u = upstreams(&["http://a?name=a"]);
        let _running = now(u.acquire("m", key(1), &[]));
        let _w1 = wait(u.acquire("m", key(1), &[]));
        let _w2 = wait(u.acquire("m", key(1), &[]));
        assert!(matches!(u.acquire("m", key(1), &[]), Err(Refused::KeyFull(2))));
        let _other = now(u.acquire("other", key(1), &[]));
    }

    #[tokio::test]
    async fn retries_go_to_another_backend_or_not_at_all() {
        let u = upstreams(&["http://a?name=a", "http://b?name=b"]);
        let first = now(u.acquire("m", key(1), &[]));
        let tried = vec![first.backend.url().to_string()];
        let second = now(u.acquire("m", key(1), &tried));
        assert_ne!(first.backend.spec.name, second.backend.spec.name);
        let both = vec![tried[0].clone(), second.backend.url().to_string()];
        assert!(matches!(u.acquire("m", key(1), &both), Err(Refused::NoBackend)));
    }
}
