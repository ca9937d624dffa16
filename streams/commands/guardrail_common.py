"""Shared by the guardrail CLI commands: open the store (migrated), and turn DB trouble into one line."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from guardrails.approvers import Approvers, ConfigError
from sinks.guardrail_store import GuardrailStore
from sinks.migrations import upgrade
from streams.settings import Settings


def shown_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable BURNGUARD_DATABASE_URL)"


@contextmanager
def open_store() -> Iterator[GuardrailStore]:
    """The store at BURNGUARD_DATABASE_URL, upgraded to the newest schema."""
    url = Settings().database_url
    upgrade(url)
    store = GuardrailStore(url)
    try:
        yield store
    finally:
        store.close()


def load_approvers() -> Approvers:
    return Approvers.load(Settings().approvers)


def guarded(fn: Callable[[], int]) -> int:
    """Run ``fn``; a bad config file or an unreachable database is one line on stderr, exit 2."""
    try:
        return fn()
    except ConfigError as err:
        for line in err.errors:
            print(line, file=sys.stderr)
        return 2
    except OperationalError as err:
        reason = str(err.orig).strip().splitlines()[0] if err.orig is not None else type(err).__name__
        print(f"error: cannot use the database {shown_url(Settings().database_url)}: {reason}", file=sys.stderr)
        return 2
    except (ArgumentError, SQLAlchemyError) as err:
        print(f"error: database {shown_url(Settings().database_url)}: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
