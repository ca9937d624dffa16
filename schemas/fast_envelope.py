"""How the fast decoders (:mod:`schemas.fast_native`, :mod:`schemas.fast_litellm`) split a message into events.

A ``usage.llm`` message is a JSON array of events, an envelope ``{"events": [...]}`` (its other keys ignored, as
the reference does, except the two that change its meaning: ``resourceSpans`` makes it OTLP, ``format`` names the
format of its events), or one event object. :class:`EnvelopeReader` decodes any of them with msgspec into a
list of one decoder's event structs, or says ``None``: "not handled here, use the reference path" (not JSON of
one of those shapes, OTLP, an envelope naming a format the decoder does not read, an event its struct refuses).
What differs between the decoders is passed in: the event struct, the envelope formats it reads, whether a lone
object needs checking before it is read as an event, and a screen for the envelope's skipped keys.

>>> class Ev(msgspec.Struct, forbid_unknown_fields=True):
...     n: int
>>> read = EnvelopeReader(Ev, (msgspec.UNSET, "x"))
>>> read.events(b'[{"n": 1}]'), read.events(b' {"events": [{"n": 2}], "other": 0}'), read.events(b'{"n": 3}')
([Ev(n=1)], [Ev(n=2)], [Ev(n=3)])
>>> read.events(b'{"format": "y", "events": []}'), read.events(b'{"resourceSpans": []}'), read.events(b"7")
(None, None, None)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec

__all__ = ["EnvelopeReader"]

E = TypeVar("E")

_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)


class _Envelope(msgspec.Struct, Generic[E], gc=False):
    """``{"events": [...]}`` (other keys ignored, as the reference does, except the two that change its meaning)."""

    events: list[E]
    format: Any = msgspec.UNSET
    resourceSpans: Any = msgspec.UNSET


class _Top(msgspec.Struct, gc=False):
    """A single event's keys that would make it something else (OTLP, an envelope)."""

    events: msgspec.Raw = msgspec.Raw(b"")
    resourceSpans: Any = msgspec.UNSET


_TOP = msgspec.json.Decoder(_Top)


class EnvelopeReader(Generic[E]):
    """Splits a message into events of type ``event`` (see the module docstring).

    ``formats``: the envelope ``format`` values read here (``msgspec.UNSET``: none given), compared with ``in``.
    ``check_lone``: for an event struct that ignores unknown fields, an object that is not an envelope is first
    checked for ``resourceSpans`` or an ``events`` array (OTLP, or an envelope with an event not handled here).
    ``screen``: called on a whole envelope's bytes (its other keys are what msgspec skipped unchecked); false
    means not handled here."""

    def __init__(self, event: type[E], formats: tuple[Any, ...], *, check_lone: bool = False,
                 screen: Callable[[bytes], bool] | None = None) -> None:
        self._list = msgspec.json.Decoder(list[event])  # type: ignore[valid-type]
        self._envelope = msgspec.json.Decoder(_Envelope[event])  # type: ignore[valid-type]
        self._one = msgspec.json.Decoder(event)
        self._formats, self._check_lone, self._screen = formats, check_lone, screen

    def events(self, raw: bytes, one: bool = False) -> list[E] | None:
        """The message's events, or ``None`` if it is not handled here; ``one``: only a single event (an object)."""
        try:
            if one:
                return [self._one.decode(raw)]
            head = raw.lstrip()[:1]
            if head == b"[":
                return self._list.decode(raw)
            if head != b"{":
                return None
            try:
                env = self._envelope.decode(raw)
            except _DECODE_ERRORS:
                if self._check_lone:
                    top = _TOP.decode(raw)
                    if top.resourceSpans is not msgspec.UNSET or bytes(top.events).lstrip()[:1] == b"[":
                        return None  # OTLP, or an envelope with an event not handled here
                return [self._one.decode(raw)]  # one event per message
            if env.resourceSpans is not msgspec.UNSET or env.format not in self._formats:
                return None  # OTLP, or an envelope naming another format: the reference path
            if self._screen is not None and not self._screen(raw):
                return None
            return env.events
        except _DECODE_ERRORS:
            return None
