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
    behaviour_share,
    evidence_ranking,
    evidence_tie,
    execution_score,
    hybrid_ranking,
    majority_ranking,
    model_score,
    pool_detail,
    rank_by_tests_passed,
    static_gate,
    tests_passed,
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


def _pick(
    task: Task,
    name: str,
    ranked: Sequence[Candidate],
    confidence: float,
    rationale: str,
) -> Selection:
    return Selection(
        task_id=task.id,
        selector=name,
        candidate_id=ranked[0].id,
        ranking=[c.id for c in ranked],
        confidence=max(0.0, min(1.0, confidence)),
        rationale=rationale,
    )


class MajorityVoteSelector:
    name = "majority"

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
            top / total,
            f"{top} of {total} producers agree on {ranked[0].id} (normalized patch)",
        )


class TestVoteSelector:
    """CodeMonkeys: the candidate that passes the most reproduction tests."""

    __test__ = False  # not a pytest class
    name = "test_vote"

    def select(self, task: Task, candidates: list[Candidate]) -> Selection:
        if not candidates:
            return no_candidates(task, self.name)
        ranked = rank_by_tests_passed(candidates)
        best = tests_passed(ranked[0])
        if best is None:
            return _pick(
                task, self.name, ranked, 0.0, "no reproduction tests ran; fell back to votes"
            )
        verdict = ranked[0].verdicts["repro"]
        total = verdict.details.get("total")
        if not isinstance(total, int) or not total:
            return _pick(task, self.name, ranked, verdict.score, f"repro pass rate {best:.2f}")
        return _pick(
            task,
            self.name,
            ranked,
            best / total,
            f"passes {best:.0f} of {total} reproduction tests",
        )


class EvidenceSelector:
    """Model-free evidence in a fixed order: static checks (applies, compiles, imports,
    no new undefined names), then execution (tests passed, nothing broken), then the
    vote share of the behaviour class, then locality against the pool, then votes."""

    name = "evidence"

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
        conf = 0.5 * static_gate(best) + 0.5 * (share if e is None else max(min(e, 1.0), 0.0))
        selection = _pick(
            task,
            self.name,
            ranked,
            conf,
            f"static={static_gate(best):.1f} execution={_fmt(e)} behaviour class share="
            f"{share:.2f} locality={pool_detail(best, 'locality', 0.0):.2f}; evidence used: "
            + (", ".join(used) or "none (votes only)"),
        )
        return with_tie(selection, ranked, candidates)


EVIDENCE_NAMES = ("static", "regression", "harvest", "issue", "doctest", "repro", "behaviour")


def with_tie(
    selection: Selection, ranked: Sequence[Candidate], candidates: Sequence[Candidate]
) -> Selection:
    """The selection with the tie its pick came from named (``tie``, ``tie_broken_by``,
    and a sentence in the rationale), when the evidence could not tell the finalists
    apart; unchanged when it could."""
    tie = evidence_tie(ranked, candidates)
    if len(tie) < 2:
        return selection
    how = tie_breaker(tie)
    note = (
        f"; tie: the evidence cannot tell {len(tie)} candidates apart "
        f"({', '.join(c.id for c in tie)}), the pick among them by {how}"
    )
    return selection.model_copy(
        update={
            "tie": [c.id for c in tie],
            "tie_broken_by": how,
            "rationale": selection.rationale + note,
        }
    )


class HybridSelector:
    """R2E-Gym's published order: top-k by model score, then tests, model score breaks ties."""

    name = "hybrid"

    def __init__(self, top_k: int = 3) -> None:
        self.top_k = top_k

    def select(self, task: Task, candidates: list[Candidate]) -> Selection:
        if not candidates:
            return no_candidates(task, self.name)
        ranked = hybrid_ranking(candidates, self.top_k)
        best = ranked[0]
        m, e = model_score(best), execution_score(best)
        parts = [x for x in (m, None if e is None else max(e, 0.0)) if x is not None]
        conf = sum(parts) / len(parts) if parts else 0.0
        how = (
            f"top {self.top_k} by model score, then execution"
            if m is not None
            else "no model verdicts: ranked by model-free evidence (static, tests, behaviour)"
        )
        selection = _pick(
            task,
            self.name,
            ranked,
            conf,
            f"{how}: model={_fmt(m)} execution={_fmt(e)} "
            f"behaviour share={behaviour_share(best, candidates):.2f}",
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
        selection = _pick(task, self.name, ranked, best, f"P(resolved)={best:.2f}, {source}")
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
        tie = [c for c in evidence_tie(evidence_ranking(candidates), candidates)]
        if pick not in tie or len(tie) < 2 or self.on_tie == "off":
            return selection
        selection = selection.model_copy(
            update={
                "tie": [c.id for c in tie],
                "tie_broken_by": "P(resolved) from pool signals only",
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
    try:
        spec = cfg.spec(name)
    except ValueError as exc:
        raise ValueError(
            f"unknown selector {name!r}; known: {', '.join(OFFLINE_SELECTORS)}, agent"
        ) from exc
    return spec.build(SelectorContext(calibration=calibration, agent_factory=agent_factory))
