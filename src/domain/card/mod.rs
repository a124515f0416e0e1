//! Chat cards: Kaizala's declarative ChatCanvasCardView, the `${...}` bindings inside its strings, the ticket
//! fields a card may show, and rendering a view with every binding filled in.
//!
//! A view is kept twice: as the JSON tree it came in (so keys this module does not know, and the author's key
//! spelling, survive into every render) and as typed nodes (so it is validated once, at registration).

mod chat;
mod parse;
mod path;
mod render;
mod template;
mod view;

pub use chat::*;
pub use parse::*;
pub use path::*;
pub use render::*;
pub use template::*;
pub use view::*;

#[cfg(test)]
#[path = "tests.rs"]
mod unit_tests;
