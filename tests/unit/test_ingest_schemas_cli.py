"""``burnguard schemas export DIR`` writes one JSON Schema per accepted input format."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import orjson
import pytest

from schemas.sources import FORMATS
from streams.commands import schemas as command

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"


def build_parser() -> argparse.ArgumentParser:
    """Only this command, registered the way ``streams.cli`` registers every command."""
    parser = argparse.ArgumentParser(prog="burnguard")
    command.register(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


def test_export_writes_a_schema_per_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schemas", "export", str(tmp_path / "out")]) == 0
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    inputs = sorted(f"{src}.{fmt}.schema.json" for fmt, (src, _, _) in FORMATS.items())
    assert set(inputs) <= set(files)  # one per input format (guardrail topics' schemas are exported too)
    for name in inputs:
        schema = json.loads((tmp_path / "out" / name).read_text())
        assert schema["$schema"].startswith("https://json-schema.org/") and schema["type"] == "object"
        assert schema["properties"]
    otel = json.loads((tmp_path / "out" / "llm.otel.schema.json").read_text())
    attrs = otel["$defs"]["GenAiAttributes"]["properties"]
    assert "gen_ai.usage.cache_read.input_tokens" in attrs  # aliases, not Python names
    assert len(capsys.readouterr().out.splitlines()) == len(files)  # one line per file written


@pytest.mark.parametrize("fixture, schema_name", [
    ("native.json", "llm.native"), ("openai_chat.json", "llm.openai"), ("anthropic.json", "llm.anthropic"),
    ("litellm.json", "llm.litellm"), ("dcgm.json", "gpu.dcgm"), ("focus.json", "billing.focus")])
def test_fixture_fields_are_described_by_the_schema(tmp_path: Path, fixture: str, schema_name: str) -> None:
    main(["schemas", "export", str(tmp_path)])
    schema = json.loads((tmp_path / f"{schema_name}.schema.json").read_text())
    doc = orjson.loads((PAYLOADS / fixture).read_bytes())
    assert set(schema.get("required", [])) <= set(doc)
    assert set(schema["properties"]) & set(doc)


def test_schemas_subcommand_is_registered() -> None:
    args = build_parser().parse_args(["schemas", "list"])
    assert args.func(args) == 0
