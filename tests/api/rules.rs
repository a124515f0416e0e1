//! Automation rules (RuleService): saved and checked by admins, run inside the write that sets them off, in
//! position order, each at most once per write, with a cap of 10 firings; their changes are history events
//! by `rule:<id>` naming their cause. Writes that skip automations, and tickets created directly in a CLOSED
//! stage without NOTIFY_ALL, run no rule. TestRule answers what a rule would do and leaves no trace.

use ticketd::proto::{
    AddInternalCommentAction, AssignAction, CommentVisibility, CreateRuleRequest,
    CreateTicketRequest, DeleteRuleRequest, GetRuleRequest, ListCommentsRequest, ListRulesRequest,
    Notify, Priority, Rule, RuleAction, SetFieldAction, SideEffects, TestRuleRequest, Ticket,
    TicketEvent, TicketEventKind, UpdateRuleRequest, assign_action, rule::TriggerEvent,
    rule_action, test_rule_request,
};
use tonic::Code;

use crate::support::*;

both_databases!(
    rules_are_saved_listed_in_position_order_updated_and_deleted,
    mistakes_in_a_rule_are_refused_naming_the_field_and_position,
    only_admins_change_rules_and_customers_cannot_read_them,
    an_urgent_ticket_is_assigned_tagged_and_noted_by_its_rule,
    a_rule_with_changed_fields_fires_only_when_one_of_them_changed,
    a_rule_changing_the_field_it_watches_fires_once,
    a_pass_stops_after_ten_firings,
    later_rules_see_earlier_rules_changes,
    comments_set_off_comment_rules,
    writes_that_skip_automations_and_tickets_created_closed_run_no_rule,
    a_rule_that_cannot_apply_is_rolled_back_alone_and_the_write_commits,
    disabled_rules_do_not_fire,
    test_rule_says_what_would_happen_and_leaves_no_trace,
);

/// The default pipeline's stage whose state is CLOSED.
const DEFAULT_CLOSED_STAGE: i64 = 4;

fn action(action: rule_action::Action) -> RuleAction {
    RuleAction {
        action: Some(action),
    }
}

fn set_field(path: &str, value: &str) -> RuleAction {
    action(rule_action::Action::SetField(SetFieldAction {
        path: path.to_owned(),
        value: value.to_owned(),
    }))
}

fn add_tag(tag: &str) -> RuleAction {
    action(rule_action::Action::AddTag(tag.to_owned()))
}

fn internal_comment(body: &str) -> RuleAction {
    action(rule_action::Action::AddInternalComment(
        AddInternalCommentAction {
            body: body.to_owned(),
        },
    ))
}

fn assign_email(email: &str) -> RuleAction {
    action(rule_action::Action::Assign(AssignAction {
        assignee: Some(assign_action::Assignee::AgentEmail(email.to_owned())),
    }))
}

fn rule(name: &str, on: &[TriggerEvent], condition: &str, actions: Vec<RuleAction>) -> Rule {
    Rule {
        name: name.to_owned(),
        enabled: true,
        on: on.iter().map(|&event| event.into()).collect(),
        condition: condition.to_owned(),
        actions,
        ..Default::default()
    }
}

fn create_req(rule: Rule) -> CreateRuleRequest {
    CreateRuleRequest {
        rule: Some(rule),
        request_id: String::new(),
    }
}

async fn create_rule(app: &TestApp, rule: Rule) -> Rule {
    ok(app.rules().create_rule(create_req(rule)).await)
}

/// The events rules made, in order.
fn by_rules(history: &[TicketEvent]) -> Vec<&TicketEvent> {
    history
        .iter()
        .filter(|event| event.actor_id.starts_with("rule:"))
        .collect()
}

async fn create_with(app: &TestApp, ticket: Ticket, side_effects: Option<SideEffects>) -> Ticket {
    ok(app
        .tickets()
        .create_ticket(CreateTicketRequest {
            ticket: Some(ticket),
            side_effects,
            ..Default::default()
        })
        .await)
}

