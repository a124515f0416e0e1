//! `ticketd.v1.PipelineService`.

use tonic::{Request, Response, Status};

use super::{
    bad_mask_path, decode_page_token, encode_page_token, idempotent_requests, origin,
    query_fingerprint, timestamp, update_paths,
};
use crate::{
    domain::{
        Error,
        page::page_size,
        pipeline::{
            Label, Pipeline, PipelineChanges, PipelineDraft, Stage, StageChanges, StageDraft,
            TicketState,
        },
    },
    proto::{self, pipeline_service_server::PipelineService},
    store::Store,
};

idempotent_requests! {
    proto::CreatePipelineRequest => "ticketd.v1.PipelineService/CreatePipeline",
    proto::UpdatePipelineRequest => "ticketd.v1.PipelineService/UpdatePipeline",
    proto::DeletePipelineRequest => "ticketd.v1.PipelineService/DeletePipeline",
    proto::CreateStageRequest => "ticketd.v1.PipelineService/CreateStage",
    proto::UpdateStageRequest => "ticketd.v1.PipelineService/UpdateStage",
    proto::DeleteStageRequest => "ticketd.v1.PipelineService/DeleteStage",
}

const PIPELINE_UPDATABLE_PATHS: &[&str] = &["label", "display_order"];
const PIPELINE_OUTPUT_ONLY_PATHS: &[&str] = &["id", "etag", "create_time", "update_time"];
const STAGE_UPDATABLE_PATHS: &[&str] = &["label", "display_order", "state"];
const STAGE_OUTPUT_ONLY_PATHS: &[&str] =
    &["id", "pipeline_id", "etag", "create_time", "update_time"];

/// Serves pipelines and stages from the store.
pub struct PipelineApi {
    store: Store,
}

impl PipelineApi {
    /// A service over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl PipelineService for PipelineApi {
    async fn create_pipeline(
        &self,
        request: Request<proto::CreatePipelineRequest>,
    ) -> Result<Response<proto::Pipeline>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        let pipeline = request
            .pipeline
            .ok_or_else(|| Error::invalid("pipeline", "is required"))?;
        let created = async {
            let draft = pipeline_draft_from_proto(pipeline)?;
            self.store.create_pipeline(draft, &origin).await
        }
        .await
        .map_err(|error| error.within("pipeline"))?;
        Ok(Response::new(pipeline_to_proto(created)))
    }

    async fn get_pipeline(
        &self,
        request: Request<proto::GetPipelineRequest>,
    ) -> Result<Response<proto::Pipeline>, Status> {
        let id = request.into_inner().id;
        Ok(Response::new(pipeline_to_proto(
            self.store.get_pipeline(id).await?,
        )))
    }

    async fn list_pipelines(
        &self,
        request: Request<proto::ListPipelinesRequest>,
    ) -> Result<Response<proto::ListPipelinesResponse>, Status> {
        let request = request.into_inner();
        let page_size = page_size(request.page_size)?;
        let query = query_fingerprint("pipelines order=display_order");
        let after = decode_page_token(&query, &request.page_token)?;
        let page = self.store.list_pipelines(page_size, after).await?;
        Ok(Response::new(proto::ListPipelinesResponse {
            pipelines: page.items.into_iter().map(pipeline_to_proto).collect(),
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    async fn update_pipeline(
        &self,
        request: Request<proto::UpdatePipelineRequest>,
    ) -> Result<Response<proto::Pipeline>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        let pipeline = request
            .pipeline
            .ok_or_else(|| Error::invalid("pipeline", "is required"))?;
        let changes = pipeline_changes_from_proto(&pipeline, request.update_mask)?;
        let updated = self
            .store
            .update_pipeline(pipeline.id, &pipeline.etag, changes, &origin)
            .await
            .map_err(|error| error.within("pipeline"))?;
        Ok(Response::new(pipeline_to_proto(updated)))
    }

    async fn delete_pipeline(
        &self,
        request: Request<proto::DeletePipelineRequest>,
    ) -> Result<Response<proto::DeletePipelineResponse>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        self.store
            .delete_pipeline(request.id, &request.etag, &origin)
            .await?;
        Ok(Response::new(proto::DeletePipelineResponse {}))
    }

    async fn create_stage(
        &self,
        request: Request<proto::CreateStageRequest>,
    ) -> Result<Response<proto::Stage>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        let stage = request
            .stage
            .ok_or_else(|| Error::invalid("stage", "is required"))?;
        let created = async {
            let pipeline_id = stage.pipeline_id;
            let draft = stage_draft_from_proto(stage)?;
            self.store.create_stage(pipeline_id, draft, &origin).await
        }
        .await
        .map_err(|error| error.within("stage"))?;
        Ok(Response::new(stage_to_proto(created)))
    }

    async fn update_stage(
        &self,
        request: Request<proto::UpdateStageRequest>,
    ) -> Result<Response<proto::Stage>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        let stage = request
            .stage
            .ok_or_else(|| Error::invalid("stage", "is required"))?;
        let changes = stage_changes_from_proto(&stage, request.update_mask)?;
        let updated = self
            .store
            .update_stage(stage.id, &stage.etag, changes, &origin)
            .await
            .map_err(|error| error.within("stage"))?;
        Ok(Response::new(stage_to_proto(updated)))
    }

    async fn delete_stage(
        &self,
        request: Request<proto::DeleteStageRequest>,
    ) -> Result<Response<proto::DeleteStageResponse>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        self.store
            .delete_stage(request.id, &request.etag, &origin)
            .await?;
        Ok(Response::new(proto::DeleteStageResponse {}))
    }
}

