"""Why this patch: the pick beside the runner-up and beside the majority's candidate, on
every piece of evidence the pool has (P(resolved), votes, static checks, harvested and
reproduction tests, existing tests broken, behaviour, model scores, locality and size,
cost, the graded truth), the line that decided between pick and runner-up, and a
side-by-side diff of the two patches (``difflib.HtmlDiff``).

Pure functions over the rows of :mod:`swescale.report.pool`; the task page shows them.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

from swescale.report.pool import CandidateRow, static_finding
from swescale.report.web import cost_text
from swescale.selection.ranking import majority_ranking, pool_detail
from swescale.types import Selection
from swescale.verifiers.base import BEHAVIOUR, HARVEST, MODEL_VERIFIERS, REGRESSION, REPRO, STATIC

# Which evidence line each named criterion of a ranking (swescale.selection.ranking) is.
_LINE_OF = {
    "P(resolved)": "P(resolved)",
    "votes": "votes",
    "static checks": "static checks",
    "execution": "execution score",
    "behaviour share": "behaviour",
    "locality": "locality and size",
    "size off the median": "locality and size",
    "model score": "model scores",
    "reproduction tests passed": "reproduction tests",
    "regression": "existing tests broken",
}
_DECIDED = re.compile(r"^(?P<name>.+?) (?P<a>\S+) vs (?P<b>\S+)(?: after ties on (?P<even>.+))?$")


@dataclass
class Column:
    """One candidate in the comparison, with every role it plays."""

    roles: list[str]
    row: CandidateRow


@dataclass
class Line:
    """One piece of evidence across the columns; ``decided``: the line on which the
    pick beat the runner-up."""

    name: str
    cells: list[str]
    decided: bool = False


@dataclass
class Why:
    selector: str
    sentence: str
    columns: list[Column] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    side_by_side: Markup | None = None
    tie: bool = False


def explain(selection: Selection | None, rows: list[CandidateRow]) -> Why | None:
    """The comparison for a task page; None without candidates."""
    if not rows:
        return None
    by_id = {r.candidate.id: r for r in rows}
    ranking = [i for i in (selection.ranking if selection else []) if i in by_id]
    ranking += [r.candidate.id for r in rows if r.candidate.id not in ranking]
    picked = selection.candidate_id if selection and selection.candidate_id in by_id else None
    first = picked or ranking[0]
    runner = next((i for i in ranking if i != first), None)
    majority = majority_ranking([r.candidate for r in rows])[0].id
    columns: list[Column] = []
    for cid, role in ((first, "picked" if picked else "ranked first"), (runner, "runner-up")):
        if cid is not None:
            columns.append(Column([role], by_id[cid]))
    for column in columns:
        if column.row.candidate.id == majority:
            column.roles.append("majority's candidate")
    if all(c.row.candidate.id != majority for c in columns):
        columns.append(Column(["majority's candidate"], by_id[majority]))
    why = Why(selector=(selection.selector if selection else "") or "?", sentence="")
    why.columns = columns
    decided = _decided_line(selection)
    why.lines = [line for line in _lines([c.row for c in columns], rows) if _shown(line)]
    for line in why.lines:
        line.decided = line.name == decided
    why.tie = bool(selection and selection.tied)
    why.sentence = _sentence(selection, first, runner, picked is not None)
    if runner is not None:
        why.side_by_side = side_by_side(
            by_id[first].candidate.patch,
            by_id[runner].candidate.patch,
            f"{columns[0].roles[0]} {first}",
            f"runner-up {runner}",
        )
    return why


def _decided_line(selection: Selection | None) -> str:
    """The line of the criterion that separated the pick: the one ``decided_by`` names,
    also inside a tie-break's note ("prior: ... (locality 1.00 vs 0.50 after ...)")."""
    text = selection.decided_by if selection else ""
    for part in (text.partition("(")[2].removesuffix(")"), text):
        found = _DECIDED.match(part)
        if found and found["name"] in _LINE_OF:
            return _LINE_OF[found["name"]]
    return ""


def _sentence(selection: Selection | None, first: str, runner: str | None, picked: bool) -> str:
    if selection is None:
        return "No selection recorded: the candidates in the order of the pool table."
    name = selection.selector or "the selector"
    if not picked:
        return f"{name} abstained ({selection.rationale}); the first of its ranking is shown."
    if runner is None:
        return f"{name} picked {first}, the only candidate."
    if selection.tied:
        others = ", ".join(selection.tied[:4]) + ("…" if len(selection.tied) > 4 else "")
        how = selection.decided_by or "a tie-break"
        return (
            f"A tie: {name}'s evidence does not tell {first} from {others}; "
            f"the tie-break ({how}) picked {first}."
        )
    found = _DECIDED.match(selection.decided_by)
    if found:
        even = f", after ties on {found['even']}" if found["even"] else ""
        return (
            f"{name} ranked {first} above the runner-up {runner} on {found['name']} "
            f"({found['a']} vs {found['b']}){even}."
        )
    return f"{name} ranked {first} above the runner-up {runner}."


def _shown(line: Line) -> bool:
    return any(cell not in ("", "–") for cell in line.cells)


