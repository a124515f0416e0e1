#!/usr/bin/env python3
"""Runs the grpcurl examples of one README section against a server, the way grpcurl would.

The README promises examples that run as pasted. grpcurl itself is a Go binary this CI cannot fetch, so this
does what it does with the same inputs: it reads each `grpcurl -plaintext [-H ...] -d '<json>' ADDRESS
SERVICE/METHOD` command of the section's shell blocks, learns the request type through server reflection, parses
the JSON with protobuf's JSON mapping (the one grpcurl uses) and makes the call. Any command that does not parse
or is not answered OK fails the check.

Usage:  python readme_examples.py README.md "Escalating conversations" HOST:PORT

Needs: grpcio grpcio-reflection protobuf (as check.py).
"""

from __future__ import annotations

import re
import shlex
import sys

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

CALL_TIMEOUT = 10.0  # seconds


def section_commands(readme: str, title: str) -> list[str]:
    """The grpcurl commands in the shell blocks of the `## title` section, continuation lines joined."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", readme, re.S | re.M)
    if match is None:
        raise SystemExit(f"README has no section '## {title}'")
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", match.group(1), re.S):
        # A command runs on across backslash-newlines and across newlines inside its quoted JSON.
        pending = ""
        for line in block.splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending += line + "\n"
            if line.endswith("\\"):
                continue
            try:
                shlex.split(pending)
            except ValueError:
                continue
            if pending.lstrip().startswith("grpcurl "):
                commands.append(pending.replace("\\\n", " ").strip())
            pending = ""
    if not commands:
        raise SystemExit(f"section '## {title}' has no grpcurl command")
    return commands


def run(command: str, address: str, pool: descriptor_pool.DescriptorPool, channel: grpc.Channel) -> None:
    words = shlex.split(command)[1:]
    body, metadata, positional = "{}", [], []
    while words:
        word = words.pop(0)
        if word == "-plaintext":
            continue
        if word == "-d":
            body = words.pop(0)
        elif word == "-H":
            name, _, value = words.pop(0).partition(":")
            metadata.append((name.strip().lower(), value.strip()))
        elif word.startswith("-"):
            raise SystemExit(f"unsupported grpcurl flag {word} in: {command}")
        else:
            positional.append(word)
    if len(positional) != 2:
        raise SystemExit(f"expected ADDRESS SERVICE/METHOD in: {command}")
    _, full_method = positional
    service_name, _, method_name = full_method.rpartition("/")
    method = pool.FindServiceByName(service_name).methods_by_name[method_name]
    request = json_format.Parse(body, message_factory.GetMessageClass(method.input_type)())
    response_class = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        f"/{service_name}/{method_name}",
        request_serializer=lambda message: message.SerializeToString(),
        response_deserializer=response_class.FromString,
    )
    print(f"==> {service_name}/{method_name}", flush=True)
    response = call(request, timeout=CALL_TIMEOUT, metadata=metadata or None)
    print(json_format.MessageToJson(response, indent=None), flush=True)


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(f"usage: {argv[0]} README.md SECTION HOST:PORT", file=sys.stderr)
        return 2
    readme_path, title, address = argv[1:]
    with open(readme_path, encoding="utf-8") as readme:
        commands = section_commands(readme.read(), title)
    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=15)
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        for command in commands:
            try:
                run(command, address, pool, channel)
            except grpc.RpcError as error:
                print(f"FAIL: {error.code().name}: {error.details()}\n  command: {command}", file=sys.stderr)
                return 1
            except json_format.ParseError as error:
                print(f"FAIL: the JSON does not parse: {error}\n  command: {command}", file=sys.stderr)
                return 1
    finally:
        channel.close()
    print(f"README '{title}': {len(commands)} grpcurl examples ran", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
