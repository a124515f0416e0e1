//! Credentials to [`Principal`]: bearer JWTs (HS256, RS256, ES256) and static API keys. Everything that can be
//! checked once (key files, secret length, key file entries) is checked at start-up, so a bad configuration stops
//! the server instead of refusing every caller. This file ties the parts together: the [`Authenticator`] built
//! from the flags, its errors, and the verifier that `bearer`, `jwt`, `keys` and `api_keys` work for (`mint`
//! signs tokens for `ticketd token`).

mod api_keys;
mod bearer;
mod jwt;
mod keys;
mod mint;
#[cfg(test)]
mod test_support;

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::Principal;
use crate::config::{AuthConfig, AuthMode};
use api_keys::{API_KEYS_FLAG, ApiKey, load_api_keys, verify_api_key};
use bearer::bearer_token;
use jwt::{VerifiedToken, validation};
use keys::{PUBLIC_KEYS_FLAG, PublicKey, SECRET_FILE_FLAG, SECRET_FLAG, load_public_keys};

pub use api_keys::hash_api_key;
pub use keys::read_secret;
pub use mint::{Claims, mint_hs256};

/// `sub` becomes the actor id stored in history rows, which are not meant for unbounded text.
const MAX_SUB_CHARS: usize = 255;

/// Why the auth configuration cannot be used; one line an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// A file named by a flag could not be read.
    #[error("cannot read {flag} {}: {source}", path.display())]
    ReadFile {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Both forms of the HS256 secret were given.
    #[error("give either {SECRET_FLAG} or {SECRET_FILE_FLAG}, not both")]
    TwoSecrets,
    /// The HS256 secret is empty (or only white space).
    #[error("the HS256 secret given by {from} is empty")]
    EmptySecret { from: &'static str },
    /// The HS256 secret is too short to be a safe HS256 key.
    #[error(
        "the HS256 secret given by {from} is {len} bytes; HS256 keys must be at least 32 bytes (256 bits), e.g. from `openssl rand -hex 32`"
    )]
    ShortSecret { from: &'static str, len: usize },
    /// The public keys file is neither a usable PEM nor a usable JWKS.
    #[error("{PUBLIC_KEYS_FLAG} {}: {reason}", path.display())]
    PublicKeys { path: PathBuf, reason: String },
    /// The API keys (file or `TICKETD_API_KEYS`), or one of their entries, are malformed.
    #[error("{source_name}: {reason}")]
    ApiKeys { source_name: String, reason: String },
    /// `--auth jwt` was chosen without any way to verify a credential.
    #[error(
        "--auth jwt needs something to verify credentials with: {SECRET_FLAG} (or {SECRET_FILE_FLAG}), {PUBLIC_KEYS_FLAG} or {API_KEYS_FLAG}"
    )]
    NothingToVerify,
}

/// Why a request's credentials were refused; `message()` is safe to send to the client (never echo the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(String);

impl Rejection {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The reason, worded for the caller.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Rejection {}

/// Turns credentials into a [`Principal`]; cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    /// `None` in `--auth none` mode.
    verifier: Option<Arc<Verifier>>,
}

impl Authenticator {
    /// From the flags; `AuthMode::None` gives an authenticator that returns `Principal::anonymous_admin()` for every request, ignoring any header.
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthSetupError> {
        if config.mode == AuthMode::None {
            return Ok(Self { verifier: None });
        }
        // With only the rust_crypto feature the crate picks this provider itself; installing it explicitly keeps
        // that true if another dependency ever enables a second backend. Err only means one is already installed.
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();

        let secret = read_secret(config)?;
        let public_keys = match &config.jwt_public_keys_file {
            Some(path) => load_public_keys(path)?,
            None => Vec::new(),
        };
        let api_keys = load_api_keys(config)?;
        if secret.is_none() && public_keys.is_empty() && api_keys.is_empty() {
            return Err(AuthSetupError::NothingToVerify);
        }

        let mut validations = Vec::new();
        if secret.is_some() {
            validations.push(validation(Algorithm::HS256, config));
        }
        for alg in [Algorithm::RS256, Algorithm::ES256] {
            if public_keys.iter().any(|key| key.alg == alg) {
                validations.push(validation(alg, config));
            }
        }
        Ok(Self {
            verifier: Some(Arc::new(Verifier {
                hs256: secret.map(|secret| DecodingKey::from_secret(&secret)),
                public_keys,
                api_keys,
                validations,
                verified: Mutex::default(),
            })),
        })
    }

    /// `authorization` is the raw value of the `authorization` metadata (None when absent).
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Principal, Rejection> {
        let Some(verifier) = &self.verifier else {
            return Ok(Principal::anonymous_admin());
        };
        let token = bearer_token(authorization)?;
        if token.contains('.') {
            verifier.verify_jwt(token)
        } else {
            verify_api_key(&verifier.api_keys, token)
        }
    }

    /// Whether this is `--auth none`.
    pub fn is_disabled(&self) -> bool {
        self.verifier.is_none()
    }
}

