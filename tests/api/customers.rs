//! Customers and portals: the acceptance matrix of issue 5.
//!
//! Every test builds the same world ([`setup`]): organization `org-a` (customers alice and amy, and carol, a
//! member who never signs in), organization `org-b` (customer bob, member dave), outsiders of `org-z`, the
//! custom properties `region` (customer visible and editable) and `internal_score` (agent only), and two
//! portals:
//!
//! | portal | rules                                    | types    | visible                    | editable         | time |
//! |--------|------------------------------------------|----------|----------------------------|------------------|------|
//! | P1     | requested + organization                 | all      | stage_id, priority, region | priority, region | yes  |
//! | P2     | requested + followed + followed projects | question | stage_id                   | –                | no   |
//!
//! An agent creates tickets requested by each customer and by other members, one per organization with hidden
//! values (assignee, tags, internal score), both ticket types, tickets of `proj-1` (followed by `org-a` as an
//! organization) and `proj-2` (followed by bob as a user), tickets alice and bob follow one by one; it comments
//! publicly and internally, links and unlinks a contact, changes hidden and visible fields and logs time.
//!
//! What each customer should see is computed here from the rules ([`World::shows`], [`World::redact`],
//! [`World::customer_event`]) and checked against the matrix written out by hand ([`MATRIX`]). The tests then
//! prove, for customers of both organizations under both portals:
//!
//! 1. reads (Get, BatchGet, List, Search) return exactly the visible tickets; an invisible ticket is NOT_FOUND
//!    exactly like a missing one;
//! 2. hidden fields arrive empty everywhere (reads, write responses, history, stream snapshots and changes);
//! 3. comments: internal ones are never listed, customers add public ones only;
//! 4. history leaves out internal comments, association events and changes of hidden fields;
//! 5. WatchTickets (replayed and live) carries only visible events, redacted; filters on hidden fields are
//!    refused;
//! 6. customer writes: create as requester of its own organization, update only editable fields, no archive;
//! 7. followers: requesters follow automatically, the follower rules, customers follow only for themselves;
//! 8. time entries: logged only where the portal allows it, listed and deleted only by their author;
//! 9. portal administration: validation, etags, deletion, and changes applying on the customer's next call;
//! 10. chat cards: readable only for visible tickets and only when every binding is a visible field.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Debug,
    time::Duration,
};

use ticketd::proto::{
    ArchiveTicketRequest, AssociationSpec, BatchArchiveTicketsRequest, BatchCreateTicketsRequest,
    BatchGetTicketsRequest, BatchUpdateTicketsRequest, Card, CardTemplate, Comment,
    CommentVisibility, CreateAssociationRequest, CreateCardTemplateRequest, CreatePortalRequest,
    CreateTicketRequest, DeleteAssociationRequest, DeletePortalRequest, DeleteTimeEntryRequest,
    FilterGroup, FilterOperator, FollowProjectRequest, FollowTicketRequest, Follower, FollowerKind,
    GetCardRequest, GetCardTemplateRequest, GetPipelineRequest, GetPortalRequest, GetTicketRequest,
    ListCardTemplatesRequest, ListCardsRequest, ListCommentsRequest, ListFollowersRequest,
    ListPipelinesRequest, ListPortalsRequest, ListProjectFollowersRequest,
    ListTicketHistoryRequest, ListTicketsRequest, ListTimeEntriesRequest, LogTimeRequest, Portal,
    Priority, PropertyDefinition, PropertyType, RenderCardRequest, RenderedCard,
    RestoreTicketRequest, SearchTicketsRequest, SendCardRequest, Stage, Ticket, TicketEvent,
    TicketEventKind, TimeEntry, UnfollowProjectRequest, UnfollowTicketRequest,
    UpdateCardPropertiesRequest, UpdatePortalRequest, UpdatePropertyRequest, UpdateTicketRequest,
    WatchCardRequest, WatchTicketsRequest, ticket_service_client::TicketServiceClient,
};
use tonic::{Code, Response, Status, Streaming};
use tonic_types::StatusExt;

use crate::support::*;

both_databases!(
    // Reads
    each_customer_reads_exactly_the_tickets_its_portal_shows,
    an_invisible_ticket_is_not_found_exactly_like_a_missing_one,
    hidden_fields_never_leave_in_ticket_reads,
    searches_filter_only_on_visible_fields,
    // Comments and history
    customers_never_see_internal_comments_and_add_only_public_ones,
    customer_history_leaves_out_internal_comments_associations_and_hidden_changes,
    // Streams
    organization_portal_streams_carry_only_visible_redacted_events,
    follower_portal_streams_carry_followed_and_project_tickets_only,
    stream_filters_on_hidden_fields_are_refused,
    // Writes
    customers_create_tickets_as_requester_of_their_own_organization,
    customer_creates_refuse_every_field_the_portal_does_not_let_them_set,
    customers_update_only_editable_fields_of_visible_tickets,
    customers_cannot_archive_or_restore,
    // Followers
    requesters_follow_their_tickets_and_customers_see_only_their_own_follow,
    follower_portal_shows_tickets_through_follows_and_projects,
    customers_follow_only_for_themselves_and_only_visible_tickets,
    // Time entries
    customers_log_list_and_delete_only_their_own_time,
    time_logging_needs_the_portal_a_visible_ticket_and_valid_fields,
    // Portals
    create_portal_validates_the_name_and_the_property_lists,
    update_and_delete_portal_check_the_etag_and_revalidate,
    customers_read_only_their_own_portal,
    portal_and_property_changes_apply_on_the_customers_next_call,
    a_deleted_portal_refuses_its_customers_ticket_and_card_calls,
    a_deleted_portal_refuses_every_other_call_of_its_customers,
    // Cards
    customers_read_cards_of_visible_tickets_that_bind_visible_fields,
    cards_of_invisible_tickets_are_not_found_for_customers,
    cards_binding_hidden_fields_are_refused_and_left_out_of_listings,
    a_card_stream_stops_delivering_once_its_ticket_leaves_the_customers_view,
);

// ---------------------------------------------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------------------------------------------

const AGENT: &str = "agent-1";
const ORG_A: &str = "org-a";
const ORG_B: &str = "org-b";
const ORG_Z: &str = "org-z";
const QUESTION: &str = "question";
const INCIDENT: &str = "incident";
const PROJ_1: &str = "proj-1";
const PROJ_2: &str = "proj-2";

/// A customer who signs in: its `sub` and `org` claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Customer {
    sub: &'static str,
    org: &'static str,
}

const ALICE: Customer = Customer {
    sub: "alice",
    org: ORG_A,
};
const AMY: Customer = Customer {
    sub: "amy",
    org: ORG_A,
};
const BOB: Customer = Customer {
    sub: "bob",
    org: ORG_B,
};

/// The two portals of the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    P1,
    P2,
}

/// A ticket the agent creates in [`setup`].
struct Seed {
    key: &'static str,
    subject: &'static str,
    requester: &'static str,
    org: &'static str,
    ticket_type: &'static str,
    project: &'static str,
}

const fn seed(
    key: &'static str,
    subject: &'static str,
    requester: &'static str,
    org: &'static str,
    ticket_type: &'static str,
    project: &'static str,
) -> Seed {
    Seed {
        key,
        subject,
        requester,
        org,
        ticket_type,
        project,
    }
}

const SEEDS: &[Seed] = &[
    seed("a-alice-q", "Printer jammed", "alice", ORG_A, QUESTION, ""),
    seed("a-alice-i", "VPN down", "alice", ORG_A, INCIDENT, ""),
    seed("a-amy-q", "Password reset", "amy", ORG_A, QUESTION, ""),
    seed("a-member-q", "Invoice copy", "carol", ORG_A, QUESTION, ""),
    seed("a-secret-i", "Server outage", "carol", ORG_A, INCIDENT, ""),
    seed("b-bob-q", "Broken chair", "bob", ORG_B, QUESTION, ""),
    seed("b-member-i", "Lost badge", "dave", ORG_B, INCIDENT, ""),
    seed(
        "b-secret-q",
        "Contract dispute",
        "dave",
        ORG_B,
        QUESTION,
        "",
    ),
    seed("z-proj1-q", "Rollout plan", "zed", ORG_Z, QUESTION, PROJ_1),
    seed(
        "z-proj1-i",
        "Rollout failure",
        "zed",
        ORG_Z,
        INCIDENT,
        PROJ_1,
    ),
    seed(
        "z-proj2-q",
        "Migration schedule",
        "zed",
        ORG_Z,
        QUESTION,
        PROJ_2,
    ),
    seed(
        "z-alice-follows-q",
        "Shared printer",
        "zed",
        ORG_Z,
        QUESTION,
        "",
    ),
    seed("z-bob-follows-q", "Shared desk", "zed", ORG_Z, QUESTION, ""),
    seed("z-noise-i", "Unrelated outage", "zed", ORG_Z, INCIDENT, ""),
];

const ORG_A_TICKETS: &[&str] = &[
    "a-alice-q",
    "a-alice-i",
    "a-amy-q",
    "a-member-q",
    "a-secret-i",
];

/// What each customer sees under each portal, written out by hand from the rules.
const MATRIX: &[(Customer, Which, &[&str])] = &[
    (ALICE, Which::P1, ORG_A_TICKETS),
    (AMY, Which::P1, ORG_A_TICKETS),
    (BOB, Which::P1, &["b-bob-q", "b-member-i", "b-secret-q"]),
    (
        ALICE,
        Which::P2,
        &["a-alice-q", "z-proj1-q", "z-alice-follows-q"],
    ),
    (AMY, Which::P2, &["a-amy-q", "z-proj1-q"]),
    (BOB, Which::P2, &["b-bob-q", "z-proj2-q", "z-bob-follows-q"]),
];

/// The ticket the agent creates for a seed; two of them carry every hidden value.
fn seed_ticket(seed: &Seed) -> Ticket {
    let mut ticket = Ticket {
        subject: seed.subject.to_owned(),
        content: format!("content of {}", seed.key),
        requester_id: seed.requester.to_owned(),
        organization_id: seed.org.to_owned(),
        ticket_type: seed.ticket_type.to_owned(),
        project_id: seed.project.to_owned(),
        ..Default::default()
    };
    match seed.key {
        "a-alice-q" => {
            ticket.priority = Priority::Low.into();
            ticket.properties = properties(&[("region", "emea")]);
        }
        "a-secret-i" => {
            ticket.priority = Priority::High.into();
            ticket.assignee_id = AGENT.to_owned();
            ticket.tags = strings(&["escalated", "vip"]);
            ticket.properties = properties(&[("internal_score", "42"), ("region", "emea")]);
        }
        "b-secret-q" => {
            ticket.priority = Priority::Urgent.into();
            ticket.assignee_id = "agent-2".to_owned();
            ticket.tags = strings(&["vip"]);
            ticket.properties = properties(&[("internal_score", "7"), ("region", "apac")]);
        }
        _ => {}
    }
    ticket
}

/// Ticket fields every customer who sees a ticket sees.
const ALWAYS_VISIBLE: &[&str] = &[
    "id",
    "subject",
    "content",
    "create_time",
    "update_time",
    "close_time",
    "archive_time",
    "archived",
    "etag",
];
/// Core fields a portal may show.
const SHOWABLE_CORE: &[&str] = &[
    "pipeline_id",
    "stage_id",
    "priority",
    "requester_id",
    "assignee_id",
    "organization_id",
    "ticket_type",
    "tags",
    "project_id",
];

const PUBLIC_NOTE: &str = "We are looking into it";
const INTERNAL_NOTE: &str = "Refund denied; do not tell the customer";

struct World {
    p1: Portal,
    p2: Portal,
    /// Ticket ids by seed key (and "before", created before the setup).
    ids: BTreeMap<&'static str, i64>,
    /// Who follows each ticket, as this test made it: the requester, then explicit follows.
    followers: BTreeMap<i64, BTreeSet<String>>,
    /// (project, kind, follower id) of every project follow.
    project_followers: BTreeSet<(String, i32, String)>,
    /// Custom properties defined `customer_visible`.
    customer_visible: BTreeSet<String>,
    /// The last event before the setup: streams replaying after it see the whole setup.
    before_setup: i64,
    /// The default pipeline's stages in display order.
    stages: Vec<Stage>,
    /// The agent's time entry on `a-alice-q`.
    agent_entry: TimeEntry,
}

type Tickets = TicketServiceClient<Authed>;

fn agent(app: &TestApp) -> Tickets {
    app.tickets_as(&agent_token(AGENT))
}

/// Builds the world described in the module documentation.
async fn setup(app: &TestApp) -> World {
    let mut agent = agent(app);
    let before = ok(agent
        .create_ticket(create_ticket_req(ticket("created before the setup")))
        .await);
    let before_setup = app.last_event_id(before.id).await;

    app.create_property(PropertyDefinition {
        customer_visible: true,
        customer_editable: true,
        ..property_def("region", PropertyType::String)
    })
    .await;
    app.create_property(PropertyDefinition {
        agent_only: true,
        ..property_def("internal_score", PropertyType::Number)
    })
    .await;

    let p1 = create_portal(
        app,
        Portal {
            name: "P1 organization portal".to_owned(),
            requested_tickets: true,
            organization_tickets: true,
            visible_properties: strings(&["stage_id", "priority", "region"]),
            editable_properties: strings(&["priority", "region"]),
            time_logging: true,
            ..Default::default()
        },
    )
    .await;
    let p2 = create_portal(
        app,
        Portal {
            name: "P2 follower portal".to_owned(),
            requested_tickets: true,
            followed_tickets: true,
            followed_project_tickets: true,
            ticket_types: strings(&[QUESTION]),
            visible_properties: strings(&["stage_id"]),
            ..Default::default()
        },
    )
    .await;

    let mut ids = BTreeMap::from([("before", before.id)]);
    let mut followers = BTreeMap::new();
    for seed in SEEDS {
        let created = ok(agent
            .create_ticket(create_ticket_req(seed_ticket(seed)))
            .await);
        ids.insert(seed.key, created.id);
        followers.insert(created.id, BTreeSet::from([seed.requester.to_owned()]));
    }

    let stages = app.get_pipeline(0).await.stages;
    let mut world = World {
        p1,
        p2,
        ids,
        followers,
        project_followers: BTreeSet::new(),
        customer_visible: BTreeSet::from(["region".to_owned()]),
        before_setup,
        stages,
        agent_entry: TimeEntry::default(),
    };

    world
        .follow(app, world.id("z-alice-follows-q"), ALICE.sub)
        .await;
    world
        .follow(app, world.id("z-bob-follows-q"), BOB.sub)
        .await;
    world
        .follow_project(app, PROJ_1, FollowerKind::Organization, ORG_A)
        .await;
    world
        .follow_project(app, PROJ_2, FollowerKind::User, BOB.sub)
        .await;

    let a = world.id("a-alice-q");
    let b = world.id("b-bob-q");
    comment(app, a, PUBLIC_NOTE, CommentVisibility::Public).await;
    comment(app, a, INTERNAL_NOTE, CommentVisibility::Internal).await;
    comment(app, b, "Chair ordered", CommentVisibility::Public).await;
    comment(app, b, "Bob broke it himself", CommentVisibility::Internal).await;
    comment(
        app,
        world.id("a-secret-i"),
        "Root cause: our own deploy",
        CommentVisibility::Internal,
    )
    .await;

    let mut associations = app.associations_as(&agent_token(AGENT));
    ok(associations
        .create_association(CreateAssociationRequest {
            ticket_id: a,
            association: Some(link("contact", "201", 0)),
            request_id: String::new(),
        })
        .await);
    ok(associations
        .delete_association(DeleteAssociationRequest {
            ticket_id: a,
            association: Some(link("contact", "201", 0)),
            request_id: String::new(),
        })
        .await);
    ok(associations
        .create_association(CreateAssociationRequest {
            ticket_id: b,
            association: Some(link("contact", "301", 0)),
            request_id: String::new(),
        })
        .await);

    // Changes of hidden fields only, one mixed change, and changes of visible fields.
    let change = |ticket: Ticket, paths: &'static [&'static str]| {
        let mut agent = agent.clone();
        async move { ok(agent.update_ticket(update_ticket_req(ticket, paths)).await) }
    };
    change(
        Ticket {
            id: a,
            assignee_id: AGENT.to_owned(),
            ..Default::default()
        },
        &["assignee_id"],
    )
    .await;
    change(
        Ticket {
            id: a,
            tags: strings(&["vip"]),
            ..Default::default()
        },
        &["tags"],
    )
    .await;
    change(
        Ticket {
            id: a,
            properties: properties(&[("internal_score", "5")]),
            ..Default::default()
        },
        &["properties.internal_score"],
    )
    .await;
    change(
        Ticket {
            id: a,
            priority: Priority::High.into(),
            assignee_id: "agent-2".to_owned(),
            ..Default::default()
        },
        &["priority", "assignee_id"],
    )
    .await;
    change(
        Ticket {
            id: a,
            stage_id: world.stages[1].id,
            ..Default::default()
        },
        &["stage_id"],
    )
    .await;
    change(
        Ticket {
            id: a,
            properties: properties(&[("region", "apac")]),
            ..Default::default()
        },
        &["properties.region"],
    )
    .await;

    world.agent_entry = ok(agent
        .log_time(LogTimeRequest {
            ticket_id: a,
            minutes: 30,
            work_date: "2024-05-01".to_owned(),
            note: "diagnosis".to_owned(),
            request_id: String::new(),
        })
        .await);
    world
}

