"""``burnguard publish``: validate usage events (JSON lines, or a FOCUS CSV), then send them as envelopes.

Every line is validated before anything is sent, and every bad line is reported as
``FILE: line N[, event I]: reason``. Then the valid lines are sent, as envelopes of at most ``--batch-size``
events and :data:`MAX_ENVELOPE_BYTES` bytes (a valid line as it was written); a broker that cannot be reached
is one sentence naming its address and ``BURNGUARD_BROKER`` (exit 3), never a traceback.
``--check`` validates only: it needs no broker and sends nothing.

Exit status: 0 all sent (or all valid with ``--check``), 1 some lines rejected, 2 usage or
configuration error, 3 the broker could not be reached or did not take every event.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
from pydantic import ValidationError

from schemas.fast_litellm import LiteLlmChecker, check_litellm
from schemas.fast_native import Resolver, decode_native
from schemas.ingest import Normalizer, split_envelope
from schemas.sources.focus import iter_focus_csv
from schemas.text import plain_text
from streams.settings import USAGE_TOPICS, Settings

EXIT_REJECTED, EXIT_USAGE, EXIT_BROKER = 1, 2, 3
#: Largest envelope sent (bytes): under kafka-python's default ``max_request_size`` (1 MiB) with room for the
#: record's overhead, and far under the worker's ``MAX_MESSAGE_BYTES``. An event larger than this goes alone.
MAX_ENVELOPE_BYTES = 1_000_000


def json_lines(stream: IO[bytes]) -> Iterator[tuple[str, bytes]]:
    for n, line in enumerate(stream, 1):
        line = line.strip()
        if line:
            yield f"line {n}", line


def csv_rows(path: str) -> Iterator[tuple[str, bytes]]:
    for n, row in enumerate(iter_focus_csv(path), 2):  # line 1 is the header
        yield f"line {n}", orjson.dumps(row)


@dataclass
class Checked:
    """The outcome of the validation pass: events ready to send (each one event's JSON: a valid line as it was
    written, or an event of the reference path encoded by orjson), and how many lines were bad."""

    events: list[bytes] = field(default_factory=list)
    lines: int = 0
    bad_lines: int = 0


def validate(name: str, lines: Iterator[tuple[str, bytes]], source: str, *, full: bool = True,
             err: IO[str] | None = None, fast: bool = True) -> Checked:
    """Read every line; report each bad one (``name: line N[, event I]: reason``) to ``err``.

    With ``full`` each line goes through the same :class:`Normalizer` the service runs; without
    it (``--no-validate``) a line only has to be JSON. ``fast``: a line holding one native event or one LiteLLM
    payload is first checked by a fast decoder that takes it only where the Normalizer would (the worker's, for
    native events; :func:`schemas.fast_litellm.check_litellm` for LiteLLM payloads) and then kept as written;
    every other line, and every line that decoder does not take, goes to the Normalizer, which decides (and
    gives the reasons). ``False``: every line by the Normalizer.
    """
    err = err if err is not None else sys.stderr
    normalizer = Normalizer() if full else None
    # The fast decoders say the same as the Normalizer (tests/unit/test_normalize_fast.py, test_publish_validate.py,
    # test_publish_litellm.py), and a valid line is sent as it was written (its bytes: not decoded and encoded
    # again). A line over the Normalizer's message size limit is its to judge.
    fast = fast and normalizer is not None and source == "llm"
    resolver = Resolver(normalizer.catalog, normalizer.rules, allocate=False) if fast else None
    checker = LiteLlmChecker(normalizer.catalog, normalizer.rules) if fast else None
    limit = normalizer.max_message_bytes if normalizer is not None else 0
    now, skew = time.time(), normalizer.max_future_skew.total_seconds() if normalizer is not None else 0.0
    def native_lane(raw: bytes) -> bool:
        return decode_native(raw, resolver, now=now, max_future_skew_s=skew, one=True) is not None  # type: ignore[arg-type]

    def litellm_lane(raw: bytes) -> bool:
        return check_litellm(raw, checker, now=now, max_future_skew_s=skew, one=True)  # type: ignore[arg-type]

    # Either lane takes a line only where the Normalizer would, so their order changes no verdict: the one that took
    # the last line is tried first (a file is mostly of one kind; the other lane refuses it at its first key).
    first, second = native_lane, litellm_lane
    out = Checked()
    for where, raw in lines:
        out.lines += 1
        if fast and raw[:1] == b"{" and len(raw) <= limit:
            if first(raw):
                out.events.append(raw)
                continue
            if second(raw):
                first, second = second, first
                out.events.append(raw)
                continue
        if normalizer is not None:
            _, rejects = normalizer.parse(source, raw)
            if rejects:
                out.bad_lines += 1
                for rej in rejects:
                    at = where + (f", event {rej.index}" if rej.index is not None else "")
                    print(plain_text(f"{name}: {at}: {rej.reason}", keep_newlines=False), file=err)
                continue
        try:
            doc: Any = orjson.loads(raw)
        except orjson.JSONDecodeError as e:  # only reachable with --no-validate
            out.bad_lines += 1
            print(f"{name}: {where}: invalid JSON: {e}", file=err)
            continue
        items = split_envelope(doc)
        if items is None:
            items = [doc]
        elif isinstance(doc, dict) and isinstance(doc.get("events"), list) and isinstance(doc.get("format"), str):
            # {"format": "openai", "events": [...]}: the envelope's format goes with each event re-batched
            items = [dict(e, format=doc["format"]) if isinstance(e, dict) and "format" not in e else e for e in items]
        out.events += map(orjson.dumps, items)
    return out


def envelopes(events: list[bytes], batch_size: int, max_bytes: int = MAX_ENVELOPE_BYTES) -> Iterator[tuple[bytes, int]]:
    """``events`` (each one event's JSON) in order as envelopes: (a JSON array, its number of events), each of at
    most ``batch_size`` events and ``max_bytes`` bytes (an event larger than that alone).

    >>> list(envelopes([b'{"a":1}', b'2', b'[3]', b'"four"'], 3)), list(envelopes([b'1', b'22', b'3'], 9, 5))
    ([(b'[{"a":1},2,[3]]', 3), (b'["four"]', 1)], [(b'[1]', 1), (b'[22]', 1), (b'[3]', 1)])
    """
    start, size = 0, 2
    for i, ev in enumerate(events):
        if i > start and (i - start >= batch_size or size + len(ev) + 1 > max_bytes):
            yield b"[" + b",".join(events[start:i]) + b"]", i - start
            start, size = i, 2
        size += len(ev) + 1
    if start < len(events):
        yield b"[" + b",".join(events[start:]) + b"]", len(events) - start


def _broker_error(settings: Settings, what: str) -> int:
    print(f"error: {what} the Kafka broker at {settings.bootstrap_servers} "
          f"(BURNGUARD_BROKER={settings.broker}); check the address and that the broker is running.",
          file=sys.stderr)
    return EXIT_BROKER


def send(settings: Settings, source: str, events: list[bytes], *, batch_size: int,
         connect_timeout: float) -> tuple[int, int] | int:
    """Send ``events`` (each one event's JSON) as envelopes (:func:`envelopes`); (events, messages) sent, or an
    exit status after printing one sentence."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from sinks.kafka_producer import UsageProducer

    kafka_config: dict[str, Any] = settings.kafka_python_config()  # SASL/TLS when configured
    if "bootstrap_timeout_ms" in KafkaProducer.DEFAULT_CONFIG:  # kafka-python >= 3
        kafka_config["bootstrap_timeout_ms"] = int(connect_timeout * 1000)
    kafka_config.setdefault("max_block_ms", int(connect_timeout * 1000))
    try:
        producer = UsageProducer(settings.bootstrap_servers, batch_size=batch_size, **kafka_config)
    except (KafkaError, OSError):
        return _broker_error(settings, "cannot reach")
    try:
        for body, n in envelopes(events, batch_size):
            producer.send_envelope(source, body, n)
        producer.flush(timeout=connect_timeout + 30)
    except (KafkaError, OSError, RuntimeError):
        sent = producer.sent_events
        producer.abort()
        return _broker_error(settings, f"sent {sent} of {len(events)} events, then lost")
    producer.close(timeout=10)
    return producer.sent_events, producer.sent_messages


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings()
    except ValidationError as e:
        first = e.errors()[0]
        print(f"error: setting {'.'.join(str(p) for p in first['loc'])}: {first['msg']}", file=sys.stderr)
        return EXIT_USAGE
    is_csv = args.file.endswith(".csv")
    if is_csv and args.source != "billing":
        print("error: CSV input is FOCUS billing rows: use --source billing", file=sys.stderr)
        return EXIT_USAGE
    name = "<stdin>" if args.file == "-" else args.file
    try:
        if is_csv:
            checked = validate(name, csv_rows(args.file), args.source, full=not args.no_validate)
        else:
            with (sys.stdin.buffer if args.file == "-" else open(args.file, "rb")) as stream:
                checked = validate(name, json_lines(stream), args.source, full=not args.no_validate)
    except OSError as e:
        print(f"error: cannot read {name}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    summary = f"{checked.bad_lines} line(s) rejected"
    if args.check:
        print(f"checked {checked.lines} line(s): {len(checked.events)} valid events, {summary}; nothing sent")
        return EXIT_REJECTED if checked.bad_lines else 0
    if settings.broker is None:
        print(f"{summary}; error: no broker configured: set BURNGUARD_BROKER=kafka://host:port "
              f"(see `burnguard broker`), or use --check to validate only", file=sys.stderr)
        return EXIT_USAGE
    result = send(settings, args.source, checked.events, batch_size=args.batch_size,
                  connect_timeout=args.connect_timeout) if checked.events else (0, 0)
    if isinstance(result, int):
        print(f"nothing more was sent; {summary}", file=sys.stderr)
        return result
    sent, messages = result
    print(f"sent {sent} events in {messages} messages to {USAGE_TOPICS[args.source]}; {summary}")
    return EXIT_REJECTED if checked.bad_lines else 0


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (a usage error otherwise, never a traceback).

    >>> positive_int("500")
    500
    >>> positive_int("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be a whole number of at least 1, not '0'
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("publish", help="validate, then publish usage events (batched into envelopes)")
    p.add_argument("file", help="JSON-lines file (one event or envelope per line), a FOCUS .csv, or - for stdin")
    p.add_argument("--source", choices=sorted(USAGE_TOPICS), default="llm")
    p.add_argument("--batch-size", type=positive_int, default=500,
                   help=f"events per envelope, at most (and at most {MAX_ENVELOPE_BYTES:,} bytes)")
    p.add_argument("--check", action="store_true", help="validate every line and report, send nothing")
    p.add_argument("--no-validate", action="store_true", help="send without validating first (JSON only)")
    p.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to wait for the broker")
    p.set_defaults(func=run)
