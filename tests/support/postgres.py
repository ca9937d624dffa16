"""Whether the tests' PostgreSQL is up (127.0.0.1:5432): the conftest's database fixture and the fault tests ask."""

from __future__ import annotations

import socket


def postgres_reachable() -> bool:
    """Whether something accepts connections on 127.0.0.1:5432 (within half a second)."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False
