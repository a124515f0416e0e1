//! What the formats do not allow is refused, and refusals are well formed (issue 16, item 8): a status's
//! `grpc-status-details-bin` agrees with the status itself; an oversized credential is UNAUTHENTICATED for that
//! call alone; dates are strictly `YYYY-MM-DD`; the mask path `properties.` names nothing; card views carry a
//! `schemaVersion` Kaizala defines; JWTs with a `crit` header or an unsigned `alg` are refused.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use prost::Message;
use ticketd::{
    auth::credentials::Claims,
    proto::{
        BatchGetTicketsRequest, CreateCardTemplateRequest, GetTicketRequest, PropertyType, Ticket,
    },
};
use tonic::{Code, Status};

use crate::support::*;

both_databases!(
    status_details_agree_with_the_status_for_batch_and_plain_errors,
    an_oversized_authorization_header_is_unauthenticated_and_the_connection_survives,
    date_properties_must_be_yyyy_mm_dd,
    datetimes_whose_utc_form_leaves_four_digit_years_are_refused,
    work_dates_must_be_yyyy_mm_dd,
    the_mask_path_properties_dot_names_nothing,
    card_views_must_carry_a_kaizala_schema_version,
    tokens_with_a_crit_header_are_unauthenticated,
    unsigned_tokens_and_embedded_keys_are_unauthenticated,
);

/// The `google.rpc.Status` a client decodes from `grpc-status-details-bin` has the status's own code and
/// message, which Python's `grpc_status.from_call` insists on (a mismatch raises ValueError).
#[track_caller]
fn assert_details_agree(status: &Status) {
    let details = tonic_types::pb::Status::decode(status.details())
        .unwrap_or_else(|error| panic!("{status:?}: details do not decode: {error}"));
    assert_eq!(details.code, status.code() as i32, "{status:?}");
    assert_eq!(details.message, status.message(), "{status:?}");
}

async fn status_details_agree_with_the_status_for_batch_and_plain_errors(app: TestApp) {
    let created = app.create_ticket(ticket("known")).await;

    let batch = assert_code(
        app.tickets()
            .batch_get_tickets(BatchGetTicketsRequest {
                ids: vec![created.id, 424_242],
            })
            .await,
        Code::NotFound,
    );
    assert!(
        batch.message().starts_with("ids[1]: "),
        "the message names the item: {:?}",
        batch.message()
    );
    assert_details_agree(&batch);

    let plain = assert_code(
        app.tickets()
            .get_ticket(GetTicketRequest { id: 424_242 })
            .await,
        Code::NotFound,
    );
    assert_details_agree(&plain);

    let invalid = assert_invalid(
        app.tickets()
            .create_ticket(create_ticket_req(ticket("")))
            .await,
        "ticket.subject",
    );
    assert_details_agree(&invalid);
}

async fn an_oversized_authorization_header_is_unauthenticated_and_the_connection_survives(
    app: TestApp,
) {
    let created = app.create_ticket(ticket("reachable")).await;
    let huge = "a".repeat(100 * 1024);
    let status = assert_code(
        app.tickets()
            .get_ticket(with_token(GetTicketRequest { id: created.id }, &huge))
            .await,
        Code::Unauthenticated,
    );
    assert!(
        status.message().contains("authorization") && status.message().contains("16384"),
        "the message names the header and its limit: {:?}",
        status.message()
    );
    // The same channel (one HTTP/2 connection) carries on.
    assert_eq!(app.get_ticket(created.id).await, created);
}

/// Values `%Y-%m-%d` alone would take that ISO 8601's `YYYY-MM-DD` does not.
const LENIENT_DATES: [&str; 4] = ["2024-1-1", "2024-01-1", "+2024-01-01", "02024-01-01"];

async fn date_properties_must_be_yyyy_mm_dd(app: TestApp) {
    app.define_property("due", PropertyType::Date).await;
    for value in LENIENT_DATES {
        let status = assert_invalid(
            app.tickets()
                .create_ticket(create_ticket_req(Ticket {
                    properties: properties(&[("due", value)]),
                    ..ticket("lenient date")
                }))
                .await,
            "ticket.properties.due",
        );
        assert!(status.message().contains(value), "{:?}", status.message());
    }
    let created = app
        .create_ticket(Ticket {
            properties: properties(&[("due", "2024-01-01")]),
            ..ticket("strict date")
        })
        .await;
    assert_eq!(created.properties["due"], "2024-01-01");
}

/// RFC 3339 allows any offset on a 4-digit year, but the value is stored in UTC, which must stay readable
/// (found by the `property_value` fuzz target).
async fn datetimes_whose_utc_form_leaves_four_digit_years_are_refused(app: TestApp) {
    app.define_property("deadline", PropertyType::Datetime)
        .await;
    for value in ["9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+23:59"] {
        let status = assert_invalid(
            app.tickets()
                .create_ticket(create_ticket_req(Ticket {
                    properties: properties(&[("deadline", value)]),
                    ..ticket("a deadline past the calendar")
                }))
                .await,
            "ticket.properties.deadline",
        );
        assert!(
            status.message().contains("DATETIME range"),
            "{:?}",
            status.message()
        );
    }
    let created = app
        .create_ticket(Ticket {
            properties: properties(&[("deadline", "9999-12-31T23:59:59Z")]),
            ..ticket("the last second")
        })
        .await;
    assert_eq!(created.properties["deadline"], "9999-12-31T23:59:59Z");
    assert_eq!(
        app.ticket_count().await,
        1,
        "the refused tickets were not written"
    );
}

