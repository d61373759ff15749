"""Tests and reproduction scripts the trajectories wrote along the way.

Agents write reproduction scripts and tests while they work, run them, and are told to
remove them before they submit: the final patch rarely holds them. The record keeps the
repository state after every step, so what a trajectory created is still there to read.
Each such file becomes a harvested test (:mod:`swescale.verifiers.harvest`) whose
sources are the candidate the trajectory produced: the harvest verifier then runs it on
the base commit and on every other candidate.
"""

from __future__ import annotations

from pathlib import Path

from swescale.patches import harvestable_paths, new_file_content
from swescale.record.blobs import read_blob_diff
from swescale.record.layout import TaskFiles
from swescale.record.trajectory import read_trajectory


def created_along_the_way(task_dir: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """trajectory id -> {path: (kind, content)}: the last version of every test file or
    reproduction script a trajectory's recorded states created (``kind``: ``test`` or
    ``script``). States that cannot be read are skipped."""
    files = TaskFiles(task_dir)
    by_state: dict[str, dict[str, tuple[str, str]]] = {}
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for path in files.trajectory_files():
        record = read_trajectory(path)
        found: dict[str, tuple[str, str]] = {}
        for step in record.steps:
            state = step.get("state")
            sha = state.get("sha256") if isinstance(state, dict) else None
            if not isinstance(sha, str):
                continue
            if sha not in by_state:
                diff = read_blob_diff(files.blobs, state) or ""
                by_state[sha] = {
                    p: (kind, text)
                    for p, kind, created in harvestable_paths(diff)
                    if created and (text := new_file_content(diff, p))
                }
            found.update(by_state[sha])
        if found:
            out[record.id] = found
    return out
