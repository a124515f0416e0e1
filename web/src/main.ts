// ticketd in the browser. Routes (client-side; ticketd answers each of them with index.html):
//   /                     links and the connection settings
//   /cards/<card_id>      one card, live from WatchCard
//   /cards?group=<group>  every card of a chat group, live from WatchCard
//   /tickets/<id>         a ticket, its public comments and its live history from WatchTickets
// `?api=<ticketd URL>` points the page at another server; `#token=<JWT>` signs in.

import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  apiBase,
  clients,
  failure,
  isFinal,
  saveApiBase,
  saveToken,
  token,
  type Clients,
  type Failure,
} from "./api";
import { renderView } from "./card";
import { TicketState } from "./gen/ticketd/v1/common_pb";
import type { RenderedCard } from "./gen/ticketd/v1/cards_pb";
import type { Pipeline } from "./gen/ticketd/v1/pipelines_pb";
import {
  CommentVisibility,
  TicketEventKind,
  type Comment,
  type Ticket,
  type TicketEvent,
} from "./gen/ticketd/v1/tickets_pb";

// ----------------------------------------------------------------------------------------------------------
// Small DOM helpers: every string goes in as text.

type Child = Node | string | null | undefined | false;

function h(tag: string, attributes: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  for (const child of children) if (child) element.append(child);
  return element;
}

