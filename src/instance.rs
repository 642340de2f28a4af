//! Names for running gate processes that say where they run, so that a
//! process can tell that another one on its own machine has died, without
//! waiting for that one's heartbeat to go stale.
//!
//! An id is `<place>-<pid>-<start>-<random>`. `place` is a digest of the host
//! name, the boot and the PID namespace: two ids with the same place name
//! processes that see the same `/proc`. `start` is the process's start time
//! (field 22 of `/proc/<pid>/stat`, clock ticks since boot), so a pid used
//! again by another process is not taken for the old one. Such an id names a
//! dead process when its pid is gone or started at another time. An id from
//! another place (a replica elsewhere, another container) is never judged
//! here: only its heartbeat says whether it lives.

use rand::Rng;
use sha2::{Digest, Sha256};

/// A fresh id for this process; plain random where `/proc` cannot say where it runs.
pub fn new_instance_id() -> String {
    let random: String = {
        let mut rng = rand::thread_rng();
        (0..16).map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)])).collect()
    };
    match (place(), own_start()) {
        (Some(place), Some(start)) => format!("{place}-{}-{start}-{random}", std::process::id()),
        _ => random,
    }
}

/// True only when `id` names a process on this machine that has certainly
/// ended; false for this process, for the living and for anything unsure.
pub fn known_dead(id: &str, own_id: &str) -> bool {
    if id == own_id {
        return false;
    }
    let mut parts = id.split('-');
    let (Some(their_place), Some(pid), Some(start), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    if place().as_deref() != Some(their_place) {
        return false;
    }
    match start_time(&pid.to_string()) {
        Ok(Some(now_started)) => now_started != start,
        Ok(None) => true,
        Err(_) => false,
    }
}

/// Where this process runs, as far as its view of other processes goes.
fn place() -> Option<String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let pids = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let digest = Sha256::digest(format!("{}\n{}\n{}", host.trim(), boot.trim(), pids.display()).as_bytes());
    Some(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

fn own_start() -> Option<u64> {
    start_time("self").ok().flatten()
}

/// The start time of process `pid`: `None` when there is no such process.
fn start_time(pid: &str) -> std::io::Result<Option<u64>> {
    let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // The command name (field 2) is in parentheses and may hold spaces or
    // parentheses itself; the fields after the last ')' start at field 3.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let start = after_name.split_whitespace().nth(22 - 3).and_then(|f| f.parse().ok());
    start.map(Some).ok_or_else(|| std::io::Error::other("unreadable /proc stat"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_under_any_of_its_ids() {
        let first = new_instance_id();
        let second = new_instance_id();
        assert_ne!(first, second);
        assert!(!known_dead(&first, &first));
        assert!(!known_dead(&first, &second), "two stores in one process are both alive");
    }

    #[test]
    fn a_finished_process_or_a_reused_pid_is_dead_and_strangers_are_not_judged() {
        let own = new_instance_id();
        let Some(place) = place() else {
            eprintln!("skipped: no /proc to tell where this process runs");
            return;
        };
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(known_dead(&format!("{place}-{pid}-1-abc"), &own), "a pid that is gone");
        let me = std::process::id();
        let started = own_start().unwrap();
        assert!(known_dead(&format!("{place}-{me}-{}-abc", started + 1), &own), "the same pid started later");
        assert!(!known_dead(&format!("{place}-{me}-{started}-abc"), &own), "this very process");
        assert!(!known_dead(&format!("0000000000000000-{pid}-1-abc"), &own), "another machine");
        assert!(!known_dead("0123456789abcdef", &own), "an id without a place");
        assert!(!known_dead(&format!("{place}-x-1-abc"), &own));
    }
}
