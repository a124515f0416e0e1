//! `ticketctl` end to end: the built binary against a real ticketd started in-process on `127.0.0.1:0`
//! (`--auth none`), every test once on SQLite (`<module>::sqlite::…`) and once on PostgreSQL
//! (`<module>::postgres::…`).

mod support;

mod errors;
mod import;
mod resources;
mod tickets;
mod watch;
