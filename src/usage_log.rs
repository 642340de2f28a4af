//! The rotating JSON-lines usage log (`LOG_FILE`).
//!
//! Request handlers hand a line to a bounded channel and move on; one thread
//! writes and rotates. If the disk cannot keep up, lines are dropped and
//! counted rather than slowing requests down. Lines never hold prompts or keys.

use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

const QUEUE: usize = 16 * 1024;

/// How long the writer lets lines gather after the first: under load it then
/// wakes a few hundred times a second, not once a request, and writes many
/// lines at a time. A line reaches the file at most this much later.
const GATHER: std::time::Duration = std::time::Duration::from_millis(5);

#[derive(Clone, Default)]
pub struct UsageLog {
    sender: Option<SyncSender<String>>,
    dropped: Arc<AtomicU64>,
}

#[derive(Debug, Serialize)]
pub struct UsageEvent<'a> {
    pub ts: String,
    pub event: &'a str,
    pub key_id: Option<i64>,
    pub model: &'a str,
    pub route: &'a str,
    pub status: &'a str,
    pub http_status: u16,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    pub estimated: bool,
    pub latency_ms: i64,
    pub request_id: &'a str,
}

impl UsageLog {
    pub fn disabled() -> Self {
        UsageLog::default()
    }

    pub fn start(path: &Path, max_bytes: u64, keep: usize) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        let (sender, receiver) = sync_channel(QUEUE);
        let writer = Writer { path: path.to_path_buf(), out: BufWriter::new(file), size, max_bytes, keep };
        std::thread::Builder::new().name("usage-log".into()).spawn(move || writer.run(receiver))?;
        Ok(UsageLog { sender: Some(sender), dropped: Arc::default() })
    }

    pub fn record(&self, event: &UsageEvent<'_>) {
        let Some(sender) = &self.sender else { return };
        let Ok(line) = serde_json::to_string(event) else { return };
        if let Err(TrySendError::Full(_)) = sender.try_send(line) {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                log::warn!("usage log is falling behind: {n} lines dropped so far");
            }
        }
    }
}

struct Writer {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    max_bytes: u64,
    keep: usize,
}

impl Writer {
    fn run(mut self, receiver: Receiver<String>) {
        while let Ok(line) = receiver.recv() {
            self.write(&line);
            std::thread::sleep(GATHER);
            // Write whatever else is waiting, then flush once.
            while let Ok(line) = receiver.try_recv() {
                self.write(&line);
            }
            if let Err(e) = self.out.flush() {
                log::warn!("usage log {}: {e}", self.path.display());
            }
        }
    }

    fn write(&mut self, line: &str) {
        if self.size + line.len() as u64 + 1 > self.max_bytes && self.size > 0 {
            if let Err(e) = self.rotate() {
                log::warn!("usage log {} cannot rotate: {e}", self.path.display());
            }
        }
        if self.out.write_all(line.as_bytes()).and_then(|_| self.out.write_all(b"\n")).is_ok() {
            self.size += line.len() as u64 + 1;
        }
    }

    /// usage.log -> usage.log.1 -> ... -> usage.log.N (the oldest is removed).
    fn rotate(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.keep == 0 {
            fs::remove_file(&self.path).ok();
        } else {
            fs::remove_file(numbered(self.keep)).ok();
            for n in (1..self.keep).rev() {
                fs::rename(numbered(n), numbered(n + 1)).ok();
            }
            fs::rename(&self.path, numbered(1))?;
        }
        self.out = BufWriter::new(OpenOptions::new().create(true).append(true).open(&self.path)?);
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: i64) -> UsageEvent<'static> {
        UsageEvent {
            ts: "2026-11-21T10:00:00Z".into(),
            event: "request",
            key_id: Some(n),
            model: "llama3",
            route: "/api/chat",
            status: "ok",
            http_status: 200,
            prompt_tokens: n,
            completion_tokens: 1,
            total_tokens: n + 1,
            estimated: false,
            latency_ms: 3,
            request_id: "r1",
        }
    }

    #[test]
    fn the_log_rotates_at_its_size_and_keeps_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/usage.log");
        let log = UsageLog::start(&path, 4096, 2).unwrap();
        for n in 0..200 {
            log.record(&event(n));
        }
        drop(log);
        // The writer thread drains the queue and flushes; give it a moment.
        let rotated = |n: usize| PathBuf::from(format!("{}.{n}", path.display()));
        for _ in 0..100 {
            if rotated(2).exists()
                && std::fs::read_to_string(&path).unwrap_or_default().contains("\"key_id\":199")
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(rotated(1).exists() && rotated(2).exists());
        assert!(!rotated(3).exists(), "only LOG_KEEP rotated files are kept");
        for file in [path.clone(), rotated(1), rotated(2)] {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(text.len() <= 4096, "{} is {} bytes", file.display(), text.len());
            for line in text.lines() {
                serde_json::from_str::<serde_json::Value>(line).expect("every line is JSON");
            }
        }
        assert!(
            std::fs::read_to_string(&path).unwrap().contains("\"key_id\":199"),
            "the newest line is in the live file"
        );
    }
}
