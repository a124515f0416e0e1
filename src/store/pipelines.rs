//! Pipeline and stage reads and writes.

use std::collections::BTreeMap;

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait},
};

use super::{
    Store, WriteTxn,
    entities::{pipeline, stage, ticket},
    is_foreign_key_violation, is_unique_violation,
    tickets::restate_stage_tickets,
};
use crate::domain::{
    Error, Origin, etag, now,
    page::{Cursor, Page},
    pipeline::{
        DEFAULT_PIPELINE_ID, Label, MAX_STAGES, Pipeline, PipelineChanges, PipelineDraft, Stage,
        StageChanges, StageDraft, TicketState,
    },
};

const PIPELINE: &str = Pipeline::RESOURCE;
const STAGE: &str = Stage::RESOURCE;

impl Store {
    /// Creates a pipeline and its stages together.
    pub async fn create_pipeline(
        &self,
        draft: PipelineDraft,
        origin: &Origin,
    ) -> Result<Pipeline, Error> {
        self.write_config(origin.request.as_ref(), async |txn| {
            let now = now();
            let row = pipeline::Entity::insert(pipeline::ActiveModel {
                id: NotSet,
                label: Set(draft.label.into_inner()),
                display_order: Set(draft.display_order),
                version: Set(1),
                create_time: Set(now),
                update_time: Set(now),
            })
            .exec_with_returning(&**txn)
            .await?;
            let mut stages = Vec::with_capacity(draft.stages.len());
            for (index, stage) in draft.stages.into_iter().enumerate() {
                let stage = insert_stage(txn, row.id, stage)
                    .await
                    .map_err(|error| error.within(&format!("stages[{index}]")))?;
                stages.push(stage);
            }
            let mut pipeline = pipeline_to_domain(row, stages);
            pipeline.sort_stages();
            Ok(pipeline)
        })
        .await
    }

    /// Reads one pipeline with its stages.
    pub async fn get_pipeline(&self, id: i64) -> Result<Pipeline, Error> {
        load_pipeline(&self.db, id)
            .await?
            .ok_or_else(|| Error::not_found(PIPELINE, id))
    }

    /// One page of pipelines by display order, then id.
    pub async fn list_pipelines(
        &self,
        page_size: u64,
        after: Option<Cursor>,
    ) -> Result<Page<Pipeline>, Error> {
        let mut select = pipeline::Entity::find();
        if let Some(cursor) = after {
            let display_order = i32::try_from(cursor.key)
                .map_err(|_| Error::invalid("page_token", "is not a token this server issued"))?;
            select = select.filter(
                Condition::any()
                    .add(pipeline::Column::DisplayOrder.gt(display_order))
                    .add(
                        Condition::all()
                            .add(pipeline::Column::DisplayOrder.eq(display_order))
                            .add(pipeline::Column::Id.gt(cursor.id)),
                    ),
            );
        }
        let rows = select
            .order_by_asc(pipeline::Column::DisplayOrder)
            .order_by_asc(pipeline::Column::Id)
            .limit(page_size + 1)
            .all(&self.db)
            .await?;
        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        let mut stages_by_pipeline: BTreeMap<i64, Vec<Stage>> = BTreeMap::new();
        for stage in stage::Entity::find()
            .filter(stage::Column::PipelineId.is_in(ids))
            .all(&self.db)
            .await?
        {
            stages_by_pipeline
                .entry(stage.pipeline_id)
                .or_default()
                .push(stage_to_domain(stage)?);
        }
        let pipelines = rows
            .into_iter()
            .map(|row| {
                let stages = stages_by_pipeline.remove(&row.id).unwrap_or_default();
                let mut pipeline = pipeline_to_domain(row, stages);
                pipeline.sort_stages();
                pipeline
            })
            .collect();
        Ok(Page::from_overfetch(pipelines, page_size, pipeline_cursor))
    }

