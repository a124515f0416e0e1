//! Authentication and roles, end to end through the generated clients:
//!
//! - bad credentials (none, not `Bearer`, malformed, expired, not yet valid, wrong secret, `alg: none`, HS384,
//!   unknown role, customer without portal, wrong audience or issuer) are UNAUTHENTICATED on unary and
//!   streaming calls, and the message never echoes the credential; health and reflection stay open;
//! - RS256 and ES256 tokens verified with a PEM file or a JWKS (by `kid`); static API keys;
//! - what each role may call (admin, agent, service scopes, customer), PERMISSION_DENIED naming the method and
//!   the missing role or scope, including a sweep over the whole policy table;
//! - authors and actors taken from the token's `sub`, and request ids that never replay another caller's answer;
//! - `--auth none` (an anonymous admin), and the configurations `Application::build` refuses.

use std::{
    fmt::Debug,
    io::Write as _,
    path::{Path, PathBuf},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use ticketd::{
    Application,
    auth::{
        AuthSetupError,
        credentials::{Claims, hash_api_key, mint_hs256},
        policy::{Audience, RULES},
    },
    config::{AuthMode, ServeConfig},
    error::StartupError,
    proto::{
        ArchivePropertyRequest, BatchArchiveTicketsRequest, CommentVisibility, CreateStageRequest,
        DeletePipelineRequest, DeletePortalRequest, DeleteStageRequest, FollowProjectRequest,
        FollowerKind, GetTicketRequest, ListAssociationTypesRequest, ListAssociationsRequest,
        ListCardTemplatesRequest, ListCommentsRequest, ListPipelinesRequest, ListPortalsRequest,
        ListPropertiesRequest, ListTicketHistoryRequest, ListTicketsRequest,
        ListTimeEntriesRequest, Portal, PropertyType, TicketEventKind, UpdatePipelineRequest,
        UpdatePropertyRequest, UpdateStageRequest, pipeline_service_client::PipelineServiceClient,
        ticket_service_client::TicketServiceClient,
    },
};
use tonic::{Code, Response, Status, transport::Channel};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::support::*;

both_databases!(
    // Credentials refused
    bad_credentials_are_unauthenticated_and_never_echoed,
    audience_and_issuer_are_required_when_configured,
    health_and_reflection_need_no_credentials,
    // Public keys and API keys
    rs256_and_es256_tokens_verify_against_a_pem_file,
    rs256_and_es256_tokens_verify_against_a_jwks_by_kid,
    api_keys_authenticate_services_and_agents,
    // Roles and scopes
    admins_may_change_the_schema,
    agents_may_not_change_the_schema,
    agents_work_tickets_comments_associations_and_cards,
    service_scopes_limit_a_service_to_its_grants,
    customers_may_not_call_staff_or_admin_methods,
    the_policy_table_closes_admin_and_staff_methods,
    // Callers recorded
    authors_and_actors_come_from_the_token,
    request_id_of_another_caller_is_a_request_of_its_own,
    // --auth none and start-up checks
    auth_none_makes_every_caller_an_anonymous_admin,
    auth_none_on_a_public_address_needs_the_insecure_flag,
    jwt_mode_with_nothing_to_verify_does_not_start,
);

// ---------------------------------------------------------------------------------------------------------------
// Helpers of this file
// ---------------------------------------------------------------------------------------------------------------

/// The test keys (see `tests/api/keys/README.md`).
fn key_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api/keys")
        .join(name)
}

/// The current Unix time, in seconds.
fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims of `sub` with `role`, valid for an hour.
fn claims(sub: &str, role: &str) -> Claims {
    Claims {
        sub: sub.to_owned(),
        role: role.to_owned(),
        exp: now() + 3600,
        ..Default::default()
    }
}

/// An RS256 or ES256 token signed with the private key in `key_file(private_key)`.
fn sign(alg: Algorithm, private_key: &str, kid: Option<&str>, claims: &Claims) -> String {
    let pem = std::fs::read(key_file(private_key))
        .unwrap_or_else(|err| panic!("cannot read test key {private_key}: {err}"));
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        other => panic!("no test key for {other:?}"),
    }
    .unwrap_or_else(|err| panic!("test key {private_key} is not a {alg:?} key: {err}"));
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &key).expect("signing a test token")
}

/// An HS256 token signed with `secret` (not necessarily the server's).
fn hs256(secret: &str, claims: &Claims) -> String {
    mint_hs256(secret.as_bytes(), claims).expect("signing a test token")
}

/// An unsigned token: `base64url({"alg":"none"}) . base64url(claims) .` (empty signature).
fn unsigned(claims: &Claims) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
    format!("{header}.{body}.")
}

/// `message` with exactly the `authorization` metadata given (none for `None`).
fn authorization<T>(message: T, value: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(value) = value {
        request.metadata_mut().insert(
            "authorization",
            value.parse().expect("ASCII authorization value"),
        );
    }
    request
}

/// A ticket client that adds no credentials of its own.
fn bare_tickets(app: &TestApp) -> TicketServiceClient<Channel> {
    TicketServiceClient::new(app.channel())
}

/// Stops `app` and starts a server over the same database with its configuration adjusted by `configure`
/// (after the default JWT setup of the harness).
async fn restart_with(app: TestApp, configure: impl FnOnce(&mut ServeConfig)) -> TestApp {
    let database = app.database.clone();
    app.shutdown().await;
    TestApp::start_with(database, configure).await
}

