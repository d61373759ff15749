"""Candidates: distinct patches (by normalized key) and who produced them.

Our own trajectories and other systems' ``predictions.jsonl`` rows both become
candidates; a patch produced by several of them is one candidate with several producers,
which is what majority voting counts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from swescale.patches import parse_patch, patch_key
from swescale.types import Candidate

log = logging.getLogger(__name__)

CANDIDATE_ID_LENGTH = 12


def candidate_id(key: str) -> str:
    """Short, stable id of a normalized patch: the same fix gets the same id in any run."""
    return key[:CANDIDATE_ID_LENGTH]


def votes(candidate: Candidate) -> int:
    """How many producers (trajectories and foreign systems) arrived at this patch."""
    return len(candidate.trajectory_ids) + len(candidate.sources)


def candidates_from(
    task_id: str,
    patches_by_traj: Mapping[str, str],
    foreign: Mapping[str, str] | None = None,
    notes: Mapping[str, Sequence[str]] | None = None,
) -> list[Candidate]:
    """Deduplicate patches by normalized key.

    ``patches_by_traj`` maps trajectory id -> patch; ``foreign`` maps a source name (another
    system's ``model_name_or_path``) -> patch. Empty patches and patches with no real
    change (whitespace or comments only) make no candidate. The representative text of a
    candidate is the first producer's patch in sorted order that parses without warnings
    (miscounted hunks, stray text), so results are deterministic. ``notes`` maps a
    producer (trajectory id or source) to what its patch lacks (bytes it could not carry
    exactly); they go to the candidate's ``notes``.
    Ordered by votes (most first), then id.
    """
    by_key: dict[str, Candidate] = {}
    producers: list[tuple[str, str, str]] = [
        ("trajectory", name, patch) for name, patch in sorted(patches_by_traj.items())
    ]
    producers += [("source", name, patch) for name, patch in sorted((foreign or {}).items())]
    for kind, name, patch in producers:
        if not isinstance(patch, str):
            log.warning("%s: %s %s has a non-text patch; skipped", task_id, kind, name)
            continue
        key = patch_key(patch)
        if not key:
            continue
        cand = by_key.get(key)
        if cand is None:
            cand = Candidate(id=candidate_id(key), task_id=task_id, patch=patch)
            by_key[key] = cand
        elif parse_patch(cand.patch).warnings and not parse_patch(patch).warnings:
            cand.patch = patch  # the same fix written cleanly applies more reliably
        (cand.trajectory_ids if kind == "trajectory" else cand.sources).append(name)
        for note in (notes or {}).get(name, ()):
            if note not in cand.notes:
                cand.notes.append(note)
    return sorted(by_key.values(), key=lambda c: (-votes(c), c.id))


# ---------------------------------------------------------------------- foreign predictions


@dataclass
class ForeignImport:
    """Patches read from other systems' prediction files, and what could not be used."""

    # task id -> source name -> patch
    patches: dict[str, dict[str, str]] = field(default_factory=dict)
    unknown_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def for_task(self, task_id: str) -> dict[str, str]:
        return dict(self.patches.get(task_id, {}))


def read_foreign_predictions(
    paths: Iterable[str | Path],
    known_task_ids: Iterable[str] | None = None,
) -> ForeignImport:
    """Read SWE-bench ``predictions.jsonl`` files of other systems.

    Rows for ids outside ``known_task_ids`` are reported in ``unknown_ids``, not fatal;
    unusable rows are reported in ``errors``. The source name is the row's
    ``model_name_or_path``, else the file's stem; further rows of the same source for the
    same task (a file may carry several candidates) become ``<source>#2``, ``#3``...
    """
    from swescale.swebench.predictions import read_predictions

    known = set(known_task_ids) if known_task_ids is not None else None
    result = ForeignImport()
    unknown: set[str] = set()
    for path in paths:
        path = Path(path)
        predictions, errors = read_predictions(path)
        result.errors.extend(errors)
        for pred in predictions:
            if known is not None and pred.instance_id not in known:
                unknown.add(pred.instance_id)
                continue
            base = pred.model_name_or_path or path.stem
            per_task = result.patches.setdefault(pred.instance_id, {})
            source, n = base, 1
            while source in per_task:
                n += 1
                source = f"{base}#{n}"
            per_task[source] = pred.model_patch or ""
    result.unknown_ids = sorted(unknown)
    return result


def merge_foreign(candidates: list[Candidate], foreign: Mapping[str, str]) -> list[Candidate]:
    """Add other systems' patches (source -> patch) to existing candidates: a patch equal
    (normalized) to a candidate adds a source to it and keeps its verdicts; a new one
    becomes a new candidate. Returns a new list; the inputs are not changed."""
    merged = [c.model_copy(deep=True) for c in candidates]
    # Matched by normalized patch, not by id: records written by other tools may use
    # ids of their own.
    by_key = {patch_key(c.patch) or c.id: c for c in merged}
    task_id = merged[0].task_id if merged else ""
    for source, patch in sorted(foreign.items()):
        key = patch_key(patch) if isinstance(patch, str) else ""
        if not key:
            continue
        if key not in by_key:
            by_key[key] = Candidate(id=candidate_id(key), task_id=task_id, patch=patch)
            merged.append(by_key[key])
        if source not in by_key[key].sources:
            by_key[key].sources.append(source)
    return sorted(merged, key=lambda c: (-votes(c), c.id))
