//! The server around the services: health, reflection, graceful shutdown and durability across restarts.

use futures::StreamExt;
use ticketd::proto::{GetTicketRequest, ListTicketsRequest, Priority, Ticket};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::support::*;

both_databases!(
    reports_every_service_as_serving,
    serves_reflection_v1_and_v1alpha,
    reflection_resolves_the_google_rpc_error_details,
    shuts_down_gracefully_and_refuses_new_connections,
    health_turns_not_serving_on_shutdown,
    data_survives_a_restart,
);

postgres_only!(
    two_servers_share_one_database,
    /// The outbox-position migration is PostgreSQL-only (it changes column defaults).
    outbox_positions_keep_growing_across_the_migration_down_and_up,
);

const SERVICES: [&str; 3] = ["", "ticketd.v1.TicketService", "ticketd.v1.PipelineService"];

async fn reports_every_service_as_serving(app: TestApp) {
    for service in SERVICES {
        assert_eq!(
            app.health_status(service).await,
            ServingStatus::Serving,
            "service {service:?}"
        );
    }

    let unknown = HealthCheckRequest {
        service: "ticketd.v1.NoSuchService".into(),
    };
    let mut health = HealthClient::new(app.channel());
    assert_code(health.check(unknown).await, Code::NotFound);
}

async fn serves_reflection_v1_and_v1alpha(app: TestApp) {
    let v1_services = app.reflected_services_v1().await;
    let v1alpha_services = app.reflected_services_v1alpha().await;

    for services in [&v1_services, &v1alpha_services] {
        for expected in [
            "ticketd.v1.TicketService",
            "ticketd.v1.PipelineService",
            "grpc.health.v1.Health",
        ] {
            assert!(
                services.iter().any(|s| s == expected),
                "{expected} missing from reflection: {services:?}"
            );
        }
    }
}

/// grpcurl prints an error's details only when reflection can describe them.
async fn reflection_resolves_the_google_rpc_error_details(app: TestApp) {
    use prost::Message;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    for symbol in [
        "google.rpc.BadRequest",
        "google.rpc.ErrorInfo",
        "google.rpc.RetryInfo",
    ] {
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(symbol.into())),
        };
        let mut client = ServerReflectionClient::new(app.channel());
        let mut responses = ok(client
            .server_reflection_info(futures::stream::iter([request]))
            .await);
        let response = responses
            .next()
            .await
            .expect("a v1 reflection response")
            .expect("v1 reflection answers");
        let Some(MessageResponse::FileDescriptorResponse(files)) = response.message_response else {
            panic!(
                "{symbol}: expected its file, got {:?}",
                response.message_response
            );
        };
        let files: Vec<prost_types::FileDescriptorProto> = files
            .file_descriptor_proto
            .iter()
            .map(|bytes| {
                prost_types::FileDescriptorProto::decode(bytes.as_slice()).expect("a file")
            })
            .collect();
        let name = symbol.trim_start_matches("google.rpc.");
        assert!(
            files.iter().any(|file| {
                file.package() == "google.rpc"
                    && file
                        .message_type
                        .iter()
                        .any(|message| message.name() == name)
            }),
            "{symbol} is not in the files reflection returned: {:?}",
            files.iter().map(|file| file.name()).collect::<Vec<_>>()
        );
    }
}

async fn shuts_down_gracefully_and_refuses_new_connections(app: TestApp) {
    let addr = app.addr;
    let mut tickets = app.tickets();
    let created = app.create_ticket(ticket("before shutdown")).await;

    app.shutdown().await; // asserts that run_until_stopped returned Ok

    assert!(
        connect(addr).await.is_err(),
        "no new connection is accepted after shutdown"
    );
    assert!(
        tickets
            .get_ticket(GetTicketRequest { id: created.id })
            .await
            .is_err(),
        "the old connection no longer serves calls"
    );
}

