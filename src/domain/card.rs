//! Chat cards: Kaizala's declarative ChatCanvasCardView, the `${...}` bindings inside its strings, the ticket
//! fields a card may show, and rendering a view with every binding filled in.
//!
//! A view is kept twice: as the JSON tree it came in (so keys this module does not know, and the author's key
//! spelling, survive into every render) and as typed nodes (so it is validated once, at registration).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::{
    Error, Result,
    field::TicketField,
    pipeline::TicketState,
    ticket::{PROPERTY_NAME_MAX_CHARS, Ticket},
};

/// Deepest nesting of nodes a view may have, the root being level 1.
pub const MAX_DEPTH: usize = 32;
/// Smallest accepted `fontSize`.
pub const FONT_SIZE_MIN: f64 = 1.0;
/// Largest accepted `fontSize`.
pub const FONT_SIZE_MAX: f64 = 200.0;

/// Keys every node may have, in their canonical spelling.
const COMMON_KEYS: [&str; 10] = [
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
const CONTAINER_KEYS: [&str; 3] = ["layout", "children", "initialHeight"];
const TEXT_KEYS: [&str; 6] = [
    "string",
    "fontSize",
    "fontStyle",
    "textColor",
    "textAlignment",
    "maxNumberOfLines",
];
const IMAGE_KEYS: [&str; 2] = ["url", "source"];

/// A validated Kaizala ChatCanvasCardView: `{"schemaVersion": N, "schema": {<node>}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct CardView {
    schema_version: u64,
    root: Node,
    /// The document as given; renders start from it so unknown keys and key spelling are preserved.
    source: Value,
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
pub struct Color(String);

/// A string with bindings: literal text and `${...}` expressions, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Binding(Binding),
}

/// A value a view refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// `${Form.properties[NAME].value}`: a card property, NAME as written, matched ignoring letter case.
    Property(String),
    /// `${ticket.FIELD}`: a field of the card's ticket.
    Ticket(TicketPath),
}

/// A ticket field a card property or a view may be bound to: a field of the ticket itself, or a label of its
/// pipeline or stage, which the ticket only holds the id of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TicketPath {
    Field(TicketField),
    PipelineLabel,
    StageLabel,
    StageState,
}

/// A ticket with the labels of its pipeline and stage, which the ticket itself only holds ids of.
#[derive(Debug, Clone, Copy)]
pub struct TicketContext<'a> {
    pub ticket: &'a Ticket,
    pub pipeline_label: &'a str,
    pub stage_label: &'a str,
    pub stage_state: TicketState,
}

/// A view with its bindings replaced by values.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The whole document as given, unknown keys included, with every bound string resolved.
    pub view: Value,
    /// Each text node's resolved string, in tree order.
    pub texts: Vec<String>,
}

/// Parses and validates a ChatCanvasCardView given as JSON text; errors name the JSON path of the fault.
pub fn parse_view(json: &str) -> Result<CardView> {
    // serde_json stops at 128 levels of nesting with an error, so hostile input cannot exhaust the stack here;
    // the node walk below has its own, lower limit.
    let source: Value =
        serde_json::from_str(json).map_err(|error| Error::invalid("schema", error.to_string()))?;
    let Value::Object(document) = &source else {
        return Err(Error::invalid(
            "schema",
            "must be a JSON object with schemaVersion and schema",
        ));
    };
    let keys = Keys::find(document, "", &["schemaVersion", "schema"])?;
    let schema_version = match keys.get("schemaVersion") {
        None => return Err(Error::invalid("schemaVersion", "is required")),
        Some((field, value)) => match value.as_u64() {
            Some(version) if version > 0 => version,
            _ => {
                return Err(Error::invalid(
                    field,
                    format!("must be a positive integer, got {value}"),
                ));
            }
        },
    };
    let Some((field, schema)) = keys.get("schema") else {
        return Err(Error::invalid("schema", "is required"));
    };
    let root = parse_node(schema, &field, 1)?;
    Ok(CardView {
        schema_version,
        root,
        source,
    })
}

impl CardView {
    /// The view format's version (`schemaVersion`).
    pub fn schema_version(&self) -> u64 {
        self.schema_version
    }

    /// The top node (`schema`).
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// The document exactly as parsed.
    pub fn source(&self) -> &Value {
        &self.source
    }

    /// Every value the view refers to, in tree order, each once (property names compared ignoring case).
    pub fn bindings(&self) -> Vec<Binding> {
        let mut found: Vec<Binding> = Vec::new();
        self.root.visit_templates(&mut |template| {
            for binding in template.bindings() {
                if !found.iter().any(|known| known.same_as(binding)) {
                    found.push(binding.clone());
                }
            }
        });
        found
    }

