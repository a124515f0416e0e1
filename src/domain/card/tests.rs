//! Unit tests of chat cards, against the real package's view among them.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::Value;

use super::*;
use crate::domain::{
    Error,
    field::TicketField,
    pipeline::TicketState,
    ticket::{Priority, Ticket},
};
use chrono::TimeZone;

/// The real package's view, copied into the repository's test fixtures.
const FIXTURE: &str = include_str!("../../../tests/fixtures/kaizala/ChatCardView.json");

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
        external_id: "zendesk-4711".into(),
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
            "Children": [
              {"type": "Text", "String": "Hi ${Form.Properties[CustomerName].Value}!", "FontStyle": "BOLD",
               "TextAlignment": "Center", "TextColor": "#FFF", "MaxNumberOfLines": 2.0},
              {"TYPE": "image", "URL": "https://x.test/${FORM.PROPERTIES[id].VALUE}.png"}]}}"##;
    let view = parse_view(json).unwrap();
    assert_eq!(
        view.bindings(),
        vec![
            Binding::Property("CustomerName".into()),
            Binding::Property("id".into())
        ]
    );
    let rendered = view.render(&props(&[("customername", "Ann"), ("ID", "7")]), None);
    assert_eq!(rendered.texts, ["Hi Ann!"]);
    let schema = &rendered.view["Schema"];
    assert_eq!(schema["Children"][0]["String"], "Hi Ann!");
    assert_eq!(schema["Children"][1]["URL"], "https://x.test/7.png");
}

#[test]
fn keys_the_view_schema_does_not_define_are_refused_naming_the_node() {
    // `text` for `string`: accepted before, it rendered an empty line.
    let json = r#"{"schemaVersion": 2, "schema": {"type": "container", "children": [
            {"type": "text", "string": "title"},
            {"type": "text", "text": "${Form.properties[customername].value}"}]}}"#;
    let (field, message) = invalid(json);
    assert_eq!(field, "schema.children[1].text");
    assert!(
        message.contains("unknown key \"text\" in a text node"),
        "{message}"
    );
    assert!(
        message.contains("string"),
        "names the keys a text node has: {message}"
    );
    let (field, _) =
        invalid(r#"{"schemaVersion": 2, "schema": {"type": "container", "cornerRadius": 4}}"#);
    assert_eq!(field, "schema.cornerRadius");
    let (field, _) = invalid(
        r#"{"schemaVersion": 2, "schema": {"type": "text", "string": "x"}, "theme": "dark"}"#,
    );
    assert_eq!(field, "theme");
}

#[test]
fn stored_views_keep_keys_the_view_schema_does_not_define() {
    let json = r#"{"schemaVersion": 2, "schema": {"type": "container", "cornerRadius": 4, "children": [
            {"type": "text", "string": "Hi ${Form.properties[name].value}", "weight": 50}]}}"#;
    let view = parse_stored_view(json).unwrap();
    let NodeKind::Container(root) = &view.root().kind else {
        panic!("root is not a container");
    };
    assert_eq!(root.children[0].other.get("weight"), Some(&Value::from(50)));
    let rendered = view.render(&props(&[("name", "Ann")]), None);
    assert_eq!(rendered.view["schema"]["cornerRadius"], 4);
    assert_eq!(rendered.view["schema"]["children"][0]["weight"], 50);
    assert_eq!(rendered.texts, ["Hi Ann"]);
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
    let bad =
        r#"{"schemaVersion": 2, "schema": {"type": "container", "children": [{"type": "image"}]}}"#;
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
        parse_ticket_path("bindings", "external_id")
            .unwrap()
            .resolve(&context),
        "zendesk-4711"
    );
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

#[test]
fn only_kaizala_schema_versions_are_accepted() {
    for version in [1, 2] {
        let json = fixture_with(|v| v["schemaVersion"] = version.into());
        assert_eq!(parse_view(&json).unwrap().schema_version(), version);
    }
    for version in [0, 3, 99] {
        let json = fixture_with(|v| v["schemaVersion"] = version.into());
        let (field, description) = invalid(&json);
        assert_eq!(field, "schemaVersion");
        assert!(description.contains("1 or 2"), "{description}");
    }
}
