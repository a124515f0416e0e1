//! Request ids (AIP-155), stored in the same transaction as the change they guard, so that a retry after a
//! timeout, a restart or a switch of replica returns the first answer instead of acting twice.
//!
//! The claim is an `INSERT … ON CONFLICT DO NOTHING` at the start of the transaction: on PostgreSQL a second
//! request with the same id blocks on the first one's row until that commits (then replays its response) or
//! rolls back (then proceeds itself). On SQLite, writes are serialised, so the same order holds.

use std::time::Duration;

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TryInsertResult};
use serde::{Serialize, de::DeserializeOwned};

use super::{
    Store, WriteTxn,
    entities::{idempotency_key, request_id},
    from_json, to_json,
};
use crate::domain::{self, Error, RequestKey};

/// What a transaction should do after claiming its request id.
pub enum Claim<T> {
    /// First time this id is seen (or no id was given): do the work and record the response.
    Proceed,
    /// A retry: answer with the first response and change nothing.
    Replay(T),
}

/// Claims `key` inside `txn`.
pub async fn claim<T: DeserializeOwned>(
    txn: &WriteTxn,
    key: Option<&RequestKey>,
) -> Result<Claim<T>, Error> {
    let Some(key) = key else {
        return Ok(Claim::Proceed);
    };
    let inserted = request_id::Entity::insert(request_id::ActiveModel {
        caller: Set(key.caller.clone()),
        request_id: Set(key.request_id.clone()),
        operation: Set(key.operation.to_owned()),
        fingerprint: Set(key.fingerprint.clone()),
        response: Set(None),
        create_time: Set(domain::now()),
    })
    .on_conflict_do_nothing_on([request_id::Column::Caller, request_id::Column::RequestId])
    .exec_without_returning(&**txn)
    .await?;
    if matches!(inserted, TryInsertResult::Inserted(rows) if rows > 0) {
        return Ok(Claim::Proceed);
    }
    let saved = request_id::Entity::find_by_id((key.caller.clone(), key.request_id.clone()))
        .one(&**txn)
        .await?
        .ok_or_else(|| Error::internal("request id vanished between conflict and read"))?;
    if saved.operation != key.operation || saved.fingerprint != key.fingerprint {
        return Err(Error::RequestIdReused {
            request_id: key.request_id.clone(),
        });
    }
    let response = saved
        .response
        .ok_or_else(|| Error::internal("request id claimed without a response"))?;
    Ok(Claim::Replay(from_json(response)?))
}

impl Store {
    /// Forgets request ids older than `ttl`; returns how many were dropped.
    pub async fn purge_request_ids(&self, ttl: Duration) -> Result<u64, Error> {
        let ttl = chrono::Duration::from_std(ttl).map_err(Error::internal)?;
        let expired_before = domain::now() - ttl;
        let deleted = request_id::Entity::delete_many()
            .filter(request_id::Column::CreateTime.lt(expired_before))
            .exec(&self.db)
            .await?;
        let legacy = idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::CreateTime.lt(expired_before))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected + legacy.rows_affected)
    }
}

/// Records the response to a claimed `key`, in the same transaction as the change.
pub async fn complete<T: Serialize>(
    txn: &WriteTxn,
    key: Option<&RequestKey>,
    response: &T,
) -> Result<(), Error> {
    let Some(key) = key else {
        return Ok(());
    };
    request_id::Entity::update(request_id::ActiveModel {
        caller: Set(key.caller.clone()),
        request_id: Set(key.request_id.clone()),
        response: Set(Some(to_json(response)?)),
        ..Default::default()
    })
    .exec(&**txn)
    .await?;
    Ok(())
}
