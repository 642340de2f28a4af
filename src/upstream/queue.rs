//! The slots of every backend and the fair queue in front of them, as plain
//! data: no locks, no clocks, no sockets, so the order of service can be
//! tested exactly. The `slots` module wraps it in a lock and channels.
//!
//! Ollama runs a few requests per model at once and queues the rest first
//! come, first served: one client's batch of 50 makes everyone wait behind all
//! 50. Here requests wait in the gate instead, one queue per model, served by
//! start-time fair queueing across flows (a team, else a user, else a key):
//! each waiter gets a start tag, the later of "now" in virtual time and the
//! end of its flow's previous request; the smallest tag goes first. A flow
//! with 50 waiting has tags now, now+1, ..., so another flow's single request,
//! tagged now, goes after at most one of them: one turn of a slot.

use std::collections::{HashMap, VecDeque};

/// Virtual time one request costs a flow of weight 1.
const TURN: u64 = 1_000_000;

/// Who waits: the key (for its own bound) and the flow it is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Who {
    pub key_id: i64,
    pub flow: Flow,
    /// A flow's share: a weight of 2 is served twice as often while both wait.
    pub weight: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flow {
    Team(i64),
    User(i64),
    Key(i64),
}

/// A backend that can serve the model now, as the queue sees it.
#[derive(Debug, Clone, Copy)]
pub struct Offer<'a> {
    pub url: &'a str,
    pub slots: u32,
    pub weight: u32,
    /// The model is in the backend's memory: no load before the first token.
    pub loaded: bool,
}

pub struct Waiting<T> {
    pub id: u64,
    pub who: Who,
    start: u64,
    pub payload: T,
}

struct ModelQueue<T> {
    flows: HashMap<Flow, FlowQueue<T>>,
    /// Virtual time: the start tag of the request served last.
    now: u64,
}

struct FlowQueue<T> {
    waiting: VecDeque<Waiting<T>>,
    /// Where the flow's latest request ends in virtual time.
    finish: u64,
}

pub struct Sched<T> {
    /// Requests running, per backend URL and model.
    busy: HashMap<(String, String), u32>,
    queues: HashMap<String, ModelQueue<T>>,
    per_key: HashMap<i64, u32>,
    next_id: u64,
}

impl<T> Default for Sched<T> {
    fn default() -> Self {
        Sched { busy: HashMap::new(), queues: HashMap::new(), per_key: HashMap::new(), next_id: 0 }
    }
}

/// Refused a place in the queue: the key already has this many waiting.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyFull(pub u32);

impl<T> Sched<T> {
    pub fn busy(&self, url: &str, model: &str) -> u32 {
        self.busy.get(&(url.to_owned(), model.to_owned())).copied().unwrap_or(0)
    }

    /// Requests running on a backend, all models.
    pub fn busy_on(&self, url: &str) -> u32 {
        self.busy.iter().filter(|((u, _), _)| u == url).map(|(_, n)| n).sum()
    }

    /// Which offer takes the next request for the model: one with a free
    /// slot, where the model is loaded first, then the least busy for its
    /// slots and weight, then the earliest listed.
    pub fn pick(&self, model: &str, offers: &[Offer]) -> Option<usize> {
        offers
            .iter()
            .enumerate()
            .filter(|(_, o)| self.busy(o.url, model) < o.slots)
            .min_by_key(|(i, o)| {
                let busy = self.busy(o.url, model) as u64;
                // Fill per slot and weight, compared without division.
                let load = (busy + 1) * 1_000_000 / (o.slots as u64 * o.weight.max(1) as u64);
                (!o.loaded, load, *i)
            })
            .map(|(i, _)| i)
    }

    pub fn take(&mut self, url: &str, model: &str) {
        *self.busy.entry((url.to_owned(), model.to_owned())).or_insert(0) += 1;
    }

    pub fn give(&mut self, url: &str, model: &str) {
        decrement(&mut self.busy, (url.to_owned(), model.to_owned()));
        self.tidy(model);
    }

    /// A request that got a slot without waiting still takes its flow's
    /// turn: a key whose requests are running goes behind one that has none.
    pub fn charge(&mut self, model: &str, who: Who) {
        let queue = self.queues.entry(model.to_owned()).or_insert_with(ModelQueue::new);
        let now = queue.now;
        let flow = queue.flows.entry(who.flow).or_insert_with(|| FlowQueue::new(now));
        let start = flow.finish.max(now);
        flow.finish = start + TURN / who.weight.max(1) as u64;
        queue.now = start;
    }

    /// Places a request in the model's queue; `max_per_key` bounds one key's
    /// waiting requests across models.
    pub fn enqueue(&mut self, model: &str, who: Who, max_per_key: u32, payload: T) -> Result<u64, KeyFull> {
        let mine = self.per_key.entry(who.key_id).or_insert(0);
        if *mine >= max_per_key {
            return Err(KeyFull(*mine));
        }
        *mine += 1;
        self.next_id += 1;
        let id = self.next_id;
        let queue = self.queues.entry(model.to_owned()).or_insert_with(ModelQueue::new);
        let now = queue.now;
        let flow = queue.flows.entry(who.flow).or_insert_with(|| FlowQueue::new(now));
        let start = flow.finish.max(now);
        flow.finish = start + TURN / who.weight.max(1) as u64;
        flow.waiting.push_back(Waiting { id, who, start, payload });
        Ok(id)
    }

