//! Followers (item 7): requesters follow automatically, the follower portal shows followed tickets and
//! projects, and customers follow only for themselves.

use ticketd::proto::{
    FollowProjectRequest, FollowTicketRequest, FollowerKind, GetTicketRequest,
    ListFollowersRequest, ListProjectFollowersRequest, SearchTicketsRequest, Ticket,
    UnfollowProjectRequest, UnfollowTicketRequest,
};
use tonic::Code;

use super::*;

both_databases!(
    requesters_follow_their_tickets_and_customers_see_only_their_own_follow,
    follower_portal_shows_tickets_through_follows_and_projects,
    customers_follow_only_for_themselves_and_only_visible_tickets,
);

async fn requesters_follow_their_tickets_and_customers_see_only_their_own_follow(app: TestApp) {
    let mut world = setup(&app).await;
    let mut agent = agent(&app);
    // Every seeded ticket is followed by its requester.
    for seed in SEEDS {
        let followers = followers_as(&agent, world.id(seed.key)).await;
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
        followers_as(&agent, amy_ticket).await,
        ["agent-9", "alice", "amy"],
        "the agent sees every follower"
    );
    let amy = world.tickets_as(&app, AMY, Which::P1);
    let alice = world.tickets_as(&app, ALICE, Which::P1);
    assert_eq!(followers_as(&amy, amy_ticket).await, ["amy"]);
    assert_eq!(followers_as(&alice, amy_ticket).await, ["alice"]);
    assert!(
        followers_as(&amy, world.id("a-member-q")).await.is_empty(),
        "amy sees the ticket but follows it not, and learns nothing of carol"
    );
    let amy_p2 = world.tickets_as(&app, AMY, Which::P2);
    assert_eq!(followers_as(&amy_p2, amy_ticket).await, ["amy"]);
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
        followers_as(&agent, world.id("z-noise-i"))
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
    assert!(ids(&list_all_as(&alice, 50).await).contains(&late.id));
    assert!(ids(&every_match(&alice, SearchTicketsRequest::default()).await).contains(&late.id));
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
        followers_as(&agent, amy_ticket).await,
        ["amy"],
        "the refused calls changed nothing"
    );
    assert_eq!(followers_as(&agent, b).await, ["bob"]);

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
    assert_eq!(followers_as(&agent, amy_ticket).await, ["alice", "amy"]);
    ok(alice
        .unfollow_ticket(UnfollowTicketRequest {
            ticket_id: amy_ticket,
            follower_id: ALICE.sub.to_owned(),
        })
        .await);
    assert_eq!(followers_as(&agent, amy_ticket).await, ["amy"]);

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
