"""A task's candidate pool as the report shows it: per candidate its producers, the
selection features (votes, model score, execution score), every verifier's verdict with
its evidence, and the graded truth; test x candidate matrices; what each selector picks.

Pure functions over the records (``TaskRecord`` from ``swescale.selection.record``, the
grades ``swescale run`` writes): no files are read here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from swescale.patches import votes
from swescale.selection.ranking import execution_score, model_score, tests_passed
from swescale.types import Candidate, Selection, Verdict
from swescale.verifiers.base import BEHAVIOUR, HARVEST, STATIC

# Detail keys a verdict's evidence shows in its own way; the rest is listed as JSON.
SHOWN_DETAILS = {"broken", "tests", "results", "passed", "total", "samples", "methods", "method"}
SHOWN_DETAILS |= {"flaky", "note", "applied", "unjudged", "base_passing", "errors"}

# A compile error as py_compile words it: 'File "pkg/core.py", line 12' ... 'SyntaxError: ...'.
_AT_LINE = re.compile(r'File "([^"]+)", line (\d+)')
_ERROR_LINE = re.compile(r"^\s*(?:Sorry: )?([A-Za-z_]\w*(?:Error|Exception|Warning)):\s*(.*)$")


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


def static_finding(details: dict[str, Any]) -> str:
    """The static verifier's verdict in one line, its first failure named as a reader
    looks for it: "does not apply", "SyntaxError at core.py:12 (invalid syntax)",
    "import of pkg.core fails: ModuleNotFoundError: ...", "undefined name x in core.py";
    else what passed."""
    if details.get("applied") is False:
        return "does not apply"
    if details.get("changes_source") is False:
        return "changes no source (only tests, scripts, packaging or prose)"
    compile_errors = details.get("compile_errors")
    if isinstance(compile_errors, dict) and compile_errors:
        path, message = next(iter(sorted(compile_errors.items())))
        return _compile_error(str(path), str(message)) + _more(len(compile_errors), "file")
    import_errors = details.get("import_errors")
    if isinstance(import_errors, dict) and import_errors:
        module, message = next(iter(sorted(import_errors.items())))
        last = (str(message).strip().splitlines() or ["fails"])[-1].strip()
        return f"import of {module} fails: {last[:160]}" + _more(len(import_errors), "module")
    undefined = details.get("new_undefined")
    if isinstance(undefined, dict) and undefined:
        path, names = next(iter(sorted(undefined.items())))
        names = names if isinstance(names, list) else [names]
        shown = ", ".join(str(n) for n in names[:3])
        return f"undefined name {shown} in {path}" + _more(len(undefined), "file")
    if details.get("applied") is True:
        how = "" if details.get("clean_apply", True) else " (not with plain git apply)"
        return f"applies{how}, compiles, imports"
    return ""


def _compile_error(path: str, message: str) -> str:
    where = _AT_LINE.search(message)
    kind, said = "compile error", ""
    for line in reversed(message.strip().splitlines()):
        found = _ERROR_LINE.match(line)
        if found:
            kind, said = found[1], found[2].strip()
            break
    at = f"{where[1]}:{where[2]}" if where else path
    return f"{kind} at {at}" + (f" ({said[:120]})" if said else "")


def _more(count: int, what: str) -> str:
    return f" (+{count - 1} more {what}{'s' if count > 2 else ''})" if count > 1 else ""


def _headline(verdict: Verdict, ev: Evidence) -> str:
    d = verdict.details or {}
    if verdict.infra_error:
        return f"no evidence: {verdict.infra_error}"
    if verdict.verifier == STATIC:
        return static_finding(d) or f"score {verdict.score:.2f}"
    if verdict.verifier == BEHAVIOUR:
        size, classes = d.get("class_size"), d.get("classes")
        of = f" (class of {size}, {classes} classes)" if size and classes else ""
        return f"{verdict.score:.0%} of the votes behave alike{of}"
    if verdict.verifier == HARVEST and isinstance(d.get("total"), int):
        return f"passes {d.get('passed', 0)} of {d['total']} tests other candidates brought"
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
    # P(resolved | evidence) on the page's one scale, and what was spent on the candidate
    # (its producers' trajectories, its verdicts); filled in by the task page.
    probability: float | None = None
    cost: dict[str, float] = field(default_factory=dict)


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
class Pick:
    """What one selector picks on this task."""

    selector: str
    source: str  # "run", "offline", or "swescale select"
    candidate_id: str | None
    resolved: bool | None
    confidence: float
    rationale: str
    flagged: bool = False
    tied: list[str] = field(default_factory=list)
    decided_by: str = ""
    # P(resolved) of the pick on the page's one scale (filled in by the task page).
    probability: float | None = None


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
        tied=list(selection.tied),
        decided_by=selection.decided_by,
    )
