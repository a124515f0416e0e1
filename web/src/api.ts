// Where the API is, who the caller is, and the gRPC-Web clients built from both.

import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { BadRequestSchema } from "./gen/google/rpc/error_details_pb";
import { CardService } from "./gen/ticketd/v1/cards_pb";
import { PipelineService } from "./gen/ticketd/v1/pipelines_pb";
import { TicketService } from "./gen/ticketd/v1/tickets_pb";

const TOKEN_KEY = "ticketd.token";
const API_KEY = "ticketd.api";

/** The ticketd URL: `?api=` in the address, else the one saved from the page's field, else this origin. */
export function apiBase(): string {
  const fromUrl = new URLSearchParams(location.search).get("api");
  if (fromUrl) return fromUrl.replace(/\/+$/, "");
  const saved = localStorage.getItem(API_KEY);
  return saved ? saved.replace(/\/+$/, "") : location.origin;
}

export function saveApiBase(value: string): void {
  if (value.trim()) localStorage.setItem(API_KEY, value.trim());
  else localStorage.removeItem(API_KEY);
}

/**
 * The bearer token: `#token=…` in the address (taken out of it at once, so it is not left in the history or
 * copied along with the link), else the one signed in with during this browser session.
 */
export function token(): string {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const fromFragment = fragment.get("token");
  if (fromFragment) {
    sessionStorage.setItem(TOKEN_KEY, fromFragment);
    fragment.delete("token");
    const rest = fragment.toString();
    history.replaceState(history.state, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

export function saveToken(value: string): void {
  if (value.trim()) sessionStorage.setItem(TOKEN_KEY, value.trim());
  else sessionStorage.removeItem(TOKEN_KEY);
}

const bearer: Interceptor = (next) => async (request) => {
  const current = token();
  if (current) request.header.set("authorization", `Bearer ${current}`);
  return next(request);
};

export interface Clients {
  cards: Client<typeof CardService>;
  tickets: Client<typeof TicketService>;
  pipelines: Client<typeof PipelineService>;
}

export function clients(): Clients {
  const transport = createGrpcWebTransport({ baseUrl: apiBase(), interceptors: [bearer] });
  return {
    cards: createClient(CardService, transport),
    tickets: createClient(TicketService, transport),
    pipelines: createClient(PipelineService, transport),
  };
}

/** gRPC's name of a status code: INVALID_ARGUMENT, NOT_FOUND, … */
export function codeName(code: Code): string {
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** A failed call as the server said it: its status, message and every BadRequest field violation. */
export interface Failure {
  code: Code;
  status: string;
  message: string;
  violations: { field: string; description: string }[];
}

export function failure(error: unknown): Failure {
  const connectError = ConnectError.from(error);
  const violations = connectError
    .findDetails(BadRequestSchema)
    .flatMap((detail) => detail.fieldViolations)
    .map(({ field, description }) => ({ field, description }));
  return {
    code: connectError.code,
    status: codeName(connectError.code),
    message: connectError.rawMessage,
    violations,
  };
}

/** Codes after which asking again the same way cannot succeed: a stream stops and shows them. */
const FINAL_CODES = new Set([
  Code.InvalidArgument,
  Code.NotFound,
  Code.PermissionDenied,
  Code.Unauthenticated,
  Code.FailedPrecondition,
  Code.Unimplemented,
  Code.OutOfRange,
]);

export function isFinal(error: Failure): boolean {
  return FINAL_CODES.has(error.code);
}
