#!/usr/bin/env python3
"""The client side of bench/faults.sh: writers, a stream watcher, the checks after each fault phase, the
bad-input sweep, and the summary. bench/faults.sh injects the faults (PostgreSQL restarts, kill -9 of the
server) while `write` runs; see there and RELIABILITY.md.

    faults.py write ADDR --phase NAME --writers N --stop-file PATH --out FILE.json [--watch --resumes N]
    faults.py sweep ADDR --out FILE.json
    faults.py report FILE.json...

Like tests/outside/check.py it carries no generated code: the message classes come from the server's own
reflection. Needs grpcio grpcio-reflection grpcio-health-checking protobuf.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import math
import os
import random
import re
import sys
import threading
import time
import uuid

import grpc
from google.protobuf import descriptor, descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

TICKETS = "ticketd.v1.TicketService"
CALL_TIMEOUT = 10.0  # seconds a writer waits for one answer before it retries (DEADLINE_EXCEEDED)
RETRYABLE = {"UNAVAILABLE", "DEADLINE_EXCEEDED"}
GIVE_UP_AFTER = 120.0  # seconds of retries of one request; far beyond any fault the script injects
CHANNEL_OPTIONS = [
    # What is measured is what the writers do: no retries hidden inside the gRPC library.
    ("grpc.enable_retries", 0),
    # Reconnect quickly once the server is back; the default backoff grows to minutes and would be measured
    # as the server's unavailability.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


def log(message: str) -> None:
    print(message, flush=True)


def channel(address: str) -> grpc.Channel:
    return grpc.insecure_channel(address, options=CHANNEL_OPTIONS)


def wait_serving(address: str, timeout: float = 90.0) -> None:
    """Blocks until grpc.health.v1 says SERVING: checks run once the faults are over."""
    deadline = time.monotonic() + timeout
    with channel(address) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while True:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2.0).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"the server at {address} is not SERVING after {timeout:.0f} s")
            time.sleep(0.5)


class Api:
    """Message classes and generic calls, all from the server's reflection."""

    def __init__(self, address: str):
        self.address = address
        self.channel = channel(address)
        grpc.channel_ready_future(self.channel).result(timeout=30)
        self.database = ProtoReflectionDescriptorDatabase(self.channel)
        self.pool = descriptor_pool.DescriptorPool(self.database)

    def services(self) -> list[str]:
        return sorted(s for s in self.database.get_services() if s.startswith("ticketd."))

    def method(self, service: str, name: str) -> descriptor.MethodDescriptor:
        return self.pool.FindServiceByName(service).methods_by_name[name]

    def message(self, full_name: str, **fields):
        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(full_name))(**fields)

    def request(self, service: str, method: str, **fields):
        return message_factory.GetMessageClass(self.method(service, method).input_type)(**fields)

    def unary(self, service: str, method: str, ch: grpc.Channel | None = None):
        """A callable taking a request message (or raw bytes) and returning the decoded response."""
        m = self.method(service, method)
        return (ch or self.channel).unary_unary(
            f"/{service}/{m.name}",
            request_serializer=lambda r: r if isinstance(r, bytes) else r.SerializeToString(),
            response_deserializer=message_factory.GetMessageClass(m.output_type).FromString,
        )

    def stream(self, service: str, method: str, ch: grpc.Channel | None = None):
        m = self.method(service, method)
        return (ch or self.channel).unary_stream(
            f"/{service}/{m.name}",
            request_serializer=lambda r: r if isinstance(r, bytes) else r.SerializeToString(),
            response_deserializer=message_factory.GetMessageClass(m.output_type).FromString,
        )

    def call_until_ok(self, service: str, method: str, request, timeout: float = 60.0):
        """Reads made for the checks, after the faults: retried until they succeed."""
        call = self.unary(service, method)
        deadline = time.monotonic() + timeout
        while True:
            try:
                return call(request, timeout=CALL_TIMEOUT)
            except grpc.RpcError as error:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{method} keeps failing: {error.code().name} {error.details()}")
                time.sleep(0.5)

    def tickets_with_prefix(self, prefix: str) -> list:
        found, token = [], ""
        while True:
            page = self.call_until_ok(TICKETS, "ListTickets", self.request(
                TICKETS, "ListTickets", page_size=500, page_token=token, order_by="id", show_archived=True))
            found.extend(t for t in page.tickets if t.subject.startswith(prefix))
            token = page.next_page_token
            if not token:
                return found

    def history(self, ticket_id: int) -> list:
        events, token = [], ""
        while True:
            page = self.call_until_ok(TICKETS, "ListTicketHistory", self.request(
                TICKETS, "ListTicketHistory", ticket_id=ticket_id, page_size=100, page_token=token))
            events.extend(page.events)
            token = page.next_page_token
            if not token:
                return events