async fn health_turns_not_serving_on_shutdown(app: TestApp) {
    let mut health = HealthClient::new(app.channel());
    let mut updates = ok(health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await);
    let first = updates
        .next()
        .await
        .expect("an initial health status")
        .expect("watch succeeds");
    assert_eq!(first.status(), ServingStatus::Serving);

    let stopping = tokio::spawn(app.shutdown());
    let mut seen = Vec::new();
    while let Some(Ok(update)) = updates.next().await {
        seen.push(update.status());
        if update.status() == ServingStatus::NotServing {
            break;
        }
    }
    // Hang up our watch so the server has no in-flight call left to drain.
    drop(updates);

    assert!(
        seen.contains(&ServingStatus::NotServing),
        "health must report NOT_SERVING on shutdown, saw {seen:?}"
    );
    stopping.await.expect("shutdown completes with Ok");
}

async fn data_survives_a_restart(app: TestApp) {
    app.define_property("source", ticketd::proto::PropertyType::String)
        .await;
    let created = app
        .create_ticket(Ticket {
            content: "It crashes on start-up".into(),
            priority: Priority::Medium.into(),
            tags: strings(&["durable"]),
            properties: properties(&[("source", "chat")]),
            ..ticket("survives restarts")
        })
        .await;

    let app = app.restart().await;

    assert_eq!(app.get_ticket(created.id).await, created);
    assert_eq!(
        app.get_pipeline(0).await.label,
        "Support Pipeline",
        "migrations and seed run again harmlessly"
    );
    let next = app.create_ticket(ticket("after the restart")).await;
    assert!(next.id > created.id, "ids keep growing after a restart");
    app.shutdown().await;
}

async fn two_servers_share_one_database(app: TestApp) {
    let other = app.another_server().await;

    let created = app
        .create_ticket(ticket("written through the first server"))
        .await;
    assert_eq!(other.get_ticket(created.id).await, created);

    let updated = other
        .update_ticket(
            subject_change(created.id, "changed through the second"),
            &["subject"],
        )
        .await;
    assert_eq!(app.get_ticket(created.id).await, updated);
    assert_eq!(
        ids(&app.list_all_tickets(ListTicketsRequest::default()).await),
        vec![created.id]
    );

    other.shutdown().await;
    app.shutdown().await;
}

/// Migration 5 swaps the identity of the outbox ids for a sequence drawn under the outbox lock; undoing it (an
/// operator's rollback) and applying it again must never hand out an id that was already used, or a stream
/// resuming from a position would skip or repeat events.
async fn outbox_positions_keep_growing_across_the_migration_down_and_up(app: TestApp) {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{ConnectionTrait, Database, Statement};

    let first = app.create_ticket(ticket("before the rollback")).await;
    let before = app.history(first.id).await;
    let database = app.database.clone();
    app.shutdown().await;

    let db = Database::connect(&database.url)
        .await
        .expect("connect to the test database");
    // Migrations 6 and 5, newest first.
    Migrator::down(&db, Some(2))
        .await
        .expect("migrations 6 and 5 roll back");
    // What an older server writes after the rollback: the identity column continues after the last id.
    let copied = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "INSERT INTO ticket_events (ticket_id, kind, actor_id, changes, create_time) \
             SELECT ticket_id, kind, actor_id, changes, create_time FROM ticket_events \
             ORDER BY event_id LIMIT 1 RETURNING event_id",
        ))
        .await
        .expect("insert through the identity")
        .expect("one row returned")
        .try_get::<i64>("", "event_id")
        .expect("event_id");
    let last_before = before.last().expect("a CREATED event").event_id;
    assert!(
        copied > last_before,
        "after the rollback: id {copied} after {last_before}"
    );
    db.close().await.expect("close");

    // Starting the server applies migration 5 again.
    let app = TestApp::start(database).await;
    let second = app.create_ticket(ticket("after the upgrade")).await;
    let after = app.history(second.id).await;
    let created = after.first().expect("a CREATED event").event_id;
    assert!(
        created > copied,
        "after the upgrade: id {created} after {copied}"
    );
    let mut resumed = app.watch(watch_all(last_before)).await;
    let replayed = next_messages(&mut resumed, 2, "events after the rollback").await;
    assert_eq!(
        replayed
            .iter()
            .map(|event| event.event_id)
            .collect::<Vec<_>>(),
        vec![copied, created]
    );
    app.shutdown().await;
}
