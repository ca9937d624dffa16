"""Whether orjson, the reference path's JSON parser, reads a message that msgspec has already decoded.

The fast decoders (:mod:`schemas.fast_native`, :mod:`schemas.fast_litellm`) decode with msgspec, which checks
everything it decodes but not what it skips (fields a struct does not name, an envelope's other keys) for two
things orjson rejects: invalid UTF-8 and numbers beyond a double (``1e400``). The reference would make such a
message one "invalid JSON" dead letter, so a fast decoder must not take it: :func:`orjson_reads` says whether
it may, cheaply for the usual message (ASCII, no long digit run, no 3-digit exponent), else by asking orjson.
Everything else msgspec skips it checks as orjson does (syntax, control characters, escapes, surrogates) or
more strictly (nesting depth: then the reference decides).
"""

from __future__ import annotations

import re

import orjson

__all__ = ["orjson_reads"]

#: A digit as ``0``, an exponent mark or sign as ``e``, what ends a number as ``,``, anything else as ``x``.
_DIGITS = bytes(ord("0") if chr(c) in "0123456789" else ord("e") if chr(c) in "eE+-"
                else ord(",") if chr(c) in ",]} \t\r\n" else ord("x") for c in range(256))
_RUN = b"0" * 200
_EXPONENT = re.compile(rb"e000+,")


def orjson_reads(raw: bytes) -> bool:
    """Whether orjson reads ``raw``, given that msgspec decoded it. So: orjson itself on a message that is not
    ASCII, or that holds a run of 200 digits or an exponent of 3 digits or more followed by a delimiter
    (``_DIGITS`` makes them ``0``, an exponent ``e`` or sign ``e``, a delimiter ``,``): any number that overflows
    has one of them (an exponent of at most 99 needs 209 integer digits); else ``True`` without parsing.

    >>> orjson_reads(b'[{"a": 1.5e99, "h": "0e1234"}]'), orjson_reads(b'[{"a": 1e400}]'), orjson_reads(b'["\\xff"]')
    (True, False, False)
    >>> orjson_reads(b'{"events": [], "x": "\\xc3\\xa9", "n": 1e-400}'), orjson_reads(b'[1' + b'0' * 400 + b']')
    (True, False)
    """
    if raw.isascii():
        shape = raw.translate(_DIGITS)
        if _RUN not in shape and _EXPONENT.search(shape) is None:
            return True
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return True
