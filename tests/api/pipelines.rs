//! PipelineService: the seeded pipeline, pipelines and their stages, and how stages act on tickets.

use std::collections::HashSet;

use ticketd::proto::{
    CreatePipelineRequest, CreateStageRequest, DeletePipelineRequest, DeleteStageRequest,
    GetPipelineRequest, ListPipelinesRequest, Pipeline, Stage, Ticket, TicketState,
    UpdatePipelineRequest, UpdateStageRequest,
};
use tonic::Code;

use crate::support::*;

both_databases!(
    seeded_default_pipeline_has_the_hubspot_stages,
    create_pipeline_assigns_ids_and_sorts_stages,
    create_pipeline_validates_label_and_stages,
    list_pipelines_includes_the_default_and_pages_through_all,
    update_pipeline_changes_only_the_masked_fields,
    update_pipeline_with_a_stale_etag_is_aborted,
    update_pipeline_rejects_unknown_paths,
    get_of_an_unknown_pipeline_is_not_found,
    delete_pipeline_is_refused_while_a_ticket_uses_it,
    delete_pipeline_checks_the_etag,
    default_pipeline_cannot_be_deleted,
    create_stage_adds_a_stage_to_a_pipeline,
    create_stage_validates,
    create_stage_refuses_a_duplicate_label_in_the_same_pipeline,
    update_stage_changes_label_display_order_and_state,
    closing_a_stage_closes_its_tickets_and_reopening_reopens_them,
    update_stage_with_a_stale_etag_is_aborted,
    delete_stage_is_refused_while_a_ticket_uses_it,
    last_stage_of_a_pipeline_cannot_be_deleted,
);

// ---------------------------------------------------------------------------------------------------------------
// Pipelines
// ---------------------------------------------------------------------------------------------------------------

async fn seeded_default_pipeline_has_the_hubspot_stages(app: TestApp) {
    let support = app.get_pipeline(0).await;

    assert_eq!(support.id, 0);
    assert_eq!(support.label, "Support Pipeline");
    assert!(!support.etag.is_empty());
    let stages: Vec<(i64, &str, TicketState)> = support
        .stages
        .iter()
        .map(|s| (s.id, s.label.as_str(), s.state()))
        .collect();
    assert_eq!(
        stages,
        vec![
            (1, "New", TicketState::Open),
            (2, "Waiting on contact", TicketState::Open),
            (3, "Waiting on us", TicketState::Open),
            (4, "Closed", TicketState::Closed),
        ]
    );
    assert!(support.stages.iter().all(|s| s.pipeline_id == 0));
}

async fn create_pipeline_assigns_ids_and_sorts_stages(app: TestApp) {
    let billing = app
        .create_pipeline(pipeline(
            "Billing",
            vec![
                stage("Resolved", TicketState::Closed, 3),
                stage("Received", TicketState::Open, 1),
                stage("Investigating", TicketState::Open, 2),
            ],
        ))
        .await;

    assert_ne!(billing.id, 0, "a new id, not the default pipeline's");
    assert_eq!(billing.label, "Billing");
    assert!(!billing.etag.is_empty());
    assert!(billing.create_time.is_some());
    let stages: Vec<(&str, i32, TicketState)> = billing
        .stages
        .iter()
        .map(|s| (s.label.as_str(), s.display_order, s.state()))
        .collect();
    assert_eq!(
        stages,
        vec![
            ("Received", 1, TicketState::Open),
            ("Investigating", 2, TicketState::Open),
            ("Resolved", 3, TicketState::Closed),
        ]
    );
    for s in &billing.stages {
        assert!(s.id > 0, "stage ids are assigned, got {}", s.id);
        assert_eq!(s.pipeline_id, billing.id);
        assert!(!s.etag.is_empty());
    }
    assert_eq!(app.get_pipeline(billing.id).await, billing);

    let onboarding = app.create_pipeline(simple_pipeline("Onboarding")).await;
    assert_ne!(onboarding.id, billing.id);
    let support = app.get_pipeline(0).await;
    let all_stage_ids: Vec<i64> = [&support, &billing, &onboarding]
        .iter()
        .flat_map(|p| p.stages.iter().map(|s| s.id))
        .collect();
    let distinct: HashSet<i64> = all_stage_ids.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        all_stage_ids.len(),
        "stage ids are unique across pipelines: {all_stage_ids:?}"
    );
}

