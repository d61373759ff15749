"""A task's candidate pool as the report shows it: per candidate its producers, the
selection features (votes, model score, execution score), every verifier's verdict with
its evidence, and the graded truth; test x candidate matrices; what each selector picks.

Pure functions over the records (``TaskRecord`` from ``swescale.selection.record``, the
grades ``swescale run`` writes): no files are read here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from swescale.patches import votes
from swescale.selection.ranking import execution_score, model_score, tests_passed
from swescale.types import Candidate, Selection, Verdict

# Detail keys a verdict's evidence shows in its own way; the rest is listed as JSON.
SHOWN_DETAILS = {"broken", "tests", "results", "passed", "total", "samples", "methods", "method"}
SHOWN_DETAILS |= {"flaky", "note", "applied", "unjudged", "base_passing", "errors"}


@dataclass
class Evidence:
    """One verifier's verdict on one candidate, ready to show."""

    verifier: str
    score: float
    passed: bool | None
    infra_error: str | None
    headline: str
    broken: list[str] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    tests: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    other: str = ""
    cost: dict[str, float] = field(default_factory=dict)


def evidence(verdict: Verdict) -> Evidence:
    d = verdict.details or {}
    out = Evidence(
        verifier=verdict.verifier,
        score=float(verdict.score),
        passed=verdict.passed,
        infra_error=verdict.infra_error,
        headline="",
        cost=verdict.cost.model_dump(),
    )
    broken = d.get("broken")
    if isinstance(broken, list):
        out.broken = [str(t) for t in broken]
    results = d.get("results")
    if isinstance(results, dict):
        out.outcomes = {str(k): str(v) for k, v in results.items()}
    tests = d.get("tests")
    if isinstance(tests, list):
        out.tests = [str(t) for t in tests]
    elif isinstance(tests, dict):
        out.tests = [f"{k}: {v}" for k, v in tests.items()]
    samples = d.get("samples")
    methods = d.get("methods") if isinstance(d.get("methods"), list) else []
    if isinstance(samples, list):
        out.samples = [
            f"{float(s):.2f}" + (f" ({methods[i]})" if i < len(methods) else "")
            for i, s in enumerate(samples)
            if isinstance(s, int | float)
        ]
    for key in ("note", "errors", "flaky"):
        value = d.get(key)
        if value:
            out.notes.append(f"{key}: {value if isinstance(value, str) else json.dumps(value)}")
    if d.get("applied") is False:
        out.notes.append("the patch did not apply")
    if isinstance(d.get("test_setup_changed"), list) and d["test_setup_changed"]:
        paths = ", ".join(str(p) for p in d["test_setup_changed"])
        out.notes.append(
            f"changes the test set-up ({paths}): its test outcomes may be its own doing"
        )
    rest = {k: v for k, v in d.items() if k not in SHOWN_DETAILS}
    if rest:
        out.other = json.dumps(rest, indent=1, sort_keys=True, default=str)
    out.headline = _headline(verdict, out)
    return out


def _headline(verdict: Verdict, ev: Evidence) -> str:
    d = verdict.details or {}
    if verdict.infra_error:
        return f"no evidence: {verdict.infra_error}"
    if isinstance(d.get("passed"), int) and isinstance(d.get("total"), int):
        return f"passes {d['passed']}/{d['total']} tests"
    if ev.broken or d.get("applied") is True:
        base = d.get("base_passing")
        of = f" of {base} passing" if isinstance(base, int) else ""
        return f"breaks {len(ev.broken)}{of} tests" if ev.broken else f"breaks none{of}"
    if ev.samples:
        return f"P(yes) {verdict.score:.2f} over {len(ev.samples)} sample(s)"
    return f"score {verdict.score:.2f}"


