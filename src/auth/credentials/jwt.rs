//! Verifying bearer JWTs: header and algorithm checks, signature against the configured keys, claims to a
//! [`Principal`], and the cache of tokens already verified.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::{Deserialize, Deserializer, de::Error as _};

use super::{MAX_SUB_CHARS, Rejection, Verifier, keys::public_keys_for};
use crate::{
    auth::{Principal, Role},
    config::AuthConfig,
};

/// Clock skew tolerated between the token issuer and this server.
const LEEWAY_SECS: u64 = 30;

const BAD_SIGNATURE_MESSAGE: &str = "token signature is invalid";

/// Most tokens remembered; when full the cache starts over, which only costs re-verification.
const VERIFIED_CACHE_MAX: usize = 10_000;

/// A verified token's caller and validity window.
pub(super) struct VerifiedToken {
    principal: Principal,
    exp: i64,
    nbf: Option<i64>,
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

/// The header fields checked before jsonwebtoken sees the token (it cannot parse `alg: none` at all, and reads
/// `crit` without acting on it).
#[derive(Deserialize)]
struct RawHeader {
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    /// Whether the header has `crit`, whatever its value.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

impl Verifier {
    /// The caller a JWT names, from the cache while the token is valid, else verified in full.
    pub(super) fn verify_jwt(&self, token: &str) -> Result<Principal, Rejection> {
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
        // RFC 7515 §4.1.11: extensions listed in `crit` must be understood, and ticketd understands none.
        if header.crit {
            return Err(Rejection::new(
                "token header `crit` lists extensions this service does not support",
            ));
        }
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
            public_keys_for(&self.public_keys, alg, header.kid.as_deref())?
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

/// The checks for `alg` tokens: leeway, required `exp`, and the issuer and audience when configured.
pub(super) fn validation(alg: Algorithm, config: &AuthConfig) -> Validation {
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

/// `portal` as a JSON number or a numeric string: some identity providers can only emit string claims.
pub(super) fn portal_claim<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
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
    use std::collections::BTreeSet;

    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    use super::{super::bearer::MAX_AUTHORIZATION_BYTES, super::test_support::*, LEEWAY_SECS};
    use crate::{
        auth::{
            Principal, Role,
            credentials::{Claims, mint_hs256},
        },
        config::AuthConfig,
    };

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
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
    fn crit_header_is_refused() {
        let auth = authenticator(&hs_config());
        for crit in [r#"["exp"]"#, r#"["b64"]"#, "[]", "null"] {
            let header = format!(r#"{{"alg":"HS256","typ":"JWT","crit":{crit}}}"#);
            let token = signed_with_header(&header, &claims("admin"));
            refused(
                &auth,
                &token,
                "token header `crit` lists extensions this service does not support",
            );
        }
        let plain = signed_with_header(r#"{"alg":"HS256","typ":"JWT"}"#, &claims("admin"));
        assert!(
            bearer(&auth, &plain).is_ok(),
            "the same token without `crit`"
        );
    }

    #[test]
    fn a_duplicated_alg_is_malformed() {
        let auth = authenticator(&hs_config());
        let token = signed_with_header(r#"{"alg":"HS256","alg":"none"}"#, &claims("admin"));
        let rejection = bearer(&auth, &token).unwrap_err();
        assert!(
            rejection.message().starts_with("token is malformed"),
            "{rejection}"
        );
    }

    /// An HS256 token with `header` as its header JSON, as it is written.
    fn signed_with_header(header: &str, claims: &Claims) -> String {
        let payload = serde_json::to_string(claims).unwrap();
        let signing_input = format!("{}.{}", b64(header), b64(&payload));
        let signature = jsonwebtoken::crypto::sign(
            signing_input.as_bytes(),
            &EncodingKey::from_secret(SECRET.as_bytes()),
            Algorithm::HS256,
        )
        .unwrap();
        format!("{signing_input}.{signature}")
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
    fn malformed_tokens_are_refused_cleanly() {
        let auth = authenticator(&hs_config());
        for token in ["a.b", "a.b.c.d", "!!!.b.c", "e30.e30.sig"] {
            let rejection = bearer(&auth, token).unwrap_err();
            assert!(rejection.message().starts_with("token "), "{rejection}");
        }
        let huge = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_BYTES));
        let rejection = auth.authenticate(Some(huge.as_bytes())).unwrap_err();
        assert_eq!(
            rejection.message(),
            "authorization metadata is longer than 16384 bytes"
        );
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
}
