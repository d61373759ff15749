"""Pure ranking functions over candidates and their verdicts.

Every function here takes plain values and returns plain values, so each is tested on
literal inputs. Ties are always broken the same way: more votes first, then candidate id.
Missing evidence is neutral (``None`` scores sort after real ones, never crash).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from swescale.patches import votes
from swescale.types import Candidate
from swescale.verifiers.base import (
    BEHAVIOUR,
    DOCTEST,
    HARVEST,
    ISSUE,
    MODEL_VERIFIERS,
    REGRESSION,
    REPRO,
    STATIC,
)

# How much a broken existing test costs relative to the repro pass rate (both in [0, 1]).
REGRESSION_WEIGHT = 1.0


def usable_score(cand: Candidate, name: str) -> float | None:
    verdict = cand.verdicts.get(name)
    if verdict is None or verdict.infra_error:
        return None
    return float(verdict.score)


def model_score(cand: Candidate) -> float | None:
    """Mean of the model verifiers' scores (judge, reward model); None when there are none."""
    scores = [s for name in MODEL_VERIFIERS if (s := usable_score(cand, name)) is not None]
    return sum(scores) / len(scores) if scores else None


# Checks that reproduce the bug (a candidate should pass them) and existing tests (a
# candidate should not break them).
REPRODUCING = (REPRO, HARVEST, ISSUE)
EXISTING = (REGRESSION, DOCTEST)


def execution_score(cand: Candidate) -> float | None:
    """Pass rate of the checks that reproduce the bug (reproduction tests, harvested
    tests, the issue's own reproducers; averaged over those that judged) minus the share
    of base-passing existing tests the candidate breaks (related test files, the changed
    modules' doctests); a candidate that fails the static checks (does not apply,
    compile or import) scores -1."""
    static = cand.verdicts.get(STATIC)
    if static is not None and not static.infra_error and static.passed is False:
        return -1.0
    rates = [s for name in REPRODUCING if (s := usable_score(cand, name)) is not None]
    kept = [s for name in EXISTING if (s := usable_score(cand, name)) is not None]
    if not rates and not kept:
        return None
    broken = sum(1.0 - s for s in kept)
    base = sum(rates) / len(rates) if rates else 1.0
    return base - REGRESSION_WEIGHT * broken


def static_gate(cand: Candidate) -> float:
    """1 passed the static checks, 0 failed them (or changes nothing but tests,
    reproduction scripts, packaging configuration and prose, which needs no sandbox to
    see), 0.5 unknown."""
    from swescale.patches import changes_source

    if not changes_source(cand.patch):
        return 0.0
    verdict = cand.verdicts.get(STATIC)
    if verdict is None or verdict.infra_error or verdict.passed is None:
        return 0.5
    return 1.0 if verdict.passed else 0.0


def behaviour_share(cand: Candidate, candidates: Sequence[Candidate]) -> float:
    """The vote share of the candidate's behaviour class; its own vote share without one."""
    verdict = cand.verdicts.get(BEHAVIOUR)
    if verdict is None:
        return vote_share(cand, candidates)
    return float(verdict.score)


def pool_detail(cand: Candidate, key: str, default: float) -> float:
    """A pool signal (``locality``, ``size_ratio``) from the static verdict's details,
    present even when the sandbox checks could not run."""
    verdict = cand.verdicts.get(STATIC)
    value = verdict.details.get(key) if verdict is not None else None
    return float(value) if isinstance(value, int | float) else default


def size_atypicality(cand: Candidate) -> float:
    """How far the candidate's size is from the pool's median, in either direction
    (``|log size_ratio|``; 0 is the median): a patch much larger than its peers reaches
    beyond the fix, one much smaller does part of it."""
    return abs(math.log(max(pool_detail(cand, "size_ratio", 1.0), 1e-3)))


def evidence_part(cand: Candidate, candidates: Sequence[Candidate]) -> tuple:
    """What the evidence says of a candidate: static checks, then execution (checks that
    reproduce the bug passed, existing tests not broken), then the agreement of its
    behaviour class. Candidates with equal parts are a tie: what orders them after this
    is the model's score when there is one, else the prior (locality, votes, size)."""
    execution = execution_score(cand)
    return (
        -static_gate(cand),
        _desc(None if execution is None else round(execution, 6)),
        -round(behaviour_share(cand, candidates), 6),
    )


