//! Credentials: the `authorization` value (bearer header, JWT, API key), JWTs correctly signed over any header
//! and claims, and the API keys JSON. None panics; a caller is the same whether verified or cached, and a
//! principal keeps the rules every handler relies on.
#![no_main]

use std::sync::LazyLock;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use ticketd::{
    auth::{Authenticator, Principal, Role, credentials::hash_api_key},
    fuzzing,
};

const SECRET: &str = "fuzzing-secret-fuzzing-secret-32b";

/// One key per role an API key may have; the seeds send these keys.
static API_KEYS: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"{{"keys": [
            {{"id": "fuzz-admin", "sha256": "{}", "role": "admin"}},
            {{"id": "fuzz-service", "sha256": "{}", "role": "service", "scopes": ["tickets:read"]}}
        ]}}"#,
        hash_api_key("fuzz-admin-key"),
        hash_api_key("fuzz-service-key"),
    )
});

static AUTHENTICATOR: LazyLock<Authenticator> = LazyLock::new(|| {
    fuzzing::authenticator(SECRET, Some(&API_KEYS)).expect("the fuzzing configuration is valid")
});

fn check_principal(principal: &Principal) {
    assert!(!principal.id.is_empty() && principal.id.chars().count() <= 255);
    match principal.role {
        Role::Customer => assert!(principal.portal.is_some(), "a customer without a portal"),
        Role::Service => assert!(principal.scopes.is_some(), "a service without scopes"),
        Role::Admin | Role::Agent => assert!(principal.scopes.is_none()),
    }
}

/// Authenticates twice: the second answer may come from the cache of verified tokens and must not differ.
fn authenticate(authorization: &[u8]) -> Result<Principal, String> {
    let first = fuzzing::authenticate(&AUTHENTICATOR, Some(authorization));
    let second = fuzzing::authenticate(&AUTHENTICATOR, Some(authorization));
    assert_eq!(
        first, second,
        "a cached answer differs from the verified one"
    );
    let principal = first.map_err(|rejection| rejection.message().to_owned())?;
    check_principal(&principal);
    Ok(principal)
}

/// A token signed with the server's secret over exactly these header and claims bytes.
fn signed(header: &[u8], claims: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::HS256,
    )
    .expect("HMAC signs any message");
    format!("{message}.{signature}")
}

fuzz_target!(|data: &[u8]| {
    let _ = authenticate(data);

    // `header JSON \n claims JSON`: the signature holds, so the claims are what gets tested.
    if let Some(split) = data.iter().position(|&byte| byte == b'\n') {
        let token = signed(&data[..split], &data[split + 1..]);
        if let Err(message) = authenticate(format!("Bearer {token}").as_bytes()) {
            let claims = token.split('.').nth(1).unwrap_or_default();
            assert!(
                claims.len() < 8 || !message.contains(claims),
                "a rejection echoes the token: {message}"
            );
        }
    }

    // The API keys JSON of `TICKETD_API_KEYS` / `--api-keys-file`.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = fuzzing::authenticator(SECRET, Some(text));
    }
});
