//! Who sees what, stored: portals, a customer's view through its portal, and the SQL form of the visibility
//! rules, which every ticket read and write of a customer goes through.

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Query},
};

use super::{
    Store, WriteTxn,
    entities::{portal, project_follower, ticket, ticket_follower},
    from_json, properties, to_json,
};
use crate::domain::{
    Error, Origin,
    access::{CustomerView, Portal, PortalChanges, PortalSettings, TicketScope, VisibilityRules},
    etag,
    follower::FollowerKind,
    now,
    page::{Cursor, Page},
    ticket::Ticket,
};

const PORTAL: &str = Portal::RESOURCE;

/// The tickets a customer's portal shows, as a condition on `tickets`: any enabled rule, and an allowed type.
pub(super) fn scope_condition(scope: &TicketScope) -> Condition {
    let rules = scope.rules;
    let mut any = Condition::any();
    // An empty OR would be rendered as TRUE by some builders; start from an explicit FALSE.
    any = any.add(Expr::cust("1 = 0"));
    if rules.requested {
        any = any.add(ticket::Column::RequesterId.eq(scope.customer_id.as_str()));
    }
    if rules.followed {
        let mut followed = Query::select();
        followed
            .column((ticket_follower::Entity, ticket_follower::Column::TicketId))
            .from(ticket_follower::Entity)
            .and_where(
                Expr::col((ticket_follower::Entity, ticket_follower::Column::FollowerId))
                    .eq(scope.customer_id.as_str()),
            );
        any = any.add(Expr::col((ticket::Entity, ticket::Column::Id)).in_subquery(followed));
    }
    if rules.organization && !scope.org.is_empty() {
        any = any.add(ticket::Column::OrganizationId.eq(scope.org.as_str()));
    }
    if rules.followed_projects {
        let follower = |kind: FollowerKind, id: &str| {
            Condition::all()
                .add(
                    Expr::col((project_follower::Entity, project_follower::Column::Kind))
                        .eq(kind.as_str()),
                )
                .add(
                    Expr::col((
                        project_follower::Entity,
                        project_follower::Column::FollowerId,
                    ))
                    .eq(id),
                )
        };
        let mut who = Condition::any().add(follower(FollowerKind::User, &scope.customer_id));
        if !scope.org.is_empty() {
            who = who.add(follower(FollowerKind::Organization, &scope.org));
        }
        let mut projects = Query::select();
        projects
            .column((
                project_follower::Entity,
                project_follower::Column::ProjectId,
            ))
            .from(project_follower::Entity)
            .cond_where(who);
        any = any.add(
            Condition::all()
                .add(ticket::Column::ProjectId.ne(""))
                .add(Expr::col((ticket::Entity, ticket::Column::ProjectId)).in_subquery(projects)),
        );
    }
    let mut condition = Condition::all().add(any);
    if !scope.ticket_types.is_empty() {
        condition =
            condition.add(ticket::Column::TicketType.is_in(scope.ticket_types.iter().cloned()));
    }
    condition
}

/// NOT_FOUND unless the ticket exists and, for a customer, its portal shows it: an invisible ticket gets the
/// same answer as a missing one, so ids cannot be probed.
pub(super) async fn require_visible(
    db: &impl ConnectionTrait,
    scope: Option<&TicketScope>,
    id: i64,
) -> Result<(), Error> {
    let Some(scope) = scope else {
        return super::tickets::require_ticket(db, id).await;
    };
    let found = ticket::Entity::find_by_id(id)
        .filter(scope_condition(scope))
        .select_only()
        .column(ticket::Column::Id)
        .into_tuple::<i64>()
        .one(db)
        .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(Error::not_found(Ticket::RESOURCE, id)),
    }
}

