"""The embedded broker is a real Kafka-protocol server, and it never outlives its owner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from streams.embedded_broker import EmbeddedBroker, port_open


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it has no cmdline
    try:
        with open(f"/proc/{pid}/status") as f:
            return "State:\tZ" not in f.read()
    except FileNotFoundError:
        return False


def test_context_manager_stops_subprocess_and_frees_port() -> None:
    with EmbeddedBroker() as broker:
        assert broker.process is not None
        pid, port = broker.process.pid, broker.port
        assert port_open("127.0.0.1", port)
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
        meta = producer.send("teardown-check", b"x").get(timeout=10)
        producer.close()
        assert meta.topic == "teardown-check"
    assert not _alive(pid)
    assert not port_open("127.0.0.1", port)
    # the port can be bound again at once
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_teardown_on_exception_inside_block() -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with EmbeddedBroker() as broker:
            pid, port = broker.process.pid, broker.port
            raise RuntimeError("boom")
    assert not _alive(pid)
    assert not port_open("127.0.0.1", port)


def test_broker_command_stops_tansu_on_ctrl_c(tmp_path) -> None:
    from streams.embedded_broker import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "broker", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in line, line
        tansu = [p for p in _children(proc.pid) if _alive(p)]
        assert tansu, "tansu subprocess not found"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in tansu) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in tansu)
    assert not port_open("127.0.0.1", port)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]
