//! AgentService: the directory of the people tickets are assigned to, as an admin manages it and as staff read
//! it.

use futures::future::join_all;
use ticketd::proto::{
    ActiveFilter, Agent, CreateAgentRequest, DeactivateAgentRequest, GetAgentRequest,
    ListAgentsRequest,
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::*;

both_databases!(
    creates_gets_and_lists_agents_page_by_page,
    lists_by_email_in_any_letter_case_and_by_active_state,
    update_applies_the_mask_and_refuses_a_stale_etag,
    deactivate_keeps_the_agent_and_is_idempotent,
    an_address_taken_in_other_letter_case_is_already_exists,
    concurrent_creates_of_one_address_let_one_win,
    bad_input_is_invalid_argument_naming_the_field,
    an_unknown_agent_is_not_found,
    a_retried_create_with_its_request_id_creates_once,
    agents_and_scoped_services_read_but_do_not_manage,
    customers_are_refused_everything,
);

fn ids_of(agents: &[Agent]) -> Vec<&str> {
    agents.iter().map(|agent| agent.id.as_str()).collect()
}

fn get(id: &str) -> GetAgentRequest {
    GetAgentRequest { id: id.to_owned() }
}

fn deactivate(id: &str, etag: &str) -> DeactivateAgentRequest {
    DeactivateAgentRequest {
        id: id.to_owned(),
        etag: etag.to_owned(),
        request_id: String::new(),
    }
}

async fn creates_gets_and_lists_agents_page_by_page(app: TestApp) {
    let mut admin = app.agents();
    // `active: false` is output only on create: a new agent is active.
    let ann = ok(admin
        .create_agent(create_agent_req(Agent {
            active: false,
            ..new_agent("agent-ann", "Ann.Lee@Example.com")
        }))
        .await);
    assert_eq!(ann.id, "agent-ann");
    assert_eq!(ann.email, "Ann.Lee@Example.com", "stored as sent");
    assert_eq!(ann.display_name, "Agent agent-ann");
    assert!(ann.active);
    assert!(!ann.etag.is_empty());
    assert!(ann.create_time.is_some() && ann.create_time == ann.update_time);
    assert_eq!(ok(admin.get_agent(get("agent-ann")).await), ann);

    // Seven more, created out of id order; listing three at a time returns all eight once, by id.
    for n in [7, 3, 5, 1, 6, 2, 4] {
        app.create_agent(new_agent(
            &format!("agent-{n}"),
            &format!("a{n}@example.com"),
        ))
        .await;
    }
    let first = ok(admin
        .list_agents(ListAgentsRequest {
            page_size: 3,
            ..Default::default()
        })
        .await);
    assert_eq!(
        ids_of(&first.agents),
        ["agent-1", "agent-2", "agent-3"],
        "a page is page_size agents"
    );
    assert!(!first.next_page_token.is_empty());
    let all = every_agent(
        &admin,
        ListAgentsRequest {
            page_size: 3,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        ids_of(&all),
        [
            "agent-1",
            "agent-2",
            "agent-3",
            "agent-4",
            "agent-5",
            "agent-6",
            "agent-7",
            "agent-ann"
        ]
    );
    assert_eq!(all.last(), Some(&ann));

    // A token belongs to its query: the next page of another filter is refused, not guessed at.
    assert_invalid(
        admin
            .list_agents(ListAgentsRequest {
                page_size: 3,
                page_token: first.next_page_token,
                active: ActiveFilter::Inactive as i32,
                ..Default::default()
            })
            .await,
        "page_token",
    );
    assert_invalid(
        admin
            .list_agents(ListAgentsRequest {
                page_size: -1,
                ..Default::default()
            })
            .await,
        "page_size",
    );
}

async fn lists_by_email_in_any_letter_case_and_by_active_state(app: TestApp) {
    let mut admin = app.agents();
    let ann = app.create_agent(new_agent("ann", "Ann@Example.com")).await;
    let bob = app.create_agent(new_agent("bob", "bob@example.com")).await;
    let cid = app.create_agent(new_agent("cid", "cid@example.com")).await;
    let bob = ok(admin.deactivate_agent(deactivate("bob", &bob.etag)).await);

    let by_email = |email: &str| ListAgentsRequest {
        email: email.to_owned(),
        ..Default::default()
    };
    for spelling in ["ann@example.com", "ANN@EXAMPLE.COM", "Ann@Example.com"] {
        let listed = ok(admin.list_agents(by_email(spelling)).await);
        assert_eq!(listed.agents, vec![ann.clone()], "{spelling}");
        assert!(listed.next_page_token.is_empty());
    }
    assert!(
        ok(admin.list_agents(by_email("nobody@example.com")).await)
            .agents
            .is_empty()
    );
    // Exact, not a prefix or a pattern.
    assert!(
        ok(admin.list_agents(by_email("ann@example")).await)
            .agents
            .is_empty()
    );
    assert!(
        ok(admin.list_agents(by_email("%@example.com")).await)
            .agents
            .is_empty()
    );

    let by_state = |active: ActiveFilter| ListAgentsRequest {
        active: active as i32,
        ..Default::default()
    };
    let active = ok(admin.list_agents(by_state(ActiveFilter::Active)).await);
    assert_eq!(active.agents, [ann.clone(), cid.clone()]);
    let inactive = ok(admin.list_agents(by_state(ActiveFilter::Inactive)).await);
    assert_eq!(inactive.agents, vec![bob.clone()]);
    let both = ok(admin.list_agents(by_state(ActiveFilter::Unspecified)).await);
    assert_eq!(both.agents, [ann, bob.clone(), cid]);
    // Both filters at once.
    let inactive_bob = ok(admin
        .list_agents(ListAgentsRequest {
            email: "BOB@example.com".to_owned(),
            active: ActiveFilter::Inactive as i32,
            ..Default::default()
        })
        .await);
    assert_eq!(inactive_bob.agents, [bob]);
    assert_invalid(
        admin
            .list_agents(ListAgentsRequest {
                active: 9,
                ..Default::default()
            })
            .await,
        "active",
    );
}

async fn update_applies_the_mask_and_refuses_a_stale_etag(app: TestApp) {
    let mut admin = app.agents();
    let original = app.create_agent(new_agent("ann", "ann@example.com")).await;

    // Only the masked field changes, even though the request sets others.
    let renamed = ok(admin
        .update_agent(update_agent_req(
            Agent {
                id: "ann".to_owned(),
                etag: original.etag.clone(),
                display_name: "Ann Lee".to_owned(),
                email: "ignored@example.com".to_owned(),
                ..Default::default()
            },
            &["display_name"],
        ))
        .await);
    assert_eq!(renamed.display_name, "Ann Lee");
    assert_eq!(renamed.email, "ann@example.com");
    assert_ne!(renamed.etag, original.etag);
    assert_eq!(
        Agent {
            display_name: original.display_name.clone(),
            etag: original.etag.clone(),
            update_time: original.update_time,
            ..renamed.clone()
        },
        original,
        "only the display name (and etag, update time) changed"
    );

    // The etag read before that change is stale: ABORTED, naming the current one, and nothing changes.
    let stale = assert_code(
        admin
            .update_agent(update_agent_req(
                Agent {
                    id: "ann".to_owned(),
                    etag: original.etag.clone(),
                    display_name: "lost update".to_owned(),
                    ..Default::default()
                },
                &["display_name"],
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
    assert_eq!(ok(admin.get_agent(get("ann")).await), renamed);

    // An empty mask updates every field the request sets; re-casing one's own address is no clash.
    let recased = ok(admin
        .update_agent(update_agent_req(
            Agent {
                id: "ann".to_owned(),
                email: "Ann@Example.COM".to_owned(),
                ..Default::default()
            },
            &[],
        ))
        .await);
    assert_eq!(recased.email, "Ann@Example.COM");
    assert_eq!(recased.display_name, "Ann Lee");

    // `active` goes both ways through the mask (false needs it: an unset bool is not a change).
    let off = ok(admin
        .update_agent(update_agent_req(
            Agent {
                id: "ann".to_owned(),
                active: false,
                ..Default::default()
            },
            &["active"],
        ))
        .await);
    assert!(!off.active);
    let on = ok(admin
        .update_agent(update_agent_req(
            Agent {
                id: "ann".to_owned(),
                etag: off.etag.clone(),
                active: true,
                ..Default::default()
            },
            &[],
        ))
        .await);
    assert!(on.active);

    // Another agent's address, in any case, is taken.
    app.create_agent(new_agent("bob", "bob@example.com")).await;
    let taken = assert_code(
        admin
            .update_agent(update_agent_req(
                Agent {
                    id: "ann".to_owned(),
                    email: "BOB@example.com".to_owned(),
                    ..Default::default()
                },
                &["email"],
            ))
            .await,
        Code::AlreadyExists,
    );
    assert!(taken.message().contains("agent.email"), "{taken:?}");
    assert_eq!(ok(admin.get_agent(get("ann")).await), on);

    // Paths the client may not write, or that do not exist, name the mask.
    for path in ["id", "etag", "create_time", "update_time", "nickname"] {
        let status = assert_invalid(
            admin
                .update_agent(update_agent_req(
                    Agent {
                        id: "ann".to_owned(),
                        ..Default::default()
                    },
                    &[path],
                ))
                .await,
            "update_mask",
        );
        assert!(status.message().contains(path), "{status:?}");
    }
}

async fn deactivate_keeps_the_agent_and_is_idempotent(app: TestApp) {
    let mut admin = app.agents();
    let ann = app.create_agent(new_agent("ann", "ann@example.com")).await;

    let off = ok(admin.deactivate_agent(deactivate("ann", &ann.etag)).await);
    assert!(!off.active);
    assert_ne!(off.etag, ann.etag);
    assert_eq!(
        Agent {
            active: true,
            etag: ann.etag.clone(),
            update_time: ann.update_time,
            ..off.clone()
        },
        ann,
        "only the state (and etag, update time) changed"
    );
    // Kept, readable, listed among the inactive.
    assert_eq!(ok(admin.get_agent(get("ann")).await), off);

    // Deactivating an inactive agent answers it as it is.
    assert_eq!(ok(admin.deactivate_agent(deactivate("ann", "")).await), off);
    assert_eq!(
        ok(admin.deactivate_agent(deactivate("ann", &off.etag)).await),
        off
    );
    // But a sent etag is still checked.
    assert_code(
        admin.deactivate_agent(deactivate("ann", &ann.etag)).await,
        Code::Aborted,
    );
    // Its address stays taken: deactivating keeps history, it does not free the address for someone else.
    assert_code(
        admin
            .create_agent(create_agent_req(new_agent("ann2", "ANN@example.com")))
            .await,
        Code::AlreadyExists,
    );
}

async fn an_address_taken_in_other_letter_case_is_already_exists(app: TestApp) {
    let mut admin = app.agents();
    app.create_agent(new_agent("ann", "Ann@Example.com")).await;

    let status = assert_code(
        admin
            .create_agent(create_agent_req(new_agent("ann-2", "aNN@eXAMPLE.COM")))
            .await,
        Code::AlreadyExists,
    );
    assert!(status.message().contains("agent.email"), "{status:?}");
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, "AGENT_ALREADY_EXISTS");
    assert!(info.metadata.contains_key("agent.email"), "{info:?}");

    // A taken id is its own answer, naming the id.
    let status = assert_code(
        admin
            .create_agent(create_agent_req(new_agent(
                "ann",
                "someone.else@example.com",
            )))
            .await,
        Code::AlreadyExists,
    );
    assert!(status.message().contains("agent.id"), "{status:?}");

    let all = every_agent(&admin, ListAgentsRequest::default()).await;
    assert_eq!(ids_of(&all), ["ann"], "neither refused create stored a row");
}

async fn concurrent_creates_of_one_address_let_one_win(app: TestApp) {
    let spellings = [
        "race@example.com",
        "RACE@example.com",
        "Race@Example.com",
        "race@EXAMPLE.COM",
        "rAcE@example.com",
        "RACE@EXAMPLE.COM",
    ];
    let results = join_all(spellings.iter().enumerate().map(|(n, email)| {
        let mut client = app.agents();
        let request = create_agent_req(new_agent(&format!("racer-{n}"), email));
        async move { client.create_agent(request).await }
    }))
    .await;
    assert_one_create_wins(&results);
    let all = every_agent(&app.agents(), ListAgentsRequest::default()).await;
    assert_eq!(all.len(), 1, "{all:?}");
}

async fn bad_input_is_invalid_argument_naming_the_field(app: TestApp) {
    let mut admin = app.agents();
    let valid = || new_agent("ann", "ann@example.com");
    let cases = [
        (
            Agent {
                id: String::new(),
                ..valid()
            },
            "agent.id",
        ),
        (
            Agent {
                id: "ann lee".to_owned(),
                ..valid()
            },
            "agent.id",
        ),
        (
            Agent {
                id: "x".repeat(256),
                ..valid()
            },
            "agent.id",
        ),
        (
            Agent {
                email: String::new(),
                ..valid()
            },
            "agent.email",
        ),
        (
            Agent {
                email: "ann.example.com".to_owned(),
                ..valid()
            },
            "agent.email",
        ),
        (
            Agent {
                email: "ann@localhost".to_owned(),
                ..valid()
            },
            "agent.email",
        ),
        (
            Agent {
                email: "ann@@example.com".to_owned(),
                ..valid()
            },
            "agent.email",
        ),
        (
            Agent {
                email: "ann lee@example.com".to_owned(),
                ..valid()
            },
            "agent.email",
        ),
        (
            Agent {
                display_name: "x".repeat(201),
                ..valid()
            },
            "agent.display_name",
        ),
    ];
    for (agent, field) in cases {
        assert_invalid(
            admin.create_agent(create_agent_req(agent.clone())).await,
            field,
        );
    }
    assert_invalid(
        admin
            .create_agent(CreateAgentRequest {
                agent: None,
                request_id: String::new(),
            })
            .await,
        "agent",
    );
    assert!(
        every_agent(&admin, ListAgentsRequest::default())
            .await
            .is_empty(),
        "nothing invalid was stored"
    );

    // Updates check the fields they change the same way.
    app.create_agent(valid()).await;
    for (update, path, field) in [
        (
            Agent {
                email: "not-an-address".to_owned(),
                ..valid()
            },
            "email",
            "agent.email",
        ),
        (
            Agent {
                display_name: "y".repeat(201),
                ..valid()
            },
            "display_name",
            "agent.display_name",
        ),
        (
            Agent {
                id: String::new(),
                ..valid()
            },
            "display_name",
            "agent.id",
        ),
    ] {
        assert_invalid(
            admin.update_agent(update_agent_req(update, &[path])).await,
            field,
        );
    }
    assert_invalid(admin.get_agent(get("")).await, "id");
    assert_invalid(admin.deactivate_agent(deactivate("", "")).await, "id");
    assert_eq!(
        ok(admin.get_agent(get("ann")).await).display_name,
        "Agent ann",
        "no refused update changed anything"
    );
}

async fn an_unknown_agent_is_not_found(app: TestApp) {
    let mut admin = app.agents();
    app.create_agent(new_agent("ann", "ann@example.com")).await;
    // Ids are exact: letter case is not ignored for them, only for addresses.
    for id in ["nobody", "ANN"] {
        assert_code(admin.get_agent(get(id)).await, Code::NotFound);
        assert_code(
            admin
                .update_agent(update_agent_req(
                    Agent {
                        id: id.to_owned(),
                        display_name: "Nobody".to_owned(),
                        ..Default::default()
                    },
                    &["display_name"],
                ))
                .await,
            Code::NotFound,
        );
        assert_code(
            admin.deactivate_agent(deactivate(id, "")).await,
            Code::NotFound,
        );
    }
}

async fn a_retried_create_with_its_request_id_creates_once(app: TestApp) {
    let mut admin = app.agents();
    let request = CreateAgentRequest {
        request_id: "4a7c1e52-3f0e-4f57-9d2e-8d9b1f6b2a10".to_owned(),
        ..create_agent_req(new_agent("ann", "ann@example.com"))
    };
    let first = ok(admin.create_agent(request.clone()).await);
    // The retry gets the first answer, not ALREADY_EXISTS.
    let retry = ok(admin.create_agent(request.clone()).await);
    assert_eq!(retry, first);
    let all = every_agent(&admin, ListAgentsRequest::default()).await;
    assert_eq!(all, [first]);

    // The same id with another agent is a client bug, refused rather than answered with the first agent.
    let reused = assert_code(
        admin
            .create_agent(CreateAgentRequest {
                agent: Some(new_agent("bob", "bob@example.com")),
                ..request
            })
            .await,
        Code::InvalidArgument,
    );
    assert_field_violation(&reused, "request_id");
}

async fn agents_and_scoped_services_read_but_do_not_manage(app: TestApp) {
    let ann = app.create_agent(new_agent("ann", "ann@example.com")).await;
    let readers = [
        agent_token("ann"),
        service_token("chat-bot", &["agents:read"]),
    ];
    for token in readers {
        let mut client = app.agents_as(&token);
        assert_eq!(ok(client.get_agent(get("ann")).await), ann);
        assert_eq!(
            ok(client.list_agents(ListAgentsRequest::default()).await).agents,
            vec![ann.clone()]
        );
        assert_method_denied(
            client
                .create_agent(create_agent_req(new_agent("bob", "bob@example.com")))
                .await,
            "CreateAgent",
            "needs the admin role",
        );
        assert_method_denied(
            client
                .update_agent(update_agent_req(
                    Agent {
                        id: "ann".to_owned(),
                        display_name: "Mallory".to_owned(),
                        ..Default::default()
                    },
                    &["display_name"],
                ))
                .await,
            "UpdateAgent",
            "needs the admin role",
        );
        assert_method_denied(
            client.deactivate_agent(deactivate("ann", "")).await,
            "DeactivateAgent",
            "needs the admin role",
        );
    }

    // A service without the scope reads nothing.
    let mut unscoped = app.agents_as(&service_token("ticket-bot", &["tickets:read"]));
    assert_method_denied(
        unscoped.get_agent(get("ann")).await,
        "GetAgent",
        "\"agents:read\"",
    );
    assert_method_denied(
        unscoped.list_agents(ListAgentsRequest::default()).await,
        "ListAgents",
        "\"agents:read\"",
    );

    assert_eq!(
        ok(app.agents().get_agent(get("ann")).await),
        ann,
        "no refused call changed the agent"
    );
}

async fn customers_are_refused_everything(app: TestApp) {
    let ann = app.create_agent(new_agent("ann", "ann@example.com")).await;
    let portal = app.create_portal(portal("Help centre")).await;
    let mut customer = app.agents_as(&customer_token("alice", "acme", portal.id));

    assert_method_denied(customer.get_agent(get("ann")).await, "GetAgent", "");
    assert_method_denied(
        customer.list_agents(ListAgentsRequest::default()).await,
        "ListAgents",
        "",
    );
    assert_method_denied(
        customer
            .create_agent(create_agent_req(new_agent("alice", "alice@acme.example")))
            .await,
        "CreateAgent",
        "",
    );
    assert_method_denied(
        customer
            .update_agent(update_agent_req(
                Agent {
                    id: "ann".to_owned(),
                    email: "alice@acme.example".to_owned(),
                    ..Default::default()
                },
                &["email"],
            ))
            .await,
        "UpdateAgent",
        "",
    );
    assert_method_denied(
        customer.deactivate_agent(deactivate("ann", "")).await,
        "DeactivateAgent",
        "",
    );
    assert_eq!(ok(app.agents().get_agent(get("ann")).await), ann);
}
