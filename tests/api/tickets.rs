//! TicketService: create, get, list, update (field masks, etags, request ids), archive and restore.

use std::collections::HashSet;

use futures::{StreamExt, stream};
use ticketd::proto::{
    ArchiveTicketRequest, CreateTicketRequest, GetTicketRequest, ListTicketsRequest, Priority,
    PropertyType, Ticket, TicketState, UpdateTicketRequest,
};
use tonic::Code;

use crate::support::*;

both_databases!(
    // Create and get
    creates_and_gets_the_hubspot_example,
    create_defaults_to_the_default_pipeline_and_its_first_stage,
    create_defaults_to_the_lowest_display_order_stage_of_a_pipeline,
    create_trims_the_subject,
    create_requires_a_ticket,
    create_requires_a_subject,
    create_limits_the_subject_to_500_characters,
    create_rejects_an_unknown_pipeline,
    create_rejects_an_unknown_stage,
    create_rejects_a_stage_of_another_pipeline,
    create_rejects_an_unknown_priority,
    create_stores_tags_deduplicated_and_sorted_and_properties_as_given,
    get_of_an_unknown_ticket_is_not_found,
    // Stage state
    moving_to_a_closed_stage_sets_close_time_and_moving_back_clears_it,
    creating_in_a_closed_stage_sets_close_time,
    // Write bookkeeping and etags
    every_write_changes_update_time_and_etag_but_not_create_time,
    update_with_a_stale_etag_is_aborted_and_changes_nothing,
    archive_with_a_stale_etag_is_aborted_and_changes_nothing,
    update_with_a_matching_or_empty_etag_succeeds,
    // Update masks
    update_changes_only_the_masked_fields,
    empty_update_mask_applies_every_field_set_in_the_request,
    update_mask_rejects_unknown_paths,
    update_mask_rejects_output_only_paths,
    masked_property_path_sets_or_removes_one_property,
    masked_empty_values_clear_tags_and_assignee,
    update_of_an_unknown_ticket_is_not_found,
    update_requires_a_ticket_with_an_id,
    update_validates_the_new_values,
    changing_the_pipeline_moves_the_ticket_to_its_first_stage,
    changing_the_pipeline_with_a_stage_of_another_pipeline_is_invalid,
    // Request ids
    create_retried_with_the_same_request_id_creates_once,
    request_id_reused_with_another_body_is_invalid,
    update_retried_with_the_same_request_id_returns_the_first_result,
    request_id_survives_a_restart,
    // Archive and restore
    archived_ticket_leaves_the_list_and_restore_brings_it_back,
    archive_and_restore_refuse_a_ticket_in_the_wrong_state,
    archived_ticket_cannot_be_updated,
    // List
    list_pages_by_50_by_default,
    list_lowers_page_sizes_above_500,
    list_rejects_a_negative_page_size,
    list_orders_by_id_descending,
    list_orders_by_create_time,
    list_orders_by_update_time_descending,
    list_rejects_an_unknown_order_by,
    list_rejects_a_garbage_page_token,
    list_rejects_a_page_token_of_another_query,
    paging_while_tickets_are_inserted_never_repeats_or_skips,
    // Concurrency
    concurrent_read_modify_write_loses_no_update,
);

// ---------------------------------------------------------------------------------------------------------------
// Create and get
// ---------------------------------------------------------------------------------------------------------------

async fn creates_and_gets_the_hubspot_example(app: TestApp) {
    let created = app
        .create_ticket(Ticket {
            subject: "troubleshoot report".into(),
            pipeline_id: 0,
            stage_id: 1,
            priority: Priority::High.into(),
            ..Default::default()
        })
        .await;

    assert!(created.id > 0, "server-assigned id, got {}", created.id);
    assert_eq!(created.subject, "troubleshoot report");
    assert_eq!(created.pipeline_id, 0);
    assert_eq!(created.stage_id, 1);
    assert_eq!(created.priority(), Priority::High);
    assert_eq!(time(&created.create_time), time(&created.update_time));
    assert_eq!(created.close_time, None, "stage 1 is OPEN");
    assert_eq!(created.archive_time, None);
    assert!(!created.archived);
    assert!(!created.etag.is_empty(), "an etag is set on create");

    assert_eq!(app.get_ticket(created.id).await, created);
}

async fn create_defaults_to_the_default_pipeline_and_its_first_stage(app: TestApp) {
    let created = app.create_ticket(ticket("no pipeline, no stage")).await;

    assert_eq!(created.pipeline_id, 0);
    assert_eq!(
        created.stage_id, 1,
        "stage 1 \"New\" is the first stage of pipeline 0"
    );
    assert_eq!(created.close_time, None);
}

