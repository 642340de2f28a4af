//! One-time views of a new key secret. Creating or rotating a key answers
//! with a redirect to a GET page; the secret waits here, in this process's
//! memory only, under a random token bound to the admin's session, and the
//! first view takes it out. A reload, Back/Forward or a copied address finds
//! nothing and never repeats the create or the rotate. Unviewed secrets go
//! after a few minutes.

use rand::Rng;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// How long an unviewed secret waits for its page.
pub const LIFETIME_SECS: i64 = 300;
/// A bound on secrets waiting at once, so a loop of creates cannot grow memory.
const MAX_WAITING: usize = 1000;

pub struct Reveal {
    pub session_id: String,
    pub key_id: i64,
    pub heading: String,
    pub secret: String,
    created_at: i64,
}

fn waiting() -> &'static Mutex<HashMap<String, Reveal>> {
    static WAITING: OnceLock<Mutex<HashMap<String, Reveal>>> = OnceLock::new();
    WAITING.get_or_init(|| Mutex::new(HashMap::new()))
}

fn token() -> String {
    let mut rng = rand::thread_rng();
    (0..32).map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)])).collect()
}

/// Keeps a secret for one view; returns the token that finds it.
pub fn put(session_id: &str, key_id: i64, heading: String, secret: &str, now: i64) -> String {
    let token = token();
    let mut map = waiting().lock().unwrap_or_else(|e| e.into_inner());
    map.retain(|_, r| now - r.created_at < LIFETIME_SECS);
    if map.len() >= MAX_WAITING {
        // The oldest goes first: its admin had the most time to look.
        if let Some(oldest) = map.iter().min_by_key(|(_, r)| r.created_at).map(|(t, _)| t.clone()) {
            map.remove(&oldest);
        }
    }
    let reveal = Reveal {
        session_id: session_id.to_owned(),
        key_id,
        heading,
        secret: secret.to_owned(),
        created_at: now,
    };
    map.insert(token.clone(), reveal);
    token
}

/// Takes the secret out, if this session and key own the token and it is
/// still fresh. A second call with the same token finds nothing.
pub fn take(token: &str, session_id: &str, key_id: i64, now: i64) -> Option<Reveal> {
    let mut map = waiting().lock().unwrap_or_else(|e| e.into_inner());
    let owned = map.get(token).is_some_and(|r| {
        r.session_id == session_id && r.key_id == key_id && now - r.created_at < LIFETIME_SECS
    });
    if owned {
        map.remove(token)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_session_or_key_cannot_take_it_and_a_second_view_finds_nothing() {
        let t = put("s1", 7, "h".into(), "sk-og-x", 100);
        assert!(take(&t, "s2", 7, 101).is_none());
        assert!(take(&t, "s1", 8, 101).is_none());
        assert_eq!(take(&t, "s1", 7, 101).map(|r| r.secret).as_deref(), Some("sk-og-x"));
        assert!(take(&t, "s1", 7, 102).is_none());
    }

    #[test]
    fn an_unviewed_secret_expires() {
        let t = put("s1", 9, "h".into(), "sk-og-y", 100);
        assert!(take(&t, "s1", 9, 100 + LIFETIME_SECS).is_none());
    }
}
