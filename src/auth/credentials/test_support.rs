//! Fixtures shared by the credential unit tests: configurations, the key files under `tests/api/keys`, and
//! tokens signed with them.

use std::{
    io::Write as _,
    path::PathBuf,
    time::{SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::{Authenticator, Claims, Rejection, mint_hs256};
use crate::{
    auth::Principal,
    config::{AuthConfig, AuthMode},
};

/// A 32-byte HS256 secret, the shortest accepted.
pub(super) const SECRET: &str = "0123456789abcdef0123456789abcdef";
/// A key file under `tests/api/keys`, which the API tests use too.
macro_rules! key_file {
    ($name:literal) => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/keys/", $name)
    };
}

/// The private keys sign tokens; the public ones (PEM or JWKS) are what the authenticator is given.
pub(super) const RSA_PRIVATE: &str = key_file!("rsa_private.pem");
pub(super) const RSA_PUBLIC: &str = key_file!("rsa_public.pem");
pub(super) const EC_PRIVATE: &str = key_file!("ec_private.pem");
pub(super) const EC_PUBLIC: &str = key_file!("ec_public.pem");
pub(super) const PUBLIC_KEYS: &str = key_file!("public_keys.pem");
pub(super) const JWKS: &str = key_file!("jwks.json");
pub(super) const OTHER_RSA_PRIVATE: &str = key_file!("other_rsa_private.pem");

/// Seconds since the Unix epoch, as `exp` and `nbf` count them.
pub(super) fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap()
}

/// Claims for `user-1` in `role`, valid for ten minutes.
pub(super) fn claims(role: &str) -> Claims {
    Claims {
        sub: "user-1".to_owned(),
        role: role.to_owned(),
        exp: now() + 600,
        ..Claims::default()
    }
}

/// `--auth jwt` with nothing to verify with yet.
pub(super) fn jwt_config() -> AuthConfig {
    AuthConfig {
        mode: AuthMode::Jwt,
        ..AuthConfig::default()
    }
}

/// `--auth jwt` with the HS256 [`SECRET`].
pub(super) fn hs_config() -> AuthConfig {
    AuthConfig {
        jwt_hs256_secret: Some(SECRET.to_owned()),
        ..jwt_config()
    }
}

/// `--auth jwt` with the public keys file at `path`.
pub(super) fn keys_config(path: &str) -> AuthConfig {
    AuthConfig {
        jwt_public_keys_file: Some(PathBuf::from(path)),
        ..jwt_config()
    }
}

/// An authenticator for a configuration expected to be valid.
pub(super) fn authenticator(config: &AuthConfig) -> Authenticator {
    Authenticator::from_config(config).unwrap()
}

/// A token signed with [`SECRET`].
pub(super) fn hs256(claims: &Claims) -> String {
    mint_hs256(SECRET.as_bytes(), claims).unwrap()
}

/// A token signed with the RS256 or ES256 private key file at `private_key`.
pub(super) fn sign(
    alg: Algorithm,
    private_key: &str,
    kid: Option<&str>,
    claims: &Claims,
) -> String {
    let pem = std::fs::read(private_key).unwrap();
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem).unwrap(),
        _ => EncodingKey::from_rsa_pem(&pem).unwrap(),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// Authenticates `token` sent as `Bearer <token>`.
pub(super) fn bearer(auth: &Authenticator, token: &str) -> Result<Principal, Rejection> {
    auth.authenticate(Some(format!("Bearer {token}").as_bytes()))
}

/// Asserts the rejection message and that it does not leak the token.
pub(super) fn refused(auth: &Authenticator, token: &str, message: &str) {
    let rejection = bearer(auth, token).unwrap_err();
    assert_eq!(rejection.message(), message);
    assert!(!rejection.message().contains(token));
}

/// A file holding `content`, removed when dropped.
pub(super) fn temp_file(content: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(content.as_bytes()).unwrap();
    file
}

/// The start-up error a configuration expected to be invalid gives.
pub(super) fn setup_error(config: &AuthConfig) -> String {
    Authenticator::from_config(config).unwrap_err().to_string()
}
