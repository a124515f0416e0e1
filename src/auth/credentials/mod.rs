//! Credentials to [`Principal`]: bearer JWTs (HS256, RS256, ES256) and static API keys. Everything that can be
//! checked once (key files, secret length, key file entries) is checked at start-up, so a bad configuration stops
//! the server instead of refusing every caller.

use std::{
    collections::{BTreeSet, HashMap},
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
    errors::ErrorKind,
    jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse},
};
use serde::{Deserialize, Deserializer, Serialize, de::Error as _};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::{Principal, Role};
use crate::config::{AuthConfig, AuthMode};

/// Clock skew tolerated between the token issuer and this server.
const LEEWAY_SECS: u64 = 30;
/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
const MIN_HS256_SECRET_BYTES: usize = 32;
/// `sub` becomes the actor id stored in history rows, which are not meant for unbounded text.
const MAX_SUB_CHARS: usize = 255;
/// Far above any real token; bounds the work a caller can make us do before a signature is checked.
const MAX_AUTHORIZATION_BYTES: usize = 16 * 1024;

const SECRET_FLAG: &str = "--jwt-hs256-secret";
const SECRET_FILE_FLAG: &str = "--jwt-hs256-secret-file";
const PUBLIC_KEYS_FLAG: &str = "--jwt-public-keys-file";
const API_KEYS_FLAG: &str = "--api-keys-file";
const API_KEYS_ENV: &str = "TICKETD_API_KEYS";

const MISSING_MESSAGE: &str = "missing `authorization: Bearer <token>` metadata";
const NOT_BEARER_MESSAGE: &str = "authorization metadata must be `Bearer <token>`";
const BAD_SIGNATURE_MESSAGE: &str = "token signature is invalid";

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

/// Claims ticketd reads from a JWT (also used to mint tokens for tests and the `ticketd token` subcommand).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Claims {
    /// The caller's id: recorded as history actor, comment and time entry author.
    pub sub: String,
    /// `admin`, `agent`, `service` or `customer`.
    pub role: String,
    /// Organization id; empty when none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub org: String,
    /// The caller's e-mail address; empty when none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    /// The customer's portal; required for customers. Read from a JSON number or a numeric string.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "portal_claim"
    )]
    pub portal: Option<i64>,
    /// Space-separated scopes (OAuth style), read for services.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Not valid before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Issued at, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Issuer; checked against `--jwt-issuer` when that is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience; checked against `--jwt-audience` when that is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Signs `claims` with HS256 (for tests and `ticketd token`).
pub fn mint_hs256(secret: &[u8], claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
}

/// The SHA-256 hex of an API key, as stored in the keys file.
pub fn hash_api_key(key: &str) -> String {
    to_hex(&sha256(key))
}

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
        let api_keys = match (&config.api_keys_file, &config.api_keys) {
            (Some(path), _) => parse_api_keys(
                &read_file(API_KEYS_FLAG, path)?,
                format!("{API_KEYS_FLAG} {}", path.display()),
            )?,
            (None, Some(inline)) => parse_api_keys(inline.as_bytes(), API_KEYS_ENV.to_owned())?,
            (None, None) => Vec::new(),
        };
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
        let raw = authorization.ok_or_else(|| Rejection::new(MISSING_MESSAGE))?;
        let token = bearer_token(raw)?;
        if token.contains('.') {
            verifier.verify_jwt(token)
        } else {
            verifier.verify_api_key(token)
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

/// A verified token's caller and validity window.
struct VerifiedToken {
    principal: Principal,
    exp: i64,
    nbf: Option<i64>,
}

/// Most tokens remembered; when full the cache starts over, which only costs re-verification.
const VERIFIED_CACHE_MAX: usize = 10_000;

/// An RS256 or ES256 verification key.
struct PublicKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// A static API key, kept only as its hash.
struct ApiKey {
    sha256: [u8; 32],
    principal: Principal,
}

/// The claims read for the principal; the time, issuer and audience claims are checked by jsonwebtoken.
#[derive(Deserialize)]
struct TokenClaims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    org: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default, deserialize_with = "portal_claim")]
    portal: Option<i64>,
    #[serde(default)]
    scope: Option<String>,
    /// Required by the validation, so always present once a token verified.
    #[serde(default)]
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
}

/// The two header fields needed before jsonwebtoken sees the token (it cannot parse `alg: none` at all).
#[derive(Deserialize)]
struct RawHeader {
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

impl Verifier {
    fn verify_api_key(&self, key: &str) -> Result<Principal, Rejection> {
        let digest = sha256(key);
        // Every entry is compared, without early exit, so the time taken does not tell which entry (or which
        // prefix of a hash) came close; index 0 means no match.
        let mut found = 0u64;
        for (index, entry) in (1u64..).zip(&self.api_keys) {
            found.conditional_assign(&index, entry.sha256[..].ct_eq(&digest[..]));
        }
        found
            .checked_sub(1)
            .and_then(|index| usize::try_from(index).ok())
            .and_then(|index| self.api_keys.get(index))
            .map(|entry| entry.principal.clone())
            .ok_or_else(|| Rejection::new("unknown API key"))
    }

    fn verify_jwt(&self, token: &str) -> Result<Principal, Rejection> {
        let now = chrono::Utc::now().timestamp();
        let leeway = LEEWAY_SECS as i64;
        if let Ok(verified) = self.verified.lock()
            && let Some(entry) = verified.get(token)
            // The same window the validation applies, so a cached token expires exactly when it would.
            && now < entry.exp.saturating_add(leeway)
            && entry.nbf.is_none_or(|nbf| now >= nbf.saturating_sub(leeway))
        {
            return Ok(entry.principal.clone());
        }
        let (principal, exp, nbf) = self.verify_jwt_fully(token)?;
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= VERIFIED_CACHE_MAX {
                verified.clear();
            }
            verified.insert(
                token.to_owned(),
                VerifiedToken {
                    principal: principal.clone(),
                    exp,
                    nbf,
                },
            );
        }
        Ok(principal)
    }

