//! One template cannot ask for unbounded work: its view's size, node count and bindings, its app model's size,
//! its bindings, the cards of one ticket and the length of a bound value are bounded, so a ticket change, which
//! re-renders every card bound to the ticket in its transaction, stays small. Each limit: at it accepted, one
//! over refused naming the field and the limit.

use serde_json::{Value, json};
use ticketd::domain::card::{
    MAX_BOUND_VALUE_CHARS, MAX_CARDS_PER_TICKET, MAX_NODES, MAX_TEMPLATE_BINDINGS,
    MAX_TEMPLATE_JSON_BYTES, MAX_VIEW_BINDINGS,
};
use ticketd::proto::{CreateCardTemplateRequest, ListCardTemplatesRequest};
use tonic::Code;

use crate::support::*;

both_databases!(
    a_view_of_the_byte_limit_is_accepted_and_one_byte_more_refused,
    a_view_of_the_node_limit_is_accepted_and_one_node_more_refused,
    a_view_of_the_binding_limit_is_accepted_and_one_binding_more_refused,
    an_app_model_of_the_byte_limit_is_accepted_and_one_byte_more_refused,
    bindings_up_to_the_limit_are_accepted_and_one_more_refused,
    a_ticket_takes_cards_up_to_the_limit_and_refuses_one_more,
    bound_values_are_cut_in_card_properties_and_renders,
);

/// A request for a template named `name` with `schema` as its view, otherwise the fixture's.
fn with_schema(name: &str, schema: String) -> CreateCardTemplateRequest {
    CreateCardTemplateRequest {
        schema,
        ..card_template_req(name)
    }
}

/// The fixture's view padded (in a key the view does not interpret) to exactly `bytes` bytes.
fn view_of_bytes(bytes: usize) -> String {
    let mut view: Value =
        serde_json::from_str(&kaizala_fixture("ChatCardView.json")).expect("JSON");
    // Padded inside a text the view defines: keys it does not define are refused.
    view["schema"]["children"][0]["string"] = Value::String(String::new());
    let unpadded = view.to_string().len();
    view["schema"]["children"][0]["string"] = Value::String("x".repeat(bytes - unpadded));
    let text = view.to_string();
    assert_eq!(text.len(), bytes);
    text
}

/// A view of a container with `texts` text children, each showing `string`.
fn view_of_texts(texts: usize, string: &str) -> String {
    let children: Vec<Value> = (0..texts)
        .map(|_| json!({"type": "text", "string": string}))
        .collect();
    json!({"schemaVersion": 2, "schema": {"type": "container", "children": children}}).to_string()
}

/// INVALID_ARGUMENT on `field` whose message names `limit`; and no template was registered.
async fn assert_refused_at<T: std::fmt::Debug>(
    app: &TestApp,
    result: Result<tonic::Response<T>, tonic::Status>,
    field: &str,
    limit: usize,
) {
    let status = assert_invalid(result, field);
    assert!(
        status.message().contains(&limit.to_string()),
        "the message names the limit {limit}: {:?}",
        status.message()
    );
    let listed = ok(app
        .cards()
        .list_card_templates(ListCardTemplatesRequest::default())
        .await);
    assert!(
        listed.card_templates.iter().all(|t| t.name != "over"),
        "the refused template was not registered"
    );
}

async fn a_view_of_the_byte_limit_is_accepted_and_one_byte_more_refused(app: TestApp) {
    let at = app
        .create_card_template(with_schema("at", view_of_bytes(MAX_TEMPLATE_JSON_BYTES)))
        .await;
    assert_eq!(at.schema.len(), MAX_TEMPLATE_JSON_BYTES);
    let over = app
        .cards()
        .create_card_template(with_schema(
            "over",
            view_of_bytes(MAX_TEMPLATE_JSON_BYTES + 1),
        ))
        .await;
    assert_refused_at(&app, over, "schema", MAX_TEMPLATE_JSON_BYTES).await;
}

async fn a_view_of_the_node_limit_is_accepted_and_one_node_more_refused(app: TestApp) {
    // The container is a node too.
    app.create_card_template(with_schema("at", view_of_texts(MAX_NODES - 1, "x")))
        .await;
    let over = app
        .cards()
        .create_card_template(with_schema("over", view_of_texts(MAX_NODES, "x")))
        .await;
    let first_over = format!("schema.children[{}]", MAX_NODES - 1);
    assert_refused_at(&app, over, &first_over, MAX_NODES).await;
}

