//! Reads of every page of a listing, by any client: the loop that follows `next_page_token` is written once,
//! in [`every_page`], and `every_*` runs it for each paged method.

use ticketd::proto::{
    Agent, Association, Card, Comment, Follower, ListAgentsRequest, ListAssociationsRequest,
    ListCardsRequest, ListCommentsRequest, ListFollowersRequest, ListTicketHistoryRequest,
    ListTicketsRequest, ListTimeEntriesRequest, SearchTicketsRequest, Ticket, TicketEvent,
    TimeEntry, agent_service_client::AgentServiceClient,
    association_service_client::AssociationServiceClient, card_service_client::CardServiceClient,
};

use super::{Authed, Tickets, ok};

/// More pages than any test makes: a listing that goes on longer never ends.
const MAX_PAGES: usize = 10_000;

/// Every item of a listing, from the page at `first_token` on: `page` fetches the page at a token and answers
/// its items and the next token, empty on the last page.
pub async fn every_page<T, F, Fut>(what: &str, first_token: String, mut page: F) -> Vec<T>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = (Vec<T>, String)>,
{
    let mut all = Vec::new();
    let mut token = first_token;
    for _ in 0..MAX_PAGES {
        let (items, next_token) = page(token).await;
        all.extend(items);
        if next_token.is_empty() {
            return all;
        }
        token = next_token;
    }
    panic!("{what} never returned an empty next_page_token");
}

/// Writes `every_<items>(client, request)`: every item a paged method answers to `request`, following the
/// pages with [`every_page`].
macro_rules! every {
    (
        $(#[$doc:meta])*
        $name:ident($client:ty, $request:ident) = $rpc:literal, $method:ident, $items:ident: $item:ty
    ) => {
        $(#[$doc])*
        pub async fn $name(client: &$client, request: $request) -> Vec<$item> {
            every_page($rpc, request.page_token.clone(), |page_token| {
                let mut client = client.clone();
                let request = $request {
                    page_token,
                    ..request.clone()
                };
                async move {
                    let page = ok(client.$method(request).await);
                    (page.$items, page.next_page_token)
                }
            })
            .await
        }
    };
}

every!(
    /// Every ticket ListTickets answers to `request`.
    every_ticket(Tickets, ListTicketsRequest) = "ListTickets", list_tickets, tickets: Ticket
);
every!(
    /// Every ticket SearchTickets answers to `request`.
    every_match(Tickets, SearchTicketsRequest) = "SearchTickets", search_tickets, tickets: Ticket
);
every!(
    /// Every event ListTicketHistory answers to `request`.
    every_event(Tickets, ListTicketHistoryRequest) = "ListTicketHistory", list_ticket_history,
    events: TicketEvent
);
every!(
    /// Every comment ListComments answers to `request`.
    every_comment(Tickets, ListCommentsRequest) = "ListComments", list_comments, comments: Comment
);
every!(
    /// Every follower ListFollowers answers to `request`.
    every_follower(Tickets, ListFollowersRequest) = "ListFollowers", list_followers, followers: Follower
);
every!(
    /// Every time entry ListTimeEntries answers to `request`.
    every_time_entry(Tickets, ListTimeEntriesRequest) = "ListTimeEntries", list_time_entries,
    time_entries: TimeEntry
);
every!(
    /// Every card ListCards answers to `request`.
    every_card(CardServiceClient<Authed>, ListCardsRequest) = "ListCards", list_cards, cards: Card
);
every!(
    /// Every association ListAssociations answers to `request`.
    every_association(AssociationServiceClient<Authed>, ListAssociationsRequest) = "ListAssociations",
    list_associations, associations: Association
);
every!(
    /// Every agent ListAgents answers to `request`.
    every_agent(AgentServiceClient<Authed>, ListAgentsRequest) = "ListAgents", list_agents,
    agents: Agent
);
