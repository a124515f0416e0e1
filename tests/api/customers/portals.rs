//! Portal administration (item 9): validation, etags, deletion, and who reads which portal.

use ticketd::proto::{
    CreatePortalRequest, DeletePortalRequest, GetPortalRequest, ListPortalsRequest, Portal,
    PropertyDefinition, PropertyType,
};
use tonic::Code;
use tonic_types::StatusExt;

use super::*;

both_databases!(
    create_portal_validates_the_name_and_the_property_lists,
    update_and_delete_portal_check_the_etag_and_revalidate,
    customers_read_only_their_own_portal,
);

async fn create_portal_validates_the_name_and_the_property_lists(app: TestApp) {
    let world = setup(&app).await;
    app.create_property(PropertyDefinition {
        agent_only: true,
        customer_visible: true,
        ..property_def("sla_tier", PropertyType::String)
    })
    .await;
    app.create_property(PropertyDefinition {
        customer_visible: true,
        ..property_def("nickname", PropertyType::String)
    })
    .await;
    let valid = || portal("Valid");
    let lists = |visible: &[&str], editable: &[&str]| Portal {
        visible_properties: strings(visible),
        editable_properties: strings(editable),
        ..valid()
    };
    let cases = [
        (
            Portal {
                name: String::new(),
                ..valid()
            },
            "portal.name",
            "required",
        ),
        (
            Portal {
                name: "   ".to_owned(),
                ..valid()
            },
            "portal.name",
            "required",
        ),
        (
            Portal {
                name: "x".repeat(201),
                ..valid()
            },
            "portal.name",
            "200",
        ),
        (
            lists(&["stage_id", "no_such_property"], &[]),
            "portal.visible_properties[1]",
            "neither",
        ),
        (
            lists(&["internal_score"], &[]),
            "portal.visible_properties[0]",
            "customer_visible",
        ),
        (
            lists(&["priority", "priority"], &[]),
            "portal.visible_properties[1]",
            "twice",
        ),
        (
            lists(&["stage_id"], &["stage_id", "priority"]),
            "portal.editable_properties[1]",
            "visible_properties",
        ),
        (
            lists(&["requester_id"], &["requester_id"]),
            "portal.editable_properties[0]",
            "never customer-editable",
        ),
        (
            lists(&["stage_id", "assignee_id"], &["stage_id", "assignee_id"]),
            "portal.editable_properties[1]",
            "never customer-editable",
        ),
        (
            lists(&["organization_id"], &["organization_id"]),
            "portal.editable_properties[0]",
            "never customer-editable",
        ),
        (
            lists(&["sla_tier"], &["sla_tier"]),
            "portal.editable_properties[0]",
            "agent_only",
        ),
        (
            lists(&["nickname"], &["nickname"]),
            "portal.editable_properties[0]",
            "customer_editable",
        ),
        (
            Portal {
                ticket_types: strings(&[QUESTION, QUESTION]),
                ..valid()
            },
            "portal.ticket_types[1]",
            "twice",
        ),
        (
            Portal {
                ticket_types: strings(&[""]),
                ..valid()
            },
            "portal.ticket_types[0]",
            "characters",
        ),
    ];
    let mut admin = app.portals();
    for (portal, field, reason) in cases {
        let status = assert_invalid(
            admin.create_portal(create_portal_req(portal.clone())).await,
            field,
        );
        assert!(
            status.message().contains(reason),
            "{field}: the message {:?} should say why ({reason:?}) for {portal:?}",
            status.message()
        );
    }
    assert_invalid(
        admin
            .create_portal(CreatePortalRequest {
                portal: None,
                request_id: String::new(),
            })
            .await,
        "portal",
    );
    let listed = ok(admin.list_portals(ListPortalsRequest::default()).await);
    assert_eq!(
        listed.portals.iter().map(|p| p.id).collect::<Vec<_>>(),
        [world.p1.id, world.p2.id],
        "no invalid portal was created"
    );

    // Valid: subject and content are always editable, an agent_only property may still be visible.
    let created = app
        .create_portal(Portal {
            name: "  Trimmed  ".to_owned(),
            ticket_types: strings(&[QUESTION, INCIDENT]),
            ..lists(
                &["sla_tier", "nickname", "tags"],
                &["subject", "content", "tags"],
            )
        })
        .await;
    assert_eq!(created.name, "Trimmed");
    assert_eq!(
        created.visible_properties,
        strings(&["sla_tier", "nickname", "tags"])
    );
    assert_eq!(
        created.editable_properties,
        strings(&["subject", "content", "tags"])
    );
    assert_eq!(created.ticket_types, strings(&[QUESTION, INCIDENT]));
    assert!(!created.etag.is_empty());
    assert!(created.create_time.is_some() && created.update_time.is_some());
    assert_eq!(
        ok(admin.get_portal(GetPortalRequest { id: created.id }).await),
        created
    );

    // Only admins manage portals.
    for token in [
        agent_token(AGENT),
        world.token(ALICE, Which::P1),
        service_token("svc", &["portals:read"]),
    ] {
        let status = assert_code(
            app.portals_as(&token)
                .create_portal(create_portal_req(valid()))
                .await,
            Code::PermissionDenied,
        );
        assert!(status.message().contains("CreatePortal"));
    }
}