    /// The view with its bindings resolved from card `properties` and the ticket; unknown values render empty.
    pub fn render(
        &self,
        properties: &BTreeMap<String, String>,
        ticket: Option<&TicketContext>,
    ) -> Rendered {
        let mut view = self.source.clone();
        let mut texts = Vec::new();
        let values = Values { properties, ticket };
        if let Value::Object(document) = &mut view
            && let Some(schema) = find_mut(document, "schema")
        {
            render_node(&self.root, schema, &values, &mut texts);
        }
        Rendered { view, texts }
    }
}

impl Node {
    fn visit_templates(&self, visit: &mut impl FnMut(&Template)) {
        match &self.kind {
            NodeKind::Container(container) => {
                for child in &container.children {
                    child.visit_templates(visit);
                }
            }
            NodeKind::Text(text) => {
                if let Some(string) = &text.string {
                    visit(string);
                }
            }
            NodeKind::Image(image) => {
                for template in [&image.url, &image.source].into_iter().flatten() {
                    visit(template);
                }
            }
        }
    }
}

/// Walks the typed node and its JSON side by side; parsing guarantees they have the same shape.
fn render_node(node: &Node, json: &mut Value, values: &Values, texts: &mut Vec<String>) {
    let Value::Object(object) = json else {
        return;
    };
    match &node.kind {
        NodeKind::Container(container) => {
            if let Some(Value::Array(items)) = find_mut(object, "children") {
                for (child, item) in container.children.iter().zip(items.iter_mut()) {
                    render_node(child, item, values, texts);
                }
            }
        }
        NodeKind::Text(text) => {
            let resolved = match &text.string {
                Some(template) => {
                    let resolved = template.resolve(values);
                    if let Some(slot) = find_mut(object, "string") {
                        *slot = Value::String(resolved.clone());
                    }
                    resolved
                }
                None => String::new(),
            };
            texts.push(resolved);
        }
        NodeKind::Image(image) => {
            for (key, template) in [("url", &image.url), ("source", &image.source)] {
                if let Some(template) = template
                    && let Some(slot) = find_mut(object, key)
                {
                    *slot = Value::String(template.resolve(values));
                }
            }
        }
    }
}

fn find_mut<'a>(object: &'a mut Map<String, Value>, name: &str) -> Option<&'a mut Value> {
    object
        .iter_mut()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// The known keys of one JSON object, found whatever their letter case.
struct Keys<'a> {
    /// The object's own path, empty for the document.
    path: &'a str,
    found: Vec<(&'static str, &'a str, &'a Value)>,
    other: BTreeMap<String, Value>,
}

