//! Error output and exit codes.

use std::time::{SystemTime, UNIX_EPOCH};

use ticketd::auth::credentials::{Claims, mint_hs256};

use crate::support::{TICKETCTL, TestServer, both_databases};

both_databases!(
    token_is_sent_as_a_bearer_credential,
    invalid_create_prints_code_and_field_violation,
    missing_ticket_is_not_found,
    usage_errors_exit_1,
    addr_flag_overrides_the_variable,
);

async fn invalid_create_prints_code_and_field_violation(server: TestServer) {
    let run = server.ctl(&["create", "ticket", "--subject", "   "]).await;
    assert_eq!(run.code, 13, "INVALID_ARGUMENT exits 10 + 3: {run:?}");
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let mut lines = run.stderr.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with("error: INVALID_ARGUMENT: "),
        "{}",
        run.stderr
    );
    let violation = lines
        .find(|line| line.starts_with("  ticket.subject: "))
        .unwrap_or_else(|| panic!("a field violation naming ticket.subject:\n{}", run.stderr));
    assert!(violation.len() > "  ticket.subject: ".len(), "{violation}");
    assert!(server.all_tickets().await.is_empty());
}

async fn missing_ticket_is_not_found(server: TestServer) {
    let run = server.ctl(&["get", "ticket", "424242"]).await;
    assert_eq!(run.code, 15, "NOT_FOUND exits 10 + 5: {run:?}");
    assert!(
        run.stderr.starts_with("error: NOT_FOUND: "),
        "{}",
        run.stderr
    );
    let run = server.ctl(&["describe", "ticket", "424242"]).await;
    assert_eq!(run.code, 15, "{run:?}");
}

async fn usage_errors_exit_1(server: TestServer) {
    let unknown_flag = server.ctl(&["get", "tickets", "--colour"]).await;
    assert_eq!(unknown_flag.code, 1, "{unknown_flag:?}");
    let bad_set = server
        .ctl(&[
            "create",
            "ticket",
            "--subject",
            "x",
            "--set",
            "stage_id=three",
        ])
        .await;
    assert_eq!(bad_set.code, 1, "{bad_set:?}");
    assert!(
        bad_set.stderr.starts_with("error: stage_id: "),
        "{}",
        bad_set.stderr
    );
    let help = server.ctl(&["--help"]).await;
    assert!(help.ok().contains("Exit codes:"), "{}", help.stdout);
    assert!(help.ok().contains("15 NOT_FOUND"), "{}", help.stdout);
    assert!(server.all_tickets().await.is_empty());
}

async fn addr_flag_overrides_the_variable(server: TestServer) {
    // A port nothing listens on, through the flag: UNAVAILABLE, exit 24.
    let unreachable = tokio::task::spawn_blocking(|| {
        std::process::Command::new(TICKETCTL)
            .args(["--addr", "127.0.0.1:1", "get", "tickets"])
            .output()
    })
    .await
    .expect("the blocking task")
    .expect("ticketctl runs");
    assert_eq!(unreachable.status.code(), Some(24), "{unreachable:?}");
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert!(
        stderr.starts_with("error: UNAVAILABLE: cannot connect to 127.0.0.1:1"),
        "{stderr}"
    );

    // The flag wins over TICKETD_ADDR (which `ctl` sets to this server's address).
    let addr = server.addr.to_string();
    let run = server
        .ctl(&["--addr", &addr, "get", "tickets", "-o", "name"])
        .await;
    assert!(run.ok().is_empty());
}

async fn token_is_sent_as_a_bearer_credential(server: TestServer) {
    const SECRET: &str = "ticketctl-tests-hs256-secret-0123456789abcdef";
    let server = server.with_jwt(SECRET).await;
    let in_an_hour = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
        + 3600;
    let token = mint_hs256(
        SECRET.as_bytes(),
        &Claims {
            sub: "ctl-admin".into(),
            role: "admin".into(),
            exp: in_an_hour,
            ..Claims::default()
        },
    )
    .expect("signs");

    let anonymous = server.ctl(&["get", "tickets"]).await;
    assert_eq!(
        anonymous.code, 26,
        "UNAUTHENTICATED exits 10 + 16: {anonymous:?}"
    );
    assert!(
        anonymous.stderr.starts_with("error: UNAUTHENTICATED: "),
        "{}",
        anonymous.stderr
    );

    let created = server
        .ctl(&[
            "--token",
            &token,
            "create",
            "ticket",
            "--subject",
            "with a token",
            "-o",
            "name",
        ])
        .await;
    let name = created.ok().trim().to_owned();
    let id = name.strip_prefix("ticket/").expect("ticket/<id>");
    let described = server
        .ctl_env(&["describe", "ticket", id], &[("TICKETD_TOKEN", &token)])
        .await;
    assert!(
        described.ok().contains(" CREATED ") && described.ok().contains("by ctl-admin"),
        "the token's subject is the actor: {}",
        described.stdout
    );
}