function byId(id: string): HTMLElement {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from index.html`);
  return element;
}

function when(timestamp: Timestamp | undefined): string {
  return timestamp ? timestampDate(timestamp).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC") : "";
}

/** The server's answer to a failed call: status, message and one line per field violation. */
function errorBox(error: Failure): HTMLElement {
  return h(
    "div",
    { class: "error", role: "alert", "data-code": error.status },
    h("strong", { class: "error-status" }, error.status),
    error.message ? `: ${error.message}` : "",
    error.violations.length > 0 &&
      h(
        "ul",
        { class: "violations" },
        ...error.violations.map((violation) =>
          h(
            "li",
            { class: "violation", "data-field": violation.field },
            h("code", {}, violation.field),
            `: ${violation.description}`,
          ),
        ),
      ),
  );
}

// ----------------------------------------------------------------------------------------------------------
// Connection state and reconnection, shared by both live pages.

type ConnectionState = "connecting" | "live" | "reconnecting" | "failed";

function showConnection(state: ConnectionState, detail = ""): void {
  const badge = byId("connection");
  badge.dataset.state = state;
  const words: Record<ConnectionState, string> = {
    connecting: "connecting…",
    live: "live",
    reconnecting: "reconnecting",
    failed: "stopped",
  };
  badge.textContent = detail ? `${words[state]} (${detail})` : words[state];
}

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10_000;

/**
 * Runs `open` (one stream, from wherever the caller's own state says it got to) again and again: after a
 * stream ends or fails it waits, doubling up to 10 s, and resumes; a stream that delivered something starts
 * the wait over. A status that asking again cannot change (INVALID_ARGUMENT, NOT_FOUND, …) stops it.
 */
async function keepStreaming(open: (onMessage: () => void) => Promise<void>, onFinal: (error: Failure) => void) {
  let backoff = BACKOFF_FIRST_MS;
  for (;;) {
    showConnection("connecting");
    let error: Failure | undefined;
    try {
      await open(() => {
        backoff = BACKOFF_FIRST_MS;
        showConnection("live");
      });
    } catch (caught) {
      error = failure(caught);
      if (isFinal(error)) {
        showConnection("failed", error.status);
        onFinal(error);
        return;
      }
    }
    showConnection("reconnecting", error ? error.status : "stream ended");
    await new Promise((resolve) => setTimeout(resolve, backoff));
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
  }
}

/** Heartbeats (a flag some server versions set on streamed messages) carry no change: skipped. */
function isHeartbeat(message: object): boolean {
  return (message as { heartbeat?: unknown }).heartbeat === true;
}

// ----------------------------------------------------------------------------------------------------------
// /cards/<id> and /cards?group=<group>

function cardsPage(api: Clients, main: HTMLElement, cardId: bigint | undefined, group: string | undefined): void {
  const title = cardId !== undefined ? `Card ${cardId}` : `Cards of group ${group}`;
  document.title = `${title} · ticketd`;
  const list = h("div", { class: "cards", id: "cards" });
  const errors = h("div", { id: "errors" });
  main.append(h("h1", {}, title), errors, list);

  /** Last version shown, per card: a resumed stream starts after it; anything not newer is ignored. */
  const versions = new Map<bigint, bigint>();
  const show = (render: RenderedCard) => {
    const known = versions.get(render.cardId);
    if (known !== undefined && render.version <= known) return;
    versions.set(render.cardId, render.version);
    const id = `card-${render.cardId}`;
    let frame = document.getElementById(id);
    if (!frame) {
      frame = h("section", { class: "card-frame", id });
      list.append(frame);
    }
    let body: HTMLElement;
    try {
      body = renderView(render.view);
    } catch {
      body = h("div", { class: "error" }, "This version's view is not JSON.");
    }
    frame.dataset.version = String(render.version);
    frame.replaceChildren(
      h(
        "header",
        { class: "card-meta" },
        h("a", { href: `/cards/${render.cardId}${apiQuery()}` }, `card ${render.cardId}`),
        ` · version ${render.version} · `,
        h("a", { href: `/tickets/${render.ticketId}${apiQuery()}` }, `ticket ${render.ticketId}`),
        ` · group ${render.groupId}`,
      ),
      body,
    );
  };

  void keepStreaming(
    async (onMessage) => {
      // Per card, `after_version` skips what was shown; for a group the lowest of them, the rest skipped here.
      const shown = [...versions.values()];
      const afterVersion = cardId !== undefined ? (versions.get(cardId) ?? 0n) : shown.length ? shown.reduce((a, b) => (a < b ? a : b)) : 0n;
      const stream = api.cards.watchCard({ cardId: cardId ?? 0n, groupId: group ?? "", afterVersion });
      // Live as soon as the call is answered, not only once a new version comes.
      onMessage();
      for await (const render of stream) {
        if (isHeartbeat(render) || !render.version) continue;
        errors.replaceChildren();
        show(render);
        onMessage();
      }
    },
    (error) => errors.replaceChildren(errorBox(error)),
  );
}

// ----------------------------------------------------------------------------------------------------------
// /tickets/<id>

const KIND_WORDS: Partial<Record<TicketEventKind, string>> = {
  [TicketEventKind.CREATED]: "created",
  [TicketEventKind.UPDATED]: "updated",
  [TicketEventKind.STAGE_CHANGED]: "stage changed",
  [TicketEventKind.ARCHIVED]: "archived",
  [TicketEventKind.RESTORED]: "restored",
  [TicketEventKind.COMMENT_ADDED]: "comment added",
  [TicketEventKind.ASSOCIATION_ADDED]: "association added",
  [TicketEventKind.ASSOCIATION_REMOVED]: "association removed",
};

function ticketPage(api: Clients, main: HTMLElement, ticketId: bigint): void {
  document.title = `Ticket ${ticketId} · ticketd`;
  const summary = h("section", { id: "ticket", class: "ticket" }, "Loading…");
  const comments = h("ol", { id: "comments", class: "comments" });
  const history = h("ol", { id: "history", class: "history" });
  const errors = h("div", { id: "errors" });
  const commentErrors = h("div", { id: "comment-errors" });
  const body = h("textarea", { id: "comment-body", rows: "3", placeholder: "Write a public comment" }) as HTMLTextAreaElement;
  const form = h(
    "form",
    { id: "comment-form", class: "comment-form" },
    body,
    h("button", { type: "submit" }, "Add comment"),
    commentErrors,
  );
  main.append(
    h("h1", {}, `Ticket ${ticketId}`),
    errors,
    summary,
    h("h2", {}, "Comments"),
    comments,
    form,
    h("h2", {}, "History"),
    history,
  );

  let ticket: Ticket | undefined;
  const pipelines = new Map<bigint, Pipeline | null>();
  const commentIds = new Set<bigint>();
  let lastEventId = 0n;

  const stageOf = (current: Ticket) => {
    const pipeline = pipelines.get(current.pipelineId);
    return pipeline?.stages.find((stage) => stage.id === current.stageId);
  };

  const drawTicket = () => {
    if (!ticket) return;
    const stage = stageOf(ticket);
    // A ticket is closed exactly while it has a close time; the stage's own state says the same when known.
    const closed = stage ? stage.state === TicketState.CLOSED : ticket.closeTime !== undefined;
    const rows: [string, Child][] = [
      ["Subject", ticket.subject],
      [
        "Status",
        h(
          "span",
          { id: "ticket-status", class: `status ${closed ? "closed" : "open"}`, "data-state": closed ? "CLOSED" : "OPEN" },
          `${stage ? stage.label : `stage ${ticket.stageId}`} · ${closed ? "CLOSED" : "OPEN"}`,
        ),
      ],
      ["Priority", ticket.priority ? ["", "low", "medium", "high", "urgent"][ticket.priority] ?? "" : ""],
      ["Requester", ticket.requesterId],
      ["Assignee", ticket.assigneeId],
      ["Tags", ticket.tags.join(", ")],
      ["Created", when(ticket.createTime)],
      ["Updated", when(ticket.updateTime)],
      ["Closed", when(ticket.closeTime)],
    ];
    summary.replaceChildren(
      h("dl", {}, ...rows.filter(([, value]) => value).flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)])),
      ...(ticket.content ? [h("p", { class: "content" }, ticket.content)] : []),
    );
  };

  /** The pipeline's stages, once per pipeline; a caller that may not read pipelines sees stage ids. */
  const loadPipeline = async (pipelineId: bigint) => {
    if (pipelines.has(pipelineId)) return;
    pipelines.set(pipelineId, null);
    try {
      pipelines.set(pipelineId, await api.pipelines.getPipeline({ id: pipelineId }));
    } catch {
      // Kept as null: the page says "stage N" and the state from the close time.
    }
  };

  const setTicket = async (next: Ticket) => {
    ticket = next;
    drawTicket();
    if (!pipelines.has(next.pipelineId)) {
      await loadPipeline(next.pipelineId);
      drawTicket();
    }
  };

  const addComment = (comment: Comment) => {
    if (comment.visibility !== CommentVisibility.PUBLIC || commentIds.has(comment.id)) return;
    commentIds.add(comment.id);
    comments.append(
      h(
        "li",
        { class: "comment", "data-id": String(comment.id) },
        h("div", { class: "comment-meta" }, `${comment.authorId} · ${when(comment.createTime)}`),
        h("div", { class: "comment-body" }, comment.body),
      ),
    );
  };

  const addEvent = (event: TicketEvent) => {
    if (event.eventId <= lastEventId) return;
    lastEventId = event.eventId;
    const changes = event.changes.map((change) => `${change.field}: ${change.oldValue || "∅"} → ${change.newValue || "∅"}`);
    history.prepend(
      h(
        "li",
        { class: "event", "data-event-id": String(event.eventId), "data-kind": TicketEventKind[event.kind] ?? "" },
        h("span", { class: "event-meta" }, `#${event.eventId} · ${when(event.createTime)} · ${event.actorId}`),
        " ",
        h("strong", {}, KIND_WORDS[event.kind] ?? "changed"),
        changes.length > 0 && h("span", { class: "changes" }, ` ${changes.join("; ")}`),
      ),
    );
  };

  form.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    commentErrors.replaceChildren();
    // Sent as typed: the server is the one that says what a comment must be.
    api.tickets
      .addComment({ ticketId, body: body.value, visibility: CommentVisibility.PUBLIC, requestId: crypto.randomUUID() })
      .then((comment) => {
        body.value = "";
        addComment(comment);
      })
      .catch((error: unknown) => commentErrors.replaceChildren(errorBox(failure(error))));
  });

  const load = async () => {
    await setTicket(await api.tickets.getTicket({ id: ticketId }));
    let pageToken = "";
    do {
      const page = await api.tickets.listComments({ ticketId, pageSize: 500, pageToken });
      page.comments.forEach(addComment);
      pageToken = page.nextPageToken;
    } while (pageToken);
    try {
      pageToken = "";
      do {
        const page = await api.tickets.listTicketHistory({ ticketId, pageSize: 500, pageToken });
        page.events.forEach(addEvent);
        pageToken = page.nextPageToken;
      } while (pageToken);
    } catch {
      // History is optional here: the stream below still shows every change from now on.
    }
  };

  load()
    .then(() =>
      keepStreaming(
        async (onMessage) => {
          const stream = api.tickets.watchTickets({ ticketIds: [ticketId], afterEventId: lastEventId });
          onMessage();
          for await (const event of stream) {
            if (isHeartbeat(event) || !event.eventId) continue;
            if (event.eventId <= lastEventId) continue;
            addEvent(event);
            if (event.ticket) await setTicket(event.ticket);
            if (event.comment) addComment(event.comment);
            onMessage();
          }
        },
        (error) => errors.replaceChildren(errorBox(error)),
      ),
    )
    .catch((error: unknown) => {
      const shown = failure(error);
      showConnection("failed", shown.status);
      summary.replaceChildren();
      errors.replaceChildren(errorBox(shown));
    });
}