impl World {
    fn portal(&self, which: Which) -> &Portal {
        match which {
            Which::P1 => &self.p1,
            Which::P2 => &self.p2,
        }
    }

    #[track_caller]
    fn id(&self, key: &str) -> i64 {
        *self
            .ids
            .get(key)
            .unwrap_or_else(|| panic!("no ticket {key:?} in the world"))
    }

    fn ids_of(&self, keys: &[&str]) -> Vec<i64> {
        sorted_ids(keys.iter().map(|key| self.id(key)).collect())
    }

    /// The seed key of a ticket id, for messages.
    fn key_of(&self, id: i64) -> String {
        self.ids
            .iter()
            .find(|(_, known)| **known == id)
            .map_or_else(|| format!("#{id}"), |(key, _)| format!("{key} (#{id})"))
    }

    fn token(&self, customer: Customer, which: Which) -> String {
        customer_token(customer.sub, customer.org, self.portal(which).id)
    }

    fn tickets_as(&self, app: &TestApp, customer: Customer, which: Which) -> Tickets {
        app.tickets_as(&self.token(customer, which))
    }

    /// Makes `who` follow a ticket (as the agent) and records it.
    async fn follow(&mut self, app: &TestApp, ticket_id: i64, who: &str) {
        let follower = ok(agent(app)
            .follow_ticket(FollowTicketRequest {
                ticket_id,
                follower_id: who.to_owned(),
            })
            .await);
        assert_eq!(follower.follower_id, who);
        self.followers
            .entry(ticket_id)
            .or_default()
            .insert(who.to_owned());
    }

    /// Makes a user or organization follow a project (as the agent) and records it.
    async fn follow_project(
        &mut self,
        app: &TestApp,
        project: &str,
        kind: FollowerKind,
        who: &str,
    ) {
        let follower = ok(agent(app)
            .follow_project(FollowProjectRequest {
                project_id: project.to_owned(),
                kind: kind.into(),
                follower_id: who.to_owned(),
            })
            .await);
        assert_eq!(
            (
                follower.project_id.as_str(),
                follower.kind(),
                follower.follower_id.as_str()
            ),
            (project, kind, who)
        );
        self.project_followers
            .insert((project.to_owned(), kind.into(), who.to_owned()));
    }

    /// Whether the rules of `portal` show `ticket` (the agent's view of it) to `customer`.
    fn shows(&self, customer: Customer, portal: &Portal, ticket: &Ticket) -> bool {
        let type_allowed =
            portal.ticket_types.is_empty() || portal.ticket_types.contains(&ticket.ticket_type);
        let requested = portal.requested_tickets && ticket.requester_id == customer.sub;
        let organization = portal.organization_tickets
            && !customer.org.is_empty()
            && ticket.organization_id == customer.org;
        let followed = portal.followed_tickets
            && self
                .followers
                .get(&ticket.id)
                .is_some_and(|who| who.contains(customer.sub));
        let project_follower = |kind: FollowerKind, who: &str| {
            self.project_followers.contains(&(
                ticket.project_id.clone(),
                kind.into(),
                who.to_owned(),
            ))
        };
        let followed_project = portal.followed_project_tickets
            && !ticket.project_id.is_empty()
            && (project_follower(FollowerKind::User, customer.sub)
                || project_follower(FollowerKind::Organization, customer.org));
        type_allowed && (requested || organization || followed || followed_project)
    }

    /// The ids `customer` should see through `portal` among the agent's tickets.
    fn expected_ids(
        &self,
        tickets: &BTreeMap<i64, Ticket>,
        customer: Customer,
        portal: &Portal,
    ) -> Vec<i64> {
        tickets
            .values()
            .filter(|ticket| self.shows(customer, portal, ticket))
            .map(|ticket| ticket.id)
            .collect()
    }

    /// Whether a field (a Ticket field or `properties.<name>`) reaches customers of `portal`.
    fn sees_field(&self, portal: &Portal, field: &str) -> bool {
        if ALWAYS_VISIBLE.contains(&field) {
            return true;
        }
        let listed = |name: &str| portal.visible_properties.iter().any(|v| v == name);
        match field.strip_prefix("properties.") {
            Some(name) => listed(name) && self.customer_visible.contains(name),
            None => SHOWABLE_CORE.contains(&field) && listed(field),
        }
    }

    /// The agent's ticket as customers of `portal` should receive it: hidden fields at their zero value.
    fn redact(&self, portal: &Portal, ticket: &Ticket) -> Ticket {
        let shows = |field: &str| self.sees_field(portal, field);
        let mut redacted = ticket.clone();
        if !shows("pipeline_id") {
            redacted.pipeline_id = 0;
        }
        if !shows("stage_id") {
            redacted.stage_id = 0;
        }
        if !shows("priority") {
            redacted.priority = 0;
        }
        if !shows("requester_id") {
            redacted.requester_id.clear();
        }
        if !shows("assignee_id") {
            redacted.assignee_id.clear();
        }
        if !shows("organization_id") {
            redacted.organization_id.clear();
        }
        if !shows("ticket_type") {
            redacted.ticket_type.clear();
        }
        if !shows("tags") {
            redacted.tags.clear();
        }
        if !shows("project_id") {
            redacted.project_id.clear();
        }
        redacted
            .properties
            .retain(|name, _| shows(&format!("properties.{name}")));
        redacted
    }

    /// Panics when a field `portal` hides carries a value.
    #[track_caller]
    fn assert_no_hidden_value(&self, portal: &Portal, ticket: &Ticket, what: &str) {
        let hidden = |field: &str| !self.sees_field(portal, field);
        let mut leaks = Vec::new();
        for (field, set) in [
            ("pipeline_id", ticket.pipeline_id != 0),
            ("stage_id", ticket.stage_id != 0),
            ("priority", ticket.priority != 0),
            ("requester_id", !ticket.requester_id.is_empty()),
            ("assignee_id", !ticket.assignee_id.is_empty()),
            ("organization_id", !ticket.organization_id.is_empty()),
            ("ticket_type", !ticket.ticket_type.is_empty()),
            ("tags", !ticket.tags.is_empty()),
            ("project_id", !ticket.project_id.is_empty()),
        ] {
            if set && hidden(field) {
                leaks.push(field.to_owned());
            }
        }
        for name in ticket.properties.keys() {
            if hidden(&format!("properties.{name}")) {
                leaks.push(format!("properties.{name}"));
            }
        }
        assert!(
            leaks.is_empty(),
            "{what}: hidden fields reached the customer: {leaks:?} in {ticket:?}"
        );
    }

    /// An event (from the agent's history) as customers of `portal` should receive it, without the ticket
    /// snapshot; `None` when it must not reach them at all.
    fn customer_event(&self, portal: &Portal, event: &TicketEvent) -> Option<TicketEvent> {
        match event.kind() {
            TicketEventKind::AssociationAdded | TicketEventKind::AssociationRemoved => return None,
            TicketEventKind::CommentAdded => {
                let comment = event
                    .comment
                    .as_ref()
                    .expect("a COMMENT_ADDED event carries its comment");
                if comment.visibility() != CommentVisibility::Public {
                    return None;
                }
            }
            _ => {}
        }
        let mut redacted = TicketEvent {
            ticket: None,
            ..event.clone()
        };
        let had_changes = !redacted.changes.is_empty();
        redacted
            .changes
            .retain(|change| self.sees_field(portal, &change.field));
        let only_hidden_changes = had_changes && redacted.changes.is_empty();
        if only_hidden_changes
            && matches!(
                redacted.kind(),
                TicketEventKind::Updated | TicketEventKind::StageChanged
            )
        {
            return None;
        }
        Some(redacted)
    }

    /// Panics unless a customer's event leaks nothing: no internal comment, no association, no hidden
    /// change, and a snapshot (when there is one) without hidden values.
    #[track_caller]
    fn assert_event_leaks_nothing(&self, portal: &Portal, event: &TicketEvent, what: &str) {
        let what = format!("{what}: event {} ({:?})", event.event_id, event.kind());
        assert!(
            !matches!(
                event.kind(),
                TicketEventKind::AssociationAdded | TicketEventKind::AssociationRemoved
            ),
            "{what}: association events never reach customers"
        );
        assert!(
            event.association.is_none(),
            "{what}: carries an association"
        );
        if let Some(comment) = &event.comment {
            assert_eq!(
                comment.visibility(),
                CommentVisibility::Public,
                "{what}: an internal comment reached a customer"
            );
        }
        for change in &event.changes {
            assert!(
                self.sees_field(portal, &change.field),
                "{what}: a change of the hidden field {:?} reached a customer",
                change.field
            );
        }
        if let Some(ticket) = &event.ticket {
            assert_eq!(
                ticket.id, event.ticket_id,
                "{what}: snapshot of another ticket"
            );
            self.assert_no_hidden_value(portal, ticket, &what);
        }
    }
}

async fn create_portal(app: &TestApp, portal: Portal) -> Portal {
    ok(app
        .portals_as(&admin_token(TEST_ADMIN))
        .create_portal(CreatePortalRequest {
            portal: Some(portal),
            request_id: String::new(),
        })
        .await)
}

async fn comment(
    app: &TestApp,
    ticket_id: i64,
    body: &str,
    visibility: CommentVisibility,
) -> Comment {
    ok(agent(app)
        .add_comment(comment_req(ticket_id, body, visibility))
        .await)
}

fn log_req(ticket_id: i64, minutes: i32, work_date: &str) -> LogTimeRequest {
    LogTimeRequest {
        ticket_id,
        minutes,
        work_date: work_date.to_owned(),
        note: String::new(),
        request_id: String::new(),
    }
}

/// Every ticket as the agent sees it, archived ones included, by id.
async fn agent_view(app: &TestApp) -> BTreeMap<i64, Ticket> {
    app.list_all_tickets(ListTicketsRequest {
        page_size: 500,
        show_archived: true,
        ..Default::default()
    })
    .await
    .into_iter()
    .map(|ticket| (ticket.id, ticket))
    .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Customer listings, following every page
// ---------------------------------------------------------------------------------------------------------------

const MAX_PAGES: usize = 1_000;

async fn list_all_as(client: &mut Tickets, page_size: i32) -> Vec<Ticket> {
    let mut request = ListTicketsRequest {
        page_size,
        ..Default::default()
    };
    let mut all = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = ok(client.list_tickets(request.clone()).await);
        all.extend(page.tickets);
        if page.next_page_token.is_empty() {
            return all;
        }
        request.page_token = page.next_page_token;
    }
    panic!("ListTickets never returned an empty next_page_token");
}

async fn search_all_as(client: &mut Tickets, mut request: SearchTicketsRequest) -> Vec<Ticket> {
    let mut all = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = ok(client.search_tickets(request.clone()).await);
        all.extend(page.tickets);
        if page.next_page_token.is_empty() {
            return all;
        }
        request.page_token = page.next_page_token;
    }
    panic!("SearchTickets never returned an empty next_page_token");
}

fn search_req(filters: Vec<ticketd::proto::Filter>) -> SearchTicketsRequest {
    SearchTicketsRequest {
        filter_groups: vec![FilterGroup { filters }],
        page_size: 2,
        ..Default::default()
    }
}

async fn history_as(client: &mut Tickets, ticket_id: i64, page_size: i32) -> Vec<TicketEvent> {
    let mut request = ListTicketHistoryRequest {
        ticket_id,
        page_size,
        ..Default::default()
    };
    let mut all = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = ok(client.list_ticket_history(request.clone()).await);
        all.extend(page.events);
        if page.next_page_token.is_empty() {
            return all;
        }
        request.page_token = page.next_page_token;
    }
    panic!("ListTicketHistory never returned an empty next_page_token");
}

async fn comments_as(client: &mut Tickets, ticket_id: i64, page_size: i32) -> Vec<Comment> {
    let mut request = ListCommentsRequest {
        ticket_id,
        page_size,
        ..Default::default()
    };
    let mut all = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = ok(client.list_comments(request.clone()).await);
        all.extend(page.comments);
        if page.next_page_token.is_empty() {
            return all;
        }
        request.page_token = page.next_page_token;
    }
    panic!("ListComments never returned an empty next_page_token");
}

async fn followers_as(client: &mut Tickets, ticket_id: i64) -> Vec<String> {
    let mut request = ListFollowersRequest {
        ticket_id,
        page_size: 1,
        ..Default::default()
    };
    let mut all: Vec<Follower> = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = ok(client.list_followers(request.clone()).await);
        all.extend(page.followers);
        if page.next_page_token.is_empty() {
            assert!(all.iter().all(|f| f.ticket_id == ticket_id));
            return all.into_iter().map(|f| f.follower_id).collect();
        }
        request.page_token = page.next_page_token;
    }
    panic!("ListFollowers never returned an empty next_page_token");
}

async fn time_entries_as(client: &mut Tickets, ticket_id: i64) -> Vec<TimeEntry> {
    let mut request = ListTimeEntriesRequest {
        ticket_id,
        page_size: 1,
        ..Default::default()
    };
    let mut all = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = ok(client.list_time_entries(request.clone()).await);
        all.extend(page.time_entries);
        if page.next_page_token.is_empty() {
            return all;
        }
        request.page_token = page.next_page_token;
    }
    panic!("ListTimeEntries never returned an empty next_page_token");
}

fn entry_ids(entries: &[TimeEntry]) -> Vec<i64> {
    entries.iter().map(|entry| entry.id).collect()
}

