"""Exploration: N parallel trajectories per task, R serial rounds, branching, early stop.

Per task: round r plans ``n_parallel`` trajectories with deterministic ids, seeds,
temperatures and prompt variants. Each one is *reused* when its record is finished (it has
a footer), *resumed* from its last recorded step when the record is unfinished, or *run*
from scratch (or branched from an archived trajectory) otherwise. Rounds after the first
get feedback on the best patches so far. Concurrency is bounded by two run-wide semaphores:
sandboxes (one per running trajectory) and model requests.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from swescale.config import RunConfig
from swescale.record.run import RunDir, trajectory_id
from swescale.scaling.branch import choose_branch, copy_states, parent_blobs, state_blob
from swescale.scaling.feedback import build_feedback
from swescale.scaling.ledger import BudgetLedger
from swescale.scaling.metered import MeteredModel, MeteredSandbox, RunInterrupted
from swescale.scaling.progress import NullProgress, ProgressSink
from swescale.scaling.trajectories import RecordedTrajectory, read_recorded
from swescale.types import Candidate, Task

log = logging.getLogger(__name__)

# Trajectory outcome statuses.
RAN = "ran"  # ran (or branched) from scratch in this session
RESUMED = "resumed"  # continued from its last recorded step
REUSED = "reused"  # finished in an earlier session; nothing to do
SKIPPED = "skipped"  # not run: early stop or budget
FAILED = "failed"  # the trajectory could not run (sandbox, restore, agent crash)


@dataclass(frozen=True)
class TrajectorySpec:
    """Everything that makes one planned trajectory differ from its siblings."""

    task_id: str
    traj_id: str
    round: int
    index: int
    seed: int
    temperature: float | None
    prompt_variant: str | None


@dataclass
class TrajectoryOutcome:
    spec: TrajectorySpec
    status: str
    exit_status: str = ""
    patch: str = ""
    steps: int = 0
    reason: str = ""
    patch_notes: list[str] = field(default_factory=list)
    parent: tuple[str, int] | None = None

    @property
    def finished(self) -> bool:
        return self.status in (RAN, RESUMED, REUSED)


@dataclass
class TaskExploration:
    task_id: str
    outcomes: list[TrajectoryOutcome] = field(default_factory=list)
    stop_reason: str = ""

    def patches(self) -> dict[str, str]:
        """Trajectory id -> patch, for every finished trajectory (empty patches included)."""
        return {o.spec.traj_id: o.patch for o in self.outcomes if o.finished}

    def patch_notes(self) -> dict[str, list[str]]:
        """Trajectory id -> why its patch is not exact, for those that are not."""
        return {
            o.spec.traj_id: o.patch_notes for o in self.outcomes if o.finished and o.patch_notes
        }


def derive_seed(base: int, task_id: str, round_index: int, index: int) -> int:
    """A stable 31-bit seed per (run seed, task, round, index): Python's hash() is salted
    per process, so it would give a resumed run different seeds."""
    text = f"{base}:{task_id}:{round_index}:{index}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "big") & 0x7FFFFFFF


def plan_round(task_id: str, cfg: RunConfig, round_index: int) -> list[TrajectorySpec]:
    """The trajectories of one round, diversified by seed, temperature and prompt variant."""
    scaling = cfg.scaling
    temperatures = scaling.temperatures
    variants = scaling.prompt_variants or cfg.agent.prompt_variants
    specs = []
    for index in range(scaling.n_parallel):
        specs.append(
            TrajectorySpec(
                task_id=task_id,
                traj_id=trajectory_id(task_id, round_index, index),
                round=round_index,
                index=index,
                seed=derive_seed(scaling.seed, task_id, round_index, index),
                temperature=temperatures[index % len(temperatures)] if temperatures else None,
                prompt_variant=variants[index % len(variants)] if variants else None,
            )
        )
    return specs


def agreement(task_id: str, patches: dict[str, str]) -> int:
    """How many trajectories share the most common normalized, non-empty patch."""
    from swescale.selection.candidates import candidates_from

    cands = candidates_from(task_id, patches)
    return max((len(c.trajectory_ids) for c in cands), default=0)


@dataclass
class ExploreEnv:
    """What exploration needs from the run around it (shared by all tasks)."""

    cfg: RunConfig
    rundir: RunDir
    ledger: BudgetLedger
    # The model a trajectory talks to (usually one shared client); wrapped per trajectory.
    model_for: Callable[[Task, TrajectorySpec], Any]
    open_sandbox: Callable[[Task, str, str], Any]  # (task, image, traj_id) -> Sandbox
    sandbox_slots: threading.Semaphore
    request_slots: threading.Semaphore
    stop: threading.Event = field(default_factory=threading.Event)
    progress: ProgressSink = field(default_factory=NullProgress)
    # Annotates candidates with verdicts in place (feedback between rounds); optional.
    verify: Callable[[Task, list[Candidate]], None] | None = None
    image_digest: str = ""


class _TaskState:
    """Shared by the trajectories of one task while it explores."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.lock = threading.Lock()
        self.stop_reason = ""
        self.patches: dict[str, str] = {}


