"""Batch runs: every task of a dataset through explore -> candidates -> verifiers ->
selection -> predictions, with a resumable record.

One task failing never stops the batch: the failure is recorded with its stage and reason
and the next task starts. Rerunning the same command after ``kill -9`` or Ctrl-C reaps
the killed run's containers, reuses finished trajectories, resumes unfinished ones from
their last recorded step, and skips tasks that already have a result.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from swescale.config import RunConfig
from swescale.pool import run_pool, stop_on_signals
from swescale.record import RunDir
from swescale.record.task import grade_log_path, write_grades
from swescale.scaling.explore import ExploreEnv, TaskExploration, explore_task
from swescale.scaling.ledger import BudgetLedger
from swescale.scaling.metered import RunInterrupted
from swescale.scaling.progress import InFlight, NullProgress, ProgressSink
from swescale.scaling.stages import (
    ImageProvider,
    build_verifiers,
    grade,
    image_digest,
    image_tag,
    labels_known,
    open_task_sandbox,
    run_verifiers,
    select,
    verifier_sandbox_factory,
    write_candidates,
    write_task,
)
from swescale.types import Task

log = logging.getLogger(__name__)

# How often the ledger is saved to run.json while the run goes (seconds).
SAVE_INTERVAL = 2.0


class TaskFailed(RuntimeError):
    """A task that cannot go on; the message is the recorded reason."""


@dataclass
class BatchResult:
    run_dir: RunDir
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def failed(self) -> list[str]:
        return [t for t, r in self.results.items() if r.get("status") == "failed"]


def model_label(cfg: RunConfig) -> str:
    """``model_name_or_path`` of the predictions."""
    return f"swescale__{cfg.model.name}"


def versions() -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in (
        "swescale",
        "swebench",
        "langgraph",
        "openai",
        "docker",
        "llama_cpp_python",
        "vllm",
        "ray",
    ):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


class BatchRunner:
    """Runs tasks of one run directory. Collaborators are injectable: tests and benchmarks
    pass their own ``open_sandbox``, ``image_for`` and ``verifiers``; the CLI uses the real
    ones."""

    def __init__(
        self,
        cfg: RunConfig,
        rundir: RunDir,
        *,
        model: Any = None,
        model_for: Callable[[Task, Any], Any] | None = None,
        client: Any = None,
        ledger: BudgetLedger | None = None,
        progress: ProgressSink | None = None,
        open_sandbox: Callable[[Task, str, str], Any] | None = None,
        image_for: Callable[[Task], str] | None = None,
        verifiers: list[Any] | None = None,
        selector: Any = None,
    ) -> None:
        self.cfg = cfg
        self.rundir = rundir
        self.client = client
        self.model = model
        self._model_for = model_for or self._shared_or_planned_model
        # What is in flight, for the line a stop prints (and the display, forwarded).
        self.in_flight = InFlight(progress or NullProgress())
        self.progress: ProgressSink = self.in_flight
        self.ledger = ledger or BudgetLedger.from_dict(
            rundir.run_json().get("ledger"),
            cfg.budget,
            {cfg.model.name: (cfg.model.price_in, cfg.model.price_out)},
        )
        self.stop = threading.Event()
        self.sandbox_slots = threading.Semaphore(cfg.scaling.max_concurrent_sandboxes)
        self.request_slots = threading.Semaphore(cfg.scaling.max_concurrent_requests)
        self._open_sandbox = open_sandbox or self._docker_sandbox
        self._image_for = image_for or ImageProvider(client, cfg)
        self._verifiers = verifiers
        self._task_verifiers: dict[str, list[Any]] = {}
        self._verifier_lock = threading.Lock()
        self._notes_seen: set[str] = set()
        self._selector = selector

    # -- collaborators ------------------------------------------------------------------

    def _docker_sandbox(self, task: Task, image: Any, traj_id: str) -> Any:
        labels = {"run": self.rundir.run_id, "task": task.id, "trajectory": traj_id}
        return open_task_sandbox(self.client, image, self.cfg, labels)

    def _shared_or_planned_model(self, task: Task, spec: Any) -> Any:
        from swescale.scaling.scripted import PLANS, planned_model

        if self.cfg.model.kind == "scripted" and self.cfg.model.script in PLANS:
            return planned_model(task, self.cfg.model.script, spec.index, self.cfg.model.name)
        if self.model is None:
            raise RuntimeError("no model: pass model= or model_for= to BatchRunner")
        return self.model

    def verifiers(self, task: Task, image: Any) -> list[Any]:
        """The task's verifiers, built once per task (the repro verifier's generated
        tests are reused between rounds and for the final verdicts)."""
        if self._verifiers is not None:
            return self._verifiers
        if not self.cfg.verifiers.enabled:
            return []
        with self._verifier_lock:
            if task.id not in self._task_verifiers:
                built, notes = build_verifiers(
                    self.cfg,
                    task,
                    client=self.client,
                    image=image,
                    model=self.model,
                    ledger=self.ledger,
                    run_id=self.rundir.run_id,
                )
                for note in notes:
                    # A note (e.g. "judge: no shared model") is usually the same for every
                    # task: said once on the terminal, every time in the log file (the
                    # lock is held here).
                    if note not in self._notes_seen:
                        self._notes_seen.add(note)
                        log.warning("verifier unavailable: %s (first seen on %s)", note, task.id)
                    else:
                        log.info("%s: %s", task.id, note)
                self._task_verifiers[task.id] = built
            return self._task_verifiers[task.id]

    def selector(self, task: Task, image: Any) -> Any:
        """The configured selector; ``agent`` runs a selection trajectory in a sandbox
        from the task's image with the run's model."""
        if self._selector is not None:
            return self._selector
        from swescale.selection.selectors import make_selector

        def selection_agent() -> Any:
            from swescale.selection.agent_selector import SelectionAgent
            from swescale.selection.selectors import HybridSelector

            if self.model is None:
                raise ValueError("the 'agent' selector needs a shared model (not a planned script)")
            scfg = self.cfg.selection
            return SelectionAgent(
                verifier_sandbox_factory(self.client, image, self.cfg, task, self.rundir.run_id),
                self.model,
                agent_cfg=self.cfg.agent.model_copy(update={"step_limit": scfg.agent_max_steps}),
                finalists=scfg.agent_finalists,
                pre_selector=HybridSelector(top_k=scfg.top_k),
                tool_mode=self.cfg.model.tool_mode,
            )

        return make_selector(
            self.cfg.selection.selector, self.cfg.selection, agent_factory=selection_agent
        )

    # -- the run ------------------------------------------------------------------------

    def run(self, tasks: list[Task]) -> BatchResult:
        """All tasks, ``max_concurrent_tasks`` at a time. Ctrl-C or SIGTERM stops cleanly:
        no new task starts, in-flight trajectories stop at their next request, the record
        stays resumable, and KeyboardInterrupt is raised once they have. After
        ``max_consecutive_failures`` failed tasks in a row the batch stops and returns
        (``interrupted``)."""
        result = BatchResult(self.rundir)
        prepare = getattr(self._image_for, "prepare", None)
        if callable(prepare):
            prepare(tasks)
        self.rundir.update_run_json(lambda r: r.update(versions=versions(), total_tasks=len(tasks)))
        in_a_row = 0
        signalled: list[str] = []

        def finished(task: Task, outcome: dict[str, Any]) -> None:
            nonlocal in_a_row
            result.results[task.id] = outcome
            in_a_row = in_a_row + 1 if outcome.get("status") == "failed" else 0
            limit = self.cfg.scaling.max_consecutive_failures
            if limit and in_a_row >= limit and not self.stop.is_set():
                log.error("%d tasks failed in a row; stopping the batch", limit)
                self.stop.set()

        def crashed(task: Task, exc: Exception) -> None:
            # run_task records its own failures; this is one it could not.
            reason = f"{type(exc).__name__}: {exc}"
            log.error("task %s: %s", task.id, reason, exc_info=exc)
            finished(
                task, {"task_id": task.id, "status": "failed", "stage": "batch", "reason": reason}
            )

        def stopping(name: str) -> None:
            # Said at once, before anything winds down: what the stop waits for.
            signalled.append(name)
            log.warning(
                "%s: stopping: no new task starts; waiting for %s to stop at their next "
                "step and record it (Ctrl-C again quits at once; a rerun resumes either way)",
                name,
                self.in_flight.describe(),
            )

        with self._saving(), stop_on_signals(self.stop, on_signal=stopping):
            ran = run_pool(
                self.run_task,
                tasks,
                workers=self.cfg.scaling.max_concurrent_tasks,
                stop=self.stop,
                name="task",
                on_finished=finished,
                on_failed=crashed,
            )
        for task in ran.not_run:
            result.results[task.id] = {"task_id": task.id, "status": "interrupted"}
        result.interrupted = ran.stopped
        if signalled:
            log.info("%s: the batch stopped", signalled[0])
            raise KeyboardInterrupt
        return result

    @contextlib.contextmanager
    def _saving(self) -> Iterator[None]:
        """Save the ledger to run.json every few seconds and at the end, so a killed run
        loses at most a few seconds of accounting."""
        done = threading.Event()

        def loop() -> None:
            while not done.wait(SAVE_INTERVAL):
                self.save_ledger()

        saver = threading.Thread(target=loop, name="ledger-saver", daemon=True)
        saver.start()
        try:
            yield
        finally:
            done.set()
            saver.join(timeout=5)
            self.save_ledger()

    def save_ledger(self) -> None:
        ledger = self.ledger.to_dict()
        self.rundir.update_run_json(lambda r: r.update(ledger=ledger, totals=ledger["run"]))

    def run_task(self, task: Task) -> dict[str, Any]:
        """One task end to end; returns its result record. Never raises except on stop."""
        existing = self.rundir.result(task.id)
        if existing is not None and existing.get("status") == "done":
            self.progress.task_finished(task.id, "reused")
            return existing
        if self.stop.is_set():
            return {"task_id": task.id, "status": "interrupted"}
        started = time.monotonic()
        stage = "image"
        self.rundir.set_task_state(task.id, status="running")
        held = contextlib.ExitStack()
        try:
            self.progress.task_stage(task.id, stage)
            image = self._image_for(task)
            if getattr(image, "pulled", False) and self.client is not None:
                # A pulled image stays while the task uses it (the cap on pulled images
                # skips it; one evicted since it was pulled comes back).
                from swescale.sandbox.registry import PulledImages

                pulled = PulledImages.for_config(self.client, self.cfg.images)
                held.enter_context(pulled.hold(image_tag(image)))
            digest = image_digest(self.client, image) if self.client is not None else ""
            self.rundir.update_run_json(
                lambda r: r.setdefault("image_digests", {}).update(
                    {task.id: digest or image_tag(image)}
                )
            )
            write_task(self.rundir, task)
            stage = "explore"
            self.progress.task_stage(task.id, stage)
            exploration = explore_task(self._explore_env(image, digest), task, image)
            failed = [o for o in exploration.outcomes if o.status == "failed"]
            if failed and len(failed) == len(exploration.outcomes):
                # Nothing ran at all (a broken image, a dead engine): that is the task
                # failing, not a task with no candidates.
                raise TaskFailed(f"no trajectory could run: {failed[0].reason}")
            stage = "select"
            self.progress.task_stage(task.id, "verify")
            record = self._select_and_record(task, image, exploration)
        except (RunInterrupted, KeyboardInterrupt):
            self.rundir.set_task_state(task.id, status="interrupted")
            return {"task_id": task.id, "status": "interrupted"}
        except Exception as exc:  # noqa: BLE001 - one task failing never stops the batch
            reason = f"{type(exc).__name__}: {exc}"
            # Recorded in failures.jsonl and stated once in the summary at the end.
            log.info("task %s failed at %s: %s", task.id, stage, reason, exc_info=True)
            self.rundir.record_failure(task.id, stage, reason)
            self.rundir.set_task_state(task.id, status="failed", stage=stage, reason=reason)
            self.progress.task_finished(task.id, "failed")
            return {"task_id": task.id, "status": "failed", "stage": stage, "reason": reason}
        finally:
            held.close()
            self._task_verifiers.pop(task.id, None)
        record["seconds"] = round(time.monotonic() - started, 3)
        record["cost"] = self.ledger.task_cost(task.id).model_dump()
        self.rundir.write_result(task.id, record)
        self.rundir.set_task_state(task.id, status="done", resolved=record.get("resolved"))
        self.progress.task_finished(task.id, "done")
        return record

    def _explore_env(self, image: str, digest: str) -> ExploreEnv:
        return ExploreEnv(
            cfg=self.cfg,
            rundir=self.rundir,
            ledger=self.ledger,
            model_for=self._model_for,
            open_sandbox=self._open_sandbox,
            sandbox_slots=self.sandbox_slots,
            request_slots=self.request_slots,
            stop=self.stop,
            progress=self.progress,
            verify=lambda task, cands: run_verifiers(
                self.verifiers(task, image), task, cands, self.rundir, self.ledger
            ),
            image_digest=digest,
        )

    def _select_and_record(
        self, task: Task, image: str, exploration: TaskExploration
    ) -> dict[str, Any]:
        from swescale.selection.candidates import candidates_from

        candidates = candidates_from(
            task.id, exploration.patches(), notes=exploration.patch_notes()
        )
        notes = (
            run_verifiers(self.verifiers(task, image), task, candidates, self.rundir, self.ledger)
            if candidates
            else []
        )
        self.progress.task_stage(task.id, "select")
        selector = self.selector(task, image)
        selection = select(selector, task, candidates, self.rundir)
        spent = getattr(selector, "last_cost", None)
        if spent is not None:
            self.ledger.charge(task.id, spent, "selection", model=self.cfg.model.name)
        chosen = next((c for c in candidates if c.id == selection.candidate_id), None)
        patch = chosen.patch if chosen is not None else ""
        self.rundir.add_prediction(task.id, model_label(self.cfg), patch)
        resolved: bool | None = None
        grading = self.cfg.scaling.grade
        if grading != "none" and labels_known(task) and self.client is not None:
            self.progress.task_stage(task.id, "grade")
            to_grade = candidates if grading == "all" else [c for c in candidates if c is chosen]
            grades: dict[str, Any] = {}
            for cand in to_grade:
                cand.resolved, report = grade(
                    self.client,
                    task,
                    cand.patch,
                    image,
                    self.cfg,
                    self.ledger,
                    self.rundir.run_id,
                    log_path=grade_log_path(self.rundir.task_dir(task.id), cand.id),
                )
                grades[cand.id] = report
            resolved = chosen.resolved if chosen is not None else False
            write_grades(self.rundir.task_dir(task.id), grades)
        write_candidates(self.rundir, task.id, candidates)
        counts: dict[str, int] = {}
        for outcome in exploration.outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        graded = [c.resolved for c in candidates if c.resolved is not None]
        return {
            "task_id": task.id,
            "status": "done",
            "trajectories": counts,
            "exit_statuses": {
                o.spec.traj_id: o.exit_status for o in exploration.outcomes if o.finished
            },
            "stop_reason": exploration.stop_reason,
            "candidates": len(candidates),
            "selected": selection.candidate_id,
            "selector": selection.selector,
            "confidence": selection.confidence,
            "resolved": resolved,
            "any_resolved": any(graded) if graded else None,
            "verifier_notes": notes,
        }
