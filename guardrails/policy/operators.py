"""Comparisons in a rule's ``when``: ``lt lte gt gte eq in``; all operators given must hold.

A scalar is shorthand for ``eq`` and a list for ``in``.

>>> C = comparison(float)
>>> c = C.model_validate({"gt": 100, "lte": 1000})
>>> c.test(250.0), c.test(100.0), c.test(None), c.describe()
(True, False, False, '> 100 and <= 1000')
>>> C.model_validate([1, 2]).describe(), C.model_validate(5).describe()
('in [1, 2]', '== 5')
>>> try:
...     C.model_validate({"le": 5})
... except ValueError as err:
...     print(err.errors()[0]["msg"])
unknown operator 'le'; use lt, lte, gt, gte, eq or in
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic_core import PydanticCustomError

OPERATORS: tuple[str, ...] = ("lt", "lte", "gt", "gte", "eq", "in")
_DISPLAY: tuple[str, ...] = ("gt", "gte", "lt", "lte", "eq", "in")
SYMBOLS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "eq": "==", "in": "in"}
_FUNC: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge, "eq": operator.eq,
    "in": lambda a, b: a in b}


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v == int(v):
        return str(int(v))
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


class ComparisonBase(BaseModel):
    """Operator -> operand; built per value type by :func:`comparison`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    allowed: ClassVar[tuple[str, ...]] = OPERATORS

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        if isinstance(data, list):
            data = {"in": data}
        elif not isinstance(data, dict):
            data = {"eq": data}
        if not data:
            raise PydanticCustomError("operator", "give at least one operator: {ops}",
                                      {"ops": ", ".join(cls.allowed)})
        for k in data:
            if k not in OPERATORS:
                raise PydanticCustomError("operator", "unknown operator '{op}'; use {ops}",
                                          {"op": k, "ops": ", ".join(OPERATORS[:-1]) + " or in"})
            if k not in cls.allowed:
                raise PydanticCustomError("operator", "operator '{op}' does not apply here; use {ops}",
                                          {"op": k, "ops": ", ".join(cls.allowed)})
        return data

    def ops(self) -> list[tuple[str, Any]]:
        """(operator, operand) pairs given, lower bounds first (``> 100 and <= 1000``)."""
        return [(op, getattr(self, f"op_{op}")) for op in _DISPLAY if getattr(self, f"op_{op}", None) is not None]

    def test(self, actual: Any) -> bool:
        """Whether ``actual`` satisfies every operator (a missing value, ``None``, never does)."""
        if actual is None:
            return False
        try:
            return all(_FUNC[op](actual, operand) for op, operand in self.ops())
        except TypeError:
            return False

    def describe(self) -> str:
        return " and ".join(f"{SYMBOLS[op]} {_fmt(v)}" for op, v in self.ops())

    def upper_bound(self) -> float | None:
        """The largest value this comparison admits, if it has one (``lt``/``lte``/``eq``/``in``)."""
        bounds = [v for op, v in self.ops() if op in ("lt", "lte", "eq")]
        bounds += [max(v) for op, v in self.ops() if op == "in" and v]
        nums = [float(b) for b in bounds if isinstance(b, (int, float))]
        return min(nums) if nums else None


def comparison(value_type: Any, allowed: tuple[str, ...] = OPERATORS, name: str | None = None) -> type[ComparisonBase]:
    """A comparison model whose operands are ``value_type`` (``in`` takes a list of them)."""
    fields: dict[str, Any] = {}
    for op in allowed:
        typ = list[value_type] if op == "in" else value_type  # type: ignore[valid-type]
        fields[f"op_{op}"] = (typ | None, Field(None, alias=op))  # YAML says `lt:`; `in` is a keyword
    model = create_model(name or f"Comparison[{getattr(value_type, '__name__', value_type)}]",
                         __base__=ComparisonBase, **fields)
    model.allowed = allowed
    return model
