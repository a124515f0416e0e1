//! Who is calling and what they may do: credentials ([`credentials`]) become a [`Principal`] in one tower layer
//! ([`layer`]), which also checks the caller's role against the method's rule ([`policy`]). Per-ticket rules
//! for customers (which tickets, which fields) are applied by the handlers through [`crate::domain::access`].

pub mod credentials;
pub mod layer;
pub mod policy;

use std::collections::BTreeSet;

pub use credentials::{AuthSetupError, Authenticator};
pub use layer::AuthLayer;

/// What a caller is allowed to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including schema (pipelines, properties, association types, card templates, portals).
    Admin,
    /// Every ticket; no schema changes.
    Agent,
    /// Like an agent, limited to the scopes of its key or token.
    Service,
    /// Only what its portal lets it see and change.
    Customer,
}

impl Role {
    /// The spelling used in tokens, key files and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Agent => "agent",
            Self::Service => "service",
            Self::Customer => "customer",
        }
    }

    /// Reads a role claim.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "admin" => Some(Self::Admin),
            "agent" => Some(Self::Agent),
            "service" => Some(Self::Service),
            "customer" => Some(Self::Customer),
            _ => None,
        }
    }

    /// Admins, agents and services: the support desk's side, which sees every ticket.
    pub fn is_staff(self) -> bool {
        !matches!(self, Self::Customer)
    }
}

/// An authenticated caller, as every handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`, or the API key's id; recorded as history actor, comment and time entry author.
    pub id: String,
    pub role: Role,
    /// Organization id (`org` claim); empty when none.
    pub org: String,
    /// `email` claim; empty when none.
    pub email: String,
    /// The customer's portal (`portal` claim); always set for customers.
    pub portal: Option<i64>,
    /// For services: the scopes granted, e.g. `tickets:read`; `None` for other roles.
    pub scopes: Option<BTreeSet<String>>,
}

impl Principal {
    /// The caller in `--auth none` mode: an admin without a name.
    pub fn anonymous_admin() -> Self {
        Self {
            id: "anonymous".to_owned(),
            role: Role::Admin,
            org: String::new(),
            email: String::new(),
            portal: None,
            scopes: None,
        }
    }

    /// The namespace of the caller's request ids. A customer's `sub` is only unique within its portal (two
    /// portals may both have a customer "42"), so the portal is part of it; staff and services are named by
    /// the issuer alone.
    pub fn request_namespace(&self) -> String {
        match self.portal {
            Some(portal) => format!("portal/{portal}/{}", self.id),
            None => self.id.clone(),
        }
    }

    /// Whether a service's scopes include `scope` (`*` grants every scope); true for non-services.
    pub fn has_scope(&self, scope: &str) -> bool {
        match &self.scopes {
            None => true,
            Some(scopes) => scopes.contains("*") || scopes.contains(scope),
        }
    }
}