impl fmt::Debug for Authenticator {
    // Never prints key material, so the authenticator can sit in structs that derive Debug.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.verifier {
            None => f.write_str("Authenticator(none)"),
            Some(verifier) => f
                .debug_struct("Authenticator")
                .field("hs256", &verifier.hs256.is_some())
                .field("public_keys", &verifier.public_keys.len())
                .field("api_keys", &verifier.api_keys.len())
                .finish(),
        }
    }
}

/// What `--auth jwt` verifies with.
struct Verifier {
    hs256: Option<DecodingKey>,
    public_keys: Vec<PublicKey>,
    api_keys: Vec<ApiKey>,
    /// One per accepted algorithm: a token whose `alg` has none here is refused before any key is tried.
    validations: Vec<Validation>,
    /// Tokens already verified, by their full text (signature included), until they expire: clients send the
    /// same token on every call, and checking it again costs ~45,000 instructions for HS256 (7 % of a whole
    /// GetTicket, measured with callgrind) and far more for RS256/ES256.
    verified: Mutex<HashMap<String, VerifiedToken>>,
}

/// The file a flag names; the error says which flag, so the operator knows what to fix.
fn read_file(flag: &'static str, path: &Path) -> Result<Vec<u8>, AuthSetupError> {
    std::fs::read(path).map_err(|source| AuthSetupError::ReadFile {
        flag,
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use jsonwebtoken::Algorithm;

    use super::{AuthSetupError, Authenticator, test_support::*};
    use crate::{auth::Principal, config::AuthConfig};

    #[test]
    fn authenticator_is_send_sync_and_clone() {
        fn assert_traits<T: Send + Sync + Clone + 'static>() {}
        assert_traits::<Authenticator>();
    }

    #[test]
    fn algorithms_follow_the_configured_keys() {
        let rsa_token = sign(Algorithm::RS256, RSA_PRIVATE, None, &claims("admin"));
        let hs_token = hs256(&claims("admin"));

        let secret_only = authenticator(&hs_config());
        refused(
            &secret_only,
            &rsa_token,
            "token algorithm RS256 is not accepted",
        );

        let keys_only = authenticator(&keys_config(PUBLIC_KEYS));
        refused(
            &keys_only,
            &hs_token,
            "token algorithm HS256 is not accepted",
        );

        let rsa_only = authenticator(&keys_config(RSA_PUBLIC));
        let ec_token = sign(Algorithm::ES256, EC_PRIVATE, None, &claims("admin"));
        refused(
            &rsa_only,
            &ec_token,
            "token algorithm ES256 is not accepted",
        );

        let both = authenticator(&AuthConfig {
            jwt_hs256_secret: Some(SECRET.to_owned()),
            ..keys_config(PUBLIC_KEYS)
        });
        assert!(bearer(&both, &rsa_token).is_ok());
        assert!(bearer(&both, &hs_token).is_ok());
    }

    #[test]
    fn setup_errors() {
        assert_eq!(
            setup_error(&jwt_config()),
            AuthSetupError::NothingToVerify.to_string()
        );
        let short = setup_error(&AuthConfig {
            jwt_hs256_secret: Some("too-short".to_owned()),
            ..jwt_config()
        });
        assert!(short.contains("at least 32 bytes"), "{short}");
        let empty = setup_error(&AuthConfig {
            jwt_hs256_secret: Some(" \n".to_owned()),
            ..jwt_config()
        });
        assert!(empty.contains("is empty"), "{empty}");
        let missing = setup_error(&AuthConfig {
            jwt_public_keys_file: Some(PathBuf::from("/nonexistent/keys.pem")),
            ..jwt_config()
        });
        assert!(
            missing.starts_with("cannot read --jwt-public-keys-file /nonexistent/keys.pem"),
            "{missing}"
        );
        let private = setup_error(&keys_config(RSA_PRIVATE));
        assert!(private.contains("is a private key"), "{private}");
        let garbage = temp_file("not a key");
        let garbage = setup_error(&keys_config(garbage.path().to_str().unwrap()));
        assert!(garbage.contains("neither a JWKS"), "{garbage}");
        let bad_jwks = temp_file(r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#);
        let bad_jwks = setup_error(&keys_config(bad_jwks.path().to_str().unwrap()));
        assert!(bad_jwks.contains("keys[0] is a symmetric"), "{bad_jwks}");
        let empty_jwks = temp_file(r#"{"keys": []}"#);
        let empty_jwks = setup_error(&keys_config(empty_jwks.path().to_str().unwrap()));
        assert!(
            empty_jwks.contains("holds no RS256 or ES256"),
            "{empty_jwks}"
        );
    }

    #[test]
    fn none_mode_is_an_anonymous_admin() {
        let auth = authenticator(&AuthConfig {
            // Ignored in none mode, even when unreadable.
            jwt_public_keys_file: Some(PathBuf::from("/nonexistent")),
            ..AuthConfig::default()
        });
        assert!(auth.is_disabled());
        assert_eq!(
            auth.authenticate(None).unwrap(),
            Principal::anonymous_admin()
        );
        assert_eq!(
            auth.authenticate(Some(b"Basic garbage")).unwrap(),
            Principal::anonymous_admin()
        );
    }

    #[test]
    fn debug_does_not_print_secrets() {
        let auth = authenticator(&hs_config());
        let debug = format!("{auth:?}");
        assert!(!debug.contains(SECRET), "{debug}");
    }
}