impl<'a> Keys<'a> {
    /// Sorts the object's keys into `known` ones and the rest; a known key written twice in different cases
    /// is refused, since which one the author meant is a guess.
    fn find(object: &'a Map<String, Value>, path: &'a str, known: &[&'static str]) -> Result<Self> {
        let mut keys = Keys {
            path,
            found: Vec::new(),
            other: BTreeMap::new(),
        };
        for (key, value) in object {
            let Some(&canonical) = known.iter().find(|name| name.eq_ignore_ascii_case(key)) else {
                keys.other.insert(key.clone(), value.clone());
                continue;
            };
            if let Some((_, first, _)) = keys.found.iter().find(|(name, _, _)| *name == canonical) {
                return Err(Error::invalid(
                    keys.field(key),
                    format!(
                        "given twice, as {first:?} and {key:?} (keys are matched ignoring letter case)"
                    ),
                ));
            }
            keys.found.push((canonical, key.as_str(), value));
        }
        Ok(keys)
    }

    /// The path of a key as written.
    fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// A known key's path and value; `null` counts as absent.
    fn get(&self, canonical: &str) -> Option<(String, &'a Value)> {
        self.found
            .iter()
            .find(|(name, _, value)| *name == canonical && !value.is_null())
            .map(|(_, key, value)| (self.field(key), *value))
    }

    fn number(&self, canonical: &str, min: f64, max: f64) -> Result<Option<f64>> {
        let Some((field, value)) = self.get(canonical) else {
            return Ok(None);
        };
        match value.as_f64() {
            Some(number) if (min..=max).contains(&number) => Ok(Some(number)),
            Some(number) if max.is_finite() => Err(Error::invalid(
                field,
                format!("must be between {min} and {max}, got {number}"),
            )),
            Some(number) => Err(Error::invalid(
                field,
                format!("must be at least {min}, got {number}"),
            )),
            None => Err(Error::invalid(
                field,
                format!("must be a number, got {value}"),
            )),
        }
    }

    fn size(&self, canonical: &str) -> Result<Option<f64>> {
        self.number(canonical, 0.0, f64::INFINITY)
    }

    fn sides(&self, prefix: &str) -> Result<Sides> {
        Ok(Sides {
            left: self.size(&format!("{prefix}Left"))?,
            right: self.size(&format!("{prefix}Right"))?,
            top: self.size(&format!("{prefix}Top"))?,
            bottom: self.size(&format!("{prefix}Bottom"))?,
        })
    }

    fn string(&self, canonical: &str) -> Result<Option<(String, &'a str)>> {
        match self.get(canonical) {
            None => Ok(None),
            Some((field, Value::String(text))) => Ok(Some((field, text))),
            Some((field, value)) => Err(Error::invalid(
                field,
                format!("must be a string, got {value}"),
            )),
        }
    }

    fn color(&self, canonical: &str) -> Result<Option<Color>> {
        self.string(canonical)?
            .map(|(field, text)| Color::parse(&field, text))
            .transpose()
    }

    fn template(&self, canonical: &str) -> Result<Option<Template>> {
        self.string(canonical)?
            .map(|(field, text)| Template::parse(&field, text))
            .transpose()
    }

    /// One of a closed set of words, matched ignoring letter case.
    fn choice<T: Copy>(&self, canonical: &str, options: &[(&str, T)]) -> Result<Option<T>> {
        let Some((field, text)) = self.string(canonical)? else {
            return Ok(None);
        };
        match options
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
        {
            Some((_, choice)) => Ok(Some(*choice)),
            None => Err(Error::invalid(
                field,
                format!(
                    "unknown value {text:?}; expected one of {}",
                    options
                        .iter()
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
}

fn parse_node(value: &Value, path: &str, depth: usize) -> Result<Node> {
    if depth > MAX_DEPTH {
        return Err(Error::invalid(
            path,
            format!("nodes may be nested at most {MAX_DEPTH} deep"),
        ));
    }
    let Value::Object(object) = value else {
        return Err(Error::invalid(
            path,
            format!("a node must be a JSON object, got {value}"),
        ));
    };
    let type_keys = Keys::find(object, path, &["type"])?;
    let (kind_name, kind_keys): (&str, &[&'static str]) = match type_keys.string("type")? {
        None => return Err(Error::invalid(format!("{path}.type"), "is required")),
        Some((_, name)) if name.eq_ignore_ascii_case("container") => ("container", &CONTAINER_KEYS),
        Some((_, name)) if name.eq_ignore_ascii_case("text") => ("text", &TEXT_KEYS),
        Some((_, name)) if name.eq_ignore_ascii_case("image") => ("image", &IMAGE_KEYS),
        Some((field, name)) => {
            return Err(Error::invalid(
                field,
                format!("unknown node type {name:?}; expected container, text or image"),
            ));
        }
    };
    let known: Vec<&'static str> = COMMON_KEYS.iter().chain(kind_keys).copied().collect();
    let keys = Keys::find(object, path, &known)?;
    let kind = match kind_name {
        "container" => NodeKind::Container(parse_container(&keys, depth)?),
        "text" => NodeKind::Text(parse_text(&keys)?),
        _ => NodeKind::Image(parse_image(&keys)?),
    };
    Ok(Node {
        kind,
        padding: keys.sides("padding")?,
        margin: keys.sides("margin")?,
        background_color: keys.color("backgroundColor")?,
        other: keys.other,
    })
}

fn parse_container(keys: &Keys, depth: usize) -> Result<Container> {
    let layout = keys.choice(
        "layout",
        &[
            ("vertical", Layout::Vertical),
            ("horizontal", Layout::Horizontal),
        ],
    )?;
    let initial_height = keys.size("initialHeight")?;
    let children = match keys.get("children") {
        None => Vec::new(),
        Some((field, Value::Array(items))) => items
            .iter()
            .enumerate()
            .map(|(index, item)| parse_node(item, &format!("{field}[{index}]"), depth + 1))
            .collect::<Result<_>>()?,
        Some((field, value)) => {
            return Err(Error::invalid(
                field,
                format!("must be an array of nodes, got {value}"),
            ));
        }
    };
    Ok(Container {
        layout,
        children,
        initial_height,
    })
}

fn parse_text(keys: &Keys) -> Result<Text> {
    let max_number_of_lines = match keys.get("maxNumberOfLines") {
        None => None,
        Some((field, value)) => Some(
            value
                .as_u64()
                // Some writers emit whole numbers as 2.0; the count is still exact.
                .or_else(|| {
                    value
                        .as_f64()
                        .filter(|n| n.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(n))
                        .map(|n| n as u64)
                })
                .ok_or_else(|| {
                    Error::invalid(
                        field,
                        format!("must be a non-negative integer, got {value}"),
                    )
                })?,
        ),
    };
    Ok(Text {
        string: keys.template("string")?,
        font_size: keys.number("fontSize", FONT_SIZE_MIN, FONT_SIZE_MAX)?,
        font_style: keys.choice(
            "fontStyle",
            &[
                ("regular", FontStyle::Regular),
                ("bold", FontStyle::Bold),
                ("italic", FontStyle::Italic),
                ("bolditalic", FontStyle::BoldItalic),
            ],
        )?,
        text_color: keys.color("textColor")?,
        text_alignment: keys.choice(
            "textAlignment",
            &[
                ("left", TextAlignment::Left),
                ("center", TextAlignment::Center),
                ("right", TextAlignment::Right),
            ],
        )?,
        max_number_of_lines,
    })
}

fn parse_image(keys: &Keys) -> Result<Image> {
    let image = Image {
        url: keys.template("url")?,
        source: keys.template("source")?,
    };
    if image.url.is_none() && image.source.is_none() {
        return Err(Error::invalid(
            keys.field("url"),
            "an image needs a url or a source",
        ));
    }
    Ok(image)
}

impl Layout {
    /// The spelling in Kaizala's documentation.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vertical => "vertical",
            Self::Horizontal => "horizontal",
        }
    }
}

impl FontStyle {
    /// The spelling in Kaizala's documentation.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Regular => "regular",
            Self::Bold => "bold",
            Self::Italic => "italic",
            Self::BoldItalic => "bolditalic",
        }
    }
}

impl TextAlignment {
    /// The spelling in Kaizala's documentation.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::Center => "center",
            Self::Right => "right",
        }
    }
}

impl Color {
    /// Parses `#RGB`, `#RRGGBB` or `#AARRGGBB` (hex digits in either case), reported as `field`.
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        let valid = text.strip_prefix('#').is_some_and(|digits| {
            matches!(digits.len(), 3 | 6 | 8) && digits.chars().all(|c| c.is_ascii_hexdigit())
        });
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(Error::invalid(
                field,
                format!("{text:?} is not a colour: expected #RGB, #RRGGBB or #AARRGGBB"),
            ))
        }
    }

    /// The colour as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a binding's value comes from during one render.
