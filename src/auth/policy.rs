//! Which roles may call which method: one table, checked by the auth layer before any handler runs. A method
//! missing from the table is refused to everyone but admins, so a new RPC is closed until it is listed here.

use super::{Principal, Role};

/// Who may call a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Admins only: schema and portals.
    Admin,
    /// Admins, agents and services holding the scope.
    Staff,
    /// Staff, and customers (whom the handler then limits to what their portal allows).
    Everyone,
}

/// A method's rule: who, and which scope a service needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub audience: Audience,
    pub scope: &'static str,
}

const fn rule(audience: Audience, scope: &'static str) -> Rule {
    Rule { audience, scope }
}

use Audience::{Admin, Everyone, Staff};

/// Every ticketd method by its gRPC path (`/package.Service/Method`).
pub const RULES: &[(&str, Rule)] = &[
    // Tickets.
    (
        "/ticketd.v1.TicketService/CreateTicket",
        rule(Everyone, "tickets:write"),
    ),
    (
        "/ticketd.v1.TicketService/GetTicket",
        rule(Everyone, "tickets:read"),
    ),
    (
        "/ticketd.v1.TicketService/ListTickets",
        rule(Everyone, "tickets:read"),
    ),
    (
        "/ticketd.v1.TicketService/UpdateTicket",
        rule(Everyone, "tickets:write"),
    ),
    (
        "/ticketd.v1.TicketService/ArchiveTicket",
        rule(Staff, "tickets:write"),
    ),
    (
        "/ticketd.v1.TicketService/RestoreTicket",
        rule(Staff, "tickets:write"),
    ),
    (
        "/ticketd.v1.TicketService/SearchTickets",
        rule(Everyone, "tickets:read"),
    ),
    (
        "/ticketd.v1.TicketService/BatchCreateTickets",
        rule(Everyone, "tickets:write"),
    ),
    (
        "/ticketd.v1.TicketService/BatchGetTickets",
        rule(Everyone, "tickets:read"),
    ),
    (
        "/ticketd.v1.TicketService/BatchUpdateTickets",
        rule(Everyone, "tickets:write"),
    ),
    (
        "/ticketd.v1.TicketService/BatchArchiveTickets",
        rule(Staff, "tickets:write"),
    ),
    (
        "/ticketd.v1.TicketService/AddComment",
        rule(Everyone, "tickets:write"),
    ),
    (
        "/ticketd.v1.TicketService/ListComments",
        rule(Everyone, "tickets:read"),
    ),
    (
        "/ticketd.v1.TicketService/ListTicketHistory",
        rule(Everyone, "tickets:read"),
    ),
    (
        "/ticketd.v1.TicketService/WatchTickets",
        rule(Everyone, "tickets:read"),
    ),
    (
        "/ticketd.v1.TicketService/FollowTicket",
        rule(Everyone, "tickets:write"),
    ),
    (
        "/ticketd.v1.TicketService/UnfollowTicket",
        rule(Everyone, "tickets:write"),
    ),
    (
        "/ticketd.v1.TicketService/ListFollowers",
        rule(Everyone, "tickets:read"),
    ),
    (
        "/ticketd.v1.TicketService/FollowProject",
        rule(Staff, "tickets:write"),
    ),
    (
        "/ticketd.v1.TicketService/UnfollowProject",
        rule(Staff, "tickets:write"),
    ),
    (
        "/ticketd.v1.TicketService/ListProjectFollowers",
        rule(Staff, "tickets:read"),
    ),
    (
        "/ticketd.v1.TicketService/LogTime",
        rule(Everyone, "time:write"),
    ),
    (
        "/ticketd.v1.TicketService/ListTimeEntries",
        rule(Everyone, "time:read"),
    ),
    (
        "/ticketd.v1.TicketService/DeleteTimeEntry",
        rule(Everyone, "time:write"),
    ),
    // Import writes history with chosen times and no notifications: not for customers, and a scope of its own.
    (
        "/ticketd.v1.TicketService/ImportTickets",
        rule(Staff, "tickets:import"),
    ),
    // Pipelines: customers may read them to name stages.
    (
        "/ticketd.v1.PipelineService/CreatePipeline",
        rule(Admin, ""),
    ),
    (
        "/ticketd.v1.PipelineService/GetPipeline",
        rule(Everyone, "pipelines:read"),
    ),
    (
        "/ticketd.v1.PipelineService/ListPipelines",
        rule(Everyone, "pipelines:read"),
    ),
    (
        "/ticketd.v1.PipelineService/UpdatePipeline",
        rule(Admin, ""),
    ),
    (
        "/ticketd.v1.PipelineService/DeletePipeline",
        rule(Admin, ""),
    ),
    ("/ticketd.v1.PipelineService/CreateStage", rule(Admin, "")),
    ("/ticketd.v1.PipelineService/UpdateStage", rule(Admin, "")),
    ("/ticketd.v1.PipelineService/DeleteStage", rule(Admin, "")),
    // Properties.
    (
        "/ticketd.v1.PropertyService/CreateProperty",
        rule(Admin, ""),
    ),
    (
        "/ticketd.v1.PropertyService/GetProperty",
        rule(Staff, "properties:read"),
    ),
    (
        "/ticketd.v1.PropertyService/ListProperties",
        rule(Staff, "properties:read"),
    ),
    (
        "/ticketd.v1.PropertyService/UpdateProperty",
        rule(Admin, ""),
    ),
    (
        "/ticketd.v1.PropertyService/ArchiveProperty",
        rule(Admin, ""),
    ),
    // Associations: links to contacts, companies and notes are the desk's records.
    (
        "/ticketd.v1.AssociationService/ListAssociationTypes",
        rule(Staff, "associations:read"),
    ),
    (
        "/ticketd.v1.AssociationService/CreateAssociationType",
        rule(Admin, ""),
    ),
    (
        "/ticketd.v1.AssociationService/CreateAssociation",
        rule(Staff, "associations:write"),
    ),
    (
        "/ticketd.v1.AssociationService/DeleteAssociation",
        rule(Staff, "associations:write"),
    ),
    (
        "/ticketd.v1.AssociationService/ListAssociations",
        rule(Staff, "associations:read"),
    ),
    (
        "/ticketd.v1.AssociationService/BatchCreateAssociations",
        rule(Staff, "associations:write"),
    ),
    // Cards: customers may read the cards of tickets they see.
    (
        "/ticketd.v1.CardService/CreateCardTemplate",
        rule(Admin, ""),
    ),
    (
        "/ticketd.v1.CardService/GetCardTemplate",
        rule(Staff, "cards:read"),
    ),
    (
        "/ticketd.v1.CardService/ListCardTemplates",
        rule(Staff, "cards:read"),
    ),
    (
        "/ticketd.v1.CardService/SendCard",
        rule(Staff, "cards:write"),
    ),
    (
        "/ticketd.v1.CardService/UpdateCardProperties",
        rule(Staff, "cards:write"),
    ),
    (
        "/ticketd.v1.CardService/GetCard",
        rule(Everyone, "cards:read"),
    ),
    (
        "/ticketd.v1.CardService/ListCards",
        rule(Everyone, "cards:read"),
    ),
    (
        "/ticketd.v1.CardService/RenderCard",
        rule(Everyone, "cards:read"),
    ),
    (
        "/ticketd.v1.CardService/WatchCard",
        rule(Everyone, "cards:read"),
    ),
    // Portals: admin-managed; a customer may read its own.
    ("/ticketd.v1.PortalService/CreatePortal", rule(Admin, "")),
    (
        "/ticketd.v1.PortalService/GetPortal",
        rule(Everyone, "portals:read"),
    ),
    (
        "/ticketd.v1.PortalService/ListPortals",
        rule(Staff, "portals:read"),
    ),
    ("/ticketd.v1.PortalService/UpdatePortal", rule(Admin, "")),
    ("/ticketd.v1.PortalService/DeletePortal", rule(Admin, "")),
    // Agents: admin-managed; staff read the directory, customers never.
    ("/ticketd.v1.AgentService/CreateAgent", rule(Admin, "")),
    (
        "/ticketd.v1.AgentService/GetAgent",
        rule(Staff, "agents:read"),
    ),
    (
        "/ticketd.v1.AgentService/ListAgents",
        rule(Staff, "agents:read"),
    ),
    ("/ticketd.v1.AgentService/UpdateAgent", rule(Admin, "")),
    ("/ticketd.v1.AgentService/DeactivateAgent", rule(Admin, "")),
    // Escalation: chat tools (services) and agents hand conversations over; customers may not.
    (
        "/ticketd.v1.EscalationService/EscalateConversation",
        rule(Staff, "tickets:write"),
    ),
    (
        "/ticketd.v1.EscalationService/GetConversationTicket",
        rule(Staff, "tickets:read"),
    ),
    // Rules act on every ticket write: admins only change them; staff read and dry-run them.
    ("/ticketd.v1.RuleService/CreateRule", rule(Admin, "")),
    ("/ticketd.v1.RuleService/GetRule", rule(Staff, "rules:read")),
    (
        "/ticketd.v1.RuleService/ListRules",
        rule(Staff, "rules:read"),
    ),
    ("/ticketd.v1.RuleService/UpdateRule", rule(Admin, "")),
    ("/ticketd.v1.RuleService/DeleteRule", rule(Admin, "")),
    // A dry run reads the ticket and the rule and writes nothing.
    (
        "/ticketd.v1.RuleService/TestRule",
        rule(Staff, "rules:read"),
    ),
    // Webhooks: admin-managed (their URLs and secrets reach other systems); staff with the scope read them
    // and their deliveries, customers never.
    ("/ticketd.v1.WebhookService/CreateWebhook", rule(Admin, "")),
    (
        "/ticketd.v1.WebhookService/GetWebhook",
        rule(Staff, "webhooks:read"),
    ),
    (
        "/ticketd.v1.WebhookService/ListWebhooks",
        rule(Staff, "webhooks:read"),
    ),
    ("/ticketd.v1.WebhookService/UpdateWebhook", rule(Admin, "")),
    ("/ticketd.v1.WebhookService/DeleteWebhook", rule(Admin, "")),
    (
        "/ticketd.v1.WebhookService/RotateWebhookSecret",
        rule(Admin, ""),
    ),
    (
        "/ticketd.v1.WebhookService/ListWebhookDeliveries",
        rule(Staff, "webhooks:read"),
    ),
    (
        "/ticketd.v1.WebhookService/RedeliverWebhook",
        rule(Admin, ""),
    ),
];