/// UNAUTHENTICATED, with a message that `mentions` the reason and never contains the credential (`header`
/// without its scheme) or any long piece of it.
#[track_caller]
fn assert_unauthenticated<T: Debug>(
    result: Result<Response<T>, Status>,
    header: Option<&str>,
    mentions: &str,
    what: &str,
) -> Status {
    let status = match result {
        Ok(response) => panic!(
            "{what}: expected UNAUTHENTICATED, got OK: {:?}",
            response.into_inner()
        ),
        Err(status) => status,
    };
    assert_eq!(
        status.code(),
        Code::Unauthenticated,
        "{what}: unexpected code; message: {:?}",
        status.message()
    );
    let message = status.message();
    assert!(
        message.contains(mentions),
        "{what}: message {message:?} does not mention {mentions:?}"
    );
    if let Some(header) = header {
        let credential = header.split_once(' ').map_or(header, |(_, rest)| rest);
        assert!(
            !message.contains(credential),
            "{what}: message {message:?} echoes the credential"
        );
        for piece in credential.split('.').filter(|piece| piece.len() >= 8) {
            assert!(
                !message.contains(piece),
                "{what}: message {message:?} echoes part of the credential ({piece:?})"
            );
        }
    }
    status
}

// ---------------------------------------------------------------------------------------------------------------
// Credentials refused
// ---------------------------------------------------------------------------------------------------------------

async fn bad_credentials_are_unauthenticated_and_never_echoed(app: TestApp) {
    let t = app.create_ticket(ticket("guarded")).await;
    let wrong_secret = "another-secret-of-the-right-length-0123456789";
    let hs384 = encode(
        &Header::new(Algorithm::HS384),
        &claims("hs384-admin", "admin"),
        &EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .expect("signing an HS384 token");
    let customer_without_portal = claims("customer-1", "customer");
    assert_eq!(customer_without_portal.portal, None);

    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no authorization metadata", None, "missing"),
        (
            "Basic scheme",
            Some("Basic xyz".to_owned()),
            "must be `Bearer <token>`",
        ),
        (
            "garbage bearer",
            Some("Bearer abc.def.ghi".to_owned()),
            "malformed",
        ),
        (
            "expired beyond the leeway",
            Some(format!(
                "Bearer {}",
                token(Claims {
                    exp: now() - 600,
                    ..claims("late-admin", "admin")
                })
            )),
            "expired",
        ),
        (
            "nbf an hour ahead",
            Some(format!(
                "Bearer {}",
                token(Claims {
                    nbf: Some(now() + 3600),
                    exp: now() + 7200,
                    ..claims("early-admin", "admin")
                })
            )),
            "nbf",
        ),
        (
            "wrong HS256 secret",
            Some(format!(
                "Bearer {}",
                hs256(wrong_secret, &claims("forged-admin", "admin"))
            )),
            "signature is invalid",
        ),
        (
            "alg none",
            Some(format!(
                "Bearer {}",
                unsigned(&claims("unsigned-admin", "admin"))
            )),
            "algorithm none is not accepted",
        ),
        (
            "HS384 with the right secret",
            Some(format!("Bearer {hs384}")),
            "algorithm HS384 is not accepted",
        ),
        (
            "unknown role",
            Some(format!("Bearer {}", token(claims("root-1", "root")))),
            "`role` claim",
        ),
        (
            "customer without portal",
            Some(format!("Bearer {}", token(customer_without_portal))),
            "`portal` claim",
        ),
        (
            "no sub",
            Some(format!("Bearer {}", token(claims("", "admin")))),
            "`sub` claim",
        ),
    ];

    let mut client = bare_tickets(&app);
    for (what, header, mentions) in &cases {
        let header = header.as_deref();
        let get = client
            .get_ticket(authorization(GetTicketRequest { id: t.id }, header))
            .await;
        assert_unauthenticated(get, header, mentions, &format!("{what}: GetTicket"));

        let list = client
            .list_tickets(authorization(ListTicketsRequest::default(), header))
            .await;
        assert_unauthenticated(list, header, mentions, &format!("{what}: ListTickets"));

        let watch = tokio::time::timeout(
            STREAM_TIMEOUT,
            client.watch_tickets(authorization(watch_all(0), header)),
        )
        .await
        .unwrap_or_else(|_| panic!("{what}: WatchTickets did not answer"));
        assert_unauthenticated(watch, header, mentions, &format!("{what}: WatchTickets"));
    }

    // The same calls with a good token succeed, so the refusals above are about the credentials; a token that
    // expired 10 s ago is still inside the 30 s leeway.
    let just_expired = format!(
        "Bearer {}",
        token(Claims {
            exp: now() - 10,
            ..claims("leeway-agent", "agent")
        })
    );
    ok(client
        .list_tickets(authorization(
            ListTicketsRequest::default(),
            Some(&just_expired),
        ))
        .await);
    let good = format!("Bearer {}", agent_token("agent-1"));
    let got = ok(client
        .get_ticket(authorization(GetTicketRequest { id: t.id }, Some(&good)))
        .await);
    assert_eq!(got.id, t.id);
    let mut stream = ok(client
        .watch_tickets(authorization(watch_all(0), Some(&good)))
        .await);
    app.update_ticket(subject_change(t.id, "guarded, watched"), &["subject"])
        .await;
    let event = next_message(&mut stream, "WatchTickets with a good token").await;
    assert_eq!(event.ticket_id, t.id);
}