    /// Changes a pipeline's label or display order.
    pub async fn update_pipeline(
        &self,
        id: i64,
        sent_etag: &str,
        changes: PipelineChanges,
        origin: &Origin,
    ) -> Result<Pipeline, Error> {
        self.write_config(origin.request.as_ref(), async |txn| {
            let row = lock_pipeline(txn, id).await?;
            etag::check(PIPELINE, id, row.version, sent_etag)?;
            let mut update = pipeline::Entity::update_many()
                .col_expr(
                    pipeline::Column::Version,
                    Expr::col(pipeline::Column::Version).add(1),
                )
                .col_expr(pipeline::Column::UpdateTime, Expr::value(now()))
                .filter(pipeline::Column::Id.eq(id));
            if let Some(label) = changes.label {
                update = update.col_expr(pipeline::Column::Label, Expr::value(label.into_inner()));
            }
            if let Some(display_order) = changes.display_order {
                update =
                    update.col_expr(pipeline::Column::DisplayOrder, Expr::value(display_order));
            }
            update.exec(&**txn).await?;
            reload_pipeline(txn, id).await
        })
        .await
    }

    /// Deletes a pipeline no ticket uses, with its stages.
    pub async fn delete_pipeline(
        &self,
        id: i64,
        sent_etag: &str,
        origin: &Origin,
    ) -> Result<(), Error> {
        self.write_config(origin.request.as_ref(), async |txn| {
            let row = lock_pipeline(txn, id).await?;
            etag::check(PIPELINE, id, row.version, sent_etag)?;
            if id == DEFAULT_PIPELINE_ID {
                return Err(Error::precondition(
                    "DEFAULT_PIPELINE",
                    "the default pipeline 0 cannot be deleted",
                ));
            }
            let in_use = ticket::Entity::find()
                .filter(ticket::Column::PipelineId.eq(id))
                .count(&**txn)
                .await?;
            if in_use > 0 {
                return Err(pipeline_in_use(id, in_use));
            }
            pipeline::Entity::delete_by_id(id)
                .exec(&**txn)
                .await
                .map_err(|error| {
                    // A ticket created after the count still holds the pipeline; the foreign key says so.
                    if is_foreign_key_violation(&error) {
                        pipeline_in_use(id, 1)
                    } else {
                        error.into()
                    }
                })?;
            Ok(())
        })
        .await
    }

    /// Adds a stage to an existing pipeline.
    pub async fn create_stage(
        &self,
        pipeline_id: i64,
        draft: StageDraft,
        origin: &Origin,
    ) -> Result<Stage, Error> {
        self.write_config(origin.request.as_ref(), async |txn| {
            let pipeline = pipeline::Entity::find_by_id(pipeline_id)
                .lock_exclusive()
                .one(&**txn)
                .await?
                .ok_or_else(|| {
                    Error::invalid(
                        "pipeline_id",
                        format!("pipeline {pipeline_id} does not exist"),
                    )
                })?;
            let stage_count = stage::Entity::find()
                .filter(stage::Column::PipelineId.eq(pipeline_id))
                .count(&**txn)
                .await?;
            if stage_count >= MAX_STAGES as u64 {
                return Err(Error::precondition(
                    "TOO_MANY_STAGES",
                    format!(
                        "pipeline {pipeline_id} already has the maximum of {MAX_STAGES} stages"
                    ),
                ));
            }
            let stage = insert_stage(txn, pipeline.id, draft).await?;
            touch_pipeline(txn, pipeline.id).await?;
            Ok(stage)
        })
        .await
    }

