"""Branching (SWE-Replay): a new trajectory may start from step k of an archived one of the
same task. The step is picked by ``swescale.replay.branching.pick_branch_step`` (after the
repository was explored, before the first edit); the repository state after step k comes
from the task's blob store, so the cost of a branch does not grow with k.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from swescale.config import RunConfig
from swescale.record.blobs import BlobStore
from swescale.record.layout import RunFiles, TaskFiles
from swescale.record.run import RunDir
from swescale.scaling.trajectories import RecordedTrajectory, read_recorded

log = logging.getLogger(__name__)


def choose_branch(
    cfg: RunConfig, rundir: RunDir, spec: Any
) -> tuple[RecordedTrajectory, int] | None:
    """With probability ``branch_probability``, an archived trajectory of this task and
    the step to branch at; None for a fresh start. The archive is every finished
    trajectory of the task with at least two steps, in this run and in the runs of
    ``scaling.archive_runs`` (another agent's imported trajectories among them)."""
    probability = cfg.scaling.branch_probability
    if probability <= 0:
        return None
    rng = random.Random(spec.seed)
    if rng.random() >= probability:
        return None
    archive = []
    paths = list(rundir.trajectory_files(spec.task_id))
    for other in cfg.scaling.archive_runs:
        paths += RunFiles(other).task(spec.task_id).trajectory_files()
    for path in paths:
        if path.stem == spec.traj_id:
            continue
        rec = read_recorded(path)
        if (
            rec is not None
            and rec.finished
            and len(rec.steps) >= 2
            and all(s.state for s in rec.steps)
        ):
            archive.append(rec)
    if not archive:
        return None
    parent = rng.choice(archive)
    from swescale.replay.branching import pick_branch_step

    try:
        k = pick_branch_step(parent.steps, rng, cfg.selection.branch)
    except ValueError:  # no usable step in that trajectory: start fresh
        return None
    if not 0 <= k < len(parent.steps):
        return None
    return parent, k


def state_blob(blobs: Any, steps: list[Any]) -> bytes | None:
    """The repository state after the last of ``steps``, or None when it was not recorded
    or its blob is missing or corrupt."""
    state = steps[-1].state if steps else None
    if state is None:
        return None
    try:
        return blobs.get(state.sha256)
    except (KeyError, ValueError) as exc:
        log.warning("state %s unusable: %s", state.sha256[:12], exc)
        return None


def parent_blobs(parent: RecordedTrajectory) -> BlobStore:
    """The blob store of the run an archived trajectory belongs to."""
    return BlobStore(TaskFiles(parent.path.parent.parent).blobs)


def copy_states(source: BlobStore, target: BlobStore, steps: list[Any]) -> None:
    """The states of ``steps`` into ``target`` (a branch from another run keeps every
    state it names in its own run)."""
    for step in steps:
        state = getattr(step, "state", None)
        if state is not None and state.sha256 not in target:
            try:
                target.put(source.get(state.sha256))
            except (KeyError, ValueError) as exc:
                log.warning("state %s not copied: %s", state.sha256[:12], exc)
