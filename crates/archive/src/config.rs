//! Where the archive lives: MinIO / S3 or a local directory.

use std::fmt;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use serde::{Deserialize, Serialize};
use sqdata_core::{Error, Result};

/// The object store holding the archive.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    /// `s3://bucket/prefix` (MinIO, S3, any S3-compatible server) or a local
    /// directory (`file:///abs/dir` or a path).
    pub url: String,
    /// The S3 endpoint, e.g. `http://127.0.0.1:9000` for MinIO; empty for AWS.
    pub endpoint: String,
    /// Access key; empty to take `AWS_ACCESS_KEY_ID` from the environment.
    pub access_key: String,
    /// Secret key; empty to take `AWS_SECRET_ACCESS_KEY` from the environment.
    pub secret_key: String,
    /// Region (MinIO ignores it).
    pub region: String,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            url: "archive".into(),
            endpoint: String::new(),
            access_key: String::new(),
            secret_key: String::new(),
            region: "us-east-1".into(),
        }
    }
}

impl fmt::Debug for ArchiveConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArchiveConfig")
            .field("url", &self.url)
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key)
            .field("secret_key", &if self.secret_key.is_empty() { "" } else { "***" })
            .field("region", &self.region)
            .finish()
    }
}

impl ArchiveConfig {
    /// A relative directory made relative to `root` (S3 URLs unchanged).
    pub fn rooted(mut self, root: &std::path::Path) -> ArchiveConfig {
        if !self.url.starts_with("s3://") {
            let dir = std::path::Path::new(self.url.strip_prefix("file://").unwrap_or(&self.url));
            if dir.is_relative() {
                self.url = root.join(dir).display().to_string();
            }
        }
        self
    }

    /// The store, the key prefix inside it and a label for messages.
    pub(crate) fn build(&self) -> Result<(Arc<dyn ObjectStore>, Path, String)> {
        let bad = |e: &dyn fmt::Display| Error::Config(format!("archive {}: {e}", self.url));
        if let Some(rest) = self.url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::Config(format!("archive url {:?} names no bucket", self.url)));
            }
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_region(&self.region)
                .with_virtual_hosted_style_request(false)
                // Fail within seconds when the server is down (the default
                // retries for minutes): the caller reports it, nothing moved.
                .with_retry(RetryConfig {
                    backoff: BackoffConfig::default(),
                    max_retries: 3,
                    retry_timeout: std::time::Duration::from_secs(20),
                })
                .with_client_options(ClientOptions::new().with_connect_timeout(std::time::Duration::from_secs(5)));
            if !self.endpoint.is_empty() {
                b = b.with_endpoint(&self.endpoint).with_allow_http(self.endpoint.starts_with("http://"));
            }
            if !self.access_key.is_empty() {
                b = b.with_access_key_id(&self.access_key).with_secret_access_key(&self.secret_key);
            }
            let store = b.build().map_err(|e| bad(&e))?;
            let prefix = Path::parse(prefix.trim_end_matches('/')).map_err(|e| bad(&e))?;
            Ok((Arc::new(store), prefix, self.url.trim_end_matches('/').to_owned()))
        } else {
            let dir = self.url.strip_prefix("file://").unwrap_or(&self.url);
            if dir.contains("://") {
                return Err(Error::Config(format!(
                    "archive url {:?}: expected s3://bucket/prefix or a directory",
                    self.url
                )));
            }
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| bad(&e))?;
            Ok((Arc::new(store), Path::default(), dir.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_directories_are_rooted_and_urls_kept() {
        let root = std::path::Path::new("/srv/sq");
        let c = |url: &str| ArchiveConfig { url: url.into(), ..Default::default() }.rooted(root).url;
        assert_eq!(c("archive"), "/srv/sq/archive");
        assert_eq!(c("file://cold"), "/srv/sq/cold");
        assert_eq!(c("/abs/dir"), "/abs/dir");
        assert_eq!(c("s3://bucket/prefix"), "s3://bucket/prefix");
    }
}
