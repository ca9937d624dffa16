"""End to end: the worker is killed (SIGKILL) while the incident's Slack messages wait in the outbox (Slack is
down, so rows pile up), an acknowledgement is queued while no worker runs, and a new worker started on the
same broker and database delivers every row exactly once: no message lost, none posted or updated twice."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest

from detectors.incidents.silence import Acknowledge
from sinks.incident_store import IncidentStore
from sinks.kafka_producer import UsageProducer
from sinks.slack.outbox import SlackOutbox
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.harness.synthetic import Spike, SyntheticDay
from streams.harness.worker_process import WorkerProcess
from streams.settings import ALL_TOPICS
from tests.support.slack_emulator import SlackEmulator
from tests.support.waits import until

pytestmark = pytest.mark.e2e
SECRET = "e2e-signing-secret"


def outbox_key(params: dict) -> str | None:
    return ((params.get("metadata") or {}).get("event_payload") or {}).get("outbox_key")


def test_kill_minus_nine_with_rows_in_the_outbox_delivers_each_exactly_once(tmp_path) -> None:
    day = SyntheticDay(date.today() - timedelta(days=2), minutes=420, spikes=(Spike("ads/copygen/gpt-4o", 330, 10, 8.0),))
    database_url = f"sqlite:///{tmp_path / 'e2e.db'}"
    settings = dict(slack_token="xoxb-e2e", slack_signing_secret=SECRET, slack_default_channel="#oncall",
                    incident_group_wait_seconds="60")
    with EmbeddedBroker() as broker, SlackEmulator() as slack:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        slack.fail_for(3600)  # Slack is down for the first worker's whole life
        box = SlackOutbox(database_url)
        first = WorkerProcess(broker.url, database_url, tmp_path / "worker1.log", slack_api_url=slack.base_url,
                              **settings).start()
        try:
            with UsageProducer(broker.bootstrap, batch_size=400, stream_key="e2e") as producer:
                for e in day.events():
                    producer.send("llm", e)
                producer.flush()
            # the incident's post and its evidence reply are queued, and the worker has tried to send them
            until("rows in the outbox",
                  lambda: sum(i.kind in ("post", "reply") for i in box.items()) >= 2,
                  240, first.check_alive)
            until("a failed delivery attempt",
                  lambda: any(c.status == 503 for c in slack.calls_of("chat.postMessage")),
                  60, first.check_alive)
            assert first.process is not None
            first.process.kill()  # SIGKILL: no graceful shutdown, rows left pending or claimed mid-attempt
            first.process.wait(timeout=30)
        finally:
            first.stop()
        before = {i.key: i.kind for i in box.items()}
        assert before and not any(i.status == "done" for i in box.items())
        assert slack.messages() == []  # nothing reached Slack yet
        [inc_id] = {i.incident_id for i in box.items()}
        store = IncidentStore(database_url)
        # acknowledged from the CLI while no worker runs: the next worker applies it and updates the message
        assert store.add_command(Acknowledge(inc_id, by="oncall-ann", at=datetime.now(timezone.utc)), source="cli")

        slack.fail_for(0)  # Slack is back
        with WorkerProcess(broker.url, database_url, tmp_path / "worker2.log", slack_api_url=slack.base_url,
                           **settings) as second:
            until("the acknowledgement applied",
                  lambda: (store.get(inc_id) or store.incidents(state="all")[0]).acked_by == "oncall-ann",
                  180, second.check_alive)
            until("the resolution",
                  lambda: (store.get(inc_id) or store.incidents(state="all")[0]).status == "resolved",
                  240, second.check_alive)

            def settled() -> bool:
                c = box.counts()
                return c.get("pending", 0) == c.get("sending", 0) == 0 and c.get("done", 0) > 0

            until("the outbox delivered", settled, 180, second.check_alive)
            until("the message resolved in place",
                  lambda: any("(resolved)" in m["text"] for m in slack.messages("#oncall") if "thread_ts" not in m),
                  60, second.check_alive)
        store.close()

    rows = box.items()
    box.close()
    assert {r.status for r in rows} <= {"done", "superseded"}  # nothing failed, nothing left behind
    done = {r.key: r.kind for r in rows if r.status == "done"}
    # none lost: every post and reply queued before the kill was delivered (an update may be superseded by a
    # newer one of the same message: the message shows the newest)
    assert {k for k, kind in before.items() if kind != "update"} <= done.keys()
    # none doubled: one Slack message per post/reply row, one successful chat.update per delivered update row
    posted = Counter(outbox_key(m) for m in slack.messages())
    assert posted == Counter({k: 1 for k, kind in done.items() if kind in ("post", "reply")})
    updates = [c for c in slack.calls_of("chat.update") if c.status == 200]
    assert len(updates) == sum(kind == "update" for kind in done.values())
    top = [m for m in slack.messages("#oncall") if "thread_ts" not in m]
    assert len(top) == 1 and "acknowledged by" in str(top[0]["blocks"]).lower()
    assert sum(c.status == 503 for c in slack.calls) >= 1
