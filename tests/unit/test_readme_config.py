"""The README's configuration table documents every setting, and nothing that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from streams.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    documented = set(re.findall(r"^\| `BURNGUARD_([A-Z0-9_]+)` \|", README.read_text(), re.M))
    settings = {name.upper() for name in Settings.model_fields}
    assert settings - documented == set(), "settings missing from the README"
    assert documented - settings == set(), "README documents settings that do not exist"
