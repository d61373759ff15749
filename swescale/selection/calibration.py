"""A calibrated combination of verifier evidence: P(resolved | evidence) by logistic
regression fit on labelled pools, scored by cross-validation grouped by repository.

Instead of hard-coding "model score first, then tests", fit P(resolved | evidence) on
candidates whose grade is known (graded runs, leaderboard pools, the mini benchmark) and
rank by it. The probability doubles as a confidence, so a selector can abstain (or flag
its pick) when even its best candidate is unlikely to be right.

Fitting, cross-validation and the calibration metrics are scikit-learn's
(``LogisticRegression``, ``GroupKFold``, ``brier_score_loss``, ``calibration_curve``). Folds
are grouped by repository: a repository's candidates are never both fit and scored, so
the reported accuracy is what a new repository would see. The fitted weights are saved
as JSON and applied in pure Python, so selecting with a saved calibration needs no
scikit-learn.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from swescale.selection.ranking import (
    behaviour_share,
    model_score,
    pool_detail,
    static_gate,
    usable_score,
    vote_share,
)
from swescale.types import Candidate
from swescale.verifiers.base import DOCTEST, HARVEST, ISSUE, REGRESSION, REPRO, STATIC

FEATURES = [
    "model",
    "has_model",
    "repro",
    "harvest",
    "has_tests",
    "harvest_best",
    "regression",
    "has_regression",
    "issue",
    "has_issue",
    "doctest",
    "static",
    "clean_apply",
    "behaviour_share",
    "behaviour_best",
    "vote_share",
    "locality",
    "size",
]


SANDBOX, POOL_ONLY = "sandbox", "pool-only"


def evidence_kind(candidates: Sequence[Candidate]) -> str:
    """``sandbox`` when some candidate was judged in a sandbox (static checks, tests),
    else ``pool-only`` (votes, size and locality only). The features mean different things
    in the two (a missing test verdict is the norm in one, a sign in the other), so a
    calibration is fit and applied on pools of one kind."""
    judged = any(
        name in c.verdicts and not c.verdicts[name].infra_error
        for c in candidates
        for name in (STATIC, REGRESSION, HARVEST, REPRO, ISSUE, DOCTEST)
    )
    return SANDBOX if judged else POOL_ONLY


def _harvest(cand: Candidate) -> float | None:
    return usable_score(cand, HARVEST)


def features(cand: Candidate, candidates: Sequence[Candidate]) -> list[float]:
    """Evidence in [0, 1], in the order of FEATURES; a missing verifier reads 0.5 with
    its has_* flag at 0. ``*_best``: 1 when the candidate has the pool's best value."""
    model = model_score(cand)
    repro = usable_score(cand, REPRO)
    harvest = _harvest(cand)
    regression = usable_score(cand, REGRESSION)
    issue = usable_score(cand, ISSUE)
    doctest = usable_score(cand, DOCTEST)
    harvests = [h for c in candidates if (h := _harvest(c)) is not None]
    shares = [behaviour_share(c, candidates) for c in candidates]
    share = behaviour_share(cand, candidates)
    static = cand.verdicts.get(STATIC)
    clean = static.details.get("clean_apply") if static is not None else None
    size = pool_detail(cand, "size_ratio", 1.0)
    return [
        0.5 if model is None else model,
        0.0 if model is None else 1.0,
        0.5 if repro is None else repro,
        0.5 if harvest is None else harvest,
        0.0 if repro is None and harvest is None else 1.0,
        1.0 if harvest is not None and harvest >= max(harvests) else 0.0,
        0.5 if regression is None else regression,
        0.0 if regression is None else 1.0,
        0.5 if issue is None else issue,
        0.0 if issue is None else 1.0,
        1.0 if doctest is None else doctest,
        static_gate(cand),
        0.5 if clean is None else float(bool(clean)),
        share,
        1.0 if share >= max(shares) else 0.0,
        vote_share(cand, candidates),
        pool_detail(cand, "locality", 0.0),
        # Size relative to the pool, squashed to [0, 1): 0.5 is the pool's median.
        size / (1.0 + size),
    ]


