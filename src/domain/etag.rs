//! Entity tags (AIP-154): opaque to clients, derived from a resource's identity and its write counter.

use std::fmt::Display;

use sha2::{Digest, Sha256};

use super::{Error, Result};

/// The etag of version `version` of resource `kind`/`key`. Hashing the identity in means an etag copied from
/// one resource never matches another that happens to be at the same version.
pub fn etag(kind: &str, key: impl Display, version: i64) -> String {
    let digest = Sha256::digest(format!("{kind}/{key}/{version}"));
    digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Succeeds when `sent` is empty (no check asked for) or equals the current etag; ABORTED otherwise.
pub fn check(resource: &'static str, key: impl Display, version: i64, sent: &str) -> Result<()> {
    let current = etag(resource, &key, version);
    if sent.is_empty() || sent == current {
        Ok(())
    } else {
        Err(Error::EtagMismatch {
            resource,
            id: key.to_string(),
            sent: sent.to_owned(),
            current,
        })
    }
}
