//! The per-replica configuration cache (pipelines and stages, property definitions, enabled rules, enabled
//! webhooks) never lets a write act on configuration older than what was acknowledged before it: a change is
//! used by the very next write and read, on the server that made it and (PostgreSQL) on another replica of
//! the same database. Every step first warms the writing server's cache, so a stale entry would be used.

use ticketd::proto::{
    CreateRuleRequest, CreateStageRequest, DeleteStageRequest, FilterGroup, FilterOperator,
    Pipeline, PropertyType, Rule, RuleAction, SearchTicketsRequest, Stage, Ticket, TicketState,
    UpdateRuleRequest, UpdateStageRequest, UpdateWebhookRequest, Webhook, rule::TriggerEvent,
    rule_action,
};
use tonic::Code;

use crate::support::*;

both_databases!(
    configuration_changes_reach_the_very_next_write_and_read,
    a_transaction_that_changes_configuration_acts_on_its_own_change,
);

postgres_only!(configuration_changed_on_one_replica_is_used_by_the_next_write_and_read_on_another);

async fn configuration_changes_reach_the_very_next_write_and_read(app: TestApp) {
    changes_reach(&app, &app, "one").await;
}

async fn configuration_changed_on_one_replica_is_used_by_the_next_write_and_read_on_another(
    app: TestApp,
) {
    let other = app.another_server().await;
    changes_reach(&app, &other, "ab").await;
    changes_reach(&other, &app, "ba").await;
}

/// Closing a stage restates its tickets inside the stage change's transaction; the rules that run there must
/// see the stage CLOSED, as the transaction left it, not as any cache has it.
async fn a_transaction_that_changes_configuration_acts_on_its_own_change(app: TestApp) {
    let pipeline = app.create_pipeline(simple_pipeline("restated")).await;
    let open = &pipeline.stages[0];
    ok(app
        .rules()
        .create_rule(rule_req(
            "closed by its stage",
            TriggerEvent::TicketUpdated,
            "stage.state = CLOSED",
            "stage-closed",
        ))
        .await);
    let t = app.create_ticket(in_stage(&pipeline, open.id)).await;
    // Warm: the cache now holds the stage OPEN.
    app.create_ticket(in_stage(&pipeline, open.id)).await;

    ok(app
        .pipelines()
        .update_stage(UpdateStageRequest {
            stage: Some(Stage {
                id: open.id,
                state: TicketState::Closed.into(),
                ..Default::default()
            }),
            update_mask: mask(&["state"]),
            request_id: String::new(),
        })
        .await);
    let restated = app.get_ticket(t.id).await;
    assert!(restated.close_time.is_some());
    assert_eq!(restated.tags, ["stage-closed"], "{restated:?}");
}

