"""Faust tables holding typed values: encoded on put, decoded and type-checked on get.

A value that cannot be decoded (a forged or corrupt changelog record, a class changed without a
migration) is never replaced by fresh state: money would silently reset. :meth:`TypedTable.get`
raises :class:`StateQuarantined` with the table, key and reason; the agent's guard dead-letters
the message it was processing (so it can be replayed after a fix) and counts the key.

>>> from streams.state.windows import KeyWindows
>>> t = TypedTable({}, "open_buckets", KeyWindows)
>>> t.put("k", KeyWindows("k", 60))
>>> t.get("k").key, t.get("missing")
('k', None)
>>> t.raw["bad"] = b"not state"
>>> t.get("bad")
Traceback (most recent call last):
...
streams.state.tables.StateQuarantined: state of 'bad' in table open_buckets cannot be used: ...
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Generic, TypeVar

from streams.state.codec import StateDecodeError, decode, encode

T = TypeVar("T")


class StateQuarantined(Exception):
    """A key's stored state cannot be used; the key is left as it is (nothing reset) and reported."""

    def __init__(self, table: str, key: str, reason: str, data: bytes) -> None:
        super().__init__(f"state of {key!r} in table {table} cannot be used: {reason}")
        self.table, self.key, self.reason, self.data = table, key, reason, data


class TypedTable(Generic[T]):
    """A mapping of ``str`` to encoded bytes (a Faust table, or a dict in tests) seen as typed values."""

    def __init__(self, raw: MutableMapping[str, bytes], name: str, kind: type[T]) -> None:
        self.raw, self.name, self.kind = raw, name, kind

    def get(self, key: str) -> T | None:
        return self.decode(key, self.raw.get(key))

    def decode(self, key: str, data: bytes | None) -> T | None:
        """The value ``data`` (bytes of ``key``, from this table or about to be saved to it) holds."""
        if data is None:
            return None
        try:
            value = decode(data)
        except StateDecodeError as err:
            raise StateQuarantined(self.name, key, str(err), data) from err
        if not isinstance(value, self.kind):
            raise StateQuarantined(self.name, key, f"expected {self.kind.__name__}, found {type(value).__name__}",
                                   data)
        return value

    def put(self, key: str, value: T) -> None:
        self.raw[key] = encode(value)

    def save(self, partition: int, items: dict[str, bytes | None]) -> None:
        """Write encoded values (``None``: delete) of keys that live on ``partition``, outside any event: a
        Faust table gets them in its store and on its changelog partition ``partition`` (the one
        ``__setitem__`` would pick while processing a message of that partition); a plain mapping as is."""
        store = getattr(self.raw, "data", None)
        send = getattr(self.raw, "send_changelog", None)
        for key, data in items.items():
            if store is None or send is None:
                if data is None:
                    self.raw.pop(key, None)
                else:
                    self.raw[key] = data
            elif data is None:
                store.pop(key, None)
                send(partition, key, None, value_serializer="raw")
            else:
                store[key] = data
                send(partition, key, data)

    def delete(self, key: str) -> None:
        self.raw.pop(key, None)

    def keys(self) -> Iterator[str]:
        return iter(list(self.raw.keys()))

    def __len__(self) -> int:
        return len(self.raw)
