//! Who sees what, stored: portals, ticket and project followers, time entries, and the SQL form of a
//! customer's visibility rules, which every ticket read and write of a customer goes through.

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Query},
};

use super::{
    Store, WriteTxn,
    entities::{portal, project_follower, ticket, ticket_follower, time_entry},
    from_json, properties, to_json,
};
use crate::domain::{
    Error, Origin,
    access::{CustomerView, Portal, PortalChanges, PortalSettings, TicketScope, VisibilityRules},
    etag,
    follower::{Follower, FollowerKind, ProjectFollower},
    now,
    page::{Cursor, Page},
    ticket::Ticket,
    time_entry::{NewTimeEntry, TimeEntry},
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
        let definitions = properties::load_definitions(&self.db).await?;
        Ok(CustomerView::new(customer_id, org, portal, &definitions))
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
            let row = portal::Entity::find_by_id(id)
                .lock_exclusive()
                .one(&**txn)
                .await?
                .ok_or_else(|| Error::not_found(PORTAL, id))?;
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
            let row = portal::Entity::find_by_id(id)
                .lock_exclusive()
                .one(&**txn)
                .await?
                .ok_or_else(|| Error::not_found(PORTAL, id))?;
            etag::check(PORTAL, id, row.version, sent_etag)?;
            portal::Entity::delete_by_id(id).exec(&**txn).await?;
            Ok(())
        })
        .await
    }

    /// Makes someone follow a ticket the viewer can see; following twice changes nothing.
    pub async fn follow_ticket(
        &self,
        scope: Option<&TicketScope>,
        ticket_id: i64,
        follower_id: String,
    ) -> Result<Follower, Error> {
        self.write(None, async |txn| {
            require_visible(&**txn, scope, ticket_id).await?;
            add_follower(txn, ticket_id, &follower_id).await?;
            let row = ticket_follower::Entity::find_by_id((ticket_id, follower_id.clone()))
                .one(&**txn)
                .await?
                .ok_or_else(|| Error::internal("a follower vanished inside its transaction"))?;
            Ok(Follower {
                ticket_id: row.ticket_id,
                follower_id: row.follower_id,
                create_time: row.create_time,
            })
        })
        .await
    }

    /// Stops someone following a ticket the viewer can see; not following is not an error.
    pub async fn unfollow_ticket(
        &self,
        scope: Option<&TicketScope>,
        ticket_id: i64,
        follower_id: &str,
    ) -> Result<(), Error> {
        self.write(None, async |txn| {
            require_visible(&**txn, scope, ticket_id).await?;
            ticket_follower::Entity::delete_many()
                .filter(ticket_follower::Column::TicketId.eq(ticket_id))
                .filter(ticket_follower::Column::FollowerId.eq(follower_id))
                .exec(&**txn)
                .await?;
            Ok(())
        })
        .await
    }

    /// A ticket's followers by id; `only` limits them to one follower (a customer sees only itself).
    pub async fn list_followers(
        &self,
        scope: Option<&TicketScope>,
        ticket_id: i64,
        only: Option<&str>,
        page_size: u64,
        after: Option<String>,
    ) -> Result<Page<Follower, String>, Error> {
        require_visible(&self.db, scope, ticket_id).await?;
        let mut select =
            ticket_follower::Entity::find().filter(ticket_follower::Column::TicketId.eq(ticket_id));
        if let Some(only) = only {
            select = select.filter(ticket_follower::Column::FollowerId.eq(only));
        }
        if let Some(after) = after {
            select = select.filter(ticket_follower::Column::FollowerId.gt(after));
        }
        let followers = select
            .order_by_asc(ticket_follower::Column::FollowerId)
            .limit(page_size + 1)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| Follower {
                ticket_id: row.ticket_id,
                follower_id: row.follower_id,
                create_time: row.create_time,
            })
            .collect();
        Ok(Page::from_overfetch(followers, page_size, |follower| {
            follower.follower_id.clone()
        }))
    }

    /// Makes a user or organization follow a project; following twice changes nothing.
    pub async fn follow_project(
        &self,
        project_id: String,
        kind: FollowerKind,
        follower_id: String,
    ) -> Result<ProjectFollower, Error> {
        self.write(None, async |txn| {
            project_follower::Entity::insert(project_follower::ActiveModel {
                project_id: Set(project_id.clone()),
                kind: Set(kind.as_str().to_owned()),
                follower_id: Set(follower_id.clone()),
                create_time: Set(now()),
            })
            .on_conflict_do_nothing_on([
                project_follower::Column::ProjectId,
                project_follower::Column::Kind,
                project_follower::Column::FollowerId,
            ])
            .exec_without_returning(&**txn)
            .await?;
            let row = project_follower::Entity::find_by_id((
                project_id.clone(),
                kind.as_str().to_owned(),
                follower_id.clone(),
            ))
            .one(&**txn)
            .await?
            .ok_or_else(|| Error::internal("a project follower vanished inside its transaction"))?;
            project_follower_to_domain(row)
        })
        .await
    }

    /// Stops a user or organization following a project; not following is not an error.
    pub async fn unfollow_project(
        &self,
        project_id: &str,
        kind: FollowerKind,
        follower_id: &str,
    ) -> Result<(), Error> {
        self.write(None, async |txn| {
            project_follower::Entity::delete_many()
                .filter(project_follower::Column::ProjectId.eq(project_id))
                .filter(project_follower::Column::Kind.eq(kind.as_str()))
                .filter(project_follower::Column::FollowerId.eq(follower_id))
                .exec(&**txn)
                .await?;
            Ok(())
        })
        .await
    }

    /// A project's followers, by kind and id.
    pub async fn list_project_followers(
        &self,
        project_id: &str,
        page_size: u64,
        after: Option<(String, String)>,
    ) -> Result<Page<ProjectFollower, (String, String)>, Error> {
        let mut select = project_follower::Entity::find()
            .filter(project_follower::Column::ProjectId.eq(project_id));
        if let Some((kind, id)) = after {
            select = select.filter(
                Condition::any()
                    .add(project_follower::Column::Kind.gt(kind.clone()))
                    .add(
                        Condition::all()
                            .add(project_follower::Column::Kind.eq(kind))
                            .add(project_follower::Column::FollowerId.gt(id)),
                    ),
            );
        }
        let followers = select
            .order_by_asc(project_follower::Column::Kind)
            .order_by_asc(project_follower::Column::FollowerId)
            .limit(page_size + 1)
            .all(&self.db)
            .await?
            .into_iter()
            .map(project_follower_to_domain)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(followers, page_size, |follower| {
            (
                follower.kind.as_str().to_owned(),
                follower.follower_id.clone(),
            )
        }))
    }

    /// Records time on a ticket the viewer can see and that is not archived.
    pub async fn log_time(
        &self,
        scope: Option<&TicketScope>,
        entry: NewTimeEntry,
        origin: &Origin,
    ) -> Result<TimeEntry, Error> {
        self.write(origin.request.as_ref(), async |txn| {
            require_visible(&**txn, scope, entry.ticket_id).await?;
            let archived = ticket::Entity::find_by_id(entry.ticket_id)
                .select_only()
                .column(ticket::Column::ArchiveTime)
                .into_tuple::<Option<chrono::DateTime<chrono::Utc>>>()
                .one(&**txn)
                .await?
                .flatten()
                .is_some();
            if archived {
                return Err(Error::precondition(
                    "TICKET_ARCHIVED",
                    format!(
                        "ticket {} is archived; restore it before logging time",
                        entry.ticket_id
                    ),
                ));
            }
            let row = time_entry::Entity::insert(time_entry::ActiveModel {
                id: NotSet,
                ticket_id: Set(entry.ticket_id),
                author_id: Set(origin.actor_id.clone()),
                minutes: Set(entry.minutes),
                work_date: Set(entry.work_date.format("%Y-%m-%d").to_string()),
                note: Set(entry.note),
                create_time: Set(now()),
            })
            .exec_with_returning(&**txn)
            .await?;
            time_entry_to_domain(row)
        })
        .await
    }

    /// A ticket's time entries, oldest first; `author` limits them to one author's.
    pub async fn list_time_entries(
        &self,
        scope: Option<&TicketScope>,
        ticket_id: i64,
        author: Option<&str>,
        page_size: u64,
        after: Option<Cursor>,
    ) -> Result<Page<TimeEntry>, Error> {
        require_visible(&self.db, scope, ticket_id).await?;
        let mut select =
            time_entry::Entity::find().filter(time_entry::Column::TicketId.eq(ticket_id));
        if let Some(author) = author {
            select = select.filter(time_entry::Column::AuthorId.eq(author));
        }
        if let Some(cursor) = after {
            select = select.filter(time_entry::Column::Id.gt(cursor.id));
        }
        let entries = select
            .order_by_asc(time_entry::Column::Id)
            .limit(page_size + 1)
            .all(&self.db)
            .await?
            .into_iter()
            .map(time_entry_to_domain)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(entries, page_size, |entry| Cursor {
            key: entry.id,
            id: entry.id,
        }))
    }

    /// Deletes a time entry on a ticket the viewer can see; `author` (when set) must have written it.
    pub async fn delete_time_entry(
        &self,
        scope: Option<&TicketScope>,
        id: i64,
        author: Option<&str>,
    ) -> Result<(), Error> {
        self.write(None, async |txn| {
            let row = time_entry::Entity::find_by_id(id)
                .lock_exclusive()
                .one(&**txn)
                .await?
                .ok_or_else(|| Error::not_found(TimeEntry::RESOURCE, id))?;
            // A customer learns nothing about entries on tickets it cannot see.
            require_visible(&**txn, scope, row.ticket_id)
                .await
                .map_err(|_| Error::not_found(TimeEntry::RESOURCE, id))?;
            if let Some(author) = author
                && row.author_id != author
            {
                return Err(Error::denied(
                    "id",
                    format!("time entry {id} was logged by someone else; only its author or an admin may delete it"),
                ));
            }
            time_entry::Entity::delete_by_id(id).exec(&**txn).await?;
            Ok(())
        })
        .await
    }
}

