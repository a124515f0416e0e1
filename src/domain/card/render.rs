//! Rendering a view: every binding filled in, the document otherwise as the author wrote it.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::*;

/// A view with its bindings replaced by values.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The whole document as given, unknown keys included, with every bound string resolved.
    pub view: Value,
    /// Each text node's resolved string, in tree order.
    pub texts: Vec<String>,
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
    pub(super) fn visit_templates(&self, visit: &mut impl FnMut(&Template)) {
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
