"""incidents and Slack: incidents, incident_commands (sinks.incident_store), slack_outbox, slack_threads
(sinks.slack.outbox) and slack_callbacks (sinks.slack.interactions); adopted when create_all made them

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _missing(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def upgrade() -> None:
    if _missing("incidents"):
        op.create_table("incidents",
                        sa.Column("id", sa.String(64), primary_key=True),
                        sa.Column("status", sa.String(16), nullable=False),
                        sa.Column("subject_key", sa.String(1024), nullable=False),
                        sa.Column("metric", sa.String(64), nullable=False),
                        sa.Column("severity", sa.String(16), nullable=False),
                        sa.Column("title", sa.String(1024), nullable=False),
                        sa.Column("started_at", TS, nullable=False),
                        sa.Column("updated_at", TS, nullable=False),
                        sa.Column("resolved_at", TS, nullable=True),
                        sa.Column("rev", sa.Integer, nullable=False),
                        sa.Column("record", sa.JSON, nullable=False))
        op.create_index("ix_incidents_status", "incidents", ["status"])
        op.create_index("ix_incidents_started_at", "incidents", ["started_at"])
    if _missing("incident_commands"):
        op.create_table("incident_commands",
                        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                        sa.Column("dedupe_key", sa.String(128), nullable=False, unique=True),
                        sa.Column("incident_id", sa.String(64), nullable=False),
                        sa.Column("kind", sa.String(16), nullable=False),
                        sa.Column("by", sa.String(255), nullable=False),
                        sa.Column("until", TS, nullable=True),
                        sa.Column("at", TS, nullable=False),
                        sa.Column("source", sa.String(16), nullable=False),
                        sa.Column("applied_at", TS, nullable=True))
        op.create_index("ix_incident_commands_incident_id", "incident_commands", ["incident_id"])
        op.create_index("ix_incident_commands_applied_at", "incident_commands", ["applied_at"])
    if _missing("slack_outbox"):
        op.create_table("slack_outbox",
                        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                        sa.Column("key", sa.String(255), nullable=False, unique=True),
                        sa.Column("incident_id", sa.String(64), nullable=False),
                        sa.Column("kind", sa.String(16), nullable=False),
                        sa.Column("channel", sa.String(128), nullable=False),
                        sa.Column("payload", sa.JSON, nullable=False),
                        sa.Column("status", sa.String(16), nullable=False),
                        sa.Column("attempts", sa.Integer, nullable=False),
                        sa.Column("next_attempt_at", TS, nullable=False),
                        sa.Column("claimed_at", TS, nullable=True),
                        sa.Column("ts", sa.String(32), nullable=True),
                        sa.Column("error", sa.String(500), nullable=True),
                        sa.Column("created_at", TS, nullable=False),
                        sa.Column("done_at", TS, nullable=True))
        op.create_index("ix_slack_outbox_incident_id", "slack_outbox", ["incident_id"])
        op.create_index("ix_slack_outbox_status", "slack_outbox", ["status"])
    if _missing("slack_threads"):
        op.create_table("slack_threads",
                        sa.Column("incident_id", sa.String(64), primary_key=True),
                        sa.Column("channel", sa.String(128), nullable=False),
                        sa.Column("ts", sa.String(32), nullable=False),
                        sa.Column("created_at", TS, nullable=False))
    if _missing("slack_callbacks"):
        op.create_table("slack_callbacks",
                        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                        sa.Column("received_at", TS, nullable=False),
                        sa.Column("status", sa.String(16), nullable=False),
                        sa.Column("reason", sa.String(255), nullable=True),
                        sa.Column("dedupe_key", sa.String(64), nullable=True, unique=True),
                        sa.Column("incident_id", sa.String(64), nullable=True),
                        sa.Column("action", sa.String(64), nullable=True),
                        sa.Column("user_id", sa.String(64), nullable=True),
                        sa.Column("body_sha256", sa.String(64), nullable=False))
        op.create_index("ix_slack_callbacks_received_at", "slack_callbacks", ["received_at"])


def downgrade() -> None:
    for name in ("slack_callbacks", "slack_threads", "slack_outbox", "incident_commands", "incidents"):
        op.drop_table(name)