fn parse_state(raw: i32) -> Result<TicketState, Error> {
    match proto::TicketState::try_from(raw) {
        Ok(proto::TicketState::Open) => Ok(TicketState::Open),
        Ok(proto::TicketState::Closed) => Ok(TicketState::Closed),
        Ok(proto::TicketState::Unspecified) => Err(Error::invalid(
            "state",
            "is required: TICKET_STATE_OPEN or TICKET_STATE_CLOSED",
        )),
        Err(_) => Err(Error::invalid(
            "state",
            format!("{raw} is not a TicketState value"),
        )),
    }
}

fn state_to_proto(state: TicketState) -> proto::TicketState {
    match state {
        TicketState::Open => proto::TicketState::Open,
        TicketState::Closed => proto::TicketState::Closed,
    }
}

fn stage_draft_from_proto(stage: proto::Stage) -> Result<StageDraft, Error> {
    Ok(StageDraft {
        label: Label::parse("label", &stage.label)?,
        display_order: stage.display_order,
        state: parse_state(stage.state)?,
    })
}

fn pipeline_draft_from_proto(pipeline: proto::Pipeline) -> Result<PipelineDraft, Error> {
    let label = Label::parse("label", &pipeline.label)?;
    let stages = pipeline
        .stages
        .into_iter()
        .enumerate()
        .map(|(index, stage)| {
            stage_draft_from_proto(stage).map_err(|error| error.within(&format!("stages[{index}]")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    PipelineDraft::new(label, pipeline.display_order, stages)
}

/// Turns an update request into changes; errors name `update_mask` or the `pipeline.` field at fault.
fn pipeline_changes_from_proto(
    pipeline: &proto::Pipeline,
    mask: Option<prost_types::FieldMask>,
) -> Result<PipelineChanges, Error> {
    let paths = update_paths(mask, || {
        let mut paths = Vec::new();
        if !pipeline.label.is_empty() {
            paths.push("label");
        }
        if pipeline.display_order != 0 {
            paths.push("display_order");
        }
        paths
    });
    let mut changes = PipelineChanges::default();
    for path in paths {
        match path.as_str() {
            "label" => changes.label = Some(Label::parse("pipeline.label", &pipeline.label)?),
            "display_order" => changes.display_order = Some(pipeline.display_order),
            "stages" => {
                return Err(Error::invalid(
                    "update_mask",
                    "stages change through CreateStage, UpdateStage and DeleteStage",
                ));
            }
            other => {
                return Err(bad_mask_path(
                    other,
                    PIPELINE_OUTPUT_ONLY_PATHS,
                    PIPELINE_UPDATABLE_PATHS,
                ));
            }
        }
    }
    Ok(changes)
}

/// Turns an update request into changes; errors name `update_mask` or the `stage.` field at fault.
fn stage_changes_from_proto(
    stage: &proto::Stage,
    mask: Option<prost_types::FieldMask>,
) -> Result<StageChanges, Error> {
    let paths = update_paths(mask, || {
        let mut paths = Vec::new();
        if !stage.label.is_empty() {
            paths.push("label");
        }
        if stage.display_order != 0 {
            paths.push("display_order");
        }
        if stage.state != 0 {
            paths.push("state");
        }
        paths
    });
    let mut changes = StageChanges::default();
    for path in paths {
        match path.as_str() {
            "label" => changes.label = Some(Label::parse("stage.label", &stage.label)?),
            "display_order" => changes.display_order = Some(stage.display_order),
            "state" => {
                changes.state =
                    Some(parse_state(stage.state).map_err(|error| error.within("stage"))?)
            }
            other => {
                return Err(bad_mask_path(
                    other,
                    STAGE_OUTPUT_ONLY_PATHS,
                    STAGE_UPDATABLE_PATHS,
                ));
            }
        }
    }
    Ok(changes)
}

fn stage_to_proto(stage: Stage) -> proto::Stage {
    proto::Stage {
        etag: stage.etag(),
        id: stage.id,
        pipeline_id: stage.pipeline_id,
        label: stage.label,
        display_order: stage.display_order,
        state: state_to_proto(stage.state).into(),
        create_time: Some(timestamp(stage.create_time)),
        update_time: Some(timestamp(stage.update_time)),
    }
}

fn pipeline_to_proto(pipeline: Pipeline) -> proto::Pipeline {
    proto::Pipeline {
        etag: pipeline.etag(),
        id: pipeline.id,
        label: pipeline.label,
        display_order: pipeline.display_order,
        stages: pipeline.stages.into_iter().map(stage_to_proto).collect(),
        create_time: Some(timestamp(pipeline.create_time)),
        update_time: Some(timestamp(pipeline.update_time)),
    }
}