// ----------------------------------------------------------------------------------------------------------
// / and the settings bar

function apiQuery(): string {
  const api = new URLSearchParams(location.search).get("api");
  return api ? `?api=${encodeURIComponent(api)}` : "";
}

function homePage(main: HTMLElement): void {
  const field = (id: string, label: string, placeholder: string) =>
    h("label", {}, label, " ", h("input", { id, placeholder }));
  const open = h(
    "form",
    { id: "open", class: "open" },
    field("open-card", "Card", "card id"),
    field("open-group", "Group", "group id"),
    field("open-ticket", "Ticket", "ticket id"),
    h("button", { type: "submit" }, "Open"),
  );
  open.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    const value = (id: string) => (byId(id) as HTMLInputElement).value.trim();
    const api = new URLSearchParams(location.search).get("api");
    const query = new URLSearchParams();
    if (api) query.set("api", api);
    let path = "/";
    if (value("open-card")) path = `/cards/${encodeURIComponent(value("open-card"))}`;
    else if (value("open-group")) {
      path = "/cards";
      query.set("group", value("open-group"));
    } else if (value("open-ticket")) path = `/tickets/${encodeURIComponent(value("open-ticket"))}`;
    const search = query.toString();
    location.assign(`${path}${search ? `?${search}` : ""}`);
  });
  main.append(
    h("h1", {}, "ticketd"),
    h("p", {}, "Live chat cards and tickets, straight from the ticket service over gRPC-Web."),
    open,
  );
  showConnection("live", "idle");
}

