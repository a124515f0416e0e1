//! Pipelines and stages: the paths a ticket moves along, and the rules for changing them.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Error, Result};

/// HubSpot's default support pipeline, seeded by the first migration and never deletable.
pub const DEFAULT_PIPELINE_ID: i64 = 0;
/// Longest pipeline or stage label, in characters.
pub const LABEL_MAX_CHARS: usize = 255;
/// Most stages one pipeline may have.
pub const MAX_STAGES: usize = 100;

/// Whether tickets in a stage are still being worked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketState {
    Open,
    Closed,
}

impl TicketState {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Closed => "CLOSED",
        }
    }

    /// Reads the stored spelling back.
    pub fn from_stored(value: &str) -> Option<Self> {
        match value {
            "OPEN" => Some(Self::Open),
            "CLOSED" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// A step of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub id: i64,
    pub pipeline_id: i64,
    pub label: String,
    pub display_order: i32,
    pub state: TicketState,
    pub version: i64,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

/// A pipeline with its stages ordered by display order, then id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    pub id: i64,
    pub label: String,
    pub display_order: i32,
    pub stages: Vec<Stage>,
    pub version: i64,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

impl Stage {
    /// Resource name used in errors and etags.
    pub const RESOURCE: &'static str = "stage";

    /// The current etag.
    pub fn etag(&self) -> String {
        super::etag::etag(Self::RESOURCE, self.id, self.version)
    }
}

impl Pipeline {
    /// Resource name used in errors and etags.
    pub const RESOURCE: &'static str = "pipeline";

    /// The current etag.
    pub fn etag(&self) -> String {
        super::etag::etag(Self::RESOURCE, self.id, self.version)
    }

    /// Where a ticket lands: the requested stage, which must be one of this pipeline's, or else the first.
    pub fn place(&self, requested_stage: Option<i64>) -> Result<&Stage> {
        match requested_stage {
            Some(stage_id) => self
                .stages
                .iter()
                .find(|stage| stage.id == stage_id)
                .ok_or_else(|| {
                    Error::invalid(
                        "stage_id",
                        format!("stage {stage_id} is not a stage of pipeline {}", self.id),
                    )
                }),
            None => self.stages.first().ok_or_else(|| {
                Error::invalid("pipeline_id", format!("pipeline {} has no stages", self.id))
            }),
        }
    }

    /// Puts stages in their display order, the order clients see and "first stage" refers to.
    pub fn sort_stages(&mut self) {
        self.stages
            .sort_by_key(|stage| (stage.display_order, stage.id));
    }
}

/// A label: trimmed, non-empty, at most [`LABEL_MAX_CHARS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label(String);

impl Label {
    /// Parses a label reported as `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Error::invalid(field, "is required"));
        }
        let length = trimmed.chars().count();
        if length > LABEL_MAX_CHARS {
            return Err(Error::invalid(
                field,
                format!("must be at most {LABEL_MAX_CHARS} characters, got {length}"),
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The label text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Takes the text out.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A stage to create.
#[derive(Debug, Clone)]
pub struct StageDraft {
    pub label: Label,
    pub display_order: i32,
    pub state: TicketState,
}

/// A pipeline to create, with at least one stage and no two stages sharing a label.
#[derive(Debug, Clone)]
pub struct PipelineDraft {
    pub label: Label,
    pub display_order: i32,
    pub stages: Vec<StageDraft>,
}

impl PipelineDraft {
    /// Checks the rules that span stages; `stages` is reported as the field `stages`.
    pub fn new(label: Label, display_order: i32, stages: Vec<StageDraft>) -> Result<Self> {
        if stages.is_empty() {
            return Err(Error::invalid(
                "stages",
                "a pipeline needs at least one stage",
            ));
        }
        if stages.len() > MAX_STAGES {
            return Err(Error::invalid(
                "stages",
                format!("at most {MAX_STAGES} stages, got {}", stages.len()),
            ));
        }
        let mut seen = HashSet::new();
        for (index, stage) in stages.iter().enumerate() {
            if !seen.insert(stage.label.as_str()) {
                return Err(Error::invalid(
                    format!("stages[{index}].label"),
                    format!(
                        "label {:?} is used by an earlier stage",
                        stage.label.as_str()
                    ),
                ));
            }
        }
        Ok(Self {
            label,
            display_order,
            stages,
        })
    }
}

/// Changes to a pipeline's own fields; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct PipelineChanges {
    pub label: Option<Label>,
    pub display_order: Option<i32>,
}

/// Changes to a stage; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct StageChanges {
    pub label: Option<Label>,
    pub display_order: Option<i32>,
    pub state: Option<TicketState>,
}