/// The rule of a method, `None` when the table does not list it.
pub fn rule_for(path: &str) -> Option<Rule> {
    RULES
        .iter()
        .find(|(listed, _)| *listed == path)
        .map(|(_, rule)| *rule)
}

/// Whether `principal` may call the method at `path`; the error is a PERMISSION_DENIED message.
pub fn authorize(principal: &Principal, path: &str) -> Result<(), String> {
    if principal.role == Role::Admin {
        return Ok(());
    }
    let role = principal.role.as_str();
    let Some(rule) = rule_for(path) else {
        return Err(format!("{path} is not open to {role} callers"));
    };
    match (rule.audience, principal.role) {
        (Audience::Admin, _) => Err(format!("{path} needs the admin role; the caller is {role}")),
        (Audience::Staff, Role::Customer) => Err(format!("{path} is not open to customers")),
        (_, Role::Service) if !principal.has_scope(rule.scope) => Err(format!(
            "{path} needs scope {:?}, which this service credential does not have",
            rule.scope
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost_types::FileDescriptorSet;

    use super::*;

    /// Every method the server exposes has a rule, and every rule names a real method.
    #[test]
    fn the_table_covers_every_method_exactly() {
        let descriptors = FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET)
            .expect("the build script writes a valid descriptor set");
        let mut methods = Vec::new();
        for file in descriptors.file {
            let package = file.package().to_owned();
            for service in file.service {
                for method in &service.method {
                    methods.push(format!("/{package}.{}/{}", service.name(), method.name()));
                }
            }
        }
        for method in &methods {
            assert!(rule_for(method).is_some(), "no access rule for {method}");
        }
        for (path, _) in RULES {
            assert!(
                methods.contains(&(*path).to_owned()),
                "rule for unknown method {path}"
            );
        }
    }
}