PRIOR_ORDER = "prior: locality against the pool, then votes, then a size near the pool's median"


def evidence_key(cand: Candidate, candidates: Sequence[Candidate]) -> tuple:
    """Sort key of the model-free evidence, best first: static checks, then execution
    (tests passed, nothing broken), then agreement of behaviour (``evidence_part``);
    among a tie the model's score when a judge or reward model ran, then the prior:
    locality against the pool, votes, a size typical of the pool, id."""
    return (
        *evidence_part(cand, candidates),
        _desc(None if (m := model_score(cand)) is None else round(m, 6)),
        -round(pool_detail(cand, "locality", 0.0), 6),
        # Producers that agree carry information the size does not: votes first.
        -votes(cand),
        round(size_atypicality(cand), 6),
        cand.id,
    )


def evidence_ranking(candidates: Sequence[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda c: evidence_key(c, candidates))


def evidence_tie(ranked: Sequence[Candidate], candidates: Sequence[Candidate]) -> list[Candidate]:
    """The candidates the evidence cannot tell apart from the first of ``ranked`` (it
    included, in ranking order): equal ``evidence_part``. One element: no tie."""
    if not ranked:
        return []
    top = evidence_part(ranked[0], candidates)
    return [c for c in ranked if evidence_part(c, candidates) == top]


def tie_breaker(tie: Sequence[Candidate]) -> str:
    """What orders a tie in ``evidence_key``: the model's score when it differs among
    the tie, else the prior."""
    scores = {None if (m := model_score(c)) is None else round(m, 6) for c in tie}
    if len(scores) > 1 and None not in scores:
        return "model score (judge or reward model)"
    return PRIOR_ORDER


def tests_passed(cand: Candidate) -> float | None:
    """How many reproduction tests the candidate passes (CodeMonkeys' test voting); a
    verdict without counts (another tool's) contributes its pass rate instead."""
    verdict = cand.verdicts.get(REPRO)
    if verdict is None or verdict.infra_error:
        return None
    passed = verdict.details.get("passed")
    if isinstance(passed, int | float) and not isinstance(passed, bool):
        return float(passed)
    return float(verdict.score)


def _desc(value: float | None) -> float:
    """Sort key putting larger first and None last."""
    return float("inf") if value is None else -value


def tie_break(cand: Candidate) -> tuple[int, str]:
    return (-votes(cand), cand.id)


def majority_ranking(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Most producers first."""
    return sorted(candidates, key=tie_break)


def rank_by_tests_passed(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Most reproduction tests passed first; regressions then votes break ties."""
    return sorted(
        candidates,
        key=lambda c: (
            _desc(tests_passed(c)),
            _desc(usable_score(c, REGRESSION)),
            *tie_break(c),
        ),
    )


def hybrid_ranking(candidates: Sequence[Candidate], top_k: int) -> list[Candidate]:
    """R2E-Gym: keep the top-k by model score, rank them by execution evidence, model
    score breaks ties; the rest follow in model-score order. Without any model verdict
    there is nothing to cut the pool by: every candidate is ranked by the model-free
    evidence (``evidence_ranking``), so a right answer that is not the most frequent text
    is not dropped before its tests are read."""
    if all(model_score(c) is None for c in candidates):
        return evidence_ranking(candidates)
    by_model = sorted(candidates, key=lambda c: (_desc(model_score(c)), *tie_break(c)))
    top, rest = by_model[: max(top_k, 1)], by_model[max(top_k, 1) :]
    top = sorted(
        top,
        key=lambda c: (
            -static_gate(c),
            _desc(execution_score(c)),
            _desc(model_score(c)),
            -round(behaviour_share(c, candidates), 6),
            *tie_break(c),
        ),
    )
    return top + rest


def matrix_ranking(
    matrix: Mapping[str, Mapping[str, bool | None]], candidate_ids: Sequence[str]
) -> list[tuple[str, int]]:
    """Rank candidate ids by tests passed in a test x candidate matrix.

    ``matrix[test_id][candidate_id]`` is True (pass), False (fail) or None (unknown:
    infrastructure error, flaky), which counts as neither. Ties by id.
    """
    counts = {cid: 0 for cid in candidate_ids}
    for row in matrix.values():
        for cid, outcome in row.items():
            if cid in counts and outcome is True:
                counts[cid] += 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def vote_share(cand: Candidate, candidates: Sequence[Candidate]) -> float:
    total = sum(votes(c) for c in candidates)
    return votes(cand) / total if total else 0.0


# -- what decided a ranking ------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    """One thing a ranking compares, in its order: ``value`` (larger is better unless
    ``lower_first``); ``evidence`` False for a tie-break (votes, size, id), which orders
    candidates the evidence cannot tell apart."""

    name: str
    value: Callable[[Candidate], float | None]
    evidence: bool = True
    lower_first: bool = False
    count: bool = False  # shown as a whole number (votes, tests passed)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _shown(value: float | None, count: bool) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f}" if count else f"{value:.2f}"


def decision(ranked: Sequence[Candidate], criteria: Sequence[Criterion]) -> tuple[list[str], str]:
    """(tied, decided_by) of a ranking's pick: the ids the evidence criteria cannot tell
    from the pick, and the first criterion on which the pick and the runner-up differ,
    with the ones they tie on before it ("locality 1.00 vs 0.50 after ties on static
    checks, execution"; "candidate id" when only the id orders them). The ranking must
    sort by ``criteria`` in order (each ranking function below names its own)."""
    if len(ranked) < 2:
        return [], ""
    best, runner = ranked[0], ranked[1]
    evidence = [c for c in criteria if c.evidence]

    def key(cand: Candidate) -> tuple[float | None, ...]:
        return tuple(_rounded(c.value(cand)) for c in evidence)

    tied = [c.id for c in ranked[1:] if key(c) == key(best)]
    even: list[str] = []
    for criterion in criteria:
        a, b = _rounded(criterion.value(best)), _rounded(criterion.value(runner))
        if a != b:
            shown = f"{criterion.name} {_shown(a, criterion.count)} vs {_shown(b, criterion.count)}"
            return tied, shown + (f" after ties on {', '.join(even)}" if even else "")
        even.append(criterion.name)
    return tied, "candidate id"


VOTES = Criterion("votes", lambda c: float(votes(c)), evidence=False, count=True)


def majority_criteria() -> list[Criterion]:
    return [Criterion("votes", lambda c: float(votes(c)), count=True)]


def evidence_criteria(candidates: Sequence[Candidate]) -> list[Criterion]:
    """The order of :func:`evidence_key`, named."""
    return [
        Criterion("static checks", static_gate),
        Criterion("execution", execution_score),
        Criterion("behaviour share", lambda c: behaviour_share(c, candidates)),
        Criterion("locality", lambda c: pool_detail(c, "locality", 0.0)),
        VOTES,
        Criterion("size off the median", size_atypicality, evidence=False, lower_first=True),
    ]


def tests_passed_criteria() -> list[Criterion]:
    """The order of :func:`rank_by_tests_passed`, named."""
    return [
        Criterion("reproduction tests passed", tests_passed, count=True),
        Criterion("regression", lambda c: usable_score(c, REGRESSION)),
        VOTES,
    ]


def hybrid_criteria(candidates: Sequence[Candidate], top_k: int) -> list[Criterion]:
    """The order of :func:`hybrid_ranking`, named (the model-free order without model
    verdicts)."""
    if all(model_score(c) is None for c in candidates):
        return evidence_criteria(candidates)
    top = {c.id for c in hybrid_ranking(candidates, top_k)[: max(top_k, 1)]}
    return [
        Criterion(f"top {top_k} by model score", lambda c: float(c.id in top)),
        Criterion("static checks", static_gate),
        Criterion("execution", execution_score),
        Criterion("model score", model_score),
        Criterion("behaviour share", lambda c: behaviour_share(c, candidates)),
        VOTES,
    ]
