//! Minting HS256 tokens, for `ticketd token` and the tests: the claim set ticketd understands and its signer.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use super::jwt::portal_claim;

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

#[cfg(test)]
mod tests {
    use super::Claims;

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
}