async fn rules_are_saved_listed_in_position_order_updated_and_deleted(app: TestApp) {
    let second = create_rule(
        &app,
        Rule {
            position: 20,
            ..rule(
                "second",
                &[TriggerEvent::TicketCreated],
                "",
                vec![add_tag("b")],
            )
        },
    )
    .await;
    let first = create_rule(
        &app,
        Rule {
            position: 10,
            ..rule(
                "first",
                &[TriggerEvent::TicketCreated],
                "priority = HIGH",
                vec![add_tag("a")],
            )
        },
    )
    .await;
    let appended = create_rule(
        &app,
        rule(
            "appended",
            &[TriggerEvent::CommentAdded],
            "",
            vec![add_tag("c")],
        ),
    )
    .await;
    assert_eq!(appended.position, 21, "without a position a rule goes last");
    assert!(!first.etag.is_empty());

    let fetched = ok(app.rules().get_rule(GetRuleRequest { id: first.id }).await);
    assert_eq!(fetched, first);

    // Pages of one, in running order.
    let mut names = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = ok(app
            .rules()
            .list_rules(ListRulesRequest {
                page_size: 1,
                page_token,
            })
            .await);
        names.extend(page.rules.into_iter().map(|rule| rule.name));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(names, ["first", "second", "appended"]);

    let renamed = ok(app
        .rules()
        .update_rule(UpdateRuleRequest {
            rule: Some(Rule {
                id: second.id,
                name: "renamed".into(),
                enabled: false,
                etag: second.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["name".into(), "enabled".into()],
            }),
            request_id: String::new(),
        })
        .await);
    assert_eq!(renamed.name, "renamed");
    assert!(!renamed.enabled);
    assert_eq!(renamed.actions, second.actions, "unmasked parts are kept");

    let stale = app
        .rules()
        .update_rule(UpdateRuleRequest {
            rule: Some(Rule {
                id: second.id,
                name: "again".into(),
                etag: second.etag.clone(),
                ..Default::default()
            }),
            update_mask: None,
            request_id: String::new(),
        })
        .await;
    assert_code(stale, Code::Aborted);

    ok(app
        .rules()
        .delete_rule(DeleteRuleRequest {
            id: second.id,
            etag: renamed.etag,
        })
        .await);
    assert_code(
        app.rules().get_rule(GetRuleRequest { id: second.id }).await,
        Code::NotFound,
    );
}

async fn mistakes_in_a_rule_are_refused_naming_the_field_and_position(app: TestApp) {
    let created = TriggerEvent::TicketCreated;
    let status = assert_invalid(
        app.rules()
            .create_rule(create_req(rule(
                "r",
                &[created],
                "prio = URGENT",
                vec![add_tag("x")],
            )))
            .await,
        "rule.condition",
    );
    assert!(
        status.message().contains("at byte 0"),
        "{}",
        status.message()
    );
    let status = assert_invalid(
        app.rules()
            .create_rule(create_req(rule(
                "r",
                &[created],
                "priority = URGENT AND (",
                vec![add_tag("x")],
            )))
            .await,
        "rule.condition",
    );
    assert!(status.message().contains("byte"), "{}", status.message());
    assert_invalid(
        app.rules()
            .create_rule(create_req(rule(
                "r",
                &[created],
                "",
                vec![add_tag("x"), internal_comment("Hello {{ticket.subjct}}")],
            )))
            .await,
        "rule.actions[1].add_internal_comment.body",
    );
    assert_invalid(
        app.rules()
            .create_rule(create_req(rule("r", &[], "", vec![add_tag("x")])))
            .await,
        "rule.on",
    );
    assert_invalid(
        app.rules()
            .create_rule(create_req(rule("r", &[created], "", vec![])))
            .await,
        "rule.actions",
    );
    assert_invalid(
        app.rules()
            .create_rule(create_req(rule(
                "r",
                &[created],
                "",
                vec![set_field("create_time", "2026-01-01T00:00:00Z")],
            )))
            .await,
        "rule.actions[0].set_field.path",
    );
    assert_invalid(
        app.rules()
            .create_rule(create_req(Rule {
                changed: vec!["colour".into()],
                ..rule("r", &[created], "", vec![add_tag("x")])
            }))
            .await,
        "rule.changed[0]",
    );
    let status = assert_invalid(
        app.rules()
            .create_rule(create_req(rule(
                "r",
                &[created],
                "properties.undefined_thing = 3",
                vec![add_tag("x")],
            )))
            .await,
        "rule",
    );
    assert!(
        status.message().contains("undefined_thing"),
        "{}",
        status.message()
    );
    assert_invalid(
        app.rules()
            .create_rule(create_req(rule("  ", &[created], "", vec![add_tag("x")])))
            .await,
        "rule.name",
    );
    let listed = ok(app.rules().list_rules(ListRulesRequest::default()).await);
    assert!(listed.rules.is_empty(), "nothing refused was saved");
}