    /// Checks header, signature and claims; returns the caller and the token's `exp` and `nbf`.
    fn verify_jwt_fully(&self, token: &str) -> Result<(Principal, i64, Option<i64>), Rejection> {
        let header = raw_header(token)?;
        let alg_name = header
            .alg
            .as_deref()
            .ok_or_else(|| Rejection::new("token header lacks `alg`"))?;
        let (alg, validation) = accepted_algorithm(alg_name)
            .and_then(|alg| {
                let validation = self.validations.iter().find(|v| v.algorithms == [alg])?;
                Some((alg, validation))
            })
            .ok_or_else(|| {
                Rejection::new(format!(
                    "token algorithm {} is not accepted",
                    printable_alg(alg_name)
                ))
            })?;

        let candidates: Vec<&DecodingKey> = if alg == Algorithm::HS256 {
            self.hs256.iter().collect()
        } else {
            self.public_keys_for(alg, header.kid.as_deref())?
        };
        for key in candidates {
            match jsonwebtoken::decode::<TokenClaims>(token, key, validation) {
                Ok(data) => {
                    let (exp, nbf) = (data.claims.exp, data.claims.nbf);
                    return principal_from(data.claims).map(|principal| (principal, exp, nbf));
                }
                // Another key of the same family may have signed it.
                Err(error) if is_key_mismatch(error.kind()) => {}
                Err(error) => return Err(reject_jwt(error.kind())),
            }
        }
        Err(Rejection::new(BAD_SIGNATURE_MESSAGE))
    }

    /// The keys that may have signed an `alg` token: the one named by `kid` when the keys carry ids, else all.
    fn public_keys_for(
        &self,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<Vec<&DecodingKey>, Rejection> {
        let keys_have_ids = self.public_keys.iter().any(|key| key.kid.is_some());
        match kid {
            Some(kid) if keys_have_ids => {
                let named: Vec<&PublicKey> = self
                    .public_keys
                    .iter()
                    .filter(|key| key.kid.as_deref() == Some(kid))
                    .collect();
                if named.is_empty() {
                    return Err(Rejection::new("unknown key id"));
                }
                let keys: Vec<&DecodingKey> = named
                    .into_iter()
                    .filter(|key| key.alg == alg)
                    .map(|key| &key.key)
                    .collect();
                if keys.is_empty() {
                    return Err(Rejection::new(format!(
                        "token key id names a key that is not for {alg:?}"
                    )));
                }
                Ok(keys)
            }
            _ => Ok(self
                .public_keys
                .iter()
                .filter(|key| key.alg == alg)
                .map(|key| &key.key)
                .collect()),
        }
    }
}

fn bearer_token(raw: &[u8]) -> Result<&str, Rejection> {
    if raw.len() > MAX_AUTHORIZATION_BYTES {
        return Err(Rejection::new("authorization metadata is too long"));
    }
    let value = std::str::from_utf8(raw)
        .ok()
        .filter(|value| value.is_ascii())
        .ok_or_else(|| Rejection::new(NOT_BEARER_MESSAGE))?;
    let (scheme, rest) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| Rejection::new(NOT_BEARER_MESSAGE))?;
    let token = rest.trim_start_matches(' ');
    let well_formed = scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_graphic());
    if well_formed {
        Ok(token)
    } else {
        Err(Rejection::new(NOT_BEARER_MESSAGE))
    }
}

fn raw_header(token: &str) -> Result<RawHeader, Rejection> {
    let malformed =
        || Rejection::new("token is malformed: expected a signed JWT (header.claims.signature)");
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let json = URL_SAFE_NO_PAD.decode(header).map_err(|_| malformed())?;
    serde_json::from_slice(&json).map_err(|_| malformed())
}

fn accepted_algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "HS256" => Some(Algorithm::HS256),
        "RS256" => Some(Algorithm::RS256),
        "ES256" => Some(Algorithm::ES256),
        _ => None,
    }
}

/// The caller's `alg`, if it looks like an algorithm name: the message must not echo arbitrary header text.
fn printable_alg(name: &str) -> &str {
    let looks_like_alg = !name.is_empty()
        && name.len() <= 16
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if looks_like_alg {
        name
    } else {
        "(unrecognised)"
    }
}

fn is_key_mismatch(kind: &ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat
    )
}

fn reject_jwt(kind: &ErrorKind) -> Rejection {
    match kind {
        ErrorKind::ExpiredSignature => Rejection::new("token expired"),
        ErrorKind::ImmatureSignature => {
            Rejection::new("token is not valid yet (its `nbf` claim is in the future)")
        }
        ErrorKind::InvalidSignature => Rejection::new(BAD_SIGNATURE_MESSAGE),
        ErrorKind::InvalidIssuer => Rejection::new("token `iss` claim is not the expected issuer"),
        ErrorKind::InvalidAudience => {
            Rejection::new("token `aud` claim does not name this service")
        }
        // The claim names come from our own Validation, never from the token.
        ErrorKind::MissingRequiredClaim(claim) => {
            Rejection::new(format!("token lacks the `{claim}` claim"))
        }
        ErrorKind::InvalidClaimFormat(claim) => {
            Rejection::new(format!("token `{claim}` claim is malformed"))
        }
        ErrorKind::Json(_) => Rejection::new(
            "token claims are malformed: sub, role, org, email and scope must be strings, portal a whole number",
        ),
        ErrorKind::InvalidAlgorithm => Rejection::new("token algorithm is not accepted"),
        _ => Rejection::new("token is malformed"),
    }
}