@dataclass
class GradedTruth:
    """The task's own tests on a candidate (``swescale run`` with ``scaling.grade``)."""

    resolved: bool | None
    status: str = ""
    error: str = ""
    f2p_pass: list[str] = field(default_factory=list)
    f2p_fail: list[str] = field(default_factory=list)
    p2p_pass: list[str] = field(default_factory=list)
    p2p_fail: list[str] = field(default_factory=list)
    apply_output: str = ""
    log_path: str = ""
    test_setup_changed: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        if self.resolved is None and not self.status:
            return "not graded"
        parts = [self.status or ("resolved" if self.resolved else "unresolved")]
        if self.f2p_pass or self.f2p_fail:
            parts.append(
                f"FAIL_TO_PASS {len(self.f2p_pass)}/{len(self.f2p_pass) + len(self.f2p_fail)}"
            )
        if self.p2p_fail:
            parts.append(f"breaks {len(self.p2p_fail)} PASS_TO_PASS")
        if self.test_setup_changed:
            parts.append(f"test set-up changed by the patch: {', '.join(self.test_setup_changed)}")
        return ", ".join(parts)


def graded_truth(cand: Candidate, grade: Any) -> GradedTruth:
    """From a grade record (the official per-instance report inside) and the label."""
    truth = GradedTruth(resolved=cand.resolved)
    if not isinstance(grade, dict):
        return truth
    truth.status = str(grade.get("status") or "")
    truth.error = str(grade.get("error") or "")
    truth.apply_output = str(grade.get("apply_output") or "")
    truth.log_path = str(grade.get("log_path") or "")
    if isinstance(grade.get("test_setup_changed"), list):
        truth.test_setup_changed = [str(p) for p in grade["test_setup_changed"]]
    if truth.resolved is None and isinstance(grade.get("resolved"), bool):
        truth.resolved = grade["resolved"]
    report = grade.get("report")
    inner = report.get(cand.task_id) if isinstance(report, dict) else None
    if not isinstance(inner, dict) and isinstance(report, dict) and len(report) == 1:
        inner = next(iter(report.values()))
    status = inner.get("tests_status") if isinstance(inner, dict) else None
    if isinstance(status, dict):
        truth.f2p_pass = _names(status, "FAIL_TO_PASS", "success")
        truth.f2p_fail = _names(status, "FAIL_TO_PASS", "failure")
        truth.p2p_pass = _names(status, "PASS_TO_PASS", "success")
        truth.p2p_fail = _names(status, "PASS_TO_PASS", "failure")
    return truth


def _names(status: dict[str, Any], group: str, kind: str) -> list[str]:
    part = status.get(group)
    values = part.get(kind) if isinstance(part, dict) else None
    return [str(v) for v in values] if isinstance(values, list) else []


@dataclass
class CandidateRow:
    candidate: Candidate
    rank: int | None  # in the run's selection ranking (1 = picked)
    chosen: bool
    votes: int
    share: float
    model_score: float | None
    execution_score: float | None
    tests_passed: float | None
    evidence: list[Evidence]
    truth: GradedTruth


def candidate_rows(
    candidates: list[Candidate], selection: Selection | None, grades: dict[str, Any]
) -> list[CandidateRow]:
    """One row per candidate, in the run's ranking order (unranked ones after, by votes)."""
    ranking = list(selection.ranking) if selection else []
    chosen = selection.candidate_id if selection else None
    if chosen and chosen not in ranking:
        ranking.insert(0, chosen)
    total = sum(votes(c) for c in candidates) or 1
    rows = []
    for cand in candidates:
        rank = ranking.index(cand.id) + 1 if cand.id in ranking else None
        rows.append(
            CandidateRow(
                candidate=cand,
                rank=rank,
                chosen=cand.id == chosen,
                votes=votes(cand),
                share=votes(cand) / total,
                model_score=model_score(cand),
                execution_score=execution_score(cand),
                tests_passed=tests_passed(cand),
                evidence=[evidence(v) for _, v in sorted(cand.verdicts.items())],
                truth=graded_truth(cand, grades.get(cand.id)),
            )
        )
    rows.sort(key=lambda r: (r.rank is None, r.rank or 0, -r.votes, r.candidate.id))
    return rows


