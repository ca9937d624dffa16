"""Outbox rows of kind ``upload``: a file (a PNG chart) shared into a message's thread with ``files_upload_v2``.

The payload: ``filename`` (unique per row, e.g. ``budget-ap-....png``), ``png_b64`` (the bytes,
base64), ``title``, ``alt_txt``. slack-sdk's ``files_upload_v2`` runs Slack's three steps
(``files.getUploadURLExternal``, a POST of the bytes to the URL it returns,
``files.completeUploadExternal`` with the channel and ``thread_ts``); only the last one shares the
file. A failed POST of the bytes (slack-sdk raises ``SlackRequestError``) is reported as a
``ConnectionError`` so the delivery backs off and retries, as for any outage.

A row tried before is *reconciled* like posts: the thread's replies
(``conversations.replies``) are searched for a file of the row's filename, and if the earlier
attempt shared it, it is not shared again.
"""

from __future__ import annotations

import base64
import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from sinks.slack.outbox import OutboxItem

log = logging.getLogger("burnguard.slack")

__all__ = ["find_upload", "send_upload"]


def send_upload(client: WebClient, it: OutboxItem, thread: tuple[str, str]) -> tuple[str, str]:
    """Share the row's file into ``thread`` (channel id, ts); returns (thread ts, channel id)."""
    p = it.payload
    channel, ts = thread
    try:
        client.files_upload_v2(channel=channel, thread_ts=ts, file=base64.b64decode(p["png_b64"]),
                               filename=p["filename"], title=p.get("title") or p["filename"],
                               alt_txt=p.get("alt_txt"))
    except SlackRequestError as err:  # the upload URL did not take the bytes: an outage, retried with backoff
        raise ConnectionError(f"file upload failed: {str(err)[:200]}") from err
    return ts, channel


def find_upload(client: WebClient, it: OutboxItem, thread: tuple[str, str]) -> tuple[str, str] | None:
    """(thread ts, channel id) if an earlier attempt already shared the row's file in ``thread``, else None.

    A rate limit or an outage raises (the delivery waits); any other error means "cannot tell": upload."""
    channel, ts = thread
    try:
        r = client.conversations_replies(channel=channel, ts=ts, limit=200)
    except SlackApiError as err:
        if err.response.status_code == 429 or err.response.status_code >= 500:
            raise
        log.warning("cannot check whether %s was already uploaded (%s); uploading", it.key,
                    err.response.get("error"))
        return None
    name = it.payload.get("filename")
    for m in r.get("messages", []):
        if any(f.get("name") == name for f in m.get("files") or []):
            return ts, channel
    return None