fn principal_from(claims: TokenClaims) -> Result<Principal, Rejection> {
    let id = claims.sub.unwrap_or_default();
    if id.is_empty() {
        return Err(Rejection::new("token lacks the `sub` claim"));
    }
    if id.chars().count() > MAX_SUB_CHARS {
        return Err(Rejection::new(format!(
            "token `sub` claim is longer than {MAX_SUB_CHARS} characters"
        )));
    }
    let role = match claims.role.as_deref() {
        None | Some("") => return Err(Rejection::new("token lacks the `role` claim")),
        Some(role) => Role::parse(role).ok_or_else(|| {
            Rejection::new("token `role` claim must be admin, agent, service or customer")
        })?,
    };
    if role == Role::Customer && claims.portal.is_none() {
        return Err(Rejection::new(
            "customer tokens must carry a `portal` claim",
        ));
    }
    let scopes = (role == Role::Service).then(|| {
        claims
            .scope
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    });
    Ok(Principal {
        id,
        role,
        org: claims.org.unwrap_or_default(),
        email: claims.email.unwrap_or_default(),
        portal: claims.portal,
        scopes,
    })
}

fn validation(alg: Algorithm, config: &AuthConfig) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = LEEWAY_SECS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    // jsonwebtoken compares `iss` and `aud` only when the token carries them, so a configured one is also required.
    let mut required = vec!["exp"];
    if let Some(issuer) = non_empty(&config.jwt_issuer) {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    match non_empty(&config.jwt_audience) {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        // Otherwise jsonwebtoken refuses every token that names an audience.
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// An empty flag (e.g. `TICKETD_JWT_ISSUER=`) means unset.
fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|value| !value.is_empty())
}

fn read_file(flag: &'static str, path: &Path) -> Result<Vec<u8>, AuthSetupError> {
    std::fs::read(path).map_err(|source| AuthSetupError::ReadFile {
        flag,
        path: path.to_owned(),
        source,
    })
}

/// The HS256 secret the flags name (trimmed and length-checked as the server does), `None` when unset.
pub fn read_secret(config: &AuthConfig) -> Result<Option<Vec<u8>>, AuthSetupError> {
    let (from, value) = match (&config.jwt_hs256_secret, &config.jwt_hs256_secret_file) {
        (Some(_), Some(_)) => return Err(AuthSetupError::TwoSecrets),
        (Some(secret), None) => (SECRET_FLAG, secret.clone().into_bytes()),
        (None, Some(path)) => (SECRET_FILE_FLAG, read_file(SECRET_FILE_FLAG, path)?),
        (None, None) => return Ok(None),
    };
    // Trimmed in both forms: a trailing newline from `echo` or a secret store is never meant as key material.
    let secret = value.trim_ascii();
    if secret.is_empty() {
        return Err(AuthSetupError::EmptySecret { from });
    }
    if secret.len() < MIN_HS256_SECRET_BYTES {
        return Err(AuthSetupError::ShortSecret {
            from,
            len: secret.len(),
        });
    }
    Ok(Some(secret.to_vec()))
}

fn load_public_keys(path: &Path) -> Result<Vec<PublicKey>, AuthSetupError> {
    let content = read_file(PUBLIC_KEYS_FLAG, path)?;
    let error = |reason: String| AuthSetupError::PublicKeys {
        path: path.to_owned(),
        reason,
    };
    let keys = match serde_json::from_slice::<serde_json::Value>(&content) {
        Ok(json) => {
            let set: JwkSet = serde_json::from_value(json)
                .map_err(|e| error(format!("not a JWKS (`{{\"keys\": [...]}}`): {e}")))?;
            jwks_keys(&set).map_err(error)?
        }
        Err(_) => {
            let text = std::str::from_utf8(&content)
                .map_err(|_| error("neither a JWKS (JSON) nor PEM text".to_owned()))?;
            pem_keys(text).map_err(error)?
        }
    };
    if keys.is_empty() {
        return Err(error(
            "holds no RS256 or ES256 (P-256) public key".to_owned(),
        ));
    }
    Ok(keys)
}

fn jwks_keys(set: &JwkSet) -> Result<Vec<PublicKey>, String> {
    let mut keys = Vec::new();
    for (index, jwk) in set.keys.iter().enumerate() {
        if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
            continue;
        }
        let declared = jwk.common.key_algorithm;
        // Keys for algorithms ticketd does not accept (RS512, ES384, EdDSA, ...) are skipped, not refused, so a
        // provider's published JWKS can be used as it is.
        let (alg, key) = match &jwk.algorithm {
            AlgorithmParameters::RSA(params) => {
                if declared.is_some_and(|declared| declared != KeyAlgorithm::RS256) {
                    continue;
                }
                let key = DecodingKey::from_rsa_components(&params.n, &params.e)
                    .map_err(|e| format!("keys[{index}]: bad RSA `n` or `e`: {e}"))?;
                (Algorithm::RS256, key)
            }
            AlgorithmParameters::EllipticCurve(params) => {
                if params.curve != EllipticCurve::P256
                    || declared.is_some_and(|declared| declared != KeyAlgorithm::ES256)
                {
                    continue;
                }
                let coordinate_ok = |value: &str| {
                    URL_SAFE_NO_PAD
                        .decode(value)
                        .is_ok_and(|bytes| bytes.len() == 32)
                };
                if !coordinate_ok(&params.x) || !coordinate_ok(&params.y) {
                    return Err(format!(
                        "keys[{index}]: `x` and `y` must be 32-byte base64url values"
                    ));
                }
                let key = DecodingKey::from_ec_components(&params.x, &params.y)
                    .map_err(|e| format!("keys[{index}]: bad EC key: {e}"))?;
                check_ec_key(&key).map_err(|reason| format!("keys[{index}]: {reason}"))?;
                (Algorithm::ES256, key)
            }
            AlgorithmParameters::OctetKey(_) => {
                return Err(format!(
                    "keys[{index}] is a symmetric (`oct`) key; give HS256 secrets with {SECRET_FILE_FLAG}"
                ));
            }
            _ => continue,
        };
        keys.push(PublicKey {
            kid: jwk.common.key_id.clone(),
            alg,
            key,
        });
    }
    Ok(keys)
}

