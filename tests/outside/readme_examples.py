#!/usr/bin/env python3
"""Runs the grpcurl examples of README sections against a server, the way grpcurl would.

The README promises examples that run as pasted. grpcurl itself is a Go binary this CI cannot fetch, so this
does what it does with the same inputs: it reads each `grpcurl -plaintext [-H ...] -d '<json>' ADDRESS
SERVICE/METHOD` command of the section's shell blocks, learns the request type through server reflection, parses
the JSON with protobuf's JSON mapping (the one grpcurl uses) and makes the call; `grpcurl ... list` lists the
services through reflection. Any command that does not parse or is not answered OK fails the check. The
sections run in the order given, against one server, so an example may rely on what the ones before it created
(ticket 1 is the first ticket "Talking to it" creates) and on nothing else.

Usage:  python readme_examples.py README.md "Escalating conversations" [SECTION...] HOST:PORT
        python readme_examples.py README.md --all HOST:PORT     every section with grpcurl examples, in order

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


def sections_with_examples(readme: str) -> list[str]:
    """The titles of every `## ` section whose shell blocks hold a grpcurl command, in README order."""
    titles = []
    for match in re.finditer(r"^## (.*?)\n(.*?)(?=^## |\Z)", readme, re.S | re.M):
        if any(command_lines(block) for block in re.findall(r"```sh\n(.*?)```", match.group(2), re.S)):
            titles.append(match.group(1))
    return titles


def command_lines(block: str) -> list[str]:
    """The grpcurl commands of one shell block, continuation lines joined."""
    commands = []
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
    return commands


def section_commands(readme: str, title: str) -> list[str]:
    """The grpcurl commands in the shell blocks of the `## title` section."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", readme, re.S | re.M)
    if match is None:
        raise SystemExit(f"README has no section '## {title}'")
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", match.group(1), re.S):
        commands.extend(command_lines(block))
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
    if positional[1:] == ["list"]:
        print("==> list", flush=True)
        services = reflected_services(channel)
        print("\n".join(services), flush=True)
        if not any(service.startswith("ticketd.v1.") for service in services):
            raise SystemExit(f"reflection lists no ticketd service: {services}")
        return
    if len(positional) != 2:
        raise SystemExit(f"expected ADDRESS SERVICE/METHOD or ADDRESS list in: {command}")
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


def reflected_services(channel: grpc.Channel) -> list[str]:
    """The service names server reflection lists, as `grpcurl list` prints them."""
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    responses = stub.ServerReflectionInfo(iter([request]), timeout=CALL_TIMEOUT)
    return sorted(service.name for response in responses for service in response.list_services_response.service)


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(f"usage: {argv[0]} README.md (SECTION... | --all) HOST:PORT", file=sys.stderr)
        return 2
    readme_path, titles, address = argv[1], argv[2:-1], argv[-1]
    with open(readme_path, encoding="utf-8") as readme:
        text = readme.read()
    if titles == ["--all"]:
        titles = sections_with_examples(text)
    sections = [(title, section_commands(text, title)) for title in titles]
    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=15)
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        for title, commands in sections:
            print(f"--- README '{title}'", flush=True)
            for command in commands:
                try:
                    run(command, address, pool, channel)
                except grpc.RpcError as error:
                    print(
                        f"FAIL in '{title}': {error.code().name}: {error.details()}\n  command: {command}",
                        file=sys.stderr,
                    )
                    return 1
                except json_format.ParseError as error:
                    print(f"FAIL in '{title}': the JSON does not parse: {error}\n  command: {command}", file=sys.stderr)
                    return 1
            print(f"README '{title}': {len(commands)} grpcurl examples ran", flush=True)
    finally:
        channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
