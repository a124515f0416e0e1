//! The per-replica cache of configuration: property definitions, pipelines with their stages, the enabled rules
//! (compiled) and the enabled webhooks (conditions parsed). Every ticket write needs some of it; reading and
//! parsing it again per write was a third of a create's statements and most of its decoding.
//!
//! Consistency. A write must never act on configuration older than what had committed when it began.
//! - PostgreSQL: a generation (migration `m20261129_000014`) moves, through triggers, in the same transaction as
//!   every change of these tables, to a value never used before. A write reads it inside its transaction (the
//!   first time it needs configuration; ticket writes get it from the call that already takes the definitions
//!   lock) and uses the cache only if it was loaded at exactly that generation, else loads it in the write's
//!   own transaction. A load reads the generation *before* the data, so what it holds is never older than
//!   its label. The write's generation read sees everything committed before the write began (READ
//!   COMMITTED, a statement of its own transaction), so neither is the configuration it acts on.
//! - SQLite: one process per file, and every write holds the write gate. A transaction that changed
//!   configuration moves an in-process generation after its commit and before it lets the gate go, so the
//!   next write compares against it with no statement at all.
//! - A transaction that changed configuration itself never reads the cache nor fills it: it reads its own
//!   uncommitted state from the database.
//! - Plain reads (SearchTickets' filter check, a customer's view) run outside any transaction and use the cache
//!   without a round trip while it is valid for this replica's *epoch*, moved by its own configuration commits
//!   and by `NOTIFY ticketd_config` from any replica (the triggers send it; `events::hub` listens). Staleness
//!   is bounded by the notification's delivery, and by [`READ_TTL`] should a notification be lost (sqlx's
//!   listener reconnects by itself and drops what came meanwhile); while the listener is known to be
//!   disconnected, reads load from the database every time. A name the cache does not know is
//!   looked up again before a read refuses it (see `tickets::search_tickets`).
//!
//! Cost: one `SELECT` of a single-row table (PostgreSQL writes that take no definitions lock), or nothing; a
//! change of any configuration reloads all of it (four queries) on each replica at its next use.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    Statement,
};

use super::{
    Store, WriteTxn,
    entities::{pipeline, stage, webhook},
    from_json, pipelines, properties, rules,
};
use crate::domain::{
    Error, condition::Condition, pipeline::Pipeline, property::PropertyDefinition,
    rule::CompiledRule, rule::Rule,
};

/// The longest a plain read trusts the cache without a notification having been able to say otherwise: the
/// bound on staleness should the listener's connection die without an error.
pub const READ_TTL: Duration = Duration::from_secs(5);

/// PostgreSQL channel the configuration triggers notify on.
pub const CONFIG_CHANNEL: &str = "ticketd_config";

/// An enabled webhook as matching needs it.
pub(super) struct Subscriber {
    pub id: i64,
    pub event_types: Vec<String>,
    /// `None`: the stored condition no longer parses, so it matches nothing.
    pub condition: Option<Condition>,
}

/// One consistent copy of the configuration.
pub(super) struct Config {
    /// PostgreSQL: the database generation read before the data. SQLite: the in-process generation.
    generation: i64,
    pub definitions: Arc<BTreeMap<String, PropertyDefinition>>,
    pub pipelines: HashMap<i64, Arc<Pipeline>>,
    /// Enabled rules in running order.
    pub rules: Vec<(Rule, CompiledRule)>,
    pub webhooks: Vec<Subscriber>,
}

struct Cached {
    config: Arc<Config>,
    /// The epoch when its load began.
    epoch: u64,
    loaded: Instant,
}

/// Shared by every clone of a [`Store`].
pub(super) struct ConfigCache {
    current: RwLock<Option<Cached>>,
    /// Moves on every sign that configuration may have changed (see the module doc). On SQLite it is the
    /// generation itself.
    epoch: AtomicU64,
    /// PostgreSQL: whether notifications are being received, without which plain reads cannot trust the cache.
    listening: AtomicBool,
}

