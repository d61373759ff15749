"""Feedback for round r > 0 (EvoScale-style): the best patches so far and what the
verifiers said about them, as text the agent reads in its prompt.

Pure: candidates in, text out. The ranking is the one a cheap selector would use: the
mean verifier score (when there are verdicts), then how many trajectories agree, then id.
"""

from __future__ import annotations

from swescale.types import Candidate

HEADER = (
    "Earlier attempts at this issue produced the patches below. They may be incomplete or "
    "wrong: read the notes, reuse what is right, fix what is not, and submit your own "
    "complete patch."
)


def _mean_score(cand: Candidate) -> float | None:
    scores = [v.score for v in cand.verdicts.values() if v.infra_error is None]
    return sum(scores) / len(scores) if scores else None


def rank_for_feedback(candidates: list[Candidate]) -> list[Candidate]:
    """Best first: mean verdict score (unscored last), then votes, then id."""

    def key(cand: Candidate) -> tuple[float, int, str]:
        score = _mean_score(cand)
        return (-(score if score is not None else -1.0), -len(cand.trajectory_ids), cand.id)

    return sorted(candidates, key=key)


def _verdict_notes(cand: Candidate, limit: int = 8) -> list[str]:
    notes = []
    for name, verdict in sorted(cand.verdicts.items()):
        if verdict.infra_error:
            notes.append(f"{name}: not judged ({verdict.infra_error})")
            continue
        status = "passed" if verdict.passed else "failed" if verdict.passed is False else "scored"
        line = f"{name}: {status}, score {verdict.score:.2f}"
        failing = verdict.details.get("failing") or verdict.details.get("failed_tests") or []
        if isinstance(failing, list) and failing:
            shown = ", ".join(str(t) for t in failing[:limit])
            more = f" and {len(failing) - limit} more" if len(failing) > limit else ""
            line += f"; failing tests: {shown}{more}"
        note = verdict.details.get("note") or verdict.details.get("rationale")
        if isinstance(note, str) and note.strip():
            line += f"; note: {note.strip()[:300]}"
        notes.append(line)
    return notes


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... ({len(text) - limit} more characters cut)\n"


def build_feedback(candidates: list[Candidate], top_k: int = 2, patch_chars: int = 4000) -> str:
    """The text handed to the agent as ``feedback`` for the next round; "" when there is
    nothing to show (no candidates, or ``top_k`` 0)."""
    best = rank_for_feedback(candidates)[:top_k]
    if not best:
        return ""
    parts = [HEADER]
    for number, cand in enumerate(best, 1):
        votes = len(cand.trajectory_ids)
        parts.append(
            f"\n### Attempt {number} (produced by {votes} trajector{'y' if votes == 1 else 'ies'})"
        )
        notes = _verdict_notes(cand)
        if notes:
            parts.append("Verifier notes:\n" + "\n".join(f"- {n}" for n in notes))
        parts.append("```diff\n" + _cut(cand.patch.rstrip("\n"), patch_chars) + "\n```")
    return "\n".join(parts) + "\n"