async fn a_view_of_the_binding_limit_is_accepted_and_one_binding_more_refused(app: TestApp) {
    let binding = "${ticket.subject}";
    let two = format!("{binding} {binding}");
    // Fifty texts of two bindings each, then one more binding in a fifty-first text.
    let mut view: Value =
        serde_json::from_str(&view_of_texts(MAX_VIEW_BINDINGS / 2, &two)).expect("JSON");
    app.create_card_template(with_schema("at", view.to_string()))
        .await;
    view["schema"]["children"]
        .as_array_mut()
        .expect("children")
        .push(json!({"type": "text", "string": binding}));
    let over = app
        .cards()
        .create_card_template(with_schema("over", view.to_string()))
        .await;
    assert_refused_at(&app, over, "schema", MAX_VIEW_BINDINGS).await;
}

async fn an_app_model_of_the_byte_limit_is_accepted_and_one_byte_more_refused(app: TestApp) {
    let app_model = |bytes: usize| {
        let empty = json!({"title": ""}).to_string().len();
        json!({"title": "t".repeat(bytes - empty)}).to_string()
    };
    app.create_card_template(CreateCardTemplateRequest {
        app_model: app_model(MAX_TEMPLATE_JSON_BYTES),
        ..card_template_req("at")
    })
    .await;
    let over = app
        .cards()
        .create_card_template(CreateCardTemplateRequest {
            app_model: app_model(MAX_TEMPLATE_JSON_BYTES + 1),
            ..card_template_req("over")
        })
        .await;
    assert_refused_at(&app, over, "app_model", MAX_TEMPLATE_JSON_BYTES).await;
}

async fn bindings_up_to_the_limit_are_accepted_and_one_more_refused(app: TestApp) {
    let bindings = |count: usize| {
        (0..count)
            .map(|i| (format!("p{i}"), "id".to_owned()))
            .collect()
    };
    app.create_card_template(CreateCardTemplateRequest {
        bindings: bindings(MAX_TEMPLATE_BINDINGS),
        ..card_template_req("at")
    })
    .await;
    let over = app
        .cards()
        .create_card_template(CreateCardTemplateRequest {
            bindings: bindings(MAX_TEMPLATE_BINDINGS + 1),
            ..card_template_req("over")
        })
        .await;
    assert_refused_at(&app, over, "bindings", MAX_TEMPLATE_BINDINGS).await;
}

async fn a_ticket_takes_cards_up_to_the_limit_and_refuses_one_more(app: TestApp) {
    let template = app.create_card_template(card_template_req("card")).await;
    let carded = app.create_ticket(ticket("carded")).await;
    for group in 0..MAX_CARDS_PER_TICKET {
        app.send_card(send_card_req(
            template.id,
            carded.id,
            &format!("group-{group}"),
        ))
        .await;
    }
    let status = assert_code(
        app.cards()
            .send_card(send_card_req(template.id, carded.id, "one-more"))
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        status.message().contains(&MAX_CARDS_PER_TICKET.to_string()),
        "the message names the limit: {:?}",
        status.message()
    );
    // Another ticket is not affected by this one's cards.
    let other = app.create_ticket(ticket("other")).await;
    app.send_card(send_card_req(template.id, other.id, CARD_GROUP))
        .await;
}

async fn bound_values_are_cut_in_card_properties_and_renders(app: TestApp) {
    let view = view_of_texts(1, "${ticket.content}");
    let template = app
        .create_card_template(CreateCardTemplateRequest {
            bindings: properties(&[("content", "content")]),
            ..with_schema("content", view)
        })
        .await;
    let mut long = ticket("long");
    long.content = "é".repeat(3 * MAX_BOUND_VALUE_CHARS);
    let long = app.create_ticket(long).await;
    let card = app
        .send_card(send_card_req(template.id, long.id, CARD_GROUP))
        .await;

    let expected = format!("{}…", "é".repeat(MAX_BOUND_VALUE_CHARS - 1));
    assert_eq!(
        card.properties["content"], expected,
        "the stored property is cut"
    );
    let rendered = app.render_card(card.id).await;
    assert_eq!(rendered.texts, vec![expected.clone()], "the render is cut");
    assert!(rendered.view.contains(&expected));
    assert!(!rendered.view.contains(&"é".repeat(MAX_BOUND_VALUE_CHARS)));

    // A change of the ticket re-renders within the same bound.
    let mut changed = long.clone();
    changed.content = "ü".repeat(2 * MAX_BOUND_VALUE_CHARS);
    app.update_ticket(changed, &["content"]).await;
    let cut = format!("{}…", "ü".repeat(MAX_BOUND_VALUE_CHARS - 1));
    assert_eq!(app.get_card(card.id).await.properties["content"], cut);
    assert_eq!(app.render_card(card.id).await.texts, vec![cut]);
}