async fn audience_and_issuer_are_required_when_configured(app: TestApp) {
    const AUDIENCE: &str = "ticketd";
    const ISSUER: &str = "https://id.example.com";
    let app = restart_with(app, |config| {
        config.auth.jwt_audience = Some(AUDIENCE.to_owned());
        config.auth.jwt_issuer = Some(ISSUER.to_owned());
    })
    .await;
    let scoped = |aud: Option<&str>, iss: Option<&str>| {
        token(Claims {
            aud: aud.map(str::to_owned),
            iss: iss.map(str::to_owned),
            ..claims("agent-aud", "agent")
        })
    };

    let good = scoped(Some(AUDIENCE), Some(ISSUER));
    let created = ok(app
        .tickets_as(&good)
        .create_ticket(create_ticket_req(ticket("for the right audience")))
        .await);
    let listed = ok(app
        .tickets_as(&good)
        .list_tickets(ListTicketsRequest::default())
        .await);
    assert_eq!(ids(&listed.tickets), vec![created.id]);

    let cases = [
        (
            "wrong audience",
            scoped(Some("billing"), Some(ISSUER)),
            "`aud`",
        ),
        (
            "wrong issuer",
            scoped(Some(AUDIENCE), Some("https://evil.example.com")),
            "`iss`",
        ),
        ("no audience", scoped(None, Some(ISSUER)), "`aud`"),
        ("no issuer", scoped(Some(AUDIENCE), None), "`iss`"),
        (
            "the harness's admin token (no aud, no iss)",
            admin_token(TEST_ADMIN),
            "claim",
        ),
    ];
    let mut client = bare_tickets(&app);
    for (what, bad, mentions) in &cases {
        let header = format!("Bearer {bad}");
        let result = client
            .list_tickets(authorization(ListTicketsRequest::default(), Some(&header)))
            .await;
        assert_unauthenticated(result, Some(&header), mentions, what);
    }
}