function settingsBar(): void {
  const apiField = byId("api-url") as HTMLInputElement;
  const tokenField = byId("token") as HTMLInputElement;
  apiField.value = apiBase();
  tokenField.value = token();
  byId("settings").addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    saveToken(tokenField.value);
    if (apiField.value.trim() !== apiBase()) {
      saveApiBase(apiField.value);
      // A saved URL applies only where the address names none.
      const query = new URLSearchParams(location.search);
      query.delete("api");
      const search = query.toString();
      location.assign(`${location.pathname}${search ? `?${search}` : ""}`);
      return;
    }
    location.reload();
  });
}

/** A route's id: digits only, as an int64. */
function idOf(segment: string | undefined): bigint | undefined {
  return segment && /^\d{1,19}$/.test(segment) ? BigInt(segment) : undefined;
}

function route(): void {
  settingsBar();
  const main = byId("main");
  const api = clients();
  const path = location.pathname.replace(/\/+$/, "") || "/";
  const query = new URLSearchParams(location.search);
  const [, section, segment] = path.split("/");
  if (section === "cards" && segment === undefined && query.has("group")) {
    cardsPage(api, main, undefined, query.get("group") ?? "");
  } else if (section === "cards" && segment !== undefined) {
    // Not a number: asked as it is, so the server's own answer (INVALID_ARGUMENT naming card_id) is shown.
    cardsPage(api, main, idOf(segment) ?? 0n, undefined);
  } else if (section === "tickets" && segment !== undefined) {
    ticketPage(api, main, idOf(segment) ?? 0n);
  } else {
    homePage(main);
  }
}

route();
