//! Secrets: the signing keys of access tokens (JWT, HS256 pinned), refresh
//! tokens and API keys (random, stored as SHA-256), and passwords
//! (Argon2id with OWASP's parameters, hashed off the async executor behind
//! a semaphore so a login storm cannot take every core).
//!
//! Libraries: `jsonwebtoken` (claims validation: `exp`, `nbf`, `iss`, `aud`
//! required; only HS256 accepted), `argon2` (RustCrypto), `sha2`,
//! `getrandom` (the OS generator). Nothing here prints a secret.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqdata::{Error, Result};

/// The shortest signing key accepted, bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// `n` random bytes from the OS.
pub fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| Error::Config(format!("the OS random generator failed: {e}")))?;
    Ok(b)
}

/// A random token: `bytes` random bytes, base64url.
pub fn random_token(bytes: usize) -> Result<String> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes(bytes)?))
}

/// SHA-256 of a secret, hex: what the store keeps of API keys and refresh
/// tokens (high-entropy secrets need no slow hash).
pub fn sha256_hex(secret: &str) -> String {
    let d = Sha256::digest(secret.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two strings of the same length.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user.
    pub sub: String,
    /// The session (`sid`), so logout and refresh reuse end the token too.
    pub sid: String,
    /// Unique id.
    pub jti: String,
    /// Issued at (seconds).
    pub iat: i64,
    /// Not before (seconds).
    pub nbf: i64,
    /// Expires (seconds).
    pub exp: i64,
}

/// The signing keys: the first signs, every one verifies (rotation by
/// `kid`). Loaded from a 0600 file of `kid = base64` lines.
#[derive(Clone)]
pub struct KeyRing {
    signing: (String, Arc<EncodingKey>),
    verifying: Arc<BTreeMap<String, DecodingKey>>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing").field("signing_kid", &self.signing.0).field("keys", &self.verifying.len()).finish()
    }
}

impl KeyRing {
    /// From `(kid, key)` pairs, the first signing. Each key must have at
    /// least [`MIN_KEY_BYTES`] bytes.
    pub fn new(keys: &[(String, Vec<u8>)]) -> Result<KeyRing> {
        let Some((kid, first)) = keys.first() else {
            return Err(Error::Config("the JWT key file holds no key".into()));
        };
        let mut verifying = BTreeMap::new();
        for (kid, k) in keys {
            if k.len() < MIN_KEY_BYTES {
                return Err(Error::Config(format!(
                    "JWT key {kid:?} has {} bytes; at least {MIN_KEY_BYTES} random bytes are required \
                     (`sqdata init` writes one)",
                    k.len()
                )));
            }
            if kid.is_empty() || !kid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(Error::Config(format!("JWT key id {kid:?}: letters, digits, '-' and '_' only")));
            }
            verifying.insert(kid.clone(), DecodingKey::from_secret(k));
        }
        Ok(KeyRing {
            signing: (kid.clone(), Arc::new(EncodingKey::from_secret(first))),
            verifying: Arc::new(verifying),
        })
    }

    /// Reads the key file; refuses one other users may read.
    pub fn load(path: &Path) -> Result<KeyRing> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| {
            Error::Config(format!("JWT key file {}: {e} (run `sqdata init` to write one)", path.display()))
        })?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(Error::Config(format!(
                "JWT key file {} may be read by others (mode {:o}); chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (kid, b64) = line
                .split_once('=')
                .ok_or_else(|| Error::Config(format!("{}:{}: expected `kid = base64 key`", path.display(), i + 1)))?;
            let key = STANDARD
                .decode(b64.trim())
                .map_err(|_| Error::Config(format!("{}:{}: the key is not base64", path.display(), i + 1)))?;
            keys.push((kid.trim().to_string(), key));
        }
        KeyRing::new(&keys)
    }

    /// The keys of `SQDATA_JWT_KEY` (base64 of at least 32 bytes, kid
    /// `env`) when set, else of `path`, written first (0600) when missing.
    /// Returns the ring and whether a new file was written.
    pub fn load_or_create(path: &Path) -> Result<(KeyRing, bool)> {
        if let Ok(v) = std::env::var("SQDATA_JWT_KEY") {
            let key = STANDARD.decode(v.trim()).map_err(|_| Error::Config("SQDATA_JWT_KEY is not base64".into()))?;
            return Ok((KeyRing::new(&[("env".to_string(), key)])?, false));
        }
        let created = match KeyRing::write_new(path) {
            Ok(()) => true,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(e),
        };
        Ok((KeyRing::load(path)?, created))
    }

    /// Writes a new key file with one fresh key (mode 0600), atomically: a
    /// complete file appears under `path` or nothing does, and an existing
    /// file is never replaced (`AlreadyExists`) — two processes starting at
    /// once end up with the same key.
    pub fn write_new(path: &Path) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(d) = path.parent() {
            sqdata::raw::create_dir_all_synced(d)?;
        }
        let key = STANDARD.encode(random_bytes(MIN_KEY_BYTES * 2)?);
        let kid = format!("k{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| {
                writeln!(f, "# sqdata access-token signing keys: the first signs, all verify. Keep secret.")?;
                writeln!(f, "{kid} = {key}")?;
                f.sync_all()
            })
            .and_then(|()| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        written.map_err(|e| Error::io(path, e))?;
        if let Some(d) = path.parent() {
            sqdata::raw::sync_dir(d)?;
        }
        Ok(())
    }

    /// Signs claims (HS256, `kid` in the header).
    pub fn sign(&self, claims: &Claims) -> Result<String> {
        let header = Header { kid: Some(self.signing.0.clone()), ..Header::new(jsonwebtoken::Algorithm::HS256) };
        jsonwebtoken::encode(&header, claims, &self.signing.1)
            .map_err(|e| Error::Config(format!("signing a token: {e}")))
    }

    /// Verifies a token: HS256 only, a known `kid`, the signature, `exp`
    /// and `nbf` (5 s leeway), `iss` and `aud`; every claim required.
    pub fn verify(&self, token: &str, issuer: &str) -> std::result::Result<Claims, &'static str> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed token")?;
        if header.alg != jsonwebtoken::Algorithm::HS256 {
            return Err("token algorithm not accepted");
        }
        let key = header.kid.as_deref().and_then(|k| self.verifying.get(k)).ok_or("unknown signing key")?;
        let mut v = Validation::new(jsonwebtoken::Algorithm::HS256);
        v.leeway = 5;
        v.validate_nbf = true;
        v.set_issuer(&[issuer]);
        v.set_audience(&[issuer]);
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<Claims>(token, key, &v).map(|d| d.claims).map_err(|_| "invalid token")
    }
}