async fn update_and_delete_portal_check_the_etag_and_revalidate(app: TestApp) {
    let world = setup(&app).await;
    let mut admin = app.portals();
    let original = world.p1.clone();
    let renamed = ok(admin
        .update_portal(update_portal_req(
            Portal {
                id: original.id,
                etag: original.etag.clone(),
                name: "P1 renamed".to_owned(),
                ..Default::default()
            },
            &["name"],
        ))
        .await);
    assert_eq!(renamed.name, "P1 renamed");
    assert_ne!(renamed.etag, original.etag);
    assert_eq!(
        Portal {
            name: original.name.clone(),
            etag: original.etag.clone(),
            update_time: original.update_time,
            ..renamed.clone()
        },
        original,
        "only the name (and etag, update time) changed"
    );

    // A stale etag is ABORTED and names the current one.
    let stale = assert_code(
        admin
            .update_portal(update_portal_req(
                Portal {
                    id: original.id,
                    etag: original.etag.clone(),
                    name: "lost update".to_owned(),
                    ..Default::default()
                },
                &["name"],
            ))
            .await,
        Code::Aborted,
    );
    assert_eq!(
        stale
            .get_details_error_info()
            .and_then(|info| info.metadata.get("current_etag").cloned()),
        Some(renamed.etag.clone())
    );

    // The settings after the change are validated like new ones; a refused change stores nothing.
    let invalid = [
        (
            Portal {
                editable_properties: strings(&["priority", "assignee_id"]),
                ..Default::default()
            },
            vec!["editable_properties"],
            "portal.editable_properties[1]",
        ),
        (
            Portal {
                visible_properties: strings(&["stage_id"]),
                ..Default::default()
            },
            vec!["visible_properties"],
            // P1's editable priority and region are no longer visible.
            "portal.editable_properties[0]",
        ),
        (
            Portal {
                visible_properties: strings(&["internal_score"]),
                ..Default::default()
            },
            vec!["visible_properties"],
            "portal.visible_properties[0]",
        ),
        (Portal::default(), vec!["name"], "portal.name"),
    ];
    for (changes, paths, field) in invalid {
        let paths: Vec<&str> = paths;
        assert_invalid(
            admin
                .update_portal(update_portal_req(
                    Portal {
                        id: original.id,
                        ..changes
                    },
                    &paths,
                ))
                .await,
            field,
        );
    }
    for path in ["etag", "id", "no_such_field"] {
        assert_invalid(
            admin
                .update_portal(update_portal_req(
                    Portal {
                        id: original.id,
                        ..Default::default()
                    },
                    &[path],
                ))
                .await,
            "update_mask",
        );
    }
    assert_invalid(
        admin
            .update_portal(update_portal_req(
                Portal {
                    name: "no id".to_owned(),
                    ..Default::default()
                },
                &[],
            ))
            .await,
        "portal.id",
    );
    let missing = world.p2.id + 1_000;
    assert_not_found(
        admin
            .update_portal(update_portal_req(
                Portal {
                    id: missing,
                    name: "ghost".to_owned(),
                    ..Default::default()
                },
                &[],
            ))
            .await,
        "portal",
        missing,
    );
    assert_eq!(
        ok(admin.get_portal(GetPortalRequest { id: original.id }).await),
        renamed,
        "no refused update was stored"
    );

    // A flag set to false needs the mask; without an etag the last write wins.
    let no_org = ok(admin
        .update_portal(update_portal_req(
            Portal {
                id: original.id,
                organization_tickets: false,
                ..Default::default()
            },
            &["organization_tickets"],
        ))
        .await);
    assert!(!no_org.organization_tickets && no_org.requested_tickets);

    // Delete checks the etag too.
    let stale = assert_code(
        admin
            .delete_portal(DeletePortalRequest {
                id: original.id,
                etag: renamed.etag.clone(),
                request_id: String::new(),
            })
            .await,
        Code::Aborted,
    );
    assert!(stale.message().contains("etag"));
    assert_not_found(
        admin
            .delete_portal(DeletePortalRequest {
                id: missing,
                ..Default::default()
            })
            .await,
        "portal",
        missing,
    );
    ok(admin
        .delete_portal(DeletePortalRequest {
            id: original.id,
            etag: no_org.etag.clone(),
            request_id: String::new(),
        })
        .await);
    assert_not_found(
        admin.get_portal(GetPortalRequest { id: original.id }).await,
        "portal",
        original.id,
    );
    let left = ok(admin.list_portals(ListPortalsRequest::default()).await);
    assert_eq!(left.portals, std::slice::from_ref(&world.p2));
}

