"""Numenta Anomaly Benchmark scoring, reimplemented from the published rules.

Rules (numenta/NAB ``nab/sweeper.py``, ``nab/runner.py``, ``config/profiles.json``):

* every file has labelled anomaly windows ``[start, end]`` (timestamps of rows);
* the first 15 % of each file (at most 750 rows) is probationary: not scored;
* a row inside a window, if detected, is worth ``tp * S(pos) / S(-1)`` with the scaled
  sigmoid ``S(p) = 2 / (1 + exp(5 p)) - 1`` and ``pos = -(right - i + 1) / width``;
  only the best (earliest) detection of each window counts; a window without a
  detection costs ``-fn``;
* a detection outside every window costs ``fp * S(dist / (prev_width - 1))`` after a
  window (``-fp`` before the first window, ``S`` is -1 beyond 3 widths);
* one threshold is shared by the whole corpus and chosen to maximise the total;
* totals are normalised: ``100 * (score - null) / (perfect - null)`` where the null
  detector never fires and the perfect one fires at each window's first row.

>>> round(scaled_sigmoid(-1.0), 5), scaled_sigmoid(0.0), scaled_sigmoid(3.5)
(0.98661, 0.0, -1.0)
>>> probationary_length(1000), probationary_length(10000)
(150, 750)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

def _nab_root() -> Path:
    """``BURNGUARD_NAB_ROOT``, else ``shared/datasets/nab`` beside the checkout (as CI lays it out)."""
    env = os.environ.get("BURNGUARD_NAB_ROOT")
    if env:
        return Path(env)
    beside = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "nab"
    return beside if beside.exists() else Path("/work/shared/datasets/nab")


NAB_ROOT = _nab_root()
PROBATION_PERCENT = 0.15


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    tp: float
    fp: float
    fn: float


PROFILES: dict[str, Profile] = {
    "standard": Profile("standard", 1.0, 0.11, 1.0),
    "reward_low_FP_rate": Profile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    "reward_low_FN_rate": Profile("reward_low_FN_rate", 1.0, 0.11, 2.0),
}


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def scaled_sigmoid(position: float) -> float:
    """NAB's positional weight: ~0.987 at a window's left edge, 0 at its right edge, -1 far after."""
    if position > 3.0:
        return -1.0
    return 2.0 * sigmoid(-5.0 * position) - 1.0


MAX_TP = scaled_sigmoid(-1.0)


def probationary_length(n_rows: int, percent: float = PROBATION_PERCENT) -> int:
    """Rows at the start of a file whose detections are not scored."""
    return int(min(math.floor(percent * n_rows), percent * 5000))


@dataclass(frozen=True, slots=True)
class LabelledRow:
    """One scorable row: which window it is in (or ``None``) and its unweighted positional value."""

    window: str | None
    value: float  # S(pos) inside a window, the (negative) unweighted FP value outside


@dataclass(frozen=True, slots=True)
class DataFile:
    name: str
    timestamps: list[datetime]
    values: list[float]
    windows: list[tuple[datetime, datetime]]


def parse_ts(s: str) -> datetime:
    return datetime.fromisoformat(s.strip())


def load_corpus(root: Path = NAB_ROOT) -> list[DataFile]:
    """All data files with their label windows, sorted by name."""
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    files = []
    for rel in sorted(windows):
        ts, vs = [], []
        with open(root / "data" / rel) as fh:
            next(fh)
            for line in fh:
                a, b = line.rstrip("\n").split(",")
                ts.append(parse_ts(a))
                vs.append(float(b))
        files.append(DataFile(rel, ts, vs, [(parse_ts(a), parse_ts(b)) for a, b in windows[rel]]))
    return files


def label_rows(name: str, timestamps: Sequence[datetime], windows: Iterable[tuple[datetime, datetime]],
               percent: float = PROBATION_PERCENT) -> list[LabelledRow | None]:
    """Window membership and positional value of every row; ``None`` for probationary rows.

    Mirrors ``Sweeper.calcSweepScore``.

    >>> ts = list(range(20))
    >>> rows = label_rows("f", ts, [(10, 13)], percent=0.15)
    >>> rows[2] is None, rows[3].window, rows[3].value
    (True, None, -1.0)
    >>> rows[10].window, round(rows[10].value, 5), round(rows[13].value, 5)
    ('f|10', 0.98661, 0.5546)
    >>> round(rows[16].value, 5)  # 3 rows after a width-4 window: S(3/3)
    -0.98661
    """
    index = {t: i for i, t in enumerate(timestamps)}
    pending = sorted(windows)
    prob = probationary_length(len(timestamps), percent)
    out: list[LabelledRow | None] = []
    cur: tuple[int, int, str] | None = None  # (left, right, name)
    prev: tuple[int, float] | None = None  # (right index, width)
    for i, t in enumerate(timestamps):
        if pending and t == pending[0][0]:
            a, b = pending.pop(0)
            cur = (index[a], index[b], f"{name}|{a}")
        if cur is not None:
            width = float(cur[1] - cur[0] + 1)
            row = LabelledRow(cur[2], scaled_sigmoid(-(cur[1] - i + 1) / width))
        elif prev is None:
            row = LabelledRow(None, -1.0)
        else:
            row = LabelledRow(None, scaled_sigmoid(abs(prev[0] - i) / (prev[1] - 1.0)))
        out.append(row if i >= prob else None)
        if cur is not None and i == cur[1]:
            prev = (cur[1], float(cur[1] - cur[0] + 1))
            cur = None
    return out


@dataclass(frozen=True, slots=True)
class SweepResult:
    threshold: float
    raw: float
    null: float
    perfect: float

    @property
    def normalized(self) -> float:
        return 100.0 * (self.raw - self.null) / (self.perfect - self.null)


def sweep(rows: Sequence[LabelledRow], scores: Sequence[float], profile: Profile, n_windows: int) -> SweepResult:
    """Best corpus score over all thresholds (``score >= threshold`` is a detection).

    ``rows``/``scores`` are the scorable rows of every file concatenated; ``n_windows`` is
    the number of labelled windows (the perfect score is ``tp * n_windows``).

    >>> rows = [LabelledRow(None, -1.0), LabelledRow("w", MAX_TP), LabelledRow("w", 0.5)]
    >>> r = sweep(rows, [0.0, 1.0, 0.0], PROFILES["standard"], 1)
    >>> r.threshold, r.raw, r.null, r.normalized
    (1.0, 1.0, -1.0, 100.0)
    """
    window_names = {r.window for r in rows if r.window is not None}
    parts = {w: -profile.fn for w in window_names}
    null = sum(parts.values())
    total = null
    best = SweepResult(1.1, total, null, profile.tp * n_windows)
    order = sorted(range(len(rows)), key=lambda i: scores[i], reverse=True)
    tp_scale = profile.tp / MAX_TP
    for k, i in enumerate(order):
        row = rows[i]
        if row.window is None:
            total += profile.fp * row.value
        else:
            v = row.value * tp_scale
            old = parts[row.window]
            if v > old:
                parts[row.window] = v
                total += v - old
        if k + 1 == len(order) or scores[order[k + 1]] != scores[i]:
            if total > best.raw:
                best = SweepResult(scores[i], total, null, best.perfect)
    return best


@dataclass(frozen=True, slots=True)
class CorpusScores:
    """Per-row labels and detector scores for a whole corpus, ready to sweep."""

    rows: list[LabelledRow]
    scores: list[float]
    n_windows: int

    def score(self, profile: Profile) -> SweepResult:
        return sweep(self.rows, self.scores, profile, self.n_windows)

    def all_profiles(self) -> dict[str, SweepResult]:
        return {name: self.score(p) for name, p in PROFILES.items()}


def collect(files: Sequence[DataFile], scores_per_file: Sequence[Sequence[float]]) -> CorpusScores:
    """Join per-file detector scores with the labels, dropping probationary rows."""
    rows: list[LabelledRow] = []
    scores: list[float] = []
    n_windows = 0
    for f, s in zip(files, scores_per_file, strict=True):
        labelled = label_rows(f.name, f.timestamps, f.windows)
        n_windows += len(f.windows)
        for r, v in zip(labelled, s, strict=True):
            if r is not None:
                rows.append(r)
                scores.append(float(v))
    return CorpusScores(rows, scores, n_windows)


def perfect_scores(f: DataFile) -> list[float]:
    """The perfect detector: 1.0 on the first row of each window, 0.0 elsewhere."""
    starts = {a for a, _ in f.windows}
    return [1.0 if t in starts else 0.0 for t in f.timestamps]


#: SeriesMonitor settings for the NAB run (alert once per incident; see docs/detection.md).
NAB_MONITOR = {"threshold": 0.999999, "quiet_buckets": 30, "confirm": 1, "two_sided": True}


def detector_scores(name: str, f: DataFile, monitor: dict[str, float] | None = None) -> list[float]:
    """Scores for one file from the registered detector ``name``, fed exactly as the service feeds it.

    ``monitor=None``: ``score_one`` then ``learn_one`` on every row, the raw score is output.
    Otherwise rows go through :class:`detectors.monitor.SeriesMonitor` (``monitor`` = its
    keyword arguments) and a row's output is the score the monitor computed for it, or 0.0
    while an incident was already open (the service alerts once per incident; NAB counts
    only the first detection in a window and charges every extra one outside it).
    """
    from detectors.monitor import SeriesMonitor
    from detectors.registry import make_detector

    det = make_detector(name)
    out: list[float] = []
    if monitor is not None:
        m = SeriesMonitor(det, **monitor)
        for t, x in zip(f.timestamps, f.values):
            was_open = m.firing
            m.observe(t, x)
            out.append(0.0 if was_open else m.last_score)
        return out
    for t, x in zip(f.timestamps, f.values):
        out.append(det.score_one(x, t))
        det.learn_one(x, t)
    return out


def _score_job(job: tuple[str, int, dict[str, float] | None]) -> tuple[list[float], float]:
    import time

    name, i, monitor = job
    f = _FILES[i]
    t0 = time.perf_counter()
    s = detector_scores(name, f, monitor)
    return s, time.perf_counter() - t0


_FILES: list[DataFile] = []


@dataclass(frozen=True, slots=True)
class NabRun:
    detector: str
    mode: str
    results: dict[str, SweepResult]
    us_per_point: float
    points: int


def run_nab(names: Sequence[str], files: list[DataFile] | None = None, monitor: dict[str, float] | None = None,
            processes: int = 2) -> list[NabRun]:
    """Score every detector in ``names`` on the corpus (files in parallel worker processes)."""
    import multiprocessing as mp

    global _FILES
    _FILES = files if files is not None else load_corpus()
    runs = []
    ctx = mp.get_context("fork")
    with ctx.Pool(processes) as pool:
        for name in names:
            out = pool.map(_score_job, [(name, i, monitor) for i in range(len(_FILES))])
            points = sum(len(f.values) for f in _FILES)
            secs = sum(s for _, s in out)
            cs = collect(_FILES, [s for s, _ in out])
            runs.append(NabRun(name, "monitor" if monitor is not None else "raw", cs.all_profiles(),
                               1e6 * secs / points, points))
    return runs
