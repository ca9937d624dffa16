"""``burnguard worker``: run the Faust worker (embedded broker when ``BURNGUARD_BROKER`` is unset)."""

from __future__ import annotations

import argparse
import os
import sys

from sqlalchemy.exc import InterfaceError, OperationalError

from schemas.yamlconf import ConfigError
from sinks.migrations import upgrade
from sinks.retry import is_transient
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.settings import ALL_TOPICS, Settings


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    broker = None
    if settings.broker is None:
        broker = EmbeddedBroker().start()
        os.environ["BURNGUARD_BROKER"] = broker.url
        print(f"no BURNGUARD_BROKER set: started the embedded broker at {broker.bootstrap}", flush=True)
        settings = Settings()
    create_topics(settings.bootstrap_servers, ALL_TOPICS, settings.partitions,
                  client_config=settings.kafka_python_config())
    from streams.agents.guardrails import load_guardrails
    from streams.app import app, load_budgets, load_normalizer  # imported after the broker URL is known

    try:
        load_normalizer()  # fail now, with file/line/field, on a bad price catalog or allocation rules file
        load_budgets()  # ... on a bad budgets file
        load_guardrails()  # ... and on a bad policy or approvers file
    except ConfigError as err:
        print(f"burnguard worker: {err}", file=sys.stderr)
        if broker is not None:
            broker.stop()
        return 2
    try:
        upgrade(settings.database_url)  # the store's schema (Alembic), before any agent writes
    except (OperationalError, InterfaceError) as err:
        if not is_transient(err):
            raise
        # the database is down: the agents' writes wait and retry, and decide_overruns upgrades it when it is back
        print(f"burnguard worker: database unavailable ({type(err).__name__}); its writes wait for it",
              file=sys.stderr, flush=True)

    sys.argv = ["burnguard", "worker", "--loglevel", args.loglevel,
                *(["--without-web"] if args.without_web else [])]
    try:
        app.main()  # Faust's own CLI: signal handling, logging, graceful shutdown
    except SystemExit as exit_:
        return int(exit_.code or 0)
    finally:
        if broker is not None:
            broker.stop()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="run the stream processor (Faust worker)")
    p.add_argument("--loglevel", default="warning", choices=["debug", "info", "warning", "error"])
    p.add_argument("--without-web", action="store_true", help="do not start the web server")
    p.set_defaults(func=run)
