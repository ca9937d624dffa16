"""``burnguard deadletter list|replay|purge``: inspect rejected input, re-publish it after a fix, purge old ones."""

from __future__ import annotations

import argparse
import sys

from kafka import KafkaProducer
from rich.console import Console
from rich.table import Table

from schemas.deadletter import DeadLetter
from schemas.text import safe_terminal
from sinks.store import AlertStore
from streams.state.applied import replay_origin
from streams.settings import Settings


def dead_letters_table(rows: list[tuple[int, DeadLetter]], limit: int) -> Table:
    """Rows as a table; reason, topic and preview are producer text, shown as text (no markup, no controls)."""
    table = Table(title=f"dead letters (newest {limit})")
    for col in ("id", "received (UTC)", "from", "index", "reason", "bytes"):
        table.add_column(col)
    for id_, dl in rows:
        where = safe_terminal(f"{dl.topic}[{dl.partition}]@{dl.offset}")
        preview = dl.original_bytes()[:60].decode("utf-8", "replace")
        table.add_row(str(id_), f"{dl.received_at:%Y-%m-%d %H:%M:%S}", where,
                      "" if dl.index is None else str(dl.index), safe_terminal(dl.reason), safe_terminal(preview))
    return table


def run_list(args: argparse.Namespace) -> int:
    store = AlertStore(Settings().database_url)
    try:
        rows = store.dead_letter_rows(limit=args.limit, pending_only=args.pending, topic=args.topic)
    finally:
        store.close()
    Console().print(dead_letters_table(rows, args.limit))
    return 0


def run_replay(args: argparse.Namespace) -> int:
    settings = Settings()
    if settings.broker is None:
        print("error: set BURNGUARD_BROKER=kafka://host:port", file=sys.stderr)
        return 2
    store = AlertStore(settings.database_url)
    try:
        rows = store.dead_letter_rows(limit=args.limit, pending_only=True, topic=args.topic,
                                      reason_contains=args.reason)
        if args.id:
            rows = [(i, dl) for i, dl in rows if i in set(args.id)]
        rows.reverse()  # oldest first: the original order
        producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all",
                                 **settings.kafka_python_config())  # SASL/TLS when configured
        try:
            # back to its original partition with its original key, so order and routing are kept; an
            # internal message gets an origin of its own (its own was superseded: it would be skipped)
            sent, skipped = [], 0
            for id_, dl in rows:
                value = replay_origin(dl.topic, dl.original_bytes(), dl.fingerprint)
                if value is None:
                    skipped += 1
                    print(f"dead letter {id_} ({safe_terminal(dl.topic)}): cannot be replayed (only usage and "
                          "costs/budget/GPU messages can); left pending", file=sys.stderr)
                    continue
                sent.append((id_, producer.send(dl.topic, value, key=dl.original_key(), partition=dl.partition)))
            producer.flush(timeout=30)
            done, failed = [], 0
            for id_, future in sent:
                try:
                    future.get(timeout=10)
                    done.append(id_)
                except Exception as err:  # noqa: BLE001 - reported, left pending for the next replay
                    failed += 1
                    print(f"dead letter {id_}: not re-published: {err}", file=sys.stderr)
        finally:
            producer.close()
        store.mark_replayed(done)
    finally:
        store.close()
    print(f"replayed {len(done)} dead letter(s); any that still fail come back as new dead letters")
    return 1 if failed or skipped else 0


def run_purge(args: argparse.Namespace) -> int:
    settings = Settings()
    days = args.older_than_days if args.older_than_days is not None else settings.dead_letter_retention_days
    if days <= 0:
        print("error: --older-than-days must be > 0", file=sys.stderr)
        return 2
    store = AlertStore(settings.database_url)
    try:
        n = store.purge_dead_letters(days)
    finally:
        store.close()
    print(f"purged {n} dead letter(s) older than {days:g} day(s)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("deadletter", help="list or replay rejected input")
    dsub = p.add_subparsers(dest="deadletter_command", required=True)
    ls = dsub.add_parser("list", help="show dead letters, newest first")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--topic", default=None, help="only from this source topic")
    ls.add_argument("--pending", action="store_true", help="only ones not replayed yet")
    ls.set_defaults(func=run_list)
    rp = dsub.add_parser("replay", help="re-publish pending dead letters to their original topic")
    rp.add_argument("--id", type=int, action="append", help="only this id (repeatable)")
    rp.add_argument("--topic", default=None, help="only from this source topic")
    rp.add_argument("--reason", default=None, help="only those whose reason contains this text")
    rp.add_argument("--limit", type=int, default=10_000)
    rp.set_defaults(func=run_replay)
    pg = dsub.add_parser("purge", help="delete dead letters older than the retention (BURNGUARD_DEAD_LETTER_RETENTION_DAYS)")
    pg.add_argument("--older-than-days", type=float, default=None, help="default: the retention setting")
    pg.set_defaults(func=run_purge)
