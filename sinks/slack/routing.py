"""Which Slack channel an incident goes to: a routing file, first matching route wins.

The file (``BURNGUARD_SLACK_ROUTING``)::

    # burnguard Slack routing: the first route that matches an incident wins.
    default_channel: C0123ONCALL       # optional; else BURNGUARD_SLACK_DEFAULT_CHANNEL
    routes:
      - team: ads                      # exact team, or a glob (ads-*, *); omitted = any team
        severity: [critical]           # any of info, warning, critical; omitted = any severity
        channel: C0456ADSPAGE          # a channel id (C..., G...) or #name
      - team: ads
        channel: "#ads-alerts"

Channel ids are better than names: the outbox's restart check (conversations.history)
needs the id. A bad file fails at load with file, line and field.

>>> r = load_routing_text('''
... default_channel: "#burnguard"
... routes:
...   - {team: ads, severity: [critical], channel: C0ADSPAGE}
...   - {team: "ads*", channel: "#ads-alerts"}
... ''')
>>> r.channel_for("ads", "critical"), r.channel_for("ads", "warning"), r.channel_for("ads-ml", "info")
('C0ADSPAGE', '#ads-alerts', '#ads-alerts')
>>> r.channel_for("search", "critical")
'#burnguard'
>>> load_routing_text("routes:\\n  - {team: ads, channel: 'not a channel'}\\n")
Traceback (most recent call last):
...
schemas.yamlconf.ConfigError: <routing>:2: routes.0.channel: Value error, channel must be an id (C0123ABCD) or #name, not 'not a channel'
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator

from schemas.alert import Severity
from schemas.yamlconf import load_yaml_file, load_yaml_text

_CHANNEL = re.compile(r"^(#[a-z0-9][a-z0-9._-]{0,79}|[CGD][A-Z0-9]{6,20})$")


def valid_channel(v: str) -> str:
    if not _CHANNEL.match(v):
        raise ValueError(f"channel must be an id (C0123ABCD) or #name, not {v!r}")
    return v


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team: str | None = None
    severity: list[Severity] | None = None
    channel: str

    @field_validator("channel")
    @classmethod
    def _channel(cls, v: str) -> str:
        return valid_channel(v)

    def matches(self, team: str, severity: str) -> bool:
        if self.team is not None and not fnmatch.fnmatchcase(team, self.team):
            return False
        return self.severity is None or severity in self.severity


class Routing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_channel: str | None = None
    routes: list[Route] = []

    @field_validator("default_channel")
    @classmethod
    def _default(cls, v: str | None) -> str | None:
        return None if v is None else valid_channel(v)

    def channel_for(self, team: str, severity: str, fallback: str | None = None) -> str | None:
        """The first matching route's channel, else the file's default, else ``fallback``."""
        for r in self.routes:
            if r.matches(team, severity):
                return r.channel
        return self.default_channel or fallback


def load_routing_text(text: str, source: str = "<routing>") -> Routing:
    return load_yaml_text(text, Routing, source=source)


def load_routing(path: str | Path | None, default_channel: str | None = None) -> Routing:
    """The routing file at ``path``; without one, everything goes to ``default_channel``."""
    if path is None:
        return Routing(default_channel=valid_channel(default_channel) if default_channel else None)
    routing = load_yaml_file(path, Routing)
    if routing.default_channel is None and default_channel:
        routing.default_channel = valid_channel(default_channel)
    return routing
