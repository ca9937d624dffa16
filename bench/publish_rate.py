"""``burnguard publish`` from a file: lines/s of LiteLLM standard-logging payloads through the real CLI.

    python -m bench.publish_rate [--lines 100000]

Writes ``--lines`` LiteLLM payloads (``bench.workload``'s ~1.3 KB shape, one JSON object per line, event
times spread over the last seconds) to a file, then times, as a user runs them, two subprocesses of the
installed CLI (``python -m streams.cli``, the ``burnguard`` entry point; interpreter start-up and imports
included):

- ``burnguard publish --source llm --check FILE``: reading and validating every line, nothing sent;
- ``burnguard publish --source llm FILE`` against a fresh embedded broker: validate, then send as envelopes.

lines/s = lines ÷ the command's wall time. The baseline is the raw aiokafka consumer decoding the JSON of
what ``publish`` wrote (the same baseline as every other row); it also checks that every line arrived. Also
printed, measured in the same run: ``orjson.loads`` of every line of the file in this process (reading and parsing
alone, no start-up: the least any validating reader does).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.throughput import baseline
from bench.workload import Workload
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.settings import ALL_TOPICS

Log = Callable[[str], None]

TARGET_LINES_S = 100_000


@dataclass
class PublishResult:
    lines: int
    file_bytes: int = 0
    check_lines_s: float = 0.0
    publish_lines_s: float = 0.0
    baseline: float = 0.0
    parse_lines_s: float = 0.0  # orjson.loads of every line, in-process
    output: str = ""


def write_file(path: Path, lines: int, partitions: int = 4) -> int:
    """``lines`` LiteLLM payloads, one per line, into ``path``; bytes written."""
    w = Workload(shape="litellm", events=lines, batch=1, keys=50_000, partitions=partitions,
                 span_s=max(1.0, lines / 150_000))
    per_partition = w.messages()
    with path.open("wb") as f:
        for i in range(max(len(m) for m in per_partition)):  # interleaved back into event-time order
            for values in per_partition:
                if i < len(values):
                    f.write(values[i] + b"\n")
    return path.stat().st_size


def parse_rate(path: Path) -> float:
    """Lines/s of reading ``path`` and ``orjson.loads`` of each line, in this process."""
    import orjson

    t, n = time.perf_counter(), 0
    with path.open("rb") as f:
        for line in f:
            line = line.strip()
            if line:
                orjson.loads(line)
                n += 1
    return n / (time.perf_counter() - t)


def timed_cli(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "streams.cli", *args], env=env, capture_output=True, text=True,
                          check=False)
    elapsed = time.perf_counter() - t
    if proc.returncode:
        raise RuntimeError(f"burnguard {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout.strip()


def measure(lines: int, partitions: int = 4, workdir: Path | None = None, log: Log = print) -> PublishResult:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="burnguard-publish-"))
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "litellm.jsonl"
    res = PublishResult(lines)
    log(f"[publish] writing {lines:,} LiteLLM payloads to {path} ...")
    res.file_bytes = write_file(path, lines, partitions)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BURNGUARD_")}
    res.parse_lines_s = parse_rate(path)
    elapsed, _ = timed_cli(["publish", "--source", "llm", "--check", str(path)], env)
    res.check_lines_s = lines / elapsed
    with EmbeddedBroker(log_path=workdir / "broker.log") as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=partitions)
        elapsed, res.output = timed_cli(["publish", "--source", "llm", str(path)],
                                        {**env, "BURNGUARD_BROKER": broker.url})
        res.publish_lines_s = lines / elapsed
        res.baseline = asyncio.run(baseline(broker.bootstrap, partitions, lines))
    log(f"[publish] --check {res.check_lines_s:,.0f} lines/s; publish {res.publish_lines_s:,.0f} lines/s "
        f"({res.output}); baseline {res.baseline:,.0f} events/s; orjson.loads of each line {res.parse_lines_s:,.0f}/s")
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.publish_rate", description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=100_000)
    args = ap.parse_args(argv)
    res = measure(args.lines)
    print(f"burnguard publish --check: {res.check_lines_s:,.0f} lines/s; burnguard publish: "
          f"{res.publish_lines_s:,.0f} lines/s (target >= {TARGET_LINES_S:,}); raw consumer of what it wrote: "
          f"{res.baseline:,.0f} events/s; orjson.loads of every line in-process: {res.parse_lines_s:,.0f} lines/s "
          f"(publish {res.publish_lines_s / res.parse_lines_s:.3f}x, --check {res.check_lines_s / res.parse_lines_s:.3f}x)")


if __name__ == "__main__":
    main()
