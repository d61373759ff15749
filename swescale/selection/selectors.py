"""Selectors: pick one candidate per task from the evidence stored on the candidates.

``Selector.select(task, candidates) -> Selection``. All selectors here only read verdicts,
so they run offline on a finished run (``swescale select``). The selection agent, which
needs a sandbox and a model, lives in ``agent_selector.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from swescale.patches import votes
from swescale.selection.calibration import PRIOR, Calibration, evidence_kind, features
from swescale.selection.config import OFFLINE_SELECTORS, SelectionConfig, SelectorContext
from swescale.selection.ranking import (
    VOTES,
    Criterion,
    behaviour_share,
    decision,
    evidence_criteria,
    evidence_ranking,
    evidence_tie,
    execution_score,
    hybrid_criteria,
    hybrid_ranking,
    majority_criteria,
    majority_ranking,
    model_score,
    pool_detail,
    rank_by_tests_passed,
    static_gate,
    tests_passed,
    tests_passed_criteria,
    tie_breaker,
)
from swescale.types import Candidate, Selection, Task


@runtime_checkable
class Selector(Protocol):
    name: str

    def select(self, task: Task, candidates: list[Candidate]) -> Selection: ...


def no_candidates(task: Task, selector: str) -> Selection:
    return Selection(
        task_id=task.id,
        selector=selector,
        candidate_id=None,
        rationale="no candidates: every trajectory ended without a usable patch",
    )


def apply_threshold(selection: Selection, threshold: float, mode: str) -> Selection:
    """Below ``threshold`` confidence: ``abstain`` drops the patch, ``flag`` keeps it marked."""
    if selection.candidate_id is None or selection.confidence >= threshold:
        return selection
    note = f"; confidence {selection.confidence:.2f} below {threshold:.2f}"
    if mode == "flag":
        return selection.model_copy(
            update={"flagged": True, "rationale": selection.rationale + note}
        )
    return selection.model_copy(
        update={
            "candidate_id": None,
            "flagged": True,
            "rationale": selection.rationale + note + ": abstained",
        }
    )


def pick_probability(
    cand: Candidate, candidates: Sequence[Candidate], calibration: Calibration | None = None
) -> float:
    """P(resolved | evidence) of ``cand`` in its pool: every selector's confidence, so
    that confidences compare across selectors (``calibration``: a fitted one, else the
    prior weights)."""
    return (calibration or PRIOR).probability(features(cand, candidates))


def _pick(
    task: Task,
    name: str,
    ranked: Sequence[Candidate],
    criteria: Sequence[Criterion],
    rationale: str,
    calibration: Calibration | None = None,
) -> Selection:
    tied, decided_by = decision(ranked, criteria)
    return Selection(
        task_id=task.id,
        selector=name,
        candidate_id=ranked[0].id,
        ranking=[c.id for c in ranked],
        confidence=pick_probability(ranked[0], ranked, calibration),
        rationale=rationale,
        tied=tied,
        decided_by=decided_by,
    )


class MajorityVoteSelector:
    name = "majority"

    def __init__(self, calibration: Calibration | None = None) -> None:
        self.calibration = calibration  # for the confidence only

    def select(self, task: Task, candidates: list[Candidate]) -> Selection:
        if not candidates:
            return no_candidates(task, self.name)
        ranked = majority_ranking(candidates)
        total = sum(votes(c) for c in candidates) or 1
        top = votes(ranked[0])
        return _pick(
            task,
            self.name,
            ranked,
            majority_criteria(),
            f"{top} of {total} producers agree on {ranked[0].id} (normalized patch)",
            self.calibration,
        )


class TestVoteSelector:
    """CodeMonkeys: the candidate that passes the most reproduction tests."""

    __test__ = False  # not a pytest class
    name = "test_vote"

    def __init__(self, calibration: Calibration | None = None) -> None:
        self.calibration = calibration  # for the confidence only

    def select(self, task: Task, candidates: list[Candidate]) -> Selection:
        if not candidates:
            return no_candidates(task, self.name)
        ranked = rank_by_tests_passed(candidates)
        best = tests_passed(ranked[0])
        criteria = tests_passed_criteria()
        if best is None:
            why = "no reproduction tests ran; fell back to votes"
            return _pick(task, self.name, ranked, criteria, why, self.calibration)
        verdict = ranked[0].verdicts["repro"]
        total = verdict.details.get("total")
        if not isinstance(total, int) or not total:
            return _pick(
                task, self.name, ranked, criteria, f"repro pass rate {best:.2f}", self.calibration
            )
        return _pick(
            task,
            self.name,
            ranked,
            criteria,
            f"passes {best:.0f} of {total} reproduction tests",
            self.calibration,
        )


class EvidenceSelector:
    """Model-free evidence in a fixed order: static checks (applies, compiles, imports,
    no new undefined names), then execution (tests passed, nothing broken), then the
    vote share of the behaviour class, then locality against the pool, then votes."""

    name = "evidence"

    def __init__(self, calibration: Calibration | None = None) -> None:
        self.calibration = calibration  # for the confidence only

    def select(self, task: Task, candidates: list[Candidate]) -> Selection:
        if not candidates:
            return no_candidates(task, self.name)
        ranked = evidence_ranking(candidates)
        best = ranked[0]
        e = execution_score(best)
        share = behaviour_share(best, candidates)
        used = [
            name
            for name in EVIDENCE_NAMES
            if any(name in c.verdicts and not c.verdicts[name].infra_error for c in candidates)
        ]
        selection = _pick(
            task,
            self.name,
            ranked,
            evidence_criteria(candidates),
            f"static={static_gate(best):.1f} execution={_fmt(e)} behaviour class share="
            f"{share:.2f} locality={pool_detail(best, 'locality', 0.0):.2f}; evidence used: "
            + (", ".join(used) or "none (votes only)"),
            self.calibration,
        )
        return with_tie(selection, ranked, candidates)


EVIDENCE_NAMES = ("static", "regression", "harvest", "issue", "doctest", "repro", "behaviour")


def with_tie(
    selection: Selection, ranked: Sequence[Candidate], candidates: Sequence[Candidate]
) -> Selection:
    """The selection with the tie its pick came from named when the evidence (static
    checks, execution, behaviour) could not tell the finalists apart: ``tied`` the other
    members, ``decided_by`` what chose among them (the model's score, else the prior:
    locality, votes, a size near the median), and a sentence in the rationale."""
    tie = evidence_tie(ranked, candidates)
    if len(tie) < 2 or tie[0].id != selection.candidate_id:
        return selection
    how = tie_breaker(tie)
    note = (
        f"; tie: the evidence cannot tell {len(tie)} candidates apart "
        f"({', '.join(c.id for c in tie)}), the pick among them by {how}"
    )
    return selection.model_copy(
        update={
            "tied": [c.id for c in tie[1:]],
            "decided_by": how + (f" ({selection.decided_by})" if selection.decided_by else ""),
            "rationale": selection.rationale + note,
        }
    )


class HybridSelector:
    """R2E-Gym's published order: top-k by model score, then tests, model score breaks ties."""

    name = "hybrid"

    def __init__(self, top_k: int = 3, calibration: Calibration | None = None) -> None:
        self.top_k = top_k
        self.calibration = calibration  # for the confidence only

    def select(self, task: Task, candidates: list[Candidate]) -> Selection:
        if not candidates:
            return no_candidates(task, self.name)
        ranked = hybrid_ranking(candidates, self.top_k)
        best = ranked[0]
        m, e = model_score(best), execution_score(best)
        how = (
            f"top {self.top_k} by model score, then execution"
            if m is not None
            else "no model verdicts: ranked by model-free evidence (static, tests, behaviour)"
        )
        selection = _pick(
            task,
            self.name,
            ranked,
            hybrid_criteria(candidates, self.top_k),
            f"{how}: model={_fmt(m)} execution={_fmt(e)} "
            f"behaviour share={behaviour_share(best, candidates):.2f}",
            self.calibration,
        )
        return with_tie(selection, ranked, candidates) if m is None else selection