@dataclass
class Matrix:
    """Tests (rows) x candidates (columns); a cell is pass, fail, or another outcome."""

    title: str
    candidate_ids: list[str]
    rows: list[tuple[str, list[str]]]
    # Tests left out because every candidate has the same outcome on them.
    uniform: int = 0
    uniform_note: str = ""


def truth_matrix(rows: list[CandidateRow], max_rows: int = 60) -> Matrix | None:
    """The task's own tests against every graded candidate. All FAIL_TO_PASS tests are
    rows; PASS_TO_PASS tests only where some candidate breaks them."""
    graded = [r for r in rows if r.truth.f2p_pass or r.truth.f2p_fail or r.truth.p2p_fail]
    if not graded:
        return None
    f2p = _ordered(t for r in graded for t in (*r.truth.f2p_pass, *r.truth.f2p_fail))
    p2p_broken = _ordered(t for r in graded for t in r.truth.p2p_fail)
    p2p_all = {t for r in graded for t in (*r.truth.p2p_pass, *r.truth.p2p_fail)}
    out: list[tuple[str, list[str]]] = []
    for test in f2p + p2p_broken:
        cells = []
        for r in graded:
            if test in r.truth.f2p_pass or test in r.truth.p2p_pass:
                cells.append("pass")
            elif test in r.truth.f2p_fail or test in r.truth.p2p_fail:
                cells.append("fail")
            else:
                cells.append("")
        label = ("F2P " if test in f2p else "P2P ") + test
        out.append((label, cells))
    uniform = len(p2p_all) - len(p2p_broken)
    return Matrix(
        title="Graded with the task's tests",
        candidate_ids=[r.candidate.id for r in graded],
        rows=out[:max_rows],
        uniform=uniform + max(0, len(out) - max_rows),
        uniform_note=f"{uniform} PASS_TO_PASS tests pass with every candidate" if uniform else "",
    )


def verifier_matrices(rows: list[CandidateRow], max_rows: int = 60) -> list[Matrix]:
    """Per verifier with per-test evidence: reproduction outcomes, or the existing tests
    a candidate breaks."""
    names = sorted({ev.verifier for r in rows for ev in r.evidence})
    found = []
    for name in names:
        per_cand = {
            r.candidate.id: next((e for e in r.evidence if e.verifier == name), None) for r in rows
        }
        with_outcomes = {cid: e.outcomes for cid, e in per_cand.items() if e and e.outcomes}
        if with_outcomes:
            tests = _ordered(t for o in with_outcomes.values() for t in o)
            ids = list(with_outcomes)
            matrix_rows = [(t, [with_outcomes[c].get(t, "") for c in ids]) for t in tests]
            found.append(Matrix(f"{name}: test outcomes", ids, matrix_rows[:max_rows]))
            continue
        judged = {
            cid: e
            for cid, e in per_cand.items()
            if e and not e.infra_error and e.passed is not None
        }
        broken = _ordered(t for e in judged.values() for t in e.broken)
        if judged and broken:
            ids = list(judged)
            matrix_rows = [
                (t, ["broken" if t in judged[c].broken else "pass" for c in ids]) for t in broken
            ]
            found.append(Matrix(f"{name}: existing tests broken", ids, matrix_rows[:max_rows]))
    return found


def _ordered(items: Any) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


@dataclass
class Pick:
    """What one selector picks on this task."""

    selector: str
    source: str  # "run", "offline", or "swescale select"
    candidate_id: str | None
    resolved: bool | None
    confidence: float
    rationale: str
    flagged: bool = False


def pick(selection: Selection, candidates: list[Candidate], source: str) -> Pick:
    chosen = next((c for c in candidates if c.id == selection.candidate_id), None)
    resolved = chosen.resolved if chosen is not None else (False if candidates else None)
    return Pick(
        selector=selection.selector or "?",
        source=source,
        candidate_id=selection.candidate_id,
        resolved=resolved,
        confidence=float(selection.confidence),
        rationale=selection.rationale,
        flagged=selection.flagged,
    )
