"""Registries of policy conditions and actions (Cloud Custodian's filters and actions are the model).

Each condition or action is a class registered under its YAML name, with ``schema`` (the
pydantic model its value must satisfy) and a docstring carrying a YAML example. The loader
validates against ``schema`` and ``docs/policies.md`` is generated from the same classes, so
what is accepted and what is documented cannot drift apart.

>>> reg = Registry("widget")
>>> @reg.register("blue")
... class Blue:
...     '''A blue widget.'''
>>> reg.get("blue") is Blue, Blue.name, reg.names(), reg.get("red")
(True, 'blue', ['blue'], None)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Name -> class, in registration order (the order the docs list them)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(cls: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            cls.name = name  # type: ignore[attr-defined]
            self._items[name] = cls
            return cls
        return deco

    def get(self, name: str) -> T | None:
        return self._items.get(name)

    def names(self) -> list[str]:
        return list(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._items.items())

    def unknown(self, name: object) -> str:
        """The message for a name that is not registered."""
        return f"unknown {self.kind} {name!r}; known: {', '.join(self._items)}"
