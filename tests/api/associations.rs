//! AssociationService: association types (seeded system ones and user labels), links from tickets to other
//! objects and between tickets, and how links behave when a ticket is archived.

use ticketd::proto::{
    Association, AssociationCategory, AssociationType, BatchCreateAssociationsRequest,
    CreateAssociationRequest, CreateTicketRequest, ListAssociationTypesRequest,
    ListAssociationsRequest, TicketEventKind,
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::*;

both_databases!(
    // Types
    system_association_types_are_seeded,
    create_association_type_makes_a_user_type,
    create_association_type_validates_its_fields,
    // Links
    create_ticket_links_with_the_default_system_types,
    create_ticket_with_an_invalid_link_creates_nothing,
    create_association_is_idempotent,
    concurrent_creates_of_one_link_make_one_link,
    concurrent_creates_of_one_type_make_one_type,
    create_association_validates_type_and_ticket,
    create_association_validates_the_object,
    ticket_to_ticket_links_show_the_label_from_each_end,
    ticket_to_ticket_links_need_another_existing_ticket,
    delete_association_removes_the_link,
    list_associations_filters_by_object_type_and_pages,
    batch_create_associations_is_all_or_nothing,
    archived_ticket_keeps_its_links_but_hides_from_the_other_end,
);

/// The association types from one object type to another, as the test admin lists them.
async fn list_types(app: &TestApp, from: &str, to: &str) -> Vec<AssociationType> {
    ok(app
        .associations()
        .list_association_types(ListAssociationTypesRequest {
            from_object_type: from.to_owned(),
            to_object_type: to.to_owned(),
        })
        .await)
    .association_types
}

/// (object_type, object_id) of each link.
fn targets(links: &[Association]) -> Vec<(String, String)> {
    links
        .iter()
        .map(|a| {
            let to = a.to.clone().expect("association.to is set");
            (to.object_type, to.object_id)
        })
        .collect()
}

/// An `(object_type, object_id)` pair, as [`targets`] answers them.
fn target(object_type: &str, object_id: &str) -> (String, String) {
    (object_type.to_owned(), object_id.to_owned())
}

// ---------------------------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------------------------

async fn system_association_types_are_seeded(app: TestApp) {
    for (to, id) in [
        ("company", 26),
        ("contact", 16),
        ("deal", 28),
        ("conversation", 32),
        ("note", 228),
    ] {
        let types = list_types(&app, "ticket", to).await;
        let found = types
            .iter()
            .find(|t| t.id == id)
            .unwrap_or_else(|| panic!("ticket → {to} lists system type {id}, got {types:?}"));
        assert_eq!(found.category(), AssociationCategory::System);
        assert_eq!(found.from_object_type, "ticket");
        assert_eq!(found.to_object_type, to);
        assert_eq!(found.label, "", "unlabelled");
        assert!(
            types
                .iter()
                .all(|t| t.from_object_type == "ticket" && t.to_object_type == to),
            "the filter applies: {types:?}"
        );
    }

    let all = list_types(&app, "", "").await;
    for id in [16, 26, 28, 32, 228] {
        assert!(
            all.iter().any(|t| t.id == id),
            "unfiltered listing has type {id}: {all:?}"
        );
    }
    assert!(
        all.iter()
            .all(|t| t.category() == AssociationCategory::System),
        "only seeded types so far: {all:?}"
    );
}

async fn create_association_type_makes_a_user_type(app: TestApp) {
    let created = ok(app
        .associations()
        .create_association_type(association_type_req(
            "ticket",
            "company",
            "billing contact",
            "",
        ))
        .await);

    assert_eq!(created.category(), AssociationCategory::User);
    assert!(
        created.id >= 1000,
        "user types count from 1000, got {}",
        created.id
    );
    assert_eq!(created.from_object_type, "ticket");
    assert_eq!(created.to_object_type, "company");
    assert_eq!(created.label, "billing contact");

    let listed = list_types(&app, "ticket", "company").await;
    assert!(
        listed.contains(&created),
        "listed with the system types: {listed:?}"
    );
    assert!(listed.iter().any(|t| t.id == 26));

    let duplicate = app
        .associations()
        .create_association_type(association_type_req(
            "ticket",
            "company",
            "billing contact",
            "",
        ))
        .await;
    assert_code(duplicate, Code::AlreadyExists);

    let other_label = ok(app
        .associations()
        .create_association_type(association_type_req("ticket", "company", "reseller", ""))
        .await);
    assert_ne!(other_label.id, created.id);
}

async fn create_association_type_validates_its_fields(app: TestApp) {
    let cases = [
        (
            association_type_req("Ticket", "company", "x", ""),
            "from_object_type",
        ),
        (
            association_type_req("", "company", "x", ""),
            "from_object_type",
        ),
        (
            association_type_req("ticket", "bad type", "x", ""),
            "to_object_type",
        ),
        (
            association_type_req("ticket", "", "x", ""),
            "to_object_type",
        ),
        (association_type_req("ticket", "company", "", ""), "label"),
    ];
    for (request, field) in cases {
        assert_invalid(
            app.associations().create_association_type(request).await,
            field,
        );
    }

    // Neither end is a ticket.
    assert_code(
        app.associations()
            .create_association_type(association_type_req("contact", "company", "employee", ""))
            .await,
        Code::InvalidArgument,
    );

    // Either end may be the ticket.
    let reverse = ok(app
        .associations()
        .create_association_type(association_type_req(
            "company",
            "ticket",
            "escalated by",
            "",
        ))
        .await);
    assert_eq!(reverse.category(), AssociationCategory::User);
}

// ---------------------------------------------------------------------------------------------------------------
// Links
// ---------------------------------------------------------------------------------------------------------------

async fn create_ticket_links_with_the_default_system_types(app: TestApp) {
    let request = CreateTicketRequest {
        ticket: Some(ticket("linked on create")),
        request_id: request_id(),
        associations: vec![link("contact", "201", 0), link("company", "301", 0)],
        ..Default::default()
    };
    let created = ok(app.tickets().create_ticket(request.clone()).await);
    let retried = ok(app.tickets().create_ticket(request).await);
    assert_eq!(retried.id, created.id, "a retry creates nothing");

    let links = app.list_all_associations(created.id, "").await;
    assert_eq!(
        targets(&links),
        vec![target("contact", "201"), target("company", "301")],
        "oldest first"
    );
    let type_ids: Vec<i64> = links.iter().map(|a| a.association_type_id).collect();
    assert_eq!(type_ids, vec![16, 26]);
    assert!(links.iter().all(|a| a.ticket_id == created.id));
    assert!(links.iter().all(|a| a.create_time.is_some()));
    assert_eq!(app.ticket_count().await, 1);
}

async fn create_ticket_with_an_invalid_link_creates_nothing(app: TestApp) {
    let result = app
        .tickets()
        .create_ticket(CreateTicketRequest {
            ticket: Some(ticket("badly linked")),
            request_id: String::new(),
            associations: vec![link("Bad Type", "1", 0)],
            ..Default::default()
        })
        .await;
    assert_invalid(result, "associations[0].to.object_type");

    let result = app
        .tickets()
        .create_ticket(CreateTicketRequest {
            ticket: Some(ticket("badly linked")),
            request_id: String::new(),
            associations: vec![link("contact", "201", 0), link("Bad Type", "1", 0)],
            ..Default::default()
        })
        .await;
    assert_invalid(result, "associations[1].to.object_type");

    assert_eq!(app.ticket_count().await, 0, "no ticket was created");
}

async fn create_association_is_idempotent(app: TestApp) {
    let t = app.create_ticket(ticket("linked twice")).await;

    let first = ok(app
        .associations()
        .create_association(associate(t.id, "contact", "201", 0))
        .await);
    let second = ok(app
        .associations()
        .create_association(associate(t.id, "contact", "201", 16))
        .await);

    assert_eq!(first.ticket_id, t.id);
    assert_eq!(
        first.association_type_id, 16,
        "0 means the default system type"
    );
    assert_eq!(first.to, Some(object("contact", "201")));
    assert_eq!(second, first, "linking again returns the existing link");
    assert_eq!(app.list_all_associations(t.id, "").await, vec![first]);
}

async fn concurrent_creates_of_one_link_make_one_link(app: TestApp) {
    let t = app.create_ticket(ticket("raced link")).await;

    let attempts = (0..8).map(|_| {
        let mut client = app.associations();
        async move {
            client
                .create_association(associate(t.id, "contact", "201", 0))
                .await
        }
    });
    let results = futures::future::join_all(attempts).await;

    let failures: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|status| format!("{:?}: {}", status.code(), status.message()))
        .collect();
    assert!(
        failures.is_empty(),
        "linking is idempotent, also concurrently: {failures:#?}"
    );
    assert_eq!(app.list_all_associations(t.id, "").await.len(), 1);
}