impl ConfigCache {
    pub(super) fn new(backend: DbBackend) -> Self {
        Self {
            current: RwLock::new(None),
            epoch: AtomicU64::new(1),
            listening: AtomicBool::new(backend != DbBackend::Postgres),
        }
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Configuration may have changed: plain reads stop trusting what is cached.
    pub(super) fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::Release);
        self.invalidate();
    }

    fn for_read(&self) -> Option<Arc<Config>> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        let epoch = self.epoch();
        let current = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        current
            .as_ref()
            .filter(|cached| cached.epoch == epoch && cached.loaded.elapsed() < READ_TTL)
            .map(|cached| Arc::clone(&cached.config))
    }

    fn at_generation(&self, generation: i64) -> Option<Arc<Config>> {
        let current = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        current
            .as_ref()
            .filter(|cached| cached.config.generation == generation)
            .map(|cached| Arc::clone(&cached.config))
    }

    /// Keeps `config` unless what is cached is at least as new.
    fn offer(&self, config: &Arc<Config>, epoch: u64) {
        let mut current = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let newer = current.as_ref().is_none_or(|cached| {
            (config.generation, epoch) > (cached.config.generation, cached.epoch)
        });
        if newer {
            *current = Some(Cached {
                config: Arc::clone(config),
                epoch,
                loaded: Instant::now(),
            });
        }
    }
}

impl Store {
    /// Configuration for a read outside any transaction (see the module doc for how stale it may be).
    pub(super) async fn config_for_read(&self) -> Result<Arc<Config>, Error> {
        if let Some(config) = self.config.for_read() {
            return Ok(config);
        }
        self.config_fresh().await
    }

    /// Configuration straight from the database, kept for the reads that follow.
    pub(super) async fn config_fresh(&self) -> Result<Arc<Config>, Error> {
        let epoch = self.config.epoch();
        let generation = match self.backend() {
            DbBackend::Postgres => database_generation(&self.db).await?,
            _ => epoch as i64,
        };
        let config = Arc::new(load(&self.db, generation).await?);
        self.config.offer(&config, epoch);
        Ok(config)
    }

    /// Called by the PostgreSQL listener: a replica (maybe this one) committed a configuration change, or the
    /// listener (re)connected or lost its connection.
    pub fn config_notified(&self) {
        self.config.invalidate();
    }

    /// Called by the PostgreSQL listener when it starts or stops receiving notifications.
    pub fn config_listening(&self, listening: bool) {
        self.config.set_listening(listening);
    }
}

/// What a write transaction knows of configuration.
#[derive(Default)]
pub(super) struct TxnConfig {
    /// The configuration this transaction acts on, once it needed any.
    snapshot: Option<Arc<Config>>,
    /// PostgreSQL: the definitions lock is held (until the transaction ends), taken at `snapshot`'s generation.
    definitions_locked: bool,
    /// The transaction changed configuration itself: the cache is of no use to it.
    changed: bool,
}

impl WriteTxn {
    /// The configuration this write acts on: cached when the cache is at the generation the write sees.
    pub(super) async fn config(&self) -> Result<Arc<Config>, Error> {
        if self.config_state().changed {
            return Ok(Arc::new(load(&**self, 0).await?));
        }
        if let Some(snapshot) = &self.config_state().snapshot {
            return Ok(Arc::clone(snapshot));
        }
        let generation = match self.get_database_backend() {
            DbBackend::Postgres => database_generation(&**self).await?,
            _ => self.cache.epoch() as i64,
        };
        self.settle(generation).await
    }

