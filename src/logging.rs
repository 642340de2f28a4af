//! The process's logger: `RUST_LOG` through env_logger, with one correction.
//! actix-http reports a client's unparsable request (garbage bytes, a bad
//! header, a body cut short) as ERROR, though nothing is wrong with the gate;
//! its connection-level errors are demoted to DEBUG for requests that could
//! not be parsed and to WARN otherwise, so ERROR stays for the gate's own faults.

use log::{Level, Log, Metadata, Record};

struct Demoting(env_logger::Logger);

fn demoted(record: &Record) -> Option<Level> {
    if record.level() != Level::Error || !record.target().starts_with("actix_http::") {
        return None;
    }
    let message = record.args().to_string();
    Some(if message.contains("parse error") { Level::Debug } else { Level::Warn })
}

impl Log for Demoting {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        let Some(level) = demoted(record) else { return self.0.log(record) };
        let metadata = Metadata::builder().level(level).target(record.target()).build();
        if self.0.enabled(&metadata) {
            self.0.log(
                &Record::builder()
                    .metadata(metadata)
                    .args(*record.args())
                    .module_path(record.module_path())
                    .file(record.file())
                    .line(record.line())
                    .build(),
            );
        }
    }

    fn flush(&self) {
        self.0.flush()
    }
}

/// Starts logging with `default_filter` unless `RUST_LOG` says otherwise.
pub fn init(default_filter: &str) {
    let logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_filter)).build();
    let max = logger.filter();
    if log::set_boxed_logger(Box::new(Demoting(logger))).is_ok() {
        log::set_max_level(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_actix_http_errors_are_demoted() {
        let args = format_args!("stream error: request parse error: invalid Header provided");
        let parse =
            Record::builder().level(Level::Error).target("actix_http::h1::dispatcher").args(args).build();
        assert_eq!(demoted(&parse), Some(Level::Debug));
        let args = format_args!("stream error: connection reset");
        let io =
            Record::builder().level(Level::Error).target("actix_http::h1::dispatcher").args(args).build();
        assert_eq!(demoted(&io), Some(Level::Warn));
        let args = format_args!("the database is gone");
        let ours = Record::builder().level(Level::Error).target("ollama_gate::store").args(args).build();
        assert_eq!(demoted(&ours), None);
    }
}