async fn create_defaults_to_the_lowest_display_order_stage_of_a_pipeline(app: TestApp) {
    let escalations = app
        .create_pipeline(pipeline(
            "Escalations",
            vec![
                stage("Second", TicketState::Open, 20),
                stage("First", TicketState::Open, 10),
                stage("Third", TicketState::Closed, 30),
            ],
        ))
        .await;
    let first = stage_labelled(&escalations, "First");

    let created = app
        .create_ticket(Ticket {
            pipeline_id: escalations.id,
            ..ticket("escalated")
        })
        .await;

    assert_eq!(created.pipeline_id, escalations.id);
    assert_eq!(
        created.stage_id, first.id,
        "the stage with the lowest display_order"
    );
}

async fn create_trims_the_subject(app: TestApp) {
    let created = app.create_ticket(ticket("  \t printer on fire \n ")).await;

    assert_eq!(created.subject, "printer on fire");
    assert_eq!(app.get_ticket(created.id).await.subject, "printer on fire");
}

async fn create_requires_a_ticket(app: TestApp) {
    let result = app
        .tickets()
        .create_ticket(CreateTicketRequest {
            ticket: None,
            request_id: String::new(),
            associations: Vec::new(),
            ..Default::default()
        })
        .await;

    assert_invalid(result, "ticket");
}

async fn create_requires_a_subject(app: TestApp) {
    for subject in ["", " ", "   \t\n  "] {
        let result = app
            .tickets()
            .create_ticket(create_ticket_req(ticket(subject)))
            .await;
        assert_invalid(result, "ticket.subject");
    }

    let listed = app.list_all_tickets(ListTicketsRequest::default()).await;
    assert!(
        listed.is_empty(),
        "rejected requests create nothing, found {listed:?}"
    );
}

async fn create_limits_the_subject_to_500_characters(app: TestApp) {
    let longest = "x".repeat(500);
    assert_eq!(app.create_ticket(ticket(&longest)).await.subject, longest);

    let result = app
        .tickets()
        .create_ticket(create_ticket_req(ticket(&"x".repeat(501))))
        .await;
    assert_invalid(result, "ticket.subject");
}

async fn create_rejects_an_unknown_pipeline(app: TestApp) {
    let result = app
        .tickets()
        .create_ticket(create_ticket_req(Ticket {
            pipeline_id: 999,
            ..ticket("lost")
        }))
        .await;

    assert_invalid(result, "ticket.pipeline_id");
}

async fn create_rejects_an_unknown_stage(app: TestApp) {
    let result = app
        .tickets()
        .create_ticket(create_ticket_req(Ticket {
            stage_id: 999_999,
            ..ticket("lost")
        }))
        .await;

    assert_invalid(result, "ticket.stage_id");
}

async fn create_rejects_a_stage_of_another_pipeline(app: TestApp) {
    let other = app.create_pipeline(simple_pipeline("Other")).await;
    let foreign_stage = other.stages[0].id;

    let explicit = Ticket {
        pipeline_id: 0,
        stage_id: foreign_stage,
        ..ticket("wrong stage")
    };
    assert_invalid(
        app.tickets()
            .create_ticket(create_ticket_req(explicit))
            .await,
        "ticket.stage_id",
    );

    let implicit_pipeline = Ticket {
        stage_id: foreign_stage,
        ..ticket("wrong stage, default pipeline")
    };
    assert_invalid(
        app.tickets()
            .create_ticket(create_ticket_req(implicit_pipeline))
            .await,
        "ticket.stage_id",
    );
}

async fn create_rejects_an_unknown_priority(app: TestApp) {
    let result = app
        .tickets()
        .create_ticket(create_ticket_req(Ticket {
            priority: 99,
            ..ticket("urgent!!")
        }))
        .await;

    assert_invalid(result, "ticket.priority");
}

async fn create_stores_tags_deduplicated_and_sorted_and_properties_as_given(app: TestApp) {
    for name in ["source", "hs_custom_score", "note"] {
        app.define_property(name, PropertyType::String).await;
    }
    let props = properties(&[
        ("source", "email"),
        ("hs_custom_score", "42"),
        ("note", "Ünïcode, spaces "),
    ]);
    let created = app
        .create_ticket(Ticket {
            tags: strings(&["vip", "billing", "vip", "api", "billing"]),
            properties: props.clone(),
            ..ticket("tagged")
        })
        .await;

    assert_eq!(created.tags, strings(&["api", "billing", "vip"]));
    assert_eq!(created.properties, props);
    let fetched = app.get_ticket(created.id).await;
    assert_eq!(fetched.tags, strings(&["api", "billing", "vip"]));
    assert_eq!(fetched.properties, props);
}

