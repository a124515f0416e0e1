//! Faults told truthfully (issue 16): what a client is told when the database goes away, when its input is
//! malformed, oversized or holds characters no store keeps, and when one request asks for unbounded work.
//! Each file is one family of faults, tested on both stores; the outage tests put a TCP proxy the test
//! controls between the server and PostgreSQL.

mod card_template_bounds;
mod database_errors;
mod echoes;
mod format_refusals;
mod malformed_requests;
mod nul_characters;
mod outage;
mod request_ids;
