"""Incidents: alerts grouped by cause, Alertmanager-style, in event time (pure, IO-free).

- :mod:`~detectors.incidents.state`: the typed incident state and its dict encoding;
- :mod:`~detectors.incidents.grouping`: groups, compatibility, the subject;
- :mod:`~detectors.incidents.dispatch`: alerts in, notifications out (group_wait / group_interval / repeat);
- :mod:`~detectors.incidents.silence`: acknowledge, snooze, resolve by hand;
- :mod:`~detectors.incidents.summary`: what people see (:class:`schemas.incident.IncidentRecord`).
"""
