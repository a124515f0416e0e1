//! Followers of tickets and of projects.

use tonic::Request;

use super::TicketApi;
use crate::{
    api::{
        caller::viewer, decode_page_token, encode_page_token, principal, query_fingerprint,
        timestamp,
    },
    domain::{
        Error,
        follower::{Follower, FollowerKind, ProjectFollower, parse_id},
        page::page_size,
    },
    proto,
};

impl TicketApi {
    pub(super) async fn follow(
        &self,
        request: Request<proto::FollowTicketRequest>,
    ) -> Result<proto::Follower, Error> {
        let caller = principal(request.extensions())?;
        let viewer = viewer(request.extensions())?;
        let request = request.into_inner();
        let follower_id = viewer.follower_id(&caller.id, &request.follower_id)?;
        let follower = self
            .store
            .follow_ticket(viewer.scope(), request.ticket_id, follower_id)
            .await?;
        Ok(follower_to_proto(follower))
    }

    pub(super) async fn unfollow(
        &self,
        request: Request<proto::UnfollowTicketRequest>,
    ) -> Result<proto::UnfollowTicketResponse, Error> {
        let caller = principal(request.extensions())?;
        let viewer = viewer(request.extensions())?;
        let request = request.into_inner();
        let follower_id = viewer.follower_id(&caller.id, &request.follower_id)?;
        self.store
            .unfollow_ticket(viewer.scope(), request.ticket_id, &follower_id)
            .await?;
        Ok(proto::UnfollowTicketResponse {})
    }

    pub(super) async fn followers(
        &self,
        request: Request<proto::ListFollowersRequest>,
    ) -> Result<proto::ListFollowersResponse, Error> {
        let caller = principal(request.extensions())?;
        let viewer = viewer(request.extensions())?;
        let request = request.into_inner();
        let page_size = page_size(request.page_size)?;
        let query = query_fingerprint(&format!("followers ticket={}", request.ticket_id));
        let after: Option<String> = decode_page_token(&query, &request.page_token)?;
        let only = viewer.own_entries_only(&caller.id);
        let page = self
            .store
            .list_followers(viewer.scope(), request.ticket_id, only, page_size, after)
            .await?;
        Ok(proto::ListFollowersResponse {
            followers: page.items.into_iter().map(follower_to_proto).collect(),
            next_page_token: encode_page_token(&query, page.next),
        })
    }

    pub(super) async fn add_project_follower(
        &self,
        request: proto::FollowProjectRequest,
    ) -> Result<proto::ProjectFollower, Error> {
        let (project_id, kind, follower_id) =
            parse_project_follower(&request.project_id, request.kind, &request.follower_id)?;
        let follower = self
            .store
            .follow_project(project_id, kind, follower_id)
            .await?;
        Ok(project_follower_to_proto(follower))
    }

    pub(super) async fn remove_project_follower(
        &self,
        request: proto::UnfollowProjectRequest,
    ) -> Result<proto::UnfollowProjectResponse, Error> {
        let (project_id, kind, follower_id) =
            parse_project_follower(&request.project_id, request.kind, &request.follower_id)?;
        self.store
            .unfollow_project(&project_id, kind, &follower_id)
            .await?;
        Ok(proto::UnfollowProjectResponse {})
    }

    pub(super) async fn project_followers(
        &self,
        request: proto::ListProjectFollowersRequest,
    ) -> Result<proto::ListProjectFollowersResponse, Error> {
        let project_id = parse_id("project_id", &request.project_id)?;
        let page_size = page_size(request.page_size)?;
        let query = query_fingerprint(&format!("project followers project={project_id}"));
        let after: Option<(String, String)> = decode_page_token(&query, &request.page_token)?;
        let page = self
            .store
            .list_project_followers(&project_id, page_size, after)
            .await?;
        Ok(proto::ListProjectFollowersResponse {
            followers: page
                .items
                .into_iter()
                .map(project_follower_to_proto)
                .collect(),
            next_page_token: encode_page_token(&query, page.next),
        })
    }
}

fn follower_to_proto(follower: Follower) -> proto::Follower {
    proto::Follower {
        ticket_id: follower.ticket_id,
        follower_id: follower.follower_id,
        create_time: Some(timestamp(follower.create_time)),
    }
}

fn parse_project_follower(
    project_id: &str,
    kind: i32,
    follower_id: &str,
) -> Result<(String, FollowerKind, String), Error> {
    let project_id = parse_id("project_id", project_id)?;
    let kind = match proto::FollowerKind::try_from(kind) {
        Ok(proto::FollowerKind::User) => FollowerKind::User,
        Ok(proto::FollowerKind::Organization) => FollowerKind::Organization,
        _ => {
            return Err(Error::invalid(
                "kind",
                "is required: FOLLOWER_KIND_USER or FOLLOWER_KIND_ORGANIZATION",
            ));
        }
    };
    let follower_id = parse_id("follower_id", follower_id)?;
    Ok((project_id, kind, follower_id))
}

fn project_follower_to_proto(follower: ProjectFollower) -> proto::ProjectFollower {
    let kind = match follower.kind {
        FollowerKind::User => proto::FollowerKind::User,
        FollowerKind::Organization => proto::FollowerKind::Organization,
    };
    proto::ProjectFollower {
        project_id: follower.project_id,
        kind: kind.into(),
        follower_id: follower.follower_id,
        create_time: Some(timestamp(follower.create_time)),
    }
}
