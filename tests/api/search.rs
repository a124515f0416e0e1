//! SearchTickets: filters on core fields and custom properties, OR of AND groups, full-text query, sorting,
//! keyset paging and validation.

use std::collections::HashSet;

use ticketd::proto::{
    ArchiveTicketRequest, Filter, FilterGroup, FilterOperator, Priority, PropertyType,
    SearchTicketsRequest, Sort, Ticket,
};

use crate::support::*;

use FilterOperator::{
    Between, ContainsToken, Eq, Gt, Gte, HasProperty, In, Lt, Lte, Neq, NotHasProperty, NotIn,
};

both_databases!(
    // Core fields
    filters_on_stage_pipeline_and_priority,
    filters_on_assignee_with_every_operator,
    filters_on_organization_ticket_type_and_requester,
    filters_on_tags,
    filters_on_times_and_id,
    // Custom properties
    number_properties_compare_numerically,
    date_bool_and_enumeration_properties,
    string_contains_token_matches_whole_words_ignoring_case,
    filter_values_are_normalised_like_ticket_values,
    tags_have_a_value_when_there_is_any_tag,
    contains_token_splits_words_at_line_breaks_and_tabs,
    contains_token_splits_words_at_punctuation,
    contains_token_ignores_the_case_of_non_ascii_letters,
    // Groups and query
    groups_are_ored_and_filters_within_a_group_are_anded,
    query_matches_tickets_containing_every_word,
    query_finds_words_inside_urls_paths_and_addresses,
    query_ignores_the_case_of_non_ascii_letters,
    query_follows_updates_of_subject_and_content,
    query_follows_batch_writes,
    // Validation
    search_rejects_too_many_groups_or_filters,
    search_names_the_invalid_filter_field,
    search_validates_sorts,
    search_rejects_a_page_token_of_another_search,
    // Paging and order
    paging_returns_every_match_exactly_once_and_skips_archived,
    search_sorts_by_update_time_descending_and_id_descending,
);

/// A search with one group per inner vector: groups are ORed, the filters of a group ANDed.
fn search(groups: Vec<Vec<Filter>>) -> SearchTicketsRequest {
    SearchTicketsRequest {
        filter_groups: groups
            .into_iter()
            .map(|filters| FilterGroup { filters })
            .collect(),
        ..Default::default()
    }
}

/// A sort by `property` in `direction` (`asc` or `desc`).
fn sort(property: &str, direction: &str) -> Sort {
    Sort {
        property: property.to_owned(),
        direction: direction.to_owned(),
    }
}

/// A group of one filter.
fn one(filter: Filter) -> Vec<Filter> {
    vec![filter]
}

// ---------------------------------------------------------------------------------------------------------------
// Core fields
// ---------------------------------------------------------------------------------------------------------------

async fn filters_on_stage_pipeline_and_priority(app: TestApp) {
    let other = app.create_pipeline(simple_pipeline("Other")).await;
    let low_new = app
        .create_ticket(Ticket {
            stage_id: 1,
            priority: Priority::Low.into(),
            ..ticket("low, new")
        })
        .await;
    let high_waiting = app
        .create_ticket(Ticket {
            stage_id: 2,
            priority: Priority::High.into(),
            ..ticket("high, waiting")
        })
        .await;
    let urgent_waiting = app
        .create_ticket(Ticket {
            stage_id: 2,
            priority: Priority::Urgent.into(),
            ..ticket("urgent, waiting")
        })
        .await;
    let elsewhere = app
        .create_ticket(Ticket {
            pipeline_id: other.id,
            ..ticket("other pipeline")
        })
        .await;

    assert_eq!(
        app.search_ids(one(filter("stage_id", Eq, "2"))).await,
        vec![high_waiting.id, urgent_waiting.id]
    );
    assert_eq!(
        app.search_ids(one(filter("pipeline_id", Eq, &other.id.to_string())))
            .await,
        vec![elsewhere.id]
    );
    assert_eq!(
        app.search_ids(one(filter("pipeline_id", Eq, "0"))).await,
        vec![low_new.id, high_waiting.id, urgent_waiting.id]
    );
    assert_eq!(
        app.search_ids(one(filter("priority", Eq, "HIGH"))).await,
        vec![high_waiting.id]
    );
    assert_eq!(
        app.search_ids(one(filter_in("priority", In, &["LOW", "URGENT"])))
            .await,
        vec![low_new.id, urgent_waiting.id]
    );
}

