//! Parsing a view from JSON, with errors naming the JSON path of the fault.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::domain::{Error, Result, text};

use super::*;

/// The `schemaVersion`s of ChatCanvasCardView: 1 in Kaizala's documentation, 2 in its ticket card package
/// (`tests/fixtures/kaizala`); both have the node format this module reads.
const SCHEMA_VERSIONS: [u64; 2] = [1, 2];

/// What to do with a key the view schema does not define.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnknownKeys {
    /// Refused, naming it: a misspelt attribute (`"text"` for `"string"`) would otherwise render as nothing.
    Refuse,
    /// Kept in the render as written: for templates stored before unknown keys were refused.
    Keep,
}

/// Parses and validates a new ChatCanvasCardView given as JSON text; errors name the JSON path of the fault,
/// and a key the view schema does not define is one.
pub fn parse_view(json: &str) -> Result<CardView> {
    parse(json, UnknownKeys::Refuse)
}

/// Parses a view stored before unknown keys were refused: they are kept, as written, and rendered as they are.
pub fn parse_stored_view(json: &str) -> Result<CardView> {
    parse(json, UnknownKeys::Keep)
}

fn parse(json: &str, unknown: UnknownKeys) -> Result<CardView> {
    check_json_size("schema", json)?;
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
    if unknown == UnknownKeys::Refuse {
        keys.refuse_others("the document", &["schemaVersion", "schema"])?;
    }
    let schema_version = match keys.get("schemaVersion") {
        None => return Err(Error::invalid("schemaVersion", "is required")),
        Some((field, value)) => match value.as_u64() {
            Some(version) if SCHEMA_VERSIONS.contains(&version) => version,
            _ => {
                return Err(Error::invalid(
                    field,
                    format!(
                        "must be a ChatCanvasCardView version Kaizala defines ({}), got {value}",
                        SCHEMA_VERSIONS
                            .map(|version| version.to_string())
                            .join(" or ")
                    ),
                ));
            }
        },
    };
    let Some((field, schema)) = keys.get("schema") else {
        return Err(Error::invalid("schema", "is required"));
    };
    let mut nodes = 0;
    let root = parse_node(schema, &field, 1, &mut nodes, unknown)?;
    text::check_json("schema", "", &source)?;
    let mut bindings = 0;
    root.visit_templates(&mut |template| bindings += template.bindings().count());
    if bindings > MAX_VIEW_BINDINGS {
        return Err(Error::invalid(
            "schema",
            format!("holds {bindings} bindings; a view may hold at most {MAX_VIEW_BINDINGS}"),
        ));
    }
    Ok(CardView {
        schema_version,
        root,
        source,
    })
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

    /// Refuses the first key that is not `known`, naming its path and what `what` may hold.
    fn refuse_others(&self, what: &str, known: &[&str]) -> Result<()> {
        let Some(key) = self.other.keys().next() else {
            return Ok(());
        };
        Err(Error::invalid(
            self.field(key),
            format!(
                "unknown key {key:?} in {what}; expected one of {}",
                known.join(", ")
            ),
        ))
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

/// Refuses JSON text longer than [`MAX_TEMPLATE_JSON_BYTES`], reported as `field`.
pub fn check_json_size(field: &str, json: &str) -> Result<()> {
    if json.len() > MAX_TEMPLATE_JSON_BYTES {
        return Err(Error::invalid(
            field,
            format!(
                "is {} bytes; at most {MAX_TEMPLATE_JSON_BYTES} are accepted",
                json.len()
            ),
        ));
    }
    Ok(())
}

/// Parses one node; `nodes` counts the nodes parsed so far, so the walk stops at the first one over the limit.
fn parse_node(
    value: &Value,
    path: &str,
    depth: usize,
    nodes: &mut usize,
    unknown: UnknownKeys,
) -> Result<Node> {
    if depth > MAX_DEPTH {
        return Err(Error::invalid(
            path,
            format!("nodes may be nested at most {MAX_DEPTH} deep"),
        ));
    }
    *nodes += 1;
    if *nodes > MAX_NODES {
        return Err(Error::invalid(
            path,
            format!("a view may have at most {MAX_NODES} nodes"),
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
    if unknown == UnknownKeys::Refuse {
        keys.refuse_others(&format!("a {kind_name} node"), &known)?;
    }
    let kind = match kind_name {
        "container" => NodeKind::Container(parse_container(&keys, depth, nodes, unknown)?),
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

fn parse_container(
    keys: &Keys,
    depth: usize,
    nodes: &mut usize,
    unknown: UnknownKeys,
) -> Result<Container> {
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
            .map(|(index, item)| {
                parse_node(
                    item,
                    &format!("{field}[{index}]"),
                    depth + 1,
                    nodes,
                    unknown,
                )
            })
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