class Calibration(BaseModel):
    """Weights of a logistic model over ``features`` (plus intercept), and how well it
    did under grouped cross-validation when it was fit."""

    features: list[str] = Field(default_factory=lambda: list(FEATURES))
    weights: list[float]
    intercept: float
    fitted_on: int = 0  # labelled candidates; 0 means the prior below
    groups: list[str] = Field(default_factory=list)
    evidence: str = ""  # the kind of pools it was fit on (``evidence_kind``); "" unknown
    cv: dict[str, Any] = Field(default_factory=dict)

    def probability(self, x: Sequence[float]) -> float:
        if len(x) != len(self.weights):
            raise ValueError(
                f"calibration has {len(self.weights)} weights for {len(x)} features; "
                "refit it (the feature set changed)"
            )
        z = self.intercept + sum(w * v for w, v in zip(self.weights, x, strict=True))
        return _sigmoid(z)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        try:
            cal = cls.model_validate(json.loads(Path(path).read_text(encoding="utf-8-sig")))
        except (OSError, ValueError) as exc:
            raise ValueError(f"calibration file {path}: {exc}") from exc
        if cal.features != FEATURES:
            raise ValueError(
                f"calibration file {path} was fit on other features ({cal.features}); refit it"
            )
        return cal


# Used before any labelled pool exists: passing the static checks and the tests weighs
# most, then the judge, then agreement of behaviour.
_PRIOR_WEIGHTS = {
    "model": 2.0,
    "repro": 2.5,
    "harvest": 2.5,
    "regression": 2.0,
    "issue": 2.5,
    "doctest": 2.0,
    "static": 2.0,
    "behaviour_share": 1.5,
    "locality": 0.5,
}
PRIOR = Calibration(weights=[_PRIOR_WEIGHTS.get(f, 0.0) for f in FEATURES], intercept=-7.0)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _sklearn() -> Any:
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "fitting a calibration needs scikit-learn (a dependency of swescale): "
            "pip install scikit-learn"
        ) from exc
    import sklearn.linear_model

    return sklearn


def fit_calibration(rows: Sequence[tuple[Sequence[float], bool]], l2: float = 1.0) -> Calibration:
    """Fit ``LogisticRegression`` (L2, ``C=l2``) on (features, resolved) rows.

    With no rows, or labels all one way (nothing to tell apart), return the prior with
    its intercept moved to the observed base rate, so probabilities stay honest.
    """
    if not rows:
        return PRIOR
    labels = [bool(y) for _, y in rows]
    base_rate = sum(labels) / len(labels)
    if base_rate in (0.0, 1.0):
        clipped = min(max(base_rate, 0.02), 0.98)
        return Calibration(
            weights=[0.0] * len(rows[0][0]),
            intercept=math.log(clipped / (1 - clipped)),
            fitted_on=len(rows),
        )
    sklearn = _sklearn()
    model = sklearn.linear_model.LogisticRegression(C=l2, max_iter=2000)
    model.fit([list(x) for x, _ in rows], labels)
    return Calibration(
        weights=[float(w) for w in model.coef_[0]],
        intercept=float(model.intercept_[0]),
        fitted_on=len(rows),
    )


class LabelledPool(BaseModel):
    """One task's candidates with labels, and the group (repository) it belongs to."""

    task_id: str
    group: str
    candidates: list[Candidate]


def pool_rows(pool: LabelledPool) -> list[tuple[list[float], bool]]:
    return [
        (features(c, pool.candidates), bool(c.resolved))
        for c in pool.candidates
        if c.resolved is not None
    ]


def reliability_table(
    labels: Sequence[bool], probabilities: Sequence[float], bins: int = 5
) -> list[dict[str, float]]:
    """Rows of (mean predicted, observed rate, count) per probability bin, from
    ``sklearn.calibration.calibration_curve`` (uniform bins); empty bins are left out."""
    import numpy as np
    from sklearn.calibration import calibration_curve

    prob_true, prob_pred = calibration_curve(labels, probabilities, n_bins=bins)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # The bin of each probability as calibration_curve assigns it (left-closed inner edges).
    counts = np.bincount(np.searchsorted(edges[1:-1], probabilities), minlength=bins)
    rows, filled = [], [i for i, n in enumerate(counts) if n]
    for index, true, pred in zip(filled, prob_true, prob_pred, strict=True):
        rows.append(
            {
                "bin": f"{edges[index]:.1f}-{edges[index + 1]:.1f}",
                "predicted": float(pred),
                "observed": float(true),
                "count": int(counts[index]),
            }
        )
    return rows


