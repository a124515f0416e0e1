//! Entry points for the fuzz targets in `fuzz/` (built only with `--cfg fuzzing`, which cargo-fuzz sets).
//!
//! The targets reach the parsers through this module alone, so when a parser's signature changes the build
//! breaks here, next to the call, and not in a crate outside the workspace. Each function is a thin call: the
//! properties checked live in the targets.

use std::collections::BTreeMap;

use crate::{
    api,
    auth::{Authenticator, Principal, credentials::Rejection},
    config::{AuthConfig, AuthMode},
    domain::{
        Result,
        card::{self, CardView, Rendered},
        page::Cursor,
        property::{self, PropertyDefinition, PropertyOption, PropertyType, TypedValue},
        search::{self, Predicate, RawFilter},
    },
};

/// A Kaizala ChatCanvasCardView from JSON text, as `CreateCardTemplate` parses it.
pub fn card_view(json: &str) -> Result<CardView> {
    card::parse_view(json)
}

/// A parsed view rendered with card property values and no ticket, as a card's watchers receive it.
pub fn render_card_view(view: &CardView, properties: &BTreeMap<String, String>) -> Rendered {
    view.render(properties, None)
}

/// SearchTickets filter groups checked against property definitions.
pub fn search_filters(
    groups: Vec<Vec<RawFilter>>,
    definitions: &BTreeMap<String, PropertyDefinition>,
) -> Result<Vec<Vec<Predicate>>> {
    search::compile(groups, definitions)
}

/// The words of a search's `query` (and of CONTAINS_TOKEN).
pub fn query_words(query: &str) -> Vec<String> {
    search::query_words(query)
}

/// The query fingerprint a listing puts in its page tokens.
pub fn query_fingerprint(description: &str) -> String {
    api::query_fingerprint(description)
}

/// Reads a page token carrying a keyset cursor (tickets, cards, portals, time entries, associations).
pub fn decode_cursor_token(query: &str, token: &str) -> Result<Option<Cursor>> {
    api::decode_page_token(query, token)
}

/// Reads a page token carrying a name (properties, followers).
pub fn decode_name_token(query: &str, token: &str) -> Result<Option<String>> {
    api::decode_page_token(query, token)
}

/// Reads a page token carrying a pair of names (followed tickets).
pub fn decode_pair_token(query: &str, token: &str) -> Result<Option<(String, String)>> {
    api::decode_page_token(query, token)
}

/// Writes the page token of a keyset cursor.
pub fn encode_cursor_token(query: &str, cursor: Option<Cursor>) -> String {
    api::encode_page_token(query, cursor)
}

/// Writes the page token of a name.
pub fn encode_name_token(query: &str, name: Option<String>) -> String {
    api::encode_page_token(query, name)
}

/// Writes the page token of a pair of names.
pub fn encode_pair_token(query: &str, pair: Option<(String, String)>) -> String {
    api::encode_page_token(query, pair)
}

/// An `--auth jwt` authenticator with an HS256 secret and, when given, the API keys JSON of
/// `TICKETD_API_KEYS`; the error is the start-up message an operator would see.
pub fn authenticator(hs256_secret: &str, api_keys: Option<&str>) -> Result<Authenticator, String> {
    let config = AuthConfig {
        mode: AuthMode::Jwt,
        jwt_hs256_secret: Some(hs256_secret.to_owned()),
        api_keys: api_keys.map(str::to_owned),
        ..AuthConfig::default()
    };
    Authenticator::from_config(&config).map_err(|error| error.to_string())
}

/// The caller a raw `authorization` metadata value names (bearer header, then JWT or API key).
pub fn authenticate(
    authenticator: &Authenticator,
    authorization: Option<&[u8]>,
) -> Result<Principal, Rejection> {
    authenticator.authenticate(authorization)
}

/// A custom property value in canonical form, as tickets store it and filters compare it.
pub fn property_value(
    property_type: PropertyType,
    options: &[PropertyOption],
    raw: &str,
) -> std::result::Result<TypedValue, String> {
    property::parse_typed(property_type, options, raw)
}

/// The canonical text of a NUMBER value.
pub fn canonical_decimal(raw: &str) -> Option<String> {
    property::canonical_decimal(raw)
}

/// Ticket properties as `CreateTicket` normalises them against the definitions.
pub fn normalize_properties(
    definitions: &BTreeMap<String, PropertyDefinition>,
    properties: BTreeMap<String, String>,
) -> Result<BTreeMap<String, TypedValue>> {
    property::normalize_properties(definitions, properties)
}
