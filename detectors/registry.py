"""Named detectors; the service and ``burnguard detect`` build them from here.

>>> make_detector().name == DEFAULT_DETECTOR
True
>>> sorted(DETECTORS)[:1]
['ew_zscore']
"""

from __future__ import annotations

from collections.abc import Callable

from detectors.base import SeriesDetector
from detectors.ew_zscore import EwZScore

DETECTORS: dict[str, Callable[[], SeriesDetector]] = {
    "ew_zscore": EwZScore,
}
DEFAULT_DETECTOR = "ew_zscore"


def make_detector(name: str | None = None) -> SeriesDetector:
    name = name or DEFAULT_DETECTOR
    try:
        return DETECTORS[name]()
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; known: {', '.join(sorted(DETECTORS))}") from None
