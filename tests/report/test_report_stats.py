"""The numbers behind the plots, on literal inputs: intervals, pass@k, selector curves."""

from __future__ import annotations

import pytest

from swescale.report.stats import (
    ORACLE,
    TaskSamples,
    mean_interval,
    pass_at_k_curve,
    proportion_interval,
    sample_curves,
    sample_sizes,
    selector_curve,
)
from swescale.selection.selectors import make_selector
from swescale.types import Candidate, Task


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        # Reference values of statsmodels' proportion_confint(method="wilson").
        (5, 10, 0.236593, 0.763407),
        (0, 10, 0.0, 0.277533),
        (10, 10, 0.722467, 1.0),
    ],
)
def test_wilson_interval(successes: int, trials: int, low: float, high: float) -> None:
    found = proportion_interval(successes, trials)
    assert found == pytest.approx((low, high), abs=1e-6)


def test_no_interval_without_data() -> None:
    assert proportion_interval(0, 0) is None
    assert mean_interval([0.5]) is None
    assert mean_interval([0.25, 0.25, 0.25]) == (0.25, 0.25)


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_more_tasks() -> None:
    few = mean_interval([0.0, 1.0] * 5)
    many = mean_interval([0.0, 1.0] * 200)
    assert few is not None and many is not None
    assert few[0] < 0.5 < few[1] and many[0] < 0.5 < many[1]
    assert many[1] - many[0] < few[1] - few[0]
    # A fixed seed: the same data gives the same interval.
    assert mean_interval([0.0, 1.0] * 5) == few


def _task(resolved_first: bool = True) -> TaskSamples:
    """Four trajectories: t0 and t2 produced the right patch, t1 a wrong one, t3 nothing."""
    task = Task(id="t", repo="r", base_commit="0", problem_statement="p")
    good = Candidate(id="a", task_id="t", patch="good", trajectory_ids=["t0", "t2"], resolved=True)
    bad = Candidate(id="b", task_id="t", patch="bad", trajectory_ids=["t1"], resolved=False)
    return TaskSamples(task, [good, bad], ["t0", "t1", "t2", "t3"])


def test_pass_at_k_curve() -> None:
    curve = pass_at_k_curve([_task()])
    assert [p.k for p in curve] == [1, 2, 3, 4]
    assert [p.value for p in curve] == pytest.approx([0.5, 5 / 6, 1.0, 1.0])


def test_majority_curve_enumerates_every_subset() -> None:
    curve = selector_curve([_task()], lambda: make_selector("majority"))
    by_k = {p.k: p.value for p in curve}
    # k=1: right exactly when the one sample is t0 or t2.
    assert by_k[1] == pytest.approx(0.5)
    # k=2: {t0,t2} 2 votes; {t0,t3}, {t2,t3} alone; {t0,t1}, {t1,t2} tie (broken by id:
    # "a" first, right); {t1,t3} wrong -> 5 of 6.
    assert by_k[2] == pytest.approx(5 / 6)
    assert by_k[4] == pytest.approx(1.0)


def test_sample_sizes_are_dense_then_geometric() -> None:
    assert sample_sizes(4) == [1, 2, 3, 4]
    sizes = sample_sizes(64)
    assert sizes[:16] == list(range(1, 17)) and sizes[-1] == 64 and len(sizes) < 24


def _random_pool(rng, index: int) -> TaskSamples:
    """A task of 4 to 9 trajectories: some right, some wrong, some without a patch, the
    wrong answer often the most frequent."""
    task = Task(id=f"t{index}", repo="r", base_commit="0", problem_statement="p")
    n = rng.randint(4, 9)
    ids = [f"t{index}.{j}" for j in range(n)]
    cands, j = [], 0
    while j < n:
        size = rng.randint(1, 3)
        taken = ids[j : j + size]
        j += size
        if rng.random() < 0.15:
            continue  # these trajectories left no patch
        cands.append(
            Candidate(
                id=f"c{index}.{len(cands)}",
                task_id=task.id,
                patch=f"p{len(cands)}",
                trajectory_ids=taken,
                resolved=rng.random() < 0.35,
            )
        )
    return TaskSamples(task, cands, ids)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_selector_curve_rises_above_the_oracle(seed: int) -> None:
    """Oracle and selectors from the same subsets: at every k and for every task set a
    selector's resolve rate is at most pass@k (a selector computed from other subsets
    than the oracle could land above it, as the random 16 subsets once did at k=3)."""
    import random

    rng = random.Random(seed)
    tasks = [_random_pool(rng, i) for i in range(12)]
    curves = sample_curves(
        tasks,
        {name: (lambda name=name: make_selector(name)) for name in ("majority", "evidence")},
        repeats=8,  # fewer than the subsets of most k: random subsets, shared
    )
    oracle = {p.k: p for p in curves[ORACLE]}
    for name in ("majority", "evidence"):
        for point in curves[name]:
            assert point.value <= oracle[point.k].value + 1e-12, (name, point.k)
            assert point.low is not None and point.high is not None
            assert point.low <= point.value <= point.high


def test_with_every_subset_the_oracle_is_the_unbiased_pass_at_k() -> None:
    exact = {p.k: p.value for p in pass_at_k_curve([_task()])}
    curves = sample_curves([_task()], {"majority": lambda: make_selector("majority")})
    assert {p.k: p.value for p in curves[ORACLE]} == pytest.approx(exact)
