//! What the store knows about its own health beyond "a read answers": the
//! last write that failed for a reason outside the request (disk full, I/O,
//! a lock held too long), until a write succeeds again.

use super::{StoreError, StoreResult};
use std::sync::Mutex;

/// The write failure `/health` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFailure {
    /// A short public description (`describe`); the whole error goes to the log.
    pub reason: String,
    /// Unix seconds of the first failure in this run of failures.
    pub since: i64,
    /// Unix seconds of the latest failure.
    pub last: i64,
}

#[derive(Default)]
pub struct WriteHealth(Mutex<Option<WriteFailure>>);

impl WriteHealth {
    /// Passes a write's result through, remembering a fault and forgetting it
    /// at the next success.
    pub fn note<T>(&self, result: StoreResult<T>) -> StoreResult<T> {
        match &result {
            Ok(_) => {
                let mut failure = self.0.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(f) = failure.take() {
                    log::info!("database writes work again (failing since {})", f.since);
                }
            }
            Err(e) if is_fault(e) => {
                let now = chrono::Utc::now().timestamp();
                let mut failure = self.0.lock().unwrap_or_else(|e| e.into_inner());
                if failure.is_none() {
                    log::error!("a database write failed, and writes count as failing until one works: {e}");
                }
                let since = failure.as_ref().map_or(now, |f| f.since);
                *failure = Some(WriteFailure { reason: describe(e).to_owned(), since, last: now });
            }
            Err(_) => {}
        }
        result
    }

    pub fn failure(&self) -> Option<WriteFailure> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A fault of the database rather than of the request: a constraint the
/// request broke or a row it named that is not there says nothing about
/// whether the next write will work.
pub fn is_fault(e: &StoreError) -> bool {
    use sqlx::error::ErrorKind;
    match e {
        StoreError::Batch(inner) => is_fault(inner),
        StoreError::Database(sqlx::Error::RowNotFound) | StoreError::Conflict(_) => false,
        StoreError::Database(sqlx::Error::Database(db)) => !matches!(
            db.kind(),
            ErrorKind::UniqueViolation
                | ErrorKind::ForeignKeyViolation
                | ErrorKind::NotNullViolation
                | ErrorKind::CheckViolation
        ),
        _ => true,
    }
}

/// What went wrong, in words fit for an unauthenticated `/health`: no path,
/// no server message.
pub fn describe(e: &StoreError) -> &'static str {
    match e {
        StoreError::Batch(inner) => describe(inner),
        StoreError::FileLost(m) if m.contains("deleted") => "the database file was deleted",
        StoreError::FileLost(m) if m.contains("replaced") => "the database file was replaced",
        StoreError::FileLost(_) => "the database file cannot be checked",
        StoreError::Database(sqlx::Error::PoolTimedOut) => "timed out waiting for the database",
        StoreError::Database(sqlx::Error::Io(_) | sqlx::Error::Tls(_)) => "cannot reach the database",
        StoreError::Database(sqlx::Error::Database(db)) => {
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                sqlite_reason(db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0) & 0xff)
            } else {
                postgres_reason(db.code().as_deref().unwrap_or(""))
            }
        }
        StoreError::Database(_)
        | StoreError::Migration(_)
        | StoreError::Unsupported(_)
        | StoreError::Conflict(_) => "database error",
    }
}

/// By SQLite's primary result code.
fn sqlite_reason(code: i32) -> &'static str {
    match code {
        5 | 6 => "the database is locked",
        8 => "the database is read-only",
        10 => "disk I/O error",
        11 | 26 => "the database file is damaged",
        13 => "the disk is full",
        14 => "cannot open the database file",
        _ => "database error",
    }
}

/// By SQLSTATE class.
fn postgres_reason(state: &str) -> &'static str {
    match state {
        "53100" => "the disk is full",
        "25006" => "the database is read-only",
        "55P03" | "40P01" => "the database is locked",
        s if s.starts_with("53") => "the database is out of resources",
        s if s.starts_with("57") || s.starts_with("08") => "the database is unavailable",
        s if s.starts_with("58") => "disk I/O error",
        _ => "database error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_is_kept_until_a_write_succeeds() {
        let health = WriteHealth::default();
        let failed: StoreResult<()> = Err(StoreError::Database(sqlx::Error::PoolTimedOut));
        assert!(health.note(failed).is_err());
        let first = health.failure().expect("the fault is remembered");
        assert_eq!(first.reason, "timed out waiting for the database");
        let _ = health.note::<()>(Err(StoreError::Database(sqlx::Error::PoolTimedOut)));
        assert_eq!(health.failure().map(|f| f.since), Some(first.since), "the run keeps its start");
        assert!(health.note(Ok(())).is_ok());
        assert_eq!(health.failure(), None);
    }

    #[test]
    fn a_missing_row_is_not_a_fault() {
        let health = WriteHealth::default();
        let _ = health.note::<()>(Err(StoreError::Database(sqlx::Error::RowNotFound)));
        assert_eq!(health.failure(), None);
    }
}
