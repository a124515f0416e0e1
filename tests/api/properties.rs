//! PropertyService: definitions of custom ticket properties, and how ticket writes are validated and normalised
//! against them.

use ticketd::proto::{
    ArchivePropertyRequest, FilterOperator, GetPropertyRequest, ListPropertiesRequest,
    ListTicketsRequest, PropertyDefinition, PropertyOption, PropertyType, Ticket,
};
use tonic::Code;

use crate::support::*;

both_databases!(
    // Definitions
    create_property_returns_the_normalised_definition,
    create_property_requires_a_lower_snake_name,
    create_property_rejects_a_duplicate_name,
    concurrent_creates_of_one_name_make_one_definition,
    create_property_validates_type_options_default_and_flags,
    get_of_an_unknown_property_is_not_found,
    list_properties_pages_by_name_and_hides_archived_ones,
    // Values on ticket writes
    number_values_are_normalised,
    number_values_keep_every_significant_digit,
    bool_values_are_normalised,
    date_values_must_be_real_dates,
    datetime_values_are_normalised_to_utc,
    enumeration_values_must_be_option_values,
    unknown_property_names_are_invalid,
    empty_value_means_no_value,
    // Required properties
    required_property_gets_its_default_on_create,
    missing_required_properties_are_all_named,
    removing_a_required_value_is_invalid,
    // Update and archive
    update_property_changes_the_label_and_checks_the_etag,
    narrowing_string_to_number_is_refused_while_a_value_does_not_fit,
    racing_writes_of_one_tickets_properties_each_start_from_the_last_commit,
    narrowing_racing_ticket_writes_never_leaves_a_value_that_does_not_fit,
    removing_an_option_in_use_is_refused,
    update_property_rejects_bad_masks,
    update_property_validates_the_new_definition,
    update_property_with_an_empty_mask_applies_the_fields_set,
    update_of_an_unknown_property_is_not_found,
    archived_property_cannot_be_written_but_values_stay,
);

/// An enumeration option `value`, labelled in capitals.
fn option(value: &str) -> PropertyOption {
    PropertyOption {
        label: value.to_uppercase(),
        value: value.to_owned(),
        ..Default::default()
    }
}

/// An optional enumeration property `name` whose options are `values`.
fn enumeration(name: &str, values: &[&str]) -> PropertyDefinition {
    PropertyDefinition {
        options: values.iter().map(|v| option(v)).collect(),
        ..property_def(name, PropertyType::Enumeration)
    }
}

/// Creates a ticket with one property, panicking on failure.
async fn ticket_with(app: &TestApp, name: &str, value: &str) -> Ticket {
    app.create_ticket(Ticket {
        properties: properties(&[(name, value)]),
        ..ticket(&format!("{name} = {value}"))
    })
    .await
}

