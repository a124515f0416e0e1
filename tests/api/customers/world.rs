//! The world every customer test builds ([`setup`]): two organizations, their customers, two portals, tickets
//! with hidden values, follows, comments, links and time entries; and the rules of what a customer sees,
//! computed from a portal's settings ([`World::shows`], [`World::redact`], [`World::customer_event`]) and checked
//! against the matrix written out by hand ([`MATRIX`]).

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Debug,
};

use ticketd::proto::{
    Comment, CommentVisibility, FollowProjectRequest, FollowTicketRequest, FollowerKind,
    LogTimeRequest, Portal, Priority, PropertyDefinition, PropertyType, Stage, Ticket, TicketEvent,
    TicketEventKind, TimeEntry,
};

use crate::support::*;

pub const AGENT: &str = "agent-1";
pub const ORG_A: &str = "org-a";
pub const ORG_B: &str = "org-b";
pub const ORG_Z: &str = "org-z";
pub const QUESTION: &str = "question";
pub const INCIDENT: &str = "incident";
pub const PROJ_1: &str = "proj-1";
pub const PROJ_2: &str = "proj-2";

/// A customer who signs in: its `sub` and `org` claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Customer {
    pub sub: &'static str,
    pub org: &'static str,
}

pub const ALICE: Customer = Customer {
    sub: "alice",
    org: ORG_A,
};
pub const AMY: Customer = Customer {
    sub: "amy",
    org: ORG_A,
};
pub const BOB: Customer = Customer {
    sub: "bob",
    org: ORG_B,
};

/// The two portals of the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    P1,
    P2,
}

/// A ticket the agent creates in [`setup`].
pub struct Seed {
    pub key: &'static str,
    pub subject: &'static str,
    pub requester: &'static str,
    pub org: &'static str,
    pub ticket_type: &'static str,
    pub project: &'static str,
}