    /// The property definitions a ticket write validates against, held steady until it commits: on
    /// PostgreSQL under the shared definitions lock (see `properties::DEFINITIONS_LOCK_KEY`), taken with the
    /// generation in one call.
    pub(super) async fn definitions_for_write(
        &self,
    ) -> Result<Arc<BTreeMap<String, PropertyDefinition>>, Error> {
        if self.get_database_backend() != DbBackend::Postgres {
            return Ok(Arc::clone(&self.config().await?.definitions));
        }
        {
            let state = self.config_state();
            if state.definitions_locked
                && !state.changed
                && let Some(snapshot) = &state.snapshot
            {
                return Ok(Arc::clone(&snapshot.definitions));
            }
        }
        // The transaction id comes with it, saving the outbox its own round trip for one.
        let generation = Generation::find_by_statement(Statement::from_string(
            DbBackend::Postgres,
            "SELECT ticketd_config_for_write() AS generation, pg_current_xact_id() IS NOT NULL AS has_xid",
        ))
        .one(&**self)
        .await?
        .ok_or_else(|| Error::internal("ticketd_config_for_write() returned no row"))?
        .generation;
        self.has_xid
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if self.config_state().changed {
            return Ok(Arc::new(properties::load_definitions(&**self).await?));
        }
        let current = self
            .config_state()
            .snapshot
            .as_ref()
            .filter(|snapshot| snapshot.generation == generation)
            .cloned();
        let config = match current {
            Some(config) => config,
            None => self.settle(generation).await?,
        };
        self.config_state().definitions_locked = true;
        Ok(Arc::clone(&config.definitions))
    }

    /// Marks the transaction as changing configuration: from here on it reads its own, and its commit
    /// invalidates the cache.
    pub(super) fn config_changed(&self) {
        let mut state = self.config_state();
        state.changed = true;
        state.snapshot = None;
    }

    pub(super) fn changed_config(&self) -> bool {
        self.config_state().changed
    }

    /// The cached configuration at `generation`, or one loaded in this transaction (and offered to the cache).
    async fn settle(&self, generation: i64) -> Result<Arc<Config>, Error> {
        let config = match self.cache.at_generation(generation) {
            Some(config) => config,
            None => {
                let epoch = self.cache.epoch();
                let config = Arc::new(load(&**self, generation).await?);
                self.cache.offer(&config, epoch);
                config
            }
        };
        self.config_state().snapshot = Some(Arc::clone(&config));
        Ok(config)
    }

    fn config_state(&self) -> std::sync::MutexGuard<'_, TxnConfig> {
        self.config
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(FromQueryResult)]
struct Generation {
    generation: i64,
}

async fn database_generation(db: &impl ConnectionTrait) -> Result<i64, Error> {
    Generation::find_by_statement(Statement::from_string(
        DbBackend::Postgres,
        "SELECT generation FROM ticketd_config_generation",
    ))
    .one(db)
    .await?
    .map(|row| row.generation)
    .ok_or_else(|| Error::internal("ticketd_config_generation is empty"))
}

/// Reads all of it; `generation` was read before (see the module doc).
async fn load(db: &impl ConnectionTrait, generation: i64) -> Result<Config, Error> {
    let definitions = Arc::new(properties::load_definitions(db).await?);
    let mut pipelines = HashMap::new();
    for (row, stages) in pipeline::Entity::find()
        .find_with_related(stage::Entity)
        .order_by_asc(pipeline::Column::Id)
        .order_by_asc(stage::Column::DisplayOrder)
        .order_by_asc(stage::Column::Id)
        .all(db)
        .await?
    {
        let pipeline = pipelines::to_domain(row, stages)?;
        pipelines.insert(pipeline.id, Arc::new(pipeline));
    }
    let rules = rules::enabled_rules(db).await?;
    let mut webhooks = Vec::new();
    for hook in webhook::Entity::find()
        .filter(webhook::Column::Enabled.eq(true))
        .order_by_asc(webhook::Column::Id)
        .all(db)
        .await?
    {
        // Checked when saved; a condition that no longer parses (a grammar change) matches nothing rather
        // than everything, and says so.
        let condition = Condition::parse("condition", &hook.condition)
            .inspect_err(|error| {
                tracing::warn!(webhook.id = hook.id, %error, "a stored webhook condition does not parse");
            })
            .ok();
        webhooks.push(Subscriber {
            id: hook.id,
            event_types: from_json(hook.event_types)?,
            condition,
        });
    }
    Ok(Config {
        generation,
        definitions,
        pipelines,
        rules,
        webhooks,
    })
}
