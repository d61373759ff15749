"""Faithful replay of one imported trajectory in a sandbox of its instance.

Every recorded action is run again with the recorded agent's shell semantics
(:mod:`swescale.replay.shells`); each observation is compared with the recorded one
(:mod:`swescale.replay.compare`); the repository state after every step is snapshotted
(so a new trajectory can branch from any step); at the end the patch is derived from the
sandbox and compared with the submitted one. Nothing here raises for what a trajectory
does: a dead sandbox ends the replay of that trajectory with ``error`` set and the steps
left marked ``not_replayed``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from swescale.record.foreign import ImportedTrajectory
from swescale.replay.branching import writes_files
from swescale.replay.compare import (
    Cause,
    Fidelity,
    ObservationPair,
    compare_observation,
    difference_cause,
    differing_lines,
)
from swescale.replay.shells import ActionRunner
from swescale.types import Observation, StateRef

PatchFidelity = Literal[
    "identical", "normalized", "printed", "differs", "no_submission", "not_derived"
]
# Patches that count as reproduced.
REPRODUCED = ("identical", "normalized", "printed")
_EXCERPT = 4000


class ActionFidelity(BaseModel):
    step: int
    action: int
    fidelity: Fidelity
    cause: Cause | None = None
    recorded_exit: int | None = None
    replayed_exit: int | None = None
    seconds: float = 0.0
    recorded_seconds: float = 0.0
    # For a difference: the command and the lines that differ (after masking), cut short.
    command: str = ""
    diff: str = ""


class Divergence(BaseModel):
    """The first action whose replayed observation differs, with both texts."""

    step: int
    action: int
    command: str
    cause: Cause
    recorded: str
    replayed: str


class TrajectoryReplay(BaseModel):
    """What replaying one trajectory showed."""

    trajectory_id: str
    instance_id: str
    source_format: str
    source_path: str
    model: str
    actions: list[ActionFidelity] = Field(default_factory=list)
    step_fidelity: list[Fidelity] = Field(default_factory=list)
    states: list[StateRef | None] = Field(default_factory=list)
    first_divergence: Divergence | None = None
    submitted_patch: str | None = None
    derived_patch: str = ""
    patch_fidelity: PatchFidelity = "not_derived"
    # Files the sandbox changed beyond those of the submission (reproduction scripts,
    # the agent's patch.txt): kept for harvesting, not part of the comparison.
    scratch_paths: list[str] = Field(default_factory=list)
    seconds: float = 0.0
    recorded_seconds: float | None = None
    error: str | None = None

    def counts(self) -> dict[str, int]:
        out = {"identical": 0, "masked": 0, "differs": 0, "not_replayed": 0}
        for fidelity in self.step_fidelity:
            out[fidelity] += 1
        return out


def step_fidelity(values: list[Fidelity]) -> Fidelity:
    """A step is as faithful as its least faithful action (no action: identical)."""
    for worst in ("not_replayed", "differs", "masked"):
        if worst in values:
            return worst  # type: ignore[return-value]
    return "identical"


def replay_imported(
    traj: ImportedTrajectory,
    trajectory_id: str,
    sandbox: Any,
    *,
    on_state: Callable[[int, StateRef, bytes], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> TrajectoryReplay:
    """Replay ``traj`` in ``sandbox`` (opened at the instance's base commit; not closed
    here). ``on_state(step, ref, blob)`` receives the repository state after each step
    (the caller stores the blob). ``stop()`` returning True ends the replay early
    (``error`` says so)."""
    started = time.monotonic()
    report = TrajectoryReplay(
        trajectory_id=trajectory_id,
        instance_id=traj.instance_id,
        source_format=traj.source_format,
        source_path=traj.source_path,
        model=traj.model,
        submitted_patch=traj.submission,
        recorded_seconds=traj.recorded_seconds,
    )
    runner = ActionRunner(sandbox, traj.shell)
    diverged_state = False
    last_output = ""
    for step in traj.steps:
        if report.error is not None or (stop is not None and stop()):
            report.error = report.error or "interrupted"
            report.step_fidelity.append("not_replayed")
            report.states.append(None)
            continue
        values: list[Fidelity] = []
        for index, action in enumerate(step.actions):
            recorded = step.observations[index] if index < len(step.observations) else None
            command = str(action.args.get("command", ""))
            if not runner.replayable(action):
                values.append("not_replayed")
                report.actions.append(
                    ActionFidelity(
                        step=step.index,
                        action=index,
                        fidelity="not_replayed",
                        cause="not_replayable",
                    )
                )
                diverged_state = True
                continue
            replayed = runner.run(action)
            last_output = replayed.output
            if replayed.error and replayed.exit_code is None and not replayed.timed_out:
                report.error = f"step {step.index}: sandbox failed: {replayed.error}"
                values.append("not_replayed")
                break
            entry = _compare(step.index, index, recorded, replayed)
            if entry.fidelity == "differs":
                entry.cause = difference_cause(
                    _pair(recorded, replayed), diverged_state, command=command
                )
                entry.command = command[:500]
                entry.diff = _diff_excerpt(recorded.output if recorded else "", replayed.output)
                if report.first_divergence is None:
                    report.first_divergence = Divergence(
                        step=step.index,
                        action=index,
                        command=command[:_EXCERPT],
                        cause=entry.cause,
                        recorded=_excerpt(recorded.output if recorded else ""),
                        replayed=_excerpt(replayed.output),
                    )
                if writes_files(command) or entry.cause == "timeout":
                    diverged_state = True
            report.actions.append(entry)
            values.append(entry.fidelity)
        report.step_fidelity.append(step_fidelity(values))
        report.states.append(_snapshot(sandbox, step.index, on_state, report))
    if report.error is None:
        _derive_patch(sandbox, report, last_output)
    report.seconds = time.monotonic() - started
    return report


def _pair(recorded: Observation | None, replayed: Observation) -> ObservationPair:
    return ObservationPair(
        recorded_output=recorded.output if recorded else "",
        recorded_exit=recorded.exit_code if recorded else None,
        recorded_timed_out=bool(recorded and recorded.timed_out),
        replayed_output=replayed.output,
        replayed_exit=replayed.exit_code,
        replayed_timed_out=replayed.timed_out,
    )


def _compare(
    step: int, index: int, recorded: Observation | None, replayed: Observation
) -> ActionFidelity:
    pair = _pair(recorded, replayed)
    if recorded is not None and recorded.truncated:
        # Recorded as head and tail around an elision: compare the same parts.
        pair.replayed_output = _elide_like(recorded.output, replayed.output)
    return ActionFidelity(
        step=step,
        action=index,
        fidelity=compare_observation(pair) if recorded is not None else "differs",
        recorded_exit=pair.recorded_exit,
        replayed_exit=pair.replayed_exit,
        seconds=replayed.seconds,
        recorded_seconds=recorded.seconds if recorded else 0.0,
    )


_ELISION = re.compile(r"\n<(\d+|\?) characters elided>\n")


def _elide_like(recorded: str, replayed: str) -> str:
    """``replayed`` cut the way mini-swe-agent 1.x cut long outputs (5,000 characters of
    head and tail), so it compares with a recorded elided output."""
    match = _ELISION.search(recorded)
    if not match:
        return replayed
    head, tail = replayed[:5000], replayed[-5000:]
    return f"{head}\n<{len(replayed) - 10000} characters elided>\n{tail}"


def _diff_excerpt(recorded: str, replayed: str, limit: int = 2000) -> str:
    """The lines that differ after masking, ``-`` recorded and ``+`` replayed."""
    only_recorded, only_replayed = differing_lines(recorded, replayed)
    text = "\n".join([*("- " + x for x in only_recorded), *("+ " + x for x in only_replayed)])
    return text if len(text) <= limit else text[:limit] + "\n[...]"


def _excerpt(text: str) -> str:
    if len(text) <= _EXCERPT:
        return text
    half = _EXCERPT // 2
    return f"{text[:half]}\n[... {len(text) - _EXCERPT} characters ...]\n{text[-half:]}"


def _snapshot(
    sandbox: Any,
    step: int,
    on_state: Callable[[int, StateRef, bytes], None] | None,
    report: TrajectoryReplay,
) -> StateRef | None:
    try:
        ref, blob = sandbox.snapshot()
    except Exception as exc:  # noqa: BLE001 - a state we cannot read ends the replay
        report.error = f"step {step}: snapshot failed: {type(exc).__name__}: {exc}"
        return None
    if on_state is not None:
        on_state(step, ref, blob)
    return ref


_INDEX = re.compile(r"(?m)^index ([0-9a-f]{7})[0-9a-f]*\.\.([0-9a-f]{7})[0-9a-f]*")


def _short_ids(patch: str) -> str:
    """``patch`` with the object names of its ``index`` lines cut to 7 hex digits: how
    many digits git prints depends on the repository's object count and config, not on
    the change (the replay's own diff names them whole)."""
    return _INDEX.sub(r"index \1..\2", patch)


def _derive_patch(sandbox: Any, report: TrajectoryReplay, last_output: str = "") -> None:
    """The patch of the sandbox after the last step, restricted to the submission's
    files, against the submitted one: ``identical``, ``normalized`` (same key),
    ``printed`` (the tree differs, but the submission is what the agent's last command
    printed, ``cat patch.txt`` of a patch it curated by hand, and the replay printed it
    byte for byte), else ``differs``."""
    from swescale.patches import files_of, patch_key, restrict_to_files

    try:
        full = sandbox.diff()
    except Exception as exc:  # noqa: BLE001
        report.error = f"deriving the patch failed: {type(exc).__name__}: {exc}"
        return
    submitted = report.submitted_patch
    if not submitted or not submitted.strip():
        report.derived_patch = full
        report.patch_fidelity = "no_submission"
        return
    wanted = files_of(submitted)
    report.derived_patch = restrict_to_files(full, wanted)
    report.scratch_paths = sorted(files_of(full) - wanted)
    if _short_ids(report.derived_patch) == _short_ids(submitted):
        report.patch_fidelity = "identical"
    elif patch_key(report.derived_patch) == patch_key(submitted):
        report.patch_fidelity = "normalized"
    elif submitted.strip() and submitted.strip() in last_output:
        report.patch_fidelity = "printed"
    else:
        report.patch_fidelity = "differs"
