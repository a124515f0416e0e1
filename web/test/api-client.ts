// The test's own API client: "another client" beside the page, over gRPC-Web from Node (bundled by the test
// with esbuild, from the same generated code as the page).
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { CardService } from "../src/gen/ticketd/v1/cards_pb";
import { PipelineService } from "../src/gen/ticketd/v1/pipelines_pb";
import { TicketService } from "../src/gen/ticketd/v1/tickets_pb";

export function connect(baseUrl: string, token: string) {
  const transport = createGrpcWebTransport({
    baseUrl,
    interceptors: [
      (next) => async (request) => {
        if (token) request.header.set("authorization", `Bearer ${token}`);
        return next(request);
      },
    ],
  });
  return {
    cards: createClient(CardService, transport),
    tickets: createClient(TicketService, transport),
    pipelines: createClient(PipelineService, transport),
  };
}