fn comment_ids(comments: &[Comment]) -> Vec<i64> {
    comments.iter().map(|comment| comment.id).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Status assertions
// ---------------------------------------------------------------------------------------------------------------

/// PERMISSION_DENIED from the access policy: the method is not open to customers at all.
#[track_caller]
fn assert_not_for_customers<T: Debug>(result: Result<Response<T>, Status>, method: &str) {
    assert_method_denied(result, method, "customers");
}

/// NOT_FOUND for `resource` `id`: the message and ResourceInfo name it.
#[track_caller]
fn assert_not_found<T: Debug>(
    result: Result<Response<T>, Status>,
    resource: &str,
    id: i64,
) -> Status {
    let status = assert_code(result, Code::NotFound);
    assert_eq!(status.message(), format!("{resource} {id} not found"));
    let info = status
        .get_details_resource_info()
        .unwrap_or_else(|| panic!("NOT_FOUND {:?} carries no ResourceInfo", status.message()));
    assert_eq!(info.resource_type, resource);
    assert_eq!(info.resource_name, id.to_string());
    status
}

/// Panics unless two NOT_FOUND answers (for `id_a` and `id_b`) are the same but for the id.
#[track_caller]
fn assert_same_answer(a: &Status, id_a: i64, b: &Status, id_b: i64, what: &str) {
    assert_eq!(a.code(), b.code(), "{what}: codes differ");
    assert_eq!(
        a.message().replace(&id_a.to_string(), &id_b.to_string()),
        b.message(),
        "{what}: messages differ beyond the id"
    );
    let error_info = |status: &Status| {
        status
            .get_details_error_info()
            .map(|info| (info.reason, info.domain, info.metadata))
    };
    assert_eq!(error_info(a), error_info(b), "{what}: ErrorInfo differs");
    let resource = |status: &Status| {
        status
            .get_details_resource_info()
            .map(|info| (info.resource_type, info.owner, info.description))
    };
    assert_eq!(
        resource(a).map(|(t, o, d)| (t, o, d.replace(&id_a.to_string(), &id_b.to_string()))),
        resource(b),
        "{what}: ResourceInfo differs beyond the id"
    );
}

fn status_of<T>(result: Result<Response<T>, Status>) -> Status {
    match result {
        Ok(_) => panic!("expected an error, got OK"),
        Err(status) => status,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------------------------

/// Opens a call that answers with a stream, failing the test if it does not answer in time.
async fn open<T>(
    call: impl Future<Output = Result<Response<Streaming<T>>, Status>>,
    what: &str,
) -> Result<Streaming<T>, Status> {
    match tokio::time::timeout(STREAM_TIMEOUT, call).await {
        Ok(result) => result.map(Response::into_inner),
        Err(_) => panic!("{what}: the call did not answer within {STREAM_TIMEOUT:?}"),
    }
}

async fn watch_as(
    client: &mut Tickets,
    request: WatchTicketsRequest,
    what: &str,
) -> Result<Streaming<TicketEvent>, Status> {
    open(client.watch_tickets(request), what).await
}

/// Reads a stream until the event that set `ticket_id`'s subject to `marker`; everything before it too.
async fn collect_until_marker(
    stream: &mut Streaming<TicketEvent>,
    ticket_id: i64,
    marker: &str,
    what: &str,
) -> Vec<TicketEvent> {
    let mut events = Vec::new();
    loop {
        let event = next_message(stream, what).await;
        let is_marker = event.ticket_id == ticket_id
            && event
                .changes
                .iter()
                .any(|change| change.field == "subject" && change.new_value == marker);
        events.push(event);
        if is_marker {
            return events;
        }
        assert!(events.len() < 10_000, "{what}: the marker never arrived");
    }
}

async fn set_subject(app: &TestApp, ticket_id: i64, subject: &str) -> Ticket {
    ok(agent(app)
        .update_ticket(update_ticket_req(
            Ticket {
                id: ticket_id,
                subject: subject.to_owned(),
                ..Default::default()
            },
            &["subject"],
        ))
        .await)
}

impl World {
    /// Panics unless `received` (a customer's stream up to its marker) is exactly the agent's events after
    /// `after` on `visible` tickets, as the rules let them through, and leaks nothing.
    #[track_caller]
    fn assert_stream(
        &self,
        portal: &Portal,
        received: &[TicketEvent],
        all_events: &[TicketEvent],
        visible: &[i64],
        after: i64,
        what: &str,
    ) {
        let last = received.last().map_or(after, |event| event.event_id);
        let expected: Vec<TicketEvent> = all_events
            .iter()
            .filter(|event| event.event_id > after && event.event_id <= last)
            .filter(|event| visible.contains(&event.ticket_id))
            .filter_map(|event| self.customer_event(portal, event))
            .collect();
        let stripped: Vec<TicketEvent> = received
            .iter()
            .map(|event| TicketEvent {
                ticket: None,
                ..event.clone()
            })
            .collect();
        assert_eq!(
            event_ids(&stripped),
            event_ids(&expected),
            "{what}: the stream must carry exactly the visible events"
        );
        assert_eq!(
            stripped, expected,
            "{what}: events must be redacted exactly"
        );
        for event in received {
            assert!(
                event.ticket.is_some(),
                "{what}: streamed events carry the ticket"
            );
            self.assert_event_leaks_nothing(portal, event, what);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Cards
// ---------------------------------------------------------------------------------------------------------------

const CARD_HEADER: &str = "XYZ CUSTOMER CARE";
const CARD_CUSTOMER: &str = "NAME: Alice";

async fn card_template(app: &TestApp, name: &str, bindings: &[(&str, &str)]) -> CardTemplate {
    ok(app
        .cards()
        .create_card_template(CreateCardTemplateRequest {
            name: name.to_owned(),
            schema: kaizala_fixture("ChatCardView.json"),
            app_model: kaizala_fixture("AppModel.json"),
            bindings: properties(bindings),
            request_id: String::new(),
        })
        .await)
}

fn send_card_req(template_id: i64, ticket_id: i64) -> SendCardRequest {
    SendCardRequest {
        template_id,
        ticket_id,
        group_id: "group-1".to_owned(),
        subscribers: strings(&["+15550100"]),
        send_to_all_subscribers: false,
        properties: properties(&[("customername", CARD_CUSTOMER)]),
        request_id: String::new(),
    }
}

async fn send_card(app: &TestApp, template_id: i64, ticket_id: i64) -> Card {
    ok(app
        .cards()
        .send_card(send_card_req(template_id, ticket_id))
        .await)
}

/// A template showing only fields every portal here shows: the subject and the stage's label.
async fn visible_card_template(app: &TestApp) -> CardTemplate {
    card_template(
        app,
        "subject and stage",
        &[("ticketnumber", "subject"), ("ticketstatus", "stage.label")],
    )
    .await
}

async fn render_as_admin(app: &TestApp, card_id: i64) -> RenderedCard {
    ok(app.cards().render_card(RenderCardRequest { card_id }).await)
}

// ===============================================================================================================
// 1. Reads
// ===============================================================================================================

async fn each_customer_reads_exactly_the_tickets_its_portal_shows(app: TestApp) {
    let world = setup(&app).await;
    let tickets = agent_view(&app).await;
    for &(customer, which, keys) in MATRIX {
        let what = format!("{} ({}) through {which:?}", customer.sub, customer.org);
        let portal = world.portal(which);
        let expected = world.expected_ids(&tickets, customer, portal);
        assert_eq!(
            expected,
            world.ids_of(keys),
            "{what}: the rules as modelled here agree with the matrix written by hand"
        );
        let mut client = world.tickets_as(&app, customer, which);

        let listed = list_all_as(&mut client, 2).await;
        assert_eq!(ids(&listed), expected, "{what}: ListTickets");
        let searched = search_all_as(
            &mut client,
            SearchTicketsRequest {
                page_size: 2,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(ids(&searched), expected, "{what}: SearchTickets");
        let by_words = search_all_as(
            &mut client,
            SearchTicketsRequest {
                query: "content".to_owned(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            ids(&by_words),
            expected,
            "{what}: SearchTickets by a word every ticket has"
        );
        let asked: Vec<i64> = expected.iter().rev().copied().collect();
        let batch = ok(client
            .batch_get_tickets(BatchGetTicketsRequest { ids: asked.clone() })
            .await);
        assert_eq!(
            ids(&batch.tickets),
            asked,
            "{what}: BatchGetTickets, in the order asked"
        );

        for &id in tickets.keys() {
            let result = client.get_ticket(GetTicketRequest { id }).await;
            if expected.contains(&id) {
                assert_eq!(ok(result).id, id, "{what}: GetTicket {}", world.key_of(id));
            } else {
                assert_not_found(result, "ticket", id);
            }
        }

        // Not one ticket of the other organization, whatever the read.
        let other_org = if customer.org == ORG_A { ORG_B } else { ORG_A };
        for read in [&listed, &searched, &by_words, &batch.tickets] {
            assert!(
                read.iter()
                    .all(|ticket| tickets[&ticket.id].organization_id != other_org),
                "{what}: a ticket of {other_org} was returned"
            );
        }
    }
}

async fn an_invisible_ticket_is_not_found_exactly_like_a_missing_one(app: TestApp) {
    let world = setup(&app).await;
    let missing = world.ids.values().max().copied().unwrap_or_default() + 1_000;
    // (customer, portal, a ticket it sees, tickets it does not see and why)
    let cases = [
        (
            ALICE,
            Which::P1,
            "a-alice-q",
            ["b-bob-q", "z-proj1-q", "z-alice-follows-q"],
        ),
        (
            BOB,
            Which::P1,
            "b-bob-q",
            ["a-alice-q", "a-secret-i", "z-proj2-q"],
        ),
        (
            ALICE,
            Which::P2,
            "a-alice-q",
            ["a-alice-i", "a-amy-q", "z-proj1-i"],
        ),
        (
            BOB,
            Which::P2,
            "b-bob-q",
            ["b-secret-q", "z-proj1-q", "z-alice-follows-q"],
        ),
    ];
    for (customer, which, seen, unseen) in cases {
        let mut client = world.tickets_as(&app, customer, which);
        let seen = world.id(seen);
        let missing_status = assert_not_found(
            client.get_ticket(GetTicketRequest { id: missing }).await,
            "ticket",
            missing,
        );
        for key in unseen {
            let id = world.id(key);
            let what = format!("{} through {which:?}, {key}", customer.sub);
            let status = assert_not_found(
                client.get_ticket(GetTicketRequest { id }).await,
                "ticket",
                id,
            );
            assert_same_answer(
                &status,
                id,
                &missing_status,
                missing,
                &format!("{what}: GetTicket"),
            );

            // Every per-ticket call answers the same way for the invisible and the missing id.
            let mut pairs: Vec<(Status, Status)> = Vec::new();
            let batch = |probe: i64| BatchGetTicketsRequest {
                ids: vec![seen, probe],
            };
            pairs.push((
                status_of(client.batch_get_tickets(batch(id)).await),
                status_of(client.batch_get_tickets(batch(missing)).await),
            ));
            let update = |probe: i64| {
                update_ticket_req(
                    Ticket {
                        id: probe,
                        subject: "probe".to_owned(),
                        ..Default::default()
                    },
                    &["subject"],
                )
            };
            pairs.push((
                status_of(client.update_ticket(update(id)).await),
                status_of(client.update_ticket(update(missing)).await),
            ));
            pairs.push((
                status_of(
                    client
                        .add_comment(comment_req(id, "probe", CommentVisibility::Public))
                        .await,
                ),
                status_of(
                    client
                        .add_comment(comment_req(missing, "probe", CommentVisibility::Public))
                        .await,
                ),
            ));
            let comments = |ticket_id: i64| ListCommentsRequest {
                ticket_id,
                ..Default::default()
            };
            pairs.push((
                status_of(client.list_comments(comments(id)).await),
                status_of(client.list_comments(comments(missing)).await),
            ));
            let history = |ticket_id: i64| ListTicketHistoryRequest {
                ticket_id,
                ..Default::default()
            };
            pairs.push((
                status_of(client.list_ticket_history(history(id)).await),
                status_of(client.list_ticket_history(history(missing)).await),
            ));
            let followers = |ticket_id: i64| ListFollowersRequest {
                ticket_id,
                ..Default::default()
            };
            pairs.push((
                status_of(client.list_followers(followers(id)).await),
                status_of(client.list_followers(followers(missing)).await),
            ));
            let follow = |ticket_id: i64| FollowTicketRequest {
                ticket_id,
                follower_id: String::new(),
            };
            pairs.push((
                status_of(client.follow_ticket(follow(id)).await),
                status_of(client.follow_ticket(follow(missing)).await),
            ));
            let entries = |ticket_id: i64| ListTimeEntriesRequest {
                ticket_id,
                ..Default::default()
            };
            pairs.push((
                status_of(client.list_time_entries(entries(id)).await),
                status_of(client.list_time_entries(entries(missing)).await),
            ));
            pairs.push((
                status_of(client.log_time(log_req(id, 10, "2024-05-02")).await),
                status_of(client.log_time(log_req(missing, 10, "2024-05-02")).await),
            ));
            for (index, (invisible, absent)) in pairs.iter().enumerate() {
                assert_eq!(
                    invisible.code(),
                    Code::NotFound,
                    "{what}: call #{index} must be NOT_FOUND, got {:?}",
                    invisible.message()
                );
                assert_same_answer(
                    invisible,
                    id,
                    absent,
                    missing,
                    &format!("{what}: call #{index}"),
                );
            }
            // BatchGet names the failing index.
            assert_eq!(
                pairs[0].0.message(),
                format!("ids[1]: ticket {id} not found"),
                "{what}: BatchGetTickets names the index"
            );
        }
    }
}

async fn hidden_fields_never_leave_in_ticket_reads(app: TestApp) {
    let world = setup(&app).await;
    let tickets = agent_view(&app).await;
    // The fixture really has hidden values to leak.
    let secret = &tickets[&world.id("a-secret-i")];
    assert_eq!(secret.assignee_id, AGENT);
    assert_eq!(secret.tags, strings(&["escalated", "vip"]));
    assert_eq!(secret.properties["internal_score"], "42");

    for &(customer, which, _) in MATRIX {
        let what = format!("{} through {which:?}", customer.sub);
        let portal = world.portal(which);
        let mut client = world.tickets_as(&app, customer, which);
        let expected_ids = world.expected_ids(&tickets, customer, portal);
        let expected: Vec<Ticket> = expected_ids
            .iter()
            .map(|id| world.redact(portal, &tickets[id]))
            .collect();

        let mut reads: Vec<(&str, Vec<Ticket>)> = vec![
            ("ListTickets", list_all_as(&mut client, 3).await),
            (
                "SearchTickets",
                search_all_as(&mut client, SearchTicketsRequest::default()).await,
            ),
            (
                "BatchGetTickets",
                ok(client
                    .batch_get_tickets(BatchGetTicketsRequest {
                        ids: expected_ids.clone(),
                    })
                    .await)
                .tickets,
            ),
        ];
        let mut got = Vec::new();
        for &id in &expected_ids {
            got.push(ok(client.get_ticket(GetTicketRequest { id }).await));
        }
        reads.push(("GetTicket", got));

        for (read, returned) in &reads {
            for ticket in returned {
                world.assert_no_hidden_value(portal, ticket, &format!("{what}: {read}"));
            }
            assert_eq!(
                returned, &expected,
                "{what}: {read} returns each ticket with exactly the hidden fields blanked"
            );
        }
    }

    // What the portals list does arrive.
    let a_secret = world.id("a-secret-i");
    let p1_view = ok(world
        .tickets_as(&app, AMY, Which::P1)
        .get_ticket(GetTicketRequest { id: a_secret })
        .await);
    assert_eq!(p1_view.priority(), Priority::High);
    assert_eq!(p1_view.stage_id, tickets[&a_secret].stage_id);
    assert_ne!(p1_view.stage_id, 0);
    assert_eq!(p1_view.properties, properties(&[("region", "emea")]));
    assert_eq!(p1_view.subject, "Server outage");
    assert_eq!(p1_view.content, "content of a-secret-i");
    assert_eq!(p1_view.etag, tickets[&a_secret].etag);
    let p2_view = ok(world
        .tickets_as(&app, ALICE, Which::P2)
        .get_ticket(GetTicketRequest {
            id: world.id("a-alice-q"),
        })
        .await);
    assert_ne!(p2_view.stage_id, 0, "P2 lists stage_id");
    assert_eq!(p2_view.priority, 0, "P2 does not list priority");
    assert!(p2_view.properties.is_empty(), "P2 lists no property");
}

async fn searches_filter_only_on_visible_fields(app: TestApp) {
    let world = setup(&app).await;
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);

    // Filters on what P1 shows work, inside the customer's tickets only (b-secret-q is URGENT too).
    let emea = search_all_as(
        &mut alice,
        search_req(vec![filter("region", FilterOperator::Eq, "emea")]),
    )
    .await;
    assert_eq!(ids(&emea), world.ids_of(&["a-secret-i"]));
    let apac = search_all_as(
        &mut alice,
        search_req(vec![filter("region", FilterOperator::Eq, "apac")]),
    )
    .await;
    assert_eq!(
        ids(&apac),
        world.ids_of(&["a-alice-q"]),
        "b-secret-q (apac) is org-b's"
    );
    let urgent_or_high = search_all_as(
        &mut alice,
        search_req(vec![filter_in(
            "priority",
            FilterOperator::In,
            &["HIGH", "URGENT"],
        )]),
    )
    .await;
    assert_eq!(
        ids(&urgent_or_high),
        world.ids_of(&["a-alice-q", "a-secret-i"])
    );
    let by_stage = search_all_as(
        &mut alice,
        search_req(vec![filter(
            "stage_id",
            FilterOperator::Eq,
            &world.stages[1].id.to_string(),
        )]),
    )
    .await;
    assert_eq!(ids(&by_stage), world.ids_of(&["a-alice-q"]));
    let by_id = search_all_as(
        &mut alice,
        search_req(vec![filter(
            "id",
            FilterOperator::Gte,
            &world.id("a-alice-q").to_string(),
        )]),
    )
    .await;
    assert_eq!(ids(&by_id), world.ids_of(ORG_A_TICKETS));
    for ticket in emea.iter().chain(&apac).chain(&urgent_or_high) {
        world.assert_no_hidden_value(&world.p1, ticket, "P1 search");
    }

    // Filters on hidden fields are refused, whatever they would match: nothing can be probed.
    let hidden_in_p1 = [
        ("assignee_id", FilterOperator::Eq, AGENT),
        ("tags", FilterOperator::ContainsToken, "vip"),
        ("requester_id", FilterOperator::Eq, "alice"),
        ("organization_id", FilterOperator::Eq, ORG_A),
        ("internal_score", FilterOperator::Gt, "1"),
        ("project_id", FilterOperator::Eq, PROJ_1),
        ("ticket_type", FilterOperator::Eq, QUESTION),
        ("pipeline_id", FilterOperator::Eq, "0"),
        ("no_such_property", FilterOperator::Eq, "x"),
    ];
    for (property, operator, value) in hidden_in_p1 {
        assert_field_denied(
            alice
                .search_tickets(search_req(vec![filter(property, operator, value)]))
                .await,
            "filter_groups[0].filters[0].property",
        );
    }
    // The error names the offending filter of the offending group.
    let request = SearchTicketsRequest {
        filter_groups: vec![
            FilterGroup {
                filters: vec![filter("priority", FilterOperator::Eq, "HIGH")],
            },
            FilterGroup {
                filters: vec![
                    filter("region", FilterOperator::Eq, "emea"),
                    filter("assignee_id", FilterOperator::HasProperty, ""),
                ],
            },
        ],
        ..Default::default()
    };
    assert_field_denied(
        alice.search_tickets(request).await,
        "filter_groups[1].filters[1].property",
    );

    // P2 shows neither priority nor region.
    let mut bob_p2 = world.tickets_as(&app, BOB, Which::P2);
    for property in ["priority", "region", "assignee_id"] {
        assert_field_denied(
            bob_p2
                .search_tickets(search_req(vec![filter(
                    property,
                    FilterOperator::HasProperty,
                    "",
                )]))
                .await,
            "filter_groups[0].filters[0].property",
        );
    }
    let bob_stage = search_all_as(
        &mut bob_p2,
        search_req(vec![filter(
            "stage_id",
            FilterOperator::Eq,
            &world.stages[0].id.to_string(),
        )]),
    )
    .await;
    assert_eq!(
        ids(&bob_stage),
        world.ids_of(&["b-bob-q", "z-proj2-q", "z-bob-follows-q"])
    );
}

// ===============================================================================================================
// 3. Comments and 4. history
// ===============================================================================================================

async fn customers_never_see_internal_comments_and_add_only_public_ones(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let mut agent = agent(&app);
    let all = comments_as(&mut agent, a, 10).await;
    assert_eq!(
        all.iter().map(|c| c.visibility()).collect::<Vec<_>>(),
        [CommentVisibility::Public, CommentVisibility::Internal],
        "the agent sees both comments"
    );
    let public: Vec<Comment> = all
        .iter()
        .filter(|c| c.visibility() == CommentVisibility::Public)
        .cloned()
        .collect();

    for (customer, which) in [(ALICE, Which::P1), (AMY, Which::P1), (ALICE, Which::P2)] {
        let mut client = world.tickets_as(&app, customer, which);
        for page_size in [1, 50] {
            assert_eq!(
                comments_as(&mut client, a, page_size).await,
                public,
                "{} through {which:?}, page size {page_size}: public comments only",
                customer.sub
            );
        }
    }
    // A ticket with only an internal comment lists none.
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    assert!(
        comments_as(&mut alice, world.id("a-secret-i"), 10)
            .await
            .is_empty()
    );
    let mut bob = world.tickets_as(&app, BOB, Which::P1);
    let bobs = comments_as(&mut bob, world.id("b-bob-q"), 10).await;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].body, "Chair ordered");

    // Customers add public comments only, in their own name.
    let status = assert_field_denied(
        alice
            .add_comment(comment_req(a, "psst", CommentVisibility::Internal))
            .await,
        "visibility",
    );
    assert!(status.message().contains("PUBLIC"));
    assert_invalid(
        alice
            .add_comment(comment_req(
                a,
                "no visibility",
                CommentVisibility::Unspecified,
            ))
            .await,
        "visibility",
    );
    let added = ok(alice
        .add_comment(comment_req(a, "Thanks!", CommentVisibility::Public))
        .await);
    assert_eq!(added.author_id, ALICE.sub);
    assert_eq!(added.ticket_id, a);
    assert_eq!(added.visibility(), CommentVisibility::Public);
    assert_eq!(added.body, "Thanks!");

    assert_eq!(
        comment_ids(&comments_as(&mut agent, a, 10).await),
        [comment_ids(&all), vec![added.id]].concat(),
        "the internal attempt added nothing"
    );
    let mut amy = world.tickets_as(&app, AMY, Which::P1);
    assert_eq!(
        comments_as(&mut amy, a, 10).await,
        [public, vec![added]].concat(),
        "amy (same organization) sees alice's comment"
    );

    // Tickets the customer does not see.
    let b = world.id("b-bob-q");
    assert_not_found(
        alice
            .add_comment(comment_req(b, "hello", CommentVisibility::Public))
            .await,
        "ticket",
        b,
    );
    assert_not_found(
        alice
            .list_comments(ListCommentsRequest {
                ticket_id: b,
                ..Default::default()
            })
            .await,
        "ticket",
        b,
    );
}

async fn customer_history_leaves_out_internal_comments_associations_and_hidden_changes(
    app: TestApp,
) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let agent_history = app.history(a).await;
    // The fixture has everything that must be left out.
    let kinds: Vec<TicketEventKind> = agent_history.iter().map(|e| e.kind()).collect();
    assert!(kinds.contains(&TicketEventKind::AssociationAdded));
    assert!(kinds.contains(&TicketEventKind::AssociationRemoved));
    assert!(agent_history.iter().any(|e| {
        e.comment
            .as_ref()
            .is_some_and(|c| c.visibility() == CommentVisibility::Internal)
    }));
    let changed = |field: &str| {
        agent_history
            .iter()
            .any(|e| e.changes.iter().any(|c| c.field == field))
    };
    for field in [
        "assignee_id",
        "tags",
        "properties.internal_score",
        "priority",
        "stage_id",
        "properties.region",
    ] {
        assert!(changed(field), "the agent's history changes {field}");
    }

    for (customer, which) in [(ALICE, Which::P1), (AMY, Which::P1), (ALICE, Which::P2)] {
        let what = format!("{} through {which:?}", customer.sub);
        let portal = world.portal(which);
        let expected: Vec<TicketEvent> = agent_history
            .iter()
            .filter_map(|event| world.customer_event(portal, event))
            .collect();
        let mut client = world.tickets_as(&app, customer, which);
        for page_size in [1, 3, 100] {
            let history = history_as(&mut client, a, page_size).await;
            assert_eq!(
                history, expected,
                "{what}, page size {page_size}: the history as the rules let it through"
            );
            for event in &history {
                world.assert_event_leaks_nothing(portal, event, &what);
            }
        }
    }

    // Spelled out for P1: CREATED, the public comment, the priority (not the assignee) of the mixed change,
    // the stage change and the region change; P2 also loses the priority and region changes.
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    let p1_history = history_as(&mut alice, a, 100).await;
    assert_eq!(
        p1_history.iter().map(|e| e.kind()).collect::<Vec<_>>(),
        [
            TicketEventKind::Created,
            TicketEventKind::CommentAdded,
            TicketEventKind::Updated,
            TicketEventKind::StageChanged,
            TicketEventKind::Updated,
        ]
    );
    assert_eq!(
        p1_history[2]
            .changes
            .iter()
            .map(|c| c.field.as_str())
            .collect::<Vec<_>>(),
        ["priority"]
    );
    let created_fields: BTreeSet<&str> = p1_history[0]
        .changes
        .iter()
        .map(|c| c.field.as_str())
        .collect();
    assert_eq!(
        created_fields,
        BTreeSet::from([
            "subject",
            "content",
            "stage_id",
            "priority",
            "properties.region"
        ])
    );
    let mut alice_p2 = world.tickets_as(&app, ALICE, Which::P2);
    let p2_kinds: Vec<TicketEventKind> = history_as(&mut alice_p2, a, 100)
        .await
        .iter()
        .map(|e| e.kind())
        .collect();
    assert_eq!(
        p2_kinds,
        [
            TicketEventKind::Created,
            TicketEventKind::CommentAdded,
            TicketEventKind::StageChanged,
        ]
    );

    // A CREATED event of a ticket full of hidden values.
    let secret = history_as(&mut alice, world.id("a-secret-i"), 100).await;
    assert_eq!(secret.len(), 1, "the internal comment is left out");
    let fields: BTreeSet<&str> = secret[0].changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        BTreeSet::from([
            "subject",
            "content",
            "stage_id",
            "priority",
            "properties.region"
        ])
    );

    // Tickets the customer does not see.
    for (customer, which, key) in [
        (BOB, Which::P1, "a-alice-q"),
        (ALICE, Which::P2, "a-alice-i"),
        (AMY, Which::P2, "z-alice-follows-q"),
    ] {
        let id = world.id(key);
        assert_not_found(
            world
                .tickets_as(&app, customer, which)
                .list_ticket_history(ListTicketHistoryRequest {
                    ticket_id: id,
                    ..Default::default()
                })
                .await,
            "ticket",
            id,
        );
    }
}

// ===============================================================================================================
// 5. Streams
// ===============================================================================================================

/// Live changes made while customers watch: most of them must not reach anyone but the agent.
async fn live_changes_for_org_portals(app: &TestApp, world: &World) {
    let a = world.id("a-alice-q");
    let mut agent = agent(app);
    // Another organization's ticket.
    set_subject(app, world.id("b-member-i"), "Badge found").await;
    // An internal comment and an association on a visible ticket.
    comment(app, a, "internal, live", CommentVisibility::Internal).await;
    ok(app
        .associations_as(&agent_token(AGENT))
        .create_association(CreateAssociationRequest {
            ticket_id: a,
            association: Some(link("company", "77", 0)),
            request_id: String::new(),
        })
        .await);
    // A change of hidden fields only, then a mixed one.
    ok(agent
        .update_ticket(update_ticket_req(
            Ticket {
                id: a,
                assignee_id: "agent-3".to_owned(),
                tags: strings(&["live"]),
                ..Default::default()
            },
            &["assignee_id", "tags"],
        ))
        .await);
    ok(agent
        .update_ticket(update_ticket_req(
            Ticket {
                id: world.id("a-secret-i"),
                priority: Priority::Low.into(),
                tags: strings(&["calm"]),
                properties: properties(&[("internal_score", "1")]),
                ..Default::default()
            },
            &["priority", "tags", "properties.internal_score"],
        ))
        .await);
    // A public comment, and a new ticket of org-a requested by a member.
    comment(app, a, "public, live", CommentVisibility::Public).await;
    ok(agent
        .create_ticket(create_ticket_req(Ticket {
            subject: "Created live".to_owned(),
            requester_id: "carol".to_owned(),
            organization_id: ORG_A.to_owned(),
            assignee_id: AGENT.to_owned(),
            ..Default::default()
        }))
        .await);
}

async fn organization_portal_streams_carry_only_visible_redacted_events(app: TestApp) {
    let world = setup(&app).await;
    let (a, b) = (world.id("a-alice-q"), world.id("b-bob-q"));
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    let mut bob = world.tickets_as(&app, BOB, Which::P1);

    let replay = watch_all(world.before_setup);
    let mut alice_replay = watch_as(&mut alice, replay.clone(), "alice's replay")
        .await
        .expect("alice may watch");
    let mut bob_replay = watch_as(&mut bob, replay, "bob's replay")
        .await
        .expect("bob may watch");
    let opened_at = app
        .all_history()
        .await
        .last()
        .map_or(0, |event| event.event_id);
    let mut alice_live = watch_as(&mut alice, watch_all(0), "alice's live stream")
        .await
        .expect("alice may watch");

    live_changes_for_org_portals(&app, &world).await;
    set_subject(&app, a, "Marker for alice").await;
    set_subject(&app, b, "Marker for bob").await;

    let alice_events =
        collect_until_marker(&mut alice_replay, a, "Marker for alice", "alice's replay").await;
    let alice_live_events = collect_until_marker(
        &mut alice_live,
        a,
        "Marker for alice",
        "alice's live stream",
    )
    .await;
    let bob_events =
        collect_until_marker(&mut bob_replay, b, "Marker for bob", "bob's replay").await;

    let all_events = app.all_history().await;
    let tickets = agent_view(&app).await;
    let alice_sees = world.expected_ids(&tickets, ALICE, &world.p1);
    let bob_sees = world.expected_ids(&tickets, BOB, &world.p1);
    world.assert_stream(
        &world.p1,
        &alice_events,
        &all_events,
        &alice_sees,
        world.before_setup,
        "alice's replay",
    );
    world.assert_stream(
        &world.p1,
        &alice_live_events,
        &all_events,
        &alice_sees,
        opened_at,
        "alice's live stream",
    );
    world.assert_stream(
        &world.p1,
        &bob_events,
        &all_events,
        &bob_sees,
        world.before_setup,
        "bob's replay",
    );

    // Spelled out: the live part reached alice as the public comment, the priority of the mixed change, the
    // new org-a ticket and the marker; nothing of org-b reached her and nothing of org-a reached bob.
    let live_kinds: Vec<TicketEventKind> = alice_live_events.iter().map(|e| e.kind()).collect();
    assert_eq!(
        live_kinds,
        [
            TicketEventKind::Updated,
            TicketEventKind::CommentAdded,
            TicketEventKind::Created,
            TicketEventKind::Updated,
        ],
        "alice's live events"
    );
    assert_eq!(alice_live_events[0].ticket_id, world.id("a-secret-i"));
    assert_eq!(
        alice_live_events[0]
            .changes
            .iter()
            .map(|c| c.field.as_str())
            .collect::<Vec<_>>(),
        ["priority"]
    );
    let org_of = |id: i64| tickets[&id].organization_id.as_str();
    assert!(alice_events.iter().all(|e| org_of(e.ticket_id) == ORG_A));
    assert!(bob_events.iter().all(|e| org_of(e.ticket_id) == ORG_B));
    assert!(
        bob_events
            .iter()
            .any(|e| e.ticket_id == world.id("b-member-i") && e.kind() == TicketEventKind::Updated),
        "bob sees the live change of his organization's ticket"
    );
}

async fn follower_portal_streams_carry_followed_and_project_tickets_only(app: TestApp) {
    let world = setup(&app).await;
    let (a, b) = (world.id("a-alice-q"), world.id("b-bob-q"));
    let mut alice = world.tickets_as(&app, ALICE, Which::P2);
    let mut bob = world.tickets_as(&app, BOB, Which::P2);
    let replay = watch_all(world.before_setup);
    let mut alice_stream = watch_as(&mut alice, replay.clone(), "alice's P2 replay")
        .await
        .expect("alice may watch");
    let mut bob_stream = watch_as(&mut bob, replay, "bob's P2 replay")
        .await
        .expect("bob may watch");

    // Live: a project ticket each, a followed ticket each, an incident alice requested (type not allowed), an
    // internal comment on a followed ticket, another organization's question.
    set_subject(&app, world.id("z-proj2-q"), "Migration moved").await;
    set_subject(&app, world.id("z-proj1-q"), "Rollout moved").await;
    comment(
        &app,
        world.id("z-bob-follows-q"),
        "Desk delivered",
        CommentVisibility::Public,
    )
    .await;
    comment(
        &app,
        world.id("z-alice-follows-q"),
        "internal about the printer",
        CommentVisibility::Internal,
    )
    .await;
    set_subject(&app, world.id("a-alice-i"), "VPN still down").await;
    set_subject(&app, world.id("b-secret-q"), "Contract dispute (legal)").await;
    set_subject(&app, world.id("z-proj1-i"), "Rollout failure (again)").await;
    set_subject(&app, a, "Marker for alice").await;
    set_subject(&app, b, "Marker for bob").await;

    let alice_events = collect_until_marker(
        &mut alice_stream,
        a,
        "Marker for alice",
        "alice's P2 replay",
    )
    .await;
    let bob_events =
        collect_until_marker(&mut bob_stream, b, "Marker for bob", "bob's P2 replay").await;

    let all_events = app.all_history().await;
    let tickets = agent_view(&app).await;
    let alice_sees = world.expected_ids(&tickets, ALICE, &world.p2);
    let bob_sees = world.expected_ids(&tickets, BOB, &world.p2);
    assert_eq!(
        alice_sees,
        world.ids_of(&["a-alice-q", "z-proj1-q", "z-alice-follows-q"])
    );
    assert_eq!(
        bob_sees,
        world.ids_of(&["b-bob-q", "z-proj2-q", "z-bob-follows-q"])
    );
    world.assert_stream(
        &world.p2,
        &alice_events,
        &all_events,
        &alice_sees,
        world.before_setup,
        "alice's P2 replay",
    );
    world.assert_stream(
        &world.p2,
        &bob_events,
        &all_events,
        &bob_sees,
        world.before_setup,
        "bob's P2 replay",
    );
    // Each visible ticket reached its customer; the others did not.
    let streamed = |events: &[TicketEvent]| -> Vec<i64> {
        sorted_ids(events.iter().map(|e| e.ticket_id).collect())
    };
    assert_eq!(streamed(&alice_events), alice_sees);
    assert_eq!(streamed(&bob_events), bob_sees);
}

async fn stream_filters_on_hidden_fields_are_refused(app: TestApp) {
    let world = setup(&app).await;
    let no_stage = create_portal(
        &app,
        Portal {
            name: "nothing but the ticket".to_owned(),
            requested_tickets: true,
            ..Default::default()
        },
    )
    .await;
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    let refused = [
        (
            WatchTicketsRequest {
                assignee_id: AGENT.to_owned(),
                ..Default::default()
            },
            "assignee_id",
        ),
        (
            WatchTicketsRequest {
                organization_id: ORG_A.to_owned(),
                ..Default::default()
            },
            "organization_id",
        ),
        (
            WatchTicketsRequest {
                pipeline_id_set: true,
                ..Default::default()
            },
            "pipeline_id",
        ),
    ];
    for (request, field) in refused {
        let result = alice.watch_tickets(request).await;
        assert_field_denied(result, field);
    }
    let mut hidden_stage = app.tickets_as(&customer_token(ALICE.sub, ALICE.org, no_stage.id));
    assert_field_denied(
        hidden_stage
            .watch_tickets(WatchTicketsRequest {
                stage_ids: vec![world.stages[0].id],
                ..Default::default()
            })
            .await,
        "stage_ids",
    );

    // A filter on a field P1 shows is fine, and works.
    let a = world.id("a-alice-q");
    let mut by_stage = watch_as(
        &mut alice,
        WatchTicketsRequest {
            stage_ids: vec![world.stages[1].id],
            ..Default::default()
        },
        "alice's stage watch",
    )
    .await
    .expect("stage_id is visible through P1");
    set_subject(&app, world.id("a-amy-q"), "not in the watched stage").await;
    set_subject(&app, a, "Marker in stage 2").await;
    let events =
        collect_until_marker(&mut by_stage, a, "Marker in stage 2", "alice's stage watch").await;
    assert_eq!(
        events.iter().map(|e| e.ticket_id).collect::<Vec<_>>(),
        [a],
        "only the ticket in the watched stage: a-amy-q's change is filtered out"
    );
    world.assert_event_leaks_nothing(&world.p1, &events[0], "alice's stage watch");
}

// ===============================================================================================================
// 6. Writes
// ===============================================================================================================

async fn customers_create_tickets_as_requester_of_their_own_organization(app: TestApp) {
    let world = setup(&app).await;
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);

    let created = ok(alice
        .create_ticket(create_ticket_req(Ticket {
            subject: "Coffee machine broken".to_owned(),
            content: "It leaks".to_owned(),
            priority: Priority::Medium.into(),
            properties: properties(&[("region", "emea")]),
            ..Default::default()
        }))
        .await);
    let stored = app.get_ticket(created.id).await;
    assert_eq!(
        stored.requester_id, ALICE.sub,
        "the customer is the requester"
    );
    assert_eq!(
        stored.organization_id, ORG_A,
        "its organization owns the ticket"
    );
    assert_eq!(stored.priority(), Priority::Medium);
    assert_eq!(stored.properties, properties(&[("region", "emea")]));
    assert_eq!(
        created,
        world.redact(&world.p1, &stored),
        "the response is redacted like any read"
    );
    assert!(created.requester_id.is_empty() && created.organization_id.is_empty());
    let history = app.history(created.id).await;
    assert_eq!(history[0].kind(), TicketEventKind::Created);
    assert_eq!(history[0].actor_id, ALICE.sub);
    assert_eq!(
        followers_as(&mut agent(&app), created.id).await,
        [ALICE.sub],
        "the requester follows its ticket"
    );
    // Amy (same organization) sees it, bob does not.
    let mut amy = world.tickets_as(&app, AMY, Which::P1);
    assert_eq!(
        ok(amy.get_ticket(GetTicketRequest { id: created.id }).await).subject,
        "Coffee machine broken"
    );
    assert_not_found(
        world
            .tickets_as(&app, BOB, Which::P1)
            .get_ticket(GetTicketRequest { id: created.id })
            .await,
        "ticket",
        created.id,
    );

    // Naming itself and its own organization is allowed.
    let explicit = ok(alice
        .create_ticket(create_ticket_req(Ticket {
            subject: "Explicitly mine".to_owned(),
            requester_id: ALICE.sub.to_owned(),
            organization_id: ORG_A.to_owned(),
            ..Default::default()
        }))
        .await);
    let stored = app.get_ticket(explicit.id).await;
    assert_eq!(
        (
            stored.requester_id.as_str(),
            stored.organization_id.as_str()
        ),
        (ALICE.sub, ORG_A)
    );

    // A batch: every ticket is the customer's, every response redacted.
    let batch = ok(alice
        .batch_create_tickets(BatchCreateTicketsRequest {
            requests: vec![
                create_ticket_req(ticket("batch one")),
                create_ticket_req(Ticket {
                    subject: "batch two".to_owned(),
                    priority: Priority::Urgent.into(),
                    ..Default::default()
                }),
            ],
            request_id: String::new(),
        })
        .await);
    assert_eq!(batch.tickets.len(), 2);
    for returned in &batch.tickets {
        let stored = app.get_ticket(returned.id).await;
        assert_eq!(
            (
                stored.requester_id.as_str(),
                stored.organization_id.as_str()
            ),
            (ALICE.sub, ORG_A)
        );
        assert_eq!(returned, &world.redact(&world.p1, &stored));
    }

    // Through P2: an allowed type, nothing else, and the response shows only the stage.
    let mut amy_p2 = world.tickets_as(&app, AMY, Which::P2);
    let question = ok(amy_p2
        .create_ticket(create_ticket_req(Ticket {
            subject: "How do I print?".to_owned(),
            ticket_type: QUESTION.to_owned(),
            ..Default::default()
        }))
        .await);
    let stored = app.get_ticket(question.id).await;
    assert_eq!(
        (
            stored.requester_id.as_str(),
            stored.organization_id.as_str(),
            stored.ticket_type.as_str()
        ),
        (AMY.sub, ORG_A, QUESTION)
    );
    assert_eq!(question, world.redact(&world.p2, &stored));
    assert!(
        question.ticket_type.is_empty(),
        "P2 does not list ticket_type"
    );
    assert_eq!(
        ok(amy_p2
            .get_ticket(GetTicketRequest { id: question.id })
            .await)
        .id,
        question.id
    );
}

async fn customer_creates_refuse_every_field_the_portal_does_not_let_them_set(app: TestApp) {
    let world = setup(&app).await;
    let before = agent_view(&app).await.len();
    let subject = |s: &str| Ticket {
        subject: s.to_owned(),
        ..Default::default()
    };
    let p1 = [
        (
            Ticket {
                requester_id: AMY.sub.to_owned(),
                ..subject("for amy")
            },
            "ticket.requester_id",
        ),
        (
            Ticket {
                organization_id: ORG_B.to_owned(),
                ..subject("for org-b")
            },
            "ticket.organization_id",
        ),
        (
            Ticket {
                assignee_id: AGENT.to_owned(),
                ..subject("assigned")
            },
            "ticket.assignee_id",
        ),
        (
            Ticket {
                project_id: PROJ_1.to_owned(),
                ..subject("in a project")
            },
            "ticket.project_id",
        ),
        (
            Ticket {
                pipeline_id: 7,
                ..subject("in a pipeline")
            },
            "ticket.pipeline_id",
        ),
        (
            Ticket {
                stage_id: world.stages[1].id,
                ..subject("in a stage (visible, not editable)")
            },
            "ticket.stage_id",
        ),
        (
            Ticket {
                tags: strings(&["vip"]),
                ..subject("tagged")
            },
            "ticket.tags",
        ),
        (
            Ticket {
                properties: properties(&[("internal_score", "99")]),
                ..subject("scored")
            },
            "ticket.properties.internal_score",
        ),
    ];
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    for (ticket, field) in p1 {
        assert_field_denied(alice.create_ticket(create_ticket_req(ticket)).await, field);
    }
    assert_field_denied(
        alice
            .create_ticket(CreateTicketRequest {
                associations: vec![AssociationSpec {
                    to: Some(object("contact", "201")),
                    association_type_id: 0,
                }],
                ..create_ticket_req(subject("linked"))
            })
            .await,
        "associations",
    );
    assert_field_denied(
        alice
            .batch_create_tickets(BatchCreateTicketsRequest {
                requests: vec![
                    create_ticket_req(subject("fine")),
                    create_ticket_req(Ticket {
                        requester_id: BOB.sub.to_owned(),
                        ..subject("for bob")
                    }),
                ],
                request_id: String::new(),
            })
            .await,
        "requests[1].ticket.requester_id",
    );

    let p2 = [
        (
            Ticket {
                ticket_type: INCIDENT.to_owned(),
                ..subject("an incident")
            },
            "ticket.ticket_type",
        ),
        (subject("no type"), "ticket.ticket_type"),
        (
            Ticket {
                ticket_type: QUESTION.to_owned(),
                priority: Priority::High.into(),
                ..subject("prioritised")
            },
            "ticket.priority",
        ),
        (
            Ticket {
                ticket_type: QUESTION.to_owned(),
                properties: properties(&[("region", "emea")]),
                ..subject("region is not listed by P2")
            },
            "ticket.properties.region",
        ),
    ];
    let mut amy_p2 = world.tickets_as(&app, AMY, Which::P2);
    for (ticket, field) in p2 {
        assert_field_denied(amy_p2.create_ticket(create_ticket_req(ticket)).await, field);
    }
    assert_eq!(
        agent_view(&app).await.len(),
        before,
        "no refused create left a ticket behind"
    );
}

async fn customers_update_only_editable_fields_of_visible_tickets(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    let update =
        |ticket: Ticket, paths: &[&str]| update_ticket_req(Ticket { id: a, ..ticket }, paths);
    let original_etag = app.get_ticket(a).await.etag;

    // Editable: subject, content (always), priority and region (P1).
    let updated = ok(alice
        .update_ticket(update(
            Ticket {
                subject: "Printer jammed again".to_owned(),
                content: "Paper everywhere".to_owned(),
                priority: Priority::Urgent.into(),
                properties: properties(&[("region", "amer")]),
                ..Default::default()
            },
            &["subject", "content", "priority", "properties.region"],
        ))
        .await);
    let stored = app.get_ticket(a).await;
    assert_eq!(stored.subject, "Printer jammed again");
    assert_eq!(stored.content, "Paper everywhere");
    assert_eq!(stored.priority(), Priority::Urgent);
    assert_eq!(stored.properties["region"], "amer");
    assert_eq!(
        stored.properties["internal_score"], "5",
        "changing one property keeps the hidden ones"
    );
    assert_eq!(stored.assignee_id, "agent-2");
    assert_eq!(
        updated,
        world.redact(&world.p1, &stored),
        "the response is redacted"
    );
    let last = app.history(a).await.pop().expect("an event");
    assert_eq!(last.actor_id, ALICE.sub);

    // Not editable through P1 (some visible, some hidden): refused naming the field, and nothing changes.
    let refused = [
        (
            Ticket {
                assignee_id: "alice".to_owned(),
                ..Default::default()
            },
            "assignee_id",
        ),
        (
            Ticket {
                properties: properties(&[("internal_score", "0")]),
                ..Default::default()
            },
            "properties.internal_score",
        ),
        (
            Ticket {
                stage_id: world.stages[3].id,
                ..Default::default()
            },
            "stage_id",
        ),
        (
            Ticket {
                tags: strings(&["mine"]),
                ..Default::default()
            },
            "tags",
        ),
        (
            Ticket {
                requester_id: AMY.sub.to_owned(),
                ..Default::default()
            },
            "requester_id",
        ),
        (
            Ticket {
                organization_id: ORG_B.to_owned(),
                ..Default::default()
            },
            "organization_id",
        ),
        (
            Ticket {
                project_id: PROJ_1.to_owned(),
                ..Default::default()
            },
            "project_id",
        ),
        (
            Ticket {
                ticket_type: QUESTION.to_owned(),
                ..Default::default()
            },
            "ticket_type",
        ),
        (
            Ticket {
                pipeline_id: 0,
                ..Default::default()
            },
            "pipeline_id",
        ),
        (
            Ticket {
                properties: properties(&[("region", "emea")]),
                ..Default::default()
            },
            "properties",
        ),
    ];
    for (ticket, path) in refused {
        assert_field_denied(
            alice.update_ticket(update(ticket, &[path])).await,
            &format!("ticket.{path}"),
        );
    }
    // With an empty mask the fields set count.
    assert_field_denied(
        alice
            .update_ticket(update(
                Ticket {
                    subject: "sneaky".to_owned(),
                    assignee_id: "alice".to_owned(),
                    ..Default::default()
                },
                &[],
            ))
            .await,
        "ticket.assignee_id",
    );
    assert_eq!(
        app.get_ticket(a).await,
        stored,
        "no refused update changed anything (same etag)"
    );

    // A stale etag is ABORTED for customers too.
    let stale = assert_code(
        alice
            .update_ticket(update(
                Ticket {
                    subject: "stale".to_owned(),
                    etag: original_etag,
                    ..Default::default()
                },
                &["subject"],
            ))
            .await,
        Code::Aborted,
    );
    assert!(stale.message().contains("etag"));

    // Invisible tickets: NOT_FOUND, even for an editable field.
    let b = world.id("b-bob-q");
    assert_not_found(
        alice
            .update_ticket(update_ticket_req(
                Ticket {
                    id: b,
                    subject: "hijacked".to_owned(),
                    ..Default::default()
                },
                &["subject"],
            ))
            .await,
        "ticket",
        b,
    );
    let mut alice_p2 = world.tickets_as(&app, ALICE, Which::P2);
    let incident = world.id("a-alice-i");
    assert_not_found(
        alice_p2
            .update_ticket(update_ticket_req(
                Ticket {
                    id: incident,
                    subject: "type not allowed".to_owned(),
                    ..Default::default()
                },
                &["subject"],
            ))
            .await,
        "ticket",
        incident,
    );
    // P2 lets customers edit subject and content only.
    assert_field_denied(
        alice_p2
            .update_ticket(update(
                Ticket {
                    priority: Priority::Low.into(),
                    ..Default::default()
                },
                &["priority"],
            ))
            .await,
        "ticket.priority",
    );
    assert_field_denied(
        alice_p2
            .update_ticket(update(
                Ticket {
                    properties: properties(&[("region", "emea")]),
                    ..Default::default()
                },
                &["properties.region"],
            ))
            .await,
        "ticket.properties.region",
    );
    let p2_updated = ok(alice_p2
        .update_ticket(update(
            Ticket {
                subject: "Printer jammed (P2)".to_owned(),
                ..Default::default()
            },
            &["subject"],
        ))
        .await);
    assert_eq!(
        p2_updated,
        world.redact(&world.p2, &app.get_ticket(a).await)
    );

    // Batches: all or nothing, NOT_FOUND naming the index, redacted answers.
    let before_batch = app.get_ticket(a).await;
    let item = |id: i64, subject: &str| {
        update_ticket_req(
            Ticket {
                id,
                subject: subject.to_owned(),
                ..Default::default()
            },
            &["subject"],
        )
    };
    let status = assert_code(
        alice
            .batch_update_tickets(BatchUpdateTicketsRequest {
                requests: vec![item(a, "batch a"), item(b, "batch b")],
                request_id: String::new(),
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(
        status.message(),
        format!("requests[1]: ticket {b} not found")
    );
    assert_field_denied(
        alice
            .batch_update_tickets(BatchUpdateTicketsRequest {
                requests: vec![
                    item(a, "batch a"),
                    UpdateTicketRequest {
                        ticket: Some(Ticket {
                            id: world.id("a-amy-q"),
                            assignee_id: "alice".to_owned(),
                            ..Default::default()
                        }),
                        update_mask: mask(&["assignee_id"]),
                        request_id: String::new(),
                    },
                ],
                request_id: String::new(),
            })
            .await,
        "requests[1].ticket.assignee_id",
    );
    assert_eq!(
        app.get_ticket(a).await,
        before_batch,
        "refused batches change nothing"
    );
    let amy_ticket = world.id("a-amy-q");
    let batch = ok(alice
        .batch_update_tickets(BatchUpdateTicketsRequest {
            requests: vec![item(a, "batch a"), item(amy_ticket, "batch amy")],
            request_id: String::new(),
        })
        .await);
    let tickets = agent_view(&app).await;
    assert_eq!(
        batch.tickets,
        vec![
            world.redact(&world.p1, &tickets[&a]),
            world.redact(&world.p1, &tickets[&amy_ticket])
        ]
    );
}

async fn customers_cannot_archive_or_restore(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    assert_not_for_customers(
        alice
            .archive_ticket(ArchiveTicketRequest {
                id: a,
                ..Default::default()
            })
            .await,
        "ArchiveTicket",
    );
    assert_not_for_customers(
        alice
            .batch_archive_tickets(BatchArchiveTicketsRequest {
                requests: vec![ArchiveTicketRequest {
                    id: a,
                    ..Default::default()
                }],
                request_id: String::new(),
            })
            .await,
        "BatchArchiveTickets",
    );
    assert!(
        !app.get_ticket(a).await.archived,
        "the ticket is not archived"
    );

    ok(agent(&app)
        .archive_ticket(ArchiveTicketRequest {
            id: a,
            ..Default::default()
        })
        .await);
    assert_not_for_customers(
        alice
            .restore_ticket(RestoreTicketRequest {
                id: a,
                request_id: String::new(),
            })
            .await,
        "RestoreTicket",
    );
    assert!(
        app.get_ticket(a).await.archived,
        "the ticket stays archived"
    );
    // An archived ticket stays readable (Get) but leaves the customer's listing.
    let fetched = ok(alice.get_ticket(GetTicketRequest { id: a }).await);
    assert!(fetched.archived);
    assert!(!ids(&list_all_as(&mut alice, 50).await).contains(&a));
}

// ===============================================================================================================
// 7. Followers
// ===============================================================================================================

async fn requesters_follow_their_tickets_and_customers_see_only_their_own_follow(app: TestApp) {
    let mut world = setup(&app).await;
    let mut agent = agent(&app);
    // Every seeded ticket is followed by its requester.
    for seed in SEEDS {
        let followers = followers_as(&mut agent, world.id(seed.key)).await;
        assert!(
            followers.contains(&seed.requester.to_owned()),
            "{}: the requester {} follows automatically, got {followers:?}",
            seed.key,
            seed.requester
        );
    }
    let amy_ticket = world.id("a-amy-q");
    world.follow(&app, amy_ticket, ALICE.sub).await;
    world.follow(&app, amy_ticket, "agent-9").await;
    assert_eq!(
        followers_as(&mut agent, amy_ticket).await,
        ["agent-9", "alice", "amy"],
        "the agent sees every follower"
    );
    let mut amy = world.tickets_as(&app, AMY, Which::P1);
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    assert_eq!(followers_as(&mut amy, amy_ticket).await, ["amy"]);
    assert_eq!(followers_as(&mut alice, amy_ticket).await, ["alice"]);
    assert!(
        followers_as(&mut amy, world.id("a-member-q"))
            .await
            .is_empty(),
        "amy sees the ticket but follows it not, and learns nothing of carol"
    );
    let mut amy_p2 = world.tickets_as(&app, AMY, Which::P2);
    assert_eq!(followers_as(&mut amy_p2, amy_ticket).await, ["amy"]);
    assert_not_found(
        world
            .tickets_as(&app, BOB, Which::P1)
            .list_followers(ListFollowersRequest {
                ticket_id: amy_ticket,
                ..Default::default()
            })
            .await,
        "ticket",
        amy_ticket,
    );
    // A requester set later follows too.
    ok(agent
        .update_ticket(update_ticket_req(
            Ticket {
                id: world.id("z-noise-i"),
                requester_id: BOB.sub.to_owned(),
                ..Default::default()
            },
            &["requester_id"],
        ))
        .await);
    assert!(
        followers_as(&mut agent, world.id("z-noise-i"))
            .await
            .contains(&BOB.sub.to_owned())
    );
}

async fn follower_portal_shows_tickets_through_follows_and_projects(app: TestApp) {
    let mut world = setup(&app).await;
    let mut agent = agent(&app);
    let late = ok(agent
        .create_ticket(create_ticket_req(Ticket {
            subject: "Followed later".to_owned(),
            requester_id: "zed".to_owned(),
            organization_id: ORG_Z.to_owned(),
            ticket_type: QUESTION.to_owned(),
            ..Default::default()
        }))
        .await);
    let mut alice = world.tickets_as(&app, ALICE, Which::P2);
    let sees = |client: &mut Tickets, id: i64| {
        let mut client = client.clone();
        async move {
            match client.get_ticket(GetTicketRequest { id }).await {
                Ok(_) => true,
                Err(status) if status.code() == Code::NotFound => false,
                Err(status) => panic!("GetTicket {id}: {status:?}"),
            }
        }
    };
    assert!(!sees(&mut alice, late.id).await, "not followed yet");

    // An agent makes alice follow: she sees it, in every read.
    world.follow(&app, late.id, ALICE.sub).await;
    assert!(sees(&mut alice, late.id).await);
    assert!(ids(&list_all_as(&mut alice, 50).await).contains(&late.id));
    assert!(
        ids(&search_all_as(&mut alice, SearchTicketsRequest::default()).await).contains(&late.id)
    );
    // Amy (same organization) does not: following is personal.
    let mut amy = world.tickets_as(&app, AMY, Which::P2);
    assert!(!sees(&mut amy, late.id).await);

    // Alice unfollows it herself: gone, and she cannot follow it back.
    ok(alice
        .unfollow_ticket(UnfollowTicketRequest {
            ticket_id: late.id,
            follower_id: String::new(),
        })
        .await);
    assert!(!sees(&mut alice, late.id).await);
    assert_not_found(
        alice
            .follow_ticket(FollowTicketRequest {
                ticket_id: late.id,
                follower_id: String::new(),
            })
            .await,
        "ticket",
        late.id,
    );
    // Followed again, then unfollowed by the agent on her behalf.
    world.follow(&app, late.id, ALICE.sub).await;
    assert!(sees(&mut alice, late.id).await);
    ok(agent
        .unfollow_ticket(UnfollowTicketRequest {
            ticket_id: late.id,
            follower_id: ALICE.sub.to_owned(),
        })
        .await);
    assert!(!sees(&mut alice, late.id).await);

    // Following does not override the portal's ticket types.
    world.follow(&app, world.id("z-noise-i"), ALICE.sub).await;
    assert!(
        !sees(&mut alice, world.id("z-noise-i")).await,
        "incidents stay hidden in P2"
    );

    // Projects: an organization follow shows the project to every member, a user follow to that user only.
    let proj3 = ok(agent
        .create_ticket(create_ticket_req(Ticket {
            subject: "Project three".to_owned(),
            requester_id: "zed".to_owned(),
            organization_id: ORG_Z.to_owned(),
            ticket_type: QUESTION.to_owned(),
            project_id: "proj-3".to_owned(),
            ..Default::default()
        }))
        .await);
    let mut bob = world.tickets_as(&app, BOB, Which::P2);
    assert!(!sees(&mut alice, proj3.id).await);
    world
        .follow_project(&app, "proj-3", FollowerKind::Organization, ORG_A)
        .await;
    assert!(sees(&mut alice, proj3.id).await);
    assert!(sees(&mut amy, proj3.id).await);
    assert!(
        !sees(&mut bob, proj3.id).await,
        "org-b does not follow proj-3"
    );
    let followers = ok(agent
        .list_project_followers(ListProjectFollowersRequest {
            project_id: "proj-3".to_owned(),
            ..Default::default()
        })
        .await);
    assert_eq!(
        followers
            .followers
            .iter()
            .map(|f| (f.kind(), f.follower_id.as_str()))
            .collect::<Vec<_>>(),
        [(FollowerKind::Organization, ORG_A)]
    );
    ok(agent
        .unfollow_project(UnfollowProjectRequest {
            project_id: "proj-3".to_owned(),
            kind: FollowerKind::Organization.into(),
            follower_id: ORG_A.to_owned(),
        })
        .await);
    assert!(!sees(&mut alice, proj3.id).await);
    assert!(!sees(&mut amy, proj3.id).await);
    world
        .follow_project(&app, "proj-3", FollowerKind::User, AMY.sub)
        .await;
    assert!(sees(&mut amy, proj3.id).await);
    assert!(
        !sees(&mut alice, proj3.id).await,
        "a user follow is personal"
    );
    // A project ticket of a type P2 does not allow stays hidden.
    assert!(!sees(&mut alice, world.id("z-proj1-i")).await);
    // The P1 portal ignores follows entirely.
    let mut alice_p1 = world.tickets_as(&app, ALICE, Which::P1);
    assert!(!sees(&mut alice_p1, world.id("z-alice-follows-q")).await);
    assert!(!sees(&mut alice_p1, world.id("z-proj1-q")).await);
}

async fn customers_follow_only_for_themselves_and_only_visible_tickets(app: TestApp) {
    let world = setup(&app).await;
    let amy_ticket = world.id("a-amy-q");
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    assert_field_denied(
        alice
            .follow_ticket(FollowTicketRequest {
                ticket_id: amy_ticket,
                follower_id: BOB.sub.to_owned(),
            })
            .await,
        "follower_id",
    );
    assert_field_denied(
        alice
            .unfollow_ticket(UnfollowTicketRequest {
                ticket_id: amy_ticket,
                follower_id: AMY.sub.to_owned(),
            })
            .await,
        "follower_id",
    );
    let b = world.id("b-bob-q");
    assert_not_found(
        alice
            .follow_ticket(FollowTicketRequest {
                ticket_id: b,
                follower_id: String::new(),
            })
            .await,
        "ticket",
        b,
    );
    assert_not_found(
        alice
            .unfollow_ticket(UnfollowTicketRequest {
                ticket_id: b,
                follower_id: String::new(),
            })
            .await,
        "ticket",
        b,
    );
    let mut agent = agent(&app);
    assert_eq!(
        followers_as(&mut agent, amy_ticket).await,
        ["amy"],
        "the refused calls changed nothing"
    );
    assert_eq!(followers_as(&mut agent, b).await, ["bob"]);

    // Following itself (empty or its own id), twice, is fine.
    for follower_id in ["", ALICE.sub, ""] {
        let follower = ok(alice
            .follow_ticket(FollowTicketRequest {
                ticket_id: amy_ticket,
                follower_id: follower_id.to_owned(),
            })
            .await);
        assert_eq!(
            (follower.ticket_id, follower.follower_id.as_str()),
            (amy_ticket, ALICE.sub)
        );
    }
    assert_eq!(followers_as(&mut agent, amy_ticket).await, ["alice", "amy"]);
    ok(alice
        .unfollow_ticket(UnfollowTicketRequest {
            ticket_id: amy_ticket,
            follower_id: ALICE.sub.to_owned(),
        })
        .await);
    assert_eq!(followers_as(&mut agent, amy_ticket).await, ["amy"]);

    // Project follows are the desk's business.
    assert_not_for_customers(
        alice
            .follow_project(FollowProjectRequest {
                project_id: PROJ_1.to_owned(),
                kind: FollowerKind::User.into(),
                follower_id: ALICE.sub.to_owned(),
            })
            .await,
        "FollowProject",
    );
    assert_not_for_customers(
        alice
            .unfollow_project(UnfollowProjectRequest {
                project_id: PROJ_1.to_owned(),
                kind: FollowerKind::Organization.into(),
                follower_id: ORG_A.to_owned(),
            })
            .await,
        "UnfollowProject",
    );
    assert_not_for_customers(
        alice
            .list_project_followers(ListProjectFollowersRequest {
                project_id: PROJ_1.to_owned(),
                ..Default::default()
            })
            .await,
        "ListProjectFollowers",
    );
    let still = ok(agent
        .list_project_followers(ListProjectFollowersRequest {
            project_id: PROJ_1.to_owned(),
            ..Default::default()
        })
        .await);
    assert_eq!(still.followers.len(), 1, "org-a still follows proj-1");
}

// ===============================================================================================================
// 8. Time entries
// ===============================================================================================================

async fn customers_log_list_and_delete_only_their_own_time(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    let logged = ok(alice
        .log_time(LogTimeRequest {
            note: "waiting for the technician".to_owned(),
            ..log_req(a, 15, "2024-05-02")
        })
        .await);
    assert_eq!(logged.author_id, ALICE.sub);
    assert_eq!(
        (logged.ticket_id, logged.minutes, logged.work_date.as_str()),
        (a, 15, "2024-05-02")
    );
    assert_eq!(logged.note, "waiting for the technician");

    let mut agent = agent(&app);
    assert_eq!(
        entry_ids(&time_entries_as(&mut agent, a).await),
        [world.agent_entry.id, logged.id],
        "the agent sees every entry"
    );
    assert_eq!(
        time_entries_as(&mut alice, a).await,
        std::slice::from_ref(&logged),
        "alice sees only her own"
    );
    let mut amy = world.tickets_as(&app, AMY, Which::P1);
    assert!(
        time_entries_as(&mut amy, a).await.is_empty(),
        "amy sees the ticket but neither alice's nor the agent's time"
    );

    // Deleting someone else's entry.
    assert_field_denied(
        alice
            .delete_time_entry(DeleteTimeEntryRequest {
                id: world.agent_entry.id,
            })
            .await,
        "id",
    );
    assert_field_denied(
        amy.delete_time_entry(DeleteTimeEntryRequest { id: logged.id })
            .await,
        "id",
    );
    // Bob does not even learn that the entry exists.
    let mut bob = world.tickets_as(&app, BOB, Which::P1);
    assert_not_found(
        bob.delete_time_entry(DeleteTimeEntryRequest { id: logged.id })
            .await,
        "time entry",
        logged.id,
    );
    assert_eq!(
        entry_ids(&time_entries_as(&mut agent, a).await),
        [world.agent_entry.id, logged.id],
        "nothing was deleted"
    );
    ok(alice
        .delete_time_entry(DeleteTimeEntryRequest { id: logged.id })
        .await);
    assert_eq!(
        entry_ids(&time_entries_as(&mut agent, a).await),
        [world.agent_entry.id]
    );
    assert!(time_entries_as(&mut alice, a).await.is_empty());
}

async fn time_logging_needs_the_portal_a_visible_ticket_and_valid_fields(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let b = world.id("b-bob-q");
    let mut alice_p2 = world.tickets_as(&app, ALICE, Which::P2);
    let status = assert_field_denied(
        alice_p2.log_time(log_req(a, 10, "2024-05-02")).await,
        "ticket_id",
    );
    assert!(status.message().contains("log time"));
    // An invisible ticket is NOT_FOUND first, whatever the portal allows.
    assert_not_found(
        alice_p2.log_time(log_req(b, 10, "2024-05-02")).await,
        "ticket",
        b,
    );
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    assert_not_found(
        alice.log_time(log_req(b, 10, "2024-05-02")).await,
        "ticket",
        b,
    );
    assert_not_found(
        alice
            .list_time_entries(ListTimeEntriesRequest {
                ticket_id: b,
                ..Default::default()
            })
            .await,
        "ticket",
        b,
    );
    // Malformed entries name the field.
    for (minutes, work_date, field) in [
        (0, "2024-05-02", "minutes"),
        (-5, "2024-05-02", "minutes"),
        (1_441, "2024-05-02", "minutes"),
        (10, "2024-02-30", "work_date"),
        (10, "02/05/2024", "work_date"),
        (10, "", "work_date"),
    ] {
        assert_invalid(alice.log_time(log_req(a, minutes, work_date)).await, field);
    }
    assert_invalid(
        alice
            .log_time(LogTimeRequest {
                note: "x".repeat(4_097),
                ..log_req(a, 10, "2024-05-02")
            })
            .await,
        "note",
    );
    assert_eq!(
        entry_ids(&time_entries_as(&mut agent(&app), a).await),
        [world.agent_entry.id],
        "no refused entry was recorded"
    );
    // The limits themselves are fine.
    for minutes in [1, 1_440] {
        let entry = ok(alice.log_time(log_req(a, minutes, "2024-02-29")).await);
        assert_eq!(entry.minutes, minutes);
        assert_eq!(entry.author_id, ALICE.sub);
    }
}

// ===============================================================================================================
// 9. Portals
// ===============================================================================================================

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
    let valid = || Portal {
        name: "Valid".to_owned(),
        requested_tickets: true,
        ..Default::default()
    };
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
    let mut admin = app.portals_as(&admin_token(TEST_ADMIN));
    for (portal, field, reason) in cases {
        let status = assert_invalid(
            admin
                .create_portal(CreatePortalRequest {
                    portal: Some(portal.clone()),
                    request_id: String::new(),
                })
                .await,
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
    let created = create_portal(
        &app,
        Portal {
            name: "  Trimmed  ".to_owned(),
            ticket_types: strings(&[QUESTION, INCIDENT]),
            ..lists(
                &["sla_tier", "nickname", "tags"],
                &["subject", "content", "tags"],
            )
        },
    )
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
                .create_portal(CreatePortalRequest {
                    portal: Some(valid()),
                    request_id: String::new(),
                })
                .await,
            Code::PermissionDenied,
        );
        assert!(status.message().contains("CreatePortal"));
    }
}

async fn update_and_delete_portal_check_the_etag_and_revalidate(app: TestApp) {
    let world = setup(&app).await;
    let mut admin = app.portals_as(&admin_token(TEST_ADMIN));
    let original = world.p1.clone();
    let renamed = ok(admin
        .update_portal(UpdatePortalRequest {
            portal: Some(Portal {
                id: original.id,
                etag: original.etag.clone(),
                name: "P1 renamed".to_owned(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
            request_id: String::new(),
        })
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
            .update_portal(UpdatePortalRequest {
                portal: Some(Portal {
                    id: original.id,
                    etag: original.etag.clone(),
                    name: "lost update".to_owned(),
                    ..Default::default()
                }),
                update_mask: mask(&["name"]),
                request_id: String::new(),
            })
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
                .update_portal(UpdatePortalRequest {
                    portal: Some(Portal {
                        id: original.id,
                        ..changes
                    }),
                    update_mask: mask(&paths),
                    request_id: String::new(),
                })
                .await,
            field,
        );
    }
    for path in ["etag", "id", "no_such_field"] {
        assert_invalid(
            admin
                .update_portal(UpdatePortalRequest {
                    portal: Some(Portal {
                        id: original.id,
                        ..Default::default()
                    }),
                    update_mask: mask(&[path]),
                    request_id: String::new(),
                })
                .await,
            "update_mask",
        );
    }
    assert_invalid(
        admin
            .update_portal(UpdatePortalRequest {
                portal: Some(Portal {
                    name: "no id".to_owned(),
                    ..Default::default()
                }),
                update_mask: None,
                request_id: String::new(),
            })
            .await,
        "portal.id",
    );
    let missing = world.p2.id + 1_000;
    assert_not_found(
        admin
            .update_portal(UpdatePortalRequest {
                portal: Some(Portal {
                    id: missing,
                    name: "ghost".to_owned(),
                    ..Default::default()
                }),
                update_mask: None,
                request_id: String::new(),
            })
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
        .update_portal(UpdatePortalRequest {
            portal: Some(Portal {
                id: original.id,
                organization_tickets: false,
                ..Default::default()
            }),
            update_mask: mask(&["organization_tickets"]),
            request_id: String::new(),
        })
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
            .update_portal(UpdatePortalRequest {
                portal: Some(Portal {
                    id: world.p1.id,
                    name: "agents cannot".to_owned(),
                    ..Default::default()
                }),
                update_mask: None,
                request_id: String::new(),
            })
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

async fn portal_and_property_changes_apply_on_the_customers_next_call(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    let mut admin = app.portals_as(&admin_token(TEST_ADMIN));
    let region_of = |ticket: &Ticket| ticket.properties.get("region").cloned();
    assert_eq!(
        region_of(&ok(alice.get_ticket(GetTicketRequest { id: a }).await)),
        Some("apac".to_owned())
    );

    // The property stops being customer_visible: hidden although P1 lists it, and no longer editable.
    let set_visible = |visible: bool| UpdatePropertyRequest {
        property: Some(PropertyDefinition {
            name: "region".to_owned(),
            customer_visible: visible,
            ..Default::default()
        }),
        update_mask: mask(&["customer_visible"]),
        request_id: String::new(),
    };
    ok(app.properties().update_property(set_visible(false)).await);
    let hidden = ok(alice.get_ticket(GetTicketRequest { id: a }).await);
    assert_eq!(region_of(&hidden), None);
    assert_field_denied(
        alice
            .update_ticket(update_ticket_req(
                Ticket {
                    id: a,
                    properties: properties(&[("region", "emea")]),
                    ..Default::default()
                },
                &["properties.region"],
            ))
            .await,
        "ticket.properties.region",
    );
    assert_field_denied(
        alice
            .search_tickets(search_req(vec![filter(
                "region",
                FilterOperator::Eq,
                "apac",
            )]))
            .await,
        "filter_groups[0].filters[0].property",
    );
    ok(app.properties().update_property(set_visible(true)).await);
    assert_eq!(
        region_of(&ok(alice.get_ticket(GetTicketRequest { id: a }).await)),
        Some("apac".to_owned())
    );

    // The portal stops listing region and priority.
    let updated = ok(admin
        .update_portal(UpdatePortalRequest {
            portal: Some(Portal {
                id: world.p1.id,
                visible_properties: strings(&["stage_id", "tags"]),
                editable_properties: strings(&["tags"]),
                ..Default::default()
            }),
            update_mask: mask(&["visible_properties", "editable_properties"]),
            request_id: String::new(),
        })
        .await);
    let seen = ok(alice.get_ticket(GetTicketRequest { id: a }).await);
    assert_eq!(seen, world.redact(&updated, &app.get_ticket(a).await));
    assert_eq!(region_of(&seen), None);
    assert_eq!(seen.priority, 0);
    assert_eq!(seen.tags, strings(&["vip"]), "tags are listed now");
    assert_field_denied(
        alice
            .update_ticket(update_ticket_req(
                Ticket {
                    id: a,
                    priority: Priority::Low.into(),
                    ..Default::default()
                },
                &["priority"],
            ))
            .await,
        "ticket.priority",
    );
    let retagged = ok(alice
        .update_ticket(update_ticket_req(
            Ticket {
                id: a,
                tags: strings(&["mine"]),
                ..Default::default()
            },
            &["tags"],
        ))
        .await);
    assert_eq!(retagged.tags, strings(&["mine"]));

    // Ticket types and rules: incidents only, then requested ones only.
    ok(admin
        .update_portal(UpdatePortalRequest {
            portal: Some(Portal {
                id: world.p1.id,
                ticket_types: strings(&[INCIDENT]),
                ..Default::default()
            }),
            update_mask: mask(&["ticket_types"]),
            request_id: String::new(),
        })
        .await);
    assert_eq!(
        ids(&list_all_as(&mut alice, 50).await),
        world.ids_of(&["a-alice-i", "a-secret-i"])
    );
    assert_not_found(
        alice.get_ticket(GetTicketRequest { id: a }).await,
        "ticket",
        a,
    );
    ok(admin
        .update_portal(UpdatePortalRequest {
            portal: Some(Portal {
                id: world.p1.id,
                organization_tickets: false,
                ..Default::default()
            }),
            update_mask: mask(&["organization_tickets"]),
            request_id: String::new(),
        })
        .await);
    assert_eq!(
        ids(&list_all_as(&mut alice, 50).await),
        world.ids_of(&["a-alice-i"])
    );
    let mut amy = world.tickets_as(&app, AMY, Which::P1);
    assert!(
        list_all_as(&mut amy, 50).await.is_empty(),
        "amy requested no incident"
    );

    // Time logging switched off.
    let incident = world.id("a-alice-i");
    ok(alice.log_time(log_req(incident, 5, "2024-05-03")).await);
    ok(admin
        .update_portal(UpdatePortalRequest {
            portal: Some(Portal {
                id: world.p1.id,
                time_logging: false,
                ..Default::default()
            }),
            update_mask: mask(&["time_logging"]),
            request_id: String::new(),
        })
        .await);
    assert_field_denied(
        alice.log_time(log_req(incident, 5, "2024-05-03")).await,
        "ticket_id",
    );
}

async fn a_deleted_portal_refuses_its_customers_ticket_and_card_calls(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let template = visible_card_template(&app).await;
    let card = send_card(&app, template.id, a).await;
    let mut alice = world.tickets_as(&app, ALICE, Which::P2);
    assert_eq!(ok(alice.get_ticket(GetTicketRequest { id: a }).await).id, a);

    ok(app
        .portals_as(&admin_token(TEST_ADMIN))
        .delete_portal(DeletePortalRequest {
            id: world.p2.id,
            etag: world.p2.etag.clone(),
            request_id: String::new(),
        })
        .await);

    // Every call of a P2 customer is refused from now on, naming the portal.
    for customer in [ALICE, AMY, BOB] {
        let mut client = world.tickets_as(&app, customer, Which::P2);
        assert_field_denied(
            client.get_ticket(GetTicketRequest { id: a }).await,
            "portal",
        );
        assert_field_denied(
            client.list_tickets(ListTicketsRequest::default()).await,
            "portal",
        );
    }
    assert_field_denied(
        alice.search_tickets(SearchTicketsRequest::default()).await,
        "portal",
    );
    assert_field_denied(
        alice
            .batch_get_tickets(BatchGetTicketsRequest { ids: vec![a] })
            .await,
        "portal",
    );
    assert_field_denied(
        alice
            .create_ticket(create_ticket_req(Ticket {
                subject: "after the portal is gone".to_owned(),
                ticket_type: QUESTION.to_owned(),
                ..Default::default()
            }))
            .await,
        "portal",
    );
    assert_field_denied(
        alice
            .update_ticket(update_ticket_req(
                Ticket {
                    id: a,
                    subject: "gone".to_owned(),
                    ..Default::default()
                },
                &["subject"],
            ))
            .await,
        "portal",
    );
    assert_field_denied(
        alice
            .add_comment(comment_req(a, "hello?", CommentVisibility::Public))
            .await,
        "portal",
    );
    assert_field_denied(
        alice
            .list_comments(ListCommentsRequest {
                ticket_id: a,
                ..Default::default()
            })
            .await,
        "portal",
    );
    assert_field_denied(
        alice
            .list_ticket_history(ListTicketHistoryRequest {
                ticket_id: a,
                ..Default::default()
            })
            .await,
        "portal",
    );
    assert_field_denied(alice.watch_tickets(watch_all(0)).await, "portal");
    assert_field_denied(
        alice
            .follow_ticket(FollowTicketRequest {
                ticket_id: a,
                follower_id: String::new(),
            })
            .await,
        "portal",
    );
    assert_field_denied(
        alice
            .list_followers(ListFollowersRequest {
                ticket_id: a,
                ..Default::default()
            })
            .await,
        "portal",
    );
    assert_field_denied(alice.log_time(log_req(a, 5, "2024-05-03")).await, "portal");
    assert_field_denied(
        alice
            .list_time_entries(ListTimeEntriesRequest {
                ticket_id: a,
                ..Default::default()
            })
            .await,
        "portal",
    );
    assert_field_denied(
        alice
            .delete_time_entry(DeleteTimeEntryRequest {
                id: world.agent_entry.id,
            })
            .await,
        "portal",
    );
    let mut cards = app.cards_as(&world.token(ALICE, Which::P2));
    assert_field_denied(
        cards.get_card(GetCardRequest { card_id: card.id }).await,
        "portal",
    );
    assert_field_denied(
        cards
            .render_card(RenderCardRequest { card_id: card.id })
            .await,
        "portal",
    );
    assert_field_denied(
        cards
            .list_cards(ListCardsRequest {
                ticket_id: a,
                ..Default::default()
            })
            .await,
        "portal",
    );
    assert_field_denied(
        cards
            .watch_card(WatchCardRequest {
                card_id: card.id,
                ..Default::default()
            })
            .await,
        "portal",
    );

    // P1's customers are not affected.
    let mut alice_p1 = world.tickets_as(&app, ALICE, Which::P1);
    assert_eq!(
        ok(alice_p1.get_ticket(GetTicketRequest { id: a }).await).id,
        a
    );
}

async fn a_deleted_portal_refuses_every_other_call_of_its_customers(app: TestApp) {
    let world = setup(&app).await;
    let token = world.token(BOB, Which::P2);
    ok(app
        .portals_as(&admin_token(TEST_ADMIN))
        .delete_portal(DeletePortalRequest {
            id: world.p2.id,
            ..Default::default()
        })
        .await);

    // portals.proto: "Customers whose token names a deleted portal are refused with PERMISSION_DENIED from
    // then on": every method open to customers, not only the ones that read tickets.
    let mut answers: Vec<(&str, Result<(), Status>)> = Vec::new();
    answers.push((
        "PortalService/GetPortal (its own)",
        app.portals_as(&token)
            .get_portal(GetPortalRequest { id: world.p2.id })
            .await
            .map(drop),
    ));
    answers.push((
        "PipelineService/GetPipeline",
        app.pipelines_as(&token)
            .get_pipeline(GetPipelineRequest { id: 0 })
            .await
            .map(drop),
    ));
    answers.push((
        "PipelineService/ListPipelines",
        app.pipelines_as(&token)
            .list_pipelines(ListPipelinesRequest::default())
            .await
            .map(drop),
    ));
    let not_refused: Vec<String> = answers
        .iter()
        .filter(
            |(_, answer)| !matches!(answer, Err(status) if status.code() == Code::PermissionDenied),
        )
        .map(|(method, answer)| match answer {
            Ok(()) => format!("{method}: OK"),
            Err(status) => format!("{method}: {:?} {:?}", status.code(), status.message()),
        })
        .collect();
    assert!(
        not_refused.is_empty(),
        "a customer of a deleted portal must get PERMISSION_DENIED on every call; these answered otherwise: \
         {not_refused:#?}"
    );
}

// ===============================================================================================================
// 10. Cards
// ===============================================================================================================

async fn customers_read_cards_of_visible_tickets_that_bind_visible_fields(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let template = visible_card_template(&app).await;
    let card = send_card(&app, template.id, a).await;
    let admin_card = ok(app
        .cards()
        .get_card(GetCardRequest { card_id: card.id })
        .await);
    let admin_render = render_as_admin(&app, card.id).await;
    assert_eq!(
        admin_render.texts,
        strings(&[
            CARD_HEADER,
            CARD_CUSTOMER,
            "Printer jammed",
            &world.stages[1].label
        ])
    );

    for (customer, which) in [(ALICE, Which::P1), (AMY, Which::P1), (ALICE, Which::P2)] {
        let what = format!("{} through {which:?}", customer.sub);
        let mut cards = app.cards_as(&world.token(customer, which));
        assert_eq!(
            ok(cards.get_card(GetCardRequest { card_id: card.id }).await),
            admin_card,
            "{what}: GetCard"
        );
        assert_eq!(
            ok(cards
                .render_card(RenderCardRequest { card_id: card.id })
                .await),
            admin_render,
            "{what}: RenderCard"
        );
        assert_eq!(
            ok(cards
                .list_cards(ListCardsRequest {
                    ticket_id: a,
                    ..Default::default()
                })
                .await)
            .cards,
            std::slice::from_ref(&admin_card),
            "{what}: ListCards"
        );
    }

    // WatchCard by card_id: the current render, then the ticket's next visible change.
    let mut cards = app.cards_as(&world.token(ALICE, Which::P1));
    let mut stream = open(
        cards.watch_card(WatchCardRequest {
            card_id: card.id,
            ..Default::default()
        }),
        "alice's card watch",
    )
    .await
    .expect("alice may watch the card");
    assert_eq!(
        next_message(&mut stream, "alice's card watch").await,
        admin_render
    );
    set_subject(&app, a, "Printer fixed?").await;
    let next = next_message(&mut stream, "alice's card watch").await;
    assert_eq!(next.version, admin_render.version + 1);
    assert_eq!(next.texts[2], "Printer fixed?");
}

async fn cards_of_invisible_tickets_are_not_found_for_customers(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let template = visible_card_template(&app).await;
    let card = send_card(&app, template.id, a).await;
    let missing = card.id + 1_000;
    for (customer, which) in [(BOB, Which::P1), (AMY, Which::P2), (BOB, Which::P2)] {
        let what = format!("{} through {which:?}", customer.sub);
        let mut cards = app.cards_as(&world.token(customer, which));
        let pairs = [
            (
                status_of(cards.get_card(GetCardRequest { card_id: card.id }).await),
                status_of(cards.get_card(GetCardRequest { card_id: missing }).await),
            ),
            (
                status_of(
                    cards
                        .render_card(RenderCardRequest { card_id: card.id })
                        .await,
                ),
                status_of(
                    cards
                        .render_card(RenderCardRequest { card_id: missing })
                        .await,
                ),
            ),
            (
                status_of(
                    cards
                        .watch_card(WatchCardRequest {
                            card_id: card.id,
                            ..Default::default()
                        })
                        .await,
                ),
                status_of(
                    cards
                        .watch_card(WatchCardRequest {
                            card_id: missing,
                            ..Default::default()
                        })
                        .await,
                ),
            ),
        ];
        for (index, (invisible, absent)) in pairs.iter().enumerate() {
            assert_eq!(invisible.code(), Code::NotFound, "{what}: call #{index}");
            assert_eq!(invisible.message(), format!("card {} not found", card.id));
            assert_same_answer(
                invisible,
                card.id,
                absent,
                missing,
                &format!("{what}: call #{index}"),
            );
        }
        assert_not_found(
            cards
                .list_cards(ListCardsRequest {
                    ticket_id: a,
                    ..Default::default()
                })
                .await,
            "ticket",
            a,
        );
    }

    // Group streams hold many tickets' cards: refused to customers even for a visible ticket.
    let mut alice_cards = app.cards_as(&world.token(ALICE, Which::P1));
    assert_field_denied(
        alice_cards
            .watch_card(WatchCardRequest {
                group_id: "group-1".to_owned(),
                ..Default::default()
            })
            .await,
        "group_id",
    );
    // Templates and card writes are the desk's.
    assert_not_for_customers(
        alice_cards.send_card(send_card_req(template.id, a)).await,
        "SendCard",
    );
    assert_not_for_customers(
        alice_cards
            .update_card_properties(UpdateCardPropertiesRequest {
                card_id: card.id,
                version: -1,
                update_properties: properties(&[("customername", "NAME: Mallory")]),
                request_id: String::new(),
            })
            .await,
        "UpdateCardProperties",
    );
    assert_not_for_customers(
        alice_cards
            .get_card_template(GetCardTemplateRequest { id: template.id })
            .await,
        "GetCardTemplate",
    );
    assert_not_for_customers(
        alice_cards
            .list_card_templates(ListCardTemplatesRequest::default())
            .await,
        "ListCardTemplates",
    );
    assert_eq!(
        ok(app
            .cards()
            .get_card(GetCardRequest { card_id: card.id })
            .await)
        .version,
        card.version,
        "the refused update changed nothing"
    );
}

async fn cards_binding_hidden_fields_are_refused_and_left_out_of_listings(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let shown = send_card(&app, visible_card_template(&app).await.id, a).await;
    let by_id = send_card(
        &app,
        card_template(&app, "id", &[("ticketnumber", "id")])
            .await
            .id,
        a,
    )
    .await;
    let assignee = send_card(
        &app,
        card_template(
            &app,
            "assignee",
            &[
                ("ticketnumber", "assignee_id"),
                ("ticketstatus", "stage.label"),
            ],
        )
        .await
        .id,
        a,
    )
    .await;
    let score = send_card(
        &app,
        card_template(
            &app,
            "score",
            &[("ticketnumber", "properties.internal_score")],
        )
        .await
        .id,
        a,
    )
    .await;
    let region = send_card(
        &app,
        card_template(&app, "region", &[("ticketnumber", "properties.region")])
            .await
            .id,
        a,
    )
    .await;
    let all = [&shown, &by_id, &assignee, &score, &region];
    let agent_cards = ok(app
        .cards_as(&agent_token(AGENT))
        .list_cards(ListCardsRequest {
            ticket_id: a,
            ..Default::default()
        })
        .await);
    assert_eq!(
        agent_cards.cards.iter().map(|c| c.id).collect::<Vec<_>>(),
        all.iter().map(|c| c.id).collect::<Vec<_>>(),
        "the agent lists every card"
    );

    // (customer, portal, readable cards, refused cards)
    let cases = [
        (
            ALICE,
            Which::P1,
            vec![&shown, &by_id, &region],
            vec![&assignee, &score],
        ),
        (
            AMY,
            Which::P1,
            vec![&shown, &by_id, &region],
            vec![&assignee, &score],
        ),
        (
            ALICE,
            Which::P2,
            vec![&shown, &by_id],
            vec![&assignee, &score, &region],
        ),
    ];
    for (customer, which, readable, refused) in cases {
        let what = format!("{} through {which:?}", customer.sub);
        let mut cards = app.cards_as(&world.token(customer, which));
        let listed = ok(cards
            .list_cards(ListCardsRequest {
                ticket_id: a,
                page_size: 2,
                ..Default::default()
            })
            .await);
        let mut listed_ids: Vec<i64> = listed.cards.iter().map(|c| c.id).collect();
        let mut token = listed.next_page_token;
        while !token.is_empty() {
            let page = ok(cards
                .list_cards(ListCardsRequest {
                    ticket_id: a,
                    page_size: 2,
                    page_token: token,
                })
                .await);
            listed_ids.extend(page.cards.iter().map(|c| c.id));
            token = page.next_page_token;
        }
        assert_eq!(
            listed_ids,
            readable.iter().map(|c| c.id).collect::<Vec<_>>(),
            "{what}: ListCards leaves out cards showing hidden fields"
        );
        for card in readable {
            assert_eq!(
                ok(cards.get_card(GetCardRequest { card_id: card.id }).await).id,
                card.id,
                "{what}"
            );
            ok(cards
                .render_card(RenderCardRequest { card_id: card.id })
                .await);
        }
        for card in refused {
            assert_field_denied(
                cards.get_card(GetCardRequest { card_id: card.id }).await,
                "card_id",
            );
            assert_field_denied(
                cards
                    .render_card(RenderCardRequest { card_id: card.id })
                    .await,
                "card_id",
            );
            assert_field_denied(
                cards
                    .watch_card(WatchCardRequest {
                        card_id: card.id,
                        ..Default::default()
                    })
                    .await,
                "card_id",
            );
        }
    }
}

async fn a_card_stream_stops_delivering_once_its_ticket_leaves_the_customers_view(app: TestApp) {
    let world = setup(&app).await;
    let member = world.id("a-member-q");
    let card = send_card(&app, visible_card_template(&app).await.id, member).await;
    let mut amy_cards = app.cards_as(&world.token(AMY, Which::P1));
    let watch = |card_id| WatchCardRequest {
        card_id,
        ..Default::default()
    };
    let mut amy_stream = open(amy_cards.watch_card(watch(card.id)), "amy's card watch")
        .await
        .expect("amy sees carol's org-a ticket");
    let mut admin_cards = app.cards();
    let mut admin_stream = open(
        admin_cards.watch_card(watch(card.id)),
        "the admin's card watch",
    )
    .await
    .expect("admins watch every card");
    let first = next_message(&mut amy_stream, "amy's card watch").await;
    assert_eq!(first.texts[2], "Invoice copy");
    next_message(&mut admin_stream, "the admin's card watch").await;

    // The ticket moves to another organization: amy no longer sees it, nor its card.
    ok(agent(&app)
        .update_ticket(update_ticket_req(
            Ticket {
                id: member,
                organization_id: ORG_Z.to_owned(),
                ..Default::default()
            },
            &["organization_id"],
        ))
        .await);
    assert_not_found(
        amy_cards
            .get_card(GetCardRequest { card_id: card.id })
            .await,
        "card",
        card.id,
    );
    set_subject(&app, member, "Invoice copy (confidential, moved to org-z)").await;
    let render = next_message(&mut admin_stream, "the admin's card watch").await;
    assert_eq!(
        render.texts[2],
        "Invoice copy (confidential, moved to org-z)"
    );

    // The render that reached the admin's stream must not reach amy's: her stream may end or stay silent.
    match tokio::time::timeout(Duration::from_secs(2), amy_stream.message()).await {
        Err(_) | Ok(Ok(None)) | Ok(Err(_)) => {}
        Ok(Ok(Some(leaked))) => panic!(
            "a customer's WatchCard stream kept delivering renders of a ticket it no longer sees: {:?}",
            leaked.texts
        ),
    }
}
