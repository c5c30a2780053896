//! Where the registry lives: [`SqlConfig`] (`[registry]` in sqdata.toml),
//! and the URL redaction that keeps passwords out of logs.

use std::fmt;

use sqdata_core::{Error, Result};

/// Where the registry lives (`[registry]` in sqdata.toml).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqlConfig {
    /// `mysql://user:password@host:3306/db` or `sqlite:///path/registry.db`
    /// (created if missing).
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// How long to wait for a connection.
    pub connect_timeout_ms: u64,
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig { url: "sqlite://sqdata.db".into(), max_connections: 4, connect_timeout_ms: 5_000 }
    }
}

impl SqlConfig {
    /// A relative SQLite path (`sqlite://sqdata.db`) made relative to `root`.
    pub fn rooted(mut self, root: &std::path::Path) -> SqlConfig {
        if let Some(rest) = self.url.strip_prefix("sqlite://")
            && !rest.starts_with('/')
            && !rest.starts_with(":memory:")
        {
            self.url = format!("sqlite://{}", root.join(rest).display());
        }
        self
    }

    /// `mysql` or `sqlite`, or a configuration error.
    pub fn backend(&self) -> Result<&'static str> {
        if self.url.starts_with("mysql:") || self.url.starts_with("mariadb:") {
            Ok("mysql")
        } else if self.url.starts_with("sqlite:") {
            Ok("sqlite")
        } else {
            Err(Error::Config(format!(
                "registry url {:?}: expected mysql://user:password@host:3306/db or sqlite://path",
                redact(&self.url)
            )))
        }
    }
}

impl fmt::Debug for SqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlConfig")
            .field("url", &redact(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .finish()
    }
}

/// `scheme://user:***@host/…`: the password never reaches a log.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact("mysql://root:pw@127.0.0.1:3306/test"), "mysql://root:***@127.0.0.1:3306/test");
        assert_eq!(redact("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
        let c = SqlConfig { url: "mysql://u:secret@h/db".into(), ..Default::default() };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
