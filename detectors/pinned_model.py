"""Pinned idle models: a model server holds GPUs while the gateway sends its model no requests.

The join of two sources, keyed by the served model's name (:func:`model_key`): gateway
request counts per minute (LLM usage) and the idle status of each GPU resource that serves
the model (DCGM telemetry, see :class:`~detectors.gpu_tracker.GpuTracker`). One
:class:`ModelActivity` per model keeps what the rule needs, the end of the model's last
request minute and each server's newest status, and runs :mod:`detectors.zombie_gpu`'s
``pinned_idle_model`` rule for each of its servers, reporting transitions like the tracker:
firing once per incident, resolved when it stops holding (requests again, GPUs busy again,
or the resource is no longer sampled).

The rule holds at a server's status time ``t`` when its GPUs have been idle for
``pinned_idle_min`` *and* no request for the model ended after ``t - pinned_idle_min``
(requests newer than ``t`` count too: the model is in use). The incident starts at the
moment both first held: ``max(idle_since, end of the last request) + pinned_idle_min``,
so it does not depend on how samples were batched into messages.
Rules are checked as messages arrive, against the requests seen so far: a request inside the
window that arrives after a server's status (its partition lagging) resolves an incident that
fired too early; it cannot un-send it. So a replay should send the gateway's events first; the
request stream may run any amount ahead, it never makes a server look gone.

A server is gone when its *own* statuses stop arriving: :meth:`ModelActivity.sweep` resolves
("no longer sampled") and forgets a server none of whose statuses arrived for
:data:`SERVER_GONE_AFTER_S`, in arrival time (the stream's wall clock, given by the caller), so
neither other servers' statuses nor requests, however far ahead in event time, make a server
gone. :meth:`ModelActivity.expired` tells when the whole model can be forgotten: no servers, and
its last request neither ended nor arrived within the rule's window.

>>> from datetime import datetime, timezone
>>> t0 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc).timestamp()
>>> m = ModelActivity("llama-3.1-8b")
>>> m.add_requests([(t0, 40), (t0 + 600, 3)])       # requests up to minute 10, then none
[]
>>> srv = ServingStatus("serving/vllm-llama-0", t=t0 + 7200, util_now=0.0, idle_since=t0,
...                     gpus=2, usd_per_gpu_hour=4.0)
>>> m.update_server(srv)                              # idle 2 h, but the last request ended at minute 11
[]
>>> [(s, a.rule, a.usd_per_hour, (at.timestamp() - t0) / 60) for s, a, at in
...  m.update_server(srv._replace(t=t0 + 8000))]
[('firing', 'pinned_idle_model', 8.0, 131.0)]
>>> m.update_server(srv._replace(t=t0 + 8100))       # still idle: one alert per incident
[]
>>> [(s, a.detail) for s, a, _ in m.add_requests([(t0 + 8100, 1)])]
[('resolved', 'requests for the model again')]
>>> m.sweep(now=t0 + 8100 + 3600), list(m.servers)   # its last status arrived an hour ago
([], [])
>>> m.expired(now=t0 + 8160 + 7200)                  # no servers, no request for 2 h
True
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import NamedTuple

from detectors.statecheck import NUM, OPT_NUM, Spec, fields, mapping
from detectors.zombie_gpu import GpuResource, ZombieAlert, ZombieRules, check

RULE = "pinned_idle_model"
MINUTE_S = 60
#: A server none of whose statuses arrived for this long (arrival time) is gone.
SERVER_GONE_AFTER_S = 3600.0
#: Gateway routing prefixes that name the provider, not the model (LiteLLM's self-hosted ones).
_ROUTING_PREFIXES = ("hosted_vllm/", "vllm/", "openai/", "huggingface/", "triton/", "text-completion-openai/")
_UNKNOWN = frozenset({"", "unknown", "none", "null", "-"})


def model_key(name: object) -> str | None:
    """The join key of a model name, the same for a GPU label and a gateway event (``None``: unknown).

    Case and surrounding spaces are ignored, and a gateway's self-hosted routing prefix dropped;
    a Hugging Face ``org/name`` is kept whole.

    >>> model_key(" Meta-Llama/Llama-3.1-8B-Instruct "), model_key("hosted_vllm/meta-llama/llama-3.1-8b-instruct")
    ('meta-llama/llama-3.1-8b-instruct', 'meta-llama/llama-3.1-8b-instruct')
    >>> model_key("unknown"), model_key(None), model_key(7)
    (None, None, None)
    """
    if not isinstance(name, str):
        return None
    key = name.strip().casefold()
    for prefix in _ROUTING_PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            key = key[len(prefix):]
            break
    return None if key in _UNKNOWN else key[:256]


class ServingStatus(NamedTuple):
    """One serving resource's state at its newest sample (times are Unix seconds)."""

    resource: str
    t: float
    util_now: float
    idle_since: float | None
    gpus: int
    usd_per_gpu_hour: float