class CalibratedSelector:
    """Rank by P(resolved) from a logistic model fit on labelled runs; abstain when low."""

    name = "calibrated"

    def __init__(
        self,
        calibration: Calibration | None = None,
        threshold: float = 0.0,
        mode: str = "abstain",
        on_tie: str = "flag",
    ) -> None:
        self.calibration = calibration or PRIOR
        self.threshold = threshold
        self.mode = mode
        self.on_tie = on_tie

    def probabilities(self, candidates: Sequence[Candidate]) -> dict[str, float]:
        return {c.id: self.calibration.probability(features(c, candidates)) for c in candidates}

    def select(self, task: Task, candidates: list[Candidate]) -> Selection:
        if not candidates:
            return no_candidates(task, self.name)
        probs = self.probabilities(candidates)
        ranked = sorted(candidates, key=lambda c: (-probs[c.id], -votes(c), c.id))
        best = probs[ranked[0].id]
        source = (
            f"fit on {self.calibration.fitted_on} labelled candidates"
            if self.calibration.fitted_on
            else "prior weights (no labelled runs yet)"
        )
        fit_kind, kind = self.calibration.evidence, evidence_kind(candidates)
        mismatch = bool(fit_kind) and fit_kind != kind
        if mismatch:
            source += f" of {fit_kind} pools, applied to {kind} evidence: not calibrated here"
        criteria = [Criterion("P(resolved)", lambda c: probs[c.id]), VOTES]
        selection = _pick(
            task,
            self.name,
            ranked,
            criteria,
            f"P(resolved)={best:.2f}, {source}",
            self.calibration,
        )
        if mismatch:
            selection = selection.model_copy(update={"flagged": True})
        selection = self._tie(selection, ranked, candidates)
        return apply_threshold(selection, self.threshold, self.mode)

    def _tie(
        self, selection: Selection, ranked: Sequence[Candidate], candidates: Sequence[Candidate]
    ) -> Selection:
        """When the pick ties on the evidence with other candidates, its probability
        over theirs rests on pool signals only: flag the pick (``on_tie: flag``) or
        abstain (``on_tie: abstain``)."""
        pick = ranked[0]
        tie = evidence_tie(evidence_ranking(candidates), candidates)
        if pick not in tie or len(tie) < 2 or self.on_tie == "off":
            return selection
        selection = selection.model_copy(
            update={
                "tied": [c.id for c in tie if c.id != pick.id],
                "decided_by": "P(resolved) from pool signals only",
                "flagged": True,
                "rationale": selection.rationale
                + f"; tie: the evidence cannot tell {len(tie)} candidates apart, the pick "
                "among them rests on pool signals only",
            }
        )
        if self.on_tie == "abstain":
            return selection.model_copy(
                update={"candidate_id": None, "rationale": selection.rationale + ": abstained"}
            )
        return selection


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def make_selector(
    name: str,
    cfg: SelectionConfig | None = None,
    calibration: Calibration | None = None,
    agent_factory: Callable[[], Selector] | None = None,
) -> Selector:
    """A selector by name, built from its spec (``SelectionConfig.spec``). ``agent``
    needs ``agent_factory`` (it runs a model in a sandbox). ValueError for an unknown
    name."""
    cfg = cfg or SelectionConfig()
    if calibration is None and cfg.calibration_path:
        # One calibration for every selector's confidence, not only for `calibrated`.
        calibration = Calibration.load(cfg.calibration_path)
    try:
        spec = cfg.spec(name)
    except ValueError as exc:
        raise ValueError(
            f"unknown selector {name!r}; known: {', '.join(OFFLINE_SELECTORS)}, agent"
        ) from exc
    return spec.build(SelectorContext(calibration=calibration, agent_factory=agent_factory))
