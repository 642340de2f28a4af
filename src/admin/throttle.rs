//! Guessing the admin password, by any way in (console login, the JSON API's
//! bearer password), is throttled per client address and overall.
//!
//! Per address: the first few wrong passwords are free, then each next try
//! must wait a doubling delay after the last failure (`429` + `Retry-After`),
//! and after `LOGIN_MAX_FAILURES` the address is refused for
//! `LOGIN_LOCKOUT_MINUTES`. An attempt is reserved before the password is
//! verified, so guesses sent at once all count: beyond the free ones only one
//! runs at a time, and the others wait for its outcome.
//!
//! Overall: once `LOGIN_GLOBAL_MAX_FAILURES` failures from all addresses fall
//! within the lockout window (many addresses guessing), verifications from
//! addresses that have not logged in before are paced to one per
//! `LOGIN_GLOBAL_INTERVAL_MS`. Pacing delays, it never refuses: refusing by
//! the overall count would let an attacker lock the admin out from anywhere.
//! Only an address's own failures refuse it.

use super::error::AdminError;
use crate::forwarded::canonical;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// Wrong passwords an address may send before backoff starts.
const FREE_FAILURES: u32 = 3;
/// The longest backoff step, before the lockout takes over.
const MAX_BACKOFF_SECS: i64 = 60;
/// How long an attempt waits for the one ahead of it from the same address.
const BUSY_WAIT: Duration = Duration::from_secs(10);
/// Addresses remembered as having logged in (they skip the overall pacing).
const KNOWN_GOOD_MAX: usize = 1024;

#[derive(Debug, Clone)]
pub struct ThrottleSettings {
    pub max_failures: u32,
    pub lockout: Duration,
    pub global_max_failures: u32,
    pub global_interval: Duration,
}

/// IPv6 clients are counted by /64: one host usually holds a whole /64.
fn bucket(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

#[derive(Default)]
struct Entry {
    failures: u32,
    /// Attempts reserved whose outcome is not known yet.
    pending: u32,
    last_failure_ms: i64,
}

#[derive(Default)]
struct Inner {
    by_address: HashMap<IpAddr, Entry>,
    recent_failures: VecDeque<i64>,
    known_good: HashSet<IpAddr>,
}

pub struct LoginThrottle {
    settings: ThrottleSettings,
    inner: Mutex<Inner>,
    /// When the next paced verification may start.
    next_paced: tokio::sync::Mutex<tokio::time::Instant>,
}

enum Reservation {
    /// The password is already known to be right: no guess is spent.
    Known,
    Ticket,
    /// Another attempt from this address is being verified.
    Busy,
    Refused(u64),
}

/// One reserved attempt. Dropped without an outcome (the client went away
/// during verification), it counts as a failure.
pub struct Ticket<'a> {
    throttle: &'a LoginThrottle,
    address: IpAddr,
    now_ms: i64,
    settled: bool,
}

impl Ticket<'_> {
    fn settle(mut self, ok: bool) {
        self.settled = true;
        self.throttle.record(self.address, self.now_ms, ok);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.throttle.record(self.address, self.now_ms, false);
        }
    }
}

fn seconds_until(now_ms: i64, at_ms: i64) -> u64 {
    ((at_ms - now_ms).max(0) as u64).div_ceil(1000).max(1)
}

