//! Repeated wrong admin passwords from one address: a growing delay, then 429.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures are forgotten this long after the last one.
const WINDOW: Duration = Duration::from_secs(15 * 60);
const FREE_FAILURES: u32 = 2;

pub struct LoginThrottle {
    max_failures: u32,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

pub enum Verdict {
    /// Go ahead after this delay (zero for the first few tries).
    Wait(Duration),
    /// Refuse; try again after this many seconds.
    Refuse(u64),
}

impl LoginThrottle {
    pub fn new(max_failures: u32) -> Self {
        LoginThrottle { max_failures: max_failures.max(1), failures: Mutex::new(HashMap::new()) }
    }

    pub fn verdict(&self, ip: IpAddr) -> Verdict {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (_, last)| last.elapsed() < WINDOW);
        match map.get(&ip) {
            Some((n, last)) if *n >= self.max_failures => {
                Verdict::Refuse(WINDOW.saturating_sub(last.elapsed()).as_secs().max(1))
            }
            Some((n, _)) if *n > FREE_FAILURES => {
                let steps = (*n - FREE_FAILURES - 1).min(4);
                Verdict::Wait(Duration::from_millis(250 << steps))
            }
            _ => Verdict::Wait(Duration::ZERO),
        }
    }

    pub fn failed(&self, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(ip).or_insert((0, Instant::now()));
        entry.0 += 1;
        entry.1 = Instant::now();
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(&ip);
    }
}
