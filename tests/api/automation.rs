//! Rules and webhooks together: the archive trap closed by construction (a ticket created already solved
//! sets off no rule and no webhook unless its write asked for NOTIFY_ALL; NOTIFY_NONE enqueues no webhook;
//! skip_automations runs no rule), a rule's `send_webhook`, and rule-made changes delivered with their cause.

use std::time::Duration;

use ticketd::proto::{
    AddInternalCommentAction, BatchCreateTicketsRequest, CreateRuleRequest, CreateTicketRequest,
    ListCommentsRequest, Notify, Rule, RuleAction, SendWebhookAction, SideEffects, Ticket,
    UpdateTicketRequest, rule::TriggerEvent, rule_action,
};

use crate::support::*;

both_databases!(
    the_archive_trap_is_closed_by_construction,
    a_rule_sends_the_causing_event_to_a_webhook_that_does_not_subscribe_to_it,
    changes_made_by_rules_are_delivered_naming_their_cause,
);

/// The default pipeline's stage whose state is CLOSED.
const DEFAULT_CLOSED_STAGE: i64 = 4;

fn side_effects(notify: Notify, skip_automations: bool) -> Option<SideEffects> {
    Some(SideEffects {
        notify: notify.into(),
        skip_automations,
    })
}

async fn create_rule(
    app: &TestApp,
    on: &[TriggerEvent],
    condition: &str,
    action: rule_action::Action,
) -> Rule {
    ok(app
        .rules()
        .create_rule(CreateRuleRequest {
            rule: Some(Rule {
                name: "automation".into(),
                enabled: true,
                on: on.iter().map(|&event| event.into()).collect(),
                condition: condition.into(),
                actions: vec![RuleAction {
                    action: Some(action),
                }],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await)
}

async fn comment_bodies(app: &TestApp, ticket_id: i64) -> Vec<String> {
    ok(app
        .tickets()
        .list_comments(ListCommentsRequest {
            ticket_id,
            ..Default::default()
        })
        .await)
    .comments
    .into_iter()
    .map(|comment| comment.body)
    .collect()
}

async fn create_with(
    app: &TestApp,
    subject: &str,
    stage_id: i64,
    side_effects: Option<SideEffects>,
) -> Ticket {
    ok(app
        .tickets()
        .create_ticket(CreateTicketRequest {
            ticket: Some(Ticket {
                stage_id,
                ..ticket(subject)
            }),
            side_effects,
            ..Default::default()
        })
        .await)
}

async fn close(app: &TestApp, ticket_id: i64, side_effects: Option<SideEffects>) {
    ok(app
        .tickets()
        .update_ticket(UpdateTicketRequest {
            ticket: Some(stage_change(ticket_id, DEFAULT_CLOSED_STAGE)),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["stage_id".into()],
            }),
            side_effects,
            ..Default::default()
        })
        .await);
}

async fn the_archive_trap_is_closed_by_construction(app: TestApp) {
    let receiver = Receiver::start(vec![]).await;
    create_rule(
        &app,
        &[TriggerEvent::TicketCreated, TriggerEvent::TicketUpdated],
        "stage.state = CLOSED",
        rule_action::Action::AddInternalComment(AddInternalCommentAction {
            body: "Solved: {{ticket.subject}}".into(),
        }),
    )
    .await;
    let webhook = app
        .create_webhook(hook(
            &receiver.url(),
            &["ticket.created", "ticket.stage_changed"],
        ))
        .await;

    // Created already solved: nothing, by every way in.
    let filed = create_with(&app, "filed solved", DEFAULT_CLOSED_STAGE, None).await;
    let batch = ok(app
        .tickets()
        .batch_create_tickets(BatchCreateTicketsRequest {
            requests: vec![CreateTicketRequest {
                ticket: Some(Ticket {
                    stage_id: DEFAULT_CLOSED_STAGE,
                    ..ticket("batch filed solved")
                }),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await)
    .tickets;
    // Asked for: the rule runs and the creation is delivered.
    let announced = create_with(
        &app,
        "announced solved",
        DEFAULT_CLOSED_STAGE,
        side_effects(Notify::All, false),
    )
    .await;
    // Solved later: the rule runs and both the creation and the stage change are delivered.
    let solved_later = create_with(&app, "solved later", 1, None).await;
    close(&app, solved_later.id, None).await;
    // Solved quietly: the rule runs, no webhook.
    let quiet = create_with(&app, "solved quietly", 1, side_effects(Notify::None, false)).await;
    close(&app, quiet.id, side_effects(Notify::None, false)).await;
    // Solved skipping automations: no rule, the webhook hears of it.
    let skipped = create_with(
        &app,
        "solved by a script",
        1,
        side_effects(Notify::Unspecified, true),
    )
    .await;
    close(&app, skipped.id, side_effects(Notify::Unspecified, true)).await;

    for (t, commented) in [
        (&filed, false),
        (&batch[0], false),
        (&announced, true),
        (&solved_later, true),
        (&quiet, true),
        (&skipped, false),
    ] {
        let bodies = comment_bodies(&app, t.id).await;
        let expected: Vec<String> = if commented {
            vec![format!("Solved: {}", t.subject)]
        } else {
            Vec::new()
        };
        assert_eq!(bodies, expected, "{}", t.subject);
    }

    // announced: created; solved later: created + stage changed; skipped: created + stage changed.
    let received = receiver.wait_for(5).await;
    // Anything wrongly enqueued would be due at once: give it time to show up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received = if receiver.received().len() > received.len() {
        receiver.received()
    } else {
        received
    };
    let mut delivered: Vec<(i64, String)> = received
        .iter()
        .map(|request| {
            let body = request.json();
            (
                body["data"]["ticket"]["id"]
                    .as_str()
                    .and_then(|id| id.parse().ok())
                    .expect("data.ticket.id"),
                body["type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    delivered.sort();
    let mut expected = vec![
        (announced.id, "ticket.created".to_owned()),
        (solved_later.id, "ticket.created".to_owned()),
        (solved_later.id, "ticket.stage_changed".to_owned()),
        (skipped.id, "ticket.created".to_owned()),
        (skipped.id, "ticket.stage_changed".to_owned()),
    ];
    expected.sort();
    assert_eq!(delivered, expected);
    assert_eq!(
        app.deliveries(webhook.id).await.len(),
        5,
        "nothing else was enqueued"
    );
}

async fn a_rule_sends_the_causing_event_to_a_webhook_that_does_not_subscribe_to_it(app: TestApp) {
    let receiver = Receiver::start(vec![]).await;
    let webhook = app
        .create_webhook(hook(&receiver.url(), &["ticket.restored"]))
        .await;
    create_rule(
        &app,
        &[TriggerEvent::TicketCreated],
        "priority = URGENT",
        rule_action::Action::SendWebhook(SendWebhookAction {
            webhook_id: webhook.id,
        }),
    )
    .await;
    app.create_ticket(ticket("routine")).await;
    let urgent = app
        .create_ticket(Ticket {
            priority: ticketd::proto::Priority::Urgent.into(),
            ..ticket("urgent")
        })
        .await;
    let received = receiver.wait_for(1).await;
    let created = &app.history(urgent.id).await[0];
    assert_eq!(received[0].event_id(), created.event_id);
    assert_eq!(received[0].json()["type"], "ticket.created");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "only the urgent ticket was sent"
    );

    // A quiet write sends nothing, even through a rule.
    let quiet_urgent = ok(app
        .tickets()
        .create_ticket(CreateTicketRequest {
            ticket: Some(Ticket {
                priority: ticketd::proto::Priority::Urgent.into(),
                ..ticket("urgent and quiet")
            }),
            side_effects: side_effects(Notify::None, false),
            ..Default::default()
        })
        .await);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "{quiet_urgent:?} was not sent"
    );
}

async fn changes_made_by_rules_are_delivered_naming_their_cause(app: TestApp) {
    let receiver = Receiver::start(vec![]).await;
    let saved = create_rule(
        &app,
        &[TriggerEvent::TicketCreated],
        "",
        rule_action::Action::AddTag("triaged".into()),
    )
    .await;
    app.create_webhook(hook(&receiver.url(), &["*"])).await;
    let t = app.create_ticket(ticket("needs triage")).await;
    let received = receiver.wait_for(2).await;
    let history = app.history(t.id).await;
    assert_eq!(history.len(), 2);
    let (created, tagged) = (&history[0], &history[1]);
    assert_eq!(received[0].event_id(), created.event_id, "in event order");
    assert_eq!(received[1].event_id(), tagged.event_id);
    let body = received[1].json();
    assert_eq!(body["type"], "ticket.updated");
    assert_eq!(body["data"]["actor"], format!("rule:{}", saved.id));
    assert_eq!(body["data"]["cause"], created.event_id);
    assert_eq!(body["data"]["ticket"]["tags"][0], "triaged");
    assert!(received[0].json()["data"]["cause"].is_null());
}
