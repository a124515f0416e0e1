//! The agent directory, stored.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, SqlErr,
};

use super::{Store, WriteTxn, entities::agent};
use crate::domain::{
    Error, Origin,
    agent::{Agent, AgentChanges, AgentFilter, NewAgent, email_key},
    etag, now,
    page::Page,
};

const AGENT: &str = Agent::RESOURCE;

/// The agent whose address is `email` ignoring letter case, active or not. Takes any connection so that a
/// write (escalation) can match inside its own transaction.
pub(super) async fn agent_by_email(
    db: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<Agent>, Error> {
    let row = agent::Entity::find()
        .filter(agent::Column::EmailKey.eq(email_key(email)))
        .one(db)
        .await?;
    Ok(row.map(agent_to_domain))
}

impl Store {
    /// Adds an agent, active; its id and its address (ignoring case) must be new.
    pub async fn create_agent(&self, new: NewAgent, origin: &Origin) -> Result<Agent, Error> {
        new.check()?;
        self.write(origin.request.as_ref(), async |txn| {
            // Checked first for an answer naming the right field; the unique keys settle races.
            if agent::Entity::find_by_id(new.id.clone())
                .one(&**txn)
                .await?
                .is_some()
            {
                return Err(id_taken(&new.id));
            }
            if agent_by_email(&**txn, &new.email).await?.is_some() {
                return Err(email_taken(&new.email));
            }
            let now = now();
            let row = agent::Entity::insert(agent::ActiveModel {
                id: Set(new.id.clone()),
                email: Set(new.email.clone()),
                email_key: Set(email_key(&new.email)),
                display_name: Set(new.display_name.clone()),
                active: Set(true),
                version: Set(1),
                create_time: Set(now),
                update_time: Set(now),
            })
            .exec_with_returning(&**txn)
            .await
            .map_err(|error| duplicate(error, &new.id, &new.email))?;
            Ok(agent_to_domain(row))
        })
        .await
    }

    /// Reads one agent, active or not.
    pub async fn get_agent(&self, id: &str) -> Result<Agent, Error> {
        agent::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(agent_to_domain)
            .ok_or_else(|| Error::not_found(AGENT, id))
    }

    /// One page of agents by id, strictly after `after_id`.
    pub async fn list_agents(
        &self,
        page_size: u64,
        after_id: Option<String>,
        filter: &AgentFilter,
    ) -> Result<Page<Agent, String>, Error> {
        let mut select = agent::Entity::find();
        if let Some(email) = &filter.email {
            select = select.filter(agent::Column::EmailKey.eq(email_key(email)));
        }
        if let Some(active) = filter.active {
            select = select.filter(agent::Column::Active.eq(active));
        }
        if let Some(after) = after_id {
            select = select.filter(agent::Column::Id.gt(after));
        }
        let agents: Vec<Agent> = select
            .order_by_asc(agent::Column::Id)
            .limit(page_size + 1)
            .all(&self.db)
            .await?
            .into_iter()
            .map(agent_to_domain)
            .collect();
        Ok(Page::from_overfetch(agents, page_size, |agent| {
            agent.id.clone()
        }))
    }

    /// Applies changes when `sent_etag` is empty or current; a new address must not be another agent's.
    pub async fn update_agent(
        &self,
        id: &str,
        sent_etag: &str,
        changes: AgentChanges,
        origin: &Origin,
    ) -> Result<Agent, Error> {
        changes.check()?;
        self.write(origin.request.as_ref(), async |txn| {
            let row = lock_agent(txn, id).await?;
            etag::check(AGENT, id, row.version, sent_etag)?;
            let mut update = agent::ActiveModel {
                id: Set(id.to_owned()),
                version: Set(row.version + 1),
                update_time: Set(now()),
                ..Default::default()
            };
            if let Some(email) = &changes.email {
                // Re-casing one's own address is a change like any other, not a clash with oneself.
                if let Some(holder) = agent_by_email(&**txn, email).await?
                    && holder.id != id
                {
                    return Err(email_taken(email));
                }
                update.email = Set(email.clone());
                update.email_key = Set(email_key(email));
            }
            if let Some(display_name) = &changes.display_name {
                update.display_name = Set(display_name.clone());
            }
            if let Some(active) = changes.active {
                update.active = Set(active);
            }
            let updated = agent::Entity::update(update)
                .exec(&**txn)
                .await
                .map_err(|error| duplicate(error, id, changes.email.as_deref().unwrap_or("")))?;
            Ok(agent_to_domain(updated))
        })
        .await
    }

    /// Marks an agent inactive. An inactive one is answered as it is, so a retry without a request id does
    /// not fail on the etag its first attempt changed.
    pub async fn deactivate_agent(
        &self,
        id: &str,
        sent_etag: &str,
        origin: &Origin,
    ) -> Result<Agent, Error> {
        self.write(origin.request.as_ref(), async |txn| {
            let row = lock_agent(txn, id).await?;
            etag::check(AGENT, id, row.version, sent_etag)?;
            if !row.active {
                return Ok(agent_to_domain(row));
            }
            let updated = agent::Entity::update(agent::ActiveModel {
                id: Set(id.to_owned()),
                active: Set(false),
                version: Set(row.version + 1),
                update_time: Set(now()),
                ..Default::default()
            })
            .exec(&**txn)
            .await?;
            Ok(agent_to_domain(updated))
        })
        .await
    }
}

/// Reads an agent for change; on PostgreSQL the row lock queues concurrent writers to it.
async fn lock_agent(txn: &WriteTxn, id: &str) -> Result<agent::Model, Error> {
    agent::Entity::find_by_id(id.to_owned())
        .lock_exclusive()
        .one(&**txn)
        .await?
        .ok_or_else(|| Error::not_found(AGENT, id))
}

fn id_taken(id: &str) -> Error {
    Error::AlreadyExists {
        resource: AGENT,
        field: "id".to_owned(),
        value: id.to_owned(),
    }
}

fn email_taken(email: &str) -> Error {
    Error::AlreadyExists {
        resource: AGENT,
        field: "email".to_owned(),
        value: email.to_owned(),
    }
}

/// A write that lost a race for a unique key (the checks before it saw the key free): the index named in the
/// database's message says which key. SQLite names `agents.email_key`, PostgreSQL the index `agents_email_key`.
fn duplicate(error: DbErr, id: &str, email: &str) -> Error {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) if message.contains("email_key") => {
            email_taken(email)
        }
        Some(SqlErr::UniqueConstraintViolation(_)) => id_taken(id),
        _ => error.into(),
    }
}

fn agent_to_domain(row: agent::Model) -> Agent {
    Agent {
        etag: Agent::etag_of(&row.id, row.version),
        id: row.id,
        email: row.email,
        display_name: row.display_name,
        active: row.active,
        create_time: row.create_time,
        update_time: row.update_time,
    }
}
