//! Driver errors mapped onto `sqdata_core::Error`.

use sqdata_core::Error;

use crate::core::BACKEND;

/// Maps a driver error: network trouble and timeouts are retryable, so are
/// the server's overload refusals; anything else is a backend error.
pub(crate) fn map_err(e: clickhouse::error::Error) -> Error {
    use clickhouse::error::Error as E;
    match e {
        E::Network(_) => Error::Unavailable { backend: BACKEND, message: e.to_string(), source: Some(Box::new(e)) },
        E::TimedOut => {
            Error::Unavailable { backend: BACKEND, message: "request timed out".into(), source: Some(Box::new(e)) }
        }
        E::BadResponse(ref m) => {
            let retryable = [
                "TOO_MANY_SIMULTANEOUS_QUERIES",
                "Too many parts",
                "TIMEOUT_EXCEEDED",
                "Memory limit",
                "NETWORK_ERROR",
            ]
            .iter()
            .any(|s| m.contains(s));
            Error::Backend { backend: BACKEND, message: m.clone(), retryable, source: None }
        }
        other => Error::Backend {
            backend: BACKEND,
            message: other.to_string(),
            retryable: false,
            source: Some(Box::new(other)),
        },
    }
}
