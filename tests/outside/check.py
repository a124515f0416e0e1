#!/usr/bin/env python3
"""An outside client of ticketd that knows nothing but the server's address.

It carries no generated code and no copy of the .proto files: everything it
knows about `ticketd.v1` it learns from the server itself through gRPC server
reflection (grpc.reflection.v1alpha, the version the stock grpcio-reflection
client speaks), and it calls the methods generically with message classes
built from the reflected descriptors. Health is checked through the standard
grpc.health.v1 service.

Usage:  python check.py HOST:PORT       e.g.  python check.py 127.0.0.1:50999

Needs: grpcio grpcio-reflection grpcio-health-checking protobuf.
Prints each step; exits 0 when every check passed, 1 on the first failure.
"""

from __future__ import annotations

import os
import sys
import time
import uuid

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_reflection.v1alpha.reflection_pb2 import (
    ServerReflectionRequest,
    ServerReflectionResponse,
)

TICKET_SERVICE = "ticketd.v1.TicketService"
PIPELINE_SERVICE = "ticketd.v1.PipelineService"
CALL_TIMEOUT = 10.0  # seconds, for every unary call
READY_TIMEOUT = 15.0  # seconds to wait for the channel and for SERVING


class CheckFailed(Exception):
    pass


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def ok(message: str) -> None:
    print(f"    ok: {message}", flush=True)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


class Service:
    """Generic unary calls to one reflected service."""

    def __init__(self, channel: grpc.Channel, pool: descriptor_pool.DescriptorPool, name: str, token: str = ""):
        try:
            self.descriptor = pool.FindServiceByName(name)
        except KeyError as error:
            raise CheckFailed(f"reflection has no descriptor for service {name}: {error}") from error
        self.name = name
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._channel = channel
        self._pool = pool

    def method_names(self) -> list[str]:
        return [method.name for method in self.descriptor.methods]

    def request(self, method: str, **fields):
        """A new request message of `method`'s input type."""
        return message_factory.GetMessageClass(self._method(method).input_type)(**fields)

    def message(self, full_name: str, **fields):
        """A new message of any type the reflected files define (e.g. `ticketd.v1.Ticket`)."""
        try:
            descriptor = self._pool.FindMessageTypeByName(full_name)
        except KeyError as error:
            raise CheckFailed(f"reflection has no message type {full_name}") from error
        return message_factory.GetMessageClass(descriptor)(**fields)

    def call(self, method: str, request):
        descriptor = self._method(method)
        response_class = message_factory.GetMessageClass(descriptor.output_type)
        expect(
            request.DESCRIPTOR.full_name == descriptor.input_type.full_name,
            f"{method} takes {descriptor.input_type.full_name}, not {request.DESCRIPTOR.full_name}",
        )
        stub = self._channel.unary_unary(
            f"/{self.name}/{descriptor.name}",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        return stub(request, timeout=CALL_TIMEOUT, metadata=self._metadata)

    def _method(self, name: str):
        method = self.descriptor.methods_by_name.get(name)
        if method is None:
            raise CheckFailed(f"{self.name} has no method {name}; it has {self.method_names()}")
        return method


def enum_number(pool: descriptor_pool.DescriptorPool, enum: str, value: str) -> int:
    try:
        return pool.FindEnumTypeByName(enum).values_by_name[value].number
    except KeyError as error:
        raise CheckFailed(f"reflection has no enum value {enum}.{value}") from error


def short(message) -> str:
    """A one-line rendering of a message for the log."""
    return " ".join(str(message).split())


def check_health(channel: grpc.Channel) -> None:
    step('grpc.health.v1.Health/Check service="" is SERVING')
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=CALL_TIMEOUT)
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        except grpc.RpcError as error:
            status = f"error {error.code().name}: {error.details()}"
        if status == "SERVING":
            ok("SERVING")
            return
        if time.monotonic() > deadline:
            raise CheckFailed(f"health status is {status}, not SERVING, after {READY_TIMEOUT:.0f} s")
        time.sleep(0.5)


def reflection_v1_services(channel: grpc.Channel) -> list[str] | None:
    """Services listed by grpc.reflection.v1 (same wire messages as v1alpha), None when it is not served."""
    call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=lambda message: message.SerializeToString(),
        response_deserializer=ServerReflectionResponse.FromString,
    )
    try:
        responses = call(iter([ServerReflectionRequest(list_services="")]), timeout=CALL_TIMEOUT)
        response = next(responses)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.UNIMPLEMENTED:
            return None
        raise
    return [service.name for service in response.list_services_response.service]