def cross_validate(
    pools: Sequence[LabelledPool], folds: int = 5, l2: float = 1.0, bins: int = 5
) -> dict[str, Any]:
    """Out-of-fold probabilities under ``GroupKFold`` by repository: Brier score,
    reliability table, and the accuracy of picking each task's most probable candidate
    (over tasks with at least one labelled candidate). Needs two groups or more."""
    import numpy as np
    from sklearn.metrics import brier_score_loss
    from sklearn.model_selection import GroupKFold

    usable = [p for p in pools if pool_rows(p)]
    groups = sorted({p.group for p in usable})
    if len(groups) < 2:
        raise ValueError(
            f"grouped cross-validation needs labelled pools of two repositories or more "
            f"(have {groups or 'none'})"
        )
    splitter = GroupKFold(n_splits=min(folds, len(groups)))
    index = np.arange(len(usable))
    pool_groups = [p.group for p in usable]
    oof: dict[str, dict[str, float]] = {}
    for train, test in splitter.split(index, groups=pool_groups):
        rows = [r for i in train for r in pool_rows(usable[i])]
        cal = fit_calibration(rows, l2)
        for i in test:
            pool = usable[i]
            oof[pool.task_id] = {
                c.id: cal.probability(features(c, pool.candidates)) for c in pool.candidates
            }
    labels, probs = [], []
    picked = right = 0
    for pool in usable:
        p = oof[pool.task_id]
        for cand in pool.candidates:
            if cand.resolved is not None:
                labels.append(bool(cand.resolved))
                probs.append(p[cand.id])
        best = max(pool.candidates, key=lambda c: (p[c.id], len(c.sources), c.id))
        picked += 1
        right += bool(best.resolved)
    return {
        "folds": splitter.get_n_splits(),
        "groups": groups,
        "candidates": len(labels),
        "tasks": picked,
        "accuracy": right / picked if picked else None,
        "brier": float(brier_score_loss(labels, probs)),
        "base_rate_brier": float(
            brier_score_loss(labels, [sum(labels) / len(labels)] * len(labels))
        ),
        "reliability": reliability_table(labels, probs, bins),
        "probabilities": oof,
    }


def fit_grouped(
    pools: Sequence[LabelledPool], folds: int = 5, l2: float = 1.0, kind: str | None = None
) -> Calibration:
    """Fit on every labelled pool of one evidence kind (``kind``, default: ``sandbox``
    when any pool has sandbox evidence, else ``pool-only``), with the grouped
    cross-validation report attached (``cv``; the out-of-fold probabilities are dropped
    from the saved file)."""
    kinds = {p.task_id: evidence_kind(p.candidates) for p in pools}
    if kind is None:
        kind = SANDBOX if SANDBOX in kinds.values() else POOL_ONLY
    pools = [p for p in pools if kinds[p.task_id] == kind]
    rows = [r for p in pools for r in pool_rows(p)]
    cal = fit_calibration(rows, l2)
    groups = sorted({p.group for p in pools if pool_rows(p)})
    cal.groups = groups
    cal.evidence = kind
    if len(groups) >= 2:
        report = cross_validate(pools, folds, l2)
        report.pop("probabilities")
        cal.cv = report
    return cal


def labelled_rows(
    tasks: Sequence[Sequence[Candidate]],
) -> list[tuple[list[float], bool]]:
    """Feature rows of every candidate with a known label, per task's candidate set."""
    rows = []
    for cands in tasks:
        for cand in cands:
            if cand.resolved is not None:
                rows.append((features(cand, cands), bool(cand.resolved)))
    return rows


def log_loss(cal: Calibration, rows: Sequence[tuple[Sequence[float], bool]]) -> float:
    eps = 1e-9
    total = 0.0
    for x, y in rows:
        p = min(max(cal.probability(x), eps), 1 - eps)
        total -= math.log(p) if y else math.log(1 - p)
    return total / max(len(rows), 1)


__all__ = [
    "FEATURES", "POOL_ONLY", "PRIOR", "SANDBOX", "Calibration", "evidence_kind", "LabelledPool", "cross_validate", "features",
    "fit_calibration", "fit_grouped", "labelled_rows", "log_loss", "reliability_table",
]  # fmt: skip
