"""Table values as versioned msgpack (msgspec): explicit types, limits checked on decode, no pickle.

A table value is data: ``None``, ``bool``, ``int`` (64-bit), ``float``, ``str``, ``bytes``, ``list``,
``dict`` (``str`` or ``int`` keys), ``tuple``, ``datetime``, a numpy array or an ``array.array``
(element types from a small allowlist), and instances of *registered* state classes. A class is
registered with a type tag and an integer version (:func:`register`, or the :func:`state_type`
decorator); its state is a dict of data, written by its ``to_state()`` (or read from its declared
fields) and rebuilt by its ``from_state(state)`` classmethod (or by setting the declared fields on
``object.__new__(cls)``), never by running a constructor with decoded arguments. A state written
by an older version is migrated when the class registered a migration from that version, and
refused otherwise. Nothing a decoder builds is larger than a small multiple of its input (every
length is checked against the bytes present, lists and dicts are bounded in number, and there is no
code to call): at most ~20x the input, so ~20 MiB for the default 1 MiB limit.

Wire format: ``b"\\xc1\\x01"`` (0xc1 is a byte msgpack never uses; 0x01 the format) + msgpack, where
tuples, objects, arrays and non-UTC datetimes are msgpack extension values (see ``_EXT_*``).

>>> from datetime import datetime, timezone
>>> value = (3, {"usage.llm/0": 7}, [1.5, None], datetime(2026, 11, 20, tzinfo=timezone.utc))
>>> decode(encode(value)) == value
True
>>> decode(b"\\x80\\x04K\\x01.", table="monitors")  # an old pickled value
Traceback (most recent call last):
...
streams.state.codec.StateDecodeError: monitors: a pickle (state written before the msgpack codec), refused
>>> decode(encode(value)[:-3])
Traceback (most recent call last):
...
streams.state.codec.StateDecodeError: not valid msgpack: Input data was truncated
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import compress
from operator import not_
from typing import Any

import msgspec
import numpy as np

from streams.state.registry import by_class, by_tag, register, registered, state_type

__all__ = ["DEFAULT_LIMITS", "Limits", "StateDecodeError", "StateEncodeError", "decode", "encode", "plain_state",
           "register", "registered", "state_of", "state_type"]

PREFIX = b"\xc1\x01"
_EXT_TUPLE, _EXT_OBJECT, _EXT_NDARRAY, _EXT_ARRAY, _EXT_DATETIME = 1, 2, 3, 4, 5
#: numpy element types a state may hold (little-endian, fixed size: no objects, strings or records)
NDARRAY_DTYPES = frozenset({"|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f2", "<f4", "<f8"})
#: ``array.array`` type codes a state may hold
ARRAY_TYPECODES = frozenset("bBhHiIlLqQfd")
_MAX_NDIM = 8
_PLAIN = frozenset({type(None), bool, int, float, str, bytes})
_KEYS = frozenset({str, int})
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)
_CONTAINER_BYTES = bytes(range(0x80, 0xA0)) + b"\xdc\xdd\xde\xdf"  # fixmap, fixarray, array16/32, map16/32


class StateDecodeError(ValueError):
    """A table value that cannot be decoded: quarantine it with its key and ``reason``; never reset it."""

    def __init__(self, reason: str, table: str | None = None, key: str | None = None) -> None:
        self.reason, self.table, self.key = reason, table, key
        where = ":".join(p for p in (table, key) if p)
        super().__init__(f"{where}: {reason}" if where else reason)


class StateEncodeError(TypeError):
    """A value the codec cannot store (an unregistered class, a dict key that is not str/int, too large):
    a bug in the code writing the state, raised before anything undecodable reaches a changelog."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What :func:`decode` accepts (and :func:`encode` refuses to write beyond)."""

    max_bytes: int = 1 << 20  # encoded size of one table value
    max_depth: int = 32  # nesting of tuples, objects and arrays (plain lists/dicts: Python's recursion guard)
    # an upper bound on the lists and dicts in a value (bytes that could open one: an empty list costs 64
    # bytes of memory for 1 of input; numbers, strings and bytes at most ~20x their input)
    max_containers: int = 1 << 18