struct Values<'a> {
    properties: &'a BTreeMap<String, String>,
    ticket: Option<&'a TicketContext<'a>>,
}

impl Template {
    /// Splits `text` into literals and bindings, reported as `field`; any `${...}` that is not a known binding
    /// is refused, so a typo shows at registration instead of as a blank on every card.
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                segments.push(Segment::Literal(rest[..start].to_owned()));
            }
            let inside = &rest[start + 2..];
            let Some(end) = inside.find('}') else {
                let opened: String = rest[start..].chars().take(60).collect();
                return Err(Error::invalid(
                    field,
                    format!("unterminated binding {opened:?}: \"${{\" needs a closing \"}}\""),
                ));
            };
            let expression = &inside[..end];
            let binding = parse_binding(expression.trim())
                .map_err(|why| Error::invalid(field, format!("\"${{{expression}}}\": {why}")))?;
            segments.push(Segment::Binding(binding));
            rest = &inside[end + 1..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.to_owned()));
        }
        Ok(Self { segments })
    }

    /// The literals and bindings, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The bindings, in order, repeats included.
    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Binding(binding) => Some(binding),
            Segment::Literal(_) => None,
        })
    }

    /// The text with every binding replaced by its value; values are inserted as they are, never re-expanded.
    pub fn render(
        &self,
        properties: &BTreeMap<String, String>,
        ticket: Option<&TicketContext>,
    ) -> String {
        self.resolve(&Values { properties, ticket })
    }

    fn resolve(&self, values: &Values) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Binding(binding) => {
                    out.push_str(&binding.resolve(values.properties, values.ticket));
                }
            }
        }
        out
    }
}

/// Reads one `${...}` expression (without the braces); the error says why it is not a binding.
fn parse_binding(expression: &str) -> std::result::Result<Binding, String> {
    const OPEN: &str = "form.properties[";
    const CLOSE: &str = "].value";
    let prefix = expression.get(..OPEN.len());
    if prefix.is_some_and(|prefix| prefix.eq_ignore_ascii_case(OPEN)) {
        let name = expression
            .len()
            .checked_sub(CLOSE.len())
            .filter(|&end| end >= OPEN.len())
            .filter(|&end| {
                expression
                    .get(end..)
                    .is_some_and(|suffix| suffix.eq_ignore_ascii_case(CLOSE))
            })
            .and_then(|end| expression.get(OPEN.len()..end))
            .ok_or("expected ${Form.properties[NAME].value}")?;
        if name.is_empty() || name.contains(['[', ']']) {
            return Err(format!(
                "property name {name:?} must be non-empty and without brackets"
            ));
        }
        return Ok(Binding::Property(name.to_owned()));
    }
    if let Some(path) = expression.strip_prefix("ticket.") {
        return path_from_str(path).map(Binding::Ticket);
    }
    Err("not a binding; expected ${Form.properties[NAME].value} or ${ticket.FIELD}".to_owned())
}

impl Binding {
    /// The bound value: a card property (exact name first, then ignoring case) or a ticket field; "" if missing.
    pub fn resolve(
        &self,
        properties: &BTreeMap<String, String>,
        ticket: Option<&TicketContext>,
    ) -> String {
        match self {
            Self::Property(name) => properties
                .get(name)
                .or_else(|| {
                    properties
                        .iter()
                        .find(|(key, _)| same_name(key, name))
                        .map(|(_, value)| value)
                })
                .cloned()
                .unwrap_or_default(),
            Self::Ticket(path) => ticket.map(|view| path.resolve(view)).unwrap_or_default(),
        }
    }