def _from_epoch(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


class ModelActivity:
    """The end of one model's last gateway request and its serving resources; pinned-idle incidents.

    Only what the rule needs is kept (the rule asks whether any request ended inside the
    window, not how many), so the state stays small whatever the traffic. Arrival times
    (``now``) are the caller's clock, the wall time a message was processed; they default to
    the event time (a live stream), and only :meth:`sweep` and :meth:`expired` read them.
    """

    __slots__ = ("model", "rules", "last_request_end", "requests_arrived", "servers", "arrived", "firing")

    def __init__(self, model: str, rules: ZombieRules | None = None) -> None:
        self.model = model
        self.rules = rules or ZombieRules()
        self.last_request_end: float | None = None  # end of the newest minute with requests
        self.requests_arrived = float("-inf")  # arrival time of the newest request message
        self.servers: dict[str, ServingStatus] = {}
        self.arrived: dict[str, float] = {}  # resource -> arrival time of its newest status message
        self.firing: dict[str, float] = {}  # resource -> incident start

    @property
    def window_s(self) -> float:
        return self.rules.pinned_idle_min * 60.0

    def add_requests(self, counts: Iterable[tuple[float, int]],
                     now: float | None = None) -> list[tuple[str, ZombieAlert, datetime]]:
        """Add (minute start, request count) pairs arriving at ``now``; returns transitions.

        Idempotent: applying the same counts again changes nothing."""
        newest = None
        for minute, n in counts:
            if n <= 0:
                continue
            end = float(int(minute) // MINUTE_S * MINUTE_S + MINUTE_S)
            newest = end if newest is None else max(newest, end)
        if newest is None:
            return []
        self.last_request_end = newest if self.last_request_end is None else max(self.last_request_end, newest)
        self.requests_arrived = max(self.requests_arrived, newest if now is None else now)
        return self._evaluate()

    def update_server(self, status: ServingStatus, now: float | None = None) -> list[tuple[str, ZombieAlert, datetime]]:
        """A server's status arriving at ``now`` (one older than held is ignored, but shows the
        server is still sampled); returns transitions."""
        held = self.servers.get(status.resource)
        if held is None or status.t >= held.t:
            self.servers[status.resource] = status
        self.arrived[status.resource] = max(self.arrived.get(status.resource, float("-inf")),
                                            status.t if now is None else now)
        return self._evaluate()

    def sweep(self, now: float, started: float = float("-inf")) -> list[tuple[str, ZombieAlert, datetime]]:
        """Resolve and forget servers none of whose statuses arrived in the
        :data:`SERVER_GONE_AFTER_S` before ``now``; an arrival before ``started`` counts as at
        ``started`` (a restarted worker has not read its backlog yet)."""
        out: list[tuple[str, ZombieAlert, datetime]] = []
        for resource in list(self.servers):
            if max(self.arrived.get(resource, float("-inf")), started) <= now - SERVER_GONE_AFTER_S:
                del self.servers[resource]
                self.arrived.pop(resource, None)
                out += self._resolve(resource, "no longer sampled")
        return out

    def expired(self, now: float, started: float = float("-inf")) -> bool:
        """Nothing left to judge: no servers, and the last request neither ended nor arrived
        within the rule's window before ``now`` (a request arriving later starts afresh)."""
        cutoff = now - self.window_s
        return (not self.servers and max(self.requests_arrived, started) <= cutoff
                and (self.last_request_end is None or self.last_request_end <= cutoff))

    def _quiet(self, t: float) -> bool:
        return self.last_request_end is None or self.last_request_end <= t - self.window_s

    def _evaluate(self) -> list[tuple[str, ZombieAlert, datetime]]:
        out: list[tuple[str, ZombieAlert, datetime]] = []
        for resource, s in self.servers.items():
            idle_min = (s.t - s.idle_since) / 60.0 if s.idle_since is not None else 0.0
            quiet = self._quiet(s.t)
            r = GpuResource(resource, "serving", gpus=s.gpus, usd_per_gpu_hour=s.usd_per_gpu_hour,
                            util_now=s.util_now, idle_minutes=idle_min, requests_last_2h=0 if quiet else 1)
            hit = next((a for a in check(r, self.rules) if a.rule == RULE), None)
            if hit is not None and resource not in self.firing:
                assert s.idle_since is not None  # the rule needs idle minutes
                start = max(s.idle_since, self.last_request_end or s.idle_since) + self.window_s
                self.firing[resource] = start
                detail = (f"model {self.model} got no gateway requests for {self.window_s / 60:.0f} min "
                          f"while its GPUs idled {idle_min:.0f} min")
                out.append(("firing", ZombieAlert(RULE, resource, hit.usd_per_hour, hit.gpus_wasted, detail),
                            _from_epoch(start)))
            elif hit is None and resource in self.firing:
                out += self._resolve(resource, "requests for the model again" if not quiet else "GPUs active again")
        return out

    def _resolve(self, resource: str, why: str) -> list[tuple[str, ZombieAlert, datetime]]:
        if resource not in self.firing:
            return []
        return [("resolved", ZombieAlert(RULE, resource, 0.0, 0.0, why), _from_epoch(self.firing.pop(resource)))]

    # -- table state (streams.state.codec) ---------------------------------------------------
    STATE_TAG = "model_activity"
    STATE_VERSION = 1
    _STATE = Spec({
        "model": str, "rules": ZombieRules, "last_request_end": OPT_NUM, "requests_arrived": NUM, "servers": dict,
        "arrived": dict, "firing": dict})

    def to_state(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self._STATE.order}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> "ModelActivity":
        fields(state, cls._STATE)
        mapping(state["servers"], "servers", str, ServingStatus)
        mapping(state["arrived"], "arrived", str, NUM)
        mapping(state["firing"], "firing", str, NUM)
        m = cls.__new__(cls)
        for k, v in state.items():
            setattr(m, k, v)
        return m

