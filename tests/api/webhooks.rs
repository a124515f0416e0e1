//! Webhooks: subscribed events are delivered to a real HTTP receiver, signed per Standard Webhooks (checked
//! with the independent `standardwebhooks` crate), retried on failure, kept in order per ticket, durable across
//! a restart, delivered once across replicas; management is validated and admin-only.

use std::{collections::BTreeMap, time::Duration};

use ticketd::proto::{
    CommentVisibility, CreateTicketRequest, CreateWebhookRequest, DeleteWebhookRequest,
    DeliveryStatus, GetWebhookRequest, ListWebhookDeliveriesRequest, ListWebhooksRequest, Notify,
    RedeliverWebhookRequest, RotateWebhookSecretRequest, SideEffects, Ticket, UpdateWebhookRequest,
    Webhook, WebhookDelivery,
};
use tonic::Code;

use crate::support::*;

both_databases!(
    deliveries_are_signed_and_carry_the_event,
    a_failed_delivery_is_retried_until_it_succeeds,
    retry_after_on_429_is_honoured,
    gone_disables_the_webhook,
    one_tickets_deliveries_arrive_in_event_order,
    a_delivery_cut_off_by_a_restart_is_made_after_it,
    quiet_writes_and_closed_creations_enqueue_nothing,
    internal_comments_reach_only_webhooks_naming_comment_added,
    the_condition_selects_tickets,
    validation_errors_name_the_field,
    private_targets_are_refused_unless_allowed,
    the_secret_is_shown_in_full_only_on_create_and_rotate,
    after_a_rotation_both_secrets_sign,
    redeliver_sends_again_with_the_same_id,
    deleting_a_webhook_drops_its_deliveries,
    customers_are_refused_and_readers_need_the_scope,
);

postgres_only!(two_replicas_deliver_each_event_once);

/// The stage of the default pipeline whose state is CLOSED.
const DEFAULT_CLOSED_STAGE: i64 = 4;

async fn get_webhook(app: &TestApp, id: i64) -> Webhook {
    ok(app.webhooks().get_webhook(GetWebhookRequest { id }).await)
}

