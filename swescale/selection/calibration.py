"""A calibrated combination of verifier evidence: logistic regression fit on labelled runs.

Instead of hard-coding "model score first, then tests", fit P(resolved | evidence) on
candidates whose grade is known (the mini benchmark, any graded run) and rank by it. The
probability doubles as a confidence, so a selector can abstain when even its best
candidate is unlikely to be right. Pure Python: a few hundred rows and six features need
no numerical library, and the fit is deterministic.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from swescale.selection.ranking import model_score, usable_score, vote_share
from swescale.types import Candidate
from swescale.verifiers.base import REGRESSION, REPRO

FEATURES = ["model", "repro", "regression", "vote_share", "has_model", "has_exec"]


def features(cand: Candidate, candidates: Sequence[Candidate]) -> list[float]:
    """Evidence in [0, 1]; a missing verifier reads as 0.5 with its has_* flag at 0."""
    model = model_score(cand)
    repro = usable_score(cand, REPRO)
    regression = usable_score(cand, REGRESSION)
    return [
        0.5 if model is None else model,
        0.5 if repro is None else repro,
        0.5 if regression is None else regression,
        vote_share(cand, candidates),
        0.0 if model is None else 1.0,
        0.0 if repro is None and regression is None else 1.0,
    ]


class Calibration(BaseModel):
    """Weights of a logistic model over FEATURES (plus intercept)."""

    features: list[str] = FEATURES
    weights: list[float]
    intercept: float
    fitted_on: int = 0  # labelled rows; 0 means the prior below

    def probability(self, x: Sequence[float]) -> float:
        z = self.intercept + sum(w * v for w, v in zip(self.weights, x, strict=True))
        return _sigmoid(z)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        try:
            return cls.model_validate(json.loads(Path(path).read_text(encoding="utf-8-sig")))
        except (OSError, ValueError) as exc:
            raise ValueError(f"calibration file {path}: {exc}") from exc


# Used before any labelled run exists: tests weigh most, then the judge, then agreement.
PRIOR = Calibration(weights=[2.0, 3.0, 2.0, 1.5, 0.0, 0.0], intercept=-4.5)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def fit_calibration(
    rows: Sequence[tuple[Sequence[float], bool]],
    l2: float = 0.1,
    iterations: int = 2000,
    learning_rate: float = 0.5,
) -> Calibration:
    """Fit by full-batch gradient descent on the L2-regularized log loss.

    With no rows, or labels all one way (nothing to tell apart), return the prior with
    its intercept moved to the observed base rate, so probabilities stay honest.
    """
    if not rows:
        return PRIOR
    n_features = len(rows[0][0])
    labels = [1.0 if y else 0.0 for _, y in rows]
    base_rate = sum(labels) / len(labels)
    if base_rate in (0.0, 1.0):
        clipped = min(max(base_rate, 0.02), 0.98)
        return Calibration(
            weights=[0.0] * n_features,
            intercept=math.log(clipped / (1 - clipped)),
            fitted_on=len(rows),
        )
    w = [0.0] * n_features
    b = math.log(base_rate / (1 - base_rate))
    n = float(len(rows))
    for _ in range(iterations):
        grad_w = [0.0] * n_features
        grad_b = 0.0
        for (x, _), y in zip(rows, labels, strict=True):
            err = _sigmoid(b + sum(wi * xi for wi, xi in zip(w, x, strict=True))) - y
            grad_b += err
            for j in range(n_features):
                grad_w[j] += err * x[j]
        w = [wi - learning_rate * (g / n + l2 * wi / n) for wi, g in zip(w, grad_w, strict=True)]
        b -= learning_rate * grad_b / n
    return Calibration(weights=w, intercept=b, fitted_on=len(rows))


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