    /// Changes a stage; a new state opens or closes every ticket in it.
    pub async fn update_stage(
        &self,
        id: i64,
        sent_etag: &str,
        changes: StageChanges,
        origin: &Origin,
    ) -> Result<Stage, Error> {
        self.write_config(origin.request.as_ref(), async |txn| {
            let row = lock_stage(txn, id).await?;
            etag::check(STAGE, id, row.version, sent_etag)?;
            let mut update = stage::Entity::update_many()
                .col_expr(
                    stage::Column::Version,
                    Expr::col(stage::Column::Version).add(1),
                )
                .col_expr(stage::Column::UpdateTime, Expr::value(now()))
                .filter(stage::Column::Id.eq(id));
            if let Some(label) = &changes.label {
                update = update.col_expr(stage::Column::Label, Expr::value(label.as_str()));
            }
            if let Some(display_order) = changes.display_order {
                update = update.col_expr(stage::Column::DisplayOrder, Expr::value(display_order));
            }
            if let Some(state) = changes.state {
                update = update.col_expr(stage::Column::State, Expr::value(state.as_str()));
                if state.as_str() != row.state {
                    restate_stage_tickets(txn, &row, state, origin).await?;
                }
            }
            update.exec(&**txn).await.map_err(|error| {
                if is_unique_violation(&error) {
                    duplicate_stage_label(changes.label.as_ref().map_or("", Label::as_str))
                } else {
                    error.into()
                }
            })?;
            touch_pipeline(txn, row.pipeline_id).await?;
            let updated = stage::Entity::find_by_id(id)
                .one(&**txn)
                .await?
                .ok_or_else(|| Error::not_found(STAGE, id))?;
            stage_to_domain(updated)
        })
        .await
    }

    /// Deletes a stage that no ticket uses and that is not its pipeline's last.
    pub async fn delete_stage(
        &self,
        id: i64,
        sent_etag: &str,
        origin: &Origin,
    ) -> Result<(), Error> {
        self.write_config(origin.request.as_ref(), async |txn| {
            let row = lock_stage(txn, id).await?;
            etag::check(STAGE, id, row.version, sent_etag)?;
            let in_use = ticket::Entity::find()
                .filter(ticket::Column::StageId.eq(id))
                .count(&**txn)
                .await?;
            if in_use > 0 {
                return Err(stage_in_use(id, in_use));
            }
            let siblings = stage::Entity::find()
                .filter(stage::Column::PipelineId.eq(row.pipeline_id))
                .count(&**txn)
                .await?;
            if siblings <= 1 {
                return Err(Error::precondition(
                    "LAST_STAGE",
                    format!(
                        "stage {id} is the last stage of pipeline {}; a pipeline needs at least one",
                        row.pipeline_id
                    ),
                ));
            }
            stage::Entity::delete_by_id(id)
                .exec(&**txn)
                .await
                .map_err(|error| {
                    if is_foreign_key_violation(&error) {
                        stage_in_use(id, 1)
                    } else {
                        error.into()
                    }
                })?;
            touch_pipeline(txn, row.pipeline_id).await?;
            Ok(())
        })
        .await
    }
}

/// Reads a pipeline and its stages in display order, or `None`.
pub(super) async fn load_pipeline(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<Pipeline>, Error> {
    // One statement (a join) instead of two: every ticket write reads its pipeline.
    let Some((row, stages)) = pipeline::Entity::find_by_id(id)
        .find_with_related(stage::Entity)
        .order_by_asc(stage::Column::DisplayOrder)
        .order_by_asc(stage::Column::Id)
        .all(db)
        .await?
        .pop()
    else {
        return Ok(None);
    };
    let stages = stages
        .into_iter()
        .map(stage_to_domain)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(pipeline_to_domain(row, stages)))
}

async fn reload_pipeline(txn: &WriteTxn, id: i64) -> Result<Pipeline, Error> {
    load_pipeline(&**txn, id)
        .await?
        .ok_or_else(|| Error::not_found(PIPELINE, id))
}

/// Reads a pipeline for change; on PostgreSQL the row lock queues concurrent writers to it.
async fn lock_pipeline(txn: &WriteTxn, id: i64) -> Result<pipeline::Model, Error> {
    pipeline::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&**txn)
        .await?
        .ok_or_else(|| Error::not_found(PIPELINE, id))
}

