"""Named detectors; the service and ``burnguard detect`` build them from here.

>>> make_detector().name == DEFAULT_DETECTOR
True
>>> sorted(DETECTORS)[:3]
['ew_zscore', 'holt_residual', 'river_gaussian']
>>> make_detector("seasonal_z_both").name
'seasonal_z_both'
"""

from __future__ import annotations

from collections.abc import Callable

from detectors.base import SeriesDetector
from detectors.ew_zscore import EwZScore
from detectors.holt_residual import HoltResidual
from detectors.river_gaussian import RiverGaussian
from detectors.seasonal_z import SeasonalZ, seasonal_z_both

DETECTORS: dict[str, Callable[[], SeriesDetector]] = {
    "ew_zscore": EwZScore,
    "holt_residual": HoltResidual,
    "river_gaussian": RiverGaussian,
    "seasonal_z": SeasonalZ,
    "seasonal_z_both": seasonal_z_both,
}
DEFAULT_DETECTOR = "seasonal_z"


def make_detector(name: str | None = None) -> SeriesDetector:
    name = name or DEFAULT_DETECTOR
    try:
        return DETECTORS[name]()
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; known: {', '.join(sorted(DETECTORS))}") from None
