//! Credentials of the test servers (JWT mode with an HS256 secret) and of their callers: tokens of each role,
//! the interceptor that adds them to a client, and requests carrying a token of their own.

use ticketd::{
    auth::credentials::{Claims, mint_hs256},
    config::{AuthMode, ServeConfig},
};
use tonic::{Status, transport::Channel};

/// The HS256 secret of servers started in JWT mode.
pub const TEST_JWT_SECRET: &str = "ticketd-integration-tests-hs256-secret-0123456789";

/// The caller of the default clients.
pub const TEST_ADMIN: &str = "test-admin";

/// Switches a configuration to `--auth jwt` with [`TEST_JWT_SECRET`].
pub fn enable_jwt(config: &mut ServeConfig) {
    config.auth.mode = AuthMode::Jwt;
    config.auth.jwt_hs256_secret = Some(TEST_JWT_SECRET.to_owned());
}

/// A token signed with [`TEST_JWT_SECRET`], valid for an hour unless `claims.exp` is set.
pub fn token(mut claims: Claims) -> String {
    if claims.exp == 0 {
        claims.exp = chrono::Utc::now().timestamp() + 3600;
    }
    mint_hs256(TEST_JWT_SECRET.as_bytes(), &claims).expect("signing a test token")
}

/// Claims of `sub` with `role` and no expiry yet ([`token`] sets one).
fn claims(sub: &str, role: &str) -> Claims {
    Claims {
        sub: sub.to_owned(),
        role: role.to_owned(),
        ..Default::default()
    }
}

/// A token of an admin named `sub`.
pub fn admin_token(sub: &str) -> String {
    token(claims(sub, "admin"))
}

/// A token of an agent named `sub`.
pub fn agent_token(sub: &str) -> String {
    token(claims(sub, "agent"))
}

/// A service token holding `scopes` (e.g. `tickets:read`).
pub fn service_token(sub: &str, scopes: &[&str]) -> String {
    token(Claims {
        scope: scopes.join(" "),
        ..claims(sub, "service")
    })
}

/// A customer of organization `org` (empty: none) signed in through `portal`.
pub fn customer_token(sub: &str, org: &str, portal: i64) -> String {
    token(Claims {
        org: org.to_owned(),
        portal: Some(portal),
        ..claims(sub, "customer")
    })
}

/// Adds `authorization: Bearer <token>` to every call of a client.
#[derive(Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl Bearer {
    /// The interceptor that adds `token` to every call.
    pub fn new(token: &str) -> Self {
        Bearer(format!("Bearer {token}").parse().expect("ASCII token"))
    }
}

impl tonic::service::Interceptor for Bearer {
    /// A token set on the request itself (see [`with_token`]) wins over the client's.
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if !request.metadata().contains_key("authorization") {
            request
                .metadata_mut()
                .insert("authorization", self.0.clone());
        }
        Ok(request)
    }
}

/// The default clients' interceptor, for clients over channels of their own.
pub fn admin_bearer() -> Bearer {
    Bearer::new(&admin_token(TEST_ADMIN))
}

/// A channel whose calls carry a token.
pub type Authed = tonic::service::interceptor::InterceptedService<Channel, Bearer>;

/// `message` sent by an agent named `actor` (its token's `sub`).
pub fn with_actor<T>(message: T, actor: &str) -> tonic::Request<T> {
    with_token(message, &agent_token(actor))
}

/// A request carrying `authorization: Bearer <token>`.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ASCII token"),
    );
    request
}
