"""Replay one of swescale's own trajectory records.

Replay re-executes every recorded action in a fresh sandbox, compares each observation
with the recorded one (after masking what legitimately varies between runs: timings,
memory addresses, temporary names), checks the repository state after each step against
the recorded state hash, and re-derives the patch. The first divergence is reported with
both texts, so a non-reproducible step can be found and fixed.

Where to branch from a trajectory is chosen in :mod:`swescale.replay.branching`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from swescale.patches import patch_key
from swescale.record.layout import TaskFiles
from swescale.replay.compare import mask_volatile
from swescale.types import Observation, Step


class ReplayError(RuntimeError):
    """The trajectory cannot be replayed (unreadable record, no image); says why."""


def normalize_observation(text: str) -> str:
    """Mask what differs between two faithful runs: timings, dates, addresses, tmp names
    (:func:`swescale.replay.compare.mask_volatile`)."""
    return mask_volatile(text).strip()


def observation_text(obs: Observation) -> str:
    return f"exit={obs.exit_code} timed_out={obs.timed_out} error={obs.error}\n{obs.output}"


class Divergence(BaseModel):
    step: int
    action: int
    tool: str
    kind: str  # "observation" | "state" | "infra"
    recorded: str
    replayed: str


class ReplayReport(BaseModel):
    trajectory_id: str
    task_id: str
    steps_total: int
    steps_replayed: int = 0
    actions_replayed: int = 0
    mismatched_steps: list[int] = Field(default_factory=list)
    first_divergence: Divergence | None = None
    # The footer's patch; None when the record has no footer (an unfinished trajectory:
    # still running, killed, or cut off), so there is no patch to compare with.
    recorded_patch: str | None = ""
    replayed_patch: str = ""
    # The record's last line was cut off mid-write and left out of the replay.
    torn: bool = False
    sandbox_seconds: float = 0.0

    @property
    def patch_identical(self) -> bool:
        return self.recorded_patch == self.replayed_patch

    @property
    def patch_equivalent(self) -> bool:
        return patch_key(self.recorded_patch or "") == patch_key(self.replayed_patch)

    @property
    def identical(self) -> bool:
        """Every step matched the record, and so did the patch when one was recorded."""
        patch_ok = self.recorded_patch is None or self.patch_identical
        return self.first_divergence is None and patch_ok

    def summary(self) -> str:
        lines = [
            f"trajectory {self.trajectory_id} ({self.task_id}): replayed "
            f"{self.steps_replayed}/{self.steps_total} steps, {self.actions_replayed} actions",
        ]
        if self.first_divergence is None:
            lines.append("every observation matched the record")
        else:
            d = self.first_divergence
            lines += [
                f"first divergence: step {d.step}, action {d.action} ({d.tool}, {d.kind})",
                "  recorded: " + d.recorded[:400].replace("\n", "\n            "),
                "  replayed: " + d.replayed[:400].replace("\n", "\n            "),
                f"mismatched steps: {self.mismatched_steps}",
            ]
        if self.torn:
            lines.append("the record's last line was cut off mid-write: left out")
        if self.recorded_patch is None:
            lines.append(
                "no recorded patch: the trajectory is unfinished (no footer); "
                f"re-derived patch: {len(self.replayed_patch)} bytes, nothing to compare with"
            )
            return "\n".join(lines)
        if self.patch_identical:
            verdict = "identical"
        elif self.patch_equivalent:
            verdict = "equivalent after normalization"
        else:
            verdict = "DIFFERENT"
        lines.append(f"re-derived patch: {verdict} ({len(self.replayed_patch)} bytes)")
        return "\n".join(lines)


def replay_trajectory(
    path: str | Path,
    make_sandbox: Callable[..., Any],
    agent_cfg: Any = None,
    check_states: bool = True,
) -> ReplayReport:
    """Re-execute the recorded actions of ``path`` in ``make_sandbox(header)``.

    ``make_sandbox`` receives the trajectory header (``image`` names the image), or
    nothing when it takes no argument, and returns a fresh sandbox; it is closed here. A branched trajectory starts from its parent's
    recorded state, so replay first restores the state blob named by the header
    (``start_state``), read from ``<task>/blobs/``.
    """
    from swescale.agent.config import AgentConfig
    from swescale.agent.tools import run_action
    from swescale.record.trajectory import RecordError, load_trajectory
    from swescale.sandbox.base import SandboxError

    try:
        record = load_trajectory(path)
    except RecordError as exc:
        raise ReplayError(str(exc)) from exc
    cfg = agent_cfg or AgentConfig()
    header = record.header
    report = ReplayReport(
        trajectory_id=str(header.get("trajectory_id") or Path(path).stem),
        task_id=str(header.get("task_id") or ""),
        steps_total=len(record.steps),
        recorded_patch=None if record.footer is None else str(record.footer.get("patch") or ""),
        torn=record.torn,
    )
    try:
        sandbox = make_sandbox(header) if _takes_argument(make_sandbox) else make_sandbox()
    except SandboxError as exc:
        raise ReplayError(f"no sandbox for replay: {exc}") from exc
    try:
        _restore_start(sandbox, header, Path(path))
        for step in record.steps:
            _replay_step(sandbox, step, cfg, report, check_states, run_action)
            report.steps_replayed += 1
        report.replayed_patch = sandbox.diff()
    except SandboxError as exc:
        _diverge(report, report.steps_replayed, 0, "-", "infra", "", str(exc))
    finally:
        sandbox.close()
    return report


def _takes_argument(fn: Callable[..., Any]) -> bool:
    """Whether ``make_sandbox`` wants the header (the verifiers' factories take nothing)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params
    )