impl Store {
    /// Whether a customer's portal shows a ticket now (used by streams for the follower rules).
    pub async fn ticket_visible(&self, scope: &TicketScope, id: i64) -> Result<bool, Error> {
        match require_visible(&self.db, Some(scope), id).await {
            Ok(()) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// NOT_FOUND unless the ticket exists and the viewer may see it.
    pub async fn require_visible_ticket(
        &self,
        scope: Option<&TicketScope>,
        id: i64,
    ) -> Result<(), Error> {
        require_visible(&self.db, scope, id).await
    }

    /// NOT_FOUND unless the ticket exists (archived or not).
    pub(super) async fn require_ticket(&self, ticket_id: i64) -> Result<(), Error> {
        super::tickets::require_ticket(&self.db, ticket_id).await
    }

    /// The view of a customer signed in through `portal_id`; PERMISSION_DENIED when the portal is gone.
    pub async fn customer_view(
        &self,
        customer_id: &str,
        org: &str,
        portal_id: i64,
    ) -> Result<CustomerView, Error> {
        let portal = match self.get_portal(portal_id).await {
            Ok(portal) => portal,
            Err(Error::NotFound { .. }) => {
                return Err(Error::denied(
                    "portal",
                    format!("the token's portal {portal_id} does not exist"),
                ));
            }
            Err(error) => return Err(error),
        };
        let config = self.config_for_read().await?;
        Ok(CustomerView::new(
            customer_id,
            org,
            portal,
            &config.definitions,
        ))
    }

    /// Creates a portal after checking its lists against the property definitions.
    pub async fn create_portal(
        &self,
        settings: PortalSettings,
        origin: &Origin,
    ) -> Result<Portal, Error> {
        self.write(origin.request.as_ref(), async |txn| {
            let definitions = properties::load_definitions(&**txn).await?;
            settings.check(&definitions)?;
            let now = now();
            let row = portal::Entity::insert(portal::ActiveModel {
                version: Set(1),
                create_time: Set(now),
                update_time: Set(now),
                ..portal_settings_model(&settings)?
            })
            .exec_with_returning(&**txn)
            .await?;
            portal_to_domain(row)
        })
        .await
    }

    /// Reads one portal.
    pub async fn get_portal(&self, id: i64) -> Result<Portal, Error> {
        let row = portal::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found(PORTAL, id))?;
        portal_to_domain(row)
    }

    /// Portals by id.
    pub async fn list_portals(
        &self,
        page_size: u64,
        after: Option<Cursor>,
    ) -> Result<Page<Portal>, Error> {
        let mut select = portal::Entity::find();
        if let Some(cursor) = after {
            select = select.filter(portal::Column::Id.gt(cursor.id));
        }
        let portals = select
            .order_by_asc(portal::Column::Id)
            .limit(page_size + 1)
            .all(&self.db)
            .await?
            .into_iter()
            .map(portal_to_domain)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(portals, page_size, |portal| Cursor {
            key: portal.id,
            id: portal.id,
        }))
    }

    /// Applies changes when `sent_etag` is empty or current.
    pub async fn update_portal(
        &self,
        id: i64,
        sent_etag: &str,
        changes: PortalChanges,
        origin: &Origin,
    ) -> Result<Portal, Error> {
        self.write(origin.request.as_ref(), async |txn| {
            let row = lock_portal(txn, id).await?;
            let current = portal_to_domain(row)?;
            etag::check(PORTAL, id, current.version, sent_etag)?;
            let settings = changes.apply(&current);
            let definitions = properties::load_definitions(&**txn).await?;
            settings.check(&definitions)?;
            let updated = portal::Entity::update(portal::ActiveModel {
                id: Set(id),
                version: Set(current.version + 1),
                update_time: Set(now()),
                ..portal_settings_model(&settings)?
            })
            .exec(&**txn)
            .await?;
            portal_to_domain(updated)
        })
        .await
    }

    /// Deletes a portal; customers whose tokens name it are refused from then on.
    pub async fn delete_portal(
        &self,
        id: i64,
        sent_etag: &str,
        origin: &Origin,
    ) -> Result<(), Error> {
        self.write(origin.request.as_ref(), async |txn| {
            let row = lock_portal(txn, id).await?;
            etag::check(PORTAL, id, row.version, sent_etag)?;
            portal::Entity::delete_by_id(id).exec(&**txn).await?;
            Ok(())
        })
        .await
    }
}

/// Reads a portal for change; on PostgreSQL the row lock queues concurrent writers to it.
async fn lock_portal(txn: &WriteTxn, id: i64) -> Result<portal::Model, Error> {
    portal::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&**txn)
        .await?
        .ok_or_else(|| Error::not_found(PORTAL, id))
}

/// The settings columns of a portal row; id, version and times are left for the caller.
fn portal_settings_model(settings: &PortalSettings) -> Result<portal::ActiveModel, Error> {
    Ok(portal::ActiveModel {
        id: NotSet,
        name: Set(settings.name.trim().to_owned()),
        requested_tickets: Set(settings.rules.requested),
        followed_tickets: Set(settings.rules.followed),
        organization_tickets: Set(settings.rules.organization),
        followed_project_tickets: Set(settings.rules.followed_projects),
        ticket_types: Set(to_json(&settings.ticket_types)?),
        visible_properties: Set(to_json(&settings.visible_properties)?),
        editable_properties: Set(to_json(&settings.editable_properties)?),
        time_logging: Set(settings.time_logging),
        version: NotSet,
        create_time: NotSet,
        update_time: NotSet,
    })
}

fn portal_to_domain(row: portal::Model) -> Result<Portal, Error> {
    Ok(Portal {
        id: row.id,
        name: row.name,
        rules: VisibilityRules {
            requested: row.requested_tickets,
            followed: row.followed_tickets,
            organization: row.organization_tickets,
            followed_projects: row.followed_project_tickets,
        },
        ticket_types: from_json(row.ticket_types)?,
        visible_properties: from_json(row.visible_properties)?,
        editable_properties: from_json(row.editable_properties)?,
        time_logging: row.time_logging,
        version: row.version,
        create_time: row.create_time,
        update_time: row.update_time,
    })
}