async fn only_admins_change_rules_and_customers_cannot_read_them(app: TestApp) {
    let saved = create_rule(
        &app,
        rule("r", &[TriggerEvent::TicketCreated], "", vec![add_tag("x")]),
    )
    .await;
    let agent = app.rules_as(&agent_token("agent-7"));
    assert_code(
        agent
            .clone()
            .create_rule(create_req(rule(
                "mine",
                &[TriggerEvent::TicketCreated],
                "",
                vec![add_tag("y")],
            )))
            .await,
        Code::PermissionDenied,
    );
    let read = ok(agent
        .clone()
        .get_rule(GetRuleRequest { id: saved.id })
        .await);
    assert_eq!(read.id, saved.id);
    let service = app.rules_as(&service_token("svc", &["tickets:read"]));
    assert_code(
        service
            .clone()
            .list_rules(ListRulesRequest::default())
            .await,
        Code::PermissionDenied,
    );
    let reader = app.rules_as(&service_token("svc", &["rules:read"]));
    ok(reader.clone().list_rules(ListRulesRequest::default()).await);
    let customer = app.rules_as(&customer_token("carol", "org-1", 1));
    assert_code(
        customer
            .clone()
            .list_rules(ListRulesRequest::default())
            .await,
        Code::PermissionDenied,
    );
}

async fn an_urgent_ticket_is_assigned_tagged_and_noted_by_its_rule(app: TestApp) {
    app.create_agent(new_agent("oncall-1", "OnCall@example.com"))
        .await;
    let saved = create_rule(
        &app,
        rule(
            "urgent to on-call",
            &[TriggerEvent::TicketCreated],
            r#"priority = URGENT AND stage.state = OPEN"#,
            vec![
                assign_email("oncall@example.com"),
                add_tag("paged"),
                internal_comment("Paged on-call for {{ticket.subject}} ({{ ticket.priority }}, {{ticket.stage.label}})"),
            ],
        ),
    )
    .await;

    let calm = app.create_ticket(ticket("printer low on toner")).await;
    assert!(
        by_rules(&app.history(calm.id).await).is_empty(),
        "the condition does not match"
    );

    let urgent = app
        .create_ticket(Ticket {
            priority: Priority::Urgent.into(),
            ..ticket("server room on fire")
        })
        .await;
    let after = app.get_ticket(urgent.id).await;
    assert_eq!(after.assignee_id, "oncall-1");
    assert_eq!(after.tags, ["paged"]);
    assert_eq!(
        urgent, after,
        "the answer is the ticket as it committed, rules' changes included"
    );

    let history = app.history(urgent.id).await;
    let created = &history[0];
    assert_eq!(created.kind(), TicketEventKind::Created);
    let made = by_rules(&history);
    assert!(!made.is_empty(), "{history:?}");
    for event in &made {
        assert_eq!(event.actor_id, format!("rule:{}", saved.id));
        assert_eq!(
            event.cause_event_id, created.event_id,
            "rule events name their cause"
        );
    }
    let comments = ok(app
        .tickets()
        .list_comments(ListCommentsRequest {
            ticket_id: urgent.id,
            ..Default::default()
        })
        .await)
    .comments;
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].visibility(), CommentVisibility::Internal);
    assert_eq!(
        comments[0].body,
        "Paged on-call for server room on fire (URGENT, New)"
    );
    assert_eq!(comments[0].author_id, format!("rule:{}", saved.id));
}

async fn a_rule_with_changed_fields_fires_only_when_one_of_them_changed(app: TestApp) {
    create_rule(
        &app,
        Rule {
            changed: vec!["priority".into()],
            ..rule(
                "re-prioritised",
                &[TriggerEvent::TicketUpdated],
                "",
                vec![add_tag("reprioritised")],
            )
        },
    )
    .await;
    let t = app.create_ticket(ticket("slow laptop")).await;
    let renamed = app
        .update_ticket(subject_change(t.id, "very slow laptop"), &["subject"])
        .await;
    assert!(
        renamed.tags.is_empty(),
        "the subject is not a watched field"
    );
    let raised = app
        .update_ticket(
            Ticket {
                id: t.id,
                priority: Priority::High.into(),
                ..Default::default()
            },
            &["priority"],
        )
        .await;
    assert_eq!(raised.tags, ["reprioritised"]);
}

