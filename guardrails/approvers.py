"""Approver groups from YAML: members (Slack user ids, Slack user-group ids and/or names), how much each may
approve, escalation chain.

A member may be a Slack user group (``S...``): its users are listed under ``slack_usergroups`` in the same
file (membership from config: nothing asks Slack), and each of them may approve up to that entry's limit.
A user's own entry in a group wins over their user groups' entries there (a way to give one person less);
among several user-group entries, the highest limit counts.

>>> a = Approvers.from_yaml_text('''
... groups:
...   search-leads:
...     max_usd: 1000
...     members: [U01ALICE, {name: bob, max_usd: 200}]
...     next: finance
...   finance:
...     max_usd: unlimited
...     members: [{slack: U02CARL, name: carl}]
... ''')
>>> a.authorise("U01ALICE", "search-leads", 900.0) is None, a.authorise("bob", "search-leads", 500.0)
(True, 'bob may approve at most 200 USD in search-leads; this request is 500 USD')
>>> a.authorise("carl", "search-leads", 10.0)
'carl is not a member of approver group search-leads'
>>> a.authorise("carl", "finance", 1e9) is None, a.next_group("search-leads"), a.next_group("finance")
(True, 'finance', None)
>>> g = Approvers.from_yaml_text('''
... slack_usergroups: {S0FINOPS: [U01ALICE, U02CARL]}
... groups:
...   finops: {max_usd: 5000, members: [S0FINOPS, {slack: U02CARL, max_usd: 50}]}
... ''')
>>> g.limit("U01ALICE", "finops"), g.limit("U02CARL", "finops"), g.authorise("U03DAN", "finops", 1.0)
(5000.0, 50.0, 'U03DAN is not a member of approver group finops')
>>> Approvers.from_yaml_text("groups: {fin: {max_usd: 1, members: [ann], slack_channel: '#fin-approvals'}}"
...                          ).slack_channel("fin")
'#fin-approvals'
>>> Approvers.from_yaml_text("groups:\\n  fin: {max_usd: 1, members: [ann], slack_channel: 'fin approvals'}\\n")
Traceback (most recent call last):
...
schemas.yamlconf.ConfigError: <string>:2: groups.fin.slack_channel: Value error, slack_channel must be a channel id (C0123ABCD) or #name, not 'fin approvals'
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from schemas.yamlconf import ConfigError, load_yaml_file, load_yaml_text

__all__ = ["Approvers", "ApproversFile", "ConfigError", "DEFAULT_APPROVERS_PATH", "Group", "Member"]

DEFAULT_APPROVERS_PATH = Path(__file__).with_name("approvers.yaml")
_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_SLACK_USERGROUP = re.compile(r"^S[A-Z0-9]{2,}$")
#: A Slack channel id (C..., G...) or #name, as in the Slack routing file (sinks.slack.routing).
_CHANNEL = re.compile(r"^(#[a-z0-9][a-z0-9._-]{0,79}|[CGD][A-Z0-9]{6,20})$")
Limit = float | Literal["unlimited"]


def _err(loc: tuple, msg: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("approvers", "{msg}", {"msg": msg}), loc=loc, input=None)


class Member(BaseModel):
    """An approver: a Slack user id (or user-group id), a name, or both; ``max_usd`` overrides the group's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slack: str | None = Field(None, description="Slack user id, e.g. U012AB3CD, or user-group id, e.g. S012AB3CD "
                                                "(its users: slack_usergroups)")
    name: str | None = Field(None, min_length=1, max_length=128)
    max_usd: Limit | None = Field(None, description="most this member may approve; default: the group's")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: object) -> object:
        if isinstance(data, str):  # a bare string: a Slack id if it looks like one, else a name
            return {"slack": data} if _SLACK_ID.match(data) or _SLACK_USERGROUP.match(data) else {"name": data}
        return data

    @field_validator("slack")
    @classmethod
    def _slack(cls, v: str | None) -> str | None:
        if v is not None and not (_SLACK_ID.match(v) or _SLACK_USERGROUP.match(v)):
            raise ValueError("a Slack user id looks like U012AB3CD, a user-group id like S012AB3CD")
        return v

    @property
    def usergroup(self) -> str | None:
        """The Slack user-group id this entry stands for (``None``: a person)."""
        return self.slack if self.slack is not None and _SLACK_USERGROUP.match(self.slack) else None

    @model_validator(mode="after")
    def _someone(self) -> "Member":
        if self.slack is None and self.name is None:
            raise ValueError("give slack (a user id) and/or name")
        return self

    def is_user(self, user: str) -> bool:
        """This entry names ``user`` themself (by Slack user id or name; a user group is never a user)."""
        if self.usergroup is not None:
            return False
        return user == self.slack or (self.name is not None and user.casefold() == self.name.casefold())

    @property
    def label(self) -> str:
        return self.name or self.slack or "?"


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str | None = None
    max_usd: Limit = Field(description="most a member may approve (a number or `unlimited`)")
    members: list[Member] = Field(min_length=1)
    next: str | None = Field(None, description="the group a timed-out request escalates to")
    slack_channel: str | None = Field(None, description="where this group's approval requests are posted in Slack "
                                                        "(a channel id C0123ABCD or #name); unset: the default "
                                                        "channel (BURNGUARD_SLACK_DEFAULT_CHANNEL)")

    @field_validator("slack_channel")
    @classmethod
    def _channel(cls, v: str | None) -> str | None:
        if v is not None and not _CHANNEL.match(v):
            raise ValueError(f"slack_channel must be a channel id (C0123ABCD) or #name, not {v!r}")
        return v


class ApproversFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | str = 1
    slack_usergroups: dict[str, list[str]] = Field(
        default_factory=dict, description="Slack user-group id (S...) -> its members' Slack user ids (U...), as "
                                          "burnguard should see them (kept with the config; nothing asks Slack)")
    groups: dict[str, Group] = Field(min_length=1)

    @field_validator("slack_usergroups")
    @classmethod
    def _usergroups(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for gid, users in v.items():
            if not _SLACK_USERGROUP.match(gid):
                raise ValueError(f"{gid!r} is not a Slack user-group id (S012AB3CD)")
            bad = [u for u in users if not isinstance(u, str) or not _SLACK_ID.match(u)]
            if bad:
                raise ValueError(f"{gid}: {bad[0]!r} is not a Slack user id (U012AB3CD)")
        return v

    @model_validator(mode="after")
    def _chain(self) -> "ApproversFile":
        errors = []
        for name, g in self.groups.items():
            for i, m in enumerate(g.members):
                if m.usergroup is not None and m.usergroup not in self.slack_usergroups:
                    errors.append(_err(("groups", name, "members", i, "slack"),
                                       f"user group {m.usergroup} has no members under slack_usergroups"))
        for name, g in self.groups.items():
            if g.next is not None and g.next not in self.groups:
                errors.append(_err(("groups", name, "next"), f"unknown group {g.next!r}; known: {', '.join(self.groups)}"))
                continue
            seen, cur = {name}, g.next
            while cur is not None and cur in self.groups:
                if cur in seen:
                    errors.append(_err(("groups", name, "next"), f"escalation chain from {name} loops back to {cur}"))
                    break
                seen.add(cur)
                cur = self.groups[cur].next
        if errors:
            raise ValidationError.from_exception_data("ApproversFile", errors)
        return self


class Approvers:
    """Who may approve what. ``authorise`` returns ``None`` (allowed) or the reason for a refusal."""

    __slots__ = ("groups", "source", "usergroups")

    def __init__(self, conf: ApproversFile, source: str = "<memory>") -> None:
        self.groups = dict(conf.groups)
        self.usergroups = {gid: frozenset(users) for gid, users in conf.slack_usergroups.items()}
        self.source = source

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Approvers":
        p = Path(path) if path else DEFAULT_APPROVERS_PATH
        return cls(load_yaml_file(p, ApproversFile), str(p))

    @classmethod
    def from_yaml_text(cls, text: str, source: str = "<string>") -> "Approvers":
        return cls(load_yaml_text(text, ApproversFile, source=source), source)

    def names(self) -> list[str]:
        return list(self.groups)

    def slack_channel(self, group: str) -> str | None:
        """The Slack channel of ``group``'s approval requests (``None``: not set, or no such group)."""
        g = self.groups.get(group)
        return g.slack_channel if g else None

    def next_group(self, group: str) -> str | None:
        g = self.groups.get(group)
        return g.next if g else None

    def _limit_of(self, m: Member, group: str) -> float:
        lim = m.max_usd if m.max_usd is not None else self.groups[group].max_usd
        return float("inf") if lim == "unlimited" else float(lim)

    def member(self, user: str, group: str) -> Member | None:
        """``user``'s entry in ``group``: their own, else the user group (of theirs) with the highest limit."""
        g = self.groups.get(group)
        if g is None:
            return None
        own = next((m for m in g.members if m.is_user(user)), None)
        if own is not None:
            return own
        via = [m for m in g.members if m.usergroup is not None and user in self.usergroups.get(m.usergroup, ())]
        return max(via, key=lambda m: self._limit_of(m, group)) if via else None

    def limit(self, user: str, group: str) -> float | None:
        """The most ``user`` may approve in ``group`` (``inf`` for unlimited; ``None``: not a member)."""
        m = self.member(user, group)
        return self._limit_of(m, group) if m is not None else None

    def authorise(self, user: str, group: str, amount_usd: float) -> str | None:
        if group not in self.groups:
            return f"approver group {group} is not defined in {self.source}"
        lim = self.limit(user, group)
        if lim is None:
            return f"{user} is not a member of approver group {group}"
        if amount_usd > lim:
            return f"{user} may approve at most {lim:g} USD in {group}; this request is {amount_usd:g} USD"
        return None
