"""The registry of state classes: a type tag and an integer version per class that a table value may
hold (or hold inside it), and how its state is written and read. :mod:`streams.state.codec` uses it.

>>> from dataclasses import dataclass
>>> @state_type("doc_example", 1)
... @dataclass(slots=True)
... class Example:
...     n: int
>>> entry = by_tag("doc_example")
>>> entry.cls is Example, entry.version, entry.from_state({"n": 3})
(True, 1, Example(n=3))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from detectors.child_baselines import ChildBaselines
from detectors.ew_zscore import EwZScore
from detectors.gpu_tracker import GpuTracker
from detectors.holt_residual import HoltResidual
from detectors.monitor import SeriesMonitor
from detectors.pinned_model import ModelActivity, ServingStatus
from detectors.river_gaussian import RiverGaussian
from detectors.seasonal_z import SeasonalZ
from detectors.zombie_gpu import ZombieRules
from guardrails.burn_rate import BurnRule
from guardrails.burn_tracker import BurnTracker

__all__ = ["Migration", "StateType", "by_class", "by_tag", "register", "registered", "state_type"]

T = TypeVar("T")
Migration = Callable[[Any], Any]  # a version-v state (a dict, or a list of positional fields) -> version v + 1


@dataclass(frozen=True, slots=True)
class StateType:
    """One registered state class: its tag, current version, state writer/reader and migrations."""

    cls: type
    tag: str
    version: int
    to_state: Callable[[Any], Any]  # the state: a dict of plain data (or a list, for positional fields)
    from_state: Callable[[Any], Any]
    migrations: Mapping[int, Migration] = field(default_factory=dict)


# The registry is filled at import time by register()/@state_type (like Faust's own agent registry).
_BY_TAG: dict[str, StateType] = {}
_BY_CLASS: dict[type, StateType] = {}


def _field_names(cls: type, fields: Iterable[str] | None) -> tuple[str, ...]:
    if fields is not None:
        return tuple(fields)
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls))
    if isinstance(cls, type) and issubclass(cls, msgspec.Struct):
        return tuple(cls.__struct_fields__)
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return tuple(cls._fields)  # type: ignore[attr-defined]
    slots = [s for c in cls.__mro__ for s in getattr(c, "__slots__", ())]
    if slots:
        return tuple(s for s in slots if s not in ("__dict__", "__weakref__"))
    raise ValueError(f"{cls.__qualname__}: give fields=, or to_state()/from_state()")


def _passthrough(typ: type, obj: Any) -> Any:
    if isinstance(obj, typ):  # a registered object (or array) the decoder built already
        return obj
    raise TypeError(f"expected {typ.__name__}, got {type(obj).__name__}")


def _field_codec(cls: type, names: tuple[str, ...], check: Callable[[Any], None] | None, positional: bool
                 ) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """State = the declared fields: a dict by name, or (``positional``) a list in field order. Dataclasses,
    msgspec Structs and NamedTuples are rebuilt by ``msgspec.convert`` (types checked against their
    annotations, ``__init__`` not called; an int in a float field comes back a float); other classes get
    the fields set on ``object.__new__(cls)``."""
    wanted = frozenset(names)

    def to_state(obj: Any) -> Any:
        if positional:
            return [getattr(obj, n) for n in names]
        return {n: getattr(obj, n) for n in names}

    def by_name(state: Any) -> dict[str, Any]:
        if positional:
            if type(state) is not list or len(state) != len(names):
                raise ValueError(f"state is not a list of the {len(names)} fields")
            return dict(zip(names, state))
        if type(state) is not dict or state.keys() != wanted:
            got = state.keys() if type(state) is dict else set()
            missing, extra = sorted(wanted - got), sorted(map(str, got - wanted))
            raise ValueError(f"fields differ (missing {missing}, unexpected {extra})")
        return state

    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        def from_state(state: Any) -> Any:
            fields = by_name(state)
            return msgspec.convert([fields[n] for n in names], cls, dec_hook=_passthrough)
    elif dataclasses.is_dataclass(cls) or issubclass(cls, msgspec.Struct):
        def from_state(state: Any) -> Any:
            return msgspec.convert(by_name(state), cls, dec_hook=_passthrough)
    else:
        def from_state(state: Any) -> Any:
            fields = by_name(state)
            obj = object.__new__(cls)
            for n in names:
                object.__setattr__(obj, n, fields[n])
            return obj
    if check is None:
        return to_state, from_state
    build = from_state

    def checked(state: Any) -> Any:
        obj = build(state)
        check(obj)  # raises on a value the class cannot work with (types, lengths, ranges)
        return obj
    return to_state, checked


def register(cls: type[T], tag: str | None = None, version: int | None = None, *,
             fields: Iterable[str] | None = None, migrations: Mapping[int, Migration] | None = None,
             to_state: Callable[[T], Mapping[str, Any]] | None = None,
             from_state: Callable[[dict[str, Any]], T] | None = None,
             check: Callable[[T], None] | None = None, positional: bool | None = None) -> type[T]:
    """Register ``cls`` as a state class under ``tag`` at ``version`` (defaults: ``cls.STATE_TAG``,
    ``cls.STATE_VERSION``). Its state is ``to_state(obj)`` / ``from_state(state)`` when given, else the
    class's own ``to_state()`` method and ``from_state`` classmethod, else its declared ``fields``
    (dataclass / Struct / NamedTuple fields or ``__slots__``; ``check(obj)`` then vets the rebuilt
    object, raising on types, lengths or ranges it cannot work with; ``positional`` stores them as a
    list in field order without the names: the default for a NamedTuple, worth it for a small value
    held many times). ``migrations[v]`` turns a version-``v`` state into a version-``v + 1`` one (default:
    the class's ``STATE_MIGRATIONS``).
    Exact classes only: register a subclass on its own."""
    tag = tag if tag is not None else getattr(cls, "STATE_TAG", None)
    version = version if version is not None else getattr(cls, "STATE_VERSION", None)
    if migrations is None:
        migrations = getattr(cls, "STATE_MIGRATIONS", None)
    if not isinstance(tag, str) or not tag or not isinstance(version, int) or version < 1:
        raise ValueError(f"{cls.__qualname__}: a state class needs a tag and a version >= 1")
    held = _BY_TAG.get(tag)
    if held is not None and (held.cls.__module__, held.cls.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"state tag {tag!r} is taken by {held.cls.__module__}.{held.cls.__qualname__}")
    if migrations and not all(isinstance(v, int) and 1 <= v < version for v in migrations):
        raise ValueError(f"{tag}: migrations must come from versions 1..{version - 1}")
    own_to, own_from = getattr(cls, "to_state", None), getattr(cls, "from_state", None)
    if to_state is None and from_state is None and callable(own_to) and callable(own_from) and fields is None:
        to_state, from_state = own_to, own_from
    elif to_state is None or from_state is None:
        if positional is None:
            positional = issubclass(cls, tuple) and hasattr(cls, "_fields")
        to_state, from_state = _field_codec(cls, _field_names(cls, fields), check, positional)
    if held is not None:
        _BY_CLASS.pop(held.cls, None)  # the same class, imported again (pytest's importlib mode)
    entry = StateType(cls, tag, version, to_state, from_state, dict(migrations or {}))
    _BY_TAG[tag] = _BY_CLASS[cls] = entry
    return cls


def state_type(tag: str, version: int, *, migrations: Mapping[int, Migration] | None = None,
               check: Callable[[Any], None] | None = None) -> Callable[[type[T]], type[T]]:
    """Class decorator: ``@state_type("bucket_state", version=1)`` on a dataclass, msgspec Struct,
    NamedTuple, or a class with ``to_state()``/``from_state()``; see :func:`register`."""
    def deco(cls: type[T]) -> type[T]:
        return register(cls, tag, version, migrations=migrations, check=check)
    return deco


def by_class(cls: type) -> StateType | None:
    """The registration of exactly ``cls`` (``None``: not a state class)."""
    return _BY_CLASS.get(cls)


def by_tag(tag: str) -> StateType | None:
    return _BY_TAG.get(tag)


def registered() -> dict[str, tuple[type, int]]:
    """Every registered tag -> (class, current version)."""
    return {t: (e.cls, e.version) for t, e in sorted(_BY_TAG.items())}


# the domain's state classes
# (each defines STATE_TAG, STATE_VERSION, to_state() and from_state(); the small frozen config values
# are stored by their declared fields; the stream's own table values register in streams.state.values)

for _cls in (SeriesMonitor, SeasonalZ, EwZScore, HoltResidual, RiverGaussian, ChildBaselines, BurnTracker,
             GpuTracker, ModelActivity):
    register(_cls)
register(BurnRule, "burn_rule", 1, positional=True)
register(ZombieRules, "zombie_rules", 1, positional=True)
register(ServingStatus, "serving_status", 1)  # a NamedTuple: positional
