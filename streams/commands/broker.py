"""``burnguard broker``: run the embedded Tansu broker in the foreground."""

from __future__ import annotations

import argparse
import signal
import threading

from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.settings import ALL_TOPICS, Settings


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with EmbeddedBroker(port=args.port) as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, settings.partitions)
        print(f"embedded broker ready: {broker.bootstrap}", flush=True)
        print(f"  export BURNGUARD_BROKER={broker.url}", flush=True)
        stop.wait()
    print("broker stopped", flush=True)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("broker", help="run the embedded Kafka-protocol broker (Tansu) in the foreground")
    p.add_argument("--port", type=int, default=None, help="loopback port (default: a free one)")
    p.set_defaults(func=run)