def _lines(columns: list[CandidateRow], pool: list[CandidateRow]) -> list[Line]:
    total_votes = sum(r.votes for r in pool) or 1
    return [
        Line("P(resolved)", [_prob(r.probability) for r in columns]),
        Line("votes", [f"{r.votes} of {total_votes}" for r in columns]),
        Line("static checks", [_static(r) for r in columns]),
        Line("harvested tests", [_harvested(r) for r in columns]),
        Line("reproduction tests", [_verdict_headline(r, REPRO) for r in columns]),
        Line("existing tests broken", [_broken(r) for r in columns]),
        Line("behaviour", [_behaviour(r) for r in columns]),
        Line("model scores", [_models(r) for r in columns]),
        Line("execution score", [_score(r.execution_score) for r in columns]),
        Line("locality and size", [_locality(r) for r in columns]),
        Line("cost", [_cost(r) for r in columns]),
        Line("graded truth", [r.truth.summary for r in columns]),
    ]


def _prob(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _verdict(row: CandidateRow, name: str) -> Any:
    return row.candidate.verdicts.get(name)


def _verdict_headline(row: CandidateRow, name: str) -> str:
    found = next((e for e in row.evidence if e.verifier == name), None)
    return found.headline if found else "–"


def _static(row: CandidateRow) -> str:
    verdict = _verdict(row, STATIC)
    if verdict is None:
        return "–"
    if verdict.infra_error:
        return f"no evidence: {verdict.infra_error}"
    return static_finding(verdict.details) or f"score {verdict.score:.2f}"


def _harvested(row: CandidateRow) -> str:
    """Which of the other candidates' harvested tests it passes and fails."""
    verdict = _verdict(row, HARVEST)
    if verdict is None:
        return "–"
    cells = verdict.details.get("cells")
    tests = verdict.details.get("tests")
    if not isinstance(cells, dict) or not cells:
        return f"no evidence: {verdict.infra_error}" if verdict.infra_error else "–"
    tests = tests if isinstance(tests, dict) else {}
    passed, failed, errors, own = [], [], 0, 0
    for key, value in cells.items():
        test_id, _, unit = str(key).partition(":")
        info = tests.get(test_id) if isinstance(tests.get(test_id), dict) else {}
        if row.candidate.id in (info.get("from") or []):
            own += 1
            continue
        name = unit.rsplit("::", 1)[-1] if unit and unit != "<file>" else str(info.get("path"))
        if value is True:
            passed.append(name)
        elif value is False:
            failed.append(name)
        else:
            errors += 1
    judged = len(passed) + len(failed)
    parts = [f"passes {len(passed)} of {judged} from others" if judged else "none from others"]
    if failed:
        parts.append("fails " + ", ".join(failed[:4]) + (" …" if len(failed) > 4 else ""))
    if errors:
        parts.append(f"{errors} could not run")
    if own:
        parts.append(f"{own} of its own (not counted)")
    return "; ".join(parts)


def _broken(row: CandidateRow) -> str:
    verdict = _verdict(row, REGRESSION)
    if verdict is None:
        return "–"
    if verdict.infra_error:
        return f"no evidence: {verdict.infra_error}"
    broken = verdict.details.get("broken")
    base = verdict.details.get("base_passing")
    of = f" of {base}" if isinstance(base, int) else ""
    if not isinstance(broken, list) or not broken:
        return f"none{of}"
    names = ", ".join(str(t).rsplit("::", 1)[-1] for t in broken[:4])
    return f"{len(broken)}{of}: {names}" + (" …" if len(broken) > 4 else "")


def _behaviour(row: CandidateRow) -> str:
    verdict = _verdict(row, BEHAVIOUR)
    if verdict is None or verdict.infra_error:
        return "–"
    size = verdict.details.get("class_size")
    classes = verdict.details.get("classes")
    share = f"{verdict.score:.0%} of the votes behave alike"
    return f"{share} (class of {size}, {classes} classes)" if size and classes else share


def _models(row: CandidateRow) -> str:
    parts = []
    for name in MODEL_VERIFIERS:
        verdict = _verdict(row, name)
        if verdict is not None and not verdict.infra_error:
            parts.append(f"{name} {verdict.score:.2f}")
    return ", ".join(parts) or "–"


def _locality(row: CandidateRow) -> str:
    if _verdict(row, STATIC) is None:
        return "–"
    locality = pool_detail(row.candidate, "locality", 0.0)
    lines = pool_detail(row.candidate, "lines", 0.0)
    ratio = pool_detail(row.candidate, "size_ratio", 1.0)
    return f"locality {locality:.2f}; {lines:.0f} lines ({ratio:.1f}× the pool's median)"


def _cost(row: CandidateRow) -> str:
    agent, verify = row.cost.get("agent") or {}, row.cost.get("verifiers") or {}
    if not agent and not verify:
        return "–"
    return f"agent {cost_text(agent)}; verifiers {cost_text(verify)}"


def side_by_side(left: str, right: str, left_title: str, right_title: str) -> Markup:
    """The two patches in two columns, lines that differ marked (``difflib.HtmlDiff``,
    which escapes the text; three lines of context around each difference)."""
    table = difflib.HtmlDiff(tabsize=4, wrapcolumn=72).make_table(
        left.splitlines(),
        right.splitlines(),
        str(escape(left_title)),
        str(escape(right_title)),
        context=True,
        numlines=3,
    )
    return Markup(table)  # noqa: S704 - HtmlDiff escaped every line of both patches
