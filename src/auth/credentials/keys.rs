//! The keys JWTs are verified with: the HS256 secret (flag or file) and the RS256/ES256 public keys, read
//! from a JWKS or from PEM blocks and checked once at start-up, and which of them may have signed a token.

use std::path::Path;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse},
};

use super::{AuthSetupError, Rejection, read_file};
use crate::config::AuthConfig;

/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
const MIN_HS256_SECRET_BYTES: usize = 32;

/// The flags, named in errors so the operator knows which one to fix.
pub(super) const SECRET_FLAG: &str = "--jwt-hs256-secret";
/// See [`SECRET_FLAG`].
pub(super) const SECRET_FILE_FLAG: &str = "--jwt-hs256-secret-file";
/// See [`SECRET_FLAG`].
pub(super) const PUBLIC_KEYS_FLAG: &str = "--jwt-public-keys-file";

/// An RS256 or ES256 verification key.
pub(super) struct PublicKey {
    kid: Option<String>,
    pub(super) alg: Algorithm,
    key: DecodingKey,
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

/// The public keys of `--jwt-public-keys-file`, a JWKS or PEM text.
pub(super) fn load_public_keys(path: &Path) -> Result<Vec<PublicKey>, AuthSetupError> {
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

/// The keys that may have signed an `alg` token: the one named by `kid` when the keys carry ids, else all.
pub(super) fn public_keys_for<'a>(
    public_keys: &'a [PublicKey],
    alg: Algorithm,
    kid: Option<&str>,
) -> Result<Vec<&'a DecodingKey>, Rejection> {
    let keys_have_ids = public_keys.iter().any(|key| key.kid.is_some());
    match kid {
        Some(kid) if keys_have_ids => {
            let named: Vec<&PublicKey> = public_keys
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
        _ => Ok(public_keys
            .iter()
            .filter(|key| key.alg == alg)
            .map(|key| &key.key)
            .collect()),
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

#[cfg(test)]
mod tests {
    use jsonwebtoken::Algorithm;

    use super::super::test_support::*;
    use crate::{auth::Role, config::AuthConfig};

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
        use base64::{Engine, engine::general_purpose::STANDARD};
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
}