def check_reflection(channel: grpc.Channel) -> descriptor_pool.DescriptorPool:
    step("reflection (grpc.reflection.v1alpha) lists the ticketd services")
    database = ProtoReflectionDescriptorDatabase(channel)
    try:
        services = sorted(database.get_services())
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.UNIMPLEMENTED:
            raise CheckFailed(
                "the server does not serve grpc.reflection.v1alpha.ServerReflection, the version stock "
                "grpcio-reflection clients use (serve it beside grpc.reflection.v1)"
            ) from error
        raise
    print(f"    services: {', '.join(services)}")
    for name in (TICKET_SERVICE, PIPELINE_SERVICE):
        expect(name in services, f"{name} is not among the reflected services {services}")
    ok("both ticketd services are listed")
    v1 = reflection_v1_services(channel)
    print(f"    grpc.reflection.v1 too: {'yes' if v1 is not None else 'no (v1alpha only)'}")
    return descriptor_pool.DescriptorPool(database)


def check_default_pipeline(pipelines: Service) -> None:
    step("PipelineService/GetPipeline id=0: the default pipeline has stage 1")
    pipeline = pipelines.call("GetPipeline", pipelines.request("GetPipeline", id=0))
    stages = [(stage.id, stage.label) for stage in pipeline.stages]
    print(f"    pipeline 0 {pipeline.label!r}, stages {stages}")
    expect(pipeline.id == 0, f"asked for pipeline 0, got {pipeline.id}")
    expect(any(stage_id == 1 for stage_id, _ in stages), f"pipeline 0 has no stage 1: {stages}")
    ok("pipeline 0 with stage 1")


def create_ticket(tickets: Service, **fields):
    ticket = tickets.message("ticketd.v1.Ticket", **fields)
    request = tickets.request("CreateTicket", ticket=ticket, request_id=str(uuid.uuid4()))
    return tickets.call("CreateTicket", request)


