//! How a request that was admitted ended, as the usage table and the usage
//! log name it.

/// The `status` of a usage row and of a usage log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered whole, with the counts the upstream reported.
    Ok,
    /// The upstream's answer broke off, or ended without its end marker.
    UpstreamFailed,
    /// The upstream sent nothing for longer than `STREAM_IDLE_TIMEOUT_SECS`.
    UpstreamTimeout,
    /// The client went away before the end.
    ClientAborted,
    /// The upstream answered with an error status.
    UpstreamError,
    /// No upstream answered at all: the request was given back.
    UpstreamUnreachable,
    /// Admitted, then stopped by the gate before it was sent: given back.
    NotForwarded,
    /// Ran past `MAX_STREAM_DURATION_SECS`.
    StreamTooLong,
    /// The key was deactivated, rotated, expired or deleted meanwhile.
    KeyRevoked,
    /// The process that served it died mid-request; settled at the next start.
    Interrupted,
}

impl Outcome {
    pub const ALL: [Outcome; 10] = [
        Outcome::Ok,
        Outcome::UpstreamFailed,
        Outcome::UpstreamTimeout,
        Outcome::ClientAborted,
        Outcome::UpstreamError,
        Outcome::UpstreamUnreachable,
        Outcome::NotForwarded,
        Outcome::StreamTooLong,
        Outcome::KeyRevoked,
        Outcome::Interrupted,
    ];

    /// The name stored and logged; these strings are part of the usage data.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::UpstreamFailed => "upstream_failed",
            Outcome::UpstreamTimeout => "upstream_timeout",
            Outcome::ClientAborted => "client_aborted",
            Outcome::UpstreamError => "upstream_error",
            Outcome::UpstreamUnreachable => "upstream_unreachable",
            Outcome::NotForwarded => "not_forwarded",
            Outcome::StreamTooLong => "stream_too_long",
            Outcome::KeyRevoked => "key_revoked",
            Outcome::Interrupted => "interrupted",
        }
    }

    /// The outcome a stored name stands for.
    pub fn parse(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_keeps_its_stored_name_and_reads_back() {
        let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(
            names,
            [
                "ok",
                "upstream_failed",
                "upstream_timeout",
                "client_aborted",
                "upstream_error",
                "upstream_unreachable",
                "not_forwarded",
                "stream_too_long",
                "key_revoked",
                "interrupted"
            ]
        );
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
        }
        assert_eq!(Outcome::parse("refused"), None);
    }
}
