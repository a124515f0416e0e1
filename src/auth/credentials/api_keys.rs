//! Static API keys from `--api-keys-file` or `TICKETD_API_KEYS`: kept only as SHA-256 hashes, each naming a
//! fixed admin, agent or service principal.

use std::collections::BTreeSet;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::{AuthSetupError, MAX_SUB_CHARS, Rejection, read_file};
use crate::{
    auth::{Principal, Role},
    config::AuthConfig,
};

/// Named in errors, like the key flags, so the operator knows which setting to fix.
pub(super) const API_KEYS_FLAG: &str = "--api-keys-file";
const API_KEYS_ENV: &str = "TICKETD_API_KEYS";

/// A static API key, kept only as its hash.
pub(super) struct ApiKey {
    sha256: [u8; 32],
    principal: Principal,
}

/// The SHA-256 hex of an API key, as stored in the keys file.
pub fn hash_api_key(key: &str) -> String {
    to_hex(&sha256(key))
}

/// The API keys the flags name: the file wins over `TICKETD_API_KEYS`; none when neither is set.
pub(super) fn load_api_keys(config: &AuthConfig) -> Result<Vec<ApiKey>, AuthSetupError> {
    match (&config.api_keys_file, &config.api_keys) {
        (Some(path), _) => parse_api_keys(
            &read_file(API_KEYS_FLAG, path)?,
            format!("{API_KEYS_FLAG} {}", path.display()),
        ),
        (None, Some(inline)) => parse_api_keys(inline.as_bytes(), API_KEYS_ENV.to_owned()),
        (None, None) => Ok(Vec::new()),
    }
}

/// The principal of the entry whose hash is `key`'s.
pub(super) fn verify_api_key(api_keys: &[ApiKey], key: &str) -> Result<Principal, Rejection> {
    let digest = sha256(key);
    // Every entry is compared, without early exit, so the time taken does not tell which entry (or which
    // prefix of a hash) came close; index 0 means no match.
    let mut found = 0u64;
    for (index, entry) in (1u64..).zip(api_keys) {
        found.conditional_assign(&index, entry.sha256[..].ct_eq(&digest[..]));
    }
    found
        .checked_sub(1)
        .and_then(|index| usize::try_from(index).ok())
        .and_then(|index| api_keys.get(index))
        .map(|entry| entry.principal.clone())
        .ok_or_else(|| Rejection::new("unknown API key"))
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{super::test_support::*, hash_api_key};
    use crate::{
        auth::{Principal, Role},
        config::AuthConfig,
    };

    const API_KEYS: &str = r#"{"keys": [
        {"id": "billing-sync", "sha256": "SHA", "role": "service", "scopes": ["tickets:read", "tickets:write"]},
        {"id": "ops", "sha256": "OPS", "role": "admin", "scopes": ["ignored"]}
    ]}"#;

    fn api_keys_file() -> String {
        API_KEYS
            .replace("SHA", &hash_api_key("tk_live_billing").to_uppercase())
            .replace("OPS", &hash_api_key("tk_live_ops"))
    }

    fn api_keys_config(content: &str) -> (tempfile::NamedTempFile, AuthConfig) {
        let file = temp_file(content);
        let config = AuthConfig {
            api_keys_file: Some(file.path().to_owned()),
            ..jwt_config()
        };
        (file, config)
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
}