def run(address: str) -> None:
    print(f"ticketd outside check against {address}", flush=True)
    channel = grpc.insecure_channel(address)
    try:
        step(f"connect to {address}")
        try:
            grpc.channel_ready_future(channel).result(timeout=READY_TIMEOUT)
        except grpc.FutureTimeoutError as error:
            raise CheckFailed(f"could not connect to {address} within {READY_TIMEOUT:.0f} s") from error
        ok("channel ready")

        check_health(channel)
        pool = check_reflection(channel)

        step("load the reflected service descriptors")
        # With TICKETD_OUTSIDE_TOKEN set the server runs with --auth jwt: calls carry that bearer token, and a
        # call without it must be refused.
        token = os.environ.get("TICKETD_OUTSIDE_TOKEN", "")
        tickets = Service(channel, pool, TICKET_SERVICE, token)
        pipelines = Service(channel, pool, PIPELINE_SERVICE, token)
        print(f"    {TICKET_SERVICE}: {', '.join(tickets.method_names())}")
        print(f"    {PIPELINE_SERVICE}: {', '.join(pipelines.method_names())}")
        for method in ("CreateTicket", "GetTicket", "ListTickets", "UpdateTicket"):
            expect(method in tickets.method_names(), f"{TICKET_SERVICE} lacks {method}")
        ok("descriptors loaded")

        if token:
            step("a call without credentials is UNAUTHENTICATED")
            anonymous = Service(channel, pool, TICKET_SERVICE)
            try:
                anonymous.call("ListTickets", anonymous.request("ListTickets"))
            except grpc.RpcError as error:
                expect(error.code() == grpc.StatusCode.UNAUTHENTICATED, f"expected UNAUTHENTICATED, got {error.code().name}")
                print(f"    UNAUTHENTICATED: {error.details()}")
            else:
                raise CheckFailed("ListTickets without credentials was answered")
            ok("refused without a token; the calls below carry one")

        high = enum_number(pool, "ticketd.v1.Priority", "PRIORITY_HIGH")
        low = enum_number(pool, "ticketd.v1.Priority", "PRIORITY_LOW")
        urgent = enum_number(pool, "ticketd.v1.Priority", "PRIORITY_URGENT")

        check_default_pipeline(pipelines)

        step('CreateTicket: the HubSpot example (pipeline 0, stage 1, HIGH, "troubleshoot report")')
        first = create_ticket(tickets, subject="troubleshoot report", pipeline_id=0, stage_id=1, priority=high)
        print(f"    created: {short(first)}")
        expect(first.id > 0, f"server-assigned id should be positive, got {first.id}")
        expect(first.subject == "troubleshoot report", f"subject came back as {first.subject!r}")
        expect(first.pipeline_id == 0, f"pipeline_id came back as {first.pipeline_id}")
        expect(first.stage_id == 1, f"stage_id came back as {first.stage_id}")
        expect(first.priority == high, f"priority came back as {first.priority}, not PRIORITY_HIGH ({high})")
        expect(first.etag != "", "no etag on the created ticket")
        expect(first.HasField("create_time"), "no create_time on the created ticket")
        ok(f"ticket {first.id}")

        step(f"GetTicket id={first.id} returns the created ticket")
        got = tickets.call("GetTicket", tickets.request("GetTicket", id=first.id))
        expect(got == first, f"GetTicket differs from CreateTicket's answer:\n  get:    {short(got)}\n  create: {short(first)}")
        ok("identical to the create response")

        step("CreateTicket x5 more")
        created = [first.id]
        for n in range(1, 6):
            ticket = create_ticket(tickets, subject=f"outside check ticket {n}", content=f"number {n}")
            expect(ticket.id > 0 and ticket.id not in created, f"ticket {n} got id {ticket.id}, already seen {created}")
            created.append(ticket.id)
        ok(f"ids {created}")

        step("ListTickets page_size=2, following next_page_token until it is empty")
        seen: dict[int, int] = {}
        token = ""
        tokens_used = set()
        pages = 0
        while True:
            pages += 1
            expect(pages <= 10_000, "more than 10,000 pages of 2: the pagination does not end")
            page = tickets.call("ListTickets", tickets.request("ListTickets", page_size=2, page_token=token))
            ids = [ticket.id for ticket in page.tickets]
            print(f"    page {pages}: {ids} next_page_token={'(empty)' if not page.next_page_token else '…'}")
            expect(len(ids) <= 2, f"page {pages} has {len(ids)} tickets, asked for 2")
            for ticket_id in ids:
                seen[ticket_id] = seen.get(ticket_id, 0) + 1
            token = page.next_page_token
            if not token:
                break
            expect(token not in tokens_used, f"page {pages} repeated an earlier next_page_token")
            tokens_used.add(token)
        duplicates = sorted(ticket_id for ticket_id, count in seen.items() if count > 1)
        expect(not duplicates, f"tickets listed more than once: {duplicates}")
        missing = [ticket_id for ticket_id in created if ticket_id not in seen]
        expect(not missing, f"created tickets never listed: {missing}")
        ok(f"{len(seen)} tickets over {pages} pages; each created ticket exactly once")

        step(f'UpdateTicket id={first.id} update_mask=["priority"] priority=PRIORITY_LOW with its etag')
        update = tickets.request(
            "UpdateTicket",
            ticket=tickets.message("ticketd.v1.Ticket", id=first.id, priority=low, etag=first.etag),
            request_id=str(uuid.uuid4()),
        )
        update.update_mask.paths.append("priority")
        updated = tickets.call("UpdateTicket", update)
        print(f"    updated: {short(updated)}")
        expect(updated.id == first.id, f"update answered with ticket {updated.id}")
        expect(updated.priority == low, f"priority is {updated.priority}, not PRIORITY_LOW ({low})")
        expect(updated.subject == "troubleshoot report", f"subject changed to {updated.subject!r}")
        expect(updated.pipeline_id == 0 and updated.stage_id == 1, "pipeline/stage changed by a priority-only update")
        expect(updated.etag != first.etag, "etag did not change on update")
        stored = tickets.call("GetTicket", tickets.request("GetTicket", id=first.id))
        expect(stored.priority == low and stored.subject == "troubleshoot report", f"GetTicket after update: {short(stored)}")
        ok("priority is LOW, subject unchanged, new etag")

        step("UpdateTicket again with the OLD etag fails with ABORTED")
        stale = tickets.request(
            "UpdateTicket",
            ticket=tickets.message("ticketd.v1.Ticket", id=first.id, priority=urgent, etag=first.etag),
            request_id=str(uuid.uuid4()),
        )
        stale.update_mask.paths.append("priority")
        try:
            answer = tickets.call("UpdateTicket", stale)
        except grpc.RpcError as error:
            expect(
                error.code() == grpc.StatusCode.ABORTED,
                f"stale etag gave {error.code().name} ({error.details()}), not ABORTED",
            )
            print(f"    ABORTED: {error.details()}")
        else:
            raise CheckFailed(f"stale etag was accepted: {short(answer)}")
        after = tickets.call("GetTicket", tickets.request("GetTicket", id=first.id))
        expect(after.priority == low and after.etag == updated.etag, f"the rejected update changed the ticket: {short(after)}")
        ok("ABORTED, ticket unchanged")
    finally:
        channel.close()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1].startswith("-"):
        print(f"usage: {argv[0]} HOST:PORT", file=sys.stderr)
        return 2
    try:
        run(argv[1])
    except CheckFailed as error:
        print(f"FAIL: {error}", file=sys.stderr, flush=True)
        return 1
    except grpc.RpcError as error:
        print(f"FAIL: unexpected gRPC error {error.code().name}: {error.details()}", file=sys.stderr, flush=True)
        return 1
    print("outside check passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