/// Argon2id with OWASP's minimum parameters (19 MiB, 2 passes, 1 lane).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password's strength: 12 to 256 characters.
pub fn check_password(p: &str) -> Result<()> {
    let n = p.chars().count();
    if !(12..=256).contains(&n) {
        return Err(Error::invalid("password", "(hidden)", "12 to 256 characters"));
    }
    Ok(())
}

/// Argon2id PHC string of a password (blocking: ~tens of ms).
pub fn hash_password(p: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&random_bytes(16)?).map_err(|e| Error::Config(e.to_string()))?;
    argon2().hash_password(p.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| Error::Config(e.to_string()))
}

/// Whether `p` matches the PHC string (blocking). A malformed hash never matches.
pub fn verify_password(p: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| argon2().verify_password(p.as_bytes(), &h).is_ok())
}

/// Argon2id with the memory kept by its owner: a hashing thread keeps one,
/// so a login costs no 19 MiB allocation, page faults or unmapping (which
/// the kernel does at full priority, whatever the thread's own) — only the
/// hashing itself, which the thread's `SCHED_IDLE` keeps out of the way.
#[derive(Debug, Default)]
pub struct Workspace {
    blocks: Vec<argon2::Block>,
}

impl Workspace {
    fn memory(&mut self, n: usize) -> &mut [argon2::Block] {
        if self.blocks.len() < n {
            self.blocks.resize(n, argon2::Block::new());
        }
        &mut self.blocks[..n]
    }

    /// As [`hash_password`], in this workspace.
    pub fn hash(&mut self, p: &str) -> Result<String> {
        use argon2::password_hash::Output;
        let fail = |e: &dyn std::fmt::Display| Error::Config(format!("hashing a password: {e}"));
        let salt = SaltString::encode_b64(&random_bytes(16)?).map_err(|e| fail(&e))?;
        let argon = argon2();
        let mut raw_salt = [0u8; 64];
        let raw_salt = salt.decode_b64(&mut raw_salt).map_err(|e| fail(&e))?;
        let mut out = [0u8; 32];
        let n = argon.params().block_count();
        argon.hash_password_into_with_memory(p.as_bytes(), raw_salt, &mut out, self.memory(n)).map_err(|e| fail(&e))?;
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: argon.params().try_into().map_err(|e: argon2::password_hash::Error| fail(&e))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
        };
        Ok(phc.to_string())
    }

    /// As [`verify_password`], in this workspace.
    pub fn verify(&mut self, p: &str, phc: &str) -> bool {
        use argon2::password_hash::Output;
        let Ok(h) = PasswordHash::new(phc) else { return false };
        let (Ok(alg), Some(expected), Some(salt)) = (Algorithm::try_from(h.algorithm), h.hash, h.salt) else {
            return false;
        };
        let version = match h.version.map(Version::try_from) {
            None => Version::default(),
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        let Ok(params) = Params::try_from(&h) else { return false };
        let mut raw_salt = [0u8; 64];
        let Ok(raw_salt) = salt.decode_b64(&mut raw_salt) else { return false };
        let mut out = vec![0u8; expected.len()];
        let n = params.block_count();
        let argon = Argon2::new(alg, version, params);
        if argon.hash_password_into_with_memory(p.as_bytes(), raw_salt, &mut out, self.memory(n)).is_err() {
            return false;
        }
        // Output compares in constant time
        Output::new(&out).is_ok_and(|o| o == expected)
    }
}