async fn a_rule_changing_the_field_it_watches_fires_once(app: TestApp) {
    let saved = create_rule(
        &app,
        Rule {
            changed: vec!["subject".into()],
            ..rule(
                "stamp subjects",
                &[TriggerEvent::TicketUpdated],
                "",
                vec![set_field("subject", "[seen] edited")],
            )
        },
    )
    .await;
    let t = app.create_ticket(ticket("mouse broken")).await;
    let updated = app
        .update_ticket(subject_change(t.id, "mouse very broken"), &["subject"])
        .await;
    assert_eq!(updated.subject, "[seen] edited");
    let history = app.history(t.id).await;
    let made = by_rules(&history);
    assert_eq!(
        made.len(),
        1,
        "one firing, though it changed what it watches: {history:?}"
    );
    assert_eq!(made[0].actor_id, format!("rule:{}", saved.id));
}

async fn a_pass_stops_after_ten_firings(app: TestApp) {
    // Twelve rules that each match any change: they set each other off, and each fires at most once; the pass
    // ends after ten firings, in position order.
    for n in 1..=12 {
        create_rule(
            &app,
            Rule {
                position: n,
                ..rule(
                    &format!("r{n:02}"),
                    &[TriggerEvent::TicketCreated, TriggerEvent::TicketUpdated],
                    "",
                    vec![add_tag(&format!("r{n:02}"))],
                )
            },
        )
        .await;
    }
    let t = app.create_ticket(ticket("chain reaction")).await;
    let expected: Vec<String> = (1..=10).map(|n| format!("r{n:02}")).collect();
    assert_eq!(t.tags, expected);
    assert_eq!(by_rules(&app.history(t.id).await).len(), 10);
}

async fn later_rules_see_earlier_rules_changes(app: TestApp) {
    create_rule(
        &app,
        Rule {
            position: 2,
            ..rule(
                "tag urgent",
                &[TriggerEvent::TicketCreated],
                "priority = URGENT",
                vec![add_tag("urgent")],
            )
        },
    )
    .await;
    create_rule(
        &app,
        Rule {
            position: 1,
            ..rule(
                "outages are urgent",
                &[TriggerEvent::TicketCreated],
                "subject:outage",
                vec![set_field("priority", "URGENT")],
            )
        },
    )
    .await;
    let t = app.create_ticket(ticket("Total outage in EMEA")).await;
    assert_eq!(t.priority(), Priority::Urgent);
    assert_eq!(t.tags, ["urgent"]);
    let history = app.history(t.id).await;
    let made = by_rules(&history);
    assert_eq!(made.len(), 2);
    assert_eq!(
        made[1].cause_event_id, made[0].event_id,
        "the second rule was set off by the first one's change"
    );
}

async fn comments_set_off_comment_rules(app: TestApp) {
    create_rule(
        &app,
        rule(
            "customer replied",
            &[TriggerEvent::CommentAdded],
            "stage.state = OPEN",
            vec![add_tag("replied")],
        ),
    )
    .await;
    let t = app.create_ticket(ticket("where is my order")).await;
    assert!(t.tags.is_empty());
    ok(app
        .tickets()
        .add_comment(comment_req(t.id, "any news?", CommentVisibility::Public))
        .await);
    assert_eq!(app.get_ticket(t.id).await.tags, ["replied"]);
}

async fn writes_that_skip_automations_and_tickets_created_closed_run_no_rule(app: TestApp) {
    create_rule(
        &app,
        rule(
            "note every new ticket",
            &[TriggerEvent::TicketCreated],
            "",
            vec![internal_comment("seen: {{ticket.stage.state}}")],
        ),
    )
    .await;
    let side_effects = |notify: Notify, skip_automations| {
        Some(SideEffects {
            notify: notify.into(),
            skip_automations,
        })
    };
    let skipped = create_with(
        &app,
        ticket("migrated"),
        side_effects(Notify::Unspecified, true),
    )
    .await;
    let closed = Ticket {
        stage_id: DEFAULT_CLOSED_STAGE,
        ..ticket("solved on the phone")
    };
    let quiet = create_with(&app, closed.clone(), None).await;
    let announced = create_with(&app, closed, side_effects(Notify::All, false)).await;
    let silenced = create_with(&app, ticket("bulk fix"), side_effects(Notify::None, false)).await;

    for (t, expected) in [
        (&skipped, false),
        (&quiet, false),
        (&announced, true),
        (&silenced, true),
    ] {
        let fired = !by_rules(&app.history(t.id).await).is_empty();
        assert_eq!(fired, expected, "{}", t.subject);
    }
}