async fn customers_read_only_their_own_portal(app: TestApp) {
    let world = setup(&app).await;
    let mut alice_p1 = app.portals_as(&world.token(ALICE, Which::P1));
    assert_eq!(
        ok(alice_p1
            .get_portal(GetPortalRequest { id: world.p1.id })
            .await),
        world.p1
    );
    let other = assert_not_found(
        alice_p1
            .get_portal(GetPortalRequest { id: world.p2.id })
            .await,
        "portal",
        world.p2.id,
    );
    let missing = world.p2.id + 1_000;
    let absent = assert_not_found(
        alice_p1.get_portal(GetPortalRequest { id: missing }).await,
        "portal",
        missing,
    );
    assert_same_answer(&other, world.p2.id, &absent, missing, "another portal");
    assert_eq!(
        ok(app
            .portals_as(&world.token(BOB, Which::P2))
            .get_portal(GetPortalRequest { id: world.p2.id })
            .await),
        world.p2
    );
    assert_not_for_customers(
        alice_p1.list_portals(ListPortalsRequest::default()).await,
        "ListPortals",
    );
    // Staff read every portal.
    let mut agent_portals = app.portals_as(&agent_token(AGENT));
    assert_eq!(
        ok(agent_portals
            .get_portal(GetPortalRequest { id: world.p2.id })
            .await),
        world.p2
    );
    assert_eq!(
        ok(agent_portals
            .list_portals(ListPortalsRequest::default())
            .await)
        .portals,
        [world.p1.clone(), world.p2.clone()]
    );
    let status = assert_code(
        agent_portals
            .update_portal(update_portal_req(
                Portal {
                    id: world.p1.id,
                    name: "agents cannot".to_owned(),
                    ..Default::default()
                },
                &[],
            ))
            .await,
        Code::PermissionDenied,
    );
    assert!(status.message().contains("admin"));
    assert_code(
        agent_portals
            .delete_portal(DeletePortalRequest {
                id: world.p1.id,
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
    );
}