/// Reads a stage for change, locking its pipeline first so stage writes to one pipeline queue in one order.
async fn lock_stage(txn: &WriteTxn, id: i64) -> Result<stage::Model, Error> {
    let row = stage::Entity::find_by_id(id)
        .one(&**txn)
        .await?
        .ok_or_else(|| Error::not_found(STAGE, id))?;
    lock_pipeline(txn, row.pipeline_id).await?;
    stage::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&**txn)
        .await?
        .ok_or_else(|| Error::not_found(STAGE, id))
}

/// A stage change is a change of the pipeline resource (it lists its stages), so its etag moves too.
async fn touch_pipeline(txn: &WriteTxn, id: i64) -> Result<(), Error> {
    pipeline::Entity::update_many()
        .col_expr(
            pipeline::Column::Version,
            Expr::col(pipeline::Column::Version).add(1),
        )
        .col_expr(pipeline::Column::UpdateTime, Expr::value(now()))
        .filter(pipeline::Column::Id.eq(id))
        .exec(&**txn)
        .await?;
    Ok(())
}

async fn insert_stage(txn: &WriteTxn, pipeline_id: i64, draft: StageDraft) -> Result<Stage, Error> {
    let now = now();
    let label = draft.label.into_inner();
    let row = stage::Entity::insert(stage::ActiveModel {
        id: NotSet,
        pipeline_id: Set(pipeline_id),
        label: Set(label.clone()),
        display_order: Set(draft.display_order),
        state: Set(draft.state.as_str().to_owned()),
        version: Set(1),
        create_time: Set(now),
        update_time: Set(now),
    })
    .exec_with_returning(&**txn)
    .await
    .map_err(|error| {
        if is_unique_violation(&error) {
            duplicate_stage_label(&label)
        } else {
            error.into()
        }
    })?;
    stage_to_domain(row)
}

fn duplicate_stage_label(label: &str) -> Error {
    Error::AlreadyExists {
        resource: STAGE,
        field: "label".to_owned(),
        value: label.to_owned(),
    }
}

fn pipeline_in_use(id: i64, tickets: u64) -> Error {
    Error::precondition(
        "PIPELINE_IN_USE",
        format!(
            "pipeline {id} is used by {tickets} ticket(s), archived ones included; move them first"
        ),
    )
}

fn stage_in_use(id: i64, tickets: u64) -> Error {
    Error::precondition(
        "STAGE_IN_USE",
        format!(
            "stage {id} is used by {tickets} ticket(s), archived ones included; move them first"
        ),
    )
}

fn pipeline_cursor(pipeline: &Pipeline) -> Cursor {
    Cursor {
        key: i64::from(pipeline.display_order),
        id: pipeline.id,
    }
}

/// A pipeline row and its stage rows (in display order) as the domain's pipeline.
pub(super) fn to_domain(
    row: pipeline::Model,
    stages: Vec<stage::Model>,
) -> Result<Pipeline, Error> {
    let stages = stages
        .into_iter()
        .map(stage_to_domain)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(pipeline_to_domain(row, stages))
}

fn pipeline_to_domain(row: pipeline::Model, stages: Vec<Stage>) -> Pipeline {
    Pipeline {
        id: row.id,
        label: row.label,
        display_order: row.display_order,
        stages,
        version: row.version,
        create_time: row.create_time,
        update_time: row.update_time,
    }
}

fn stage_to_domain(row: stage::Model) -> Result<Stage, Error> {
    let state = TicketState::from_stored(&row.state).ok_or_else(|| {
        Error::internal(format!(
            "stage {} has unknown state {:?}",
            row.id, row.state
        ))
    })?;
    Ok(Stage {
        id: row.id,
        pipeline_id: row.pipeline_id,
        label: row.label,
        display_order: row.display_order,
        state,
        version: row.version,
        create_time: row.create_time,
        update_time: row.update_time,
    })
}
