"""Encode table state (bucket sums, detector monitors) for Faust changelogs, safely.

Pickle is compact and handles river's estimators, but an unrestricted ``pickle.loads``
runs whatever a changelog writer put there. :func:`loads` only builds classes from
burnguard's own packages, river and a few stdlib containers.

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

import io
import pickle
from typing import Any

_ALLOWED_PREFIXES = ("detectors.", "streams.windows", "guardrails.", "schemas.", "river.", "collections",
                     "datetime", "numpy.", "numpy")
_ALLOWED_NAMES = {("array", "array"), ("array", "_array_reconstructor"), ("copyreg", "_reconstructor"),
                  ("random", "Random")}
_SAFE_BUILTINS = frozenset({"set", "frozenset", "list", "dict", "tuple", "int", "float", "complex",
                            "bytes", "bytearray", "str", "bool", "slice", "range", "object"})


class _StateUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        ok = (module == "builtins" and name in _SAFE_BUILTINS) or (module, name) in _ALLOWED_NAMES or \
             module.startswith(_ALLOWED_PREFIXES)
        if not ok:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from table state")
        return super().find_class(module, name)


def dumps(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> Any:
    return _StateUnpickler(io.BytesIO(data)).load()