async fn create_pipeline_validates_label_and_stages(app: TestApp) {
    let mut pipelines = app.pipelines();
    let create = |pipeline: Option<Pipeline>| CreatePipelineRequest {
        pipeline,
        request_id: String::new(),
    };

    assert_invalid(pipelines.create_pipeline(create(None)).await, "pipeline");

    let unlabelled = simple_pipeline("");
    assert_invalid(
        pipelines.create_pipeline(create(Some(unlabelled))).await,
        "pipeline.label",
    );

    let stageless = pipeline("No stages", vec![]);
    assert_invalid(
        pipelines.create_pipeline(create(Some(stageless))).await,
        "pipeline.stages",
    );

    let unlabelled_stage = pipeline(
        "Bad stage",
        vec![
            stage("Open", TicketState::Open, 1),
            stage("", TicketState::Closed, 2),
        ],
    );
    assert_invalid(
        pipelines
            .create_pipeline(create(Some(unlabelled_stage)))
            .await,
        "pipeline.stages[1].label",
    );

    let stateless_stage = pipeline(
        "Bad state",
        vec![
            stage("Open", TicketState::Unspecified, 1),
            stage("Done", TicketState::Closed, 2),
        ],
    );
    assert_invalid(
        pipelines
            .create_pipeline(create(Some(stateless_stage)))
            .await,
        "pipeline.stages[0].state",
    );

    let duplicate_labels = pipeline(
        "Twins",
        vec![
            stage("Same", TicketState::Open, 1),
            stage("Same", TicketState::Closed, 2),
        ],
    );
    assert_invalid(
        pipelines
            .create_pipeline(create(Some(duplicate_labels)))
            .await,
        "pipeline.stages[1].label",
    );

    let listed = ok(pipelines
        .list_pipelines(ListPipelinesRequest::default())
        .await);
    assert_eq!(
        pipeline_ids(&listed.pipelines),
        vec![0],
        "rejected requests create nothing"
    );
}