async fn concurrent_creates_of_one_type_make_one_type(app: TestApp) {
    let attempts = (0..8).map(|_| {
        let mut client = app.associations();
        async move {
            client
                .create_association_type(association_type_req("ticket", "contact", "watcher", ""))
                .await
        }
    });
    let results = futures::future::join_all(attempts).await;

    assert_one_create_wins(&results);
    let watchers = list_types(&app, "ticket", "contact")
        .await
        .into_iter()
        .filter(|t| t.label == "watcher")
        .count();
    assert_eq!(watchers, 1);
}

async fn create_association_validates_type_and_ticket(app: TestApp) {
    let t = app.create_ticket(ticket("validated links")).await;

    // 26 is ticket → company, not contact.
    assert_invalid(
        app.associations()
            .create_association(associate(t.id, "contact", "201", 26))
            .await,
        "association.association_type_id",
    );
    // No default type between tickets and invoices.
    assert_invalid(
        app.associations()
            .create_association(associate(t.id, "invoice", "9", 0))
            .await,
        "association.association_type_id",
    );
    // An unknown type id.
    assert_invalid(
        app.associations()
            .create_association(associate(t.id, "contact", "201", 999_999))
            .await,
        "association.association_type_id",
    );
    assert!(app.list_all_associations(t.id, "").await.is_empty());

    assert_code(
        app.associations()
            .create_association(associate(424_242, "contact", "201", 0))
            .await,
        Code::NotFound,
    );
    assert_code(
        app.associations()
            .list_associations(ListAssociationsRequest {
                ticket_id: 424_242,
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
}

async fn create_association_validates_the_object(app: TestApp) {
    let related = ok(app
        .associations()
        .create_association_type(association_type_req(
            "ticket", "ticket", "related", "related",
        ))
        .await);
    let t = app.create_ticket(ticket("validated objects")).await;

    assert_invalid(
        app.associations()
            .create_association(associate(t.id, "contact", "", 0))
            .await,
        "association.to.object_id",
    );
    assert_invalid(
        app.associations()
            .create_association(associate(t.id, "Contact", "201", 0))
            .await,
        "association.to.object_type",
    );
    assert_invalid(
        app.associations()
            .create_association(associate(t.id, "ticket", "not-a-number", related.id))
            .await,
        "association.to.object_id",
    );
    // No spec at all: the violation is on the spec or its missing `to`.
    let status = assert_code(
        app.associations()
            .create_association(CreateAssociationRequest {
                ticket_id: t.id,
                association: None,
                request_id: String::new(),
            })
            .await,
        Code::InvalidArgument,
    );
    let violations = status
        .get_details_bad_request()
        .expect("google.rpc.BadRequest details")
        .field_violations;
    assert!(
        violations
            .iter()
            .any(|v| v.field == "association" || v.field == "association.to"),
        "got {violations:?}"
    );
    assert!(app.list_all_associations(t.id, "").await.is_empty());
}

async fn ticket_to_ticket_links_show_the_label_from_each_end(app: TestApp) {
    let parent_of = ok(app
        .associations()
        .create_association_type(association_type_req("ticket", "ticket", "parent", "child"))
        .await);
    let a = app.create_ticket(ticket("A, the parent")).await;
    let b = app.create_ticket(ticket("B, the child")).await;

    let made = ok(app
        .associations()
        .create_association(associate(a.id, "ticket", &b.id.to_string(), parent_of.id))
        .await);
    assert_eq!(made.label, "parent");

    let from_a = app.list_all_associations(a.id, "").await;
    assert_eq!(targets(&from_a), vec![target("ticket", &b.id.to_string())]);
    assert_eq!(from_a[0].label, "parent");
    assert_eq!(from_a[0].association_type_id, parent_of.id);

    let from_b = app.list_all_associations(b.id, "").await;
    assert_eq!(targets(&from_b), vec![target("ticket", &a.id.to_string())]);
    assert_eq!(from_b[0].ticket_id, b.id);
    assert_eq!(
        from_b[0].label, "child",
        "the other end sees the inverse label"
    );

    // Deleting from A removes both ends.
    ok(app
        .associations()
        .delete_association(unlink(a.id, "ticket", &b.id.to_string(), parent_of.id))
        .await);
    assert!(app.list_all_associations(a.id, "").await.is_empty());
    assert!(app.list_all_associations(b.id, "").await.is_empty());
}

async fn ticket_to_ticket_links_need_another_existing_ticket(app: TestApp) {
    let related = ok(app
        .associations()
        .create_association_type(association_type_req(
            "ticket", "ticket", "related", "related",
        ))
        .await);
    let a = app.create_ticket(ticket("lonely")).await;

    assert_invalid(
        app.associations()
            .create_association(associate(a.id, "ticket", "424242", related.id))
            .await,
        "association.to.object_id",
    );
    assert_invalid(
        app.associations()
            .create_association(associate(a.id, "ticket", &a.id.to_string(), related.id))
            .await,
        "association.to.object_id",
    );
    assert!(app.list_all_associations(a.id, "").await.is_empty());
}

async fn delete_association_removes_the_link(app: TestApp) {
    let t = app.create_ticket(ticket("to unlink")).await;
    ok(app
        .associations()
        .create_association(associate(t.id, "contact", "201", 0))
        .await);
    ok(app
        .associations()
        .create_association(associate(t.id, "company", "301", 0))
        .await);

    ok(app
        .associations()
        .delete_association(unlink(t.id, "contact", "201", 16))
        .await);
    assert_eq!(
        targets(&app.list_all_associations(t.id, "").await),
        vec![target("company", "301")]
    );

    assert_code(
        app.associations()
            .delete_association(unlink(t.id, "contact", "201", 16))
            .await,
        Code::NotFound,
    );
    assert_code(
        app.associations()
            .delete_association(unlink(t.id, "contact", "999", 16))
            .await,
        Code::NotFound,
    );

    // 0 means the default type when deleting too.
    ok(app
        .associations()
        .delete_association(unlink(t.id, "company", "301", 0))
        .await);
    assert!(app.list_all_associations(t.id, "").await.is_empty());

    // The history records both removals.
    assert_eq!(
        kinds(&app.history(t.id).await),
        vec![
            TicketEventKind::Created,
            TicketEventKind::AssociationAdded,
            TicketEventKind::AssociationAdded,
            TicketEventKind::AssociationRemoved,
            TicketEventKind::AssociationRemoved,
        ]
    );
}

async fn list_associations_filters_by_object_type_and_pages(app: TestApp) {
    let t = app.create_ticket(ticket("many links")).await;
    let order = [
        ("contact", "201"),
        ("company", "301"),
        ("contact", "202"),
        ("company", "302"),
        ("contact", "203"),
    ];
    for (object_type, object_id) in order {
        ok(app
            .associations()
            .create_association(associate(t.id, object_type, object_id, 0))
            .await);
    }

    let companies = app.list_all_associations(t.id, "company").await;
    assert_eq!(
        targets(&companies),
        vec![target("company", "301"), target("company", "302")]
    );

    let mut request = ListAssociationsRequest {
        ticket_id: t.id,
        page_size: 2,
        ..Default::default()
    };
    let mut pages = Vec::new();
    for _ in 0..10 {
        let page = ok(app.associations().list_associations(request.clone()).await);
        pages.push(targets(&page.associations));
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![2, 2, 1],
        "5 links at 2 per page: {pages:?}"
    );
    let all: Vec<(String, String)> = pages.into_iter().flatten().collect();
    let expected: Vec<(String, String)> = order.iter().map(|(a, b)| target(a, b)).collect();
    assert_eq!(all, expected, "oldest first, every link once");
}

async fn batch_create_associations_is_all_or_nothing(app: TestApp) {
    let t = app.create_ticket(ticket("batch linked")).await;

    let result = app
        .associations()
        .batch_create_associations(BatchCreateAssociationsRequest {
            requests: vec![
                associate(t.id, "contact", "201", 0),
                associate(t.id, "Bad Type", "1", 0),
                associate(t.id, "company", "301", 0),
            ],
            request_id: String::new(),
        })
        .await;
    let status = assert_code(result, Code::InvalidArgument);
    let violations = status
        .get_details_bad_request()
        .expect("google.rpc.BadRequest details")
        .field_violations;
    assert!(
        violations
            .iter()
            .any(|v| v.field.starts_with("requests[1].")),
        "a violation inside requests[1], got {violations:?}"
    );
    assert!(
        app.list_all_associations(t.id, "").await.is_empty(),
        "nothing was linked"
    );

    let made = ok(app
        .associations()
        .batch_create_associations(BatchCreateAssociationsRequest {
            requests: vec![
                associate(t.id, "contact", "201", 0),
                associate(t.id, "company", "301", 0),
            ],
            request_id: String::new(),
        })
        .await)
    .associations;
    assert_eq!(
        targets(&made),
        vec![target("contact", "201"), target("company", "301")]
    );
    assert_eq!(app.list_all_associations(t.id, "").await.len(), 2);

    let too_many = app
        .associations()
        .batch_create_associations(BatchCreateAssociationsRequest {
            requests: (0..101)
                .map(|i| associate(t.id, "contact", &format!("{}", 1000 + i), 0))
                .collect(),
            request_id: String::new(),
        })
        .await;
    assert_code(too_many, Code::InvalidArgument);
    assert_eq!(app.list_all_associations(t.id, "").await.len(), 2);
}

async fn archived_ticket_keeps_its_links_but_hides_from_the_other_end(app: TestApp) {
    let related = ok(app
        .associations()
        .create_association_type(association_type_req(
            "ticket", "ticket", "related", "related",
        ))
        .await);
    let a = app.create_ticket(ticket("A")).await;
    let b = app.create_ticket(ticket("B")).await;
    ok(app
        .associations()
        .create_association(associate(a.id, "ticket", &b.id.to_string(), related.id))
        .await);
    ok(app
        .associations()
        .create_association(associate(a.id, "contact", "201", 0))
        .await);

    ok(app.tickets().archive_ticket(archive_req(a.id)).await);
    assert!(
        app.list_all_associations(b.id, "").await.is_empty(),
        "B no longer lists the archived A"
    );
    assert_eq!(
        targets(&app.list_all_associations(a.id, "").await),
        vec![
            target("ticket", &b.id.to_string()),
            target("contact", "201")
        ],
        "the archived ticket still lists its links"
    );

    ok(app.tickets().restore_ticket(restore_req(a.id)).await);
    assert_eq!(
        targets(&app.list_all_associations(b.id, "").await),
        vec![target("ticket", &a.id.to_string())],
        "restored: B lists A again"
    );
}