async fn a_rule_that_cannot_apply_is_rolled_back_alone_and_the_write_commits(app: TestApp) {
    create_rule(
        &app,
        Rule {
            position: 1,
            ..rule(
                "tag, then assign someone who left",
                &[TriggerEvent::TicketCreated],
                "",
                vec![add_tag("assigned"), assign_email("gone@example.com")],
            )
        },
    )
    .await;
    create_rule(
        &app,
        Rule {
            position: 2,
            ..rule(
                "still runs",
                &[TriggerEvent::TicketCreated],
                "",
                vec![add_tag("triaged")],
            )
        },
    )
    .await;
    let t = app.create_ticket(ticket("keyboard sticky")).await;
    assert_eq!(
        t.tags,
        ["triaged"],
        "the failed rule's first action was rolled back with it"
    );
    assert_eq!(app.get_ticket(t.id).await, t);
    assert_eq!(by_rules(&app.history(t.id).await).len(), 1);
}

async fn disabled_rules_do_not_fire(app: TestApp) {
    create_rule(
        &app,
        Rule {
            enabled: false,
            ..rule(
                "off",
                &[TriggerEvent::TicketCreated],
                "",
                vec![add_tag("x")],
            )
        },
    )
    .await;
    let t = app.create_ticket(ticket("nothing happens")).await;
    assert!(t.tags.is_empty());
    assert!(by_rules(&app.history(t.id).await).is_empty());
}

async fn test_rule_says_what_would_happen_and_leaves_no_trace(app: TestApp) {
    let saved = create_rule(
        &app,
        Rule {
            enabled: false,
            ..rule(
                "urgent escalation",
                &[TriggerEvent::TicketUpdated],
                "priority = URGENT",
                vec![
                    add_tag("escalated"),
                    internal_comment("Escalated {{ticket.subject}}"),
                ],
            )
        },
    )
    .await;
    let t = app.create_ticket(ticket("database slow")).await;
    let history_before = app.all_history().await;

    let miss = ok(app
        .rules()
        .test_rule(TestRuleRequest {
            rule_source: Some(test_rule_request::RuleSource::RuleId(saved.id)),
            ticket_id: t.id,
            event: TriggerEvent::TicketUpdated.into(),
            ..Default::default()
        })
        .await);
    assert!(!miss.fires);
    assert!(miss.reason.contains("condition"), "{}", miss.reason);

    let hit = ok(app
        .rules()
        .test_rule(TestRuleRequest {
            rule_source: Some(test_rule_request::RuleSource::RuleId(saved.id)),
            ticket_id: t.id,
            event: TriggerEvent::TicketUpdated.into(),
            changes: vec![SetFieldAction {
                path: "priority".into(),
                value: "URGENT".into(),
            }],
            ..Default::default()
        })
        .await);
    assert!(hit.fires, "{hit:?}");
    assert_eq!(hit.actions.len(), 2);
    assert_eq!(hit.actions[0].changes.len(), 1);
    assert_eq!(hit.actions[0].changes[0].field, "tags");
    assert_eq!(hit.actions[0].changes[0].new_value, "escalated");
    assert!(
        hit.actions[1].result.contains("Escalated database slow"),
        "{}",
        hit.actions[1].result
    );
    let would_be = hit.ticket.expect("the ticket as the actions leave it");
    assert_eq!(would_be.priority(), Priority::Urgent);
    assert_eq!(would_be.tags, ["escalated"]);

    // An unsaved rule is checked like CreateRule checks it.
    assert_invalid(
        app.rules()
            .test_rule(TestRuleRequest {
                rule_source: Some(test_rule_request::RuleSource::Rule(rule(
                    "draft",
                    &[TriggerEvent::TicketUpdated],
                    "priority = SOON",
                    vec![add_tag("x")],
                ))),
                ticket_id: t.id,
                event: TriggerEvent::TicketUpdated.into(),
                ..Default::default()
            })
            .await,
        "rule.condition",
    );

    assert_eq!(app.get_ticket(t.id).await, t, "the ticket is untouched");
    assert_eq!(app.all_history().await, history_before, "no event was kept");
    let comments = ok(app
        .tickets()
        .list_comments(ListCommentsRequest {
            ticket_id: t.id,
            ..Default::default()
        })
        .await);
    assert!(comments.comments.is_empty());
}
