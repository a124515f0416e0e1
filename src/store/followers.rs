//! Who follows what: ticket followers (the requester from creation on, and anyone added since) and project
//! followers (users and organizations), which the customer visibility rules in [`super::access`] read.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::{
    Store, WriteTxn,
    access::require_visible,
    entities::{project_follower, ticket_follower},
};
use crate::domain::{
    Error,
    access::TicketScope,
    follower::{Follower, FollowerKind, ProjectFollower},
    now,
    page::Page,
};

impl Store {
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
            Ok(follower_to_domain(row))
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
            .map(follower_to_domain)
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

fn follower_to_domain(row: ticket_follower::Model) -> Follower {
    Follower {
        ticket_id: row.ticket_id,
        follower_id: row.follower_id,
        create_time: row.create_time,
    }
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
