//! The one error type every store returns.

use std::time::Duration;

/// A boxed source error from a driver.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a store.
///
/// "Not found" is never an error: reads return `Option`, empty maps or empty
/// pages. A backend that cannot answer returns an error — never an empty
/// result — so that the hybrid store can fall back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad input, rejected before anything was stored.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidInput {
        /// The field that was wrong (`code`, `price`, `high`, `date`, …).
        field: String,
        /// The offending value, as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// Stored data that cannot be read back (a truncated or corrupt file, a
    /// row that fails validation). Nothing is overwritten when this is seen.
    #[error("corrupt data at {location}: {reason}{}", backup_note(.last_good))]
    Corrupt {
        /// A file path or a backend-specific location.
        location: String,
        /// What is wrong with it.
        reason: String,
        /// Where the last good version is kept, if there is one.
        last_good: Option<String>,
    },

    /// The backend could not be reached or refused the connection.
    #[error("{backend} unavailable: {message}")]
    Unavailable {
        /// Backend name (`redis`, `clickhouse`, `file`, …).
        backend: &'static str,
        /// What happened.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<BoxError>,
    },

    /// The operation did not complete in time.
    #[error("{backend} timed out after {after:?} during {op}")]
    Timeout {
        /// Backend name.
        backend: &'static str,
        /// The operation.
        op: &'static str,
        /// The deadline that passed.
        after: Duration,
    },

    /// An I/O error on a path.
    #[error("I/O error at {path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The backend answered with an error of its own.
    #[error("{backend} error: {message}")]
    Backend {
        /// Backend name.
        backend: &'static str,
        /// The backend's message.
        message: String,
        /// Whether trying again may succeed.
        retryable: bool,
        /// The driver's error.
        #[source]
        source: Option<BoxError>,
    },

    /// The backend does not hold this domain or support this operation.
    #[error("{backend} does not support {what}")]
    Unsupported {
        /// Backend name.
        backend: &'static str,
        /// The operation or domain.
        what: String,
    },

    /// A conditional change whose condition no longer holds (another
    /// writer was first); nothing was stored.
    #[error("conflict on {what}: {reason}")]
    Conflict {
        /// What was to change.
        what: String,
        /// What changed since.
        reason: String,
    },

    /// Configuration that cannot be used.
    #[error("configuration error: {0}")]
    Config(String),
}

fn backup_note(last_good: &Option<String>) -> String {
    match last_good {
        Some(p) => format!(" (last good version kept at {p})"),
        None => String::new(),
    }
}

impl Error {
    /// Bad input naming the field and the value.
    pub fn invalid(field: impl Into<String>, value: impl ToString, reason: impl Into<String>) -> Error {
        Error::InvalidInput { field: field.into(), value: value.to_string(), reason: reason.into() }
    }

    /// Corrupt stored data.
    pub fn corrupt(location: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Corrupt { location: location.into(), reason: reason.into(), last_good: None }
    }

    /// An I/O error on a path.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Error {
        Error::Io { path: path.as_ref().display().to_string(), source }
    }

    /// Whether the same call may succeed if tried again (a dead connection, a
    /// timeout). Invalid input, corrupt data and unsupported operations are
    /// not retryable; the hybrid store falls back on retryable errors and on
    /// backend failures, never on "not found".
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unavailable { .. } | Error::Timeout { .. } => true,
            Error::Backend { retryable, .. } => *retryable,
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::BrokenPipe
            ),
            _ => false,
        }
    }

    /// Whether the caller's input was at fault (nothing was stored).
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Error::InvalidInput { .. })
    }

    /// A stable machine-readable kind, for JSON output and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidInput { .. } => "invalid_input",
            Error::Corrupt { .. } => "corrupt",
            Error::Unavailable { .. } => "unavailable",
            Error::Timeout { .. } => "timeout",
            Error::Io { .. } => "io",
            Error::Backend { .. } => "backend",
            Error::Unsupported { .. } => "unsupported",
            Error::Conflict { .. } => "conflict",
            Error::Config(_) => "config",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_names_field_and_value() {
        let e = Error::invalid("price", f64::NAN, "must be a finite number");
        assert_eq!(e.to_string(), "invalid price \"NaN\": must be a finite number");
        assert!(!e.is_retryable());
        assert!(e.is_invalid_input());
    }

    #[test]
    fn retryable_kinds() {
        let e = Error::Unavailable { backend: "redis", message: "connection refused".into(), source: None };
        assert!(e.is_retryable());
        let e = Error::Timeout { backend: "redis", op: "snapshot", after: Duration::from_millis(50) };
        assert!(e.is_retryable());
        let e = Error::corrupt("/tmp/x.json", "EOF while parsing");
        assert!(!e.is_retryable());
    }

    #[test]
    fn corrupt_mentions_last_good() {
        let e = Error::Corrupt {
            location: "a.json".into(),
            reason: "truncated".into(),
            last_good: Some("a.json.last-good".into()),
        };
        assert!(e.to_string().contains("a.json.last-good"));
    }
}
