//! U+0000, which PostgreSQL cannot store and SQLite would: refused as INVALID_ARGUMENT naming the field, the
//! same on both stores, in any string a client sends (nested, listed, in a map, or escaped inside JSON text),
//! and nothing is written.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::Value;
use ticketd::proto::{
    BatchCreateTicketsRequest, CommentVisibility, CreateCardTemplateRequest, FilterGroup,
    FilterOperator, GetPropertyRequest, ListCardTemplatesRequest, ListCommentsRequest,
    ListPropertiesRequest, PropertyType, SearchTicketsRequest,
};

use crate::support::*;

both_databases!(
    a_nul_in_the_subject_is_refused_and_nothing_is_written,
    a_nul_in_a_property_value_names_the_property_and_one_in_its_name_the_map,
    a_nul_in_a_batch_item_names_the_item,
    a_nul_in_get_property_or_a_search_filter_names_the_field,
    a_customers_ticket_or_comment_holding_a_nul_is_refused,
    a_card_template_holding_a_nul_literally_or_escaped_in_json_is_refused,
    card_properties_holding_a_nul_are_refused,
    a_page_token_holding_a_nul_is_not_one_the_server_issued,
);

/// A string with U+0000 inside.
const NUL: &str = "before\0after";

/// `INVALID_ARGUMENT` naming exactly `field`, and saying why.
#[track_caller]
fn assert_nul_refused<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
    field: &str,
) {
    let status = assert_invalid(result, field);
    assert!(
        status.message().contains("U+0000"),
        "the message says what is wrong: {:?}",
        status.message()
    );
}

async fn a_nul_in_the_subject_is_refused_and_nothing_is_written(app: TestApp) {
    let existing = app.create_ticket(ticket("kept")).await;
    let history = app.history(existing.id).await;

    assert_nul_refused(
        app.tickets()
            .create_ticket(create_ticket_req(ticket(NUL)))
            .await,
        "ticket.subject",
    );
    let mut with_content = ticket("fine");
    with_content.content = NUL.to_owned();
    assert_nul_refused(
        app.tickets()
            .create_ticket(create_ticket_req(with_content))
            .await,
        "ticket.content",
    );
    assert_nul_refused(
        app.tickets()
            .update_ticket(update_ticket_req(
                subject_change(existing.id, NUL),
                &["subject"],
            ))
            .await,
        "ticket.subject",
    );

    assert_eq!(app.ticket_count().await, 1, "no ticket was created");
    assert_eq!(
        app.history(existing.id).await,
        history,
        "no change was recorded"
    );
    assert_eq!(
        app.get_ticket(existing.id).await,
        existing,
        "the ticket is unchanged"
    );
}

async fn a_nul_in_a_property_value_names_the_property_and_one_in_its_name_the_map(app: TestApp) {
    app.define_property("region", PropertyType::String).await;
    let existing = app.create_ticket(ticket("kept")).await;

    let mut valued = ticket("fine");
    valued.properties = properties(&[("region", NUL)]);
    assert_nul_refused(
        app.tickets().create_ticket(create_ticket_req(valued)).await,
        "ticket.properties.region",
    );
    let mut named = ticket("fine");
    named.properties = properties(&[("reg\0ion", "EMEA")]);
    assert_nul_refused(
        app.tickets().create_ticket(create_ticket_req(named)).await,
        "ticket.properties",
    );
    assert_nul_refused(
        app.tickets()
            .update_ticket(update_ticket_req(
                property_change(existing.id, &[("region", NUL)]),
                &["properties.region"],
            ))
            .await,
        "ticket.properties.region",
    );

    assert_eq!(app.ticket_count().await, 1, "no ticket was created");
    assert_eq!(
        app.get_ticket(existing.id).await,
        existing,
        "the ticket is unchanged"
    );
}

async fn a_nul_in_a_batch_item_names_the_item(app: TestApp) {
    let mut tagged = ticket("second");
    tagged.tags = strings(&["ok", NUL]);
    let request = BatchCreateTicketsRequest {
        requests: vec![
            create_ticket_req(ticket("first")),
            create_ticket_req(tagged),
        ],
        request_id: String::new(),
        ..Default::default()
    };
    assert_nul_refused(
        app.tickets().batch_create_tickets(request).await,
        "requests[1].ticket.tags[1]",
    );
    assert_eq!(app.ticket_count().await, 0, "the batch wrote nothing");
}

async fn a_nul_in_get_property_or_a_search_filter_names_the_field(app: TestApp) {
    app.define_property("region", PropertyType::String).await;

    assert_nul_refused(
        app.properties()
            .get_property(GetPropertyRequest {
                name: "reg\0ion".to_owned(),
            })
            .await,
        "name",
    );

    let search = |filters| SearchTicketsRequest {
        filter_groups: vec![FilterGroup { filters: vec![] }, FilterGroup { filters }],
        ..Default::default()
    };
    assert_nul_refused(
        app.tickets()
            .search_tickets(search(vec![
                filter("region", FilterOperator::Eq, "EMEA"),
                filter("region", FilterOperator::Eq, NUL),
            ]))
            .await,
        "filter_groups[1].filters[1].value",
    );
    let mut listed = filter("region", FilterOperator::In, "");
    listed.values = strings(&["EMEA", NUL]);
    assert_nul_refused(
        app.tickets().search_tickets(search(vec![listed])).await,
        "filter_groups[1].filters[0].values[1]",
    );
    assert_nul_refused(
        app.tickets()
            .search_tickets(SearchTicketsRequest {
                query: NUL.to_owned(),
                ..Default::default()
            })
            .await,
        "query",
    );
}

