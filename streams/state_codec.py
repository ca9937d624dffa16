"""Encode table state (bucket sums, detector monitors) for Faust changelogs, safely.

Pickle is compact and handles river's estimators, but an unrestricted ``pickle.loads``
runs whatever a changelog writer put there. :func:`loads` only builds *classes* defined in
burnguard's own packages or river (checked on the resolved object, not on the name), plus a
short list of exact (module, name) pairs: stdlib containers and the reconstructors pickle needs.
Dotted names and functions from allowed packages are refused.

>>> from streams.windows import OpenBuckets
>>> loads(dumps(OpenBuckets("k", 60))).key
'k'
>>> import pickle, os
>>> loads(pickle.dumps(os.system))
Traceback (most recent call last):
...
_pickle.UnpicklingError: refusing to load posix.system from table state
"""

from __future__ import annotations

import importlib
import io
import pickle
from typing import Any

#: Packages whose own classes may be rebuilt (the object's ``__module__`` must be inside them).
_CLASS_PACKAGES = ("detectors", "guardrails", "schemas", "river", "streams.windows")
#: Exact (module, name) pairs: stdlib types and the reconstructors pickle calls.
_ALLOWED = frozenset({
    *(("builtins", n) for n in ("set", "frozenset", "list", "dict", "tuple", "int", "float", "complex",
                                "bytes", "bytearray", "str", "bool", "slice", "range", "object")),
    ("collections", "deque"), ("collections", "OrderedDict"), ("collections", "defaultdict"),
    ("collections", "Counter"), ("datetime", "datetime"), ("datetime", "timedelta"), ("datetime", "timezone"),
    ("datetime", "date"), ("copyreg", "_reconstructor"), ("array", "array"), ("array", "_array_reconstructor"),
    ("random", "Random"), ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
})


def _in_packages(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in _CLASS_PACKAGES)


class _StateUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if "." not in name:
            if (module, name) in _ALLOWED:
                return super().find_class(module, name)
            if _in_packages(module):
                obj = getattr(importlib.import_module(module), name, None)
                if isinstance(obj, type) and _in_packages(obj.__module__):
                    return obj
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from table state")


def dumps(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> Any:
    return _StateUnpickler(io.BytesIO(data)).load()