/// `admin` changes configuration; `writer` must act on each change in its very next call.
async fn changes_reach(admin: &TestApp, writer: &TestApp, tag: &str) {
    writer.create_ticket(ticket("warm")).await;

    // A new pipeline.
    let pipeline = admin
        .create_pipeline(pipeline(
            &format!("{tag} pipeline"),
            vec![stage("Open", TicketState::Open, 1)],
        ))
        .await;
    let open = pipeline.stages[0].id;
    let t = writer.create_ticket(in_stage(&pipeline, open)).await;
    assert_eq!((t.pipeline_id, t.stage_id), (pipeline.id, open));

    // A new stage, then its state changed.
    let later = ok(admin
        .pipelines()
        .create_stage(CreateStageRequest {
            stage: Some(Stage {
                pipeline_id: pipeline.id,
                ..stage("Later", TicketState::Closed, 2)
            }),
            request_id: String::new(),
        })
        .await);
    let t = writer.create_ticket(in_stage(&pipeline, later.id)).await;
    assert!(t.close_time.is_some(), "created in a CLOSED stage: {t:?}");
    ok(admin
        .pipelines()
        .update_stage(UpdateStageRequest {
            stage: Some(Stage {
                id: later.id,
                state: TicketState::Open.into(),
                ..Default::default()
            }),
            update_mask: mask(&["state"]),
            request_id: String::new(),
        })
        .await);
    let t = writer.create_ticket(in_stage(&pipeline, later.id)).await;
    assert!(t.close_time.is_none(), "the stage is OPEN now: {t:?}");

    // A stage deleted is refused at once.
    let spare = ok(admin
        .pipelines()
        .create_stage(CreateStageRequest {
            stage: Some(Stage {
                pipeline_id: pipeline.id,
                ..stage("Spare", TicketState::Open, 3)
            }),
            request_id: String::new(),
        })
        .await);
    writer.create_ticket(in_stage(&pipeline, open)).await;
    ok(admin
        .pipelines()
        .delete_stage(DeleteStageRequest {
            id: spare.id,
            ..Default::default()
        })
        .await);
    assert_code(
        writer
            .tickets()
            .create_ticket(create_ticket_req(in_stage(&pipeline, spare.id)))
            .await,
        Code::InvalidArgument,
    );

    // A rule on the stage's label, then the stage renamed to match it, then the rule disabled.
    let label = format!("Renamed{tag}");
    let rule = ok(admin
        .rules()
        .create_rule(rule_req(
            &format!("{tag} rule"),
            TriggerEvent::TicketCreated,
            &format!("stage.label = {label}"),
            &label,
        ))
        .await);
    let t = writer.create_ticket(in_stage(&pipeline, open)).await;
    assert!(t.tags.is_empty(), "the stage is not {label} yet: {t:?}");
    ok(admin
        .pipelines()
        .update_stage(UpdateStageRequest {
            stage: Some(Stage {
                id: open,
                label: label.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["label"]),
            request_id: String::new(),
        })
        .await);
    let t = writer.create_ticket(in_stage(&pipeline, open)).await;
    assert_eq!(
        t.tags,
        std::slice::from_ref(&label),
        "the rule sees the new label"
    );
    ok(admin
        .rules()
        .update_rule(UpdateRuleRequest {
            rule: Some(Rule {
                id: rule.id,
                enabled: false,
                ..Default::default()
            }),
            update_mask: mask(&["enabled"]),
            request_id: String::new(),
        })
        .await);
    let t = writer.create_ticket(in_stage(&pipeline, open)).await;
    assert!(t.tags.is_empty(), "the rule is disabled: {t:?}");

    // A property defined is written and searched at once; archived, it is refused at once.
    let name = format!("{tag}_score");
    let definition = admin.define_property(&name, PropertyType::Number).await;
    let t = writer
        .create_ticket(Ticket {
            properties: properties(&[(&name, "7")]),
            ..ticket("scored")
        })
        .await;
    assert_eq!(t.properties.get(&name).map(String::as_str), Some("7"));
    let found = ok(writer
        .tickets()
        .search_tickets(SearchTicketsRequest {
            filter_groups: vec![FilterGroup {
                filters: vec![filter(&name, FilterOperator::Eq, "7")],
            }],
            ..Default::default()
        })
        .await);
    assert_eq!(
        found.tickets.iter().map(|t| t.id).collect::<Vec<_>>(),
        [t.id]
    );
    ok(admin
        .properties()
        .archive_property(ticketd::proto::ArchivePropertyRequest {
            name: name.clone(),
            etag: definition.etag.clone(),
            request_id: String::new(),
        })
        .await);
    assert_code(
        writer
            .tickets()
            .create_ticket(create_ticket_req(Ticket {
                properties: properties(&[(&name, "8")]),
                ..ticket("archived")
            }))
            .await,
        Code::InvalidArgument,
    );

    // A webhook gets the next event; disabled, not the one after.
    let receiver = Receiver::start(vec![]).await;
    let webhook = admin
        .create_webhook(hook(&receiver.url(), &["ticket.created"]))
        .await;
    let t = writer.create_ticket(ticket("hooked")).await;
    let delivered: Vec<i64> = admin
        .deliveries(webhook.id)
        .await
        .iter()
        .map(|delivery| delivery.ticket_id)
        .collect();
    assert_eq!(delivered, [t.id]);
    ok(admin
        .webhooks()
        .update_webhook(UpdateWebhookRequest {
            webhook: Some(Webhook {
                id: webhook.id,
                enabled: false,
                ..Default::default()
            }),
            update_mask: mask(&["enabled"]),
            request_id: String::new(),
        })
        .await);
    writer.create_ticket(ticket("unhooked")).await;
    assert_eq!(admin.deliveries(webhook.id).await.len(), 1);
}

fn in_stage(pipeline: &Pipeline, stage_id: i64) -> Ticket {
    Ticket {
        pipeline_id: pipeline.id,
        stage_id,
        ..ticket("placed")
    }
}

fn rule_req(name: &str, on: TriggerEvent, condition: &str, tag: &str) -> CreateRuleRequest {
    CreateRuleRequest {
        rule: Some(Rule {
            name: name.to_owned(),
            enabled: true,
            on: vec![on.into()],
            condition: condition.to_owned(),
            actions: vec![RuleAction {
                action: Some(rule_action::Action::AddTag(tag.to_owned())),
            }],
            ..Default::default()
        }),
        request_id: String::new(),
    }
}