/// Adds a follower unless already there (the requester follows its ticket from creation on).
pub(super) async fn add_follower(
    txn: &WriteTxn,
    ticket_id: i64,
    follower_id: &str,
) -> Result<(), Error> {
    ticket_follower::Entity::insert(ticket_follower::ActiveModel {
        ticket_id: Set(ticket_id),
        follower_id: Set(follower_id.to_owned()),
        create_time: Set(now()),
    })
    .on_conflict_do_nothing_on([
        ticket_follower::Column::TicketId,
        ticket_follower::Column::FollowerId,
    ])
    .exec_without_returning(&**txn)
    .await?;
    Ok(())
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

fn project_follower_to_domain(row: project_follower::Model) -> Result<ProjectFollower, Error> {
    let kind = FollowerKind::from_stored(&row.kind).ok_or_else(|| {
        Error::internal(format!("project follower has unknown kind {:?}", row.kind))
    })?;
    Ok(ProjectFollower {
        project_id: row.project_id,
        kind,
        follower_id: row.follower_id,
        create_time: row.create_time,
    })
}

fn time_entry_to_domain(row: time_entry::Model) -> Result<TimeEntry, Error> {
    let work_date =
        chrono::NaiveDate::parse_from_str(&row.work_date, "%Y-%m-%d").map_err(|_| {
            Error::internal(format!(
                "time entry {} has a malformed work date {:?}",
                row.id, row.work_date
            ))
        })?;
    Ok(TimeEntry {
        id: row.id,
        ticket_id: row.ticket_id,
        author_id: row.author_id,
        minutes: row.minutes,
        work_date,
        note: row.note,
        create_time: row.create_time,
    })
}