fn pem_keys(text: &str) -> Result<Vec<PublicKey>, String> {
    const BEGIN: &str = "-----BEGIN ";
    let mut keys = Vec::new();
    let mut rest = text;
    let mut number = 0;
    while let Some(start) = rest.find(BEGIN) {
        number += 1;
        let block = &rest[start..];
        let label = block[BEGIN.len()..]
            .split_once("-----")
            .map(|(label, _)| label)
            .ok_or_else(|| format!("PEM block {number}: unterminated BEGIN line"))?;
        let end_line = format!("-----END {label}-----");
        let end = block
            .find(&end_line)
            .map(|at| at + end_line.len())
            .ok_or_else(|| format!("PEM block {number}: no `{end_line}` line"))?;
        keys.push(pem_key(number, label, &block[..end])?);
        rest = &block[end..];
    }
    if number == 0 {
        return Err(
            "neither a JWKS (JSON) nor PEM (no `-----BEGIN PUBLIC KEY-----` block)".to_owned(),
        );
    }
    Ok(keys)
}

fn pem_key(number: usize, label: &str, block: &str) -> Result<PublicKey, String> {
    let pem = block.as_bytes();
    let rsa = |key| PublicKey {
        kid: None,
        alg: Algorithm::RS256,
        key,
    };
    match label {
        "PUBLIC KEY" => {
            if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
                return Ok(rsa(key));
            }
            let key = DecodingKey::from_ec_pem(pem).map_err(|_| {
                format!("PEM block {number} is neither an RSA nor an EC P-256 public key")
            })?;
            check_ec_key(&key).map_err(|reason| format!("PEM block {number}: {reason}"))?;
            Ok(PublicKey {
                kid: None,
                alg: Algorithm::ES256,
                key,
            })
        }
        "RSA PUBLIC KEY" => DecodingKey::from_rsa_pem(pem)
            .map(rsa)
            .map_err(|_| format!("PEM block {number} is not a valid RSA public key")),
        "CERTIFICATE" => Err(format!(
            "PEM block {number} is a certificate; give its public key (`openssl x509 -pubkey -noout`)"
        )),
        label if label.contains("PRIVATE KEY") => Err(format!(
            "PEM block {number} is a private key; give only public keys (`openssl pkey -pubout`)"
        )),
        _ => Err(format!(
            "PEM block {number} is not a `PUBLIC KEY` or `RSA PUBLIC KEY` block"
        )),
    }
}

/// Refuses EC keys that are not valid P-256 points now rather than at every request.
fn check_ec_key(key: &DecodingKey) -> Result<(), String> {
    let is_p256_point = key
        .try_get_as_bytes()
        .is_ok_and(|bytes| bytes.len() == 65 && bytes.first() == Some(&4));
    // Building the verifier parses the point; with an empty signature it then answers Ok(false).
    if is_p256_point && jsonwebtoken::crypto::verify("", b"", key, Algorithm::ES256).is_ok() {
        Ok(())
    } else {
        Err("not an EC public key on curve P-256".to_owned())
    }
}

/// Reads the API keys JSON, from the file or from `TICKETD_API_KEYS` (`source_name` says which, for errors).
fn parse_api_keys(content: &[u8], source_name: String) -> Result<Vec<ApiKey>, AuthSetupError> {
    #[derive(Deserialize)]
    struct KeysFile {
        keys: Vec<serde_json::Value>,
    }

    let error = |reason: String| AuthSetupError::ApiKeys {
        source_name: source_name.clone(),
        reason,
    };
    let file: KeysFile = serde_json::from_slice(content)
        .map_err(|e| error(format!("expected JSON `{{\"keys\": [...]}}`: {e}")))?;
    let mut keys: Vec<ApiKey> = Vec::with_capacity(file.keys.len());
    for (index, entry) in file.keys.iter().enumerate() {
        let key = api_key(index, entry).map_err(error)?;
        if let Some(other) = keys.iter().position(|k| k.principal.id == key.principal.id) {
            return Err(error(format!(
                "keys[{index}].id {:?} is already used by keys[{other}]",
                key.principal.id
            )));
        }
        if let Some(other) = keys.iter().position(|k| k.sha256 == key.sha256) {
            return Err(error(format!(
                "keys[{index}].sha256 is the same as keys[{other}].sha256"
            )));
        }
        keys.push(key);
    }
    Ok(keys)
}

fn api_key(index: usize, entry: &serde_json::Value) -> Result<ApiKey, String> {
    let entry = entry
        .as_object()
        .ok_or_else(|| format!("keys[{index}] must be an object"))?;
    let field = |name: &str| entry.get(name).and_then(serde_json::Value::as_str);

    let id = field("id")
        .filter(|id| !id.is_empty() && id.chars().count() <= MAX_SUB_CHARS)
        .ok_or_else(|| {
            format!(
                "keys[{index}].id must be a non-empty string of at most {MAX_SUB_CHARS} characters"
            )
        })?;
    let sha256 = field("sha256")
        .and_then(decode_sha256_hex)
        .ok_or_else(|| {
            format!(
                "keys[{index}].sha256 must be 64 hex characters: the SHA-256 of the key, e.g. from `printf %s KEY | sha256sum`"
            )
        })?;
    let role = match field("role").and_then(Role::parse) {
        Some(Role::Customer) => {
            return Err(format!(
                "keys[{index}].role cannot be customer (customers sign in with tokens that carry a portal); use admin, agent or service"
            ));
        }
        Some(role) => role,
        None => {
            return Err(format!(
                "keys[{index}].role must be admin, agent or service"
            ));
        }
    };
    let scopes = if role == Role::Service {
        let scopes: Option<BTreeSet<String>> = entry
            .get("scopes")
            .and_then(serde_json::Value::as_array)
            .and_then(|scopes| {
                scopes
                    .iter()
                    .map(|scope| {
                        scope
                            .as_str()
                            .filter(|scope| {
                                !scope.is_empty() && !scope.contains(char::is_whitespace)
                            })
                            .map(str::to_owned)
                    })
                    .collect()
            })
            .filter(|scopes: &BTreeSet<String>| !scopes.is_empty());
        Some(scopes.ok_or_else(|| {
            format!(
                "keys[{index}].scopes must be a non-empty list of scope strings for a service key, e.g. [\"tickets:read\"]"
            )
        })?)
    } else {
        // Admins and agents are not limited by scopes.
        None
    };
    Ok(ApiKey {
        sha256,
        principal: Principal {
            id: id.to_owned(),
            role,
            org: String::new(),
            email: String::new(),
            portal: None,
            scopes,
        },
    })
}

