"""``burnguard publish``: validate usage events (JSON lines, or a FOCUS CSV) and send them as envelopes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import IO, Any

import orjson

from schemas.ingest import Normalizer
from schemas.sources.focus import iter_focus_csv
from sinks.kafka_producer import UsageProducer
from streams.settings import USAGE_TOPICS, Settings


def json_lines(stream: IO[bytes]) -> Iterator[tuple[str, bytes]]:
    for n, line in enumerate(stream, 1):
        line = line.strip()
        if line:
            yield f"line {n}", line


def csv_rows(path: str) -> Iterator[tuple[str, bytes]]:
    for n, row in enumerate(iter_focus_csv(path), 2):  # line 1 is the header
        yield f"line {n}", orjson.dumps(row)


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    if settings.broker is None:
        print("error: set BURNGUARD_BROKER=kafka://host:port (see `burnguard broker`)", file=sys.stderr)
        return 2
    if args.file.endswith(".csv") and args.source != "billing":
        print("error: CSV input is FOCUS billing rows: use --source billing", file=sys.stderr)
        return 2
    normalizer = Normalizer()
    name = "<stdin>" if args.file == "-" else args.file
    stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")
    errors = 0
    with stream, UsageProducer(settings.bootstrap_servers, batch_size=args.batch_size) as producer:
        lines = csv_rows(args.file) if args.file.endswith(".csv") else json_lines(stream)
        for where, raw in lines:
            if not args.no_validate:
                _, rejects = normalizer.parse(args.source, raw)
                if rejects:
                    errors += 1
                    for rej in rejects:
                        at = where + (f", event {rej.index}" if rej.index is not None else "")
                        print(f"{name}: {at}: {rej.reason}", file=sys.stderr)
                    continue
            try:
                doc: Any = orjson.loads(raw)
            except orjson.JSONDecodeError as err:  # only reachable with --no-validate
                errors += 1
                print(f"{name}: {where}: invalid JSON: {err}", file=sys.stderr)
                continue
            for event in (doc if isinstance(doc, list) else doc.get("events", [doc]) if isinstance(doc, dict) else [doc]):
                producer.send(args.source, event)
        producer.flush()
        sent, messages = producer.sent_events, producer.sent_messages
    print(f"sent {sent} events in {messages} messages to {USAGE_TOPICS[args.source]}; "
          f"{errors} line(s) rejected")
    return 1 if errors else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("publish", help="publish usage events (validated, batched into envelopes)")
    p.add_argument("file", help="JSON-lines file (one event or envelope per line), a FOCUS .csv, or - for stdin")
    p.add_argument("--source", choices=sorted(USAGE_TOPICS), default="llm")
    p.add_argument("--batch-size", type=int, default=500, help="events per envelope")
    p.add_argument("--no-validate", action="store_true", help="send without validating first")
    p.set_defaults(func=run)