/// A hash of nothing anyone knows: unknown users cost what wrong passwords
/// cost, so timing tells nobody which names exist.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&random_token(24).unwrap_or_default()).unwrap_or_default())
}

/// An API key as handed out: `sqk_<id>_<secret>`.
pub fn new_api_key() -> Result<(String, String, String)> {
    let id: String = random_token(12)?.chars().filter(char::is_ascii_alphanumeric).take(12).collect();
    let id = if id.len() < 8 { format!("{id}{}", "x".repeat(8 - id.len())) } else { id };
    let secret = random_token(32)?;
    Ok((format!("sqk_{id}_{secret}"), id, sha256_hex(&secret)))
}

/// Splits a presented API key into (id, secret).
pub fn parse_api_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("sqk_")?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

/// A refresh token as handed out: `<session id>.<secret>`; the store keeps
/// the secret's SHA-256.
pub fn new_refresh(session: &str) -> Result<(String, String)> {
    let secret = random_token(32)?;
    Ok((format!("{session}.{secret}"), sha256_hex(&secret)))
}

/// Splits a refresh token into (session id, secret hash).
pub fn parse_refresh(token: &str) -> Option<(&str, String)> {
    let (sid, secret) = token.split_once('.')?;
    (!sid.is_empty() && !secret.is_empty()).then(|| (sid, sha256_hex(secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::new(&[("k1".into(), vec![7u8; 32])]).unwrap()
    }

    fn claims(now: i64) -> Claims {
        Claims {
            iss: "sqdata".into(),
            aud: "sqdata".into(),
            sub: "alice".into(),
            sid: "s1".into(),
            jti: "j1".into(),
            iat: now,
            nbf: now,
            exp: now + 60,
        }
    }

    #[test]
    fn tokens_round_trip_and_short_keys_are_refused() {
        let now = chrono::Utc::now().timestamp();
        let t = ring().sign(&claims(now)).unwrap();
        assert_eq!(ring().verify(&t, "sqdata").unwrap(), claims(now));
        assert!(ring().verify(&t, "other").is_err(), "another issuer");
        assert!(KeyRing::new(&[("k1".into(), vec![7u8; 31])]).is_err(), "a 31-byte key");
        let other = KeyRing::new(&[("k1".into(), vec![8u8; 32])]).unwrap();
        assert!(other.verify(&t, "sqdata").is_err(), "another key");
    }

    #[test]
    fn the_key_file_is_written_once_private_and_a_short_or_shared_key_refuses_to_start() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("_secrets").join("jwt.keys");
        let (a, wrote) = KeyRing::load_or_create(&path).unwrap();
        assert!(wrote);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (b, wrote) = KeyRing::load_or_create(&path).unwrap();
        assert!(!wrote, "never replaced");
        let t = a.sign(&claims(chrono::Utc::now().timestamp())).unwrap();
        assert!(b.verify(&t, "sqdata").is_ok(), "the same key after a restart");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(KeyRing::load(&path).is_err(), "a key file others may read");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, format!("short = {}\n", STANDARD.encode([1u8; 16]))).unwrap();
        assert!(KeyRing::load(&path).is_err(), "a 16-byte key");
    }

    #[test]
    fn a_workspace_hashes_and_verifies_as_the_library_does() {
        let mut ws = Workspace::default();
        let mine = ws.hash("correct horse battery").unwrap();
        assert!(mine.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{mine}");
        assert!(verify_password("correct horse battery", &mine), "the library accepts ours");
        let theirs = hash_password("correct horse battery").unwrap();
        assert!(ws.verify("correct horse battery", &theirs), "we accept the library's");
        assert!(!ws.verify("correct horse batterz", &theirs));
        // other parameters (OWASP's 7 MiB, 5 passes) in the same workspace
        let small = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(7 * 1024, 5, 1, None).unwrap());
        let salt = SaltString::encode_b64(&[9u8; 16]).unwrap();
        let other = small.hash_password(b"another password!", &salt).unwrap().to_string();
        assert!(ws.verify("another password!", &other));
        assert!(ws.verify("correct horse battery", &mine), "and back");
        for bad in ["", "$argon2id$", "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "plain"] {
            assert!(!ws.verify("x", bad), "{bad}");
        }
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(check_password("short").is_err());
    }

    #[test]
    fn keys_and_refresh_tokens_parse() {
        let (key, id, hash) = new_api_key().unwrap();
        let (pid, secret) = parse_api_key(&key).unwrap();
        assert_eq!((pid, sha256_hex(secret)), (id.as_str(), hash));
        let (tok, h) = new_refresh("sess").unwrap();
        assert_eq!(parse_refresh(&tok), Some(("sess", h)));
        assert!(parse_api_key("sqk_").is_none() && parse_refresh("nodot").is_none());
    }
}