async fn health_and_reflection_need_no_credentials(app: TestApp) {
    for service in ["", "ticketd.v1.TicketService"] {
        assert_eq!(
            app.health_status(service).await,
            ServingStatus::Serving,
            "health of {service:?}"
        );
    }

    let services = app.reflected_services_v1().await;
    assert!(
        services.iter().any(|s| s == "ticketd.v1.TicketService"),
        "reflection lists {services:?}"
    );

    // The same channel without credentials cannot reach the tickets.
    assert_unauthenticated(
        bare_tickets(&app)
            .list_tickets(ListTicketsRequest::default())
            .await,
        None,
        "missing",
        "ListTickets without credentials",
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Public keys and API keys
// ---------------------------------------------------------------------------------------------------------------

async fn rs256_and_es256_tokens_verify_against_a_pem_file(app: TestApp) {
    let app = restart_with(app, |config| {
        config.auth.jwt_hs256_secret = None;
        config.auth.jwt_public_keys_file = Some(key_file("public_keys.pem"));
    })
    .await;

    let rsa_admin = sign(
        Algorithm::RS256,
        "rsa_private.pem",
        None,
        &claims("rsa-admin", "admin"),
    );
    let created = ok(app
        .tickets_as(&rsa_admin)
        .create_ticket(create_ticket_req(ticket("signed with RSA")))
        .await);

    let ec_agent = sign(
        Algorithm::ES256,
        "ec_private.pem",
        None,
        &claims("ec-agent", "agent"),
    );
    let comment = ok(app
        .tickets_as(&ec_agent)
        .add_comment(comment_req(
            created.id,
            "signed with EC",
            CommentVisibility::Public,
        ))
        .await);
    assert_eq!(comment.author_id, "ec-agent");
    let history = ok(app
        .tickets_as(&ec_agent)
        .list_ticket_history(ListTicketHistoryRequest {
            ticket_id: created.id,
            ..Default::default()
        })
        .await);
    assert_eq!(history.events[0].actor_id, "rsa-admin");

    let mut client = bare_tickets(&app);
    let refused = [
        (
            "RS256 signed by another key",
            sign(
                Algorithm::RS256,
                "other_rsa_private.pem",
                None,
                &claims("other-admin", "admin"),
            ),
            "signature is invalid",
        ),
        (
            "HS256 with only public keys configured",
            admin_token(TEST_ADMIN),
            "algorithm HS256 is not accepted",
        ),
    ];
    for (what, bad, mentions) in &refused {
        let header = format!("Bearer {bad}");
        let result = client
            .get_ticket(authorization(
                GetTicketRequest { id: created.id },
                Some(&header),
            ))
            .await;
        assert_unauthenticated(result, Some(&header), mentions, what);
    }
}

async fn rs256_and_es256_tokens_verify_against_a_jwks_by_kid(app: TestApp) {
    let app = restart_with(app, |config| {
        config.auth.jwt_hs256_secret = None;
        config.auth.jwt_public_keys_file = Some(key_file("jwks.json"));
    })
    .await;

    let rsa_admin = sign(
        Algorithm::RS256,
        "rsa_private.pem",
        Some("rsa-1"),
        &claims("jwks-rsa-admin", "admin"),
    );
    let created = ok(app
        .tickets_as(&rsa_admin)
        .create_ticket(create_ticket_req(ticket("signed with rsa-1")))
        .await);

    let ec_agent = sign(
        Algorithm::ES256,
        "ec_private.pem",
        Some("ec-1"),
        &claims("jwks-ec-agent", "agent"),
    );
    let comment = ok(app
        .tickets_as(&ec_agent)
        .add_comment(comment_req(
            created.id,
            "signed with ec-1",
            CommentVisibility::Public,
        ))
        .await);
    assert_eq!(comment.author_id, "jwks-ec-agent");

    // Without a kid, every key of the algorithm is tried.
    let no_kid = sign(
        Algorithm::RS256,
        "rsa_private.pem",
        None,
        &claims("jwks-no-kid", "agent"),
    );
    ok(app
        .tickets_as(&no_kid)
        .get_ticket(GetTicketRequest { id: created.id })
        .await);

    let mut client = bare_tickets(&app);
    let refused = [
        (
            "RS256 signed by another key under kid rsa-1",
            sign(
                Algorithm::RS256,
                "other_rsa_private.pem",
                Some("rsa-1"),
                &claims("other-admin", "admin"),
            ),
            "signature is invalid",
        ),
        (
            "unknown kid",
            sign(
                Algorithm::RS256,
                "rsa_private.pem",
                Some("rsa-9"),
                &claims("jwks-rsa-admin", "admin"),
            ),
            "unknown key id",
        ),
        (
            "RS256 naming the EC key",
            sign(
                Algorithm::RS256,
                "rsa_private.pem",
                Some("ec-1"),
                &claims("jwks-rsa-admin", "admin"),
            ),
            "not for RS256",
        ),
        (
            "HS256 with only a JWKS configured",
            admin_token(TEST_ADMIN),
            "algorithm HS256 is not accepted",
        ),
    ];
    for (what, bad, mentions) in &refused {
        let header = format!("Bearer {bad}");
        let result = client
            .get_ticket(authorization(
                GetTicketRequest { id: created.id },
                Some(&header),
            ))
            .await;
        assert_unauthenticated(result, Some(&header), mentions, what);
    }
}

async fn api_keys_authenticate_services_and_agents(app: TestApp) {
    const SERVICE_KEY: &str = "svc_reader_3f9a1c7e5b2d4f6a8c0e2b4d";
    const AGENT_KEY: &str = "agt_helpdesk_71b3d5f7a9c1e3f5b7d9f1a3";
    let mut keys_file = tempfile::NamedTempFile::new().expect("a temporary keys file");
    let keys = serde_json::json!({
        "keys": [
            {
                "id": "reporting-service",
                "sha256": hash_api_key(SERVICE_KEY),
                "role": "service",
                "scopes": ["tickets:read"],
            },
            {
                "id": "helpdesk-bot",
                "sha256": hash_api_key(AGENT_KEY),
                "role": "agent",
            },
        ]
    });
    keys_file
        .write_all(keys.to_string().as_bytes())
        .expect("writing the keys file");
    let path = keys_file.path().to_owned();
    let app = restart_with(app, |config| config.auth.api_keys_file = Some(path)).await;
    let existing = app.create_ticket(ticket("made by the admin")).await;

    // The read-only service key reads, but cannot write.
    let listed = ok(app
        .tickets_as(SERVICE_KEY)
        .list_tickets(ListTicketsRequest::default())
        .await);
    assert_eq!(ids(&listed.tickets), vec![existing.id]);
    assert_method_denied(
        app.tickets_as(SERVICE_KEY)
            .create_ticket(create_ticket_req(ticket("not allowed")))
            .await,
        "CreateTicket",
        "\"tickets:write\"",
    );

    // An unknown key is not a caller at all.
    let unknown = "svc_unknown_000000000000000000000000";
    assert_unauthenticated(
        app.tickets_as(unknown)
            .list_tickets(ListTicketsRequest::default())
            .await,
        Some(&format!("Bearer {unknown}")),
        "unknown API key",
        "unknown API key",
    );

    // The agent key works like an agent token, and its id is the author.
    let created = ok(app
        .tickets_as(AGENT_KEY)
        .create_ticket(create_ticket_req(ticket("made by the bot")))
        .await);
    let comment = ok(app
        .tickets_as(AGENT_KEY)
        .add_comment(comment_req(
            created.id,
            "the bot was here",
            CommentVisibility::Public,
        ))
        .await);
    assert_eq!(comment.author_id, "helpdesk-bot");
    let history = app.history(created.id).await;
    assert!(
        history.iter().all(|e| e.actor_id == "helpdesk-bot"),
        "history actors: {history:?}"
    );
    assert_eq!(
        ids(&app.list_all_tickets(ListTicketsRequest::default()).await),
        vec![existing.id, created.id],
        "the refused CreateTicket created nothing"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Roles and scopes
// ---------------------------------------------------------------------------------------------------------------

async fn admins_may_change_the_schema(app: TestApp) {
    let admin = admin_token("schema-admin");

    let pipeline = ok(app
        .pipelines_as(&admin)
        .create_pipeline(create_pipeline_req(simple_pipeline("Admin pipeline")))
        .await);
    assert!(pipeline.id > 0);
    let property = ok(app
        .properties_as(&admin)
        .create_property(create_property_req(property_def(
            "admin_property",
            PropertyType::String,
        )))
        .await);
    assert_eq!(property.name, "admin_property");
    let association_type = ok(app
        .associations_as(&admin)
        .create_association_type(association_type_req("ticket", "company", "admin label", ""))
        .await);
    assert_eq!(association_type.label, "admin label");
    let template = ok(app
        .cards_as(&admin)
        .create_card_template(card_template_req("Admin card"))
        .await);
    assert!(template.id > 0);
    let portal = ok(app
        .portals_as(&admin)
        .create_portal(create_portal_req(portal("Admin portal")))
        .await);
    assert!(portal.id > 0);
}

async fn agents_may_not_change_the_schema(app: TestApp) {
    let agent = agent_token("agent-schema");
    const ADMIN_ONLY: &str = "needs the admin role; the caller is agent";

    assert_method_denied(
        app.pipelines_as(&agent)
            .create_pipeline(create_pipeline_req(simple_pipeline("Agent pipeline")))
            .await,
        "CreatePipeline",
        ADMIN_ONLY,
    );
    assert_method_denied(
        app.properties_as(&agent)
            .create_property(create_property_req(property_def(
                "agent_property",
                PropertyType::String,
            )))
            .await,
        "CreateProperty",
        ADMIN_ONLY,
    );
    assert_method_denied(
        app.associations_as(&agent)
            .create_association_type(association_type_req("ticket", "company", "agent label", ""))
            .await,
        "CreateAssociationType",
        ADMIN_ONLY,
    );
    assert_method_denied(
        app.cards_as(&agent)
            .create_card_template(card_template_req("Agent card"))
            .await,
        "CreateCardTemplate",
        ADMIN_ONLY,
    );
    assert_method_denied(
        app.portals_as(&agent)
            .create_portal(create_portal_req(portal("Agent portal")))
            .await,
        "CreatePortal",
        ADMIN_ONLY,
    );

    // Nothing was created.
    let admin = admin_token(TEST_ADMIN);
    let pipelines = ok(app
        .pipelines_as(&admin)
        .list_pipelines(ListPipelinesRequest::default())
        .await);
    assert!(
        pipelines
            .pipelines
            .iter()
            .all(|p| p.label != "Agent pipeline"),
        "{pipelines:?}"
    );
    let properties = ok(app
        .properties_as(&admin)
        .list_properties(ListPropertiesRequest::default())
        .await);
    assert!(
        properties
            .properties
            .iter()
            .all(|p| p.name != "agent_property"),
        "{properties:?}"
    );
    let types = ok(app
        .associations_as(&admin)
        .list_association_types(ListAssociationTypesRequest::default())
        .await);
    assert!(
        types
            .association_types
            .iter()
            .all(|t| t.label != "agent label"),
        "{types:?}"
    );
    let templates = ok(app
        .cards_as(&admin)
        .list_card_templates(ListCardTemplatesRequest::default())
        .await);
    assert!(templates.card_templates.is_empty(), "{templates:?}");
    let portals = ok(app
        .portals_as(&admin)
        .list_portals(ListPortalsRequest::default())
        .await);
    assert!(portals.portals.is_empty(), "{portals:?}");
}

async fn agents_work_tickets_comments_associations_and_cards(app: TestApp) {
    let agent = agent_token("agent-worker");
    let template = ok(app
        .cards()
        .create_card_template(card_template_req("Ticket card"))
        .await);

    let mut tickets = app.tickets_as(&agent);
    let created = ok(tickets
        .create_ticket(create_ticket_req(ticket("printer on fire")))
        .await);
    let updated = ok(tickets
        .update_ticket(update_ticket_req(
            subject_change(created.id, "printer still on fire"),
            &["subject"],
        ))
        .await);
    assert_eq!(updated.subject, "printer still on fire");
    let archived = ok(tickets.archive_ticket(archive_req(created.id)).await);
    assert!(archived.archived);
    let restored = ok(tickets.restore_ticket(restore_req(created.id)).await);
    assert!(!restored.archived);
    let comment = ok(tickets
        .add_comment(comment_req(
            created.id,
            "extinguisher on its way",
            CommentVisibility::Public,
        ))
        .await);
    assert_eq!(comment.author_id, "agent-worker");
    let entry = ok(tickets
        .log_time(log_time_req(created.id, 15, "2025-03-14"))
        .await);
    assert_eq!(entry.author_id, "agent-worker");
    ok(tickets
        .follow_project(FollowProjectRequest {
            project_id: "office".to_owned(),
            kind: FollowerKind::User.into(),
            follower_id: "agent-worker".to_owned(),
        })
        .await);

    let association = ok(app
        .associations_as(&agent)
        .create_association(associate(created.id, "contact", "301", 0))
        .await);
    assert_eq!(association.to, Some(object("contact", "301")));
    let associations = ok(app
        .associations_as(&agent)
        .list_associations(ListAssociationsRequest {
            ticket_id: created.id,
            ..Default::default()
        })
        .await);
    assert_eq!(associations.associations.len(), 1);

    let card = ok(app
        .cards_as(&agent)
        .send_card(send_card_req(template.id, created.id, CARD_GROUP))
        .await);
    assert_eq!(card.ticket_id, created.id);

    // Schema reads are open to agents.
    let pipelines = ok(app
        .pipelines_as(&agent)
        .list_pipelines(ListPipelinesRequest::default())
        .await);
    assert!(!pipelines.pipelines.is_empty());
    ok(app
        .properties_as(&agent)
        .list_properties(ListPropertiesRequest::default())
        .await);
    ok(app
        .associations_as(&agent)
        .list_association_types(ListAssociationTypesRequest::default())
        .await);
    let templates = ok(app
        .cards_as(&agent)
        .list_card_templates(ListCardTemplatesRequest::default())
        .await);
    assert_eq!(templates.card_templates.len(), 1);
}

async fn service_scopes_limit_a_service_to_its_grants(app: TestApp) {
    let writer = service_token("svc-writer", &["tickets:read", "tickets:write"]);
    let mut tickets = app.tickets_as(&writer);

    let created = ok(tickets
        .create_ticket(create_ticket_req(ticket("from the integration")))
        .await);
    ok(tickets
        .update_ticket(update_ticket_req(
            subject_change(created.id, "from the integration, edited"),
            &["subject"],
        ))
        .await);
    let comment = ok(tickets
        .add_comment(comment_req(created.id, "synced", CommentVisibility::Public))
        .await);
    assert_eq!(comment.author_id, "svc-writer");
    let listed = ok(tickets.list_tickets(ListTicketsRequest::default()).await);
    assert_eq!(ids(&listed.tickets), vec![created.id]);

    assert_method_denied(
        app.associations_as(&writer)
            .create_association(associate(created.id, "contact", "401", 0))
            .await,
        "CreateAssociation",
        "needs scope \"associations:write\"",
    );
    assert_method_denied(
        tickets
            .log_time(log_time_req(created.id, 30, "2025-03-14"))
            .await,
        "LogTime",
        "needs scope \"time:write\"",
    );
    assert_method_denied(
        app.pipelines_as(&writer)
            .list_pipelines(ListPipelinesRequest::default())
            .await,
        "ListPipelines",
        "needs scope \"pipelines:read\"",
    );
    assert_method_denied(
        app.pipelines_as(&writer)
            .create_pipeline(create_pipeline_req(simple_pipeline("Service pipeline")))
            .await,
        "CreatePipeline",
        "needs the admin role; the caller is service",
    );

    // No scopes: not even reads.
    let nothing = service_token("svc-nothing", &[]);
    assert_method_denied(
        app.tickets_as(&nothing)
            .list_tickets(ListTicketsRequest::default())
            .await,
        "ListTickets",
        "needs scope \"tickets:read\"",
    );

    // `*` grants every scope, but not the admin role.
    let all = service_token("svc-all", &["*"]);
    ok(app
        .associations_as(&all)
        .create_association(associate(created.id, "contact", "401", 0))
        .await);
    let entry = ok(app
        .tickets_as(&all)
        .log_time(log_time_req(created.id, 30, "2025-03-14"))
        .await);
    assert_eq!(entry.author_id, "svc-all");
    assert_method_denied(
        app.pipelines_as(&all)
            .create_pipeline(create_pipeline_req(simple_pipeline("Service pipeline")))
            .await,
        "CreatePipeline",
        "needs the admin role; the caller is service",
    );

    // The denied calls changed nothing.
    assert_eq!(
        app.list_all_associations(created.id, "").await.len(),
        1,
        "only the `*` service's association exists"
    );
}

async fn customers_may_not_call_staff_or_admin_methods(app: TestApp) {
    let customer_portal = app.create_portal(portal("Customer portal")).await;
    let customer = customer_token("customer-1", "acme", customer_portal.id);
    let t = app.create_ticket(ticket("someone else's")).await;
    let template = ok(app
        .cards()
        .create_card_template(card_template_req("Ticket card"))
        .await);

    // The token itself is good: customers may list (what their portal shows).
    ok(app
        .tickets_as(&customer)
        .list_tickets(ListTicketsRequest::default())
        .await);

    const STAFF_ONLY: &str = "is not open to customers";
    let mut tickets = app.tickets_as(&customer);
    assert_method_denied(
        tickets.archive_ticket(archive_req(t.id)).await,
        "ArchiveTicket",
        STAFF_ONLY,
    );
    assert_method_denied(
        tickets.restore_ticket(restore_req(t.id)).await,
        "RestoreTicket",
        STAFF_ONLY,
    );
    assert_method_denied(
        tickets
            .batch_archive_tickets(BatchArchiveTicketsRequest {
                requests: vec![archive_req(t.id)],
                request_id: String::new(),
                ..Default::default()
            })
            .await,
        "BatchArchiveTickets",
        STAFF_ONLY,
    );
    assert_method_denied(
        tickets
            .follow_project(FollowProjectRequest {
                project_id: "office".to_owned(),
                kind: FollowerKind::User.into(),
                follower_id: "customer-1".to_owned(),
            })
            .await,
        "FollowProject",
        STAFF_ONLY,
    );
    let mut associations = app.associations_as(&customer);
    assert_method_denied(
        associations
            .create_association(associate(t.id, "contact", "501", 0))
            .await,
        "CreateAssociation",
        STAFF_ONLY,
    );
    assert_method_denied(
        associations
            .list_associations(ListAssociationsRequest {
                ticket_id: t.id,
                ..Default::default()
            })
            .await,
        "ListAssociations",
        STAFF_ONLY,
    );
    assert_method_denied(
        app.properties_as(&customer)
            .list_properties(ListPropertiesRequest::default())
            .await,
        "ListProperties",
        STAFF_ONLY,
    );
    assert_method_denied(
        app.cards_as(&customer)
            .send_card(send_card_req(template.id, t.id, CARD_GROUP))
            .await,
        "SendCard",
        STAFF_ONLY,
    );
    assert_method_denied(
        app.portals_as(&customer)
            .list_portals(ListPortalsRequest::default())
            .await,
        "ListPortals",
        STAFF_ONLY,
    );

    // Every admin-only method.
    const ADMIN_ONLY: &str = "needs the admin role; the caller is customer";
    let mut pipelines = app.pipelines_as(&customer);
    assert_method_denied(
        pipelines
            .create_pipeline(create_pipeline_req(simple_pipeline("Customer")))
            .await,
        "CreatePipeline",
        ADMIN_ONLY,
    );
    assert_method_denied(
        pipelines
            .update_pipeline(UpdatePipelineRequest::default())
            .await,
        "UpdatePipeline",
        ADMIN_ONLY,
    );
    assert_method_denied(
        pipelines
            .delete_pipeline(DeletePipelineRequest::default())
            .await,
        "DeletePipeline",
        ADMIN_ONLY,
    );
    assert_method_denied(
        pipelines.create_stage(CreateStageRequest::default()).await,
        "CreateStage",
        ADMIN_ONLY,
    );
    assert_method_denied(
        pipelines.update_stage(UpdateStageRequest::default()).await,
        "UpdateStage",
        ADMIN_ONLY,
    );
    assert_method_denied(
        pipelines.delete_stage(DeleteStageRequest::default()).await,
        "DeleteStage",
        ADMIN_ONLY,
    );
    let mut properties = app.properties_as(&customer);
    assert_method_denied(
        properties
            .create_property(create_property_req(property_def(
                "customer_prop",
                PropertyType::String,
            )))
            .await,
        "CreateProperty",
        ADMIN_ONLY,
    );
    assert_method_denied(
        properties
            .update_property(UpdatePropertyRequest::default())
            .await,
        "UpdateProperty",
        ADMIN_ONLY,
    );
    assert_method_denied(
        properties
            .archive_property(ArchivePropertyRequest::default())
            .await,
        "ArchiveProperty",
        ADMIN_ONLY,
    );
    assert_method_denied(
        associations
            .create_association_type(association_type_req(
                "ticket",
                "company",
                "customer label",
                "",
            ))
            .await,
        "CreateAssociationType",
        ADMIN_ONLY,
    );
    assert_method_denied(
        app.cards_as(&customer)
            .create_card_template(card_template_req("Customer card"))
            .await,
        "CreateCardTemplate",
        ADMIN_ONLY,
    );
    let mut portals = app.portals_as(&customer);
    assert_method_denied(
        portals
            .create_portal(create_portal_req(portal("Customer portal 2")))
            .await,
        "CreatePortal",
        ADMIN_ONLY,
    );
    assert_method_denied(
        portals
            .update_portal(update_portal_req(
                Portal {
                    id: customer_portal.id,
                    organization_tickets: true,
                    ..Default::default()
                },
                &[],
            ))
            .await,
        "UpdatePortal",
        ADMIN_ONLY,
    );
    assert_method_denied(
        portals
            .delete_portal(DeletePortalRequest {
                id: customer_portal.id,
                ..Default::default()
            })
            .await,
        "DeletePortal",
        ADMIN_ONLY,
    );

    // The refused calls changed nothing.
    let after = app.get_ticket(t.id).await;
    assert!(!after.archived);
    assert_eq!(after.etag, t.etag);
    assert!(app.list_all_associations(t.id, "").await.is_empty());
    let portals = ok(app
        .portals()
        .list_portals(ListPortalsRequest::default())
        .await);
    assert_eq!(portals.portals, vec![customer_portal]);
}

/// Every method the policy table keeps to admins is refused to agents, services (even with `*`) and customers,
/// and every staff method to customers: called by path with an empty message, so a method added to the table
/// is covered without a new test.
async fn the_policy_table_closes_admin_and_staff_methods(app: TestApp) {
    let portal = app.create_portal(portal("Sweep portal")).await;
    let callers = [
        ("agent", agent_token("agent-sweep")),
        ("service", service_token("svc-sweep", &["*"])),
        ("customer", customer_token("customer-sweep", "", portal.id)),
    ];
    let mut grpc = tonic::client::Grpc::new(app.channel());
    let mut checked = 0;
    for &(path, rule) in RULES {
        for (role, token) in &callers {
            let refused = match rule.audience {
                Audience::Admin => true,
                Audience::Staff => *role == "customer",
                Audience::Everyone => false,
            };
            if !refused {
                continue;
            }
            grpc.ready().await.expect("the channel is ready");
            let result: Result<Response<()>, Status> = grpc
                .unary(
                    with_token((), token),
                    http::uri::PathAndQuery::from_static(path),
                    tonic_prost::ProstCodec::<(), ()>::default(),
                )
                .await;
            let status = assert_code(result, Code::PermissionDenied);
            assert!(
                status.message().contains(path),
                "{role} calling {path}: message {:?} does not name the method",
                status.message()
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} refusals checked");
}

// ---------------------------------------------------------------------------------------------------------------
// Callers recorded
// ---------------------------------------------------------------------------------------------------------------

async fn authors_and_actors_come_from_the_token(app: TestApp) {
    let ann = agent_token("agent-ann");
    let bob = agent_token("agent-bob");

    let created = ok(app
        .tickets_as(&ann)
        .create_ticket(create_ticket_req(ticket("who did what")))
        .await);

    // An `x-actor-id` header (the pre-auth way of naming the caller) does not override the token.
    let mut update = with_token(
        update_ticket_req(
            subject_change(created.id, "who did what, exactly"),
            &["subject"],
        ),
        &bob,
    );
    update
        .metadata_mut()
        .insert("x-actor-id", "mallory".parse().expect("ASCII"));
    ok(bare_tickets(&app).update_ticket(update).await);

    let mut comment = with_token(
        comment_req(created.id, "bob's note", CommentVisibility::Public),
        &bob,
    );
    comment
        .metadata_mut()
        .insert("x-actor-id", "mallory".parse().expect("ASCII"));
    let comment = ok(bare_tickets(&app).add_comment(comment).await);
    assert_eq!(comment.author_id, "agent-bob");

    let entry = ok(app
        .tickets_as(&ann)
        .log_time(log_time_req(created.id, 45, "2025-03-14"))
        .await);
    assert_eq!(entry.author_id, "agent-ann");

    ok(app
        .tickets_as(&admin_token("ops-admin"))
        .archive_ticket(archive_req(created.id))
        .await);

    // What was stored, read back by someone else.
    let comments = ok(app
        .tickets()
        .list_comments(ListCommentsRequest {
            ticket_id: created.id,
            ..Default::default()
        })
        .await);
    assert_eq!(
        comments
            .comments
            .iter()
            .map(|c| c.author_id.as_str())
            .collect::<Vec<_>>(),
        ["agent-bob"]
    );
    let entries = ok(app
        .tickets()
        .list_time_entries(ListTimeEntriesRequest {
            ticket_id: created.id,
            ..Default::default()
        })
        .await);
    assert_eq!(
        entries
            .time_entries
            .iter()
            .map(|e| e.author_id.as_str())
            .collect::<Vec<_>>(),
        ["agent-ann"]
    );
    let actors: Vec<(TicketEventKind, String)> = app
        .history(created.id)
        .await
        .into_iter()
        .map(|e| (e.kind(), e.actor_id))
        .collect();
    let actor_of = |kind: TicketEventKind| {
        actors
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, actor)| actor.as_str())
            .unwrap_or_else(|| panic!("no {kind:?} event in {actors:?}"))
    };
    assert_eq!(actor_of(TicketEventKind::Created), "agent-ann");
    assert_eq!(actor_of(TicketEventKind::Updated), "agent-bob");
    assert_eq!(actor_of(TicketEventKind::CommentAdded), "agent-bob");
    assert_eq!(actor_of(TicketEventKind::Archived), "ops-admin");
    assert!(
        actors.iter().all(|(_, actor)| actor != "mallory"),
        "{actors:?}"
    );
}

async fn request_id_of_another_caller_is_a_request_of_its_own(app: TestApp) {
    let ann = agent_token("agent-ann");
    let bob = agent_token("agent-bob");
    let shared_id = request_id();
    let request = |subject: &str| {
        let mut request = create_ticket_req(ticket(subject));
        request.request_id = shared_id.clone();
        request
    };

    let first = ok(app
        .tickets_as(&ann)
        .create_ticket(request("ann's private matter"))
        .await);
    let retried = ok(app
        .tickets_as(&ann)
        .create_ticket(request("ann's private matter"))
        .await);
    assert_eq!(retried, first, "the same caller's retry replays the answer");

    // Another caller with the same request id and the same body makes a request of its own: it neither gets
    // ann's ticket nor learns that ann used the id.
    let bobs = ok(app
        .tickets_as(&bob)
        .create_ticket(request("ann's private matter"))
        .await);
    assert_ne!(
        bobs.id, first.id,
        "bob must not be answered with ann's ticket"
    );
    let all = app.list_all_tickets(ListTicketsRequest::default()).await;
    assert_eq!(ids(&all), vec![first.id, bobs.id]);
}

// ---------------------------------------------------------------------------------------------------------------
// --auth none and start-up checks
// ---------------------------------------------------------------------------------------------------------------

async fn auth_none_makes_every_caller_an_anonymous_admin(app: TestApp) {
    let app = app.without_auth().await;
    let mut tickets = bare_tickets(&app);

    let created = ok(tickets
        .create_ticket(create_ticket_req(ticket("nobody in particular")))
        .await);
    let comment = ok(tickets
        .add_comment(comment_req(
            created.id,
            "who am I",
            CommentVisibility::Public,
        ))
        .await);
    assert_eq!(comment.author_id, "anonymous");
    let history = app.history(created.id).await;
    assert!(
        !history.is_empty() && history.iter().all(|e| e.actor_id == "anonymous"),
        "{history:?}"
    );

    // Admin methods are open, and any credentials sent are ignored.
    ok(PipelineServiceClient::new(app.channel())
        .create_pipeline(create_pipeline_req(simple_pipeline("Anonymous pipeline")))
        .await);
    let got = ok(tickets
        .get_ticket(authorization(
            GetTicketRequest { id: created.id },
            Some("Bearer not-a-token"),
        ))
        .await);
    assert_eq!(got.id, created.id);
    let as_agent = ok(app
        .tickets_as(&agent_token("agent-ignored"))
        .add_comment(comment_req(
            created.id,
            "still anonymous",
            CommentVisibility::Public,
        ))
        .await);
    assert_eq!(as_agent.author_id, "anonymous");
}

async fn auth_none_on_a_public_address_needs_the_insecure_flag(app: TestApp) {
    // Stopped first: a second server on one SQLite file is refused.
    let database = app.database.clone();
    app.shutdown().await;
    let public = "0.0.0.0:0".parse().unwrap();
    let mut config = ServeConfig::new(public, database.url.clone());
    config.auth.mode = AuthMode::None;

    let Err(error) = Application::build(config.clone()).await else {
        panic!("--auth none on 0.0.0.0 must not start without --allow-insecure-auth-none");
    };
    assert!(
        matches!(error, StartupError::InsecureAuthNone { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("--allow-insecure-auth-none"), "{text}");
    assert!(text.contains("0.0.0.0:0"), "{text}");

    config.auth.allow_insecure_none = true;
    let built = match Application::build(config).await {
        Ok(built) => built,
        Err(error) => panic!("--allow-insecure-auth-none must let the server start: {error}"),
    };
    assert!(built.local_addr().ip().is_unspecified());
    drop(built);

    // Loopback needs no flag (the harness's own `without_auth` relies on it).
    let app = TestApp::start_with(database, |config| config.auth.mode = AuthMode::None).await;
    ok(bare_tickets(&app)
        .list_tickets(ListTicketsRequest::default())
        .await);
}

async fn jwt_mode_with_nothing_to_verify_does_not_start(app: TestApp) {
    let mut config = ServeConfig::new("127.0.0.1:0".parse().unwrap(), app.database.url.clone());
    config.auth.mode = AuthMode::Jwt;

    let Err(error) = Application::build(config).await else {
        panic!("--auth jwt without a secret, public keys or API keys must not start");
    };
    assert!(
        matches!(error, StartupError::Auth(AuthSetupError::NothingToVerify)),
        "{error:?}"
    );
    let text = error.to_string();
    for flag in [
        "--jwt-hs256-secret",
        "--jwt-public-keys-file",
        "--api-keys-file",
    ] {
        assert!(text.contains(flag), "{text:?} does not mention {flag}");
    }

    // The running server is untouched.
    ok(app
        .tickets()
        .list_tickets(ListTicketsRequest::default())
        .await);
}