    /// Takes a waiter out (it went away or gave up); `None` if already served.
    pub fn leave(&mut self, model: &str, id: u64) -> Option<Waiting<T>> {
        let queue = self.queues.get_mut(model)?;
        let (flow, at) = queue
            .flows
            .iter()
            .find_map(|(flow, q)| q.waiting.iter().position(|w| w.id == id).map(|at| (*flow, at)))?;
        let left = queue.flows.get_mut(&flow)?.waiting.remove(at)?;
        self.forget(model, &left);
        Some(left)
    }

    /// The waiter to serve next for the model, out of the queue.
    pub fn next(&mut self, model: &str) -> Option<Waiting<T>> {
        let queue = self.queues.get_mut(model)?;
        let flow = queue
            .flows
            .iter()
            .filter_map(|(flow, q)| q.waiting.front().map(|w| ((w.start, w.id), *flow)))
            .min()
            .map(|(_, flow)| flow)?;
        let served = queue.flows.get_mut(&flow)?.waiting.pop_front()?;
        queue.now = queue.now.max(served.start);
        self.forget(model, &served);
        Some(served)
    }

    pub fn waiting(&self, model: &str) -> usize {
        self.queues.get(model).map(|q| q.flows.values().map(|f| f.waiting.len()).sum()).unwrap_or(0)
    }

    /// Models with someone waiting.
    pub fn waiting_models(&self) -> Vec<(String, usize)> {
        self.queues.keys().map(|m| (m.clone(), self.waiting(m))).filter(|(_, n)| *n > 0).collect()
    }

    /// Bookkeeping once a waiter is out: its key's count, then [`Self::tidy`].
    fn forget(&mut self, model: &str, gone: &Waiting<T>) {
        decrement(&mut self.per_key, gone.who.key_id);
        self.tidy(model);
    }

    /// Flows with nobody waiting and no turn still to come are dropped, and
    /// a model's queue once nobody waits and nothing runs (virtual time then
    /// starts over): memory follows who is being served now.
    fn tidy(&mut self, model: &str) {
        let running = self.busy.keys().any(|(_, m)| m == model);
        if let Some(queue) = self.queues.get_mut(model) {
            let now = queue.now;
            queue.flows.retain(|_, f| !f.waiting.is_empty() || f.finish > now);
            if !running && queue.flows.values().all(|f| f.waiting.is_empty()) {
                self.queues.remove(model);
            }
        }
    }
}

