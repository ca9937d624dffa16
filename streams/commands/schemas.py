"""``burnguard schemas``: the JSON Schemas of every accepted input format.

``burnguard schemas export DIR`` writes one ``<source>.<format>.schema.json`` per format;
``burnguard schemas list`` prints the formats and how each is recognised.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from schemas.decision import decision_json_schema
from schemas.overrun import overrun_json_schema
from schemas.sources import FORMATS, json_schemas


def export(args: argparse.Namespace) -> int:
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    contracts = {"guardrail.overruns.schema.json": overrun_json_schema(),
                 "guardrail.decisions.schema.json": decision_json_schema()}
    for name, schema in {**json_schemas(), **contracts}.items():
        (out / name).write_text(json.dumps(schema, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        print(out / name)
    return 0


def list_formats(args: argparse.Namespace) -> int:
    for fmt, (source, model, _) in FORMATS.items():
        print(f"usage.{source:<8} {fmt:<10} {model.__module__}.{model.__name__}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schemas", help="JSON Schemas of the accepted input formats")
    nested = p.add_subparsers(dest="schemas_command", required=True, metavar="ACTION")
    e = nested.add_parser("export", help="write one JSON Schema file per input format into DIR")
    e.add_argument("dir", metavar="DIR")
    e.set_defaults(func=export)
    ls = nested.add_parser("list", help="list the input formats")
    ls.set_defaults(func=list_formats)
    p.set_defaults(func=lambda args: p.print_help() or 2)
