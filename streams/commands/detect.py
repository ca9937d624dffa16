"""``burnguard detect``: run the service's detectors offline.

``burnguard detect score FILE.csv [--detector NAME]`` reads a NAB-format CSV
(``timestamp,value``) and writes ``timestamp,value,anomaly_score`` to stdout, feeding each
row to the detector exactly as the stream does (``score_one`` then ``learn_one``).
``burnguard detect list`` names the registered detectors and marks the default.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import TextIO

from detectors.registry import DEFAULT_DETECTOR, DETECTORS, make_detector


def parse_time(s: str) -> datetime:
    """ISO-8601 or epoch seconds; naive times are UTC.

    >>> parse_time("2014-04-01 00:05:00").isoformat()
    '2014-04-01T00:05:00+00:00'
    >>> parse_time("0").year
    1970
    """
    s = s.strip()
    try:
        t = datetime.fromtimestamp(float(s), tz=timezone.utc)
    except ValueError:
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def score_rows(rows: Iterable[tuple[str, str]], detector: str | None = None) -> Iterator[tuple[str, str, float]]:
    """Yield ``(timestamp, value, score)`` per row, scoring before learning.

    >>> rows = [(f"2026-11-20 00:{i:02d}:00", str(1.0 + (i % 3) / 10)) for i in range(59)]
    >>> out = list(score_rows(rows + [("2026-11-20 00:59:00", "9.0")], "ew_zscore"))
    >>> out[0][2], out[-1][2] > 0.9999
    (0.0, True)
    """
    det = make_detector(detector)
    for ts, raw in rows:
        t, x = parse_time(ts), float(raw)
        s = det.score_one(x, t)
        det.learn_one(x, t)
        yield ts, raw, s


def _read(fh: TextIO, name: str) -> Iterator[tuple[str, str]]:
    """Rows as ``(timestamp, value)``; a row that cannot be read raises ``ValueError`` naming file and line."""
    reader = csv.reader(fh)
    header = next(reader, None)
    if header is None:
        return
    cols = [c.strip().lower() for c in header]
    it, iv = (cols.index("timestamp"), cols.index("value")) if {"timestamp", "value"} <= set(cols) else (0, 1)
    for row in reader:
        if not row:
            continue
        try:
            ts, raw = row[it], row[iv]
            parse_time(ts), float(raw)
        except (IndexError, ValueError) as err:
            what = "missing column" if isinstance(err, IndexError) else str(err)
            raise ValueError(f"{name}:{reader.line_num}: {what} in row {row!r}") from None
        yield ts, raw


def cmd_score(args: argparse.Namespace) -> int:
    if args.detector and args.detector not in DETECTORS:
        print(f"unknown detector {args.detector!r}; known: {', '.join(sorted(DETECTORS))}", file=sys.stderr)
        return 2
    out = csv.writer(sys.stdout, lineterminator="\n")
    try:
        with (sys.stdin if args.file == "-" else open(args.file, newline="")) as fh:
            name = "<stdin>" if args.file == "-" else args.file
            out.writerow(["timestamp", "value", "anomaly_score"])
            for ts, raw, s in score_rows(_read(fh, name), args.detector):
                out.writerow([ts, raw, repr(s)])
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError) as err:
        sys.stdout.flush()
        print(f"burnguard detect score: {err}", file=sys.stderr)
        return 2
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for name in sorted(DETECTORS):
        factory = DETECTORS[name]
        text = (None if isinstance(factory, type) else factory.__doc__) or sys.modules[factory.__module__].__doc__
        doc = (text or "").strip().splitlines()
        mark = "*" if name == DEFAULT_DETECTOR else " "
        print(f"{mark} {name:18s} {doc[0] if doc else ''}")
    print("(* = default)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="score a CSV with a detector; list detectors")
    dsub = p.add_subparsers(dest="detect_command", required=True, metavar="SUBCOMMAND")
    s = dsub.add_parser("score", help="write timestamp,value,anomaly_score for a timestamp,value CSV")
    s.add_argument("file", metavar="FILE.csv", help="NAB-format CSV (timestamp,value); - for stdin")
    s.add_argument("--detector", default=None, help=f"detector name (default {DEFAULT_DETECTOR})")
    s.set_defaults(func=cmd_score)
    ls = dsub.add_parser("list", help="registered detectors (* marks the default)")
    ls.set_defaults(func=cmd_list)
