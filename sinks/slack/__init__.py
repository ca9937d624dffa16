"""Slack: Block Kit messages for incidents, routing, the outbox and its delivery loop, interactivity."""