async fn get_of_an_unknown_ticket_is_not_found(app: TestApp) {
    let status = assert_code(
        app.tickets()
            .get_ticket(GetTicketRequest { id: 424_242 })
            .await,
        Code::NotFound,
    );

    assert!(
        status.message().contains("424242"),
        "message {:?} names the id",
        status.message()
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Stage state
// ---------------------------------------------------------------------------------------------------------------

async fn moving_to_a_closed_stage_sets_close_time_and_moving_back_clears_it(app: TestApp) {
    let created = app.create_ticket(ticket("will be closed")).await;
    assert_eq!(created.close_time, None);

    let closed = app
        .update_ticket(stage_change(created.id, 4), &["stage_id"])
        .await;
    assert_eq!(closed.stage_id, 4);
    assert!(closed.close_time.is_some(), "stage 4 \"Closed\" is CLOSED");
    assert_eq!(
        app.get_ticket(created.id).await.close_time,
        closed.close_time
    );

    let reopened = app
        .update_ticket(stage_change(created.id, 2), &["stage_id"])
        .await;
    assert_eq!(reopened.stage_id, 2);
    assert_eq!(reopened.close_time, None, "stage 2 is OPEN again");
    assert_eq!(app.get_ticket(created.id).await.close_time, None);
}

async fn creating_in_a_closed_stage_sets_close_time(app: TestApp) {
    let created = app
        .create_ticket(Ticket {
            stage_id: 4,
            ..ticket("closed on arrival")
        })
        .await;

    assert_eq!(created.stage_id, 4);
    assert!(created.close_time.is_some());
    assert_eq!(
        app.get_ticket(created.id).await.close_time,
        created.close_time
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Write bookkeeping and etags
// ---------------------------------------------------------------------------------------------------------------

async fn every_write_changes_update_time_and_etag_but_not_create_time(app: TestApp) {
    let created = app.create_ticket(ticket("busy ticket")).await;
    let updated = app
        .update_ticket(
            Ticket {
                id: created.id,
                priority: Priority::Low.into(),
                ..Default::default()
            },
            &["priority"],
        )
        .await;
    let archived = ok(app.tickets().archive_ticket(archive_req(created.id)).await);
    let restored = ok(app.tickets().restore_ticket(restore_req(created.id)).await);

    let versions = [&created, &updated, &archived, &restored];
    for pair in versions.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        assert!(
            time(&after.update_time) > time(&before.update_time),
            "update_time must move forward: {:?} then {:?}",
            before.update_time,
            after.update_time
        );
        assert_ne!(after.etag, before.etag);
        assert_eq!(
            after.create_time, created.create_time,
            "create_time never changes"
        );
    }
    let distinct_etags: HashSet<&str> = versions.iter().map(|t| t.etag.as_str()).collect();
    assert_eq!(
        distinct_etags.len(),
        versions.len(),
        "every version has its own etag"
    );
}

async fn update_with_a_stale_etag_is_aborted_and_changes_nothing(app: TestApp) {
    let original = app.create_ticket(ticket("original subject")).await;
    let current = app
        .update_ticket(
            subject_change(original.id, "changed by a colleague"),
            &["subject"],
        )
        .await;

    let stale = Ticket {
        id: original.id,
        subject: "my change".into(),
        etag: original.etag.clone(),
        ..Default::default()
    };
    assert_code(
        app.tickets()
            .update_ticket(update_ticket_req(stale, &["subject"]))
            .await,
        Code::Aborted,
    );

    assert_eq!(
        app.get_ticket(original.id).await,
        current,
        "the aborted update changed nothing"
    );
}

async fn archive_with_a_stale_etag_is_aborted_and_changes_nothing(app: TestApp) {
    let original = app.create_ticket(ticket("to archive")).await;
    let current = app
        .update_ticket(
            Ticket {
                id: original.id,
                priority: Priority::Urgent.into(),
                ..Default::default()
            },
            &["priority"],
        )
        .await;

    let stale = ArchiveTicketRequest {
        id: original.id,
        etag: original.etag.clone(),
        ..Default::default()
    };
    assert_code(app.tickets().archive_ticket(stale).await, Code::Aborted);
    let after = app.get_ticket(original.id).await;
    assert!(!after.archived, "still not archived");
    assert_eq!(after, current);

    let fresh = ArchiveTicketRequest {
        id: original.id,
        etag: current.etag.clone(),
        ..Default::default()
    };
    let archived = ok(app.tickets().archive_ticket(fresh).await);
    assert!(archived.archived, "a matching etag archives");
}

async fn update_with_a_matching_or_empty_etag_succeeds(app: TestApp) {
    let created = app.create_ticket(ticket("first")).await;

    let with_etag = app
        .update_ticket(
            Ticket {
                id: created.id,
                subject: "second".into(),
                etag: created.etag.clone(),
                ..Default::default()
            },
            &["subject"],
        )
        .await;
    assert_eq!(with_etag.subject, "second");

    // `created.etag` is stale by now, but an empty etag means "no check".
    let without_etag = app
        .update_ticket(subject_change(created.id, "third"), &["subject"])
        .await;
    assert_eq!(without_etag.subject, "third");
    assert_eq!(app.get_ticket(created.id).await.subject, "third");
}

// ---------------------------------------------------------------------------------------------------------------
// Update masks
// ---------------------------------------------------------------------------------------------------------------

async fn update_changes_only_the_masked_fields(app: TestApp) {
    let created = app
        .create_ticket(Ticket {
            content: "the body".into(),
            priority: Priority::Low.into(),
            ..ticket("keep this subject")
        })
        .await;

    let updated = app
        .update_ticket(
            Ticket {
                id: created.id,
                subject: "not in the mask".into(),
                priority: Priority::High.into(),
                ..Default::default()
            },
            &["priority"],
        )
        .await;

    assert_eq!(updated.priority(), Priority::High);
    assert_eq!(updated.subject, "keep this subject");
    assert_eq!(
        updated.content, "the body",
        "unmasked fields keep their values even when empty in the request"
    );
    assert_eq!(app.get_ticket(created.id).await, updated);
}

async fn empty_update_mask_applies_every_field_set_in_the_request(app: TestApp) {
    app.define_property("source", PropertyType::String).await;
    let created = app
        .create_ticket(Ticket {
            content: "the body".into(),
            priority: Priority::Low.into(),
            assignee_id: "agent-1".into(),
            ticket_type: "question".into(),
            tags: strings(&["billing"]),
            properties: properties(&[("source", "email")]),
            ..ticket("before")
        })
        .await;

    // No mask at all.
    let updated = app
        .update_ticket(
            Ticket {
                id: created.id,
                subject: "after".into(),
                priority: Priority::Urgent.into(),
                requester_id: "customer-9".into(),
                ..Default::default()
            },
            &[],
        )
        .await;
    assert_eq!(updated.subject, "after");
    assert_eq!(updated.priority(), Priority::Urgent);
    assert_eq!(updated.requester_id, "customer-9");
    assert_eq!(updated.content, "the body");
    assert_eq!(updated.assignee_id, "agent-1");
    assert_eq!(updated.ticket_type, "question");
    assert_eq!(updated.tags, strings(&["billing"]));
    assert_eq!(updated.properties, properties(&[("source", "email")]));
    assert_eq!((updated.pipeline_id, updated.stage_id), (0, 1));

    // A mask with no paths means the same.
    let request = UpdateTicketRequest {
        ticket: Some(Ticket {
            id: created.id,
            content: "new body".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: vec![] }),
        request_id: String::new(),
        ..Default::default()
    };
    let updated = ok(app.tickets().update_ticket(request).await);
    assert_eq!(updated.content, "new body");
    assert_eq!(updated.subject, "after");
    assert_eq!(updated.priority(), Priority::Urgent);
    assert_eq!(app.get_ticket(created.id).await, updated);
}

async fn update_mask_rejects_unknown_paths(app: TestApp) {
    let created = app.create_ticket(ticket("masked")).await;

    for paths in [&["nope"][..], &["subject", "nope"]] {
        let request = update_ticket_req(subject_change(created.id, "changed"), paths);
        assert_invalid(app.tickets().update_ticket(request).await, "update_mask");
    }

    assert_eq!(
        app.get_ticket(created.id).await,
        created,
        "rejected updates change nothing"
    );
}

async fn update_mask_rejects_output_only_paths(app: TestApp) {
    let created = app.create_ticket(ticket("masked")).await;

    for path in ["create_time", "update_time", "id", "etag", "archived"] {
        let request = update_ticket_req(
            Ticket {
                id: created.id,
                ..Default::default()
            },
            &[path],
        );
        let status = assert_code(
            app.tickets().update_ticket(request).await,
            Code::InvalidArgument,
        );
        assert_field_violation(&status, "update_mask");
    }

    assert_eq!(
        app.get_ticket(created.id).await,
        created,
        "rejected updates change nothing"
    );
}

async fn masked_property_path_sets_or_removes_one_property(app: TestApp) {
    for name in ["source", "tier", "region"] {
        app.define_property(name, PropertyType::String).await;
    }
    let created = app
        .create_ticket(Ticket {
            properties: properties(&[("source", "email"), ("tier", "gold")]),
            ..ticket("props")
        })
        .await;

    let changed = app
        .update_ticket(
            property_change(
                created.id,
                &[("tier", "platinum"), ("source", "not in the mask")],
            ),
            &["properties.tier"],
        )
        .await;
    assert_eq!(
        changed.properties,
        properties(&[("source", "email"), ("tier", "platinum")])
    );

    let added = app
        .update_ticket(
            property_change(created.id, &[("region", "eu")]),
            &["properties.region"],
        )
        .await;
    assert_eq!(
        added.properties,
        properties(&[("region", "eu"), ("source", "email"), ("tier", "platinum")])
    );

    // Masked but absent from the request's map: removed.
    let removed = app
        .update_ticket(
            Ticket {
                id: created.id,
                ..Default::default()
            },
            &["properties.tier"],
        )
        .await;
    assert_eq!(
        removed.properties,
        properties(&[("region", "eu"), ("source", "email")])
    );
    assert_eq!(
        app.get_ticket(created.id).await.properties,
        removed.properties
    );
}

async fn masked_empty_values_clear_tags_and_assignee(app: TestApp) {
    let created = app
        .create_ticket(Ticket {
            tags: strings(&["a", "b"]),
            assignee_id: "agent-7".into(),
            ..ticket("to clear")
        })
        .await;

    let untagged = app
        .update_ticket(
            Ticket {
                id: created.id,
                ..Default::default()
            },
            &["tags"],
        )
        .await;
    assert!(
        untagged.tags.is_empty(),
        "tags cleared, got {:?}",
        untagged.tags
    );
    assert_eq!(untagged.assignee_id, "agent-7", "not masked, kept");

    let unassigned = app
        .update_ticket(
            Ticket {
                id: created.id,
                ..Default::default()
            },
            &["assignee_id"],
        )
        .await;
    assert_eq!(unassigned.assignee_id, "");

    let fetched = app.get_ticket(created.id).await;
    assert!(fetched.tags.is_empty());
    assert_eq!(fetched.assignee_id, "");
    assert_eq!(fetched.subject, "to clear");
}

async fn update_of_an_unknown_ticket_is_not_found(app: TestApp) {
    let request = update_ticket_req(subject_change(424_242, "ghost"), &["subject"]);

    let status = assert_code(app.tickets().update_ticket(request).await, Code::NotFound);
    assert!(
        status.message().contains("424242"),
        "message {:?} names the id",
        status.message()
    );
}

async fn update_requires_a_ticket_with_an_id(app: TestApp) {
    let missing = UpdateTicketRequest {
        ticket: None,
        update_mask: mask(&["subject"]),
        request_id: String::new(),
        ..Default::default()
    };
    assert_invalid(app.tickets().update_ticket(missing).await, "ticket");

    let without_id = update_ticket_req(subject_change(0, "which one?"), &["subject"]);
    assert_invalid(app.tickets().update_ticket(without_id).await, "ticket.id");
}

async fn update_validates_the_new_values(app: TestApp) {
    let created = app.create_ticket(ticket("valid")).await;
    let id = created.id;

    let cases = [
        (
            Ticket {
                id,
                subject: "   ".into(),
                ..Default::default()
            },
            "subject",
            "ticket.subject",
        ),
        (
            Ticket {
                id,
                subject: "x".repeat(501),
                ..Default::default()
            },
            "subject",
            "ticket.subject",
        ),
        (
            Ticket {
                id,
                priority: 99,
                ..Default::default()
            },
            "priority",
            "ticket.priority",
        ),
        (
            Ticket {
                id,
                stage_id: 999_999,
                ..Default::default()
            },
            "stage_id",
            "ticket.stage_id",
        ),
        (
            Ticket {
                id,
                pipeline_id: 999,
                ..Default::default()
            },
            "pipeline_id",
            "ticket.pipeline_id",
        ),
    ];
    for (change, path, field) in cases {
        assert_invalid(
            app.tickets()
                .update_ticket(update_ticket_req(change, &[path]))
                .await,
            field,
        );
    }

    assert_eq!(
        app.get_ticket(id).await,
        created,
        "rejected updates change nothing"
    );
}

async fn changing_the_pipeline_moves_the_ticket_to_its_first_stage(app: TestApp) {
    let escalations = app
        .create_pipeline(pipeline(
            "Escalations",
            vec![
                stage("Triage", TicketState::Open, 20),
                stage("Intake", TicketState::Open, 10),
            ],
        ))
        .await;
    let intake = stage_labelled(&escalations, "Intake");
    let created = app
        .create_ticket(Ticket {
            stage_id: 3,
            ..ticket("moving")
        })
        .await;

    let moved = app
        .update_ticket(
            Ticket {
                id: created.id,
                pipeline_id: escalations.id,
                ..Default::default()
            },
            &["pipeline_id"],
        )
        .await;
    assert_eq!(moved.pipeline_id, escalations.id);
    assert_eq!(
        moved.stage_id, intake.id,
        "the new pipeline's first stage by display order"
    );

    let back = app
        .update_ticket(
            Ticket {
                id: created.id,
                pipeline_id: 0,
                stage_id: 4,
                ..Default::default()
            },
            &["pipeline_id", "stage_id"],
        )
        .await;
    assert_eq!((back.pipeline_id, back.stage_id), (0, 4));
    assert!(back.close_time.is_some(), "stage 4 is CLOSED");
}

async fn changing_the_pipeline_with_a_stage_of_another_pipeline_is_invalid(app: TestApp) {
    let other = app.create_pipeline(simple_pipeline("Other")).await;
    let created = app.create_ticket(ticket("stays put")).await;

    let request = update_ticket_req(
        Ticket {
            id: created.id,
            pipeline_id: other.id,
            stage_id: 2,
            ..Default::default()
        },
        &["pipeline_id", "stage_id"],
    );
    assert_invalid(
        app.tickets().update_ticket(request).await,
        "ticket.stage_id",
    );

    let fetched = app.get_ticket(created.id).await;
    assert_eq!((fetched.pipeline_id, fetched.stage_id), (0, 1));
}

// ---------------------------------------------------------------------------------------------------------------
// Request ids
// ---------------------------------------------------------------------------------------------------------------

async fn create_retried_with_the_same_request_id_creates_once(app: TestApp) {
    let request = CreateTicketRequest {
        ticket: Some(ticket("only once")),
        request_id: request_id(),
        associations: Vec::new(),
        ..Default::default()
    };

    let first = ok(app.tickets().create_ticket(request.clone()).await);
    let retried = ok(app.tickets().create_ticket(request).await);

    assert_eq!(retried.id, first.id);
    assert_eq!(retried, first, "a retry returns the first result");
    assert_eq!(
        ids(&app.list_all_tickets(ListTicketsRequest::default()).await),
        vec![first.id]
    );
}

async fn request_id_reused_with_another_body_is_invalid(app: TestApp) {
    let id = request_id();
    let first = ok(app
        .tickets()
        .create_ticket(CreateTicketRequest {
            ticket: Some(ticket("first body")),
            request_id: id.clone(),
            associations: Vec::new(),
            ..Default::default()
        })
        .await);

    let other_body = CreateTicketRequest {
        ticket: Some(ticket("another body")),
        request_id: id,
        associations: Vec::new(),
        ..Default::default()
    };
    assert_invalid(app.tickets().create_ticket(other_body).await, "request_id");

    assert_eq!(
        ids(&app.list_all_tickets(ListTicketsRequest::default()).await),
        vec![first.id]
    );
}

async fn update_retried_with_the_same_request_id_returns_the_first_result(app: TestApp) {
    let created = app.create_ticket(ticket("retried update")).await;
    let raise = UpdateTicketRequest {
        ticket: Some(Ticket {
            id: created.id,
            priority: Priority::High.into(),
            ..Default::default()
        }),
        update_mask: mask(&["priority"]),
        request_id: request_id(),
        ..Default::default()
    };

    let first = ok(app.tickets().update_ticket(raise.clone()).await);
    let lowered = app
        .update_ticket(
            Ticket {
                id: created.id,
                priority: Priority::Low.into(),
                ..Default::default()
            },
            &["priority"],
        )
        .await;
    let retried = ok(app.tickets().update_ticket(raise).await);

    assert_eq!(
        retried.etag, first.etag,
        "the retry returns the first response"
    );
    assert_eq!(retried, first);
    assert_eq!(
        app.get_ticket(created.id).await,
        lowered,
        "the retry was not applied again"
    );
}

async fn request_id_survives_a_restart(app: TestApp) {
    let request = CreateTicketRequest {
        ticket: Some(ticket("before the restart")),
        request_id: request_id(),
        associations: Vec::new(),
        ..Default::default()
    };
    let first = ok(app.tickets().create_ticket(request.clone()).await);

    let app = app.restart().await;
    let retried = ok(app.tickets().create_ticket(request).await);

    assert_eq!(retried.id, first.id);
    assert_eq!(
        ids(&app.list_all_tickets(ListTicketsRequest::default()).await),
        vec![first.id]
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Archive and restore
// ---------------------------------------------------------------------------------------------------------------

async fn archived_ticket_leaves_the_list_and_restore_brings_it_back(app: TestApp) {
    let kept = app.create_ticket(ticket("stays")).await;
    let trashed = app.create_ticket(ticket("goes to the trash")).await;

    let archived = ok(app.tickets().archive_ticket(archive_req(trashed.id)).await);
    assert!(archived.archived);
    assert!(archived.archive_time.is_some());
    assert_eq!(
        ids(&app.list_all_tickets(ListTicketsRequest::default()).await),
        vec![kept.id]
    );
    assert_eq!(
        app.get_ticket(trashed.id).await,
        archived,
        "Get still returns archived tickets"
    );
    let with_archived = ListTicketsRequest {
        show_archived: true,
        ..Default::default()
    };
    assert_eq!(
        sorted(ids(&app.list_all_tickets(with_archived).await)),
        vec![kept.id, trashed.id]
    );

    let restored = ok(app.tickets().restore_ticket(restore_req(trashed.id)).await);
    assert!(!restored.archived);
    assert_eq!(restored.archive_time, None);
    assert_eq!(
        sorted(ids(&app
            .list_all_tickets(ListTicketsRequest::default())
            .await)),
        vec![kept.id, trashed.id]
    );
    assert_eq!(app.get_ticket(trashed.id).await, restored);
}

async fn archive_and_restore_refuse_a_ticket_in_the_wrong_state(app: TestApp) {
    let created = app.create_ticket(ticket("state machine")).await;
    let archive = archive_req(created.id);
    let restore = restore_req(created.id);

    assert_code(
        app.tickets().restore_ticket(restore.clone()).await,
        Code::FailedPrecondition,
    );
    let archived = ok(app.tickets().archive_ticket(archive.clone()).await);
    assert_code(
        app.tickets().archive_ticket(archive).await,
        Code::FailedPrecondition,
    );
    assert_eq!(
        app.get_ticket(created.id).await,
        archived,
        "the refused archive changed nothing"
    );
    ok(app.tickets().restore_ticket(restore).await);

    let unknown = archive_req(424_242);
    assert_code(app.tickets().archive_ticket(unknown).await, Code::NotFound);
    let unknown = restore_req(424_242);
    assert_code(app.tickets().restore_ticket(unknown).await, Code::NotFound);
}

async fn archived_ticket_cannot_be_updated(app: TestApp) {
    let created = app.create_ticket(ticket("frozen")).await;
    let archived = ok(app.tickets().archive_ticket(archive_req(created.id)).await);

    let request = update_ticket_req(subject_change(created.id, "thawed"), &["subject"]);
    assert_code(
        app.tickets().update_ticket(request).await,
        Code::FailedPrecondition,
    );

    assert_eq!(app.get_ticket(created.id).await, archived);
}

// ---------------------------------------------------------------------------------------------------------------
// List
// ---------------------------------------------------------------------------------------------------------------

async fn list_pages_by_50_by_default(app: TestApp) {
    let created = app.create_tickets(60).await;

    let first = ok(app
        .tickets()
        .list_tickets(ListTicketsRequest::default())
        .await);
    assert_eq!(first.tickets.len(), 50);
    assert!(!first.next_page_token.is_empty(), "more to come");

    let second = ok(app
        .tickets()
        .list_tickets(ListTicketsRequest {
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await);
    assert_eq!(second.tickets.len(), 10);
    assert!(second.next_page_token.is_empty(), "last page");

    let listed: Vec<i64> = ids(&first.tickets)
        .into_iter()
        .chain(ids(&second.tickets))
        .collect();
    assert_eq!(sorted(listed), ids(&created));
}

async fn list_lowers_page_sizes_above_500(app: TestApp) {
    let created: Vec<Ticket> = stream::iter(0..501)
        .map(|i| app.create_ticket(ticket(&format!("bulk {i}"))))
        .buffer_unordered(8)
        .collect()
        .await;
    assert_eq!(created.len(), 501);

    let first = ok(app
        .tickets()
        .list_tickets(ListTicketsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await);
    assert_eq!(first.tickets.len(), 500, "page_size 1000 is lowered to 500");
    assert!(!first.next_page_token.is_empty());

    let rest = ok(app
        .tickets()
        .list_tickets(ListTicketsRequest {
            page_size: 1000,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await);
    assert_eq!(rest.tickets.len(), 1);
    assert!(rest.next_page_token.is_empty());
}

async fn list_rejects_a_negative_page_size(app: TestApp) {
    let result = app
        .tickets()
        .list_tickets(ListTicketsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await;

    assert_invalid(result, "page_size");
}

async fn list_orders_by_id_descending(app: TestApp) {
    let created = app.create_tickets(5).await;

    let listed = app
        .list_all_tickets(ListTicketsRequest {
            order_by: "id desc".into(),
            ..Default::default()
        })
        .await;

    let mut expected = ids(&created);
    expected.reverse();
    assert_eq!(ids(&listed), expected);
}

async fn list_orders_by_create_time(app: TestApp) {
    let created = app.create_tickets(5).await;

    let ascending = app
        .list_all_tickets(ListTicketsRequest {
            order_by: "create_time".into(),
            page_size: 2,
            ..Default::default()
        })
        .await;
    assert_eq!(ids(&ascending), ids(&created));

    let descending = app
        .list_all_tickets(ListTicketsRequest {
            order_by: "create_time desc".into(),
            page_size: 2,
            ..Default::default()
        })
        .await;
    let mut expected = ids(&created);
    expected.reverse();
    assert_eq!(ids(&descending), expected);
}

async fn list_orders_by_update_time_descending(app: TestApp) {
    let t = app.create_tickets(5).await;
    app.update_ticket(subject_change(t[2].id, "touched first"), &["subject"])
        .await;
    app.update_ticket(subject_change(t[0].id, "touched last"), &["subject"])
        .await;

    let listed = app
        .list_all_tickets(ListTicketsRequest {
            order_by: "update_time desc".into(),
            page_size: 2,
            ..Default::default()
        })
        .await;

    assert_eq!(
        ids(&listed),
        vec![t[0].id, t[2].id, t[4].id, t[3].id, t[1].id]
    );
}

async fn list_rejects_an_unknown_order_by(app: TestApp) {
    for order_by in ["subject", "id sideways", "id desc, subject"] {
        let result = app
            .tickets()
            .list_tickets(ListTicketsRequest {
                order_by: order_by.into(),
                ..Default::default()
            })
            .await;
        assert_invalid(result, "order_by");
    }
}

async fn list_rejects_a_garbage_page_token(app: TestApp) {
    app.create_tickets(2).await;

    let result = app
        .tickets()
        .list_tickets(ListTicketsRequest {
            page_token: "not-a-real-token".into(),
            ..Default::default()
        })
        .await;

    assert_invalid(result, "page_token");
}

async fn list_rejects_a_page_token_of_another_query(app: TestApp) {
    app.create_tickets(3).await;
    let by_id = ListTicketsRequest {
        page_size: 1,
        order_by: "id".into(),
        ..Default::default()
    };
    let token = ok(app.tickets().list_tickets(by_id.clone()).await).next_page_token;
    assert!(!token.is_empty());

    let other_order = ListTicketsRequest {
        order_by: "id desc".into(),
        page_token: token.clone(),
        ..by_id.clone()
    };
    assert_invalid(app.tickets().list_tickets(other_order).await, "page_token");

    let other_filter = ListTicketsRequest {
        show_archived: true,
        page_token: token.clone(),
        ..by_id.clone()
    };
    assert_invalid(app.tickets().list_tickets(other_filter).await, "page_token");

    let same_query = ListTicketsRequest {
        page_token: token,
        ..by_id
    };
    assert_eq!(
        ok(app.tickets().list_tickets(same_query).await)
            .tickets
            .len(),
        1,
        "the token still works for its query"
    );
}

async fn paging_while_tickets_are_inserted_never_repeats_or_skips(app: TestApp) {
    let existing = ids(&app.create_tickets(30).await);

    for order_by in ["", "id desc", "create_time", "update_time desc"] {
        let mut seen = Vec::new();
        let mut request = ListTicketsRequest {
            page_size: 7,
            order_by: order_by.into(),
            ..Default::default()
        };
        for page_number in 0.. {
            assert!(
                page_number < 100,
                "order_by {order_by:?}: paging does not end"
            );
            let page = ok(app.tickets().list_tickets(request.clone()).await);
            assert!(page.tickets.len() <= 7);
            seen.extend(ids(&page.tickets));
            app.create_ticket(ticket(&format!("inserted while paging by {order_by:?}")))
                .await;
            if page.next_page_token.is_empty() {
                break;
            }
            request.page_token = page.next_page_token;
        }

        let distinct: HashSet<i64> = seen.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            seen.len(),
            "order_by {order_by:?}: an id came twice in {seen:?}"
        );
        let missing: Vec<i64> = existing
            .iter()
            .copied()
            .filter(|id| !distinct.contains(id))
            .collect();
        assert!(
            missing.is_empty(),
            "order_by {order_by:?}: tickets {missing:?} were skipped"
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------------------------

async fn concurrent_read_modify_write_loses_no_update(app: TestApp) {
    const TASKS: usize = 16;
    const INCREMENTS: usize = 50;
    app.define_property("counter", PropertyType::String).await;
    let counter = app
        .create_ticket(Ticket {
            properties: properties(&[("counter", "0")]),
            ..ticket("counter")
        })
        .await;

    let workers: Vec<_> = (0..TASKS)
        .map(|worker| {
            let mut tickets = app.tickets();
            let id = counter.id;
            tokio::spawn(async move {
                for _ in 0..INCREMENTS {
                    loop {
                        let current = match tickets.get_ticket(GetTicketRequest { id }).await {
                            Ok(response) => response.into_inner(),
                            Err(status) => panic!(
                                "worker {worker}: GetTicket returned {:?}: {}",
                                status.code(),
                                status.message()
                            ),
                        };
                        let value: u64 = current.properties["counter"]
                            .parse()
                            .expect("counter is an integer");
                        let next = Ticket {
                            id,
                            etag: current.etag,
                            properties: properties(&[("counter", &(value + 1).to_string())]),
                            ..Default::default()
                        };
                        match tickets
                            .update_ticket(update_ticket_req(next, &["properties.counter"]))
                            .await
                        {
                            Ok(_) => break,
                            Err(status) if status.code() == Code::Aborted => continue,
                            Err(status) => {
                                panic!(
                                    "worker {worker}: UpdateTicket returned {:?}: {}",
                                    status.code(),
                                    status.message()
                                )
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for worker in futures::future::join_all(workers).await {
        if let Err(error) = worker {
            std::panic::resume_unwind(error.into_panic());
        }
    }

    let last = app.get_ticket(counter.id).await;
    assert_eq!(
        last.properties["counter"],
        (TASKS * INCREMENTS).to_string(),
        "no update was lost"
    );
}

/// The ids in ascending order with repeats kept, unlike [`sorted_ids`]: a repeat is what these tests look for.
fn sorted(mut ids: Vec<i64>) -> Vec<i64> {
    ids.sort_unstable();
    ids
}