    fn same_as(&self, other: &Binding) -> bool {
        match (self, other) {
            (Self::Property(a), Self::Property(b)) => same_name(a, b),
            (a, b) => a == b,
        }
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Property(name) => write!(f, "${{Form.properties[{name}].value}}"),
            Self::Ticket(path) => write!(f, "${{ticket.{path}}}"),
        }
    }
}

/// Card property names are compared ignoring letter case, as Kaizala does.
fn same_name(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// The paths that name a pipeline's or stage's labels rather than a ticket field.
const LABEL_PATHS: [(&str, TicketPath); 3] = [
    ("pipeline.label", TicketPath::PipelineLabel),
    ("stage.label", TicketPath::StageLabel),
    ("stage.state", TicketPath::StageState),
];

/// Whether a card may show a ticket field.
fn bindable(field: &TicketField) -> bool {
    match field {
        TicketField::Id
        | TicketField::Subject
        | TicketField::Content
        | TicketField::Priority
        | TicketField::PipelineId
        | TicketField::StageId
        | TicketField::RequesterId
        | TicketField::AssigneeId
        | TicketField::OrganizationId
        | TicketField::TicketType
        | TicketField::Tags
        | TicketField::CreateTime
        | TicketField::UpdateTime
        | TicketField::CloseTime
        | TicketField::Property(_) => true,
        // The whole map has no single value; the trash and version fields say nothing to a chat's reader.
        TicketField::ProjectId
        | TicketField::Properties
        | TicketField::ArchiveTime
        | TicketField::Archived
        | TicketField::Etag => false,
    }
}

/// Parses a ticket field path such as `stage.label` or `properties.region`, reported as `field`.
pub fn parse_ticket_path(field: &str, path: &str) -> Result<TicketPath> {
    path_from_str(path).map_err(|why| Error::invalid(field, why))
}

fn path_from_str(path: &str) -> std::result::Result<TicketPath, String> {
    if let Some((_, label)) = LABEL_PATHS.iter().find(|(name, _)| *name == path) {
        return Ok(label.clone());
    }
    match TicketField::parse(path) {
        Some(TicketField::Property(name)) => {
            let length = name.chars().count();
            if name.is_empty() || length > PROPERTY_NAME_MAX_CHARS {
                return Err(format!(
                    "{path:?}: a property name must have 1 to {PROPERTY_NAME_MAX_CHARS} characters"
                ));
            }
            Ok(TicketPath::Field(TicketField::Property(name)))
        }
        Some(field) if bindable(&field) => Ok(TicketPath::Field(field)),
        _ => Err(format!(
            "unknown ticket field {path:?}; expected one of {}, {}, properties.<name>",
            TicketField::names_where(bindable),
            LABEL_PATHS.map(|(name, _)| name).join(", ")
        )),
    }
}

impl TicketPath {
    /// The field's value as card text: enums in their stored spelling, tags comma-joined, times RFC 3339 UTC;
    /// an unset field is "".
    pub fn resolve(&self, view: &TicketContext) -> String {
        match self {
            Self::Field(field) => field.text(view.ticket, timestamp),
            Self::PipelineLabel => view.pipeline_label.to_owned(),
            Self::StageLabel => view.stage_label.to_owned(),
            Self::StageState => view.stage_state.as_str().to_owned(),
        }
    }

    /// The ticket field whose visibility decides whether a customer may see this path's value: a label shows
    /// which pipeline or stage the ticket is in.
    pub fn field(&self) -> TicketField {
        match self {
            Self::Field(field) => field.clone(),
            Self::PipelineLabel => TicketField::PipelineId,
            Self::StageLabel | Self::StageState => TicketField::StageId,
        }
    }
}

impl fmt::Display for TicketPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field(field) => field.fmt(f),
            label => {
                let name = LABEL_PATHS
                    .iter()
                    .find(|(_, path)| path == label)
                    .map_or("", |(name, _)| *name);
                f.write_str(name)
            }
        }
    }
}

fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ticket::Priority;
    use chrono::TimeZone;

    /// The real package's view, copied into the repository's test fixtures.
    const FIXTURE: &str = include_str!("../../tests/fixtures/kaizala/ChatCardView.json");

    fn invalid(json: &str) -> (String, String) {
        match parse_view(json) {
            Err(Error::InvalidArgument { field, description }) => (field, description),
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    /// The fixture with one edit applied, so error tests change a single thing in a real view.
    fn fixture_with(edit: impl FnOnce(&mut Value)) -> String {
        let mut view: Value = serde_json::from_str(FIXTURE).unwrap();
        edit(&mut view);
        view.to_string()
    }

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ticket() -> Ticket {
        let created = Utc.with_ymd_and_hms(2025, 3, 1, 9, 30, 0).unwrap();
        Ticket {
            id: 907050,
            subject: "Printer on fire".into(),
            content: "Smoke".into(),
            pipeline_id: 0,
            stage_id: 3,
            priority: Some(Priority::High),
            requester_id: "c-1".into(),
            assignee_id: String::new(),
            organization_id: "org-9".into(),
            ticket_type: "incident".into(),
            tags: vec!["hardware".into(), "urgent".into()],
            project_id: String::new(),
            properties: props(&[("region", "EMEA")]),
            create_time: created,
            update_time: created + chrono::Duration::microseconds(1_500_250),
            close_time: None,
            archive_time: None,
            version: 4,
        }
    }

    #[test]
    fn fixture_path_resolves_from_the_crate() {
        let on_disk = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/kaizala/ChatCardView.json");
        assert_eq!(std::fs::read_to_string(&on_disk).unwrap(), FIXTURE);
    }

    #[test]
    fn fixture_parses_unchanged() {
        let view = parse_view(FIXTURE).unwrap();
        assert_eq!(view.schema_version(), 2);
        assert_eq!(
            view.source(),
            &serde_json::from_str::<Value>(FIXTURE).unwrap()
        );
        let NodeKind::Container(root) = &view.root().kind else {
            panic!("root is not a container");
        };
        assert_eq!(root.layout, Some(Layout::Vertical));
        assert_eq!(root.initial_height, Some(300.0));
        assert_eq!(root.children.len(), 4);
        let header = &root.children[0];
        let NodeKind::Text(text) = &header.kind else {
            panic!("header is not text");
        };
        assert_eq!(text.font_style, Some(FontStyle::Bold));
        assert_eq!(text.text_alignment, Some(TextAlignment::Center));
        assert_eq!(text.text_color.as_ref().map(Color::as_str), Some("#ffffff"));
        assert_eq!(text.max_number_of_lines, Some(1));
        assert_eq!(header.padding.top, Some(10.0));
        assert_eq!(header.margin.bottom, Some(10.0));
    }

    #[test]
    fn fixture_binds_three_properties() {
        let view = parse_view(FIXTURE).unwrap();
        assert_eq!(
            view.bindings(),
            vec![
                Binding::Property("customername".into()),
                Binding::Property("ticketnumber".into()),
                Binding::Property("ticketstatus".into()),
            ]
        );
    }

    #[test]
    fn fixture_renders_its_properties() {
        let view = parse_view(FIXTURE).unwrap();
        let rendered = view.render(
            &props(&[
                ("customername", "NAME: John"),
                ("ticketnumber", "TICKET#: 907050"),
                ("ticketstatus", "STATUS: ACTIVE"),
            ]),
            None,
        );
        assert_eq!(
            rendered.texts,
            [
                "XYZ CUSTOMER CARE",
                "NAME: John",
                "TICKET#: 907050",
                "STATUS: ACTIVE"
            ]
        );
        let children = &rendered.view["schema"]["children"];
        assert_eq!(children[1]["string"], "NAME: John");
        assert_eq!(children[1]["maxNumberOfLines"], 5);
        assert_eq!(rendered.view["schemaVersion"], 2);
    }

    #[test]
    fn missing_property_renders_empty() {
        let view = parse_view(FIXTURE).unwrap();
        let rendered = view.render(&props(&[("customername", "NAME: John")]), None);
        assert_eq!(rendered.texts, ["XYZ CUSTOMER CARE", "NAME: John", "", ""]);
        assert_eq!(rendered.view["schema"]["children"][2]["string"], "");
        assert!(!rendered.view.to_string().contains("${"));
    }

    #[test]
    fn keys_values_and_bindings_match_ignoring_case() {
        let json = r##"{"SchemaVersion": 2, "Schema": {"Type": "Container", "Layout": "VERTICAL",
            "cornerRadius": 4, "Children": [
              {"type": "Text", "String": "Hi ${Form.Properties[CustomerName].Value}!", "FontStyle": "BOLD",
               "TextAlignment": "Center", "TextColor": "#FFF", "MaxNumberOfLines": 2.0, "weight": 50},
              {"TYPE": "image", "URL": "https://x.test/${FORM.PROPERTIES[id].VALUE}.png"}]}}"##;
        let view = parse_view(json).unwrap();
        assert_eq!(
            view.bindings(),
            vec![
                Binding::Property("CustomerName".into()),
                Binding::Property("id".into())
            ]
        );
        let NodeKind::Container(root) = &view.root().kind else {
            panic!("root is not a container");
        };
        assert_eq!(root.children[0].other.get("weight"), Some(&Value::from(50)));
        let rendered = view.render(&props(&[("customername", "Ann"), ("ID", "7")]), None);
        assert_eq!(rendered.texts, ["Hi Ann!"]);
        let schema = &rendered.view["Schema"];
        assert_eq!(schema["cornerRadius"], 4);
        assert_eq!(schema["Children"][0]["String"], "Hi Ann!");
        assert_eq!(schema["Children"][0]["weight"], 50);
        assert_eq!(schema["Children"][1]["URL"], "https://x.test/7.png");
    }

    #[test]
    fn bindings_are_listed_once() {
        let json = r#"{"schemaVersion": 2, "schema": {"type": "text",
            "string": "${Form.properties[a].value} ${form.PROPERTIES[A].value} ${ticket.id} ${ticket.id}"}}"#;
        assert_eq!(
            parse_view(json).unwrap().bindings(),
            vec![
                Binding::Property("a".into()),
                Binding::Ticket(TicketPath::Field(TicketField::Id))
            ]
        );
    }

    #[test]
    fn bad_colour_names_its_path() {
        let json = fixture_with(|v| v["schema"]["children"][2]["textColor"] = "#12".into());
        let (field, description) = invalid(&json);
        assert_eq!(field, "schema.children[2].textColor");
        assert!(description.contains("#12"), "{description}");
        for good in ["#abc", "#A0B1C2", "#80FFFFFF"] {
            let json = fixture_with(|v| v["schema"]["children"][2]["textColor"] = good.into());
            assert!(parse_view(&json).is_ok(), "{good}");
        }
        let json = fixture_with(|v| v["schema"]["backgroundColor"] = "red".into());
        assert_eq!(invalid(&json).0, "schema.backgroundColor");
    }

    #[test]
    fn unknown_or_missing_type_names_its_path() {
        let json = fixture_with(|v| v["schema"]["children"][0]["type"] = "button".into());
        let (field, description) = invalid(&json);
        assert_eq!(field, "schema.children[0].type");
        assert!(description.contains("button"), "{description}");
        let json = fixture_with(|v| {
            v["schema"]["children"][3]
                .as_object_mut()
                .unwrap()
                .remove("type");
        });
        assert_eq!(invalid(&json).0, "schema.children[3].type");
    }

    #[test]
    fn unknown_binding_names_its_path_and_expression() {
        let json = fixture_with(|v| v["schema"]["children"][1]["string"] = "Hi ${foo}".into());
        let (field, description) = invalid(&json);
        assert_eq!(field, "schema.children[1].string");
        assert!(description.contains("${foo}"), "{description}");

        for bad in [
            "${ticket.nope}",
            "${ticket.properties.}",
            "${Form.properties[].value}",
            "${Form.properties[x]}",
            "${Form.properties[x].value",
            "${}",
        ] {
            let json = fixture_with(|v| v["schema"]["children"][1]["string"] = bad.into());
            assert_eq!(invalid(&json).0, "schema.children[1].string", "{bad}");
        }
    }

    #[test]
    fn malformed_json_is_reported_on_schema() {
        let (field, description) = invalid(r#"{"schemaVersion": 2, "schema": {"type": }"#);
        assert_eq!(field, "schema");
        assert!(description.contains("line 1 column"), "{description}");
        assert_eq!(invalid("[]").0, "schema");
        assert_eq!(invalid(r#"{"schemaVersion": 2}"#).0, "schema");
    }

    #[test]
    fn values_are_checked() {
        type Edit = fn(&mut Value);
        let cases: [(&str, Edit); 11] = [
            ("schemaVersion", |v| v["schemaVersion"] = "2".into()),
            ("schema.layout", |v| {
                v["schema"]["layout"] = "diagonal".into()
            }),
            ("schema.children", |v| {
                v["schema"]["children"] = "none".into()
            }),
            ("schema.children[1]", |v| {
                v["schema"]["children"][1] = 5.into()
            }),
            ("schema.initialHeight", |v| {
                v["schema"]["initialHeight"] = (-1).into()
            }),
            ("schema.children[0].fontSize", |v| {
                v["schema"]["children"][0]["fontSize"] = 0.into()
            }),
            ("schema.children[0].fontSize", |v| {
                v["schema"]["children"][0]["fontSize"] = 201.into()
            }),
            ("schema.children[0].fontStyle", |v| {
                v["schema"]["children"][0]["fontStyle"] = "fancy".into()
            }),
            ("schema.children[0].paddingLeft", |v| {
                v["schema"]["children"][0]["paddingLeft"] = "10".into()
            }),
            ("schema.children[0].maxNumberOfLines", |v| {
                v["schema"]["children"][0]["maxNumberOfLines"] = 1.5.into()
            }),
            ("schema.children[0].string", |v| {
                v["schema"]["children"][0]["string"] = 907050.into()
            }),
        ];
        for (expected, edit) in cases {
            assert_eq!(invalid(&fixture_with(edit)).0, expected);
        }
    }

    #[test]
    fn a_key_given_twice_in_different_case_is_refused() {
        let json = fixture_with(|v| v["schema"]["children"][0]["String"] = "again".into());
        let (field, description) = invalid(&json);
        assert_eq!(field, "schema.children[0].string");
        assert!(description.contains("twice"), "{description}");
    }

    #[test]
    fn an_image_needs_a_url_or_source() {
        let ok = r#"{"schemaVersion": 2, "schema": {"type": "image", "source": "${ticket.properties.logo}"}}"#;
        assert!(parse_view(ok).is_ok());
        let bad = r#"{"schemaVersion": 2, "schema": {"type": "container", "children": [{"type": "image"}]}}"#;
        assert_eq!(invalid(bad).0, "schema.children[0].url");
    }

    fn nested(levels: usize) -> String {
        let mut node = r#"{"type": "text", "string": "deep"}"#.to_owned();
        for _ in 1..levels {
            node = format!(r#"{{"type": "container", "children": [{node}]}}"#);
        }
        format!(r#"{{"schemaVersion": 2, "schema": {node}}}"#)
    }

    #[test]
    fn nesting_is_capped() {
        let view = parse_view(&nested(MAX_DEPTH)).unwrap();
        assert_eq!(view.render(&BTreeMap::new(), None).texts, ["deep"]);
        let (field, _) = invalid(&nested(MAX_DEPTH + 1));
        assert!(field.starts_with("schema.children[0]"), "{field}");
        // Far past serde_json's own limit: still an error, not a stack overflow.
        let hostile = format!(r#"{{"schemaVersion": 2, "schema": {}"#, "[".repeat(100_000));
        assert_eq!(invalid(&hostile).0, "schema");
    }

    #[test]
    fn ticket_bindings_render_from_the_context() {
        let json = r##"{"schemaVersion": 2, "schema": {"type": "container", "children": [
            {"type": "text", "string": "Stage: ${ticket.stage.label} (${ticket.stage.state})"},
            {"type": "text", "string": "#${ticket.id} ${ticket.priority} [${ticket.tags}] ${ticket.properties.region}"},
            {"type": "text", "string": "${ticket.create_time}|${ticket.update_time}|${ticket.close_time}"}]}}"##;
        let view = parse_view(json).unwrap();
        let ticket = ticket();
        let context = TicketContext {
            ticket: &ticket,
            pipeline_label: "Support",
            stage_label: "Waiting on us",
            stage_state: TicketState::Open,
        };
        let rendered = view.render(&BTreeMap::new(), Some(&context));
        assert_eq!(
            rendered.texts,
            [
                "Stage: Waiting on us (OPEN)",
                "#907050 HIGH [hardware,urgent] EMEA",
                "2025-03-01T09:30:00Z|2025-03-01T09:30:01.500250Z|",
            ]
        );
        // Without a ticket the same view renders blanks, never the raw expressions.
        let blank = view.render(&BTreeMap::new(), None);
        assert_eq!(blank.texts, ["Stage:  ()", "#  [] ", "||"]);
    }

    #[test]
    fn ticket_paths_parse_and_print_back() {
        let ticket = ticket();
        let context = TicketContext {
            ticket: &ticket,
            pipeline_label: "Support",
            stage_label: "Closed",
            stage_state: TicketState::Closed,
        };
        let fixed = TicketField::core()
            .filter(bindable)
            .map(|field| field.to_string())
            .chain(LABEL_PATHS.map(|(name, _)| name.to_owned()));
        for name in fixed {
            let path = parse_ticket_path("bindings", &name).unwrap();
            assert_eq!(path.to_string(), name);
        }
        let region = parse_ticket_path("bindings", "properties.region").unwrap();
        assert_eq!(
            region,
            TicketPath::Field(TicketField::Property("region".into()))
        );
        assert_eq!(region.resolve(&context), "EMEA");
        assert_eq!(
            TicketPath::Field(TicketField::Property("nope".into())).resolve(&context),
            ""
        );
        assert_eq!(TicketPath::StageState.resolve(&context), "CLOSED");
        assert_eq!(TicketPath::PipelineLabel.resolve(&context), "Support");
        assert_eq!(
            TicketPath::Field(TicketField::AssigneeId).resolve(&context),
            ""
        );
        for bad in ["", "Subject", "stage", "properties.", "pipeline.id"] {
            match parse_ticket_path("bindings.status", bad) {
                Err(Error::InvalidArgument { field, .. }) => assert_eq!(field, "bindings.status"),
                other => panic!("{bad:?}: expected INVALID_ARGUMENT, got {other:?}"),
            }
        }
    }

    #[test]
    fn resolved_values_are_not_expanded_again() {
        let view = parse_view(FIXTURE).unwrap();
        let rendered = view.render(
            &props(&[("customername", "${Form.properties[ticketnumber].value}")]),
            None,
        );
        assert_eq!(rendered.texts[1], "${Form.properties[ticketnumber].value}");
    }
}