/// Waits until the webhook's deliveries all stand in `status`, `count` of them.
async fn wait_for_deliveries(
    app: &TestApp,
    webhook_id: i64,
    count: usize,
    status: DeliveryStatus,
) -> Vec<WebhookDelivery> {
    let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let listed = app.deliveries(webhook_id).await;
        if listed.len() == count && listed.iter().all(|d| d.status() == status) {
            return listed;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("expected {count} deliveries {status:?}, got {listed:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[track_caller]
fn verify(secret: &str, request: &Received) {
    standardwebhooks::Webhook::new(secret)
        .expect("a Standard Webhooks secret")
        .verify(&request.body, &request.headers)
        .unwrap_or_else(|error| panic!("signature does not verify: {error:?} ({request:?})"));
}

async fn deliveries_are_signed_and_carry_the_event(app: TestApp) {
    let receiver = Receiver::start(vec![]).await;
    let webhook = app.create_webhook(hook(&receiver.url(), &["*"])).await;
    assert!(webhook.secret.starts_with("whsec_") && webhook.enabled);

    let t = app.create_ticket(ticket("printer on fire")).await;
    let received = receiver.wait_for(1).await;
    let request = &received[0];
    verify(&webhook.secret, request);
    assert_eq!(request.header("content-type"), "application/json");
    assert_eq!(request.event_id(), app.last_event_id(t.id).await);
    let body = request.json();
    assert_eq!(body["type"], "ticket.created");
    assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(body["data"]["ticket"]["subject"], "printer on fire");
    // proto3 JSON: lowerCamelCase names, 64-bit integers as strings.
    assert_eq!(body["data"]["ticket"]["id"], t.id.to_string());
    assert!(body["data"]["ticket"]["createTime"].is_string());
    assert!(
        body["data"]["changes"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    assert_eq!(body["data"]["actor"], TEST_ADMIN);
    assert!(body["data"]["cause"].is_null());

    let listed = wait_for_deliveries(&app, webhook.id, 1, DeliveryStatus::Succeeded).await;
    assert_eq!(listed[0].event_type, "ticket.created");
    assert_eq!(listed[0].ticket_id, t.id);
    assert_eq!(listed[0].attempts.len(), 1);
    assert_eq!(listed[0].attempts[0].http_status, 200);
    assert_eq!(listed[0].attempts[0].response, "thanks");
}

async fn a_failed_delivery_is_retried_until_it_succeeds(app: TestApp) {
    let receiver = Receiver::start(vec![Reply::Status(500)]).await;
    let webhook = app
        .create_webhook(hook(&receiver.url(), &["ticket.created"]))
        .await;
    app.create_ticket(ticket("flaky")).await;

    let received = receiver.wait_for(2).await;
    assert_eq!(
        received[0].event_id(),
        received[1].event_id(),
        "webhook-id is stable across retries"
    );
    assert_eq!(
        received[0].body, received[1].body,
        "a retry sends the same body"
    );
    let gap = received[1].at - received[0].at;
    assert!(
        gap >= Duration::from_secs(4) && gap < Duration::from_secs(8),
        "the first retry comes about 5 s later, came after {gap:?}"
    );
    verify(&webhook.secret, &received[1]);
    let listed = wait_for_deliveries(&app, webhook.id, 1, DeliveryStatus::Succeeded).await;
    let statuses: Vec<i32> = listed[0].attempts.iter().map(|a| a.http_status).collect();
    assert_eq!(statuses, [500, 200]);
}

async fn retry_after_on_429_is_honoured(app: TestApp) {
    let receiver = Receiver::start(vec![Reply::RetryAfter(429, "1")]).await;
    let webhook = app.create_webhook(hook(&receiver.url(), &["*"])).await;
    app.create_ticket(ticket("slow down")).await;

    let received = receiver.wait_for(2).await;
    let gap = received[1].at - received[0].at;
    assert!(
        gap >= Duration::from_secs(1) && gap < Duration::from_millis(3500),
        "Retry-After: 1 sets the retry, which came after {gap:?}"
    );
    wait_for_deliveries(&app, webhook.id, 1, DeliveryStatus::Succeeded).await;
}

async fn gone_disables_the_webhook(app: TestApp) {
    let receiver = Receiver::start(vec![Reply::Status(410)]).await;
    let webhook = app.create_webhook(hook(&receiver.url(), &["*"])).await;
    app.create_ticket(ticket("anyone there?")).await;
    receiver.wait_for(1).await;
    wait_for_deliveries(&app, webhook.id, 1, DeliveryStatus::Failed).await;
    let disabled = get_webhook(&app, webhook.id).await;
    assert!(!disabled.enabled);
    assert!(disabled.disabled_reason.contains("410"), "{disabled:?}");

    app.create_ticket(ticket("still there?")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "a disabled webhook receives nothing"
    );
    assert_eq!(
        app.deliveries(webhook.id).await.len(),
        1,
        "nor enqueues anything"
    );
}

async fn one_tickets_deliveries_arrive_in_event_order(app: TestApp) {
    let receiver = Receiver::start(vec![]).await;
    let webhook = app.create_webhook(hook(&receiver.url(), &["*"])).await;
    let tickets = [
        app.create_ticket(ticket("one")).await,
        app.create_ticket(ticket("two")).await,
    ];
    let mut writers = Vec::new();
    for writer in 0..8 {
        let client = app.tickets();
        let tickets = tickets.clone();
        writers.push(tokio::spawn(async move {
            for round in 0..4 {
                for t in &tickets {
                    let subject = format!("writer {writer} round {round}");
                    ok(client
                        .clone()
                        .update_ticket(update_ticket_req(
                            subject_change(t.id, &subject),
                            &["subject"],
                        ))
                        .await);
                }
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let mut expected = 0;
    for t in &tickets {
        expected += app.history(t.id).await.len();
    }
    let received = receiver.wait_for(expected).await;
    wait_for_deliveries(&app, webhook.id, expected, DeliveryStatus::Succeeded).await;
    let mut per_ticket: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for request in &received {
        let ticket_id = request.json()["data"]["ticket"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        per_ticket
            .entry(ticket_id)
            .or_default()
            .push(request.event_id());
    }
    assert_eq!(per_ticket.len(), 2);
    for (ticket_id, ids) in &per_ticket {
        assert_strictly_increasing(ids, &format!("event ids delivered for ticket {ticket_id}"));
    }
    assert_eq!(received.len(), expected, "each event delivered once");
}

async fn a_delivery_cut_off_by_a_restart_is_made_after_it(app: TestApp) {
    let receiver = Receiver::start(vec![Reply::Hang]).await;
    let webhook = app.create_webhook(hook(&receiver.url(), &["*"])).await;
    app.create_ticket(ticket("mid-flight")).await;
    let first = receiver.wait_for(1).await;

    let app = app.restart().await;
    let received = receiver.wait_for(2).await;
    assert_eq!(received[1].event_id(), first[0].event_id());
    verify(&webhook.secret, &received[1]);
    wait_for_deliveries(&app, webhook.id, 1, DeliveryStatus::Succeeded).await;
}

async fn two_replicas_deliver_each_event_once(app: TestApp) {
    let other = app.another_server().await;
    let receiver = Receiver::start(vec![]).await;
    let webhook = app
        .create_webhook(hook(&receiver.url(), &["ticket.created"]))
        .await;
    for i in 0..10 {
        app.create_ticket(ticket(&format!("first {i}"))).await;
        other.create_ticket(ticket(&format!("second {i}"))).await;
    }
    wait_for_deliveries(&app, webhook.id, 20, DeliveryStatus::Succeeded).await;
    // Time for a duplicate to show up, were there one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = receiver.received();
    let mut ids: Vec<i64> = received.iter().map(Received::event_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 20);
    assert_eq!(received.len(), 20, "every event delivered exactly once");
}

fn notify(notify: Notify) -> Option<SideEffects> {
    Some(SideEffects {
        notify: notify.into(),
        skip_automations: false,
    })
}

async fn quiet_writes_and_closed_creations_enqueue_nothing(app: TestApp) {
    let receiver = Receiver::start(vec![]).await;
    let webhook = app.create_webhook(hook(&receiver.url(), &["*"])).await;
    let create = |ticket: Ticket, side_effects| CreateTicketRequest {
        ticket: Some(ticket),
        side_effects,
        ..Default::default()
    };
    let closed = || Ticket {
        stage_id: DEFAULT_CLOSED_STAGE,
        ..ticket("solved before anyone saw it")
    };
    ok(app
        .tickets()
        .create_ticket(create(ticket("hush"), notify(Notify::None)))
        .await);
    ok(app.tickets().create_ticket(create(closed(), None)).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(app.deliveries(webhook.id).await.is_empty());

    let announced = ok(app
        .tickets()
        .create_ticket(create(closed(), notify(Notify::All)))
        .await);
    let listed = wait_for_deliveries(&app, webhook.id, 1, DeliveryStatus::Succeeded).await;
    assert_eq!(listed[0].ticket_id, announced.id);
    assert_eq!(receiver.received().len(), 1);
}

async fn internal_comments_reach_only_webhooks_naming_comment_added(app: TestApp) {
    let receiver = Receiver::start(vec![]).await;
    let everything = app.create_webhook(hook(&receiver.url(), &["*"])).await;
    let comments = app
        .create_webhook(hook(&receiver.url(), &["comment.added"]))
        .await;
    let t = app.create_ticket(ticket("with notes")).await;
    ok(app
        .tickets()
        .add_comment(comment_req(t.id, "staff only", CommentVisibility::Internal))
        .await);
    ok(app
        .tickets()
        .add_comment(comment_req(
            t.id,
            "hello customer",
            CommentVisibility::Public,
        ))
        .await);

    let types = |listed: Vec<WebhookDelivery>| {
        let mut types: Vec<String> = listed.into_iter().map(|d| d.event_type).collect();
        types.sort();
        types
    };
    let to_everything =
        wait_for_deliveries(&app, everything.id, 2, DeliveryStatus::Succeeded).await;
    assert_eq!(types(to_everything), ["comment.added", "ticket.created"]);
    let to_comments = wait_for_deliveries(&app, comments.id, 2, DeliveryStatus::Succeeded).await;
    assert_eq!(types(to_comments), ["comment.added", "comment.added"]);
    let bodies: Vec<String> = receiver
        .received()
        .iter()
        .filter(|r| r.json()["type"] == "comment.added")
        .map(|r| {
            r.json()["data"]["comment"]["body"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(bodies.iter().filter(|b| *b == "staff only").count(), 1);
    assert_eq!(bodies.iter().filter(|b| *b == "hello customer").count(), 2);
}

async fn the_condition_selects_tickets(app: TestApp) {
    let receiver = Receiver::start(vec![]).await;
    let webhook = app
        .create_webhook(Webhook {
            condition: r#"priority >= HIGH AND stage.state = OPEN"#.to_owned(),
            ..hook(&receiver.url(), &["ticket.created"])
        })
        .await;
    app.create_ticket(ticket("low")).await;
    let urgent = app
        .create_ticket(Ticket {
            priority: ticketd::proto::Priority::Urgent.into(),
            ..ticket("urgent")
        })
        .await;
    let listed = wait_for_deliveries(&app, webhook.id, 1, DeliveryStatus::Succeeded).await;
    assert_eq!(listed[0].ticket_id, urgent.id);
}

async fn validation_errors_name_the_field(app: TestApp) {
    let create = |webhook: Webhook| {
        let mut client = app.webhooks();
        async move {
            client
                .create_webhook(CreateWebhookRequest {
                    webhook: Some(webhook),
                    request_id: String::new(),
                })
                .await
        }
    };
    let good = "https://example.com/hook";
    assert_invalid(create(hook("not a url", &["*"])).await, "webhook.url");
    assert_invalid(
        create(hook("ftp://example.com/", &["*"])).await,
        "webhook.url",
    );
    assert_invalid(create(hook(good, &[])).await, "webhook.event_types");
    assert_invalid(
        create(hook(good, &["ticket.created", "ticket.exploded"])).await,
        "webhook.event_types[1]",
    );
    let status = assert_invalid(
        create(Webhook {
            condition: "subject = ".to_owned(),
            ..hook(good, &["*"])
        })
        .await,
        "webhook.condition",
    );
    assert!(
        status.message().contains("10") || status.message().contains("position"),
        "{status:?}"
    );
    let status = assert_invalid(
        create(Webhook {
            condition: r#"properties.region = "EU""#.to_owned(),
            ..hook(good, &["*"])
        })
        .await,
        "webhook.condition",
    );
    assert!(status.message().contains("properties.region"), "{status:?}");
    app.define_property("region", ticketd::proto::PropertyType::String)
        .await;
    ok(create(Webhook {
        condition: r#"properties.region = "EU""#.to_owned(),
        ..hook(good, &["*"])
    })
    .await);

    let created = ok(create(hook(good, &["*"])).await);
    let update = |webhook: Webhook, paths: &[&str]| {
        let mut client = app.webhooks();
        let request = UpdateWebhookRequest {
            webhook: Some(webhook),
            update_mask: mask(paths),
            request_id: String::new(),
        };
        async move { client.update_webhook(request).await }
    };
    assert_invalid(
        update(
            Webhook {
                id: created.id,
                event_types: strings(&["*", "nope"]),
                ..Default::default()
            },
            &["event_types"],
        )
        .await,
        "webhook.event_types[1]",
    );
    assert_invalid(
        update(
            Webhook {
                id: created.id,
                ..Default::default()
            },
            &["secret"],
        )
        .await,
        "update_mask",
    );
    assert_code(
        update(
            Webhook {
                id: created.id,
                etag: "stale".to_owned(),
                description: "x".to_owned(),
                ..Default::default()
            },
            &["description"],
        )
        .await,
        Code::Aborted,
    );
    let paused = ok(update(
        Webhook {
            id: created.id,
            etag: created.etag.clone(),
            enabled: false,
            ..Default::default()
        },
        &["enabled"],
    )
    .await);
    assert!(!paused.enabled);
    assert_ne!(paused.etag, created.etag);
}

async fn private_targets_are_refused_unless_allowed(app: TestApp) {
    // A name is checked where it resolves, at delivery time: a webhook saved while private targets were
    // allowed, naming localhost, is refused by a server that does not allow them, and the attempt recorded.
    let receiver = Receiver::start(vec![]).await;
    let named = format!("http://localhost:{}/hook", receiver.addr.port());
    let webhook = app.create_webhook(hook(&named, &["*"])).await;
    // The same database served without private targets (one server at a time: SQLite is one replica).
    let strict = app
        .reconfigured(|config| config.webhook_allow_private_targets = false)
        .await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://10.0.0.7/hook",
        "http://169.254.169.254/latest/meta-data",
    ] {
        let result = strict
            .webhooks()
            .create_webhook(CreateWebhookRequest {
                webhook: Some(hook(url, &["*"])),
                request_id: String::new(),
            })
            .await;
        assert_invalid(result, "webhook.url");
    }
    strict.create_ticket(ticket("to nowhere")).await;
    let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let listed = strict.deliveries(webhook.id).await;
        if let Some(attempt) = listed.first().and_then(|d| d.attempts.first()) {
            assert_eq!(attempt.http_status, 0);
            assert!(attempt.response.contains("refused"), "{attempt:?}");
            assert_eq!(listed[0].status(), DeliveryStatus::Pending, "retried later");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no attempt recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(receiver.received().is_empty());
}

async fn the_secret_is_shown_in_full_only_on_create_and_rotate(app: TestApp) {
    let created = app
        .create_webhook(hook("https://example.com/hook", &["*"]))
        .await;
    assert_eq!(created.secret.len(), "whsec_".len() + 44);
    let read = get_webhook(&app, created.id).await;
    assert!(
        read.secret.ends_with('…') && read.secret.len() < 20,
        "{}",
        read.secret
    );
    assert!(
        created
            .secret
            .starts_with(read.secret.trim_end_matches('…'))
    );
    let listed = ok(app
        .webhooks()
        .list_webhooks(ListWebhooksRequest::default())
        .await);
    assert_eq!(listed.webhooks.len(), 1);
    assert_eq!(listed.webhooks[0].secret, read.secret);

    let rotated = ok(app
        .webhooks()
        .rotate_webhook_secret(RotateWebhookSecretRequest {
            id: created.id,
            request_id: String::new(),
        })
        .await);
    assert!(rotated.secret.starts_with("whsec_") && rotated.secret.len() == created.secret.len());
    assert_ne!(rotated.secret, created.secret);
    assert!(rotated.previous_secret_expire_time.is_some());
    assert!(get_webhook(&app, created.id).await.secret.ends_with('…'));
}

async fn after_a_rotation_both_secrets_sign(app: TestApp) {
    let receiver = Receiver::start(vec![]).await;
    let created = app.create_webhook(hook(&receiver.url(), &["*"])).await;
    let rotated = ok(app
        .webhooks()
        .rotate_webhook_secret(RotateWebhookSecretRequest {
            id: created.id,
            request_id: String::new(),
        })
        .await);
    app.create_ticket(ticket("rotated")).await;
    let request = &receiver.wait_for(1).await[0];
    let signatures = request.header("webhook-signature");
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    assert!(signatures.split(' ').all(|s| s.starts_with("v1,")));
    verify(&rotated.secret, request);
    verify(&created.secret, request);
    // The current secret signs first.
    let mut only_first = request.clone();
    let first = signatures.split(' ').next().unwrap().to_owned();
    only_first
        .headers
        .insert("webhook-signature", first.parse().unwrap());
    verify(&rotated.secret, &only_first);
}

async fn redeliver_sends_again_with_the_same_id(app: TestApp) {
    let receiver = Receiver::start(vec![]).await;
    let webhook = app.create_webhook(hook(&receiver.url(), &["*"])).await;
    app.create_ticket(ticket("again")).await;
    let delivered = wait_for_deliveries(&app, webhook.id, 1, DeliveryStatus::Succeeded).await;
    let redelivered = ok(app
        .webhooks()
        .redeliver_webhook(RedeliverWebhookRequest {
            delivery_id: delivered[0].id,
        })
        .await);
    assert_eq!(redelivered.id, delivered[0].id);
    let received = receiver.wait_for(2).await;
    assert_eq!(received[0].event_id(), received[1].event_id());
    verify(&webhook.secret, &received[1]);
    let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
    while app.deliveries(webhook.id).await[0].attempts.len() < 2 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_code(
        app.webhooks()
            .redeliver_webhook(RedeliverWebhookRequest {
                delivery_id: 999_999,
            })
            .await,
        Code::NotFound,
    );
}

async fn deleting_a_webhook_drops_its_deliveries(app: TestApp) {
    let receiver = Receiver::start(vec![Reply::Status(500)]).await;
    let webhook = app.create_webhook(hook(&receiver.url(), &["*"])).await;
    app.create_ticket(ticket("doomed")).await;
    receiver.wait_for(1).await;
    ok(app
        .webhooks()
        .delete_webhook(DeleteWebhookRequest {
            id: webhook.id,
            etag: String::new(),
        })
        .await);
    assert_code(
        app.webhooks()
            .get_webhook(GetWebhookRequest { id: webhook.id })
            .await,
        Code::NotFound,
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(receiver.received().len(), 1, "no retry after the delete");
}

async fn customers_are_refused_and_readers_need_the_scope(app: TestApp) {
    let webhook = app
        .create_webhook(hook("https://example.com/hook", &["*"]))
        .await;
    let portal = app.create_portal(portal("help")).await;
    let customer = customer_token("alice", "acme", portal.id);
    assert_code(
        app.webhooks_as(&customer)
            .list_webhooks(ListWebhooksRequest::default())
            .await,
        Code::PermissionDenied,
    );
    let reader = service_token("dashboard", &["webhooks:read"]);
    let read = ok(app
        .webhooks_as(&reader)
        .get_webhook(GetWebhookRequest { id: webhook.id })
        .await);
    assert!(read.secret.ends_with('…'));
    ok(app
        .webhooks_as(&reader)
        .list_webhook_deliveries(ListWebhookDeliveriesRequest {
            webhook_id: webhook.id,
            ..Default::default()
        })
        .await);
    assert_method_denied(
        app.webhooks_as(&reader)
            .rotate_webhook_secret(RotateWebhookSecretRequest {
                id: webhook.id,
                request_id: String::new(),
            })
            .await,
        "RotateWebhookSecret",
        "admin",
    );
    assert_code(
        app.webhooks_as(&service_token("other", &["tickets:read"]))
            .list_webhooks(ListWebhooksRequest::default())
            .await,
        Code::PermissionDenied,
    );
    assert_code(
        app.webhooks_as(&agent_token("agent-1"))
            .create_webhook(CreateWebhookRequest {
                webhook: Some(hook("https://example.com/x", &["*"])),
                request_id: String::new(),
            })
            .await,
        Code::PermissionDenied,
    );
}