async fn filters_on_assignee_with_every_operator(app: TestApp) {
    let mut by_agent = Vec::new();
    for assignee in ["agent-1", "agent-2", "agent-3", ""] {
        by_agent.push(
            app.create_ticket(Ticket {
                assignee_id: assignee.into(),
                ..ticket(&format!("assigned to {assignee:?}"))
            })
            .await
            .id,
        );
    }
    let [a1, a2, a3, nobody] = by_agent[..] else {
        unreachable!()
    };

    assert_eq!(
        app.search_ids(one(filter("assignee_id", Eq, "agent-1")))
            .await,
        vec![a1]
    );
    let neq = app
        .search_ids(one(filter("assignee_id", Neq, "agent-1")))
        .await;
    assert!(
        !neq.contains(&a1) && neq.contains(&a2) && neq.contains(&a3),
        "NEQ agent-1 gave {neq:?}"
    );
    assert_eq!(
        app.search_ids(one(filter_in("assignee_id", In, &["agent-1", "agent-3"])))
            .await,
        vec![a1, a3]
    );
    let not_in = app
        .search_ids(one(filter_in(
            "assignee_id",
            NotIn,
            &["agent-1", "agent-3"],
        )))
        .await;
    assert!(
        !not_in.contains(&a1) && !not_in.contains(&a3) && not_in.contains(&a2),
        "NOT_IN [agent-1, agent-3] gave {not_in:?}"
    );
    assert_eq!(
        app.search_ids(one(filter("assignee_id", HasProperty, "")))
            .await,
        vec![a1, a2, a3]
    );
    assert_eq!(
        app.search_ids(one(filter("assignee_id", NotHasProperty, "")))
            .await,
        vec![nobody]
    );
}

async fn filters_on_organization_ticket_type_and_requester(app: TestApp) {
    let acme = app
        .create_ticket(Ticket {
            organization_id: "org-acme".into(),
            ticket_type: "incident".into(),
            requester_id: "customer-1".into(),
            ..ticket("acme incident")
        })
        .await;
    let globex = app
        .create_ticket(Ticket {
            organization_id: "org-globex".into(),
            ticket_type: "question".into(),
            requester_id: "customer-2".into(),
            ..ticket("globex question")
        })
        .await;

    assert_eq!(
        app.search_ids(one(filter("organization_id", Eq, "org-acme")))
            .await,
        vec![acme.id]
    );
    assert_eq!(
        app.search_ids(one(filter("ticket_type", Eq, "question")))
            .await,
        vec![globex.id]
    );
    assert_eq!(
        app.search_ids(one(filter("requester_id", Eq, "customer-1")))
            .await,
        vec![acme.id]
    );
    assert_eq!(
        app.search_ids(one(filter("requester_id", Eq, "customer-3")))
            .await,
        Vec::<i64>::new()
    );
}

async fn filters_on_tags(app: TestApp) {
    let vip = app
        .create_ticket(Ticket {
            tags: strings(&["billing", "vip"]),
            ..ticket("vip customer")
        })
        .await;
    app.create_ticket(Ticket {
        tags: strings(&["vipper"]),
        ..ticket("similar tag")
    })
    .await;
    app.create_ticket(ticket("no tags")).await;

    assert_eq!(
        app.search_ids(one(filter("tags", Eq, "vip"))).await,
        vec![vip.id]
    );
    assert_eq!(
        app.search_ids(one(filter("tags", ContainsToken, "vip")))
            .await,
        vec![vip.id]
    );
    assert_eq!(
        app.search_ids(one(filter("tags", Eq, "billing"))).await,
        vec![vip.id]
    );
}

