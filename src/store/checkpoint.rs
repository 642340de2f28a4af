//! Copies the SQLite write-ahead log into the database file in the
//! background, so that no request waits for it.
//!
//! SQLite checkpoints inside the commit that crosses `wal_autocheckpoint`
//! pages, and that commit (and every request queued behind it in group
//! commit) waits for thousands of pages to be copied and the file synced: a
//! single stream measured here waited 28 ms for its first byte that way. A
//! passive checkpoint on a connection of its own blocks neither the writer
//! nor the readers. Run often, it leaves the writer's own checkpoint next to
//! nothing to copy, and whenever it catches up with the log between two
//! writes, the next write starts the log over from its beginning.

use super::file_watch::FileWatch;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the log is looked at. One client alone writes about 1,200
/// pages in that time (each request changes some ten pages in two
/// transactions), so the writer's own checkpoint, at 10,000, finds at most
/// that many left to copy: a stall of a few milliseconds rather than 20 to 40.
pub const EVERY: Duration = Duration::from_millis(50);

/// Shared by the store and its background checkpoint.
#[derive(Default)]
pub struct Checkpoints {
    /// A write transaction ended since the last look. While none did,
    /// nothing is sent to the database at all.
    written: AtomicBool,
}

impl Checkpoints {
    pub fn note_write(&self) {
        self.written.store(true, Ordering::Relaxed);
    }
}

/// Checkpoints every `EVERY`, when something was written, until the store
/// that owns `shared` is dropped, or its file is lost (the connection would
/// hold the old one).
pub fn spawn(options: SqliteConnectOptions, file: Arc<FileWatch>, shared: Weak<Checkpoints>) {
    tokio::spawn(async move {
        let mut conn: Option<SqliteConnection> = None;
        loop {
            tokio::time::sleep(EVERY).await;
            let Some(shared) = shared.upgrade() else { break };
            if file.check().is_err() {
                break;
            }
            if !shared.written.swap(false, Ordering::Relaxed) {
                continue;
            }
            if conn.is_none() {
                match options.connect().await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        log::debug!("background checkpoint: cannot open the database: {e}");
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(c).await {
                // A full disk, say: the writer's own checkpoint still runs,
                // and the look after the next write tries again.
                log::debug!("background checkpoint failed: {e}");
            }
        }
        if let Some(c) = conn {
            let _ = c.close().await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{sqlite::SqliteStore, Store, StoreOptions};

    /// (pages in the log, pages of it copied), read from the wal-index
    /// header in the `-shm` file (`mxFrame` at byte 16, `nBackfill` at 96, in
    /// the machine's byte order; SQLite's `wal.c`): looking by a checkpoint
    /// would copy the log itself.
    fn log_state(db: &std::path::Path) -> (u32, u32) {
        let shm = std::fs::read(db.with_extension("db-shm")).unwrap();
        let word = |at: usize| u32::from_ne_bytes(shm[at..at + 4].try_into().unwrap());
        (word(16), word(96))
    }

    /// Far fewer pages than the writer's own checkpoint waits for, so only the
    /// background one can have copied the log and let it start over.
    #[tokio::test]
    async fn the_log_is_copied_in_the_background_and_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gate.db");
        let options = StoreOptions { max_connections: 2, busy_timeout: Duration::from_secs(5) };
        let store = SqliteStore::open(&path, &options).await.unwrap();
        let mut most = 0;
        for i in 0..400 {
            store.put_setting("filler", &format!("{i:0>2000}")).await.unwrap();
            most = most.max(log_state(&path).0);
        }
        assert!(most > 50 && most < 10_000, "{most} pages in the log");

        tokio::time::sleep(EVERY * 4).await;
        let (log, copied) = log_state(&path);
        assert!(log > 0 && copied == log, "{copied} of {log} pages copied");
        // Everything is copied: the next write starts the log from its beginning.
        store.put_setting("filler", "last").await.unwrap();
        let (log, _) = log_state(&path);
        assert!(log < 10, "the log did not start over: {log} pages (it had grown to {most})");
        assert_eq!(store.get_setting("filler").await.unwrap().as_deref(), Some("last"));
    }
}
