//! get, create, update, archive, restore, comment and describe of tickets.

use ticketd::proto::{
    AssociationSpec, CreatePropertyRequest, CreateTicketRequest, GetTicketRequest,
    ListCommentsRequest, ObjectRef, Priority, PropertyDefinition, PropertyType, Ticket,
    property_service_client::PropertyServiceClient,
};

use crate::support::{TestServer, both_databases};

both_databases!(
    create_then_get_tickets_by_name,
    get_ticket_as_json_yaml_table_and_wide,
    filter_order_by_query_and_limit,
    update_sets_named_fields_and_honours_if_match,
    archive_and_restore,
    comment_public_and_internal,
    describe_shows_fields_properties_associations_and_history,
    create_from_a_file,
);

fn ticket(subject: &str) -> Ticket {
    Ticket {
        subject: subject.to_owned(),
        ..Ticket::default()
    }
}

/// The id in a `ticket/<id> <verb>` line.
fn id_in(line: &str, verb: &str) -> i64 {
    line.trim()
        .strip_prefix("ticket/")
        .and_then(|rest| rest.strip_suffix(&format!(" {verb}")))
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("expected `ticket/<id> {verb}`, got {line:?}"))
}

/// The non-empty lines of stdout.
fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .collect()
}

async fn create_then_get_tickets_by_name(server: TestServer) {
    let run = server
        .ctl(&[
            "create",
            "ticket",
            "--subject",
            "printer on fire",
            "--priority",
            "high",
            "--set",
            "assignee_id=agent-7",
            "--set",
            "tags=vip,printer",
        ])
        .await;
    let id = id_in(run.ok(), "created");

    let names = server.ctl(&["get", "tickets", "-o", "name"]).await;
    assert!(
        lines(names.ok()).contains(&format!("ticket/{id}").as_str()),
        "{}",
        names.stdout
    );

    let stored = server
        .tickets()
        .get_ticket(GetTicketRequest { id })
        .await
        .expect("GetTicket")
        .into_inner();
    assert_eq!(stored.subject, "printer on fire");
    assert_eq!(stored.priority, Priority::High as i32);
    assert_eq!(stored.assignee_id, "agent-7");
    assert_eq!(stored.tags, ["printer", "vip"]);
}

async fn get_ticket_as_json_yaml_table_and_wide(server: TestServer) {
    let created = server
        .create_ticket(Ticket {
            priority: Priority::Urgent as i32,
            assignee_id: "agent-9".into(),
            tags: vec!["billing".into()],
            ..ticket("invoice missing")
        })
        .await;
    let id = created.id.to_string();

    let json = server
        .ctl(&["get", "ticket", &id, "-o", "json"])
        .await
        .json();
    assert_eq!(json["subject"], "invoice missing");
    // The proto3 JSON mapping: int64 as a string, enums by name, lowerCamelCase names.
    assert_eq!(json["id"], id.as_str());
    assert_eq!(json["priority"], "PRIORITY_URGENT");
    assert_eq!(json["assigneeId"], "agent-9");
    assert_eq!(json["etag"], created.etag.as_str());

    let list = server.ctl(&["get", "tickets", "-o", "json"]).await.json();
    let items = list.as_array().expect("a list is a JSON array");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["subject"], "invoice missing");

    let yaml = server.ctl(&["get", "ticket", &id, "-o", "yaml"]).await;
    assert!(
        yaml.ok().contains("subject: invoice missing"),
        "{}",
        yaml.stdout
    );
    assert!(
        yaml.ok().contains("priority: PRIORITY_URGENT"),
        "{}",
        yaml.stdout
    );

    let table = server.ctl(&["get", "tickets"]).await;
    let rows = lines(table.ok());
    assert_eq!(rows.len(), 2, "a header and one row: {}", table.stdout);
    let header: Vec<&str> = rows[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "SUBJECT", "PRIORITY", "STAGE", "ASSIGNEE", "AGE"]
    );
    assert!(rows[1].starts_with(&id), "{}", rows[1]);
    for cell in ["invoice missing", "URGENT", "New", "agent-9"] {
        assert!(rows[1].contains(cell), "{cell} in {}", rows[1]);
    }
    // Colour only on a terminal: this stdout is a pipe.
    assert!(!table.stdout.contains('\x1b'));

    let wide = server.ctl(&["get", "tickets", "-o", "wide"]).await;
    let rows = lines(wide.ok());
    for column in ["PIPELINE", "REQUESTER", "TAGS", "UPDATED", "ARCHIVED"] {
        assert!(rows[0].contains(column), "{column} in {}", rows[0]);
    }
    assert!(rows[1].contains("Support Pipeline"), "{}", rows[1]);
    assert!(rows[1].contains("billing"), "{}", rows[1]);
}

