//! `get pipelines|properties|portals|agents`: every page, then one listing.

use ticketd::proto::{
    Agent, ListAgentsRequest, ListPipelinesRequest, ListPortalsRequest, ListPropertiesRequest,
    Pipeline, Portal, PropertyDefinition, PropertyType, TicketState,
};

use crate::{
    cli::Format,
    client::Server,
    error::CliError,
    output::{Listing, age, truncate},
};

/// Page size for listings that are read whole.
const PAGE: i32 = 100;

/// Reads every page: `fetch(token)` returns one page and the next token (empty on the last page).
async fn every_page<T, F, Fut>(mut fetch: F) -> Result<Vec<T>, CliError>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), tonic::Status>>,
{
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let (page, next) = fetch(token).await?;
        items.extend(page);
        if next.is_empty() {
            return Ok(items);
        }
        token = next;
    }
}

/// `PROPERTY_TYPE_NUMBER` → `NUMBER`.
fn short_enum(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_owned()
}

fn yes(flag: bool) -> String {
    if flag { "yes" } else { "" }.to_owned()
}

/// `get pipelines`.
pub async fn pipelines(server: &Server, format: Format) -> Result<(), CliError> {
    let client = server.pipelines();
    let items = every_page(|page_token| {
        let mut client = client.clone();
        async move {
            let page = client
                .list_pipelines(ListPipelinesRequest {
                    page_size: PAGE,
                    page_token,
                })
                .await?
                .into_inner();
            Ok((page.pipelines, page.next_page_token))
        }
    })
    .await?;
    Listing {
        items: &items,
        kind: "pipeline",
        plural: "pipelines",
        name: &|pipeline: &Pipeline| pipeline.id.to_string(),
        columns: &|wide| {
            if wide {
                vec!["ID", "LABEL", "ORDER", "STAGES", "AGE"]
            } else {
                vec!["ID", "LABEL", "STAGES", "AGE"]
            }
        },
        row: &|pipeline: &Pipeline, wide| {
            let stages = if wide {
                pipeline
                    .stages
                    .iter()
                    .map(|stage| {
                        let state = TicketState::try_from(stage.state)
                            .map(|state| short_enum(state.as_str_name(), "TICKET_STATE_"))
                            .unwrap_or_default();
                        format!("{}:{} ({state})", stage.id, stage.label)
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                pipeline
                    .stages
                    .iter()
                    .map(|stage| stage.label.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut row = vec![pipeline.id.to_string(), pipeline.label.clone()];
            if wide {
                row.push(pipeline.display_order.to_string());
            }
            row.extend([stages, age(pipeline.create_time.as_ref())]);
            row
        },
    }
    .print(format, false)
}

/// `get properties`.
pub async fn properties(server: &Server, format: Format) -> Result<(), CliError> {
    let client = server.properties();
    let items = every_page(|page_token| {
        let mut client = client.clone();
        async move {
            let page = client
                .list_properties(ListPropertiesRequest {
                    page_size: PAGE,
                    page_token,
                    show_archived: false,
                })
                .await?
                .into_inner();
            Ok((page.properties, page.next_page_token))
        }
    })
    .await?;
    Listing {
        items: &items,
        kind: "property",
        plural: "properties",
        name: &|property: &PropertyDefinition| property.name.clone(),
        columns: &|wide| {
            let mut columns = vec!["NAME", "LABEL", "TYPE", "GROUP"];
            if wide {
                columns.extend([
                    "REQUIRED",
                    "AGENT-ONLY",
                    "CUSTOMER",
                    "OPTIONS",
                    "DESCRIPTION",
                ]);
            }
            columns
        },
        row: &|property: &PropertyDefinition, wide| {
            let kind = PropertyType::try_from(property.r#type)
                .map(|kind| short_enum(kind.as_str_name(), "PROPERTY_TYPE_"))
                .unwrap_or_default();
            let mut row = vec![
                property.name.clone(),
                property.label.clone(),
                kind,
                property.group_name.clone(),
            ];
            if wide {
                let customer = match (property.customer_visible, property.customer_editable) {
                    (_, true) => "edit",
                    (true, false) => "view",
                    (false, false) => "",
                };
                row.extend([
                    yes(property.required),
                    yes(property.agent_only),
                    customer.to_owned(),
                    property
                        .options
                        .iter()
                        .map(|option| option.value.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    truncate(&property.description, 60),
                ]);
            }
            row
        },
    }
    .print(format, false)
}

/// `get portals`.
pub async fn portals(server: &Server, format: Format) -> Result<(), CliError> {
    let client = server.portals();
    let items = every_page(|page_token| {
        let mut client = client.clone();
        async move {
            let page = client
                .list_portals(ListPortalsRequest {
                    page_size: PAGE,
                    page_token,
                })
                .await?
                .into_inner();
            Ok((page.portals, page.next_page_token))
        }
    })
    .await?;
    Listing {
        items: &items,
        kind: "portal",
        plural: "portals",
        name: &|portal: &Portal| portal.id.to_string(),
        columns: &|wide| {
            let mut columns = vec!["ID", "NAME", "SHOWS", "AGE"];
            if wide {
                columns.extend(["TICKET-TYPES", "VISIBLE", "EDITABLE", "TIME-LOGGING"]);
            }
            columns
        },
        row: &|portal: &Portal, wide| {
            let shows = [
                (portal.requested_tickets, "requested"),
                (portal.followed_tickets, "followed"),
                (portal.organization_tickets, "organization"),
                (portal.followed_project_tickets, "projects"),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| *name)
            .collect::<Vec<_>>()
            .join(",");
            let mut row = vec![
                portal.id.to_string(),
                portal.name.clone(),
                shows,
                age(portal.create_time.as_ref()),
            ];
            if wide {
                row.extend([
                    portal.ticket_types.join(","),
                    portal.visible_properties.join(","),
                    portal.editable_properties.join(","),
                    yes(portal.time_logging),
                ]);
            }
            row
        },
    }
    .print(format, false)
}

/// `get agents`.
pub async fn agents(server: &Server, format: Format) -> Result<(), CliError> {
    let client = server.agents();
    let items = every_page(|page_token| {
        let mut client = client.clone();
        async move {
            let page = client
                .list_agents(ListAgentsRequest {
                    page_size: PAGE,
                    page_token,
                    ..ListAgentsRequest::default()
                })
                .await?
                .into_inner();
            Ok((page.agents, page.next_page_token))
        }
    })
    .await?;
    Listing {
        items: &items,
        kind: "agent",
        plural: "agents",
        name: &|agent: &Agent| agent.id.clone(),
        columns: &|wide| {
            let mut columns = vec!["ID", "NAME", "EMAIL", "ACTIVE"];
            if wide {
                columns.push("AGE");
            }
            columns
        },
        row: &|agent: &Agent, wide| {
            let mut row = vec![
                agent.id.clone(),
                agent.display_name.clone(),
                agent.email.clone(),
                yes(agent.active),
            ];
            if wide {
                row.push(age(agent.create_time.as_ref()));
            }
            row
        },
    }
    .print(format, false)
}