async fn a_customers_ticket_or_comment_holding_a_nul_is_refused(app: TestApp) {
    let portal = app.create_portal(portal("nul")).await;
    let mut customer = app.tickets_as(&customer_token("cust-1", "org-1", portal.id));
    let own = ok(customer
        .create_ticket(create_ticket_req(ticket("mine")))
        .await);

    assert_nul_refused(
        customer.create_ticket(create_ticket_req(ticket(NUL))).await,
        "ticket.subject",
    );
    assert_nul_refused(
        customer
            .add_comment(comment_req(own.id, NUL, CommentVisibility::Public))
            .await,
        "body",
    );

    assert_eq!(app.ticket_count().await, 1, "no ticket was created");
    let comments = ok(app
        .tickets()
        .list_comments(ListCommentsRequest {
            ticket_id: own.id,
            ..Default::default()
        })
        .await);
    assert!(
        comments.comments.is_empty(),
        "no comment was added: {comments:?}"
    );
}

async fn a_card_template_holding_a_nul_literally_or_escaped_in_json_is_refused(app: TestApp) {
    let fixture: Value = serde_json::from_str(&kaizala_fixture("ChatCardView.json")).expect("JSON");
    let with_header = |header: &str| {
        let mut view = fixture.clone();
        view["schema"]["children"][0]["string"] = Value::String(header.to_owned());
        view.to_string()
    };
    let template = |schema: String| CreateCardTemplateRequest {
        schema,
        ..card_template_req("nul")
    };

    // A literal NUL in the request's text.
    let literal = with_header("x").replace("\"x\"", "\"x\0\"");
    assert_nul_refused(
        app.cards().create_card_template(template(literal)).await,
        "schema",
    );
    // `\u0000` escaped inside the JSON, as serde writes it; named by its path in the view, as view errors are.
    let escaped = with_header(NUL);
    assert!(
        escaped.contains("\\u0000"),
        "the NUL travels escaped: {escaped}"
    );
    assert_nul_refused(
        app.cards().create_card_template(template(escaped)).await,
        "schema.children[0].string",
    );
    // In a key the view does not define: the key itself is refused, so the NUL never reaches a render.
    let mut unknown = fixture.clone();
    unknown["schema"]["note"] = Value::String(NUL.to_owned());
    assert_invalid(
        app.cards()
            .create_card_template(template(unknown.to_string()))
            .await,
        "schema.note",
    );
    let app_model = CreateCardTemplateRequest {
        app_model: r#"{"title": "a\u0000b", "questions": []}"#.to_owned(),
        ..card_template_req("nul")
    };
    assert_nul_refused(
        app.cards().create_card_template(app_model).await,
        "app_model.title",
    );
    let mut bound = card_template_req("nul");
    bound.bindings.insert("status".to_owned(), NUL.to_owned());
    assert_nul_refused(
        app.cards().create_card_template(bound).await,
        "bindings.status",
    );

    let templates = ok(app
        .cards()
        .list_card_templates(ListCardTemplatesRequest::default())
        .await);
    assert!(
        templates.card_templates.is_empty(),
        "nothing was registered"
    );
}

async fn card_properties_holding_a_nul_are_refused(app: TestApp) {
    let template = app.create_card_template(card_template_req("card")).await;
    let ticket = app.create_ticket(ticket("carded")).await;
    let mut request = send_card_req(template.id, ticket.id, CARD_GROUP);
    request.properties = properties(&[("customername", NUL)]);
    assert_nul_refused(
        app.cards().send_card(request).await,
        "properties.customername",
    );
    let card = app
        .send_card(send_card_req(template.id, ticket.id, CARD_GROUP))
        .await;
    assert_nul_refused(
        app.cards()
            .update_card_properties(update_card_req(card.id, -1, &[("customername", NUL)]))
            .await,
        "update_properties.customername",
    );
    assert_eq!(app.get_card(card.id).await, card, "the card is unchanged");
}

async fn a_page_token_holding_a_nul_is_not_one_the_server_issued(app: TestApp) {
    // Well-formed in every other way: base64 of the JSON the server writes, with a string cursor.
    let token = URL_SAFE_NO_PAD.encode(r#"{"q": "any", "c": "a\u0000b"}"#);
    let status = assert_invalid(
        app.properties()
            .list_properties(ListPropertiesRequest {
                page_token: token,
                ..Default::default()
            })
            .await,
        "page_token",
    );
    assert!(
        status.message().contains("not a token this server issued"),
        "refused before its query is compared: {:?}",
        status.message()
    );
}