class Tally:
    """Codes by kind, first messages of each non-OK kind, and the longest waits, shared by the writers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.codes = collections.Counter()
        self.messages: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.longest_call = 0.0
        self.longest_ack = 0.0

    def call(self, code: str, seconds: float, message: str = "") -> None:
        with self.lock:
            self.codes[code] += 1
            self.longest_call = max(self.longest_call, seconds)
            if code != "OK":
                self.messages[code][message[:160]] += 1

    def acknowledged(self, seconds: float) -> None:
        with self.lock:
            self.longest_ack = max(self.longest_ack, seconds)


class Watcher(threading.Thread):
    """WatchTickets from `after`, resuming from the last event it saw: `resumes` times on purpose (cancelling
    its own stream every `every` seconds) and whenever the stream breaks (the server killed)."""

    def __init__(self, api: Api, after: int, resumes: int, every: float):
        super().__init__(daemon=True)
        self.api, self.cursor, self.planned, self.every = api, after, resumes, every
        self.start_after = after
        self.received = collections.Counter()
        self.out_of_order = 0
        self.voluntary = 0
        self.forced = 0
        self.codes = collections.Counter()
        self.trailer_mismatches = 0
        self.done = threading.Event()
        self.current = None
        self.lock = threading.Lock()

    def run(self) -> None:
        ch = channel(self.api.address)
        watch = self.api.stream(TICKETS, "WatchTickets", ch)
        backoff = 0.05
        while not self.done.is_set():
            call = watch(self.api.request(TICKETS, "WatchTickets", after_event_id=self.cursor))
            with self.lock:
                self.current = call
            timer = None
            if self.voluntary < self.planned:
                timer = threading.Timer(self.every, call.cancel)
                timer.start()
            try:
                for event in call:
                    self.received[event.event_id] += 1
                    if self.received[event.event_id] > 1:
                        pass  # a repeat: counted as duplicated
                    elif event.event_id < self.cursor:
                        self.out_of_order += 1
                    else:
                        self.cursor = event.event_id
                    backoff = 0.05
                self.codes["ended OK"] += 1
            except grpc.RpcError as error:
                code = error.code().name
                if code == "CANCELLED":
                    if self.done.is_set():
                        break
                    self.voluntary += 1
                else:
                    self.codes[code] += 1
                    self.forced += 1
                    trailer = dict(error.trailing_metadata() or ()).get("ticketd-resume-after-event-id")
                    if trailer is not None and trailer != str(self.cursor):
                        self.trailer_mismatches += 1
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 1.0)
            finally:
                if timer is not None:
                    timer.cancel()
        ch.close()

    def stop(self) -> None:
        self.done.set()
        with self.lock:
            if self.current is not None:
                self.current.cancel()
        self.join(timeout=10)


def write(args) -> None:
    api = Api(args.addr)
    run = uuid.uuid4().hex[:8]
    prefix = f"faults {run} {args.phase} "
    tally = Tally()
    acked: dict[str, int] = {}
    gave_up: dict[str, str] = {}
    results_lock = threading.Lock()
    started = time.monotonic()

    def stopping() -> bool:
        return os.path.exists(args.stop_file) or time.monotonic() - started > args.max_seconds

    # Resolved here, once: the reflection-backed pool is not shared between threads while it still loads.
    create_request = message_factory.GetMessageClass(api.method(TICKETS, "CreateTicket").input_type)
    ticket_class = message_factory.GetMessageClass(api.pool.FindMessageTypeByName("ticketd.v1.Ticket"))
    api.request(TICKETS, "ListTickets")
    api.request(TICKETS, "ListTicketHistory")
    api.request(TICKETS, "WatchTickets")

    watcher = None
    if args.watch:
        # The watch starts after the last event committed before the writers: everything after it is theirs.
        marker = api.call_until_ok(TICKETS, "CreateTicket", api.request(
            TICKETS, "CreateTicket", ticket=api.message("ticketd.v1.Ticket", subject=prefix + "marker"),
            request_id=str(uuid.uuid4())))
        after = max(e.event_id for e in api.history(marker.id))
        watcher = Watcher(api, after, args.resumes, args.resume_every)
        watcher.start()

    def writer(w: int) -> None:
        ch = channel(args.addr)
        create = api.unary(TICKETS, "CreateTicket", ch)
        n = 0
        while not stopping():
            n += 1
            subject = f"{prefix}w{w} n{n}"
            request = create_request(ticket=ticket_class(subject=subject), request_id=str(uuid.uuid4()))
            first = time.monotonic()
            backoff = 0.05
            # A request once sent is retried to its end even after the stop signal: no answer left unknown.
            while True:
                t0 = time.monotonic()
                try:
                    ticket = create(request, timeout=CALL_TIMEOUT)
                except grpc.RpcError as error:
                    code = error.code().name
                    tally.call(code, time.monotonic() - t0, error.details() or "")
                    if code in RETRYABLE and time.monotonic() - first < GIVE_UP_AFTER:
                        time.sleep(backoff)
                        backoff = min(backoff * 2, 1.0)
                        continue
                    with results_lock:
                        gave_up[subject] = code
                    break
                now = time.monotonic()
                tally.call("OK", now - t0)
                tally.acknowledged(now - first)
                with results_lock:
                    acked[subject] = ticket.id
                break
        ch.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(args.writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - started

    wait_serving(args.addr)
    stored = [t for t in api.tickets_with_prefix(prefix) if t.subject != prefix + "marker"]
    count = collections.Counter(t.subject for t in stored)
    stored_id = {t.subject: t.id for t in stored}
    lost = sorted(s for s in acked if count[s] == 0)
    duplicated = sorted(s for s, c in count.items() if c > 1)
    wrong_id = sorted(s for s in acked if count[s] == 1 and stored_id[s] != acked[s])
    unasked = sorted(s for s in count if s not in acked and s not in gave_up)
    stored_anyway = sorted(s for s in gave_up if count[s] > 0)
    result = {
        "phase": args.phase, "writers": args.writers, "seconds": round(seconds, 1),
        "requests": len(acked) + len(gave_up), "acknowledged": len(acked), "lost": len(lost),
        "duplicated": len(duplicated), "wrong_id": len(wrong_id), "not_written_by_us": len(unasked),
        "gave_up": dict(collections.Counter(gave_up.values())), "gave_up_but_stored": len(stored_anyway),
        "codes": dict(tally.codes.most_common()),
        "longest_call_s": round(tally.longest_call, 2), "longest_until_ack_s": round(tally.longest_ack, 2),
        "messages": {code: dict(c.most_common(5)) for code, c in tally.messages.items()},
        "examples": {"lost": lost[:5], "duplicated": duplicated[:5], "wrong_id": wrong_id[:5]},
    }

    if watcher is not None:
        # Every event of this phase's tickets, as ListTicketHistory has them, against what the stream delivered.
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            histories = list(pool.map(api.history, [t.id for t in stored]))
        expected = {e.event_id for events in histories for e in events if e.event_id > watcher.start_after}
        deadline = time.monotonic() + 30
        while expected and watcher.cursor < max(expected) and time.monotonic() < deadline:
            time.sleep(0.2)
        watcher.stop()
        received = set(watcher.received)
        result["stream"] = {
            "expected_events": len(expected), "received_events": len(received & expected),
            "missed": len(expected - received),
            "duplicated": sum(c - 1 for e, c in watcher.received.items() if c > 1),
            "foreign": len(received - expected), "out_of_order": watcher.out_of_order,
            "resumes_planned": watcher.voluntary, "resumes_after_errors": watcher.forced,
            "stream_errors": dict(watcher.codes), "trailer_mismatches": watcher.trailer_mismatches,
            "examples_missed": sorted(expected - received)[:10],
        }

    print_phase(result)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


def print_phase(r: dict) -> None:
    log(f"phase {r['phase']}: {r['writers']} writers for {r['seconds']} s, {r['requests']} CreateTicket requests")
    log(f"  acknowledged {r['acknowledged']}, lost {r['lost']}, duplicated {r['duplicated']}, "
        f"stored under another id {r['wrong_id']}, given up {sum(r['gave_up'].values())} {r['gave_up'] or ''} "
        f"(of which stored anyway {r['gave_up_but_stored']})"
        + (f", stored but never sent {r['not_written_by_us']}" if r["not_written_by_us"] else ""))
    log(f"  codes of {sum(r['codes'].values())} calls: " + ", ".join(f"{k} {v}" for k, v in r["codes"].items()))
    log(f"  longest wait for one answer {r['longest_call_s']} s, for an acknowledgement (retries included) "
        f"{r['longest_until_ack_s']} s")
    for code, messages in r["messages"].items():
        for message, n in messages.items():
            log(f"    {code} x{n}: {message}")
    for kind, examples in r["examples"].items():
        if examples:
            log(f"  {kind}: {examples}")
    s = r.get("stream")
    if s:
        log(f"  stream: {s['expected_events']} events in ListTicketHistory, {s['received_events']} received, "
            f"missed {s['missed']}, duplicated {s['duplicated']}, out of order {s['out_of_order']}, "
            f"foreign {s['foreign']}; resumes {s['resumes_planned']} planned + {s['resumes_after_errors']} after "
            f"errors {s['stream_errors']}, resume trailer != last event {s['trailer_mismatches']}")
        if s["examples_missed"]:
            log(f"    missed event ids: {s['examples_missed']}")


# ------------------------------------------------------------------------------------------------ sweep
INT_LIMITS = {
    descriptor.FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    descriptor.FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    descriptor.FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    descriptor.FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    descriptor.FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    descriptor.FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    descriptor.FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    descriptor.FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    descriptor.FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    descriptor.FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
STRINGS = [
    ("empty", ""), ("NUL", "\x00"), ("NUL inside", "a\x00b"), ("100k chars", "x" * 100_000),
    ("white space", " \t\r\n"), ("emoji x300", "\U0001f4a5" * 300), ("lone combining mark", "\u0301"),
    ("control chars", "\x01\x07\x1b[2J"), ("sql", "' OR 1=1; --"), ("path", "../../etc/passwd"),
    ("format", "%s%n%x{0}"), ("bogus token", "not-a-token"), ("base64 junk", "AAAAAAAAAAAAAAAA"),
    ("json", '{"a":'), ("dotted", "a.b.c.d.e"),
]
STREAM_WAIT = 1.0  # seconds: a stream still open without an error by then was accepted


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


# Above the server's 4 MiB default request limit; one shared object, not a copy per method.
OVERSIZED = tag(9999, 2) + varint(8 * 1024 * 1024) + b"x" * (8 * 1024 * 1024)


def extremes(field: descriptor.FieldDescriptor):
    """(label, value) pairs for one field; a value is what goes into the field (or the repeated field)."""
    t = field.type
    if t == field.TYPE_STRING:
        return STRINGS
    if t == field.TYPE_BYTES:
        return [("empty", b""), ("100k bytes", b"\xff" * 100_000)]
    if t in INT_LIMITS:
        low, high = INT_LIMITS[t]
        values = [("min", low), ("max", high)] + ([("-1", -1)] if low < 0 else [])
        return values
    if t == field.TYPE_BOOL:
        return [("true", True)]
    if t == field.TYPE_ENUM:
        return [("unknown 999", 999), ("-1", -1)]
    if t in (field.TYPE_DOUBLE, field.TYPE_FLOAT):
        return [("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf)]
    return []


def message_extremes(m: descriptor.Descriptor):
    """(label, setter) pairs for a message field of type `m` that has no per-field treatment."""
    name = m.full_name
    if name == "google.protobuf.Timestamp":
        return [("year 0", dict(seconds=-62135596801)), ("year 10000", dict(seconds=253402300800)),
                ("nanos -1", dict(nanos=-1)), ("nanos 2e9", dict(nanos=2_000_000_000)),
                ("seconds min", dict(seconds=-(2**63)))]
    if name == "google.protobuf.FieldMask":
        return [("bogus path", dict(paths=["no_such_field"])), ("empty path", dict(paths=[""])),
                ("NUL path", dict(paths=["\x00"])), ("deep path", dict(paths=["a.b.c.d.e.f"])),
                ("1000 paths", dict(paths=["subject"] * 1000))]
    return []


def leaf_fields(m: descriptor.Descriptor, depth: int = 0, path=()):
    """Paths of fields to set, down two levels of nested messages."""
    for field in m.fields:
        here = path + (field,)
        if field.message_type is not None and not field.message_type.GetOptions().map_entry:
            yield here
            if depth < 1 and not message_extremes(field.message_type):
                yield from leaf_fields(field.message_type, depth + 1, here)
        else:
            yield here


def is_repeated(field: descriptor.FieldDescriptor) -> bool:
    # protobuf 7 dropped `label` for `is_repeated`.
    if hasattr(field, "is_repeated"):
        return field.is_repeated
    return field.label == field.LABEL_REPEATED


def container(message, path):
    """The message holding the last field of `path`, creating the nested ones."""
    for field in path[:-1]:
        message = getattr(message, field.name).add() if is_repeated(field) else getattr(message, field.name)
    return message


def plausible(cls, seed_id: int):
    """A request that gets past the first checks: ids name an existing ticket, names and subjects are set."""
    message = cls()

    def fill(msg, depth):
        for field in msg.DESCRIPTOR.fields:
            if is_repeated(field):
                continue
            if field.type == field.TYPE_INT64 and (field.name == "id" or field.name.endswith("ticket_id")):
                setattr(msg, field.name, seed_id)
            elif field.type == field.TYPE_STRING and field.name in ("subject", "label", "name", "title", "body"):
                setattr(msg, field.name, f"sweep {field.name}")
            elif field.message_type is not None and depth < 1 and field.message_type.full_name.startswith("ticketd."):
                fill(getattr(msg, field.name), depth + 1)

    fill(message, 0)
    return message


def variants(method: descriptor.MethodDescriptor, seed_id: int):
    """(label, serialized request) for one method."""
    cls = message_factory.GetMessageClass(method.input_type)
    rng = random.Random(method.full_name)
    yield "empty message", b""
    yield "garbage bytes", bytes(rng.randrange(256) for _ in range(64))
    yield "truncated length", tag(1, 2) + varint(50) + b"ab"
    yield "invalid wire type", tag(1, 7)
    yield "varint of 11 bytes", tag(1, 0) + b"\xff" * 10 + b"\x01"
    yield "unknown field 9999", tag(9999, 2) + varint(3) + b"abc"
    yield "8 MiB message", OVERSIZED
    base = plausible(cls, seed_id)
    for field in method.input_type.fields:
        if field.type == field.TYPE_STRING and not is_repeated(field):
            # Not expressible through the protobuf API: a string field that is not UTF-8.
            yield f"{field.name}=invalid UTF-8", base.SerializeToString() + tag(field.number, 2) + varint(2) + b"\xff\xfe"
        if field.type in (field.TYPE_INT64, field.TYPE_INT32) and not is_repeated(field):
            # A wire type the field does not have.
            yield f"{field.name}=wrong wire type", base.SerializeToString() + tag(field.number, 2) + varint(1) + b"x"
    for path in leaf_fields(method.input_type):
        field, dotted = path[-1], ".".join(f.name for f in path)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for label, key, value in [("NUL key", "\x00", "v"), ("empty key", "", "v"), ("100k value", "k", "x" * 100_000),
                                      ("1000 entries", None, "v"), ("NUL value", "k", "\x00")]:
                request = plausible(cls, seed_id)
                entries = getattr(container(request, path), field.name)
                if key is None:
                    for i in range(1000):
                        entries[f"k{i}"] = value
                else:
                    entries[key] = value
                yield f"{dotted}: {label}", request.SerializeToString()
            continue
        if field.message_type is not None:
            cases = message_extremes(field.message_type) + ([("1000 empty entries", None)] if is_repeated(field) else [])
            for label, values in cases:
                request = plausible(cls, seed_id)
                holder = container(request, path)
                if values is None:
                    for _ in range(1000):
                        getattr(holder, field.name).add()
                else:
                    sub = getattr(holder, field.name).add() if is_repeated(field) else getattr(holder, field.name)
                    for name, value in values.items():
                        if isinstance(value, list):
                            getattr(sub, name).extend(value)
                        else:
                            setattr(sub, name, value)
                yield f"{dotted}={label}", request.SerializeToString()
            continue
        for label, value in extremes(field):
            request = plausible(cls, seed_id)
            holder = container(request, path)
            try:
                if is_repeated(field):
                    getattr(holder, field.name).extend([value] * (2 if len(str(value)) > 1000 else 10_000))
                    label = f"{label} x{2 if len(str(value)) > 1000 else 10_000}"
                else:
                    setattr(holder, field.name, value)
            except (ValueError, TypeError):
                continue  # a value the protobuf runtime itself refuses (e.g. out of range)
            yield f"{dotted}={label}", request.SerializeToString()


FIELD_PATH = re.compile(r"\b[A-Z]\w*(\.\w+)+:")


def request_kind(label: str) -> str:
    """`ticket.subject=NUL` -> `string: NUL`-like kinds: what was wrong with the request, whatever the field."""
    if "=" in label:
        return "field=" + label.split("=", 1)[1]
    if ": " in label:
        return "map: " + label.split(": ", 1)[1]
    return label


def sweep(args) -> None:
    api = Api(args.addr)
    seed = api.call_until_ok(TICKETS, "CreateTicket", api.request(
        TICKETS, "CreateTicket", ticket=api.message("ticketd.v1.Ticket", subject="sweep seed"),
        request_id=str(uuid.uuid4())))
    services = api.services()
    methods = [(service, m) for service in services for m in api.pool.FindServiceByName(service).methods
               if not m.client_streaming]
    log(f"sweep: {len(methods)} methods of {len(services)} services: {', '.join(services)}")
    ch = channel(args.addr)

    def one(job):
        service, m, label, body = job
        if m.server_streaming:
            call = api.stream(service, m.name, ch)(body, timeout=STREAM_WAIT)
            try:
                next(iter(call), None)
                call.cancel()
                return job, "OK", ""
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    return job, "OK (stream open)", ""
                return job, error.code().name, error.details() or ""
        try:
            api.unary(service, m.name, ch)(body, timeout=CALL_TIMEOUT)
            return job, "OK", ""
        except grpc.RpcError as error:
            return job, error.code().name, error.details() or ""

    codes = collections.Counter()
    by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    bad = []
    requests = 0
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        # Method by method, so that only one method's requests (some of them 100 kB) are held at once.
        for service, m in methods:
            jobs = [(service, m, label, body) for label, body in variants(m, seed.id)]
            requests += len(jobs)
            for (_, _, label, _), code, details in pool.map(one, jobs):
                codes[code] += 1
                by_kind[request_kind(label)][code] += 1
                if code in ("INTERNAL", "UNKNOWN", "DATA_LOSS"):
                    bad.append({"method": f"{service.rsplit('.', 1)[-1]}/{m.name}", "request": label,
                                "code": code, "message": details[:200]})
    ch.close()
    wait_serving(args.addr, timeout=10)
    result = {"phase": "sweep", "methods": len(methods), "requests": requests,
              "seconds": round(time.monotonic() - started, 1), "codes": dict(codes.most_common()),
              "internal": sum(1 for b in bad if b["code"] == "INTERNAL"),
              "by_kind": {kind: dict(c.most_common()) for kind, c in sorted(by_kind.items())}, "bad": bad}
    log(f"sweep: {result['requests']} requests in {result['seconds']} s; codes: "
        + ", ".join(f"{k} {v}" for k, v in result["codes"].items()))
    log("  by kind of request:")
    for kind, c in result["by_kind"].items():
        log(f"    {kind}: " + ", ".join(f"{k} {v}" for k, v in c.items()))
    log(f"sweep: INTERNAL {result['internal']} (must be 0), UNKNOWN/DATA_LOSS {len(bad) - result['internal']}; "
        "the server still answers health checks")
    if len(bad) <= 40:
        for b in bad:
            log(f"  {b['code']} {b['method']} [{b['request']}]: {b['message']}")
    else:
        # Hundreds of lines would hide the causes: one line per cause, every call in target/faults/sweep.json.
        causes: dict[str, list] = collections.defaultdict(list)
        for b in bad:
            causes[f"{b['code']}: {FIELD_PATH.sub('<field>:', b['message'])}"].append(b)
        log(f"  {len(bad)} calls by cause (each one in {args.out}):")
        for cause, calls in sorted(causes.items(), key=lambda item: -len(item[1])):
            examples = "; ".join(f"{b['method']} [{b['request']}]" for b in calls[:2])
            log(f"    {len(calls)} x {cause} (e.g. {examples})")
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


# ------------------------------------------------------------------------------------------------ report
def report(args) -> None:
    """The summary table of a run (the form RELIABILITY.md keeps), and exit 1 if an invariant broke."""
    results = [json.load(open(path)) for path in args.files]
    broken = []
    log("| phase | writers, s | acknowledged | lost | duplicated | given up (stored anyway) | codes (all attempts) | longest answer / until ack |")
    log("|---|---|---|---|---|---|---|---|")
    for r in results:
        if r["phase"] == "sweep":
            continue
        gave_up = sum(r["gave_up"].values())
        codes = ", ".join(f"{k} {v}" for k, v in r["codes"].items())
        log(f"| {r['phase']} | {r['writers']}, {r['seconds']} | {r['acknowledged']} | {r['lost']} | {r['duplicated']} | "
            f"{gave_up} ({r['gave_up_but_stored']}) | {codes} | {r['longest_call_s']} s / {r['longest_until_ack_s']} s |")
        if r["lost"] or r["duplicated"] or r["wrong_id"]:
            broken.append(f"{r['phase']}: lost {r['lost']}, duplicated {r['duplicated']}, wrong id {r['wrong_id']}")
        if r["codes"].get("INTERNAL"):
            broken.append(f"{r['phase']}: {r['codes']['INTERNAL']} INTERNAL")
        s = r.get("stream")
        if s:
            log("")
            log(f"stream ({r['phase']}): {s['expected_events']} events in ListTicketHistory, missed {s['missed']}, "
                f"duplicated {s['duplicated']}, out of order {s['out_of_order']}, resumes {s['resumes_planned']} planned + "
                f"{s['resumes_after_errors']} after errors {s['stream_errors']}")
            if s["missed"] or s["duplicated"] or s["out_of_order"]:
                broken.append(f"{r['phase']}: stream missed {s['missed']}, duplicated {s['duplicated']}, "
                              f"out of order {s['out_of_order']}")
    for r in results:
        if r["phase"] == "sweep":
            log("")
            log(f"bad-input sweep: {r['requests']} requests over {r['methods']} methods; codes: "
                + ", ".join(f"{k} {v}" for k, v in r["codes"].items()))
            if r["bad"]:
                broken.append(f"sweep: {r['internal']} INTERNAL, {len(r['bad']) - r['internal']} UNKNOWN/DATA_LOSS")
    log("")
    if broken:
        log("NOT OK: " + "; ".join(broken))
        sys.exit(1)
    log("OK: nothing lost or duplicated, no INTERNAL, the streams missed and repeated nothing")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write")
    w.add_argument("addr")
    w.add_argument("--phase", required=True)
    w.add_argument("--writers", type=int, default=8)
    w.add_argument("--stop-file", required=True, help="the writers stop once this file exists")
    w.add_argument("--max-seconds", type=float, default=300, help="stop anyway after this long")
    w.add_argument("--watch", action="store_true", help="also watch the events and resume the stream")
    w.add_argument("--resumes", type=int, default=60, help="planned stream resumes")
    w.add_argument("--resume-every", type=float, default=0.5, help="seconds between planned resumes")
    w.add_argument("--out", required=True)
    s = sub.add_parser("sweep")
    s.add_argument("addr")
    s.add_argument("--out", required=True)
    r = sub.add_parser("report")
    r.add_argument("files", nargs="+")
    args = parser.parse_args()
    {"write": write, "sweep": sweep, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