/// One less; a count that reaches zero is dropped, so maps hold only what is live.
fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, key: K) {
    if let Some(n) = counts.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

impl<T> ModelQueue<T> {
    fn new() -> Self {
        ModelQueue { flows: HashMap::new(), now: 0 }
    }
}

impl<T> FlowQueue<T> {
    fn new(now: u64) -> Self {
        FlowQueue { waiting: VecDeque::new(), finish: now }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: i64) -> Who {
        Who { key_id: id, flow: Flow::Key(id), weight: 1 }
    }

    fn offer(url: &str, slots: u32) -> Offer<'_> {
        Offer { url, slots, weight: 1, loaded: false }
    }

    /// Serves everything waiting for `m`, one at a time, returning the payloads in order.
    fn drain(s: &mut Sched<&'static str>) -> Vec<&'static str> {
        std::iter::from_fn(|| s.next("m").map(|w| w.payload)).collect()
    }

    #[test]
    fn a_backlog_delays_another_flow_by_one_turn_at_most() {
        let mut s = Sched::default();
        for _ in 0..50 {
            s.enqueue("m", key(1), 64, "heavy").unwrap();
        }
        s.enqueue("m", key(2), 64, "light").unwrap();
        let order = drain(&mut s);
        assert_eq!(order.iter().position(|p| *p == "light"), Some(1), "{order:?}");
        assert_eq!(order.len(), 51);
    }

    #[test]
    fn a_late_arrival_waits_behind_one_turn_not_the_whole_backlog() {
        let mut s = Sched::default();
        for _ in 0..20 {
            s.enqueue("m", key(1), 64, "heavy").unwrap();
        }
        // Ten served; then the light key arrives.
        for _ in 0..10 {
            assert_eq!(s.next("m").unwrap().payload, "heavy");
        }
        s.enqueue("m", key(2), 64, "light").unwrap();
        let order = drain(&mut s);
        assert!(order.iter().position(|p| *p == "light").unwrap() <= 1, "{order:?}");
    }

    #[test]
    fn a_running_request_counts_as_its_flows_turn() {
        let mut s = Sched::default();
        // Key 1 got the only slot without waiting, then queued five more.
        s.take("a", "m");
        s.charge("m", key(1));
        for _ in 0..5 {
            s.enqueue("m", key(1), 64, "heavy").unwrap();
        }
        s.enqueue("m", key(2), 64, "light").unwrap();
        assert_eq!(s.next("m").unwrap().payload, "light");
        // Once nothing runs and nobody waits, nothing is kept.
        drain(&mut s);
        s.give("a", "m");
        assert!(s.queues.is_empty());
    }

    #[test]
    fn flows_alternate_and_weights_share_in_proportion() {
        let mut s = Sched::default();
        for _ in 0..4 {
            s.enqueue("m", key(1), 64, "a").unwrap();
            s.enqueue("m", key(2), 64, "b").unwrap();
        }
        assert_eq!(drain(&mut s), ["a", "b", "a", "b", "a", "b", "a", "b"]);
        let double = Who { key_id: 3, flow: Flow::Key(3), weight: 2 };
        for _ in 0..4 {
            s.enqueue("m", double, 64, "w2").unwrap();
            s.enqueue("m", key(4), 64, "w1").unwrap();
        }
        let order = drain(&mut s);
        let first_six: Vec<_> = order[..6].to_vec();
        assert_eq!(first_six.iter().filter(|p| **p == "w2").count(), 4, "{order:?}");
    }

    #[test]
    fn keys_of_one_team_share_one_turn() {
        let mut s = Sched::default();
        let team = |key_id| Who { key_id, flow: Flow::Team(7), weight: 1 };
        for k in 1..=3 {
            s.enqueue("m", team(k), 64, "team").unwrap();
        }
        s.enqueue("m", key(9), 64, "alone").unwrap();
        s.enqueue("m", key(9), 64, "alone").unwrap();
        assert_eq!(drain(&mut s), ["team", "alone", "team", "alone", "team"]);
    }

    #[test]
    fn idle_time_is_no_credit() {
        let mut s = Sched::default();
        s.enqueue("m", key(2), 64, "b").unwrap();
        s.next("m");
        for _ in 0..5 {
            s.enqueue("m", key(1), 64, "a").unwrap();
        }
        for _ in 0..3 {
            s.next("m");
        }
        // Key 2 was away while key 1 was served: it gets its turn, not three.
        s.enqueue("m", key(2), 64, "b").unwrap();
        s.enqueue("m", key(2), 64, "b").unwrap();
        let order = drain(&mut s);
        assert_eq!(order[..2].iter().filter(|p| **p == "b").count(), 1, "{order:?}");
    }

    #[test]
    fn a_key_has_a_bounded_place_and_leaving_frees_it() {
        let mut s = Sched::default();
        let a = s.enqueue("m", key(1), 2, "1").unwrap();
        s.enqueue("x", key(1), 2, "2").unwrap();
        assert_eq!(s.enqueue("m", key(1), 2, "3"), Err(KeyFull(2)));
        assert_eq!(s.leave("m", a).map(|w| w.payload), Some("1"));
        assert!(s.leave("m", a).is_none(), "leaving twice");
        assert!(s.enqueue("m", key(1), 2, "3").is_ok());
        assert_eq!(s.waiting("m"), 1);
        assert_eq!(s.waiting("x"), 1);
    }

    #[test]
    fn queues_and_flows_are_dropped_once_empty() {
        let mut s = Sched::default();
        let id = s.enqueue("m", key(1), 2, "1").unwrap();
        s.leave("m", id);
        s.enqueue("n", key(1), 2, "1").unwrap();
        s.next("n");
        assert!(s.queues.is_empty() && s.per_key.is_empty());
    }

    #[test]
    fn picks_a_free_slot_loaded_first_then_least_busy() {
        let mut s: Sched<()> = Sched::default();
        let offers = [offer("a", 2), Offer { loaded: true, ..offer("b", 1) }, offer("c", 4)];
        assert_eq!(s.pick("m", &offers), Some(1), "loaded wins");
        s.take("b", "m");
        assert_eq!(s.pick("m", &offers), Some(2), "c: 1 of 4 beats a: 1 of 2");
        s.take("c", "m");
        s.take("c", "m");
        assert_eq!(s.pick("m", &offers), Some(0));
        s.take("a", "m");
        s.take("a", "m");
        s.take("c", "m");
        s.take("c", "m");
        assert_eq!(s.pick("m", &offers), None, "all slots busy");
        assert_eq!(s.pick("other", &offers), Some(1), "slots are per model");
        s.give("a", "m");
        assert_eq!(s.pick("m", &offers), Some(0));
        assert_eq!(s.busy_on("c"), 4);
    }

    #[test]
    fn weight_sends_more_work_to_the_heavier_backend() {
        let mut s: Sched<()> = Sched::default();
        let offers = [offer("a", 4), Offer { weight: 3, ..offer("b", 4) }];
        let mut sent = [0; 2];
        for _ in 0..4 {
            let i = s.pick("m", &offers).unwrap();
            s.take(offers[i].url, "m");
            sent[i] += 1;
        }
        assert_eq!(sent, [1, 3]);
    }
}
