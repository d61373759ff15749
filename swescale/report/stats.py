"""The numbers behind the report's plots: resolve rate against the number of samples, for
the oracle (pass@k) and for selectors, with intervals over tasks.

A *sample* is one finished trajectory; its label is its candidate's (a trajectory that
left no patch is a wrong sample). Intervals: percentile bootstrap over tasks for means of
per-task values (numpy), Wilson score intervals for proportions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from math import comb

from swescale.selection.metrics import is_resolved, pass_at_k
from swescale.types import Candidate, Selection, Task

LEVEL = 0.95
# The oracle's curve in :func:`sample_curves`: some sample of the subset resolves.
ORACLE = "pass@k (oracle)"


@dataclass(frozen=True)
class CurvePoint:
    k: int
    value: float
    low: float | None
    high: float | None
    tasks: int


@dataclass(frozen=True)
class TaskSamples:
    """What the curves need of one labelled task."""

    task: Task
    candidates: list[Candidate]
    # Every finished trajectory of the task, with or without a candidate.
    trajectory_ids: list[str]

    @property
    def n(self) -> int:
        return len(self.trajectory_ids)

    @property
    def correct(self) -> int:
        good = {t for c in self.candidates if c.resolved for t in c.trajectory_ids}
        return sum(1 for t in self.trajectory_ids if t in good)


def mean_interval(
    values: Sequence[float], level: float = LEVEL, resamples: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean over tasks (Efron & Tibshirani 1993,
    ch. 13): resample the tasks with replacement, take the quantiles of the resampled
    means. None with fewer than two values; constant data gives a zero-width interval."""
    if len(values) < 2:
        return None
    import numpy as np

    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def proportion_interval(
    successes: int, trials: int, level: float = LEVEL
) -> tuple[float, float] | None:
    """Wilson score interval of a proportion (Wilson 1927; the ``method="wilson"`` of
    statsmodels' ``proportion_confint`` and scipy's ``binomtest().proportion_ci``);
    None without trials."""
    if trials <= 0:
        return None
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # Clamped to [0, 1] and to contain p itself (rounding can put an end a hair inside).
    return max(0.0, min(centre - half, p)), min(1.0, max(centre + half, p))


def _point(k: int, values: list[float]) -> CurvePoint:
    interval = mean_interval(values)
    return CurvePoint(
        k=k,
        value=sum(values) / len(values),
        low=interval[0] if interval else None,
        high=interval[1] if interval else None,
        tasks=len(values),
    )


def pass_at_k_curve(tasks: Sequence[TaskSamples]) -> list[CurvePoint]:
    """Mean unbiased pass@k (Chen et al. 2021) over the tasks with at least k samples."""
    usable = [t for t in tasks if t.n > 0]
    if not usable:
        return []
    curve = []
    for k in range(1, max(t.n for t in usable) + 1):
        values = [pass_at_k(t.n, t.correct, k) for t in usable if t.n >= k]
        if values:
            curve.append(_point(k, values))
    return curve


def sample_sizes(n: int, dense_up_to: int = 16) -> list[int]:
    """The k at which a selector curve is computed: every k up to ``dense_up_to``, then
    about two points per doubling, and n itself (a curve over 64 samples needs no 64
    points, and each point costs a selection per task and subset)."""
    sizes = list(range(1, min(n, dense_up_to) + 1))
    k = float(dense_up_to)
    while k * 1.5 < n:
        k *= 1.5
        sizes.append(round(k))
    if n > sizes[-1]:
        sizes.append(n)
    return sorted(set(sizes))


def sample_curves(
    tasks: Sequence[TaskSamples],
    selectors: Mapping[str, Callable[[], object]],
    repeats: int = 32,
    seed: int = 0,
) -> dict[str, list[CurvePoint]]:
    """Resolve rate had only k of each task's trajectories run, for the oracle
    (``ORACLE``: some sample of the subset resolves) and for each selector (its pick
    from the subset resolves), all from the same subsets: per task and k every subset
    when there are no more than ``repeats`` (then the oracle is exactly the unbiased
    pass@k estimator of Chen et al. 2021), else ``repeats`` random ones shared by every
    curve (its Monte Carlo estimate); the mean over tasks with its bootstrap interval.
    On each subset a pick resolves only if some sample does, so no selector's curve can
    rise above the oracle's."""
    usable = [t for t in tasks if t.n > 0]
    names = [ORACLE, *selectors]
    if not usable:
        return {name: [] for name in names}
    rng = random.Random(seed)
    curves: dict[str, list[CurvePoint]] = {name: [] for name in names}
    for k in sample_sizes(max(t.n for t in usable)):
        values: dict[str, list[float]] = {name: [] for name in names}
        for samples in usable:
            if samples.n < k:
                continue
            if comb(samples.n, k) <= repeats:  # few subsets: all of them, exactly
                subsets = [set(c) for c in combinations(samples.trajectory_ids, k)]
            else:
                subsets = [set(rng.sample(samples.trajectory_ids, k)) for _ in range(repeats)]
            good = {t for c in samples.candidates if c.resolved for t in c.trajectory_ids}
            values[ORACLE].append(sum(bool(s & good) for s in subsets) / len(subsets))
            for name, make in selectors.items():
                wins = sum(bool(_resolves(samples, chosen, make)) for chosen in subsets)
                values[name].append(wins / len(subsets))
        for name in names:
            if values[name]:
                curves[name].append(_point(k, values[name]))
    return curves


def selector_curve(
    tasks: Sequence[TaskSamples],
    make_selector: Callable[[], object],
    repeats: int = 32,
    seed: int = 0,
) -> list[CurvePoint]:
    """One selector's curve of :func:`sample_curves`."""
    return sample_curves(tasks, {"selector": make_selector}, repeats, seed)["selector"]


def _resolves(
    samples: TaskSamples, chosen: set[str], make_selector: Callable[[], object]
) -> bool | None:
    subset = []
    for cand in samples.candidates:
        kept = [t for t in cand.trajectory_ids if t in chosen]
        if kept:
            # model_construct: no validation, no deep copy (this runs thousands of times).
            fields = dict(cand.__dict__, trajectory_ids=kept)
            subset.append(Candidate.model_construct(**fields))
    if not subset:
        return False
    selector = make_selector()
    selection: Selection = selector.select(samples.task, subset)  # type: ignore[attr-defined]
    return is_resolved(selection, subset)
