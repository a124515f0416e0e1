//! The typed form of a ChatCanvasCardView: the nodes and the attribute values the service validates.

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;

// Bounds on one template, so that a ticket change, which re-renders every card bound to the ticket inside its
// write transaction, stays small work. The real Kaizala card in tests/fixtures/kaizala is 1,346 bytes (pretty
// printed), 5 nodes, 2 levels and 3 bindings; each limit leaves it room several times over.

/// Deepest nesting of nodes a view may have, the root being level 1.
pub const MAX_DEPTH: usize = 32;
/// Longest `schema` (the view's JSON text), and longest `app_model`, in bytes.
pub const MAX_TEMPLATE_JSON_BYTES: usize = 32 * 1024;
/// Most nodes (containers, texts and images) a view may have.
pub const MAX_NODES: usize = 100;
/// Most `${...}` a view may hold, repeats included.
pub const MAX_VIEW_BINDINGS: usize = 20;
/// Most bindings (card property → ticket path) a template may have.
pub const MAX_TEMPLATE_BINDINGS: usize = 20;
/// Longest value one binding shows, in characters; a longer one is cut and ends in "…". Stored card properties
/// and renders are bounded by it, whatever the ticket holds (a 65,536-character `content`): a card's bound text
/// is at most (20 + 20 + 20) × 256 characters (view, texts, properties), whatever its template.
pub const MAX_BOUND_VALUE_CHARS: usize = 256;
/// Smallest accepted `fontSize`.
pub const FONT_SIZE_MIN: f64 = 1.0;
/// Largest accepted `fontSize`.
pub const FONT_SIZE_MAX: f64 = 200.0;

/// Keys every node may have, in their canonical spelling.
pub(super) const COMMON_KEYS: [&str; 10] = [
    "type",
    "backgroundColor",
    "paddingLeft",
    "paddingRight",
    "paddingTop",
    "paddingBottom",
    "marginLeft",
    "marginRight",
    "marginTop",
    "marginBottom",
];
pub(super) const CONTAINER_KEYS: [&str; 3] = ["layout", "children", "initialHeight"];
pub(super) const TEXT_KEYS: [&str; 6] = [
    "string",
    "fontSize",
    "fontStyle",
    "textColor",
    "textAlignment",
    "maxNumberOfLines",
];
pub(super) const IMAGE_KEYS: [&str; 2] = ["url", "source"];

/// A validated Kaizala ChatCanvasCardView: `{"schemaVersion": N, "schema": {<node>}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct CardView {
    pub(super) schema_version: u64,
    pub(super) root: Node,
    /// The document as given; renders start from it so unknown keys and key spelling are preserved.
    pub(super) source: Value,
}

/// One node of a view, with the attributes every node type shares.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub padding: Sides,
    pub margin: Sides,
    pub background_color: Option<Color>,
    /// Keys this module does not interpret, as written; kept, never validated.
    pub other: BTreeMap<String, Value>,
}

/// What a node is, with the attributes only that type has.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Container(Container),
    Text(Text),
    Image(Image),
}

/// A node that lays its children out in a row or a column.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    /// Kaizala's default when absent is vertical.
    pub layout: Option<Layout>,
    pub children: Vec<Node>,
    pub initial_height: Option<f64>,
}

/// A node that shows a string, which may contain bindings.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    pub string: Option<Template>,
    pub font_size: Option<f64>,
    pub font_style: Option<FontStyle>,
    pub text_color: Option<Color>,
    pub text_alignment: Option<TextAlignment>,
    pub max_number_of_lines: Option<u64>,
}

/// A node that shows a picture; at least one of `url` and `source` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub url: Option<Template>,
    pub source: Option<Template>,
}

/// Padding or margin on each side; absent sides are left to the renderer.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sides {
    pub left: Option<f64>,
    pub right: Option<f64>,
    pub top: Option<f64>,
    pub bottom: Option<f64>,
}

/// How a container arranges its children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Vertical,
    Horizontal,
}

/// The face of a text node's font.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FontStyle {
    Regular,
    Bold,
    Italic,
    BoldItalic,
}

/// Where a text node's lines sit horizontally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextAlignment {
    Left,
    Center,
    Right,
}

/// A colour as written: `#RGB`, `#RRGGBB` or `#AARRGGBB`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Color(pub(super) String);
