//! SearchTickets: HubSpot-style filter groups, words and one sort.

use prost::Message;

use super::{TicketApi, mapping::tickets_to_proto};
use crate::{
    api::{decode_page_token, encode_page_token, query_fingerprint},
    domain::{
        Error,
        access::Viewer,
        page::page_size,
        queries::{TicketListQuery, TicketOrder, TicketOrderField},
        search::{Operator, RawFilter, query_words},
    },
    proto,
};

impl TicketApi {
    pub(super) async fn search(
        &self,
        request: proto::SearchTicketsRequest,
        viewer: &Viewer,
    ) -> Result<proto::SearchTicketsResponse, Error> {
        let filters: Vec<Vec<RawFilter>> = request
            .filter_groups
            .iter()
            .map(|group| group.filters.iter().cloned().map(raw_filter).collect())
            .collect();
        viewer.check_search(&filters)?;
        let page_size = page_size(request.page_size)?;
        let order = parse_sorts(&request.sorts)?;
        // Everything but the page fields identifies the search, so its tokens fit no other one.
        let query = query_fingerprint(&format!(
            "search {:?}",
            proto::SearchTicketsRequest {
                page_size: 0,
                page_token: String::new(),
                ..request.clone()
            }
            .encode_to_vec()
        ));
        let after = decode_page_token(&query, &request.page_token)?;
        let page = self
            .store
            .search_tickets(
                filters,
                TicketListQuery {
                    order,
                    show_archived: request.show_archived,
                    page_size,
                    after,
                    filter_groups: Vec::new(),
                    words: query_words(&request.query),
                    scope: viewer.scope().cloned(),
                },
            )
            .await?;
        Ok(proto::SearchTicketsResponse {
            tickets: tickets_to_proto(viewer, page.items),
            next_page_token: encode_page_token(&query, page.next),
        })
    }
}

fn raw_filter(filter: proto::Filter) -> RawFilter {
    use proto::FilterOperator as Wire;
    let operator = match Wire::try_from(filter.operator) {
        Ok(Wire::Eq) => Some(Operator::Eq),
        Ok(Wire::Neq) => Some(Operator::Neq),
        Ok(Wire::Lt) => Some(Operator::Lt),
        Ok(Wire::Lte) => Some(Operator::Lte),
        Ok(Wire::Gt) => Some(Operator::Gt),
        Ok(Wire::Gte) => Some(Operator::Gte),
        Ok(Wire::Between) => Some(Operator::Between),
        Ok(Wire::In) => Some(Operator::In),
        Ok(Wire::NotIn) => Some(Operator::NotIn),
        Ok(Wire::HasProperty) => Some(Operator::HasProperty),
        Ok(Wire::NotHasProperty) => Some(Operator::NotHasProperty),
        Ok(Wire::ContainsToken) => Some(Operator::ContainsToken),
        Ok(Wire::NotContainsToken) => Some(Operator::NotContainsToken),
        Ok(Wire::Unspecified) | Err(_) => None,
    };
    RawFilter {
        property: filter.property,
        operator,
        value: filter.value,
        values: filter.values,
        high_value: filter.high_value,
    }
}

/// At most one sort, on `id`, `create_time` or `update_time`, ASCENDING (default) or DESCENDING.
fn parse_sorts(sorts: &[proto::Sort]) -> Result<TicketOrder, Error> {
    let Some(sort) = sorts.first() else {
        return Ok(TicketOrder {
            field: TicketOrderField::Id,
            descending: false,
        });
    };
    if sorts.len() > 1 {
        return Err(Error::invalid("sorts", "at most one sort is supported"));
    }
    let field = match sort.property.as_str() {
        "id" => TicketOrderField::Id,
        "create_time" => TicketOrderField::CreateTime,
        "update_time" => TicketOrderField::UpdateTime,
        other => {
            return Err(Error::invalid(
                "sorts[0].property",
                format!("cannot sort by {other:?}; use id, create_time or update_time"),
            ));
        }
    };
    let descending = match sort.direction.to_ascii_uppercase().as_str() {
        "" | "ASCENDING" => false,
        "DESCENDING" => true,
        other => {
            return Err(Error::invalid(
                "sorts[0].direction",
                format!("{other:?} is not ASCENDING or DESCENDING"),
            ));
        }
    };
    Ok(TicketOrder { field, descending })
}
