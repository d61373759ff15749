"""Starting a batch run from a config: run directory, engine, leftover containers, tasks,
the model (and its server), the live display; then the batch, then the report.

This is what ``swescale run`` and ``swescale demo`` call.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from swescale.config import RunConfig
from swescale.record import RunDir, RunDirError, RunFiles, read_json, safe_name
from swescale.scaling.batch import BatchResult, BatchRunner
from swescale.scaling.progress import LiveProgress, NullProgress
from swescale.scaling.scripted import PLANS

log = logging.getLogger(__name__)


@contextlib.contextmanager
def run_model(cfg: RunConfig) -> Iterator[Any]:
    """The run's shared model, its managed server (llama.cpp, vLLM) started for the run
    and stopped after it; None when each trajectory gets a planned scripted model."""
    if cfg.model.kind == "scripted" and cfg.model.script in PLANS:
        yield None
        return
    from swescale.agent.models import build_model, close_model

    model = build_model(cfg.model)
    try:
        yield model
    finally:
        close_model(model)


def reap_leftovers(client: Any, run_id: str) -> list[str]:
    """At the start of a run: remove the containers and networks of this installation
    whose owner process is provably gone on this host (a killed session of this run or
    of another), and say which. Returns their descriptions. A container whose owner still
    runs (another live session, even of this run) or cannot be proven gone is kept."""
    from swescale.sandbox import reap

    removed = [r.describe() for r in reap(client)]
    if removed:
        log.warning("run %s: removed %d left over: %s", run_id, len(removed), "; ".join(removed))
    return removed


def remove_session_containers(client: Any, run_id: str) -> list[str]:
    """At the end of a session: what this process made for the run and did not remove."""
    from swescale.sandbox import remove_owned

    return remove_owned(client, run_id)


class ExecutorChanged(RunDirError):
    """A finished run asked again with another executor: nothing would run, and the
    command says so instead of silently reusing every result."""


def executor_of(run_json: dict[str, Any]) -> str:
    """The executor of a run directory's last session ("" for a new directory); runs
    recorded before executors were kept are read from their ``cluster`` entry."""
    if run_json.get("executor"):
        return str(run_json["executor"])
    if not run_json.get("sessions"):
        return ""
    return "ray" if run_json.get("cluster") else "local"


def executor_change(run_json: dict[str, Any], executor: str) -> str:
    """What resuming a run directory with ``executor`` means, from its ``run.json``: ""
    when nothing changes, a note when an unfinished run moves to another executor
    (records do not depend on it: finished tasks are kept, the rest run there).
    Raises :class:`ExecutorChanged` when the run is finished: the new executor would
    run nothing."""
    before = executor_of(run_json)
    if not before or before == executor:
        return ""
    states = run_json.get("tasks") or {}
    done = sum(1 for t in states.values() if isinstance(t, dict) and t.get("status") == "done")
    total = int(run_json.get("total_tasks") or len(states))
    run = run_json.get("run_id", "this run")
    if total and done >= total:
        raise ExecutorChanged(
            f"run {run} finished with executor={before} ({done} of {total} tasks done); "
            f"executor={executor} would run nothing, since finished tasks are never redone "
            f"(their records do not depend on the executor). To run it again on {executor}, "
            "give another --run-id"
        )
    return (
        f"run {run} was run with executor={before} ({done} of {total} tasks done); "
        f"resuming it with executor={executor}: finished tasks are kept, the rest run there"
    )


def launch(
    cfg: RunConfig,
    *,
    run_id: str,
    force: bool = False,
    console: Any = None,
    live: bool = True,
) -> BatchResult:
    """Run (or resume) the batch ``cfg`` describes in ``cfg.runs_dir/run_id``, in this
    process or on a Ray cluster (``scaling.executor``)."""
    from swescale.swebench.datasets import load_tasks

    executor = cfg.scaling.executor
    # The tasks first: a dataset that cannot be read leaves no run directory behind.
    tasks = load_tasks(cfg.dataset)
    if not tasks:
        raise ValueError(f"dataset {cfg.dataset.name!r} with these filters has no tasks")
    say = (lambda text: console.print(text, markup=False, highlight=False)) if console else None
    earlier = read_json(RunFiles(Path(cfg.runs_dir) / safe_name(run_id)).run_json, default={})
    earlier = earlier if isinstance(earlier, dict) else {}
    # Another config is RunDir.open's refusal (or --force's new experiment) to make.
    same = earlier.get("config_digest") == cfg.digest()
    note = executor_change(earlier, executor) if same else ""
    rundir = RunDir.open(cfg.runs_dir, run_id, cfg, force=force)
    if note:
        log.warning(note)
    rundir.update_run_json(lambda r: _record_executor(r, executor))
    client = None
    if cfg.scaling.executor == "local":
        from swescale.sandbox import docker_client

        client = docker_client()
        reaped = reap_leftovers(client, rundir.run_id)
        if reaped:
            rundir.update_run_json(lambda r: r.setdefault("reaped", []).extend(reaped))
    resuming = resume_note(rundir, tasks)
    if resuming:
        (say or log.info)(resuming)
    progress = (
        LiveProgress(
            console, len(tasks), show_dollars=bool(cfg.model.price_in or cfg.model.price_out)
        )
        if live
        else NullProgress()
    )
    shown = progress if isinstance(progress, LiveProgress) else contextlib.nullcontext()
    with run_model(cfg) as model, shown:
        if cfg.scaling.executor == "ray":
            from swescale.scaling.cluster import run_on_ray

            # A model server started here serves every node (model.endpoints, when set,
            # name servers the nodes reach themselves).
            endpoints = list(getattr(model, "endpoints", None) or cfg.model.endpoints)
            return run_on_ray(cfg, rundir, tasks, progress=progress, endpoints=endpoints, say=say)
        runner = BatchRunner(cfg, rundir, model=model, client=client, progress=progress)
        try:
            result = runner.run(tasks)
        finally:
            remove_session_containers(client, rundir.run_id)
    return result


def resume_note(rundir: RunDir, tasks: list[Any]) -> str:
    """What a rerun picks up, in one line ("" for a run with nothing recorded yet):
    "resuming: 6 of 10 tasks done (kept), 4 trajectories reused, 2 continue from their
    last recorded step"."""
    from swescale.record.trajectory import read_trajectory

    done = reused = unfinished = 0
    for task in tasks:
        result = rundir.result(task.id)
        if isinstance(result, dict) and result.get("status") == "done":
            done += 1
            continue
        for path in rundir.task_files(task.id).trajectory_files():
            traj = read_trajectory(path)
            if traj.finished:
                reused += 1
            elif traj.steps:
                unfinished += 1
    if not (done or reused or unfinished):
        return ""
    parts = [f"resuming: {done} of {len(tasks)} tasks done (kept)"]
    if reused:
        parts.append(f"{reused} finished trajector{'y' if reused == 1 else 'ies'} reused")
    if unfinished:
        verb = "continues" if unfinished == 1 else "continue"
        parts.append(f"{unfinished} {verb} from the last recorded step")
    if done == len(tasks):
        parts.append("nothing left to run")
    return ", ".join(parts)


def _record_executor(run_json: dict[str, Any], executor: str) -> None:
    run_json["executor"] = executor
    run_json.setdefault("executors", []).append(
        {"session": run_json.get("sessions", 0), "executor": executor}
    )


def run_dir_path(cfg: RunConfig, run_id: str) -> Path:
    return Path(cfg.runs_dir) / run_id