fn decode_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

fn sha256(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// `portal` as a JSON number or a numeric string: some identity providers can only emit string claims.
fn portal_claim<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrString {
        Number(i64),
        String(String),
    }

    match Option::<NumberOrString>::deserialize(deserializer)? {
        None => Ok(None),
        Some(NumberOrString::Number(portal)) => Ok(Some(portal)),
        Some(NumberOrString::String(portal)) => portal
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom("`portal` must be a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::Write as _,
        time::{SystemTime, UNIX_EPOCH},
    };

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const RSA_PRIVATE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/api/keys/rsa_private.pem"
    );
    const RSA_PUBLIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/keys/rsa_public.pem");
    const EC_PRIVATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/keys/ec_private.pem");
    const EC_PUBLIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/keys/ec_public.pem");
    const PUBLIC_KEYS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/api/keys/public_keys.pem"
    );
    const JWKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/keys/jwks.json");
    const OTHER_RSA_PRIVATE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/api/keys/other_rsa_private.pem"
    );

    fn now() -> i64 {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        i64::try_from(secs).unwrap()
    }

    fn claims(role: &str) -> Claims {
        Claims {
            sub: "user-1".to_owned(),
            role: role.to_owned(),
            exp: now() + 600,
            ..Claims::default()
        }
    }

    fn jwt_config() -> AuthConfig {
        AuthConfig {
            mode: AuthMode::Jwt,
            ..AuthConfig::default()
        }
    }

    fn hs_config() -> AuthConfig {
        AuthConfig {
            jwt_hs256_secret: Some(SECRET.to_owned()),
            ..jwt_config()
        }
    }

    fn keys_config(path: &str) -> AuthConfig {
        AuthConfig {
            jwt_public_keys_file: Some(PathBuf::from(path)),
            ..jwt_config()
        }
    }

    fn authenticator(config: &AuthConfig) -> Authenticator {
        Authenticator::from_config(config).unwrap()
    }

    fn hs256(claims: &Claims) -> String {
        mint_hs256(SECRET.as_bytes(), claims).unwrap()
    }

    fn sign(alg: Algorithm, private_key: &str, kid: Option<&str>, claims: &Claims) -> String {
        let pem = std::fs::read(private_key).unwrap();
        let key = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem).unwrap(),
            _ => EncodingKey::from_rsa_pem(&pem).unwrap(),
        };
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    fn bearer(auth: &Authenticator, token: &str) -> Result<Principal, Rejection> {
        auth.authenticate(Some(format!("Bearer {token}").as_bytes()))
    }

    /// Asserts the rejection message and that it does not leak the token.
    fn refused(auth: &Authenticator, token: &str, message: &str) {
        let rejection = bearer(auth, token).unwrap_err();
        assert_eq!(rejection.message(), message);
        assert!(!rejection.message().contains(token));
    }

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    fn temp_file(content: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(content.as_bytes()).unwrap();
        file
    }

    fn api_keys_config(content: &str) -> (tempfile::NamedTempFile, AuthConfig) {
        let file = temp_file(content);
        let config = AuthConfig {
            api_keys_file: Some(file.path().to_owned()),
            ..jwt_config()
        };
        (file, config)
    }

    fn setup_error(config: &AuthConfig) -> String {
        Authenticator::from_config(config).unwrap_err().to_string()
    }

    #[test]
    fn authenticator_is_send_sync_and_clone() {
        fn assert_traits<T: Send + Sync + Clone + 'static>() {}
        assert_traits::<Authenticator>();
    }

    #[test]
    fn hs256_token_is_accepted() {
        let auth = authenticator(&hs_config());
        assert!(!auth.is_disabled());
        let token = hs256(&Claims {
            org: "acme".to_owned(),
            email: "ann@example.com".to_owned(),
            iat: Some(now()),
            nbf: Some(now() - 5),
            ..claims("agent")
        });
        let principal = bearer(&auth, &token).unwrap();
        assert_eq!(
            principal,
            Principal {
                id: "user-1".to_owned(),
                role: Role::Agent,
                org: "acme".to_owned(),
                email: "ann@example.com".to_owned(),
                portal: None,
                scopes: None,
            }
        );
    }

    #[test]
    fn secret_file_is_trimmed() {
        let file = temp_file(&format!("  {SECRET}\n"));
        let auth = authenticator(&AuthConfig {
            jwt_hs256_secret_file: Some(file.path().to_owned()),
            ..jwt_config()
        });
        assert!(bearer(&auth, &hs256(&claims("admin"))).is_ok());
    }

    #[test]
    fn expired_token_is_refused_after_the_leeway() {
        let auth = authenticator(&hs_config());
        let token = hs256(&Claims {
            exp: now() - 120,
            ..claims("admin")
        });
        refused(&auth, &token, "token expired");
        let within_leeway = hs256(&Claims {
            exp: now() - 10,
            ..claims("admin")
        });
        assert!(bearer(&auth, &within_leeway).is_ok());
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let auth = authenticator(&hs_config());
        // Accepted (and remembered) inside the leeway, two seconds before it runs out.
        let token = hs256(&Claims {
            exp: now() - i64::try_from(LEEWAY_SECS).unwrap() + 2,
            ..claims("admin")
        });
        assert!(bearer(&auth, &token).is_ok());
        assert!(bearer(&auth, &token).is_ok(), "served from the cache");
        std::thread::sleep(std::time::Duration::from_secs(3));
        assert!(
            bearer(&auth, &token).is_err(),
            "the cache must not outlive the token"
        );
    }

    #[test]
    fn a_token_with_another_signature_is_not_served_from_the_cache() {
        let auth = authenticator(&hs_config());
        let token = hs256(&claims("admin"));
        assert!(bearer(&auth, &token).is_ok());
        let (unsigned, _) = token.rsplit_once('.').unwrap();
        refused(
            &auth,
            &format!("{unsigned}.AAAA"),
            "token signature is invalid",
        );
    }

    #[test]
    fn token_without_exp_is_refused() {
        let auth = authenticator(&hs_config());
        // mint_hs256 always writes `exp`, so this goes through encode directly.
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "user-1", "role": "admin"}),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        refused(&auth, &token, "token lacks the `exp` claim");
    }

    #[test]
    fn nbf_in_the_future_is_refused() {
        let auth = authenticator(&hs_config());
        let token = hs256(&Claims {
            nbf: Some(now() + 600),
            ..claims("admin")
        });
        refused(
            &auth,
            &token,
            "token is not valid yet (its `nbf` claim is in the future)",
        );
    }

    #[test]
    fn wrong_secret_is_refused() {
        let auth = authenticator(&hs_config());
        let token = mint_hs256(b"another-secret-another-secret-another", &claims("admin")).unwrap();
        refused(&auth, &token, "token signature is invalid");
    }

    #[test]
    fn alg_none_is_refused() {
        let auth = authenticator(&hs_config());
        let payload = serde_json::to_string(&claims("admin")).unwrap();
        let token = format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(&payload)
        );
        refused(&auth, &token, "token algorithm none is not accepted");
    }

    #[test]
    fn unprintable_alg_is_not_echoed() {
        let auth = authenticator(&hs_config());
        let payload = serde_json::to_string(&claims("admin")).unwrap();
        let token = format!("{}.{}.", b64(r#"{"alg":"<script> HS256"}"#), b64(&payload));
        refused(
            &auth,
            &token,
            "token algorithm (unrecognised) is not accepted",
        );
    }

    #[test]
    fn hs384_is_refused() {
        let auth = authenticator(&hs_config());
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &claims("admin"),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        refused(&auth, &token, "token algorithm HS384 is not accepted");
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
    fn rs256_and_es256_via_pem() {
        for path in [PUBLIC_KEYS, RSA_PUBLIC] {
            let auth = authenticator(&keys_config(path));
            let token = sign(Algorithm::RS256, RSA_PRIVATE, None, &claims("admin"));
            assert_eq!(bearer(&auth, &token).unwrap().role, Role::Admin);
        }
        for path in [PUBLIC_KEYS, EC_PUBLIC] {
            let auth = authenticator(&keys_config(path));
            let token = sign(Algorithm::ES256, EC_PRIVATE, None, &claims("agent"));
            assert_eq!(bearer(&auth, &token).unwrap().role, Role::Agent);
        }
        // PEM keys carry no ids, so a kid in the token does not narrow the search.
        let auth = authenticator(&keys_config(PUBLIC_KEYS));
        let token = sign(
            Algorithm::RS256,
            RSA_PRIVATE,
            Some("whatever"),
            &claims("admin"),
        );
        assert!(bearer(&auth, &token).is_ok());
    }

    #[test]
    fn pkcs1_rsa_public_key_is_accepted() {
        use base64::engine::general_purpose::STANDARD;
        let spki_pem = std::fs::read_to_string(RSA_PUBLIC).unwrap();
        let body: String = spki_pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        let spki = STANDARD.decode(body).unwrap();
        // A 2048-bit SubjectPublicKeyInfo is 24 bytes of algorithm and bit string headers, then RSAPublicKey.
        assert_eq!((spki.len(), spki[23], spki[24]), (294, 0x00, 0x30));
        let pkcs1 = STANDARD.encode(&spki[24..]);
        let lines: Vec<&str> = pkcs1
            .as_bytes()
            .chunks(64)
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect();
        let pem = format!(
            "-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----\n",
            lines.join("\n")
        );
        let file = temp_file(&pem);
        let auth = authenticator(&keys_config(file.path().to_str().unwrap()));
        let token = sign(Algorithm::RS256, RSA_PRIVATE, None, &claims("admin"));
        assert!(bearer(&auth, &token).is_ok());
    }

    #[test]
    fn rs256_and_es256_via_jwks_with_kid() {
        let auth = authenticator(&keys_config(JWKS));
        let rsa = sign(
            Algorithm::RS256,
            RSA_PRIVATE,
            Some("rsa-1"),
            &claims("admin"),
        );
        assert!(bearer(&auth, &rsa).is_ok());
        let ec = sign(Algorithm::ES256, EC_PRIVATE, Some("ec-1"), &claims("admin"));
        assert!(bearer(&auth, &ec).is_ok());
        let without_kid = sign(Algorithm::ES256, EC_PRIVATE, None, &claims("admin"));
        assert!(bearer(&auth, &without_kid).is_ok());

        let unknown = sign(
            Algorithm::RS256,
            RSA_PRIVATE,
            Some("rsa-2"),
            &claims("admin"),
        );
        refused(&auth, &unknown, "unknown key id");
        let mismatched = sign(
            Algorithm::RS256,
            RSA_PRIVATE,
            Some("ec-1"),
            &claims("admin"),
        );
        refused(
            &auth,
            &mismatched,
            "token key id names a key that is not for RS256",
        );
    }

    #[test]
    fn rs256_signed_by_another_key_is_refused() {
        for path in [PUBLIC_KEYS, JWKS] {
            let auth = authenticator(&keys_config(path));
            let token = sign(
                Algorithm::RS256,
                OTHER_RSA_PRIVATE,
                Some("rsa-1"),
                &claims("admin"),
            );
            refused(&auth, &token, "token signature is invalid");
        }
    }

    #[test]
    fn audience_is_checked_only_when_configured() {
        let auth = authenticator(&AuthConfig {
            jwt_audience: Some("ticketd".to_owned()),
            ..hs_config()
        });
        let right = hs256(&Claims {
            aud: Some("ticketd".to_owned()),
            ..claims("admin")
        });
        assert!(bearer(&auth, &right).is_ok());
        let wrong = hs256(&Claims {
            aud: Some("billing".to_owned()),
            ..claims("admin")
        });
        refused(
            &auth,
            &wrong,
            "token `aud` claim does not name this service",
        );
        refused(
            &auth,
            &hs256(&claims("admin")),
            "token lacks the `aud` claim",
        );
        let list = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({
                "sub": "user-1", "role": "admin", "exp": now() + 600, "aud": ["billing", "ticketd"]
            }),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(bearer(&auth, &list).is_ok());

        let unconfigured = authenticator(&hs_config());
        assert!(bearer(&unconfigured, &wrong).is_ok());
    }

    #[test]
    fn issuer_is_checked_when_configured() {
        let auth = authenticator(&AuthConfig {
            jwt_issuer: Some("https://id.example.com".to_owned()),
            ..hs_config()
        });
        let right = hs256(&Claims {
            iss: Some("https://id.example.com".to_owned()),
            ..claims("admin")
        });
        assert!(bearer(&auth, &right).is_ok());
        let wrong = hs256(&Claims {
            iss: Some("https://evil.example.com".to_owned()),
            ..claims("admin")
        });
        refused(
            &auth,
            &wrong,
            "token `iss` claim is not the expected issuer",
        );
        refused(
            &auth,
            &hs256(&claims("admin")),
            "token lacks the `iss` claim",
        );
    }

    #[test]
    fn header_must_be_bearer() {
        let auth = authenticator(&hs_config());
        let token = hs256(&claims("admin"));
        assert_eq!(
            auth.authenticate(None).unwrap_err().message(),
            "missing `authorization: Bearer <token>` metadata"
        );
        for value in [
            format!("Basic {token}"),
            token.clone(),
            "Bearer".to_owned(),
            "Bearer ".to_owned(),
            format!("Bearer {token} extra"),
        ] {
            let rejection = auth.authenticate(Some(value.as_bytes())).unwrap_err();
            assert_eq!(
                rejection.message(),
                "authorization metadata must be `Bearer <token>`"
            );
        }
        let rejection = auth.authenticate(Some(b"Bearer \xff\xfe")).unwrap_err();
        assert_eq!(
            rejection.message(),
            "authorization metadata must be `Bearer <token>`"
        );
        let rejection = auth
            .authenticate(Some("Bearer tökén".as_bytes()))
            .unwrap_err();
        assert_eq!(
            rejection.message(),
            "authorization metadata must be `Bearer <token>`"
        );

        let lenient = format!("bEaReR   {token}");
        assert!(auth.authenticate(Some(lenient.as_bytes())).is_ok());
    }

    #[test]
    fn malformed_tokens_are_refused_cleanly() {
        let auth = authenticator(&hs_config());
        for token in ["a.b", "a.b.c.d", "!!!.b.c", "e30.e30.sig"] {
            let rejection = bearer(&auth, token).unwrap_err();
            assert!(rejection.message().starts_with("token "), "{rejection}");
        }
        let huge = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_BYTES));
        let rejection = auth.authenticate(Some(huge.as_bytes())).unwrap_err();
        assert_eq!(rejection.message(), "authorization metadata is too long");
    }

    #[test]
    fn role_and_sub_are_required() {
        let auth = authenticator(&hs_config());
        refused(
            &auth,
            &hs256(&claims("root")),
            "token `role` claim must be admin, agent, service or customer",
        );
        refused(&auth, &hs256(&claims("")), "token lacks the `role` claim");
        let no_sub = hs256(&Claims {
            sub: String::new(),
            ..claims("admin")
        });
        refused(&auth, &no_sub, "token lacks the `sub` claim");
        let long_sub = hs256(&Claims {
            sub: "x".repeat(256),
            ..claims("admin")
        });
        refused(
            &auth,
            &long_sub,
            "token `sub` claim is longer than 255 characters",
        );
    }

    #[test]
    fn customer_needs_a_portal() {
        let auth = authenticator(&hs_config());
        refused(
            &auth,
            &hs256(&claims("customer")),
            "customer tokens must carry a `portal` claim",
        );
        let token = hs256(&Claims {
            portal: Some(7),
            ..claims("customer")
        });
        let principal = bearer(&auth, &token).unwrap();
        assert_eq!(
            (principal.role, principal.portal),
            (Role::Customer, Some(7))
        );
        assert_eq!(principal.scopes, None);

        let string_portal = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "c", "role": "customer", "exp": now() + 600, "portal": "42"}),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(bearer(&auth, &string_portal).unwrap().portal, Some(42));

        let bad_portal = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "c", "role": "customer", "exp": now() + 600, "portal": "seven"}),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        let rejection = bearer(&auth, &bad_portal).unwrap_err();
        assert!(
            rejection
                .message()
                .starts_with("token claims are malformed")
        );
    }

    #[test]
    fn service_scopes_come_from_the_scope_claim() {
        let auth = authenticator(&hs_config());
        let token = hs256(&Claims {
            scope: "tickets:read  tickets:write".to_owned(),
            ..claims("service")
        });
        let principal = bearer(&auth, &token).unwrap();
        let expected: BTreeSet<String> =
            ["tickets:read", "tickets:write"].map(str::to_owned).into();
        assert_eq!(principal.scopes, Some(expected));
        assert!(principal.has_scope("tickets:read"));
        assert!(!principal.has_scope("schema:write"));

        let no_scope = bearer(&auth, &hs256(&claims("service"))).unwrap();
        assert_eq!(no_scope.scopes, Some(BTreeSet::new()));

        let admin = hs256(&Claims {
            scope: "tickets:read".to_owned(),
            ..claims("admin")
        });
        assert_eq!(bearer(&auth, &admin).unwrap().scopes, None);
    }

    #[test]
    fn claims_round_trip_and_read_string_portals() {
        let claims: Claims = serde_json::from_str(
            r#"{"sub":"s","role":"customer","portal":"12","exp":1,"aud":"ticketd"}"#,
        )
        .unwrap();
        assert_eq!(claims.portal, Some(12));
        let number: Claims =
            serde_json::from_str(r#"{"sub":"s","role":"customer","portal":12,"exp":1}"#).unwrap();
        assert_eq!(number.portal, Some(12));
        let json = serde_json::to_value(Claims {
            sub: "s".to_owned(),
            role: "agent".to_owned(),
            exp: 1,
            ..Claims::default()
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"sub": "s", "role": "agent", "exp": 1})
        );
    }

    const API_KEYS: &str = r#"{"keys": [
        {"id": "billing-sync", "sha256": "SHA", "role": "service", "scopes": ["tickets:read", "tickets:write"]},
        {"id": "ops", "sha256": "OPS", "role": "admin", "scopes": ["ignored"]}
    ]}"#;

    fn api_keys_file() -> String {
        API_KEYS
            .replace("SHA", &hash_api_key("tk_live_billing").to_uppercase())
            .replace("OPS", &hash_api_key("tk_live_ops"))
    }

    #[test]
    fn api_keys_may_come_inline_from_the_environment() {
        let config = AuthConfig {
            api_keys: Some(api_keys_file()),
            ..jwt_config()
        };
        let auth = authenticator(&config);
        assert_eq!(bearer(&auth, "tk_live_ops").unwrap().id, "ops");
        let broken = AuthConfig {
            api_keys: Some("{\"keys\": [{\"id\": \"x\"}]}".to_owned()),
            ..jwt_config()
        };
        let message = setup_error(&broken);
        assert!(message.starts_with("TICKETD_API_KEYS: "), "{message}");
    }

    #[test]
    fn hash_api_key_is_sha256_hex() {
        assert_eq!(
            hash_api_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn api_keys_are_accepted_in_jwt_mode() {
        let (_file, config) = api_keys_config(&api_keys_file());
        let auth = authenticator(&config);
        let service = bearer(&auth, "tk_live_billing").unwrap();
        let scopes: BTreeSet<String> = ["tickets:read", "tickets:write"].map(str::to_owned).into();
        assert_eq!(
            service,
            Principal {
                id: "billing-sync".to_owned(),
                role: Role::Service,
                org: String::new(),
                email: String::new(),
                portal: None,
                scopes: Some(scopes),
            }
        );
        let admin = bearer(&auth, "tk_live_ops").unwrap();
        assert_eq!(
            (admin.id.as_str(), admin.role, admin.scopes),
            ("ops", Role::Admin, None)
        );

        refused(&auth, "tk_live_nope", "unknown API key");
        // API keys alone accept no JWT.
        refused(
            &auth,
            &hs256(&claims("admin")),
            "token algorithm HS256 is not accepted",
        );
    }

    #[test]
    fn api_key_file_errors_name_the_entry() {
        let hash = hash_api_key("k");
        let cases = [
            (
                format!(r#"{{"keys": [{{"id": "c", "sha256": "{hash}", "role": "customer"}}]}}"#),
                "keys[0].role",
            ),
            (
                format!(r#"{{"keys": [{{"id": "s", "sha256": "{hash}", "role": "service"}}]}}"#),
                "keys[0].scopes",
            ),
            (
                format!(
                    r#"{{"keys": [{{"id": "s", "sha256": "{hash}", "role": "service", "scopes": []}}]}}"#
                ),
                "keys[0].scopes",
            ),
            (
                r#"{"keys": [{"id": "a", "sha256": "abc", "role": "admin"}]}"#.to_owned(),
                "keys[0].sha256",
            ),
            (
                format!(r#"{{"keys": [{{"sha256": "{hash}", "role": "admin"}}]}}"#),
                "keys[0].id",
            ),
            (
                format!(
                    r#"{{"keys": [{{"id": "a", "sha256": "{hash}", "role": "admin"}}, {{"id": "a", "sha256": "{}", "role": "agent"}}]}}"#,
                    hash_api_key("other")
                ),
                "keys[1].id",
            ),
            (
                format!(
                    r#"{{"keys": [{{"id": "a", "sha256": "{hash}", "role": "admin"}}, {{"id": "b", "sha256": "{hash}", "role": "agent"}}]}}"#
                ),
                "keys[1].sha256",
            ),
            ("[]".to_owned(), "expected JSON"),
        ];
        for (content, expected) in cases {
            let (_file, config) = api_keys_config(&content);
            let message = setup_error(&config);
            assert!(message.contains(expected), "{message}");
            assert!(message.starts_with("--api-keys-file "), "{message}");
        }
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