DEFAULT_LIMITS = Limits()


#: Registered classes whose state is plain data only (dicts with str/int keys, lists, numbers, text, bools):
#: written by msgspec as it is, without walking it (their ``check`` still runs on decode).
_PLAIN_STATES: set[type] = set()


def plain_state(cls: type) -> type:
    """Declare that a registered class's ``to_state()`` holds plain data only (no tuples, objects, arrays or
    datetimes), so :func:`encode` need not walk it: for states written on the hot path (an open window per key
    per message). A tuple in such a state would come back a list: the class's ``check`` must refuse that."""
    _PLAIN_STATES.add(cls)
    return cls


def state_of(value: Any) -> tuple[str, int, Any]:
    """The tag, version and state (a dict, or a list of positional fields) a registered ``value`` is
    stored as (tools, benchmarks)."""
    entry = by_class(type(value))
    if entry is None:
        raise StateEncodeError(f"{type(value).__qualname__} is not a registered state type")
    return entry.tag, entry.version, entry.to_state(value)


# ---------------------------------------------------------------------------------- encode

class _Writer:
    __slots__ = ("encoder", "max_depth")

    def __init__(self, max_depth: int) -> None:
        self.encoder = msgspec.msgpack.Encoder()
        self.max_depth = max_depth

    def pack_dict(self, v: dict[Any, Any], depth: int) -> dict[Any, Any]:
        if not _KEYS.issuperset(map(type, v)):
            raise StateEncodeError(f"dict keys {sorted({type(k).__name__ for k in v})}: only str and int are stored")
        out = dict(v)
        # (the keys whose values are not plain, found in C: most state dicts hold a few among many numbers)
        for k in compress(v, map(not_, map(_PLAIN.__contains__, map(type, v.values())))):
            out[k] = self.pack(out[k], depth)
        return out

    def ext(self, code: int, payload: Any) -> msgspec.msgpack.Ext:
        return msgspec.msgpack.Ext(code, self.encoder.encode(payload))

    def pack(self, v: Any, depth: int) -> Any:
        t = type(v)
        if t in _PLAIN:
            return v
        if t is list:
            if _PLAIN.issuperset(map(type, v)):  # (in C) all plain: msgspec writes it as it is
                return v
            return [x if type(x) in _PLAIN else self.pack(x, depth) for x in v]
        if t is dict:
            if _PLAIN.issuperset(map(type, v.values())) and _KEYS.issuperset(map(type, v)):
                return v
            return self.pack_dict(v, depth)
        if depth >= self.max_depth:
            raise StateEncodeError(f"state nested deeper than {self.max_depth}")
        entry = by_class(t)
        if entry is not None:
            state = entry.to_state(v)
            if t in _PLAIN_STATES:
                return self.ext(_EXT_OBJECT, [entry.tag, entry.version, state])
            packed = self.pack_dict(state, depth + 1) if type(state) is dict else self.pack(list(state), depth + 1)
            return self.ext(_EXT_OBJECT, [entry.tag, entry.version, packed])
        if t is tuple:
            return self.ext(_EXT_TUPLE, [x if type(x) in _PLAIN else self.pack(x, depth + 1) for x in v])
        if t is datetime:
            if v.tzinfo is timezone.utc:
                return v  # msgpack's own timestamp: decoded as a UTC datetime
            off = v.utcoffset()
            if off is None:
                return self.ext(_EXT_DATETIME, [(v - _NAIVE_EPOCH) // _US, None])
            return self.ext(_EXT_DATETIME, [(v - _EPOCH) // _US, off // _US])
        if t is array:
            if v.typecode not in ARRAY_TYPECODES:
                raise StateEncodeError(f"array typecode {v.typecode!r} is not stored")
            return msgspec.msgpack.Ext(_EXT_ARRAY, v.typecode.encode() + v.tobytes())  # typecode, raw items
        if t is np.ndarray:
            if v.dtype.str not in NDARRAY_DTYPES or v.ndim > _MAX_NDIM:
                raise StateEncodeError(f"numpy array of {v.dtype.str} x {v.ndim} dims is not stored")
            return self.ext(_EXT_NDARRAY, [v.dtype.str, list(v.shape), np.ascontiguousarray(v).tobytes()])
        raise StateEncodeError(f"{t.__module__}.{t.__qualname__} is not a registered state type")


_WRITERS: dict[int, _Writer] = {}


def encode(value: Any, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The table bytes of ``value`` (raises :class:`StateEncodeError` for what :func:`decode` would refuse)."""
    w = _WRITERS.get(limits.max_depth)
    if w is None:
        w = _WRITERS[limits.max_depth] = _Writer(limits.max_depth)  # holds no state between calls
    try:
        data = PREFIX + w.encoder.encode(w.pack(value, 0))
    except (OverflowError, msgspec.EncodeError) as err:  # an int beyond 64 bits
        raise StateEncodeError(f"not storable: {err}") from None
    if len(data) > limits.max_bytes:
        raise StateEncodeError(f"encoded state is {len(data)} bytes, over the {limits.max_bytes}-byte limit")
    return data


# ---------------------------------------------------------------------------------- decode

class _Reader:
    __slots__ = ("decoder", "depth", "max_depth")

    def __init__(self, max_depth: int) -> None:
        self.decoder = msgspec.msgpack.Decoder(ext_hook=self.hook)
        self.depth = 0
        self.max_depth = max_depth

    def hook(self, code: int, data: memoryview) -> Any:
        if self.depth >= self.max_depth:
            raise StateDecodeError(f"nested deeper than {self.max_depth}")
        self.depth += 1
        try:
            if code == _EXT_TUPLE:
                return tuple(_as(list, self.decoder.decode(data), "tuple"))
            if code == _EXT_OBJECT:
                return self.obj(_as(list, self.decoder.decode(data), "object"))
            if code == _EXT_NDARRAY:
                return _ndarray(_as(list, self.decoder.decode(data), "ndarray"))
            if code == _EXT_ARRAY:
                return _array(data)
            if code == _EXT_DATETIME:
                return _datetime(_as(list, self.decoder.decode(data), "datetime"))
            raise StateDecodeError(f"unknown extension type {code}")
        finally:
            self.depth -= 1

    def obj(self, parts: list[Any]) -> Any:
        if len(parts) != 3 or type(parts[0]) is not str or type(parts[1]) is not int or \
                type(parts[2]) not in (dict, list):
            raise StateDecodeError("an object is [tag, version, state]")
        tag, version, state = parts
        entry = by_tag(tag)
        if entry is None:
            raise StateDecodeError(f"unregistered type tag {tag[:64]!r}")
        if version != entry.version:
            if version > entry.version or version < 1:
                raise StateDecodeError(f"{tag} version {version}, this code reads up to {entry.version}")
            for v in range(version, entry.version):
                migrate = entry.migrations.get(v)
                if migrate is None:
                    raise StateDecodeError(f"{tag} version {version} (current {entry.version}): "
                                           f"no migration from version {v}")
                try:
                    state = migrate(state)
                except Exception as err:  # noqa: BLE001 - a migration refusing an old state
                    raise StateDecodeError(f"{tag} migration from version {v}: {err}") from None
        try:
            return entry.from_state(state)
        except StateDecodeError:
            raise
        except Exception as err:  # noqa: BLE001 - any field a class refuses
            raise StateDecodeError(f"{tag} version {entry.version}: {err}") from None


def _as(typ: type, v: Any, what: str) -> Any:
    if type(v) is not typ:
        raise StateDecodeError(f"malformed {what} value")
    return v


def _ndarray(parts: list[Any]) -> np.ndarray:
    if len(parts) != 3 or type(parts[0]) is not str or type(parts[1]) is not list or type(parts[2]) is not bytes:
        raise StateDecodeError("an ndarray is [dtype, shape, bytes]")
    dtype, shape, raw = parts
    if dtype not in NDARRAY_DTYPES:
        raise StateDecodeError(f"ndarray dtype {dtype[:16]!r} is not allowed")
    if len(shape) > _MAX_NDIM or not all(type(n) is int and n >= 0 for n in shape):
        raise StateDecodeError("ndarray shape must be at most 8 non-negative ints")
    dt = np.dtype(dtype)
    if math.prod(shape) * dt.itemsize != len(raw):
        raise StateDecodeError(f"ndarray {shape} of {dtype} needs {math.prod(shape) * dt.itemsize} bytes, "
                               f"{len(raw)} present")
    return np.frombuffer(raw, dtype=dt).reshape(shape).copy()


def _array(data: memoryview) -> array:
    typecode = chr(data[0]) if len(data) else ""
    if typecode not in ARRAY_TYPECODES:
        raise StateDecodeError("an array is a typecode and raw items, with an allowed typecode")
    a = array(typecode)
    if (len(data) - 1) % a.itemsize:
        raise StateDecodeError(f"array of {typecode!r}: {len(data) - 1} bytes is not a whole number of items")
    a.frombytes(data[1:])
    return a


def _datetime(parts: list[Any]) -> datetime:
    if len(parts) != 2 or type(parts[0]) is not int or not (parts[1] is None or type(parts[1]) is int):
        raise StateDecodeError("a datetime is [microseconds, utc offset microseconds or nil]")
    try:
        if parts[1] is None:
            return _NAIVE_EPOCH + timedelta(microseconds=parts[0])
        return (_EPOCH + timedelta(microseconds=parts[0])).astimezone(timezone(timedelta(microseconds=parts[1])))
    except (OverflowError, ValueError) as err:
        raise StateDecodeError(f"datetime out of range: {err}") from None


def decode(data: bytes | bytearray | memoryview, *, table: str | None = None, key: str | None = None,
           expect: type | tuple[type, ...] | None = None, limits: Limits = DEFAULT_LIMITS) -> Any:
    """The value :func:`encode` wrote; anything else raises :class:`StateDecodeError` (and only that).

    ``expect``: the type(s) the table holds (a value of another type is refused too);
    ``table`` / ``key`` only label the error.
    """
    try:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise StateDecodeError(f"table value is {type(data).__name__}, not bytes")
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        if size > limits.max_bytes:
            raise StateDecodeError(f"encoded state is {size} bytes, over the {limits.max_bytes}-byte limit")
        view = memoryview(data)
        containers = size - len(bytes(data).translate(None, _CONTAINER_BYTES))  # in C; no parse
        if containers > limits.max_containers:
            raise StateDecodeError(f"{containers} possible lists/dicts, over the limit of {limits.max_containers}")
        if view[:2] != PREFIX:
            if view[:1] == b"\x80":
                raise StateDecodeError("a pickle (state written before the msgpack codec), refused")
            raise StateDecodeError("not a burnguard state value (unknown format prefix)")
        try:
            value = _Reader(limits.max_depth).decoder.decode(view[2:])
        except msgspec.DecodeError as err:
            raise StateDecodeError(f"not valid msgpack: {err}") from None
        if expect is not None and not isinstance(value, expect):
            raise StateDecodeError(f"expected {_names(expect)}, got {type(value).__name__}")
        return value
    except StateDecodeError as err:
        if table is None and key is None:
            raise
        raise StateDecodeError(err.reason, table, key) from None
    except RecursionError:
        raise StateDecodeError("nested too deeply", table, key) from None
    except Exception as err:  # noqa: BLE001 - the one error a caller handles is StateDecodeError
        raise StateDecodeError(f"undecodable: {type(err).__name__}: {err}", table, key) from None


def _names(expect: type | tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in (expect if isinstance(expect, tuple) else (expect,)))
