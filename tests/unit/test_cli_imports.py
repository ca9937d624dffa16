"""``burnguard COMMAND`` imports only that command's module: ``burnguard publish`` starts in a fraction of a second
instead of importing the worker, the detectors (scipy) and Faust first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from streams.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[2]
LINE = b'{"timestamp": "2026-01-05T10:00:00Z", "model": "gpt-4o", "input_tokens": 10}'


def commands(parser: object) -> list[str]:
    (sub,) = [a for a in parser._actions if a.dest == "command"]  # type: ignore[attr-defined]
    return sorted(sub.choices)


def test_one_command_or_all() -> None:
    everything = commands(build_parser())
    assert set(COMMANDS) <= set(everything) and "approve" in everything  # modules register more than their own
    assert commands(build_parser("publish")) == ["publish"]
    assert commands(build_parser("approve")) == everything  # not a module's name: every command
    assert commands(build_parser("--help")) == everything


def test_publish_imports_only_its_own_command() -> None:
    """``burnguard publish`` builds only its own parser: none of the worker's, the detectors' (scipy) or Faust."""
    code = ("import sys; from streams.cli import main; main(['publish', '--check', '-']); "
            "print(sorted(m for m in ('faust', 'scipy', 'river', 'sqlalchemy', 'streams.commands.worker') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], input=LINE, capture_output=True, cwd=ROOT,
                          timeout=60, check=False)
    assert done.stdout.decode().splitlines() == [
        "checked 1 line(s): 1 valid events, 0 line(s) rejected; nothing sent", "[]"], done.stderr
