//! Noticing that the SQLite file was deleted or replaced under the gate.
//!
//! Open connections keep the file they opened even after it is unlinked:
//! SQLite would go on reading and writing a file nobody can see, and lose it
//! all at exit. The path's device and inode are compared with those seen at
//! open; once they differ the store refuses every read and write until a
//! restart opens whatever is at the path now. No descriptor of our own is held
//! on the file: closing one would drop SQLite's POSIX locks on it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A busy gate stats the path at most this often.
const CHECK_EVERY: Duration = Duration::from_secs(1);

pub struct FileWatch {
    path: PathBuf,
    identity: (u64, u64),
    state: Mutex<State>,
}

struct State {
    checked_at: Instant,
    /// Once set it stays: the connections still hold the old file.
    lost: Option<String>,
}

impl FileWatch {
    pub fn new(path: &Path) -> std::io::Result<FileWatch> {
        let meta = std::fs::metadata(path)?;
        Ok(FileWatch {
            path: path.to_path_buf(),
            identity: (meta.dev(), meta.ino()),
            state: Mutex::new(State { checked_at: Instant::now(), lost: None }),
        })
    }

    /// The file is still the one opened; looks again at most once a second.
    pub fn check(&self) -> Result<(), String> {
        self.look(false)
    }

    /// The same, looking at the path now.
    pub fn check_now(&self) -> Result<(), String> {
        self.look(true)
    }

    fn look(&self, now: bool) -> Result<(), String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lost) = &state.lost {
            return Err(lost.clone());
        }
        if !now && state.checked_at.elapsed() < CHECK_EVERY {
            return Ok(());
        }
        state.checked_at = Instant::now();
        let problem = match std::fs::metadata(&self.path) {
            Ok(meta) if (meta.dev(), meta.ino()) == self.identity => return Ok(()),
            Ok(_) => "was replaced by another file",
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "was deleted",
            // Permissions changed or the folder is gone for a moment: say so,
            // but only an answer about the file itself makes the loss stick.
            Err(e) => {
                return Err(format!("the database file {} cannot be checked: {e}", self.path.display()))
            }
        };
        let message = format!(
            "the database file {} {problem} while the gate was running; \
             refusing to use it until the gate is restarted",
            self.path.display()
        );
        log::error!("{message}");
        state.lost = Some(message.clone());
        Err(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_or_replaced_file_is_noticed_and_stays_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        std::fs::write(&path, b"one").unwrap();
        let watch = FileWatch::new(&path).unwrap();
        assert_eq!(watch.check_now(), Ok(()));
        std::fs::remove_file(&path).unwrap();
        let err = watch.check_now().unwrap_err();
        assert!(err.contains("was deleted"), "{err}");
        std::fs::write(&path, b"two").unwrap();
        assert!(watch.check().is_err(), "a new file at the path is not the one the connections hold");

        let replaced = FileWatch::new(&path).unwrap();
        let other = dir.path().join("other");
        std::fs::write(&other, b"three").unwrap();
        std::fs::rename(&other, &path).unwrap();
        let err = replaced.check_now().unwrap_err();
        assert!(err.contains("was replaced"), "{err}");
    }
}
