//! `get pipelines|properties|portals|agents`.

use ticketd::proto::{
    Agent, CreateAgentRequest, CreatePipelineRequest, CreatePortalRequest, CreatePropertyRequest,
    Pipeline, Portal, PropertyDefinition, PropertyType, Stage, TicketState,
    agent_service_client::AgentServiceClient, pipeline_service_client::PipelineServiceClient,
    portal_service_client::PortalServiceClient, property_service_client::PropertyServiceClient,
};

use crate::support::{TestServer, both_databases};

both_databases!(
    get_pipelines_lists_the_default_and_new_ones,
    get_properties_portals_and_agents,
);

async fn get_pipelines_lists_the_default_and_new_ones(server: TestServer) {
    let stage = |label: &str, state: TicketState, display_order: i32| Stage {
        label: label.into(),
        state: state as i32,
        display_order,
        ..Stage::default()
    };
    let created = PipelineServiceClient::new(server.channel())
        .create_pipeline(CreatePipelineRequest {
            pipeline: Some(Pipeline {
                label: "Escalations".into(),
                stages: vec![
                    stage("Triage", TicketState::Open, 1),
                    stage("Resolved", TicketState::Closed, 2),
                ],
                ..Pipeline::default()
            }),
            ..CreatePipelineRequest::default()
        })
        .await
        .expect("CreatePipeline")
        .into_inner();

    let names = server.ctl(&["get", "pipelines", "-o", "name"]).await;
    let names: Vec<&str> = names.ok().lines().collect();
    assert!(names.contains(&"pipeline/0"), "{names:?}");
    assert!(
        names.contains(&format!("pipeline/{}", created.id).as_str()),
        "{names:?}"
    );

    let table = server.ctl(&["get", "pipelines"]).await;
    let text = table.ok();
    assert!(text.starts_with("ID"), "{text}");
    assert!(text.contains("Support Pipeline"), "{text}");
    assert!(text.contains("Triage, Resolved"), "{text}");

    let wide = server.ctl(&["get", "pipelines", "-o", "wide"]).await;
    assert!(wide.ok().contains("(CLOSED)"), "{}", wide.stdout);

    let json = server.ctl(&["get", "pipelines", "-o", "json"]).await.json();
    let labels: Vec<&str> = json
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|pipeline| pipeline["label"].as_str())
        .collect();
    assert!(labels.contains(&"Escalations"), "{json}");
}

async fn get_properties_portals_and_agents(server: TestServer) {
    PropertyServiceClient::new(server.channel())
        .create_property(CreatePropertyRequest {
            property: Some(PropertyDefinition {
                name: "hs_score".into(),
                label: "Score".into(),
                r#type: PropertyType::Number as i32,
                ..PropertyDefinition::default()
            }),
            ..CreatePropertyRequest::default()
        })
        .await
        .expect("CreateProperty");
    let portal = PortalServiceClient::new(server.channel())
        .create_portal(CreatePortalRequest {
            portal: Some(Portal {
                name: "Customers EU".into(),
                requested_tickets: true,
                ..Portal::default()
            }),
            ..CreatePortalRequest::default()
        })
        .await
        .expect("CreatePortal")
        .into_inner();
    AgentServiceClient::new(server.channel())
        .create_agent(CreateAgentRequest {
            agent: Some(Agent {
                id: "agent-42".into(),
                email: "ada@example.com".into(),
                display_name: "Ada".into(),
                ..Agent::default()
            }),
            ..CreateAgentRequest::default()
        })
        .await
        .expect("CreateAgent");

    let properties = server.ctl(&["get", "properties"]).await;
    let row = properties
        .ok()
        .lines()
        .find(|line| line.starts_with("hs_score"))
        .unwrap_or_else(|| panic!("hs_score listed:\n{}", properties.stdout));
    assert!(row.contains("Score") && row.contains("NUMBER"), "{row}");
    let names = server.ctl(&["get", "properties", "-o", "name"]).await;
    assert!(
        names.ok().lines().any(|line| line == "property/hs_score"),
        "{}",
        names.stdout
    );

    let portals = server.ctl(&["get", "portals", "-o", "json"]).await.json();
    assert_eq!(portals[0]["name"], "Customers EU", "{portals}");
    let names = server.ctl(&["get", "portals", "-o", "name"]).await;
    assert_eq!(names.ok().trim(), format!("portal/{}", portal.id));
    let table = server.ctl(&["get", "portals"]).await;
    assert!(table.ok().contains("requested"), "{}", table.stdout);

    let agents = server.ctl(&["get", "agents", "-o", "yaml"]).await;
    assert!(
        agents.ok().contains("email: ada@example.com"),
        "{}",
        agents.stdout
    );
    let table = server.ctl(&["get", "agents"]).await;
    let row = table
        .ok()
        .lines()
        .find(|line| line.starts_with("agent-42"))
        .unwrap_or_else(|| panic!("agent-42 listed:\n{}", table.stdout));
    assert!(row.contains("Ada") && row.contains("yes"), "{row}");
}