async fn work_dates_must_be_yyyy_mm_dd(app: TestApp) {
    let created = app.create_ticket(ticket("worked on")).await;
    for value in LENIENT_DATES {
        let status = assert_invalid(
            app.tickets()
                .log_time(log_time_req(created.id, 15, value))
                .await,
            "work_date",
        );
        assert!(status.message().contains(value), "{:?}", status.message());
    }
    let entry = ok(app
        .tickets()
        .log_time(log_time_req(created.id, 15, "2024-01-01"))
        .await);
    assert_eq!(entry.work_date, "2024-01-01");
}

async fn the_mask_path_properties_dot_names_nothing(app: TestApp) {
    let created = app.create_ticket(ticket("masked")).await;
    let request = update_ticket_req(
        Ticket {
            id: created.id,
            ..Default::default()
        },
        &["properties."],
    );
    let status = assert_invalid(app.tickets().update_ticket(request).await, "update_mask");
    assert!(
        status.message().contains("\"properties.\""),
        "the message quotes the path: {:?}",
        status.message()
    );
    assert_eq!(app.get_ticket(created.id).await, created);
}

async fn card_views_must_carry_a_kaizala_schema_version(app: TestApp) {
    let with_version = |version: u64| {
        let mut view: serde_json::Value =
            serde_json::from_str(&kaizala_fixture("ChatCardView.json")).expect("fixture JSON");
        view["schemaVersion"] = version.into();
        CreateCardTemplateRequest {
            schema: view.to_string(),
            ..card_template_req(&format!("version {version}"))
        }
    };
    for version in [0, 3, 99] {
        let status = assert_invalid(
            app.cards()
                .create_card_template(with_version(version))
                .await,
            "schemaVersion",
        );
        assert!(
            status.message().contains(&version.to_string()),
            "{:?}",
            status.message()
        );
    }
    for version in [1, 2] {
        app.create_card_template(with_version(version)).await;
    }
}

/// Claims of an admin, valid for ten minutes.
fn admin_claims() -> Claims {
    Claims {
        sub: "crit-tester".to_owned(),
        role: "admin".to_owned(),
        exp: chrono::Utc::now().timestamp() + 600,
        ..Default::default()
    }
}

/// A token with `header` as its header JSON, signed HS256 with `secret`.
fn signed(header: &str, secret: &str) -> String {
    let claims = serde_json::to_string(&admin_claims()).expect("claims JSON");
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = jsonwebtoken::crypto::sign(
        input.as_bytes(),
        &EncodingKey::from_secret(secret.as_bytes()),
        Algorithm::HS256,
    )
    .expect("signing");
    format!("{input}.{signature}")
}

/// Asserts that a call with `token` is UNAUTHENTICATED, its message containing `says`.
async fn assert_refused(app: &TestApp, token: &str, says: &str) {
    let status = assert_code(
        app.tickets()
            .get_ticket(with_token(GetTicketRequest { id: 1 }, token))
            .await,
        Code::Unauthenticated,
    );
    assert!(
        status.message().contains(says),
        "expected {says:?} in {:?}",
        status.message()
    );
}

async fn tokens_with_a_crit_header_are_unauthenticated(app: TestApp) {
    let crit = jsonwebtoken::encode(
        &Header {
            crit: Some(vec!["exp".to_owned()]),
            ..Header::new(Algorithm::HS256)
        },
        &admin_claims(),
        &EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .expect("signing");
    assert_refused(&app, &crit, "crit").await;
    for header in [
        r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
        r#"{"alg":"HS256","crit":[]}"#,
    ] {
        assert_refused(&app, &signed(header, TEST_JWT_SECRET), "crit").await;
    }
    // The same claims and key without `crit` are accepted.
    let plain = signed(r#"{"alg":"HS256","typ":"JWT"}"#, TEST_JWT_SECRET);
    let created = app.create_ticket(ticket("token check")).await;
    let got = ok(app
        .tickets()
        .get_ticket(with_token(GetTicketRequest { id: created.id }, &plain))
        .await);
    assert_eq!(got, created);
}

async fn unsigned_tokens_and_embedded_keys_are_unauthenticated(app: TestApp) {
    let claims = URL_SAFE_NO_PAD.encode(serde_json::to_string(&admin_claims()).expect("JSON"));
    for alg in ["none", "None", "NONE"] {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#));
        assert_refused(&app, &format!("{header}.{claims}."), "not accepted").await;
    }
    // A key the token brings along (`jwk`, `jku`) is not a key ticketd trusts.
    let attacker = "attacker-chosen-secret-attacker-chosen-secret";
    let jwk = format!(
        r#"{{"alg":"HS256","jwk":{{"kty":"oct","k":"{}"}}}}"#,
        URL_SAFE_NO_PAD.encode(attacker)
    );
    assert_refused(&app, &signed(&jwk, attacker), "signature").await;
    let jku = r#"{"alg":"HS256","jku":"https://attacker.example/keys"}"#;
    assert_refused(&app, &signed(jku, attacker), "signature").await;
}