async fn list_pipelines_includes_the_default_and_pages_through_all(app: TestApp) {
    let c = app
        .create_pipeline(Pipeline {
            display_order: 30,
            ..simple_pipeline("C")
        })
        .await;
    let a = app
        .create_pipeline(Pipeline {
            display_order: 10,
            ..simple_pipeline("A")
        })
        .await;
    let b = app
        .create_pipeline(Pipeline {
            display_order: 20,
            ..simple_pipeline("B")
        })
        .await;
    let expected = vec![0, a.id, b.id, c.id];

    let all = ok(app
        .pipelines()
        .list_pipelines(ListPipelinesRequest::default())
        .await);
    assert_eq!(pipeline_ids(&all.pipelines), expected, "by display order");
    assert!(all.next_page_token.is_empty());
    let listed_c = all.pipelines.iter().find(|p| p.id == c.id).unwrap();
    assert_eq!(listed_c, &c, "listed with its stages");

    let mut walked = Vec::new();
    let mut request = ListPipelinesRequest {
        page_size: 1,
        ..Default::default()
    };
    for page_number in 0.. {
        assert!(page_number < 10, "paging does not end");
        let page = ok(app.pipelines().list_pipelines(request.clone()).await);
        assert_eq!(page.pipelines.len(), 1);
        walked.extend(pipeline_ids(&page.pipelines));
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    assert_eq!(walked, expected);

    let negative = ListPipelinesRequest {
        page_size: -5,
        ..Default::default()
    };
    assert_invalid(app.pipelines().list_pipelines(negative).await, "page_size");
    let garbage = ListPipelinesRequest {
        page_token: "garbage".into(),
        ..Default::default()
    };
    assert_invalid(app.pipelines().list_pipelines(garbage).await, "page_token");
}

async fn update_pipeline_changes_only_the_masked_fields(app: TestApp) {
    let created = app
        .create_pipeline(Pipeline {
            display_order: 5,
            ..simple_pipeline("Old label")
        })
        .await;

    let relabelled = ok(app
        .pipelines()
        .update_pipeline(UpdatePipelineRequest {
            pipeline: Some(Pipeline {
                id: created.id,
                label: "New label".into(),
                display_order: 99,
                ..Default::default()
            }),
            update_mask: mask(&["label"]),
            request_id: String::new(),
        })
        .await);
    assert_eq!(relabelled.label, "New label");
    assert_eq!(relabelled.display_order, 5, "not in the mask");
    assert_eq!(relabelled.stages, created.stages);
    assert_eq!(relabelled.create_time, created.create_time);
    assert_ne!(relabelled.etag, created.etag);
    assert_eq!(app.get_pipeline(created.id).await, relabelled);

    // An empty mask applies every field set in the request.
    let reordered = ok(app
        .pipelines()
        .update_pipeline(UpdatePipelineRequest {
            pipeline: Some(Pipeline {
                id: created.id,
                display_order: 7,
                ..Default::default()
            }),
            update_mask: None,
            request_id: String::new(),
        })
        .await);
    assert_eq!(reordered.display_order, 7);
    assert_eq!(reordered.label, "New label");
}

async fn update_pipeline_with_a_stale_etag_is_aborted(app: TestApp) {
    let created = app.create_pipeline(simple_pipeline("Original")).await;
    let rename = |label: &str, etag: &str| UpdatePipelineRequest {
        pipeline: Some(Pipeline {
            id: created.id,
            label: label.into(),
            etag: etag.into(),
            ..Default::default()
        }),
        update_mask: mask(&["label"]),
        request_id: String::new(),
    };
    let current = ok(app
        .pipelines()
        .update_pipeline(rename("Current", &created.etag))
        .await);

    assert_code(
        app.pipelines()
            .update_pipeline(rename("Stale", &created.etag))
            .await,
        Code::Aborted,
    );

    assert_eq!(
        app.get_pipeline(created.id).await,
        current,
        "the aborted update changed nothing"
    );
}

async fn update_pipeline_rejects_unknown_paths(app: TestApp) {
    let created = app.create_pipeline(simple_pipeline("Masked")).await;

    for path in ["nope", "stages", "id", "etag", "create_time"] {
        let request = UpdatePipelineRequest {
            pipeline: Some(Pipeline {
                id: created.id,
                label: "changed".into(),
                ..Default::default()
            }),
            update_mask: mask(&[path]),
            request_id: String::new(),
        };
        assert_invalid(
            app.pipelines().update_pipeline(request).await,
            "update_mask",
        );
    }

    assert_eq!(app.get_pipeline(created.id).await, created);
}

async fn get_of_an_unknown_pipeline_is_not_found(app: TestApp) {
    let status = assert_code(
        app.pipelines()
            .get_pipeline(GetPipelineRequest { id: 424_242 })
            .await,
        Code::NotFound,
    );

    assert!(
        status.message().contains("424242"),
        "message {:?} names the id",
        status.message()
    );
}

async fn delete_pipeline_is_refused_while_a_ticket_uses_it(app: TestApp) {
    let temporary = app.create_pipeline(simple_pipeline("Temporary")).await;
    let blocker = app
        .create_ticket(Ticket {
            pipeline_id: temporary.id,
            ..ticket("in the way")
        })
        .await;
    ok(app.tickets().archive_ticket(archive_req(blocker.id)).await);
    let delete = DeletePipelineRequest {
        id: temporary.id,
        ..Default::default()
    };

    assert_code(
        app.pipelines().delete_pipeline(delete.clone()).await,
        Code::FailedPrecondition,
    );
    assert_eq!(
        app.get_pipeline(temporary.id).await,
        temporary,
        "even an archived ticket keeps the pipeline"
    );

    ok(app.tickets().restore_ticket(restore_req(blocker.id)).await);
    let moved = app
        .update_ticket(
            Ticket {
                id: blocker.id,
                pipeline_id: 0,
                ..Default::default()
            },
            &["pipeline_id"],
        )
        .await;
    assert_eq!((moved.pipeline_id, moved.stage_id), (0, 1));

    ok(app.pipelines().delete_pipeline(delete).await);
    assert_code(
        app.pipelines()
            .get_pipeline(GetPipelineRequest { id: temporary.id })
            .await,
        Code::NotFound,
    );
    let listed = ok(app
        .pipelines()
        .list_pipelines(ListPipelinesRequest::default())
        .await);
    assert_eq!(pipeline_ids(&listed.pipelines), vec![0]);
    let orphan = Ticket {
        pipeline_id: temporary.id,
        ..ticket("into a deleted pipeline")
    };
    assert_invalid(
        app.tickets().create_ticket(create_ticket_req(orphan)).await,
        "ticket.pipeline_id",
    );
}

async fn delete_pipeline_checks_the_etag(app: TestApp) {
    let created = app.create_pipeline(simple_pipeline("Etagged")).await;
    let current = ok(app
        .pipelines()
        .update_pipeline(UpdatePipelineRequest {
            pipeline: Some(Pipeline {
                id: created.id,
                label: "Renamed".into(),
                ..Default::default()
            }),
            update_mask: mask(&["label"]),
            request_id: String::new(),
        })
        .await);

    let stale = DeletePipelineRequest {
        id: created.id,
        etag: created.etag.clone(),
        ..Default::default()
    };
    assert_code(app.pipelines().delete_pipeline(stale).await, Code::Aborted);
    assert_eq!(app.get_pipeline(created.id).await, current, "still there");

    let fresh = DeletePipelineRequest {
        id: created.id,
        etag: current.etag.clone(),
        ..Default::default()
    };
    ok(app.pipelines().delete_pipeline(fresh).await);
    assert_code(
        app.pipelines()
            .get_pipeline(GetPipelineRequest { id: created.id })
            .await,
        Code::NotFound,
    );

    let unknown = DeletePipelineRequest {
        id: 424_242,
        ..Default::default()
    };
    assert_code(
        app.pipelines().delete_pipeline(unknown).await,
        Code::NotFound,
    );
}

async fn default_pipeline_cannot_be_deleted(app: TestApp) {
    let before = app.get_pipeline(0).await;

    let delete = DeletePipelineRequest {
        id: 0,
        ..Default::default()
    };
    assert_code(
        app.pipelines().delete_pipeline(delete).await,
        Code::FailedPrecondition,
    );

    assert_eq!(app.get_pipeline(0).await, before);
}

// ---------------------------------------------------------------------------------------------------------------
// Stages
// ---------------------------------------------------------------------------------------------------------------

async fn create_stage_adds_a_stage_to_a_pipeline(app: TestApp) {
    let ops = app
        .create_pipeline(pipeline(
            "Ops",
            vec![
                stage("Open", TicketState::Open, 10),
                stage("Done", TicketState::Closed, 20),
            ],
        ))
        .await;

    let waiting = ok(app
        .pipelines()
        .create_stage(CreateStageRequest {
            stage: Some(Stage {
                pipeline_id: ops.id,
                ..stage("Waiting", TicketState::Open, 15)
            }),
            request_id: String::new(),
        })
        .await);

    assert!(waiting.id > 0);
    assert_eq!(waiting.pipeline_id, ops.id);
    assert_eq!(waiting.label, "Waiting");
    assert_eq!(waiting.display_order, 15);
    assert_eq!(waiting.state(), TicketState::Open);
    assert!(!waiting.etag.is_empty());

    let after = app.get_pipeline(ops.id).await;
    assert_eq!(stage_labels(&after), vec!["Open", "Waiting", "Done"]);
    assert_ne!(
        after.etag, ops.etag,
        "a stage write changes the pipeline's etag"
    );

    let placed = app
        .create_ticket(Ticket {
            pipeline_id: ops.id,
            stage_id: waiting.id,
            ..ticket("waiting")
        })
        .await;
    assert_eq!(placed.stage_id, waiting.id);
}

async fn create_stage_validates(app: TestApp) {
    let ops = app.create_pipeline(simple_pipeline("Ops")).await;
    let mut pipelines = app.pipelines();
    let create = |stage: Option<Stage>| CreateStageRequest {
        stage,
        request_id: String::new(),
    };

    assert_invalid(pipelines.create_stage(create(None)).await, "stage");

    let unknown_pipeline = Stage {
        pipeline_id: 999,
        ..stage("Anywhere", TicketState::Open, 1)
    };
    assert_invalid(
        pipelines.create_stage(create(Some(unknown_pipeline))).await,
        "stage.pipeline_id",
    );

    let unlabelled = Stage {
        pipeline_id: ops.id,
        ..stage("", TicketState::Open, 1)
    };
    assert_invalid(
        pipelines.create_stage(create(Some(unlabelled))).await,
        "stage.label",
    );

    let stateless = Stage {
        pipeline_id: ops.id,
        ..stage("Limbo", TicketState::Unspecified, 1)
    };
    assert_invalid(
        pipelines.create_stage(create(Some(stateless))).await,
        "stage.state",
    );

    assert_eq!(
        app.get_pipeline(ops.id).await,
        ops,
        "rejected requests change nothing"
    );
}

async fn create_stage_refuses_a_duplicate_label_in_the_same_pipeline(app: TestApp) {
    let ops = app.create_pipeline(simple_pipeline("Ops")).await;
    let other = app
        .create_pipeline(pipeline(
            "Other",
            vec![stage("Intake", TicketState::Open, 1)],
        ))
        .await;
    let create = |pipeline_id: i64| CreateStageRequest {
        stage: Some(Stage {
            pipeline_id,
            ..stage("Open", TicketState::Open, 3)
        }),
        request_id: String::new(),
    };

    assert_code(
        app.pipelines().create_stage(create(ops.id)).await,
        Code::AlreadyExists,
    );
    assert_eq!(app.get_pipeline(ops.id).await, ops);

    let same_label_elsewhere = ok(app.pipelines().create_stage(create(other.id)).await);
    assert_eq!(
        same_label_elsewhere.pipeline_id, other.id,
        "labels are unique per pipeline only"
    );
}

async fn update_stage_changes_label_display_order_and_state(app: TestApp) {
    let ops = app
        .create_pipeline(pipeline(
            "Ops",
            vec![
                stage("Open", TicketState::Open, 10),
                stage("Done", TicketState::Closed, 20),
            ],
        ))
        .await;
    let open = ops.stages[0].clone();

    let renamed = ok(app
        .pipelines()
        .update_stage(UpdateStageRequest {
            stage: Some(Stage {
                id: open.id,
                label: "Triage".into(),
                display_order: 30,
                state: TicketState::Closed.into(),
                ..Default::default()
            }),
            update_mask: mask(&["label"]),
            request_id: String::new(),
        })
        .await);
    assert_eq!(renamed.label, "Triage");
    assert_eq!(renamed.display_order, 10, "not in the mask");
    assert_eq!(renamed.state(), TicketState::Open, "not in the mask");
    assert_ne!(renamed.etag, open.etag);
    let after_rename = app.get_pipeline(ops.id).await;
    assert_ne!(
        after_rename.etag, ops.etag,
        "a stage write changes the pipeline's etag"
    );

    let moved = ok(app
        .pipelines()
        .update_stage(UpdateStageRequest {
            stage: Some(Stage {
                id: open.id,
                display_order: 30,
                ..Default::default()
            }),
            update_mask: mask(&["display_order"]),
            request_id: String::new(),
        })
        .await);
    assert_eq!(moved.display_order, 30);
    assert_eq!(moved.label, "Triage");
    let after_move = app.get_pipeline(ops.id).await;
    assert_eq!(stage_labels(&after_move), vec!["Done", "Triage"]);
    assert_ne!(after_move.etag, after_rename.etag);

    let closed = ok(app
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
    assert_eq!(closed.state(), TicketState::Closed);
    assert_ne!(app.get_pipeline(ops.id).await.etag, after_move.etag);

    let bad_path = UpdateStageRequest {
        stage: Some(Stage {
            id: open.id,
            label: "x".into(),
            ..Default::default()
        }),
        update_mask: mask(&["nope"]),
        request_id: String::new(),
    };
    assert_invalid(app.pipelines().update_stage(bad_path).await, "update_mask");
}

async fn closing_a_stage_closes_its_tickets_and_reopening_reopens_them(app: TestApp) {
    let ops = app
        .create_pipeline(pipeline(
            "Ops",
            vec![
                stage("Open", TicketState::Open, 10),
                stage("Later", TicketState::Open, 15),
                stage("Done", TicketState::Closed, 20),
            ],
        ))
        .await;
    let (open, later) = (ops.stages[0].clone(), ops.stages[1].clone());
    let affected = app
        .create_ticket(Ticket {
            pipeline_id: ops.id,
            stage_id: open.id,
            ..ticket("in Open")
        })
        .await;
    let bystander = app
        .create_ticket(Ticket {
            pipeline_id: ops.id,
            stage_id: later.id,
            ..ticket("in Later")
        })
        .await;
    let set_state = |state: TicketState| UpdateStageRequest {
        stage: Some(Stage {
            id: open.id,
            state: state.into(),
            ..Default::default()
        }),
        update_mask: mask(&["state"]),
        request_id: String::new(),
    };

    ok(app
        .pipelines()
        .update_stage(set_state(TicketState::Closed))
        .await);
    assert!(
        app.get_ticket(affected.id).await.close_time.is_some(),
        "OPEN→CLOSED closes the stage's tickets"
    );
    assert_eq!(
        app.get_ticket(bystander.id).await.close_time,
        None,
        "tickets of other stages are untouched"
    );

    ok(app
        .pipelines()
        .update_stage(set_state(TicketState::Open))
        .await);
    assert_eq!(
        app.get_ticket(affected.id).await.close_time,
        None,
        "CLOSED→OPEN reopens them"
    );
}

async fn update_stage_with_a_stale_etag_is_aborted(app: TestApp) {
    let ops = app.create_pipeline(simple_pipeline("Ops")).await;
    let original = ops.stages[0].clone();
    let rename = |label: &str, etag: &str| UpdateStageRequest {
        stage: Some(Stage {
            id: original.id,
            label: label.into(),
            etag: etag.into(),
            ..Default::default()
        }),
        update_mask: mask(&["label"]),
        request_id: String::new(),
    };
    let current = ok(app
        .pipelines()
        .update_stage(rename("Current", &original.etag))
        .await);

    assert_code(
        app.pipelines()
            .update_stage(rename("Stale", &original.etag))
            .await,
        Code::Aborted,
    );

    let after = app.get_pipeline(ops.id).await;
    assert_eq!(
        after.stages[0], current,
        "the aborted update changed nothing"
    );
}

async fn delete_stage_is_refused_while_a_ticket_uses_it(app: TestApp) {
    let ops = app
        .create_pipeline(pipeline(
            "Ops",
            vec![
                stage("Open", TicketState::Open, 10),
                stage("Done", TicketState::Closed, 20),
            ],
        ))
        .await;
    let (open, done) = (ops.stages[0].clone(), ops.stages[1].clone());
    app.create_ticket(Ticket {
        pipeline_id: ops.id,
        stage_id: open.id,
        ..ticket("in Open")
    })
    .await;

    let in_use = DeleteStageRequest {
        id: open.id,
        ..Default::default()
    };
    assert_code(
        app.pipelines().delete_stage(in_use).await,
        Code::FailedPrecondition,
    );
    assert_eq!(app.get_pipeline(ops.id).await, ops, "nothing deleted");

    ok(app
        .pipelines()
        .delete_stage(DeleteStageRequest {
            id: done.id,
            ..Default::default()
        })
        .await);
    let after = app.get_pipeline(ops.id).await;
    assert_eq!(stage_labels(&after), vec!["Open"]);
    assert_ne!(
        after.etag, ops.etag,
        "a stage write changes the pipeline's etag"
    );
}

async fn last_stage_of_a_pipeline_cannot_be_deleted(app: TestApp) {
    let solo = app
        .create_pipeline(pipeline("Solo", vec![stage("Only", TicketState::Open, 1)]))
        .await;

    let delete = DeleteStageRequest {
        id: solo.stages[0].id,
        ..Default::default()
    };
    assert_code(
        app.pipelines().delete_stage(delete).await,
        Code::FailedPrecondition,
    );

    assert_eq!(app.get_pipeline(solo.id).await, solo);
}

/// The ids of `pipelines`, in their order.
fn pipeline_ids(pipelines: &[Pipeline]) -> Vec<i64> {
    pipelines.iter().map(|p| p.id).collect()
}

/// The labels of a pipeline's stages, in their order.
fn stage_labels(pipeline: &Pipeline) -> Vec<&str> {
    pipeline.stages.iter().map(|s| s.label.as_str()).collect()
}
