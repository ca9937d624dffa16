"""``burnguard publish``: validate JSON-lines usage events and send them as envelopes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import IO

import orjson

from schemas.ingest import parse_message
from sinks.kafka_producer import UsageProducer
from streams.settings import USAGE_TOPICS, Settings


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    for n, line in enumerate(stream, 1):
        line = line.strip()
        if line:
            yield n, line


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    if settings.broker is None:
        print("error: set BURNGUARD_BROKER=kafka://host:port (see `burnguard broker`)", file=sys.stderr)
        return 2
    stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")
    errors = 0
    with stream, UsageProducer(settings.bootstrap_servers, batch_size=args.batch_size) as producer:
        for n, line in _lines(stream):
            if not args.no_validate:
                _, rejects = parse_message(args.source, line)
                if rejects:
                    errors += 1
                    for rej in rejects:
                        where = f"line {n}" + (f", event {rej.index}" if rej.index is not None else "")
                        print(f"{args.file}: {where}: {rej.reason}", file=sys.stderr)
                    continue
            try:
                producer.send(args.source, orjson.loads(line))
            except orjson.JSONDecodeError as err:  # only reachable with --no-validate
                errors += 1
                print(f"{args.file}: line {n}: invalid JSON: {err}", file=sys.stderr)
        producer.flush()
        sent, messages = producer.sent_events, producer.sent_messages
    print(f"sent {sent} events in {messages} messages to {USAGE_TOPICS[args.source]}; "
          f"{errors} line(s) rejected")
    return 1 if errors else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("publish", help="publish JSON-lines usage events (validated, batched)")
    p.add_argument("file", help="JSON-lines file, or - for stdin")
    p.add_argument("--source", choices=sorted(USAGE_TOPICS), default="llm")
    p.add_argument("--batch-size", type=int, default=500, help="events per envelope")
    p.add_argument("--no-validate", action="store_true", help="send without validating first")
    p.set_defaults(func=run)