impl LoginThrottle {
    pub fn new(settings: ThrottleSettings) -> Self {
        let settings = ThrottleSettings { max_failures: settings.max_failures.max(1), ..settings };
        LoginThrottle {
            settings,
            inner: Mutex::new(Inner::default()),
            next_paced: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lockout_ms(&self) -> i64 {
        self.settings.lockout.as_millis() as i64
    }

    fn reserve(&self, address: IpAddr, now_ms: i64, known: bool) -> Reservation {
        let lockout = self.lockout_ms();
        let max = self.settings.max_failures;
        let free = FREE_FAILURES.min(max);
        let mut inner = self.lock();
        inner.by_address.retain(|_, e| e.pending > 0 || now_ms - e.last_failure_ms < lockout);
        let entry = inner.by_address.entry(address).or_default();
        if entry.failures >= max {
            return Reservation::Refused(seconds_until(now_ms, entry.last_failure_ms + lockout));
        }
        if entry.failures >= free {
            let step = i64::from(entry.failures - free).min(6);
            let wait_ms = (1000i64 << step).min(MAX_BACKOFF_SECS * 1000);
            if now_ms < entry.last_failure_ms + wait_ms {
                return Reservation::Refused(seconds_until(now_ms, entry.last_failure_ms + wait_ms));
            }
        }
        if known {
            entry.failures = 0;
            return Reservation::Known;
        }
        // The free tries may run side by side; past them, one at a time, so
        // every outcome is counted before the next guess is let through.
        let in_use = entry.failures + entry.pending;
        if in_use >= max || (in_use >= free && entry.pending > 0) {
            return Reservation::Busy;
        }
        entry.pending += 1;
        Reservation::Ticket
    }

    fn record(&self, address: IpAddr, now_ms: i64, ok: bool) {
        let lockout = self.lockout_ms();
        let mut inner = self.lock();
        if let Some(entry) = inner.by_address.get_mut(&address) {
            entry.pending = entry.pending.saturating_sub(1);
            if !ok {
                entry.failures += 1;
                entry.last_failure_ms = now_ms;
            }
        }
        if ok {
            if let Some(entry) = inner.by_address.get_mut(&address) {
                entry.failures = 0;
            }
            if inner.known_good.len() < KNOWN_GOOD_MAX {
                inner.known_good.insert(address);
            }
        } else {
            inner.recent_failures.push_back(now_ms);
            while inner.recent_failures.front().is_some_and(|t| now_ms - t >= lockout)
                || inner.recent_failures.len() > 100_000
            {
                inner.recent_failures.pop_front();
            }
        }
    }

    /// Many addresses are failing: unknown addresses are paced.
    fn must_pace(&self, address: IpAddr, now_ms: i64) -> bool {
        let lockout = self.lockout_ms();
        let inner = self.lock();
        let recent = inner.recent_failures.iter().rev().take_while(|t| now_ms - **t < lockout).count();
        recent >= self.settings.global_max_failures as usize && !inner.known_good.contains(&address)
    }

    async fn wait_for_pace(&self) {
        let slot = {
            let mut next = self.next_paced.lock().await;
            let now = tokio::time::Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.settings.global_interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Reserves an attempt for `address`, waiting for one ahead of it if need be.
    async fn admit(
        &self,
        address: IpAddr,
        now_ms: impl Fn() -> i64,
        known: bool,
    ) -> Result<Option<Ticket<'_>>, AdminError> {
        let started = tokio::time::Instant::now();
        loop {
            let now = now_ms();
            match self.reserve(address, now, known) {
                Reservation::Known => return Ok(None),
                Reservation::Ticket => {
                    return Ok(Some(Ticket { throttle: self, address, now_ms: now, settled: false }))
                }
                Reservation::Refused(seconds) => return Err(AdminError::Throttled(seconds)),
                Reservation::Busy if started.elapsed() >= BUSY_WAIT => return Err(AdminError::Throttled(1)),
                Reservation::Busy => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Is `candidate` the admin password, asked from `client`? `Err` when the
    /// address may not try now (`429`, with the seconds to wait).
    pub async fn check(
        &self,
        password: &super::password::AdminPassword,
        client: IpAddr,
        clock: &dyn crate::clock::Clock,
        candidate: &str,
    ) -> Result<bool, AdminError> {
        let address = bucket(client);
        let now_ms = || clock.now().timestamp_millis();
        let Some(ticket) = self.admit(address, now_ms, password.is_known(candidate)).await? else {
            return Ok(true);
        };
        if self.must_pace(address, ticket.now_ms) {
            self.wait_for_pace().await;
        }
        let ok = password.verify(candidate).await;
        ticket.settle(ok);
        if !ok {
            log::warn!("wrong admin password from {client}");
        }
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(max: u32) -> LoginThrottle {
        LoginThrottle::new(ThrottleSettings {
            max_failures: max,
            lockout: Duration::from_secs(900),
            global_max_failures: 1000,
            global_interval: Duration::from_millis(10),
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn backoff_doubles_then_the_address_is_locked_out() {
        let t = throttle(6);
        let a = ip("192.0.2.1");
        let mut now = 0;
        let mut waits = vec![];
        for _ in 0..6 {
            loop {
                match t.reserve(a, now, false) {
                    Reservation::Ticket => break,
                    Reservation::Refused(s) => {
                        waits.push(s);
                        now += s as i64 * 1000;
                    }
                    _ => panic!("nothing else is pending"),
                }
            }
            t.record(a, now, false);
        }
        assert_eq!(waits, vec![1, 2, 4]);
        assert!(matches!(t.reserve(a, now, true), Reservation::Refused(900)), "even the right password");
        assert!(
            matches!(t.reserve(a, now + 900_000, false), Reservation::Ticket),
            "forgotten after the lockout"
        );
    }

    #[test]
    fn reservations_count_before_any_outcome() {
        let t = throttle(10);
        let a = ip("192.0.2.1");
        let reserved = (0..50).filter(|_| matches!(t.reserve(a, 0, false), Reservation::Ticket)).count();
        assert_eq!(reserved, FREE_FAILURES as usize, "the rest wait for the outcomes");
        assert!(
            matches!(t.reserve(ip("198.51.100.2"), 0, false), Reservation::Ticket),
            "others are not held up"
        );
    }

    #[test]
    fn ipv6_clients_share_their_slash_64() {
        assert_eq!(bucket(ip("2001:db8:1:2:aaaa::1")), bucket(ip("2001:db8:1:2:bbbb::2")));
        assert_ne!(bucket(ip("2001:db8:1:2::1")), bucket(ip("2001:db8:1:3::1")));
        assert_eq!(bucket(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn a_success_clears_the_address_and_exempts_it_from_pacing() {
        let t = LoginThrottle::new(ThrottleSettings {
            max_failures: 10,
            lockout: Duration::from_secs(900),
            global_max_failures: 2,
            global_interval: Duration::from_millis(10),
        });
        let (attacker, admin) = (ip("192.0.2.1"), ip("198.51.100.2"));
        assert!(!t.must_pace(admin, 0));
        assert!(matches!(t.reserve(admin, 0, false), Reservation::Ticket));
        t.record(admin, 0, true);
        for _ in 0..2 {
            assert!(matches!(t.reserve(attacker, 0, false), Reservation::Ticket));
            t.record(attacker, 0, false);
        }
        assert!(t.must_pace(attacker, 0) && t.must_pace(ip("203.0.113.9"), 0));
        assert!(!t.must_pace(admin, 0), "an address that logged in before is never paced");
    }
}