async fn filter_order_by_query_and_limit(server: TestServer) {
    let mut ids = Vec::new();
    for (subject, priority, assignee) in [
        ("printer jammed", Priority::High, "a1"),
        ("login broken", Priority::Low, "a2"),
        ("printer out of toner", Priority::Urgent, "a2"),
        ("refund please", Priority::High, "a3"),
    ] {
        let created = server
            .create_ticket(Ticket {
                priority: priority as i32,
                assignee_id: assignee.into(),
                ..ticket(subject)
            })
            .await;
        ids.push(format!("ticket/{}", created.id));
    }
    let names = |run: &crate::support::Run| -> Vec<String> {
        lines(run.ok()).into_iter().map(str::to_owned).collect()
    };

    let high = server
        .ctl(&["get", "tickets", "--filter", "priority=HIGH", "-o", "name"])
        .await;
    assert_eq!(names(&high), [ids[0].clone(), ids[3].clone()]);

    let either = server
        .ctl(&[
            "get",
            "tickets",
            "--filter",
            "assignee_id=a1 OR priority=URGENT",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(names(&either), [ids[0].clone(), ids[2].clone()]);

    let both = server
        .ctl(&[
            "get",
            "tickets",
            "--filter",
            "assignee_id!=a1",
            "--filter",
            "priority=HIGH|URGENT",
            "--order-by",
            "-id",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(names(&both), [ids[3].clone(), ids[2].clone()]);

    let words = server
        .ctl(&["get", "tickets", "--query", "printer", "-o", "name"])
        .await;
    assert_eq!(names(&words), [ids[0].clone(), ids[2].clone()]);

    let descending = server
        .ctl(&[
            "get",
            "tickets",
            "--order-by",
            "id desc",
            "--limit",
            "2",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(names(&descending), [ids[3].clone(), ids[2].clone()]);

    let malformed = server
        .ctl(&["get", "tickets", "--filter", "priority HIGH"])
        .await;
    assert_eq!(malformed.code, 1, "{malformed:?}");
    assert!(
        malformed.stderr.starts_with("error: --filter"),
        "{}",
        malformed.stderr
    );

    let unknown_order = server
        .ctl(&["get", "tickets", "--order-by", "subject"])
        .await;
    assert_eq!(unknown_order.code, 13, "{unknown_order:?}");
    assert!(
        unknown_order
            .stderr
            .starts_with("error: INVALID_ARGUMENT: "),
        "{}",
        unknown_order.stderr
    );
}

async fn update_sets_named_fields_and_honours_if_match(server: TestServer) {
    let created = server
        .create_ticket(Ticket {
            assignee_id: "agent-1".into(),
            ..ticket("slow laptop")
        })
        .await;
    let id = created.id.to_string();
    let run = server
        .ctl(&[
            "update",
            "ticket",
            &id,
            "--set",
            "priority=urgent",
            "--set",
            "subject=very slow laptop",
            "--if-match",
            &created.etag,
        ])
        .await;
    assert_eq!(id_in(run.ok(), "updated"), created.id);
    let stored = server
        .tickets()
        .get_ticket(GetTicketRequest { id: created.id })
        .await
        .expect("GetTicket")
        .into_inner();
    assert_eq!(stored.subject, "very slow laptop");
    assert_eq!(stored.priority, Priority::Urgent as i32);
    // Not named, so not touched.
    assert_eq!(stored.assignee_id, "agent-1");

    let stale = server
        .ctl(&[
            "update",
            "ticket",
            &id,
            "--set",
            "priority=low",
            "--if-match",
            &created.etag,
        ])
        .await;
    assert_eq!(stale.code, 20, "ABORTED exits 10 + 10: {stale:?}");
    assert!(
        stale.stderr.starts_with("error: ABORTED: "),
        "{}",
        stale.stderr
    );

    let json = server
        .ctl(&[
            "update",
            "ticket",
            &id,
            "--set",
            "assignee_id=",
            "-o",
            "json",
        ])
        .await
        .json();
    assert!(json.get("assigneeId").is_none(), "cleared: {json}");
}

async fn archive_and_restore(server: TestServer) {
    let created = server.create_ticket(ticket("old news")).await;
    let id = created.id.to_string();
    let name = format!("ticket/{id}");

    let archived = server.ctl(&["archive", "ticket", &id]).await;
    assert_eq!(id_in(archived.ok(), "archived"), created.id);
    let visible = server.ctl(&["get", "tickets", "-o", "name"]).await;
    assert!(!visible.ok().contains(&name), "{}", visible.stdout);
    let with_archived = server
        .ctl(&["get", "tickets", "--archived", "-o", "name"])
        .await;
    assert!(
        with_archived.ok().contains(&name),
        "{}",
        with_archived.stdout
    );
    let json = server
        .ctl(&["get", "ticket", &id, "-o", "json"])
        .await
        .json();
    assert_eq!(json["archived"], true);

    let restored = server.ctl(&["restore", "ticket", &id]).await;
    assert_eq!(id_in(restored.ok(), "restored"), created.id);
    let visible = server.ctl(&["get", "tickets", "-o", "name"]).await;
    assert!(
        lines(visible.ok()).contains(&name.as_str()),
        "{}",
        visible.stdout
    );
}

async fn comment_public_and_internal(server: TestServer) {
    let created = server.create_ticket(ticket("needs a reply")).await;
    let id = created.id.to_string();
    let public = server.ctl(&["comment", &id, "We are on it"]).await;
    assert!(
        public
            .ok()
            .trim()
            .ends_with(&format!("added to ticket/{id}")),
        "{}",
        public.stdout
    );
    let internal = server
        .ctl(&[
            "comment",
            &id,
            "customer is a VIP",
            "--internal",
            "-o",
            "json",
        ])
        .await
        .json();
    assert_eq!(internal["body"], "customer is a VIP");
    assert_eq!(internal["visibility"], "INTERNAL");

    let comments = server
        .tickets()
        .list_comments(ListCommentsRequest {
            ticket_id: created.id,
            ..ListCommentsRequest::default()
        })
        .await
        .expect("ListComments")
        .into_inner()
        .comments;
    let bodies: Vec<&str> = comments.iter().map(|c| c.body.as_str()).collect();
    assert_eq!(bodies, ["We are on it", "customer is a VIP"]);
}

async fn describe_shows_fields_properties_associations_and_history(server: TestServer) {
    PropertyServiceClient::new(server.channel())
        .create_property(CreatePropertyRequest {
            property: Some(PropertyDefinition {
                name: "hs_region".into(),
                label: "Region".into(),
                r#type: PropertyType::String as i32,
                ..PropertyDefinition::default()
            }),
            ..CreatePropertyRequest::default()
        })
        .await
        .expect("CreateProperty");
    let created = server
        .tickets()
        .create_ticket(CreateTicketRequest {
            ticket: Some(Ticket {
                assignee_id: "agent-3".into(),
                properties: [("hs_region".to_owned(), "emea".to_owned())].into(),
                ..ticket("vpn drops")
            }),
            associations: vec![AssociationSpec {
                to: Some(ObjectRef {
                    object_type: "contact".into(),
                    object_id: "201".into(),
                }),
                association_type_id: 0,
            }],
            ..CreateTicketRequest::default()
        })
        .await
        .expect("CreateTicket")
        .into_inner();
    let id = created.id.to_string();
    server
        .ctl(&["update", "ticket", &id, "--set", "priority=high"])
        .await
        .ok();
    server
        .ctl(&["comment", &id, "rebooted the router"])
        .await
        .ok();

    let described = server.ctl(&["describe", "ticket", &id]).await;
    let text = described.ok();
    for expected in [
        format!("ID:               {id}"),
        "Subject:          vpn drops".to_owned(),
        "Priority:         HIGH".to_owned(),
        "Stage:            New (1)".to_owned(),
        "Assignee:         agent-3".to_owned(),
        "Properties:\n  hs_region=emea".to_owned(),
        "contact/201".to_owned(),
        "History (last 20".to_owned(),
    ] {
        assert!(text.contains(&expected), "{expected:?} in\n{text}");
    }
    let history: Vec<&str> = text
        .lines()
        .skip_while(|line| !line.starts_with("History"))
        .skip(1)
        .collect();
    assert!(history.len() >= 3, "{text}");
    assert!(history[0].contains("CREATED"), "{text}");
    assert!(
        history
            .iter()
            .any(|line| line.contains("UPDATED") && line.contains("priority")),
        "{text}"
    );
    assert!(
        history
            .iter()
            .any(|line| line.contains("COMMENT_ADDED") && line.contains("rebooted the router")),
        "{text}"
    );
}

async fn create_from_a_file(server: TestServer) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(
        dir.path().join("ticket.yaml"),
        "subject: from a file\npriority: PRIORITY_LOW\nrequesterId: cust-1\n",
    )
    .expect("writes");
    let run = server
        .ctl_in(
            dir.path(),
            &[
                "create",
                "ticket",
                "-f",
                "ticket.yaml",
                "--priority",
                "medium",
                "-o",
                "json",
            ],
        )
        .await;
    let json = run.json();
    assert_eq!(json["subject"], "from a file");
    assert_eq!(json["requesterId"], "cust-1");
    // Flags override the file.
    assert_eq!(json["priority"], "PRIORITY_MEDIUM");
}
