"""What the bot says on GitHub: the pull request for a selected patch, or a comment when it
proposes nothing. Pure functions over the run's record; the bodies are Markdown."""

from __future__ import annotations

from typing import Any

from swescale.patches import parse_patch
from swescale.types import Candidate, Cost, Selection, Verdict

MARKER = "<!-- swescale -->"


def commit_title(issue_number: int | None, title: str, limit: int = 72) -> str:
    """``Fix #7: <title>`` (``Fix: <title>`` for an issue without a number, 0 or None),
    the title cut to keep the first line short."""
    head = f"Fix #{issue_number}: " if issue_number else "Fix: "
    title = " ".join(title.split())
    room = max(limit - len(head), 10)
    return head + (title if len(title) <= room else title[: room - 1].rstrip() + "…")


def format_cost(cost: Cost) -> str:
    parts = [f"{cost.tokens_in + cost.tokens_out:,} tokens"]
    if cost.dollars:
        parts.append(f"${cost.dollars:.2f}")
    if cost.model_seconds:
        parts.append(f"{cost.model_seconds:.0f} s model")
    parts.append(f"{cost.sandbox_seconds:.0f} s sandbox")
    return ", ".join(parts)


def _verdict_line(name: str, verdict: Verdict) -> str:
    if verdict.infra_error:
        return f"- **{name}**: no evidence ({verdict.infra_error})"
    outcome = {True: "passed", False: "failed", None: "scored"}[verdict.passed]
    line = f"- **{name}**: {outcome}, score {verdict.score:.2f}"
    details = verdict.details or {}
    tests = details.get("tests")
    if isinstance(tests, list) and tests:
        line += f"; {len(tests)} test file(s) run"
    broken = details.get("broken")
    if isinstance(broken, list) and broken:
        shown = ", ".join(f"`{t}`" for t in broken[:5])
        line += f"; broke {shown}" + (" …" if len(broken) > 5 else "")
    return line


def evidence_summary(candidate: Candidate | None) -> str:
    """One line per verifier that looked at the candidate."""
    if candidate is None or not candidate.verdicts:
        return "- no verifier evidence recorded"
    return "\n".join(_verdict_line(n, v) for n, v in sorted(candidate.verdicts.items()))


def files_summary(patch: str) -> str:
    parsed = parse_patch(patch)
    lines = []
    for file in parsed.files:
        added = sum(1 for h in file.hunks for line in h.lines if line.startswith("+"))
        removed = sum(1 for h in file.hunks for line in h.lines if line.startswith("-"))
        lines.append(f"- `{file.path}` ({file.status}, +{added} -{removed})")
    return "\n".join(lines) or "- (no files)"


def _run_facts(
    candidates: list[Candidate], trajectories: int, cost: Cost, run_id: str
) -> list[str]:
    return [
        f"- trajectories: {trajectories}",
        f"- distinct candidate patches: {len(candidates)}",
        f"- cost: {format_cost(cost)}",
        f"- run: `{run_id}`",
    ]


def pull_request_payload(
    *,
    issue_number: int,
    issue_title: str,
    head: str,
    base: str,
    selection: Selection,
    chosen: Candidate,
    candidates: list[Candidate],
    trajectories: int,
    cost: Cost,
    run_id: str,
    draft: bool = False,
) -> dict[str, Any]:
    """The body of ``POST /repos/{owner}/{repo}/pulls``."""
    votes = len(chosen.trajectory_ids)
    flagged = (
        "\n> Flagged: the selector was not confident in this patch.\n" if selection.flagged else ""
    )
    body = "\n".join(
        [
            MARKER,
            f"Proposed fix{f' for #{issue_number}' if issue_number else ''}, chosen among "
            "candidate patches written and checked in sandboxes.",
            flagged,
            "### Why this patch",
            f"Selector `{selection.selector or 'unknown'}`, confidence "
            f"{selection.confidence:.2f}, produced by {votes} of {trajectories} trajectories.",
            "",
            selection.rationale.strip() or "(no rationale recorded)",
            "",
            "### Verifier evidence",
            evidence_summary(chosen),
            "",
            "### Files changed",
            files_summary(chosen.patch),
            "",
            "### Run",
            *_run_facts(candidates, trajectories, cost, run_id),
            "",
            "Please review before merging.",
            "",
            *([f"Closes #{issue_number}", ""] if issue_number else []),
        ]
    )
    return {
        "title": commit_title(issue_number, issue_title),
        "head": head,
        "base": base,
        "body": body,
        "draft": draft,
        "maintainer_can_modify": True,
    }


def abstention_comment(
    *,
    issue_number: int,
    reasons: list[str],
    selection: Selection | None,
    candidates: list[Candidate],
    trajectories: int,
    cost: Cost,
    run_id: str,
    failed: bool = False,
) -> dict[str, Any]:
    """The body of ``POST /repos/{owner}/{repo}/issues/{n}/comments`` when no pull request
    is opened: why, and what was tried. ``failed``: the run could not work (model or
    sandbox errors, a failed install), which says nothing about the issue, so the comment
    asks the maintainers to look at the bot rather than for more issue text."""
    why = "\n".join(f"- {r}" for r in reasons) or "- no reason recorded"
    lines = [
        MARKER,
        f"The run for #{issue_number} failed; no fix is proposed."
        if failed
        else f"No fix is proposed for #{issue_number}.",
        "",
        "### Why",
        why,
    ]
    if selection is not None and selection.rationale.strip():
        lines += ["", "### Selection", f"Selector `{selection.selector}`: {selection.rationale}"]
    advice = (
        "This is a failure of the bot's own set-up (its model, its sandboxes or the "
        "repository's install commands), not of the issue text; a maintainer should look "
        "at the run's log, then comment `/swescale` to try again."
        if failed
        else "More detail in the issue text (steps to reproduce, expected behaviour) helps; "
        "comment `/swescale` to try again."
    )
    lines += [
        "",
        "### What was tried",
        *_run_facts(candidates, trajectories, cost, run_id),
        "",
        advice,
        "",
    ]
    return {"body": "\n".join(lines)}


def refusal_comment(reason: str, command: str = "/swescale") -> dict[str, Any]:
    """The answer to a command the bot refused (bad overrides, not allowed)."""
    return {"body": f"{MARKER}\nThe `{command}` command was not run: {reason}\n"}
