//! Time entries (item 8): logged only where the portal allows it, listed and deleted only by their author.

use ticketd::proto::{DeleteTimeEntryRequest, ListTimeEntriesRequest, LogTimeRequest};

use super::*;

both_databases!(
    customers_log_list_and_delete_only_their_own_time,
    time_logging_needs_the_portal_a_visible_ticket_and_valid_fields,
);

async fn customers_log_list_and_delete_only_their_own_time(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    let logged = ok(alice
        .log_time(LogTimeRequest {
            note: "waiting for the technician".to_owned(),
            ..log_time_req(a, 15, "2024-05-02")
        })
        .await);
    assert_eq!(logged.author_id, ALICE.sub);
    assert_eq!(
        (logged.ticket_id, logged.minutes, logged.work_date.as_str()),
        (a, 15, "2024-05-02")
    );
    assert_eq!(logged.note, "waiting for the technician");

    let agent = agent(&app);
    assert_eq!(
        entry_ids(&time_entries_as(&agent, a).await),
        [world.agent_entry.id, logged.id],
        "the agent sees every entry"
    );
    assert_eq!(
        time_entries_as(&alice, a).await,
        std::slice::from_ref(&logged),
        "alice sees only her own"
    );
    let mut amy = world.tickets_as(&app, AMY, Which::P1);
    assert!(
        time_entries_as(&amy, a).await.is_empty(),
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
        entry_ids(&time_entries_as(&agent, a).await),
        [world.agent_entry.id, logged.id],
        "nothing was deleted"
    );
    ok(alice
        .delete_time_entry(DeleteTimeEntryRequest { id: logged.id })
        .await);
    assert_eq!(
        entry_ids(&time_entries_as(&agent, a).await),
        [world.agent_entry.id]
    );
    assert!(time_entries_as(&alice, a).await.is_empty());
}

async fn time_logging_needs_the_portal_a_visible_ticket_and_valid_fields(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let b = world.id("b-bob-q");
    let mut alice_p2 = world.tickets_as(&app, ALICE, Which::P2);
    let status = assert_field_denied(
        alice_p2.log_time(log_time_req(a, 10, "2024-05-02")).await,
        "ticket_id",
    );
    assert!(status.message().contains("log time"));
    // An invisible ticket is NOT_FOUND first, whatever the portal allows.
    assert_not_found(
        alice_p2.log_time(log_time_req(b, 10, "2024-05-02")).await,
        "ticket",
        b,
    );
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    assert_not_found(
        alice.log_time(log_time_req(b, 10, "2024-05-02")).await,
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
        assert_invalid(
            alice.log_time(log_time_req(a, minutes, work_date)).await,
            field,
        );
    }
    assert_invalid(
        alice
            .log_time(LogTimeRequest {
                note: "x".repeat(4_097),
                ..log_time_req(a, 10, "2024-05-02")
            })
            .await,
        "note",
    );
    assert_eq!(
        entry_ids(&time_entries_as(&agent(&app), a).await),
        [world.agent_entry.id],
        "no refused entry was recorded"
    );
    // The limits themselves are fine.
    for minutes in [1, 1_440] {
        let entry = ok(alice.log_time(log_time_req(a, minutes, "2024-02-29")).await);
        assert_eq!(entry.minutes, minutes);
        assert_eq!(entry.author_id, ALICE.sub);
    }
}