def _restore_start(sandbox: Any, header: dict[str, Any], path: Path) -> None:
    start = header.get("start_state") or (header.get("parent_state") or {})
    sha = start.get("sha256") if isinstance(start, dict) else start
    if not sha:
        return
    blob = TaskFiles(path.parent.parent).blobs / str(sha)
    if not blob.exists():
        raise ReplayError(f"branched trajectory: start state blob {blob} is missing")
    sandbox.restore(blob.read_bytes())


def _replay_step(
    sandbox: Any,
    step: Step,
    cfg: Any,
    report: ReplayReport,
    check_states: bool,
    run_action: Callable[..., Observation],
) -> None:
    for index, action in enumerate(step.actions):
        replayed = run_action(sandbox, action, cfg)
        report.actions_replayed += 1
        report.sandbox_seconds += replayed.seconds
        if index >= len(step.observations):
            continue
        want = normalize_observation(observation_text(step.observations[index]))
        got = normalize_observation(observation_text(replayed))
        if want != got:
            _diverge(report, step.index, index, action.tool, "observation", want, got)
    if check_states and step.state is not None:
        ref, _ = sandbox.snapshot()
        if ref.sha256 != step.state.sha256:
            _diverge(
                report, step.index, len(step.actions), "-", "state", step.state.sha256, ref.sha256
            )


def _diverge(
    report: ReplayReport, step: int, action: int, tool: str, kind: str, want: str, got: str
) -> None:
    if step not in report.mismatched_steps:
        report.mismatched_steps.append(step)
    if report.first_divergence is None:
        report.first_divergence = Divergence(
            step=step, action=action, tool=tool, kind=kind, recorded=want, replayed=got
        )


def docker_sandbox_factory(image: str | None = None) -> Callable[[dict[str, Any]], Any]:
    """Fresh Docker sandboxes from the header's image (or ``image``), for replay. The
    image's own environment (a venv or conda env on PATH) and working directory are
    kept: sandboxes set their own PATH, and replayed commands must find what the
    recorded ones found."""

    def make(header: dict[str, Any]) -> Any:
        from swescale.sandbox import DockerSandbox, SandboxConfig, docker_client

        name = image or header.get("image")
        if not name:
            raise ReplayError("the trajectory header names no image; pass --image")
        client = docker_client()
        cfg = SandboxConfig()
        try:
            attrs = client.images.get(name).attrs.get("Config") or {}
        except Exception:  # noqa: BLE001 - a missing image is reported by create()
            attrs = {}
        env = dict(cfg.env)
        for item in attrs.get("Env") or []:
            key, _, value = item.partition("=")
            if key in ("PATH", "VIRTUAL_ENV", "CONDA_DEFAULT_ENV", "CONDA_PREFIX"):
                env[key] = value
        workdir = header.get("workdir") or attrs.get("WorkingDir") or cfg.workdir
        cfg = cfg.model_copy(update={"env": env, "workdir": workdir})
        labels = {"purpose": "replay", "task": str(header.get("task_id") or "")}
        return DockerSandbox.create(client, name, cfg, labels=labels)

    return make
