//! The two forms of a customer's visibility held to each other: the SQL condition the store adds to every
//! customer read (`scope_condition`) and the in-memory rule streams and checks use
//! ([`ticketd::domain::access::TicketScope::shows`]). Tickets, follows and portals are generated from a seed;
//! every customer reads through every portal, and what the database returns must be exactly what the
//! in-memory rule shows.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use ticketd::{
    domain::{
        access::{Follows, TicketScope, VisibilityRules},
        follower::FollowerKind as Kind,
        ticket::Ticket as DomainTicket,
    },
    proto::{
        FollowProjectRequest, FollowTicketRequest, FollowerKind, ListFollowersRequest,
        ListProjectFollowersRequest, ListTicketsRequest, Portal, Ticket,
    },
};

use super::*;

both_databases!(the_sql_scope_shows_exactly_what_the_in_memory_rule_shows);

/// Customers and their organizations (empty: none).
const CUSTOMERS: [(&str, &str); 4] = [("c1", "o1"), ("c2", "o1"), ("c3", "o2"), ("c4", "")];
const REQUESTERS: [&str; 5] = ["c1", "c2", "c3", "c4", "someone-else"];
const ORGS: [&str; 3] = ["o1", "o2", ""];
const TYPES: [&str; 3] = ["question", "incident", ""];
const PROJECTS: [&str; 3] = ["p1", "p2", ""];
const TICKETS: usize = 40;
const PORTALS: usize = 6;

/// A small deterministic generator, so a failure names a seed that reproduces it.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

async fn the_sql_scope_shows_exactly_what_the_in_memory_rule_shows(app: TestApp) {
    let seed = 0x5eed_2026_1129;
    let mut random = Seeded(seed);
    let mut agent = agent(&app);

    let mut tickets = Vec::new();
    for index in 0..TICKETS {
        let created = ok(agent
            .create_ticket(create_ticket_req(Ticket {
                requester_id: random.pick(&REQUESTERS).to_owned(),
                organization_id: random.pick(&ORGS).to_owned(),
                ticket_type: random.pick(&TYPES).to_owned(),
                project_id: random.pick(&PROJECTS).to_owned(),
                ..ticket(&format!("generated ticket {index}"))
            }))
            .await);
        tickets.push(created);
    }
    for ticket in &tickets {
        for (customer, _) in CUSTOMERS {
            if random.chance(15) {
                ok(agent
                    .follow_ticket(FollowTicketRequest {
                        ticket_id: ticket.id,
                        follower_id: customer.to_owned(),
                    })
                    .await);
            }
        }
    }
    for project in ["p1", "p2"] {
        for follower in ["c1", "c3", "c4", "o1", "o2"] {
            if random.chance(30) {
                let kind = if follower.starts_with('o') {
                    FollowerKind::Organization
                } else {
                    FollowerKind::User
                };
                ok(agent
                    .follow_project(FollowProjectRequest {
                        project_id: project.to_owned(),
                        kind: kind.into(),
                        follower_id: follower.to_owned(),
                    })
                    .await);
            }
        }
    }

    // What the follower rules read, as the service itself reports it (requesters follow automatically).
    let mut ticket_followers: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for ticket in &tickets {
        let page = ok(agent
            .list_followers(ListFollowersRequest {
                ticket_id: ticket.id,
                page_size: 500,
                page_token: String::new(),
            })
            .await);
        ticket_followers.insert(
            ticket.id,
            page.followers.into_iter().map(|f| f.follower_id).collect(),
        );
    }
    let mut project_followers: BTreeMap<String, Vec<(Kind, String)>> = BTreeMap::new();
    for project in ["p1", "p2"] {
        let page = ok(agent
            .list_project_followers(ListProjectFollowersRequest {
                project_id: project.to_owned(),
                page_size: 500,
                page_token: String::new(),
            })
            .await);
        let followers = page
            .followers
            .into_iter()
            .map(|f| {
                let kind = if f.kind == i32::from(FollowerKind::Organization) {
                    Kind::Organization
                } else {
                    Kind::User
                };
                (kind, f.follower_id)
            })
            .collect();
        project_followers.insert(project.to_owned(), followers);
    }

    let mut compared = 0;
    for portal_index in 0..PORTALS {
        let rules = VisibilityRules {
            requested: random.chance(50),
            followed: random.chance(50),
            organization: random.chance(50),
            followed_projects: random.chance(50),
        };
        let ticket_types: Vec<String> = match random.next() % 3 {
            0 => Vec::new(),
            1 => vec!["question".to_owned()],
            _ => vec!["question".to_owned(), "incident".to_owned()],
        };
        let portal = app
            .create_portal(Portal {
                name: format!("generated portal {portal_index}"),
                requested_tickets: rules.requested,
                followed_tickets: rules.followed,
                organization_tickets: rules.organization,
                followed_project_tickets: rules.followed_projects,
                ticket_types: ticket_types.clone(),
                ..Default::default()
            })
            .await;
        for (customer, org) in CUSTOMERS {
            let scope = TicketScope {
                customer_id: customer.to_owned(),
                org: org.to_owned(),
                rules,
                ticket_types: ticket_types.clone(),
            };
            let no_followers = Vec::new();
            let expected: BTreeSet<i64> = tickets
                .iter()
                .filter(|ticket| {
                    let follows = Follows {
                        ticket_followers: &ticket_followers[&ticket.id],
                        project_followers: project_followers
                            .get(&ticket.project_id)
                            .unwrap_or(&no_followers),
                    };
                    scope.shows(&domain_ticket(ticket), &follows)
                })
                .map(|ticket| ticket.id)
                .collect();
            let token = customer_token(customer, org, portal.id);
            let listed = ok(app
                .tickets_as(&token)
                .list_tickets(ListTicketsRequest {
                    page_size: 500,
                    ..Default::default()
                })
                .await);
            assert!(listed.next_page_token.is_empty());
            let listed: BTreeSet<i64> = listed.tickets.iter().map(|ticket| ticket.id).collect();
            assert_eq!(
                listed, expected,
                "seed {seed:#x}, portal {portal_index} ({rules:?}, types {ticket_types:?}), {customer} of {org:?}: \
                 the database's scope and the in-memory rule disagree"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, PORTALS * CUSTOMERS.len());
}

/// The fields the visibility rules read, in the domain's form; the rest are placeholders.
fn domain_ticket(ticket: &Ticket) -> DomainTicket {
    DomainTicket {
        id: ticket.id,
        subject: ticket.subject.clone(),
        content: ticket.content.clone(),
        pipeline_id: ticket.pipeline_id,
        stage_id: ticket.stage_id,
        priority: None,
        requester_id: ticket.requester_id.clone(),
        assignee_id: ticket.assignee_id.clone(),
        organization_id: ticket.organization_id.clone(),
        ticket_type: ticket.ticket_type.clone(),
        tags: ticket.tags.clone(),
        project_id: ticket.project_id.clone(),
        external_id: ticket.external_id.clone(),
        properties: ticket.properties.clone(),
        create_time: Utc::now(),
        update_time: Utc::now(),
        close_time: None,
        archive_time: None,
        version: 0,
    }
}
