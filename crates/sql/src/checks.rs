//! Input checks and audit names shared by the auth areas (`users`, `grants`,
//! `keys`, `sessions`, `access`). Every refusal is `InvalidInput` naming its
//! field; a refused hash is never echoed (it may be a secret passed by
//! mistake), and a driver error that quotes one loses it.

use sqdata_core::{Error, Result};

/// What an error shows instead of a hash.
pub(crate) const REDACTED: &str = "<redacted>";

/// The audit actor of what the store does by itself: a lockout after failed
/// logins, the revocation of a session whose refresh token was replayed.
pub(crate) const SYSTEM_ACTOR: &str = "system";

/// The audit entity of a user (its grants included).
pub(crate) fn user_entity(name: &str) -> String {
    format!("user:{name}")
}

/// The audit entity of an API key.
pub(crate) fn key_entity(id: &str) -> String {
    format!("apikey:{id}")
}

/// The audit entity of a session.
pub(crate) fn session_entity(id: &str) -> String {
    format!("session:{id}")
}

/// A SHA-256 as the server writes it: 64 lowercase hex digits.
pub(crate) fn check_sha256(field: &str, hash: &str) -> Result<()> {
    if hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(Error::invalid(field, REDACTED, "expected a SHA-256: 64 lowercase hex digits"))
    }
}

/// A password hash: a PHC string (`$argon2id$v=19$…`), printable ASCII
/// without spaces, at most 512 bytes.
pub(crate) fn check_password_hash(hash: &str) -> Result<()> {
    let ok = hash.starts_with('$') && hash.len() <= 512 && hash.bytes().all(|b| b.is_ascii_graphic());
    if ok { Ok(()) } else { Err(Error::invalid("password_hash", REDACTED, "expected a PHC string ($argon2id$…)")) }
}

fn check_id(field: &str, id: &str, min: usize, max: usize, extra: &[u8], alphabet: &str) -> Result<()> {
    let ok_len = (min..=max).contains(&id.len());
    if ok_len && id.bytes().all(|b| b.is_ascii_alphanumeric() || extra.contains(&b)) {
        Ok(())
    } else {
        Err(Error::invalid(field, id, format!("{min} to {max} of {alphabet}")))
    }
}

/// An API key id (the `<id>` of `sqk_<id>_<secret>`): 8 to 32 letters or
/// digits.
pub(crate) fn check_key_id(id: &str) -> Result<()> {
    check_id("key", id, 8, 32, b"", "ASCII letters and digits")
}

/// A session id: 8 to 64 of `[A-Za-z0-9_-]` (URL-safe base64 fits).
pub(crate) fn check_session_id(id: &str) -> Result<()> {
    check_id("session", id, 8, 64, b"_-", "ASCII letters, digits, '_' and '-'")
}

/// Free text (a label, a route): at most `max` bytes, no control characters.
pub(crate) fn check_text(field: &str, s: &str, min: usize, max: usize) -> Result<()> {
    if s.len() < min || s.len() > max {
        return Err(Error::invalid(field, s, format!("{min} to {max} bytes")));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::invalid(field, s, "control characters are not allowed"));
    }
    Ok(())
}

/// Removes `secrets` from an error (MySQL quotes a duplicate key's value).
pub(crate) fn scrub(e: Error, secrets: &[&str]) -> Error {
    match e {
        Error::Backend { backend, message, retryable, source } => {
            if secrets.iter().any(|s| !s.is_empty() && message.contains(s)) {
                let message = secrets.iter().filter(|s| !s.is_empty()).fold(message, |m, s| m.replace(s, REDACTED));
                Error::Backend { backend, message, retryable, source: None }
            } else {
                Error::Backend { backend, message, retryable, source }
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_checked_and_never_echoed() {
        assert!(check_sha256("h", &"ab".repeat(32)).is_ok());
        let bad = ["AB".repeat(32), "a".repeat(63), "g".repeat(64), "secret-token".into()];
        for b in &bad {
            let e = check_sha256("h", b).unwrap_err().to_string();
            assert!(e.contains(REDACTED) && !e.contains(b.as_str()), "{e}");
        }
        assert!(check_sha256("h", "").is_err());
        assert!(check_password_hash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA").is_ok());
        let e = check_password_hash("hunter2").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn ids_are_bounded() {
        assert!(check_key_id("abcDEF12").is_ok());
        assert!(check_key_id("abc_DEF12").is_err());
        assert!(check_key_id("short").is_err());
        assert!(check_session_id("ab-_cd12ef").is_ok());
        assert!(check_session_id(&"a".repeat(65)).is_err());
    }

    #[test]
    fn scrub_removes_the_secret_and_the_source() {
        let h = "ab".repeat(32);
        let e = Error::Backend {
            backend: "mysql",
            message: format!("Duplicate entry '{h}' for key 'PRIMARY'"),
            retryable: true,
            source: Some("x".into()),
        };
        let e = scrub(e, &[&h]);
        assert!(!e.to_string().contains(&h), "{e}");
        assert!(std::error::Error::source(&e).is_none());
    }
}
