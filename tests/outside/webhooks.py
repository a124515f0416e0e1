#!/usr/bin/env python3
"""An outside receiver of ticketd's webhooks: checks that a delivery verifies with PyPI's `standardwebhooks`.

Like check.py it knows only the server's address and learns `ticketd.v1` through reflection. It starts an HTTP
receiver on 127.0.0.1 (so the server must run with --webhook-allow-private-targets), creates a webhook, creates
a ticket, and verifies the delivery with `standardwebhooks.webhooks.Webhook(secret).verify(body, headers)`.

Usage:  python webhooks.py HOST:PORT     (TICKETD_OUTSIDE_TOKEN: a bearer token when the server runs --auth jwt)

Needs: grpcio grpcio-reflection grpcio-health-checking protobuf standardwebhooks.
Exits 0 when every check passed, 1 on the first failure.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from standardwebhooks.webhooks import Webhook

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check import (  # noqa: E402  (a sibling script, found through the path set above)
    READY_TIMEOUT,
    TICKET_SERVICE,
    CheckFailed,
    Service,
    check_reflection,
    create_ticket,
    expect,
    ok,
    step,
)

WEBHOOK_SERVICE = "ticketd.v1.WebhookService"
DELIVERY_TIMEOUT = 30.0  # seconds


def start_receiver() -> tuple[ThreadingHTTPServer, "queue.Queue[tuple[dict[str, str], bytes]]"]:
    received: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server naming)
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            received.put(({name.lower(): value for name, value in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def run(address: str) -> None:
    print(f"ticketd webhook check against {address}", flush=True)
    channel = grpc.insecure_channel(address)
    grpc.channel_ready_future(channel).result(timeout=READY_TIMEOUT)
    pool = check_reflection(channel)
    token = os.environ.get("TICKETD_OUTSIDE_TOKEN", "")
    webhooks = Service(channel, pool, WEBHOOK_SERVICE, token)
    tickets = Service(channel, pool, TICKET_SERVICE, token)

    server, received = start_receiver()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        step(f"WebhookService/CreateWebhook to {url}")
        webhook = webhooks.call(
            "CreateWebhook",
            webhooks.request(
                "CreateWebhook",
                webhook=webhooks.message("ticketd.v1.Webhook", url=url, event_types=["ticket.created"]),
                request_id=str(uuid.uuid4()),
            ),
        )
        expect(webhook.secret.startswith("whsec_"), f"the secret is not a whsec_ secret: {webhook.secret!r}")
        ok(f"webhook {webhook.id}, secret {webhook.secret[:10]}…")

        subject = f"webhook check {uuid.uuid4()}"
        step(f"create a ticket {subject!r} and wait for its delivery")
        ticket = create_ticket(tickets, subject=subject, stage_id=1)
        try:
            headers, body = received.get(timeout=DELIVERY_TIMEOUT)
        except queue.Empty as error:
            raise CheckFailed(f"no delivery within {DELIVERY_TIMEOUT:.0f} s") from error
        ok(f"received webhook-id {headers.get('webhook-id')}, {len(body)} bytes")

        step("verify the signature with standardwebhooks")
        payload = Webhook(webhook.secret).verify(body, headers)
        expect(payload["type"] == "ticket.created", f"type is {payload.get('type')!r}")
        expect(payload["data"]["ticket"]["subject"] == subject, f"wrong ticket: {json.dumps(payload)[:300]}")
        expect(payload["data"]["ticket"]["id"] == str(ticket.id), "data.ticket.id is the ticket's id")
        ok("signature verified; type ticket.created; data.ticket is the new ticket")

        step("a tampered body does not verify")
        try:
            Webhook(webhook.secret).verify(body + b" ", headers)
        except Exception:  # noqa: BLE001 (the library's own verification error)
            ok("refused")
        else:
            raise CheckFailed("a tampered body verified")

        webhooks.call("DeleteWebhook", webhooks.request("DeleteWebhook", id=webhook.id))
    finally:
        server.shutdown()
        channel.close()


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        run(sys.argv[1])
    except CheckFailed as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    except grpc.RpcError as error:
        print(f"FAILED: {error.code()}: {error.details()}", file=sys.stderr)
        return 1
    print("webhook check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