def explore_task(env: ExploreEnv, task: Task, image: Any) -> TaskExploration:
    """Run (or finish, or reuse) every planned trajectory of a task."""
    cfg = env.cfg
    state = _TaskState(task)
    result = TaskExploration(task.id)
    for round_index in range(cfg.scaling.rounds):
        specs = plan_round(task.id, cfg, round_index)
        feedback = _round_feedback(env, task, result, round_index) if round_index else ""
        env.progress.trajectories_planned(task.id, len(specs))
        with ThreadPoolExecutor(
            max_workers=len(specs), thread_name_prefix=f"traj-{task.id[:20]}"
        ) as pool:
            futures = [pool.submit(_run_one, env, state, spec, image, feedback) for spec in specs]
            outcomes = [f.result() for f in futures]
        result.outcomes.extend(outcomes)
        if env.stop.is_set():
            raise RunInterrupted("run stopping")
    result.stop_reason = state.stop_reason
    return result


def _round_feedback(env: ExploreEnv, task: Task, so_far: TaskExploration, round_index: int) -> str:
    """The feedback text of a round, computed once and kept in the run directory so a
    resumed round prompts exactly as the killed one did."""
    path = env.rundir.task_dir(task.id) / "feedback" / f"round-{round_index}.md"
    if path.exists():
        return path.read_text()
    from swescale.selection.candidates import candidates_from

    cands = candidates_from(task.id, so_far.patches())
    if cands and env.verify is not None and env.cfg.scaling.feedback_verify:
        try:
            env.verify(task, cands)
        except Exception as exc:  # noqa: BLE001 - feedback without verdicts is still feedback
            log.warning("%s: verifying for feedback failed: %s", task.id, exc)
    text = build_feedback(
        cands, env.cfg.scaling.feedback_top_k, env.cfg.scaling.feedback_patch_chars
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def _should_skip(env: ExploreEnv, state: _TaskState) -> str:
    if env.stop.is_set():
        return "run stopping"
    if state.stop_reason:
        return state.stop_reason
    return env.ledger.exceeded(state.task.id) or ""


def _run_one(
    env: ExploreEnv, state: _TaskState, spec: TrajectorySpec, image: Any, feedback: str
) -> TrajectoryOutcome:
    path = env.rundir.trajectory_path(spec.task_id, spec.traj_id)
    recorded = read_recorded(path)
    if recorded is not None and recorded.finished:
        outcome = _outcome_from_record(spec, recorded, REUSED)
        _note_finished(env, state, outcome)
        return outcome
    if reason := _should_skip(env, state):
        env.progress.trajectory_skipped(spec.task_id, spec.traj_id, reason)
        return TrajectoryOutcome(spec, SKIPPED, reason=reason)
    with env.sandbox_slots:
        if reason := _should_skip(env, state):
            env.progress.trajectory_skipped(spec.task_id, spec.traj_id, reason)
            return TrajectoryOutcome(spec, SKIPPED, reason=reason)
        env.progress.trajectory_started(spec.task_id, spec.traj_id)
        try:
            outcome = _run_in_sandbox(env, state, spec, image, feedback, recorded)
        except RunInterrupted:
            raise
        except Exception as exc:  # noqa: BLE001 - one trajectory failing never stops the task
            reason = f"{type(exc).__name__}: {exc}"
            log.warning("%s: trajectory %s failed: %s", spec.task_id, spec.traj_id, reason)
            env.rundir.record_failure(spec.task_id, "trajectory", reason, trajectory=spec.traj_id)
            outcome = TrajectoryOutcome(spec, FAILED, reason=reason)
    _note_finished(env, state, outcome)
    return outcome


def _note_finished(env: ExploreEnv, state: _TaskState, outcome: TrajectoryOutcome) -> None:
    env.progress.trajectory_finished(
        outcome.spec.task_id, outcome.spec.traj_id, outcome.status, outcome.exit_status
    )
    if not outcome.finished:
        return
    need = env.cfg.scaling.early_stop_agree
    with state.lock:
        state.patches[outcome.spec.traj_id] = outcome.patch
        if need and not state.stop_reason and agreement(state.task.id, state.patches) >= need:
            state.stop_reason = f"early stop: {need} trajectories agree on a patch"


def _outcome_from_record(
    spec: TrajectorySpec, recorded: RecordedTrajectory, status: str
) -> TrajectoryOutcome:
    footer = recorded.footer or {}
    return TrajectoryOutcome(
        spec,
        status,
        exit_status=str(footer.get("exit_status", "")),
        patch=str(footer.get("patch") or ""),
        patch_notes=[str(n) for n in footer.get("patch_notes") or []],
        steps=len(recorded.steps),
        parent=recorded.parent,
    )


def _header(
    env: ExploreEnv, spec: TrajectorySpec, image: Any, parent: tuple[str, int] | None, feedback: str
) -> dict[str, Any]:
    cfg = env.cfg
    return {
        "trajectory_id": spec.traj_id,
        "task_id": spec.task_id,
        "round": spec.round,
        "index": spec.index,
        "seed": spec.seed,
        "temperature": spec.temperature if spec.temperature is not None else cfg.model.temperature,
        "prompt_variant": spec.prompt_variant,
        "parent": list(parent) if parent else None,
        "model": cfg.model.name,
        "model_kind": cfg.model.kind,
        "config_hash": cfg.digest(),
        "run_id": env.rundir.run_id,
        "image": str(getattr(image, "tag", image)),
        "image_digest": env.image_digest,
        "feedback": bool(feedback),
    }


def _run_in_sandbox(
    env: ExploreEnv,
    state: _TaskState,
    spec: TrajectorySpec,
    image: Any,
    feedback: str,
    recorded: RecordedTrajectory | None,
) -> TrajectoryOutcome:
    from swescale.agent import run_agent
    from swescale.record import BlobStore, TrajectoryRecorder

    cfg = env.cfg
    path = env.rundir.trajectory_path(spec.task_id, spec.traj_id)
    blobs = BlobStore(env.rundir.blobs_dir(spec.task_id))
    inner_model = env.model_for(state.task, spec)
    model = MeteredModel(
        inner_model,
        ledger=env.ledger,
        task_id=spec.task_id,
        slots=env.request_slots,
        stop=env.stop,
        model_name=cfg.model.name,
        on_completion=lambda cost: env.progress.spent(spec.task_id, cost),
    )
    resume_steps: list[Any] | None = None
    parent: tuple[str, int] | None = None
    status = RAN
    restore_blob: bytes | None = None
    if recorded is not None and recorded.steps:
        restore_blob = state_blob(blobs, recorded.steps)
        if restore_blob is None:
            # The repository state of the last step is gone: resuming would replay the
            # chat on the wrong files. Keep the record aside and start over.
            log.warning("%s: no state to resume %s from; starting it over", spec.task_id, path)
            path.rename(path.with_name(path.name + ".damaged"))
            recorded = None
    if recorded is not None and recorded.steps:
        # An unfinished record: continue after its last step, with the settings it began
        # with (its feedback and parent stay those of the killed run).
        resume_steps = list(recorded.steps)
        parent = recorded.parent
        feedback = recorded.feedback if recorded.feedback is not None else feedback
        status = RESUMED
        header = recorded.header
    else:
        if recorded is not None:
            path.unlink()  # a header without steps: nothing worth resuming
        elif path.exists():
            # Damaged beyond a torn last line: keep it for inspection, start over.
            path.rename(path.with_name(path.name + ".damaged"))
        branch = choose_branch(env.cfg, env.rundir, spec)
        prompt_messages = None
        if branch is not None:
            parent_rec, k = branch
            source = parent_blobs(parent_rec)
            restore_blob = state_blob(source, parent_rec.steps[: k + 1])
            if restore_blob is not None:
                parent = (parent_rec.trajectory_id, k)
                resume_steps = list(parent_rec.steps[: k + 1])
                copy_states(source, blobs, resume_steps)
                # Another agent's trajectory goes on from its own recorded chat.
                prompt_messages = parent_rec.header.get("prompt_messages")
        header = _header(env, spec, image, parent, feedback)
        if prompt_messages:
            header["prompt_messages"] = prompt_messages
        header["feedback_text"] = feedback
        # How the model's actions are constrained (detected once per endpoint).
        header["decoding"] = getattr(inner_model, "decoding", None)
    # The agent asks step i with seed + i, so a resumed or branched trajectory asks for
    # step i exactly as the original did.
    agent_cfg = cfg.agent.model_copy(update={"seed": spec.seed})
    if spec.temperature is not None:
        agent_cfg = agent_cfg.model_copy(update={"temperature": spec.temperature})
    opened_at = time.monotonic()
    raw = env.open_sandbox(state.task, image, spec.traj_id)
    metered = MeteredSandbox(
        raw, ledger=env.ledger, task_id=spec.task_id, stop=env.stop, opened_at=opened_at
    )
    with metered as sandbox:
        if resume_steps and restore_blob is not None:
            sandbox.restore(restore_blob)
        with TrajectoryRecorder(path, header) as recorder:
            result = run_agent(
                state.task,
                sandbox,
                model,
                agent_cfg,
                recorder=recorder,
                blob_store=blobs,
                resume_steps=resume_steps,
                feedback=feedback,
                prompt_variant=spec.prompt_variant,
                budget=_BudgetCheck(env, spec.task_id),
                tool_mode=cfg.model.tool_mode,
                prompt_messages=header.get("prompt_messages"),
            )
    return TrajectoryOutcome(
        spec,
        status,
        exit_status=str(result.exit_status),
        patch=result.patch or "",
        patch_notes=list(result.patch_notes),
        steps=len(result.steps),
        parent=parent,
    )


class _BudgetCheck:
    """Asked by the agent after every model turn: True while the task may go on."""

    def __init__(self, env: ExploreEnv, task_id: str) -> None:
        self.env = env
        self.task_id = task_id
        self.reason: str | None = None

    def __call__(self, completion: Any = None) -> bool:
        if self.env.stop.is_set():
            raise RunInterrupted("run stopping")
        self.reason = self.env.ledger.exceeded(self.task_id)
        return self.reason is None
