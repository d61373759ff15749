"""Tests x candidates matrices of a task page: the task's own tests as grading ran them,
the tests the candidates brought (harvested: who wrote each, and how every candidate
fares on it), reproduction outcomes, and the existing tests a candidate breaks.

Pure functions over the rows of :mod:`swescale.report.pool`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from swescale.report.pool import CandidateRow
from swescale.verifiers.base import HARVEST


@dataclass
class Matrix:
    """Tests (rows) x candidates (columns); a cell is pass, fail, or another outcome
    (its first word names it; "pass (own)": the candidate's own test)."""

    title: str
    candidate_ids: list[str]
    rows: list[tuple[str, list[str]]]
    # Tests left out because every candidate has the same outcome on them.
    uniform: int = 0
    uniform_note: str = ""
    # Per row, who wrote the test (harvested tests); empty when the matrix has no authors.
    authors: list[str] = field(default_factory=list)
    note: str = ""


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


def _ordered(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def harvest_matrix(rows: list[CandidateRow], max_rows: int = 60) -> Matrix | None:
    """The harvested tests (each unit of a test file, or a script) against every
    candidate: rows are the units, with the candidates (and their trajectories) whose
    patch brought the test; cells pass, fail, or error (the unit could not run). A
    candidate's own test is marked: it does not count for it. Units that pass on the
    base commit judge nothing and are counted in the note."""
    verdicts = {
        r.candidate.id: r.candidate.verdicts[HARVEST]
        for r in rows
        if HARVEST in r.candidate.verdicts
    }
    if not verdicts:
        return None
    tests: dict[str, Any] = {}
    discarded: set[str] = set()
    for verdict in verdicts.values():
        found = verdict.details.get("tests")
        if isinstance(found, dict):
            tests.update({str(k): v for k, v in found.items() if isinstance(v, dict)})
        dropped = verdict.details.get("discarded")
        if isinstance(dropped, list):
            discarded.update(str(t) for t in dropped)
    cells = {
        cid: v.details.get("cells") if isinstance(v.details.get("cells"), dict) else {}
        for cid, v in verdicts.items()
    }
    units = _ordered(key for found in cells.values() for key in found)
    if not units:
        return None
    producers = {r.candidate.id: r.candidate.trajectory_ids for r in rows}
    ids = [r.candidate.id for r in rows if r.candidate.id in verdicts]
    out: list[tuple[str, list[str]]] = []
    authors: list[str] = []
    for unit in units:
        test_id, _, name = unit.partition(":")
        info = tests.get(test_id, {})
        path = str(info.get("path") or test_id)
        written_by = [str(c) for c in info.get("from") or []]
        label = name if name and name != "<file>" else f"{path} (exit status)"
        row = []
        for cid in ids:
            value = cells[cid].get(unit, "missing")
            text = "–" if value == "missing" else _outcome(value)
            row.append(f"{text} (own)" if cid in written_by and text != "–" else text)
        out.append((label, row))
        authors.append(_authors(written_by, producers))
    note = (
        f"{len(discarded)} harvested test file(s) pass on the base commit and judge nothing"
        if discarded
        else ""
    )
    return Matrix(
        title="Harvested tests: tests the candidates brought, run on every candidate",
        candidate_ids=ids,
        rows=out[:max_rows],
        uniform=max(0, len(out) - max_rows),
        authors=authors[:max_rows],
        note=note,
    )


def _outcome(value: Any) -> str:
    if value is True:
        return "pass"
    if value is False:
        return "fail"
    return "error"


def _authors(candidate_ids: list[str], producers: dict[str, list[str]]) -> str:
    """ "candidate (trajectories)" for each candidate that brought a test."""
    parts = []
    for cid in candidate_ids:
        trajs = producers.get(cid) or []
        named = ", ".join(".".join(t.split(".")[-2:]) for t in trajs[:3])
        more = f" +{len(trajs) - 3}" if len(trajs) > 3 else ""
        parts.append(f"{cid[:8]} ({named}{more})" if trajs else cid[:8])
    return "; ".join(parts) or "–"
