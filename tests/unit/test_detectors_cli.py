"""``burnguard detect`` CLI: score a NAB-format CSV with the same detector code; list detectors."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import pytest

from detectors.registry import DEFAULT_DETECTOR, DETECTORS
from streams.commands import detect


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="burnguard")
    detect.register(p.add_subparsers(dest="command", required=True))
    return p


def test_score_writes_one_row_per_input_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "series.csv"
    rows = [f"2015-01-01 {i // 60:02d}:{i % 60:02d}:00,{1.0 + 0.01 * (i % 7)}" for i in range(300)]
    rows[250] = rows[250].split(",")[0] + ",25.0"
    src.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    args = parser().parse_args(["detect", "score", str(src), "--detector", "seasonal_z_both"])
    assert args.func(args) == 0
    out = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert out[0] == ["timestamp", "value", "anomaly_score"]
    assert len(out) == 301
    scores = [float(r[2]) for r in out[1:]]
    assert max(range(300), key=lambda i: scores[i]) == 250
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert out[251][:2] == ["2015-01-01 04:10:00", "25.0"]


def test_unknown_detector_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "s.csv"
    src.write_text("timestamp,value\n2015-01-01 00:00:00,1\n")
    args = parser().parse_args(["detect", "score", str(src), "--detector", "nope"])
    assert args.func(args) == 2
    assert "unknown detector" in capsys.readouterr().err


def test_list_marks_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(["detect", "list"])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    named = [ln for ln in lines if ln.startswith(("* ", "  "))]
    assert {ln[2:].split()[0] for ln in named} == set(DETECTORS)
    assert [ln[2:].split()[0] for ln in named if ln.startswith("*")] == [DEFAULT_DETECTOR]


@pytest.mark.parametrize("bad, why", [("2015-01-01 00:02:00,abc", "could not convert"),
                                      ("not-a-time,1.0", "Invalid isoformat"),
                                      ("2015-01-01 00:02:00", "missing column")])
def test_a_bad_row_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str,
                                       why: str) -> None:
    src = tmp_path / "s.csv"
    src.write_text("timestamp,value\n2015-01-01 00:00:00,1\n2015-01-01 00:01:00,2\n" + bad + "\n")
    args = parser().parse_args(["detect", "score", str(src)])
    assert args.func(args) == 2
    cap = capsys.readouterr()
    assert f"{src}:4: " in cap.err and why in cap.err
    assert len(cap.out.splitlines()) == 3  # the good rows before it were written


def test_a_missing_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(["detect", "score", str(tmp_path / "missing.csv")])
    assert args.func(args) == 2
    cap = capsys.readouterr()
    assert "No such file" in cap.err and cap.out == ""
