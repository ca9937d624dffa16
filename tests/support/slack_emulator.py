"""A local Slack Web API emulator (aiohttp, loopback) for tests: the real slack-sdk client talks to it.

Point ``slack_sdk.WebClient(base_url=emulator.base_url)`` at it. It answers, in Slack's shapes,
``auth.test``, ``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``,
``conversations.history``, ``conversations.replies``, ``views.open``, the three steps of
``files_upload_v2`` (``files.getUploadURLExternal``, a POST to the returned upload URL,
``files.completeUploadExternal``) and POSTs to a ``response_url`` (:meth:`response_url`).
Every call is recorded (:attr:`calls`); messages are kept per channel (:meth:`messages`).

Faults, set from the test or over HTTP from another process (``POST /_control/<what>``):

- :meth:`ratelimit` (``{"count": n, "retry_after": s}``): the next ``n`` API calls answer HTTP 429
  ``{"ok": false, "error": "ratelimited"}`` with ``Retry-After: s``;
- :meth:`fail_for` (``{"seconds": s, "status": 503}``): every API call fails with that status for ``s`` seconds;
  with ``from_call="chat.postMessage"`` the outage starts at the first call of that method instead of now
  (so a slow start cannot let the calls it is meant for slip past it);
- ``GET /_calls`` returns the recorded calls, ``GET /_messages`` every channel's messages.

It runs its own event loop in a daemon thread, so synchronous tests and clients can use it.

>>> from slack_sdk import WebClient
>>> with SlackEmulator() as slack:
...     client = WebClient(token="xoxb-test", base_url=slack.base_url)
...     posted = client.chat_postMessage(channel="#oncall", text="hello")
...     _ = client.chat_update(channel=posted["channel"], ts=posted["ts"], text="hello again")
...     [m["text"] for m in slack.messages("#oncall")], [c.method for c in slack.calls]
(['hello again'], ['chat.postMessage', 'chat.update'])
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

BOT_USER = "U0BURNGUARD"


@dataclass(frozen=True)
class Call:
    method: str  # Slack API method, "upload", or "response_url"
    params: dict[str, Any]
    status: int  # HTTP status the emulator answered
    at: float = field(default_factory=time.time)
    path: str = ""


class SlackEmulator:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> None:
        self.host, self.port = host, port
        self.token = token  # when set, other tokens get invalid_auth
        self.calls: list[Call] = []
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.responses: list[dict[str, Any]] = []  # bodies POSTed to response URLs
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._ratelimited = 0
        self._retry_after = 1
        self._fail_until = 0.0
        self._fail_status = 503
        self._fail_armed: tuple[str, float] | None = None  # (method, seconds): an outage that starts at its first call
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "SlackEmulator":
        self._thread = threading.Thread(target=self._serve, name="slack-emulator", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the Slack emulator did not start")
        return self

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{rid}", self._response_url)
        app.router.add_post("/_control/{what}", self._control)
        app.router.add_get("/_calls", self._get_calls)
        app.router.add_get("/_messages", self._get_messages)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self.host, self.port)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def __enter__(self) -> "SlackEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """slack-sdk's ``base_url`` (it appends the method name)."""
        return f"{self.url}/api/"

    def response_url(self, rid: str = "r1") -> str:
        return f"{self.url}/response/{rid}"

    # -- faults and inspection -------------------------------------------------------------------
    def ratelimit(self, count: int, retry_after: int = 1) -> None:
        with self._lock:
            self._ratelimited, self._retry_after = count, retry_after

    def fail_for(self, seconds: float, status: int = 503, from_call: str | None = None) -> None:
        with self._lock:
            self._fail_status = status
            if from_call is None:
                self._fail_until, self._fail_armed = time.time() + seconds, None
            else:
                self._fail_armed = (from_call, seconds)

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages now in ``channel`` (all channels if None), oldest first, thread replies included."""
        with self._lock:
            chans = [channel] if channel is not None else list(self._messages)
            return [dict(m) for c in chans for m in self._messages.get(self._channel_id(c), [])]

    def calls_of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
        """Poll ``predicate`` until true (bounded); AssertionError naming ``what`` on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    # -- handlers --------------------------------------------------------------------------------
    @staticmethod
    def _channel_id(channel: str) -> str:
        """Names map to stable ids, as Slack answers with ids (``#oncall`` -> ``C_ONCALL``)."""
        if channel.startswith("#"):
            return "C_" + channel[1:].upper().replace("-", "_")
        return channel

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        body = await request.read()
        ctype = request.headers.get("Content-Type", "")
        if body and "application/json" in ctype:
            params.update(json.loads(body))
        elif body and "multipart" not in ctype:
            params.update(dict(parse_qsl(body.decode())))
        for k in ("blocks", "metadata", "files", "view", "attachments"):
            if isinstance(params.get(k), str):
                try:
                    params[k] = json.loads(params[k])
                except ValueError:
                    pass
        return params

    def _record(self, method: str, params: dict[str, Any], status: int, path: str) -> None:
        with self._lock:
            self.calls.append(Call(method, params, status, time.time(), path))

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        with self._lock:
            if self._fail_armed is not None and self._fail_armed[0] == method:
                self._fail_until, self._fail_armed = time.time() + self._fail_armed[1], None
            failing = time.time() < self._fail_until
            limited = not failing and self._ratelimited > 0
            if limited:
                self._ratelimited -= 1
            status = self._fail_status if failing else 429 if limited else 200
        self._record(method, params, status, request.path)
        if failing:
            return web.Response(status=status, text="<html>upstream unavailable</html>", content_type="text/html")
        if limited:
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(self._retry_after)})
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or (self.token is not None and auth != f"Bearer {self.token}"):
            return web.json_response({"ok": False, "error": "not_authed" if not auth else "invalid_auth"})
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        return web.json_response(handler(params))

    def _new_ts(self) -> str:
        return f"{int(time.time())}.{next(self._seq):06d}"

    def m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"{self.url}/", "team": "burnguard-test", "user": "burnguard",
                "team_id": "T0TEST", "user_id": BOT_USER, "bot_id": "B0BURNGUARD", "is_enterprise_install": False}

    def m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not p.get("text") and not p.get("blocks"):
            return {"ok": False, "error": "no_text"}
        channel = self._channel_id(str(p["channel"]))
        with self._lock:
            thread_ts = p.get("thread_ts")
            if thread_ts and not any(m["ts"] == thread_ts for m in self._messages.get(channel, [])):
                return {"ok": False, "error": "thread_not_found"}
            msg = {"type": "message", "user": BOT_USER, "bot_id": "B0BURNGUARD", "ts": self._new_ts(),
                   "text": p.get("text", ""), "blocks": p.get("blocks") or [], "channel": channel}
            if thread_ts:
                msg["thread_ts"] = thread_ts
            if p.get("metadata"):
                msg["metadata"] = p["metadata"]
            self._messages.setdefault(channel, []).append(msg)
        return {"ok": True, "channel": channel, "ts": msg["ts"], "message": {k: v for k, v in msg.items()
                                                                            if k != "channel"}}

    def m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_id(str(p.get("channel", "")))
        with self._lock:
            for m in self._messages.get(channel, []):
                if m["ts"] == p.get("ts"):
                    m["text"] = p.get("text", m["text"])
                    if "blocks" in p:
                        m["blocks"] = p["blocks"] or []
                    m["edited"] = {"user": BOT_USER, "ts": self._new_ts()}
                    return {"ok": True, "channel": channel, "ts": m["ts"], "text": m["text"],
                            "message": {k: v for k, v in m.items() if k != "channel"}}
        return {"ok": False, "error": "message_not_found" if channel in self._messages else "channel_not_found"}

    def m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("channel") or not p.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        return {"ok": True, "message_ts": self._new_ts()}

    def m_conversations_history(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_id(str(p.get("channel", "")))
        include = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
        with self._lock:
            top = [m for m in self._messages.get(channel, []) if "thread_ts" not in m]
        limit = int(p.get("limit") or 100)
        msgs = [self._public(m, include) for m in reversed(top)][:limit]
        return {"ok": True, "messages": msgs, "has_more": len(top) > limit}

    def m_conversations_replies(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_id(str(p.get("channel", "")))
        ts = p.get("ts")
        include = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
        with self._lock:
            msgs = [m for m in self._messages.get(channel, []) if m["ts"] == ts or m.get("thread_ts") == ts]
        if not msgs:
            return {"ok": False, "error": "thread_not_found"}
        return {"ok": True, "messages": [self._public(m, include) for m in msgs], "has_more": False}

    @staticmethod
    def _public(m: dict[str, Any], include_metadata: bool) -> dict[str, Any]:
        return {k: v for k, v in m.items() if k != "channel" and (include_metadata or k != "metadata")}

    def m_views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        view = p.get("view") or {}
        return {"ok": True, "view": {"id": f"V{next(self._seq):08d}", "type": view.get("type", "modal"),
                                     "blocks": view.get("blocks", []), "callback_id": view.get("callback_id", "")}}

    def m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("filename") or not p.get("length"):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._seq):08d}"
        with self._lock:
            self.uploads[file_id] = {"filename": p["filename"], "length": int(p["length"]), "data": None}
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        files = p.get("files") or []
        out = []
        with self._lock:
            for f in files:
                up = self.uploads.get(f.get("id", ""))
                if up is None or up["data"] is None:
                    return {"ok": False, "error": "file_not_found"}
                up.update(title=f.get("title"), channel=p.get("channel_id"), thread_ts=p.get("thread_ts"),
                          initial_comment=p.get("initial_comment"))
                out.append({"id": f["id"], "title": f.get("title") or up["filename"], "name": up["filename"],
                            "size": len(up["data"])})
            channel = p.get("channel_id")
            if channel and out:  # as Slack does: the files are shared by a message in the channel / thread
                msg = {"type": "message", "subtype": "file_share", "user": BOT_USER, "ts": self._new_ts(),
                       "text": p.get("initial_comment") or "", "files": out, "channel": self._channel_id(channel)}
                if p.get("thread_ts"):
                    msg["thread_ts"] = p["thread_ts"]
                self._messages.setdefault(msg["channel"], []).append(msg)
        return {"ok": True, "files": out}

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        data = await request.read()
        with self._lock:
            up = self.uploads.get(file_id)
            if up is not None:
                up["data"] = data
        self._record("upload", {"file_id": file_id, "bytes": len(data)}, 200 if up else 404, request.path)
        if up is None:
            return web.Response(status=404, text="not found")
        return web.Response(text=f"OK - {len(data)}")

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            doc = json.loads(body)
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        doc["_rid"] = request.match_info["rid"]
        with self._lock:
            self.responses.append(doc)
        self._record("response_url", doc, 200, request.path)
        return web.Response(text="ok")

    async def _control(self, request: web.Request) -> web.Response:
        doc = json.loads(await request.read() or b"{}")
        what = request.match_info["what"]
        if what == "ratelimit":
            self.ratelimit(int(doc.get("count", 1)), int(doc.get("retry_after", 1)))
        elif what == "fail":
            self.fail_for(float(doc.get("seconds", 30)), int(doc.get("status", 503)), doc.get("from_call"))
        else:
            return web.json_response({"ok": False, "error": f"unknown control {what}"}, status=404)
        return web.json_response({"ok": True})

    async def _get_calls(self, request: web.Request) -> web.Response:
        with self._lock:
            calls = [{"method": c.method, "params": c.params, "status": c.status, "at": c.at} for c in self.calls]
        return web.json_response(calls)

    async def _get_messages(self, request: web.Request) -> web.Response:
        with self._lock:
            return web.json_response({c: list(ms) for c, ms in self._messages.items()})
