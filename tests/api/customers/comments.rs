//! Customer comments (item 3): internal comments are never listed to customers, who add public ones only.

use ticketd::proto::{Comment, CommentVisibility, ListCommentsRequest};

use super::*;

both_databases!(customers_never_see_internal_comments_and_add_only_public_ones,);

async fn customers_never_see_internal_comments_and_add_only_public_ones(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let agent = agent(&app);
    let all = comments_as(&agent, a, 10).await;
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
        let client = world.tickets_as(&app, customer, which);
        for page_size in [1, 50] {
            assert_eq!(
                comments_as(&client, a, page_size).await,
                public,
                "{} through {which:?}, page size {page_size}: public comments only",
                customer.sub
            );
        }
    }
    // A ticket with only an internal comment lists none.
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    assert!(
        comments_as(&alice, world.id("a-secret-i"), 10)
            .await
            .is_empty()
    );
    let bob = world.tickets_as(&app, BOB, Which::P1);
    let bobs = comments_as(&bob, world.id("b-bob-q"), 10).await;
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
        comment_ids(&comments_as(&agent, a, 10).await),
        [comment_ids(&all), vec![added.id]].concat(),
        "the internal attempt added nothing"
    );
    let amy = world.tickets_as(&app, AMY, Which::P1);
    assert_eq!(
        comments_as(&amy, a, 10).await,
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
