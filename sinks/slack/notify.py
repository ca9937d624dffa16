"""Incident notifications to their effects: the stored record, and the Slack calls in the outbox.

One message per incident (``post`` once, then ``update`` in place with each revision) and its
evidence and history in the thread (``reply``). Row keys are (incident, kind, revision), so a
notification computed again after a crash enqueues nothing new.

>>> from datetime import datetime, timezone
>>> from schemas.incident import IncidentRecord
>>> t = datetime(2026, 11, 20, 14, tzinfo=timezone.utc)
>>> rec = IncidentRecord(id="inc-1", status="firing", title="x", subject_key="budget=org", metric="spend",
...     score=1.0, observed=2.0, baseline=1.0, expected_low=0.0, expected_high=1.0, started_at=t, updated_at=t, rev=4)
>>> [(k, kind) for k, kind, _ in outbox_rows("open", rec, [])]
[('inc-1:post', 'post')]
>>> [(k, kind) for k, kind, _ in outbox_rows("resolve", rec, [])]
[('inc-1:update:4.1795183200', 'update'), ('inc-1:reply:resolve:4.1795183200', 'reply')]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from detectors.incidents.dispatch import Notification
from detectors.incidents.summary import to_record
from schemas.incident import BudgetState, EvidenceAlert, IncidentRecord
from sinks.incident_store import IncidentStore
from sinks.slack.blocks import incident_message, thread_reply
from sinks.slack.outbox import SlackOutbox
from sinks.slack.routing import Routing

log = logging.getLogger("burnguard.slack")


def outbox_rows(kind: str, rec: IncidentRecord, new: Sequence[EvidenceAlert],
                runbook_url: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """(key, outbox kind, payload) for one notification of ``kind`` about ``rec``; keys carry the
    revision and the notification's event time (``rec.updated_at``): a reminder at the same revision
    four hours later is a new row, the same notification computed twice is not."""
    main = incident_message(rec, runbook_url)
    stamp = f"{rec.rev}.{int(rec.updated_at.timestamp())}"
    rows: list[tuple[str, str, dict[str, Any]]] = []
    if kind == "open":
        rows.append((f"{rec.id}:post", "post", main))
    else:
        rows.append((f"{rec.id}:update:{stamp}", "update", main))
    if kind in ("open", "update"):
        if new:
            rows.append((f"{rec.id}:reply:{kind}:{stamp}", "reply", thread_reply(kind, rec, new)))
    else:
        rows.append((f"{rec.id}:reply:{kind}:{stamp}", "reply", thread_reply(kind, rec, new)))
    return rows


#: The budget an incident's subject eats into and its state, from its key and start (sinks.incident_budget).
BudgetLookup = Callable[[str, datetime], BudgetState | None]


class IncidentSink:
    """Store every notification's record; with Slack configured, enqueue its calls (blocking: use a thread)."""

    def __init__(self, store: IncidentStore, outbox: SlackOutbox | None = None, routing: Routing | None = None,
                 runbook_url: str | None = None, subject_share: float = 0.5,
                 budgets: BudgetLookup | None = None) -> None:
        self.store, self.outbox, self.routing = store, outbox, routing or Routing()
        self.runbook_url, self.subject_share, self.budgets = runbook_url, subject_share, budgets
        self._warned = False

    def record(self, note: Notification) -> IncidentRecord:
        rec = to_record(note.incident, now=note.at, runbook_url=self.runbook_url, share=self.subject_share)
        if self.budgets is None:
            return rec
        return rec.model_copy(update={"budget": self.budgets(rec.subject_key, rec.started_at)})

    def publish(self, note: Notification) -> IncidentRecord:
        rec = self.record(note)
        self.store.save(rec)
        if self.outbox is None:
            return rec
        team = rec.where.get("team", "*")
        channel = self.routing.channel_for(team, rec.severity)
        if channel is None:
            if not self._warned:
                log.warning("no Slack channel for incidents (set BURNGUARD_SLACK_DEFAULT_CHANNEL or a route); "
                            "incidents are stored only")
                self._warned = True
            return rec
        new = [e for e in rec.evidence if e.fingerprint in {a.fingerprint for a in note.new_alerts}]
        for key, kind, payload in outbox_rows(note.kind, rec, new, self.runbook_url):
            self.outbox.enqueue(key, rec.id, kind, channel, payload)
        return rec