async fn filters_on_times_and_id(app: TestApp) {
    let t0 = app.create_ticket(ticket("first")).await;
    let t1 = app.create_ticket(ticket("second")).await;
    let t2 = app
        .create_ticket(Ticket {
            stage_id: 4,
            ..ticket("third, closed")
        })
        .await;

    assert_eq!(
        app.search_ids(one(filter("create_time", Gt, &rfc3339(&t0.create_time))))
            .await,
        vec![t1.id, t2.id]
    );
    assert_eq!(
        app.search_ids(one(filter("create_time", Lt, &rfc3339(&t2.create_time))))
            .await,
        vec![t0.id, t1.id]
    );
    assert_eq!(
        app.search_ids(one(filter_between(
            "create_time",
            &rfc3339(&t0.create_time),
            &rfc3339(&t1.create_time)
        )))
        .await,
        vec![t0.id, t1.id],
        "BETWEEN includes both ends"
    );
    // The same instant written with another offset.
    let t0_in_paris = {
        let t = t0.create_time.unwrap();
        chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32)
            .unwrap()
            .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, false)
    };
    assert!(t0_in_paris.ends_with("+02:00"), "{t0_in_paris}");
    assert_eq!(
        app.search_ids(one(filter("create_time", Gt, &t0_in_paris)))
            .await,
        vec![t1.id, t2.id],
        "RFC 3339 values with an offset compare as instants"
    );

    let touched = app
        .update_ticket(subject_change(t0.id, "first, touched"), &["subject"])
        .await;
    assert_eq!(
        app.search_ids(one(filter("update_time", Gt, &rfc3339(&t2.update_time))))
            .await,
        vec![touched.id]
    );

    assert_eq!(
        app.search_ids(one(filter("close_time", HasProperty, "")))
            .await,
        vec![t2.id],
        "only the closed ticket has a close_time"
    );
    assert_eq!(
        app.search_ids(one(filter("close_time", NotHasProperty, "")))
            .await,
        vec![t0.id, t1.id]
    );
    assert_eq!(
        app.search_ids(one(filter("close_time", Gt, &rfc3339(&t0.create_time))))
            .await,
        vec![t2.id]
    );

    assert_eq!(
        app.search_ids(one(filter("id", Gt, &t0.id.to_string())))
            .await,
        vec![t1.id, t2.id]
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Custom properties
// ---------------------------------------------------------------------------------------------------------------

async fn number_properties_compare_numerically(app: TestApp) {
    app.define_property("score", PropertyType::Number).await;
    let mut with = Vec::new();
    for value in ["9", "10", "100"] {
        with.push(
            app.create_ticket(Ticket {
                properties: properties(&[("score", value)]),
                ..ticket(&format!("score {value}"))
            })
            .await
            .id,
        );
    }
    let [nine, ten, hundred] = with[..] else {
        unreachable!()
    };
    let without = app.create_ticket(ticket("no score")).await.id;

    assert_eq!(
        app.search_ids(one(filter("score", Gt, "9.5"))).await,
        vec![ten, hundred],
        "numeric, not lexicographic"
    );
    assert_eq!(
        app.search_ids(one(filter("score", Lt, "10"))).await,
        vec![nine]
    );
    assert_eq!(
        app.search_ids(one(filter("score", Gte, "10"))).await,
        vec![ten, hundred]
    );
    assert_eq!(
        app.search_ids(one(filter("score", Lte, "9"))).await,
        vec![nine]
    );
    assert_eq!(
        app.search_ids(one(filter("score", Eq, "10.0"))).await,
        vec![ten]
    );
    assert_eq!(
        app.search_ids(one(filter_between("score", "9", "10")))
            .await,
        vec![nine, ten],
        "BETWEEN includes both ends"
    );
    assert_eq!(
        app.search_ids(one(filter("score", HasProperty, ""))).await,
        vec![nine, ten, hundred]
    );
    assert_eq!(
        app.search_ids(one(filter("score", NotHasProperty, "")))
            .await,
        vec![without]
    );

    // Updated and removed values are searched by their new value.
    app.update_ticket(
        property_change(nine, &[("score", "11")]),
        &["properties.score"],
    )
    .await;
    app.update_ticket(
        Ticket {
            id: hundred,
            ..Default::default()
        },
        &["properties.score"],
    )
    .await;
    assert_eq!(
        app.search_ids(one(filter("score", Gt, "10"))).await,
        vec![nine],
        "9 became 11, 100 was removed"
    );
    assert_eq!(
        app.search_ids(one(filter("score", NotHasProperty, "")))
            .await,
        vec![hundred, without]
    );
}

async fn date_bool_and_enumeration_properties(app: TestApp) {
    app.define_property("due", PropertyType::Date).await;
    app.define_property("vip_customer", PropertyType::Bool)
        .await;
    app.create_property(ticketd::proto::PropertyDefinition {
        options: ["gold", "silver", "bronze"]
            .iter()
            .map(|v| ticketd::proto::PropertyOption {
                label: v.to_uppercase(),
                value: (*v).to_owned(),
                ..Default::default()
            })
            .collect(),
        ..property_def("tier", PropertyType::Enumeration)
    })
    .await;

    let a = app
        .create_ticket(Ticket {
            properties: properties(&[
                ("due", "2024-01-15"),
                ("vip_customer", "yes"),
                ("tier", "gold"),
            ]),
            ..ticket("a")
        })
        .await;
    let b = app
        .create_ticket(Ticket {
            properties: properties(&[
                ("due", "2024-06-15"),
                ("vip_customer", "false"),
                ("tier", "silver"),
            ]),
            ..ticket("b")
        })
        .await;
    let c = app
        .create_ticket(Ticket {
            properties: properties(&[("due", "2025-01-01"), ("tier", "bronze")]),
            ..ticket("c")
        })
        .await;

    assert_eq!(
        app.search_ids(one(filter("due", Lt, "2024-06-01"))).await,
        vec![a.id]
    );
    assert_eq!(
        app.search_ids(one(filter("due", Gt, "2024-06-15"))).await,
        vec![c.id]
    );
    assert_eq!(
        app.search_ids(one(filter("vip_customer", Eq, "true")))
            .await,
        vec![a.id]
    );
    assert_eq!(
        app.search_ids(one(filter("vip_customer", Eq, "false")))
            .await,
        vec![b.id]
    );
    assert_eq!(
        app.search_ids(one(filter_in("tier", In, &["gold", "silver"])))
            .await,
        vec![a.id, b.id]
    );

    app.define_property("replied_at", PropertyType::Datetime)
        .await;
    let early = app
        .create_ticket(Ticket {
            properties: properties(&[("replied_at", "2024-05-01T10:00:00+02:00")]),
            ..ticket("replied at 08:00Z")
        })
        .await;
    let late = app
        .create_ticket(Ticket {
            properties: properties(&[("replied_at", "2024-05-01T09:00:00Z")]),
            ..ticket("replied at 09:00Z")
        })
        .await;
    assert_eq!(
        app.search_ids(one(filter("replied_at", Gt, "2024-05-01T10:30:00+02:00")))
            .await,
        vec![late.id],
        "instants compare in UTC"
    );
    assert_eq!(
        app.search_ids(one(filter("replied_at", Lte, "2024-05-01T08:00:00Z")))
            .await,
        vec![early.id]
    );
}

async fn string_contains_token_matches_whole_words_ignoring_case(app: TestApp) {
    app.define_property("summary", PropertyType::String).await;
    let mut created = Vec::new();
    for summary in [
        "The Printer jammed",
        "printers everywhere",
        "laser printer",
        "nothing relevant",
    ] {
        created.push(
            app.create_ticket(Ticket {
                properties: properties(&[("summary", summary)]),
                ..ticket(summary)
            })
            .await
            .id,
        );
    }

    assert_eq!(
        app.search_ids(one(filter("summary", ContainsToken, "printer")))
            .await,
        vec![created[0], created[2]],
        "whole word, any case; \"printers\" is another word"
    );
    assert_eq!(
        app.search_ids(one(filter("summary", ContainsToken, "PRINTER")))
            .await,
        vec![created[0], created[2]]
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Groups and query
// ---------------------------------------------------------------------------------------------------------------

async fn filter_values_are_normalised_like_ticket_values(app: TestApp) {
    app.define_property("score", PropertyType::Number).await;
    app.define_property("vip_customer", PropertyType::Bool)
        .await;
    app.define_property("replied_at", PropertyType::Datetime)
        .await;
    let ten = app
        .create_ticket(Ticket {
            properties: properties(&[
                ("score", "10"),
                ("vip_customer", "true"),
                ("replied_at", "2024-05-01T08:00:00Z"),
            ]),
            ..ticket("ten")
        })
        .await
        .id;
    let hundred = app
        .create_ticket(Ticket {
            properties: properties(&[("score", "100"), ("vip_customer", "false")]),
            ..ticket("hundred")
        })
        .await
        .id;
    app.create_ticket(Ticket {
        properties: properties(&[("score", "7")]),
        ..ticket("seven")
    })
    .await;

    let mut wrong = Vec::new();
    for (case, filter, expected) in [
        (
            "NUMBER IN",
            filter_in("score", In, &["10.0", "1e2"]),
            vec![ten, hundred],
        ),
        (
            "NUMBER NEQ",
            filter("score", Neq, "7.00"),
            vec![ten, hundred],
        ),
        ("BOOL EQ yes", filter("vip_customer", Eq, "YES"), vec![ten]),
        ("BOOL EQ 0", filter("vip_customer", Eq, "0"), vec![hundred]),
        (
            "DATETIME EQ with an offset",
            filter("replied_at", Eq, "2024-05-01T10:00:00+02:00"),
            vec![ten],
        ),
    ] {
        let found = app.search_ids(one(filter)).await;
        if found != expected {
            wrong.push(format!("{case}: expected {expected:?}, got {found:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

async fn tags_have_a_value_when_there_is_any_tag(app: TestApp) {
    let tagged = app
        .create_ticket(Ticket {
            tags: strings(&["billing"]),
            ..ticket("tagged")
        })
        .await;
    let bare = app.create_ticket(ticket("no tags")).await;

    assert_eq!(
        app.search_ids(one(filter("tags", HasProperty, ""))).await,
        vec![tagged.id]
    );
    assert_eq!(
        app.search_ids(one(filter("tags", NotHasProperty, "")))
            .await,
        vec![bare.id]
    );
}

/// Creates one ticket per summary (STRING property "summary") and returns their ids.
async fn tickets_with_summaries(app: &TestApp, summaries: &[&str]) -> Vec<i64> {
    app.define_property("summary", PropertyType::String).await;
    let mut created = Vec::new();
    for summary in summaries {
        created.push(
            app.create_ticket(Ticket {
                properties: properties(&[("summary", summary)]),
                ..ticket("summarised")
            })
            .await
            .id,
        );
    }
    created
}

async fn contains_token_splits_words_at_line_breaks_and_tabs(app: TestApp) {
    let created = tickets_with_summaries(
        &app,
        &[
            "paper jam\nprinter on floor 3",
            "see:\tprinter",
            "printers\nonly",
        ],
    )
    .await;

    assert_eq!(
        app.search_ids(one(filter("summary", ContainsToken, "printer")))
            .await,
        vec![created[0], created[1]],
        "a line break or a tab separates words like a space"
    );
}

async fn contains_token_splits_words_at_punctuation(app: TestApp) {
    let created = tickets_with_summaries(
        &app,
        &[
            "Printer, again.",
            "the old printer.",
            "(printer) broken",
            "printers, again",
        ],
    )
    .await;

    assert_eq!(
        app.search_ids(one(filter("summary", ContainsToken, "printer")))
            .await,
        vec![created[0], created[1], created[2]],
        "punctuation ends a word"
    );
}

async fn contains_token_ignores_the_case_of_non_ascii_letters(app: TestApp) {
    let created =
        tickets_with_summaries(&app, &["Über alles", "ÉCOLE fermée", "uber driver"]).await;

    assert_eq!(
        app.search_ids(one(filter("summary", ContainsToken, "über")))
            .await,
        vec![created[0]]
    );
    assert_eq!(
        app.search_ids(one(filter("summary", ContainsToken, "école")))
            .await,
        vec![created[1]]
    );
    assert_eq!(
        app.search_ids(one(filter("summary", ContainsToken, "FERMÉE")))
            .await,
        vec![created[1]]
    );
}

async fn groups_are_ored_and_filters_within_a_group_are_anded(app: TestApp) {
    let new_low = app
        .create_ticket(Ticket {
            stage_id: 1,
            priority: Priority::Low.into(),
            ..ticket("new, low")
        })
        .await;
    let waiting_urgent = app
        .create_ticket(Ticket {
            stage_id: 2,
            priority: Priority::Urgent.into(),
            ..ticket("waiting, urgent")
        })
        .await;
    let waiting_high = app
        .create_ticket(Ticket {
            stage_id: 2,
            priority: Priority::High.into(),
            ..ticket("waiting, high")
        })
        .await;
    app.create_ticket(Ticket {
        stage_id: 3,
        priority: Priority::Low.into(),
        ..ticket("waiting on us, low")
    })
    .await;

    let either = search(vec![
        one(filter("stage_id", Eq, "1")),
        one(filter("priority", Eq, "URGENT")),
    ]);
    assert_eq!(
        ids(&app.search_all(either).await),
        vec![new_low.id, waiting_urgent.id]
    );

    let both = search(vec![vec![
        filter("stage_id", Eq, "2"),
        filter("priority", Eq, "HIGH"),
    ]]);
    assert_eq!(ids(&app.search_all(both).await), vec![waiting_high.id]);
}

async fn query_matches_tickets_containing_every_word(app: TestApp) {
    let in_subject = app.create_ticket(ticket("Printer JAM on floor 3")).await;
    let split = app
        .create_ticket(Ticket {
            content: "There is a paper jam again.".into(),
            ..ticket("printer trouble")
        })
        .await;
    app.create_ticket(ticket("printer out of toner")).await;
    app.create_ticket(Ticket {
        content: "traffic jam".into(),
        ..ticket("late today")
    })
    .await;

    let found = app
        .search_all(SearchTicketsRequest {
            query: "printer jam".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(ids(&found), vec![in_subject.id, split.id]);

    let combined = app
        .search_all(SearchTicketsRequest {
            query: "PRINTER".into(),
            filter_groups: vec![FilterGroup {
                filters: one(filter("id", Gt, &in_subject.id.to_string())),
            }],
            ..Default::default()
        })
        .await;
    assert_eq!(
        ids(&combined).len(),
        2,
        "query and filters both apply: {:?}",
        ids(&combined)
    );
}

/// The ids of the tickets a full-text `query` matches.
async fn query_words(app: &TestApp, query: &str) -> Vec<i64> {
    ids(&app
        .search_all(SearchTicketsRequest {
            query: query.into(),
            ..Default::default()
        })
        .await)
}

async fn query_finds_words_inside_urls_paths_and_addresses(app: TestApp) {
    let url = app.create_ticket(ticket("Cannot reach example.com")).await;
    let path = app
        .create_ticket(Ticket {
            content: "The log is in /var/log/printer.log".into(),
            ..ticket("log file")
        })
        .await;
    let email = app
        .create_ticket(Ticket {
            content: "Please reply to ops@acme.io".into(),
            ..ticket("reply address")
        })
        .await;
    let hyphen = app.create_ticket(ticket("e-mail bounces")).await;

    let mut wrong = Vec::new();
    for (query, expected) in [
        ("example", url.id),
        ("printer", path.id),
        ("acme", email.id),
        ("ops", email.id),
        ("mail", hyphen.id),
    ] {
        let found = query_words(&app, query).await;
        if found != vec![expected] {
            wrong.push(format!(
                "query {query:?}: expected [{expected}], got {found:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

async fn query_ignores_the_case_of_non_ascii_letters(app: TestApp) {
    let shouted = app.create_ticket(ticket("ÜBER PROBLEM")).await;
    let quiet = app
        .create_ticket(Ticket {
            content: "über problem".into(),
            ..ticket("lower case")
        })
        .await;
    app.create_ticket(ticket("uber problem")).await;

    assert_eq!(query_words(&app, "über").await, vec![shouted.id, quiet.id]);
    assert_eq!(query_words(&app, "ÜBER").await, vec![shouted.id, quiet.id]);
}

async fn query_follows_updates_of_subject_and_content(app: TestApp) {
    let t = app
        .create_ticket(Ticket {
            content: "toner empty".into(),
            ..ticket("printer broken")
        })
        .await;
    assert_eq!(query_words(&app, "printer toner").await, vec![t.id]);

    app.update_ticket(
        Ticket {
            id: t.id,
            subject: "scanner broken".into(),
            content: "glass cracked".into(),
            ..Default::default()
        },
        &["subject", "content"],
    )
    .await;

    assert_eq!(query_words(&app, "printer").await, Vec::<i64>::new());
    assert_eq!(query_words(&app, "toner").await, Vec::<i64>::new());
    assert_eq!(query_words(&app, "scanner glass").await, vec![t.id]);

    ok(app.tickets().archive_ticket(archive_req(t.id)).await);
    assert_eq!(query_words(&app, "scanner").await, Vec::<i64>::new());
    let archived = app
        .search_all(SearchTicketsRequest {
            query: "scanner".into(),
            show_archived: true,
            ..Default::default()
        })
        .await;
    assert_eq!(ids(&archived), vec![t.id]);
}

async fn query_follows_batch_writes(app: TestApp) {
    let created = ok(app
        .tickets()
        .batch_create_tickets(ticketd::proto::BatchCreateTicketsRequest {
            requests: vec![
                create_ticket_req(ticket("zebra printer")),
                create_ticket_req(ticket("giraffe scanner")),
            ],
            request_id: String::new(),
            ..Default::default()
        })
        .await)
    .tickets;
    assert_eq!(query_words(&app, "zebra").await, vec![created[0].id]);

    ok(app
        .tickets()
        .batch_update_tickets(ticketd::proto::BatchUpdateTicketsRequest {
            requests: vec![update_ticket_req(
                subject_change(created[1].id, "okapi scanner"),
                &["subject"],
            )],
            request_id: String::new(),
            ..Default::default()
        })
        .await);
    assert_eq!(query_words(&app, "okapi").await, vec![created[1].id]);
    assert_eq!(query_words(&app, "giraffe").await, Vec::<i64>::new());
}

// ---------------------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------------------

async fn search_rejects_too_many_groups_or_filters(app: TestApp) {
    let six_groups = search((0..6).map(|_| one(filter("stage_id", Eq, "1"))).collect());
    assert_invalid(
        app.tickets().search_tickets(six_groups).await,
        "filter_groups",
    );

    let twenty_six_filters = search(vec![
        (0..13).map(|_| filter("stage_id", Eq, "1")).collect(),
        (0..13).map(|_| filter("stage_id", Eq, "2")).collect(),
    ]);
    assert_invalid(
        app.tickets().search_tickets(twenty_six_filters).await,
        "filter_groups",
    );

    // The limits themselves are fine.
    let five_groups_25_filters = search(
        (0..5)
            .map(|_| (0..5).map(|_| filter("stage_id", Eq, "1")).collect())
            .collect(),
    );
    ok(app.tickets().search_tickets(five_groups_25_filters).await);
}

async fn search_names_the_invalid_filter_field(app: TestApp) {
    app.define_property("score", PropertyType::Number).await;
    app.define_property("flag", PropertyType::Bool).await;

    let cases: Vec<(Vec<Filter>, &str)> = vec![
        (
            vec![
                filter("stage_id", Eq, "1"),
                filter("no_such_property", Eq, "x"),
            ],
            "filter_groups[0].filters[1].property",
        ),
        (
            vec![filter("stage_id", FilterOperator::Unspecified, "1")],
            "filter_groups[0].filters[0].operator",
        ),
        (
            vec![filter("score", Gt, "abc")],
            "filter_groups[0].filters[0].value",
        ),
        (
            vec![filter("flag", Lt, "true")],
            "filter_groups[0].filters[0].operator",
        ),
        (
            vec![filter("tags", Lt, "vip")],
            "filter_groups[0].filters[0].operator",
        ),
        (
            vec![filter("score", Between, "1")],
            "filter_groups[0].filters[0].high_value",
        ),
        (
            vec![filter_in("assignee_id", In, &[])],
            "filter_groups[0].filters[0].values",
        ),
        (
            vec![filter("create_time", Gt, "yesterday")],
            "filter_groups[0].filters[0].value",
        ),
        (
            vec![filter("priority", Eq, "VERY_HIGH")],
            "filter_groups[0].filters[0].value",
        ),
    ];
    for (filters, field) in cases {
        let result = app.tickets().search_tickets(search(vec![filters])).await;
        assert_invalid(result, field);
    }

    // The index of the group counts too.
    let second_group = search(vec![
        one(filter("stage_id", Eq, "1")),
        one(filter("no_such_property", Eq, "x")),
    ]);
    assert_invalid(
        app.tickets().search_tickets(second_group).await,
        "filter_groups[1].filters[0].property",
    );
}

async fn search_validates_sorts(app: TestApp) {
    let two_sorts = SearchTicketsRequest {
        sorts: vec![sort("id", "ASCENDING"), sort("update_time", "DESCENDING")],
        ..Default::default()
    };
    assert_invalid(app.tickets().search_tickets(two_sorts).await, "sorts");

    let unsupported = SearchTicketsRequest {
        sorts: vec![sort("subject", "ASCENDING")],
        ..Default::default()
    };
    assert_invalid(
        app.tickets().search_tickets(unsupported).await,
        "sorts[0].property",
    );
}

async fn search_rejects_a_page_token_of_another_search(app: TestApp) {
    for _ in 0..3 {
        app.create_ticket(ticket("new")).await;
    }
    let first = SearchTicketsRequest {
        page_size: 1,
        ..search(vec![one(filter("stage_id", Eq, "1"))])
    };
    let token = ok(app.tickets().search_tickets(first.clone()).await).next_page_token;
    assert!(!token.is_empty(), "3 matches at 1 per page");

    let other = SearchTicketsRequest {
        page_size: 1,
        page_token: token.clone(),
        ..search(vec![one(filter("stage_id", Eq, "2"))])
    };
    assert_invalid(app.tickets().search_tickets(other).await, "page_token");

    let with_archived = SearchTicketsRequest {
        page_token: token.clone(),
        show_archived: true,
        ..first.clone()
    };
    assert_invalid(
        app.tickets().search_tickets(with_archived).await,
        "page_token",
    );

    let garbage = SearchTicketsRequest {
        page_token: "garbage".into(),
        ..first.clone()
    };
    assert_invalid(app.tickets().search_tickets(garbage).await, "page_token");

    let same = SearchTicketsRequest {
        page_token: token,
        ..first
    };
    assert_eq!(
        ok(app.tickets().search_tickets(same).await).tickets.len(),
        1,
        "the token works for its own search"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Paging and order
// ---------------------------------------------------------------------------------------------------------------

async fn paging_returns_every_match_exactly_once_and_skips_archived(app: TestApp) {
    let mut bulk = Vec::new();
    for i in 0..35 {
        let kind = if i % 7 == 3 { "other" } else { "bulk" };
        let created = app
            .create_ticket(Ticket {
                ticket_type: kind.into(),
                ..ticket(&format!("{kind} {i}"))
            })
            .await;
        if kind == "bulk" {
            bulk.push(created.id);
        }
    }
    assert_eq!(bulk.len(), 30);
    for id in [bulk[4], bulk[20]] {
        ok(app
            .tickets()
            .archive_ticket(ArchiveTicketRequest {
                id,
                ..Default::default()
            })
            .await);
    }

    let request = SearchTicketsRequest {
        page_size: 7,
        ..search(vec![one(filter("ticket_type", Eq, "bulk"))])
    };
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut paging = request.clone();
    loop {
        pages += 1;
        assert!(pages < 50, "paging does not end");
        let page = ok(app.tickets().search_tickets(paging.clone()).await);
        assert!(page.tickets.len() <= 7, "page_size 7 is respected");
        seen.extend(ids(&page.tickets));
        if page.next_page_token.is_empty() {
            break;
        }
        paging.page_token = page.next_page_token;
    }
    let expected: Vec<i64> = bulk
        .iter()
        .copied()
        .filter(|id| *id != bulk[4] && *id != bulk[20])
        .collect();
    assert_eq!(seen, expected, "every unarchived match once, in id order");
    assert!(pages >= 4, "28 matches at 7 per page take at least 4 pages");

    let with_archived = app
        .search_all(SearchTicketsRequest {
            show_archived: true,
            ..request
        })
        .await;
    let distinct: HashSet<i64> = ids(&with_archived).into_iter().collect();
    assert_eq!(distinct.len(), with_archived.len(), "no duplicates");
    assert_eq!(ids(&with_archived), bulk);
}

async fn search_sorts_by_update_time_descending_and_id_descending(app: TestApp) {
    let mut t = Vec::new();
    for i in 0..5 {
        t.push(app.create_ticket(ticket(&format!("ticket {i}"))).await.id);
    }
    for (id, subject) in [(t[2], "touched first"), (t[0], "touched last")] {
        app.update_ticket(
            Ticket {
                id,
                subject: subject.into(),
                ..Default::default()
            },
            &["subject"],
        )
        .await;
    }
    let all = || search(vec![one(filter("id", Gt, "0"))]);

    let by_update = app
        .search_all(SearchTicketsRequest {
            sorts: vec![sort("update_time", "DESCENDING")],
            page_size: 2,
            ..all()
        })
        .await;
    assert_eq!(ids(&by_update), vec![t[0], t[2], t[4], t[3], t[1]]);

    let by_id_desc = app
        .search_all(SearchTicketsRequest {
            sorts: vec![sort("id", "DESCENDING")],
            page_size: 2,
            ..all()
        })
        .await;
    let mut reversed = t.clone();
    reversed.reverse();
    assert_eq!(ids(&by_id_desc), reversed);

    let default_order = app
        .search_all(SearchTicketsRequest {
            page_size: 2,
            ..all()
        })
        .await;
    assert_eq!(ids(&default_order), t, "id ascending by default");

    let by_create = app
        .search_all(SearchTicketsRequest {
            sorts: vec![sort("create_time", "ASCENDING")],
            page_size: 3,
            ..all()
        })
        .await;
    assert_eq!(ids(&by_create), t);
}