/// Asserts that creating a ticket with `name = value` is INVALID_ARGUMENT on `ticket.properties.<name>` and that
/// the message quotes the value.
async fn assert_value_refused(app: &TestApp, name: &str, value: &str) {
    let result = app
        .tickets()
        .create_ticket(create_ticket_req(Ticket {
            properties: properties(&[(name, value)]),
            ..ticket("refused value")
        }))
        .await;
    let status = assert_invalid(result, &format!("ticket.properties.{name}"));
    assert!(
        status.message().contains(value),
        "message {:?} quotes the refused value {value:?}",
        status.message()
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Definitions
// ---------------------------------------------------------------------------------------------------------------

async fn create_property_returns_the_normalised_definition(app: TestApp) {
    let created = app
        .create_property(PropertyDefinition {
            label: "Refund amount".into(),
            description: "What we paid back".into(),
            group_name: "billing".into(),
            default_value: "1.50".into(),
            customer_visible: true,
            ..property_def("refund_amount", PropertyType::Number)
        })
        .await;

    assert_eq!(created.name, "refund_amount");
    assert_eq!(created.label, "Refund amount");
    assert_eq!(created.description, "What we paid back");
    assert_eq!(created.group_name, "billing");
    assert_eq!(created.r#type(), PropertyType::Number);
    assert_eq!(created.default_value, "1.5", "the default is normalised");
    assert!(created.customer_visible);
    assert!(!created.archived);
    assert!(!created.etag.is_empty(), "an etag is set on create");
    assert!(created.create_time.is_some());
    assert_eq!(created.archive_time, None);

    let fetched = ok(app
        .properties()
        .get_property(GetPropertyRequest {
            name: "refund_amount".into(),
        })
        .await);
    assert_eq!(fetched, created);
}

async fn create_property_requires_a_lower_snake_name(app: TestApp) {
    let too_long = "a".repeat(101);
    for name in [
        "",
        "Tier",
        "1st_tier",
        "_tier",
        "has space",
        "has-dash",
        "tier!",
        too_long.as_str(),
    ] {
        let result = app
            .properties()
            .create_property(create_property_req(property_def(
                name,
                PropertyType::String,
            )))
            .await;
        assert_invalid(result, "property.name");
    }

    let longest = "a".repeat(100);
    for name in ["x", "tier_2", longest.as_str()] {
        assert_eq!(
            app.define_property(name, PropertyType::String).await.name,
            name
        );
    }
}

async fn create_property_rejects_a_duplicate_name(app: TestApp) {
    app.define_property("tier", PropertyType::String).await;

    let result = app
        .properties()
        .create_property(create_property_req(property_def(
            "tier",
            PropertyType::Number,
        )))
        .await;

    assert_code(result, Code::AlreadyExists);
    let kept = ok(app
        .properties()
        .get_property(GetPropertyRequest {
            name: "tier".into(),
        })
        .await);
    assert_eq!(
        kept.r#type(),
        PropertyType::String,
        "the first definition stays"
    );
}

async fn concurrent_creates_of_one_name_make_one_definition(app: TestApp) {
    let attempts = (0..8).map(|i| {
        let mut client = app.properties();
        async move {
            client
                .create_property(create_property_req(PropertyDefinition {
                    label: format!("Tier {i}"),
                    ..property_def("tier", PropertyType::String)
                }))
                .await
        }
    });
    let results = futures::future::join_all(attempts).await;

    assert_one_create_wins(&results);
}

/// Invalid definitions: (case, definition, field of the violation).
fn invalid_definitions() -> Vec<(&'static str, PropertyDefinition, &'static str)> {
    vec![
        (
            "type unspecified",
            property_def("p", PropertyType::Unspecified),
            "property.type",
        ),
        (
            "enumeration without options",
            property_def("p", PropertyType::Enumeration),
            "property.options",
        ),
        (
            "options on a string",
            PropertyDefinition {
                options: vec![option("a")],
                ..property_def("p", PropertyType::String)
            },
            "property.options",
        ),
        (
            "duplicate option values",
            enumeration("p", &["a", "a"]),
            "property.options[1].value",
        ),
        (
            "non-numeric default of a number",
            PropertyDefinition {
                default_value: "abc".into(),
                ..property_def("p", PropertyType::Number)
            },
            "property.default_value",
        ),
        (
            "default not among the options",
            PropertyDefinition {
                default_value: "c".into(),
                ..enumeration("p", &["a", "b"])
            },
            "property.default_value",
        ),
        (
            "impossible date default",
            PropertyDefinition {
                default_value: "2023-02-29".into(),
                ..property_def("p", PropertyType::Date)
            },
            "property.default_value",
        ),
        (
            "agent only and customer editable",
            PropertyDefinition {
                agent_only: true,
                customer_editable: true,
                ..property_def("p", PropertyType::String)
            },
            "property.customer_editable",
        ),
        (
            "no label",
            PropertyDefinition {
                label: String::new(),
                ..property_def("p", PropertyType::String)
            },
            "property.label",
        ),
    ]
}

async fn create_property_validates_type_options_default_and_flags(app: TestApp) {
    for (case, property, field) in invalid_definitions() {
        let result = app
            .properties()
            .create_property(create_property_req(property))
            .await;
        let status = assert_code(result, Code::InvalidArgument);
        assert!(
            !status.message().is_empty(),
            "{case}: INVALID_ARGUMENT without a message"
        );
        assert_field_violation(&status, field);
    }

    let listed = ok(app
        .properties()
        .list_properties(ListPropertiesRequest {
            show_archived: true,
            ..Default::default()
        })
        .await);
    assert!(
        listed.properties.is_empty(),
        "rejected definitions were not created: {:?}",
        listed.properties
    );
}

async fn get_of_an_unknown_property_is_not_found(app: TestApp) {
    assert_code(
        app.properties()
            .get_property(GetPropertyRequest {
                name: "nothing_here".into(),
            })
            .await,
        Code::NotFound,
    );
}

async fn list_properties_pages_by_name_and_hides_archived_ones(app: TestApp) {
    for name in ["zeta", "alpha", "mid", "beta", "gamma"] {
        app.define_property(name, PropertyType::String).await;
    }
    ok(app
        .properties()
        .archive_property(ArchivePropertyRequest {
            name: "mid".into(),
            ..Default::default()
        })
        .await);

    let list = |show_archived: bool| {
        let app = &app;
        async move {
            let mut request = ListPropertiesRequest {
                page_size: 2,
                show_archived,
                ..Default::default()
            };
            let mut names = Vec::new();
            for _ in 0..20 {
                let page = ok(app.properties().list_properties(request.clone()).await);
                assert!(page.properties.len() <= 2, "page_size 2 is respected");
                names.extend(page.properties.into_iter().map(|p| p.name));
                if page.next_page_token.is_empty() {
                    return names;
                }
                request.page_token = page.next_page_token;
            }
            panic!("ListProperties never ends");
        }
    };

    assert_eq!(
        list(false).await,
        strings(&["alpha", "beta", "gamma", "zeta"])
    );
    assert_eq!(
        list(true).await,
        strings(&["alpha", "beta", "gamma", "mid", "zeta"])
    );

    // Paging is validated like ListTickets'.
    assert_invalid(
        app.properties()
            .list_properties(ListPropertiesRequest {
                page_size: -1,
                ..Default::default()
            })
            .await,
        "page_size",
    );
    assert_invalid(
        app.properties()
            .list_properties(ListPropertiesRequest {
                page_token: "not-a-real-token".into(),
                ..Default::default()
            })
            .await,
        "page_token",
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Values on ticket writes
// ---------------------------------------------------------------------------------------------------------------

async fn number_values_are_normalised(app: TestApp) {
    app.define_property("amount", PropertyType::Number).await;

    for (given, stored) in [
        ("1.50", "1.5"),
        ("1e3", "1000"),
        ("-0", "0"),
        ("42", "42"),
        ("-2.250", "-2.25"),
    ] {
        let created = ticket_with(&app, "amount", given).await;
        assert_eq!(
            created.properties["amount"], stored,
            "{given:?} is stored as {stored:?}"
        );
        assert_eq!(
            app.get_ticket(created.id).await.properties["amount"],
            stored
        );
    }
    assert_value_refused(&app, "amount", "abc").await;

    // Updates are normalised too.
    let created = ticket_with(&app, "amount", "1").await;
    let updated = app
        .update_ticket(
            property_change(created.id, &[("amount", "2.0")]),
            &["properties.amount"],
        )
        .await;
    assert_eq!(updated.properties["amount"], "2");
    let refused = app
        .tickets()
        .update_ticket(update_ticket_req(
            property_change(created.id, &[("amount", "twelve")]),
            &["properties.amount"],
        ))
        .await;
    let status = assert_invalid(refused, "ticket.properties.amount");
    assert!(
        status.message().contains("twelve"),
        "message {:?}",
        status.message()
    );
    assert_eq!(
        app.get_ticket(created.id).await,
        updated,
        "the refused update changed nothing"
    );
}

async fn number_values_keep_every_significant_digit(app: TestApp) {
    app.define_property("amount", PropertyType::Number).await;

    let mut wrong = Vec::new();
    for value in [
        "9007199254740993",
        "12345678901234567890",
        "0.1",
        "1.000000000000000001",
        "123456789.123456789",
    ] {
        let stored = ticket_with(&app, "amount", value).await.properties["amount"].clone();
        if stored != value {
            wrong.push(format!("{value:?} was stored as {stored:?}"));
        }
    }
    assert!(wrong.is_empty(), "a decimal number lost digits: {wrong:#?}");
}

async fn bool_values_are_normalised(app: TestApp) {
    app.define_property("vip", PropertyType::Bool).await;

    for (given, stored) in [
        ("true", "true"),
        ("TRUE", "true"),
        ("yes", "true"),
        ("1", "true"),
        ("false", "false"),
        ("no", "false"),
        ("0", "false"),
    ] {
        let created = ticket_with(&app, "vip", given).await;
        assert_eq!(
            created.properties["vip"], stored,
            "{given:?} is stored as {stored:?}"
        );
    }
    assert_value_refused(&app, "vip", "maybe").await;
}

async fn date_values_must_be_real_dates(app: TestApp) {
    app.define_property("due", PropertyType::Date).await;

    let leap_day = ticket_with(&app, "due", "2024-02-29").await;
    assert_eq!(leap_day.properties["due"], "2024-02-29");
    assert_eq!(
        app.get_ticket(leap_day.id).await.properties["due"],
        "2024-02-29"
    );

    assert_value_refused(&app, "due", "2023-02-29").await;
    assert_value_refused(&app, "due", "tomorrow").await;
}

async fn datetime_values_are_normalised_to_utc(app: TestApp) {
    app.define_property("first_reply_at", PropertyType::Datetime)
        .await;

    let created = ticket_with(&app, "first_reply_at", "2024-05-01T10:00:00+02:00").await;
    assert_eq!(created.properties["first_reply_at"], "2024-05-01T08:00:00Z");
    assert_eq!(
        app.get_ticket(created.id).await.properties["first_reply_at"],
        "2024-05-01T08:00:00Z"
    );

    assert_value_refused(&app, "first_reply_at", "2024-05-01 at ten").await;
}

async fn enumeration_values_must_be_option_values(app: TestApp) {
    app.create_property(PropertyDefinition {
        options: vec![
            option("low"),
            option("high"),
            PropertyOption {
                hidden: true,
                ..option("legacy")
            },
        ],
        ..property_def("impact", PropertyType::Enumeration)
    })
    .await;

    assert_eq!(
        ticket_with(&app, "impact", "high").await.properties["impact"],
        "high"
    );
    assert_eq!(
        ticket_with(&app, "impact", "legacy").await.properties["impact"],
        "legacy",
        "hidden options are still valid values"
    );
    assert_value_refused(&app, "impact", "medium").await;
}

async fn unknown_property_names_are_invalid(app: TestApp) {
    app.define_property("known", PropertyType::String).await;

    let result = app
        .tickets()
        .create_ticket(create_ticket_req(Ticket {
            properties: properties(&[("known", "ok"), ("unknown_prop", "x")]),
            ..ticket("unknown property")
        }))
        .await;
    assert_invalid(result, "ticket.properties.unknown_prop");
    assert!(
        app.list_all_tickets(ListTicketsRequest::default())
            .await
            .is_empty(),
        "nothing was created"
    );

    let created = ticket_with(&app, "known", "ok").await;
    let result = app
        .tickets()
        .update_ticket(update_ticket_req(
            property_change(created.id, &[("unknown_prop", "x")]),
            &["properties.unknown_prop"],
        ))
        .await;
    assert_invalid(result, "ticket.properties.unknown_prop");
    assert_eq!(app.get_ticket(created.id).await, created);
}

async fn empty_value_means_no_value(app: TestApp) {
    app.define_property("note", PropertyType::String).await;
    app.define_property("amount", PropertyType::Number).await;

    let created = app
        .create_ticket(Ticket {
            properties: properties(&[("note", ""), ("amount", "")]),
            ..ticket("empty values")
        })
        .await;
    assert!(
        created.properties.is_empty(),
        "empty values are no values, got {:?}",
        created.properties
    );

    let set = app
        .update_ticket(
            property_change(created.id, &[("note", "hello"), ("amount", "3")]),
            &[],
        )
        .await;
    assert_eq!(
        set.properties,
        properties(&[("amount", "3"), ("note", "hello")])
    );

    let cleared = app
        .update_ticket(
            property_change(created.id, &[("amount", "")]),
            &["properties.amount"],
        )
        .await;
    assert_eq!(cleared.properties, properties(&[("note", "hello")]));
    assert_eq!(
        app.get_ticket(created.id).await.properties,
        cleared.properties
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Required properties
// ---------------------------------------------------------------------------------------------------------------

async fn required_property_gets_its_default_on_create(app: TestApp) {
    app.create_property(PropertyDefinition {
        required: true,
        default_value: "gold".into(),
        ..enumeration("tier", &["gold", "silver"])
    })
    .await;

    let defaulted = app.create_ticket(ticket("no tier given")).await;
    assert_eq!(defaulted.properties, properties(&[("tier", "gold")]));
    assert_eq!(
        app.get_ticket(defaulted.id).await.properties["tier"],
        "gold"
    );

    let explicit = ticket_with(&app, "tier", "silver").await;
    assert_eq!(explicit.properties["tier"], "silver");
}

async fn missing_required_properties_are_all_named(app: TestApp) {
    for name in ["region_code", "severity_level"] {
        app.create_property(PropertyDefinition {
            required: true,
            ..property_def(name, PropertyType::String)
        })
        .await;
    }

    let status = assert_invalid(
        app.tickets()
            .create_ticket(create_ticket_req(ticket("missing both")))
            .await,
        "ticket.properties",
    );
    for name in ["region_code", "severity_level"] {
        assert!(
            status.message().contains(name),
            "message {:?} names the missing property {name}",
            status.message()
        );
    }

    let status = assert_invalid(
        app.tickets()
            .create_ticket(create_ticket_req(Ticket {
                properties: properties(&[("region_code", "eu")]),
                ..ticket("missing one")
            }))
            .await,
        "ticket.properties",
    );
    assert!(
        status.message().contains("severity_level"),
        "message {:?}",
        status.message()
    );
    assert!(
        app.list_all_tickets(ListTicketsRequest::default())
            .await
            .is_empty(),
        "nothing was created"
    );

    let created = app
        .create_ticket(Ticket {
            properties: properties(&[("region_code", "eu"), ("severity_level", "2")]),
            ..ticket("complete")
        })
        .await;
    assert_eq!(created.properties.len(), 2);
}

async fn removing_a_required_value_is_invalid(app: TestApp) {
    app.create_property(PropertyDefinition {
        required: true,
        default_value: "eu".into(),
        ..property_def("region", PropertyType::String)
    })
    .await;
    let created = app.create_ticket(ticket("has a region")).await;
    assert_eq!(created.properties["region"], "eu");

    // Masked but absent from the map.
    let absent = update_ticket_req(
        Ticket {
            id: created.id,
            ..Default::default()
        },
        &["properties.region"],
    );
    assert_invalid(
        app.tickets().update_ticket(absent).await,
        "ticket.properties.region",
    );

    // Masked with an empty value.
    let empty = update_ticket_req(
        property_change(created.id, &[("region", "")]),
        &["properties.region"],
    );
    assert_invalid(
        app.tickets().update_ticket(empty).await,
        "ticket.properties.region",
    );

    assert_eq!(app.get_ticket(created.id).await, created, "nothing changed");

    let changed = app
        .update_ticket(
            property_change(created.id, &[("region", "us")]),
            &["properties.region"],
        )
        .await;
    assert_eq!(
        changed.properties["region"], "us",
        "changing the value is fine"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Update and archive
// ---------------------------------------------------------------------------------------------------------------

async fn update_property_changes_the_label_and_checks_the_etag(app: TestApp) {
    let created = app.define_property("tier", PropertyType::String).await;

    let relabelled = ok(app
        .properties()
        .update_property(update_property_req(
            PropertyDefinition {
                name: "tier".into(),
                label: "Customer tier".into(),
                etag: created.etag.clone(),
                ..Default::default()
            },
            &["label"],
        ))
        .await);
    assert_eq!(relabelled.label, "Customer tier");
    assert_eq!(
        relabelled.r#type(),
        PropertyType::String,
        "not in the mask, kept"
    );
    assert_ne!(relabelled.etag, created.etag, "the etag changes on update");
    assert_eq!(relabelled.create_time, created.create_time);

    let stale = update_property_req(
        PropertyDefinition {
            name: "tier".into(),
            label: "Lost update".into(),
            etag: created.etag.clone(),
            ..Default::default()
        },
        &["label"],
    );
    assert_code(app.properties().update_property(stale).await, Code::Aborted);

    let fetched = ok(app
        .properties()
        .get_property(GetPropertyRequest {
            name: "tier".into(),
        })
        .await);
    assert_eq!(fetched, relabelled, "the aborted update changed nothing");
}

async fn narrowing_string_to_number_is_refused_while_a_value_does_not_fit(app: TestApp) {
    app.define_property("code", PropertyType::String).await;
    let word = ticket_with(&app, "code", "abc").await;
    let number = ticket_with(&app, "code", "1.50").await;
    assert_eq!(
        number.properties["code"], "1.50",
        "strings are stored as given"
    );

    let to_number = || {
        update_property_req(
            PropertyDefinition {
                name: "code".into(),
                r#type: PropertyType::Number.into(),
                ..Default::default()
            },
            &["type"],
        )
    };
    let status = assert_code(
        app.properties().update_property(to_number()).await,
        Code::FailedPrecondition,
    );
    assert!(
        status.message().contains("1 ticket"),
        "message {:?} counts the 1 ticket whose value is not a number",
        status.message()
    );
    let unchanged = ok(app
        .properties()
        .get_property(GetPropertyRequest {
            name: "code".into(),
        })
        .await);
    assert_eq!(unchanged.r#type(), PropertyType::String);

    // Remove the offending value: now every value is a number.
    app.update_ticket(
        Ticket {
            id: word.id,
            ..Default::default()
        },
        &["properties.code"],
    )
    .await;
    let numeric = ok(app.properties().update_property(to_number()).await);
    assert_eq!(numeric.r#type(), PropertyType::Number);
    assert_eq!(
        app.get_ticket(number.id).await.properties["code"],
        "1.5",
        "existing values are rewritten in canonical form"
    );
    assert_eq!(
        app.search_ids(vec![filter("code", FilterOperator::Gt, "1")])
            .await,
        vec![number.id],
        "converted values are searchable as numbers"
    );
    assert_eq!(
        app.search_ids(vec![filter("code", FilterOperator::Eq, "1.5")])
            .await,
        vec![number.id]
    );
    assert_value_refused(&app, "code", "abc").await;

    // Widening back to STRING always works.
    let widened = ok(app
        .properties()
        .update_property(update_property_req(
            PropertyDefinition {
                name: "code".into(),
                r#type: PropertyType::String.into(),
                ..Default::default()
            },
            &["type"],
        ))
        .await);
    assert_eq!(widened.r#type(), PropertyType::String);
    assert_eq!(app.get_ticket(number.id).await.properties["code"], "1.5");
    assert_eq!(
        ticket_with(&app, "code", "abc").await.properties["code"],
        "abc"
    );
}

async fn narrowing_racing_ticket_writes_never_leaves_a_value_that_does_not_fit(app: TestApp) {
    let mut broken = Vec::new();
    for round in 0..10 {
        let name = format!("code_{round}");
        app.define_property(&name, PropertyType::String).await;

        let writers = (0..8).map(|i| {
            let mut tickets = app.tickets();
            let name = name.clone();
            async move {
                tickets
                    .create_ticket(create_ticket_req(Ticket {
                        properties: properties(&[(name.as_str(), "abc")]),
                        ..ticket(&format!("racer {i}"))
                    }))
                    .await
            }
        });
        let mut definitions = app.properties();
        let narrowing = definitions.update_property(update_property_req(
            PropertyDefinition {
                name: name.clone(),
                r#type: PropertyType::Number.into(),
                ..Default::default()
            },
            &["type"],
        ));
        let (written, narrowed) = tokio::join!(futures::future::join_all(writers), narrowing);

        if narrowed.is_ok() {
            for created in written.into_iter().flatten() {
                let id = created.into_inner().id;
                let value = app.get_ticket(id).await.properties.get(&name).cloned();
                if value.as_deref() == Some("abc") {
                    broken.push(format!(
                        "round {round}: ticket {id} keeps \"abc\" under NUMBER"
                    ));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "a type change and ticket writes raced into an invalid value: {broken:#?}"
    );
}

/// Writers that queue for one ticket's lock: each must read the properties its predecessor committed, not those
/// of the moment it started waiting (on PostgreSQL a statement that waits for a row lock re-reads only that row).
async fn racing_writes_of_one_tickets_properties_each_start_from_the_last_commit(app: TestApp) {
    const WRITERS: usize = 8;
    for i in 0..WRITERS {
        app.define_property(&format!("note_{i}"), PropertyType::String)
            .await;
    }
    app.define_property("last_writer", PropertyType::String)
        .await;
    let contended = app.create_ticket(ticket("contended")).await;

    let writers = (0..WRITERS).map(|i| {
        let mut tickets = app.tickets();
        let id = contended.id;
        async move {
            let note = format!("note_{i}");
            let writer = format!("writer {i}");
            tickets
                .update_ticket(update_ticket_req(
                    property_change(id, &[(&note, &writer), ("last_writer", &writer)]),
                    &[&format!("properties.{note}"), "properties.last_writer"],
                ))
                .await
        }
    });
    let mut answers: Vec<Ticket> = futures::future::join_all(writers)
        .await
        .into_iter()
        .map(|answer| answer.expect("every racing write succeeds").into_inner())
        .collect();
    // Commit order is the order of how much each answer holds: the k-th commit saw k - 1 notes before its own.
    answers.sort_by_key(|answer| answer.properties.len());
    let note_of = |answer: &Ticket| {
        let writer = answer.properties["last_writer"].clone();
        (
            format!("note_{}", writer.trim_start_matches("writer ")),
            writer,
        )
    };
    for (position, answer) in answers.iter().enumerate() {
        assert_eq!(
            answer.properties.len(),
            position + 2,
            "commit {} holds its note, the notes before it and last_writer: {:?}",
            position + 1,
            answer.properties
        );
        for earlier in &answers[..=position] {
            let (note, writer) = note_of(earlier);
            assert_eq!(
                answer.properties.get(&note),
                Some(&writer),
                "commit {} lacks {note}: {:?}",
                position + 1,
                answer.properties
            );
        }
    }
    let last = answers.last().expect("answers");
    assert_eq!(
        app.get_ticket(contended.id).await.properties,
        last.properties
    );
}

async fn removing_an_option_in_use_is_refused(app: TestApp) {
    app.create_property(enumeration("impact", &["low", "mid", "high"]))
        .await;
    ticket_with(&app, "impact", "mid").await;
    ticket_with(&app, "impact", "mid").await;
    ticket_with(&app, "impact", "low").await;

    let without = |values: &[&str]| {
        update_property_req(
            PropertyDefinition {
                name: "impact".into(),
                options: values.iter().map(|v| option(v)).collect(),
                ..Default::default()
            },
            &["options"],
        )
    };
    let status = assert_code(
        app.properties()
            .update_property(without(&["low", "high"]))
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        status.message().contains('2'),
        "message {:?} counts the 2 tickets using \"mid\"",
        status.message()
    );
    let unchanged = ok(app
        .properties()
        .get_property(GetPropertyRequest {
            name: "impact".into(),
        })
        .await);
    assert_eq!(unchanged.options.len(), 3);

    let narrowed = ok(app
        .properties()
        .update_property(without(&["low", "mid"]))
        .await);
    let values: Vec<&str> = narrowed.options.iter().map(|o| o.value.as_str()).collect();
    assert_eq!(
        values,
        ["low", "mid"],
        "the unused option \"high\" was removed"
    );
    assert_value_refused(&app, "impact", "high").await;
}

async fn update_property_rejects_bad_masks(app: TestApp) {
    let created = app.define_property("tier", PropertyType::String).await;

    for paths in [
        &["nope"][..],
        &["label", "nope"],
        &["name"],
        &["label", "name"],
    ] {
        let result = app
            .properties()
            .update_property(update_property_req(
                PropertyDefinition {
                    name: "tier".into(),
                    label: "Changed".into(),
                    ..Default::default()
                },
                paths,
            ))
            .await;
        assert_invalid(result, "update_mask");
    }

    let fetched = ok(app
        .properties()
        .get_property(GetPropertyRequest {
            name: "tier".into(),
        })
        .await);
    assert_eq!(fetched, created, "rejected updates change nothing");
}

async fn update_property_validates_the_new_definition(app: TestApp) {
    app.define_property("amount", PropertyType::Number).await;
    app.create_property(enumeration("impact", &["low", "high"]))
        .await;
    app.define_property("note", PropertyType::String).await;

    let cases = [
        (
            PropertyDefinition {
                name: "amount".into(),
                default_value: "abc".into(),
                ..Default::default()
            },
            "default_value",
            "property.default_value",
        ),
        (
            PropertyDefinition {
                name: "impact".into(),
                options: vec![option("low"), option("low")],
                ..Default::default()
            },
            "options",
            "property.options[1].value",
        ),
        (
            PropertyDefinition {
                name: "note".into(),
                r#type: PropertyType::Enumeration.into(),
                ..Default::default()
            },
            "type",
            "property.options",
        ),
        (
            PropertyDefinition {
                name: "note".into(),
                label: String::new(),
                ..Default::default()
            },
            "label",
            "property.label",
        ),
        (
            PropertyDefinition {
                name: "note".into(),
                agent_only: true,
                customer_editable: true,
                ..Default::default()
            },
            "agent_only",
            "property.customer_editable",
        ),
    ];
    for (property, path, field) in cases {
        let mut request = update_property_req(property, &[path]);
        if path == "agent_only" {
            request.update_mask = mask(&["agent_only", "customer_editable"]);
        }
        assert_invalid(app.properties().update_property(request).await, field);
    }
}

async fn update_property_with_an_empty_mask_applies_the_fields_set(app: TestApp) {
    let created = app.define_property("tier", PropertyType::String).await;

    let updated = ok(app
        .properties()
        .update_property(update_property_req(
            PropertyDefinition {
                name: "tier".into(),
                label: "Customer tier".into(),
                description: "How much they pay".into(),
                ..Default::default()
            },
            &[],
        ))
        .await);

    assert_eq!(updated.label, "Customer tier");
    assert_eq!(updated.description, "How much they pay");
    assert_eq!(
        updated.r#type(),
        PropertyType::String,
        "unset fields are kept"
    );
    assert_eq!(updated.create_time, created.create_time);
}

async fn update_of_an_unknown_property_is_not_found(app: TestApp) {
    let result = app
        .properties()
        .update_property(update_property_req(
            PropertyDefinition {
                name: "ghost".into(),
                label: "Ghost".into(),
                ..Default::default()
            },
            &["label"],
        ))
        .await;

    assert_code(result, Code::NotFound);
}

async fn archived_property_cannot_be_written_but_values_stay(app: TestApp) {
    let created = app
        .define_property("legacy_code", PropertyType::String)
        .await;
    let holder = ticket_with(&app, "legacy_code", "X-1").await;

    let archived = ok(app
        .properties()
        .archive_property(ArchivePropertyRequest {
            name: "legacy_code".into(),
            etag: created.etag.clone(),
            request_id: String::new(),
        })
        .await);
    assert!(archived.archived);
    assert!(archived.archive_time.is_some());
    let fetched = ok(app
        .properties()
        .get_property(GetPropertyRequest {
            name: "legacy_code".into(),
        })
        .await);
    assert!(fetched.archived, "Get returns archived definitions");

    // New writes of it are refused.
    let result = app
        .tickets()
        .create_ticket(create_ticket_req(Ticket {
            properties: properties(&[("legacy_code", "X-2")]),
            ..ticket("new value of an archived property")
        }))
        .await;
    assert_invalid(result, "ticket.properties.legacy_code");
    let result = app
        .tickets()
        .update_ticket(update_ticket_req(
            property_change(holder.id, &[("legacy_code", "X-3")]),
            &["properties.legacy_code"],
        ))
        .await;
    assert_invalid(result, "ticket.properties.legacy_code");

    // Existing values stay, also through other updates.
    assert_eq!(
        app.get_ticket(holder.id).await.properties["legacy_code"],
        "X-1"
    );
    let touched = app
        .update_ticket(subject_change(holder.id, "still editable"), &["subject"])
        .await;
    assert_eq!(touched.properties["legacy_code"], "X-1");

    // Archiving twice is refused.
    assert_code(
        app.properties()
            .archive_property(ArchivePropertyRequest {
                name: "legacy_code".into(),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
    );
    // An archived property is out of the default listing.
    let listed = ok(app
        .properties()
        .list_properties(ListPropertiesRequest::default())
        .await);
    assert!(listed.properties.is_empty(), "got {:?}", listed.properties);
}