/// A [`Seed`], written as a call to keep [`SEEDS`] one line a ticket.
pub const fn seed(
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

pub const SEEDS: &[Seed] = &[
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

pub const ORG_A_TICKETS: &[&str] = &[
    "a-alice-q",
    "a-alice-i",
    "a-amy-q",
    "a-member-q",
    "a-secret-i",
];

/// What each customer sees under each portal, written out by hand from the rules.
pub const MATRIX: &[(Customer, Which, &[&str])] = &[
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
pub fn seed_ticket(seed: &Seed) -> Ticket {
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
            ticket.external_id = "zendesk-a".to_owned();
            ticket.properties = properties(&[("internal_score", "42"), ("region", "emea")]);
        }
        "b-secret-q" => {
            ticket.priority = Priority::Urgent.into();
            ticket.assignee_id = "agent-2".to_owned();
            ticket.tags = strings(&["vip"]);
            ticket.external_id = "zendesk-b".to_owned();
            ticket.properties = properties(&[("internal_score", "7"), ("region", "apac")]);
        }
        _ => {}
    }
    ticket
}

/// Ticket fields every customer who sees a ticket sees.
pub const ALWAYS_VISIBLE: &[&str] = &[
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
pub const SHOWABLE_CORE: &[&str] = &[
    "pipeline_id",
    "stage_id",
    "priority",
    "requester_id",
    "assignee_id",
    "organization_id",
    "ticket_type",
    "tags",
    "project_id",
    "external_id",
];

pub const PUBLIC_NOTE: &str = "We are looking into it";
pub const INTERNAL_NOTE: &str = "Refund denied; do not tell the customer";

/// What [`setup`] made, and what the rules need to know about it.
pub struct World {
    /// The organization portal (see the table in the module documentation of `customers`).
    pub p1: Portal,
    /// The follower portal.
    pub p2: Portal,
    /// Ticket ids by seed key (and "before", created before the setup).
    pub ids: BTreeMap<&'static str, i64>,
    /// Who follows each ticket, as this test made it: the requester, then explicit follows.
    pub followers: BTreeMap<i64, BTreeSet<String>>,
    /// (project, kind, follower id) of every project follow.
    pub project_followers: BTreeSet<(String, i32, String)>,
    /// Custom properties defined `customer_visible`.
    pub customer_visible: BTreeSet<String>,
    /// The last event before the setup: streams replaying after it see the whole setup.
    pub before_setup: i64,
    /// The default pipeline's stages in display order.
    pub stages: Vec<Stage>,
    /// The agent's time entry on `a-alice-q`.
    pub agent_entry: TimeEntry,
}

/// A ticket client of [`AGENT`], who builds the world.
pub fn agent(app: &TestApp) -> Tickets {
    app.tickets_as(&agent_token(AGENT))
}

/// The custom properties of the world: `region` (customer visible and editable) and `internal_score` (agent
/// only).
pub async fn define_properties(app: &TestApp) {
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
}

/// Builds the world described in the module documentation.
pub async fn setup(app: &TestApp) -> World {
    let mut agent = agent(app);
    let before = ok(agent
        .create_ticket(create_ticket_req(ticket("created before the setup")))
        .await);
    let before_setup = app.last_event_id(before.id).await;

    define_properties(app).await;

    let p1 = app
        .create_portal(Portal {
            name: "P1 organization portal".to_owned(),
            requested_tickets: true,
            organization_tickets: true,
            visible_properties: strings(&["stage_id", "priority", "region"]),
            editable_properties: strings(&["priority", "region"]),
            time_logging: true,
            ..Default::default()
        })
        .await;
    let p2 = app
        .create_portal(Portal {
            name: "P2 follower portal".to_owned(),
            requested_tickets: true,
            followed_tickets: true,
            followed_project_tickets: true,
            ticket_types: strings(&[QUESTION]),
            visible_properties: strings(&["stage_id"]),
            ..Default::default()
        })
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
        .create_association(associate(a, "contact", "201", 0))
        .await);
    ok(associations
        .delete_association(unlink(a, "contact", "201", 0))
        .await);
    ok(associations
        .create_association(associate(b, "contact", "301", 0))
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
        property_change(a, &[("internal_score", "5")]),
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
    change(stage_change(a, world.stages[1].id), &["stage_id"]).await;
    change(
        property_change(a, &[("region", "apac")]),
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
    /// The portal `which` names.
    pub fn portal(&self, which: Which) -> &Portal {
        match which {
            Which::P1 => &self.p1,
            Which::P2 => &self.p2,
        }
    }

    /// The id of the ticket created for the seed `key`; panics when there is none.
    #[track_caller]
    pub fn id(&self, key: &str) -> i64 {
        *self
            .ids
            .get(key)
            .unwrap_or_else(|| panic!("no ticket {key:?} in the world"))
    }

    /// The sorted ids of the tickets created for `keys`.
    pub fn ids_of(&self, keys: &[&str]) -> Vec<i64> {
        sorted_ids(keys.iter().map(|key| self.id(key)).collect())
    }

    /// The seed key of a ticket id, for messages.
    pub fn key_of(&self, id: i64) -> String {
        self.ids
            .iter()
            .find(|(_, known)| **known == id)
            .map_or_else(|| format!("#{id}"), |(key, _)| format!("{key} (#{id})"))
    }

    /// A token of `customer` signed in through the portal `which`.
    pub fn token(&self, customer: Customer, which: Which) -> String {
        customer_token(customer.sub, customer.org, self.portal(which).id)
    }

    /// A ticket client of `customer` signed in through the portal `which`.
    pub fn tickets_as(&self, app: &TestApp, customer: Customer, which: Which) -> Tickets {
        app.tickets_as(&self.token(customer, which))
    }

    /// Makes `who` follow a ticket (as the agent) and records it.
    pub async fn follow(&mut self, app: &TestApp, ticket_id: i64, who: &str) {
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
    pub async fn follow_project(
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
    pub fn shows(&self, customer: Customer, portal: &Portal, ticket: &Ticket) -> bool {
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
    pub fn expected_ids(
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
    pub fn sees_field(&self, portal: &Portal, field: &str) -> bool {
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
    pub fn redact(&self, portal: &Portal, ticket: &Ticket) -> Ticket {
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
        if !shows("external_id") {
            redacted.external_id.clear();
        }
        redacted
            .properties
            .retain(|name, _| shows(&format!("properties.{name}")));
        redacted
    }

    /// Panics when a field `portal` hides carries a value.
    #[track_caller]
    pub fn assert_no_hidden_value(&self, portal: &Portal, ticket: &Ticket, what: &str) {
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
            ("external_id", !ticket.external_id.is_empty()),
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
    pub fn customer_event(&self, portal: &Portal, event: &TicketEvent) -> Option<TicketEvent> {
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
        let mut redacted = without_ticket(event);
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
    pub fn assert_event_leaks_nothing(&self, portal: &Portal, event: &TicketEvent, what: &str) {
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

/// Adds a comment as [`AGENT`].
pub async fn comment(
    app: &TestApp,
    ticket_id: i64,
    body: &str,
    visibility: CommentVisibility,
) -> Comment {
    ok(agent(app)
        .add_comment(comment_req(ticket_id, body, visibility))
        .await)
}
