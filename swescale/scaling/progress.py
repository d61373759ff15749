"""Progress hooks: exploration and the batch report what happens through a small sink, so
the same code runs under a rich live display, in tests (no display), and in benchmarks."""

from __future__ import annotations

from typing import Protocol

from swescale.types import Cost


class ProgressSink(Protocol):
    def trajectories_planned(self, task_id: str, count: int) -> None: ...

    def trajectory_started(self, task_id: str, traj_id: str) -> None: ...

    def trajectory_finished(
        self, task_id: str, traj_id: str, status: str, exit_status: str
    ) -> None: ...

    def trajectory_skipped(self, task_id: str, traj_id: str, reason: str) -> None: ...

    def spent(self, task_id: str, cost: Cost) -> None: ...

    def task_stage(self, task_id: str, stage: str) -> None: ...

    def task_finished(self, task_id: str, status: str) -> None: ...


class NullProgress:
    """Reports nowhere."""

    def trajectories_planned(self, task_id: str, count: int) -> None:
        pass

    def trajectory_started(self, task_id: str, traj_id: str) -> None:
        pass

    def trajectory_finished(
        self, task_id: str, traj_id: str, status: str, exit_status: str
    ) -> None:
        pass

    def trajectory_skipped(self, task_id: str, traj_id: str, reason: str) -> None:
        pass

    def spent(self, task_id: str, cost: Cost) -> None:
        pass

    def task_stage(self, task_id: str, stage: str) -> None:
        pass

    def task_finished(self, task_id: str, status: str) -> None:
        pass


class LiveProgress(NullProgress):
    """A rich live display: tasks done, trajectories done, tokens and cost so far.

    Thread-safe: rich's Progress serializes its own updates; the counters here are
    guarded by a lock.
    """

    def __init__(self, console: object | None, total_tasks: int, show_dollars: bool) -> None:
        import threading

        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._lock = threading.Lock()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
            console=console,  # type: ignore[arg-type]
            transient=False,
        )
        self._tasks = self._progress.add_task("tasks", total=total_tasks, note="")
        self._trajs = self._progress.add_task("trajectories", total=0, note="")
        self._show_dollars = show_dollars
        self._spent = Cost()
        self._running = 0

    def __enter__(self) -> LiveProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def _note(self) -> str:
        s = self._spent
        money = f"${s.dollars:.4f}" if self._show_dollars else f"{s.model_seconds:.0f} model-s"
        return f"{self._running} running · {s.tokens_in + s.tokens_out:,} tokens · {money}"

    def trajectories_planned(self, task_id: str, count: int) -> None:
        with self._lock:
            total = (self._progress.tasks[self._trajs].total or 0) + count
            self._progress.update(self._trajs, total=total)

    def trajectory_started(self, task_id: str, traj_id: str) -> None:
        with self._lock:
            self._running += 1
            self._progress.update(self._trajs, note=self._note())

    def trajectory_finished(
        self, task_id: str, traj_id: str, status: str, exit_status: str
    ) -> None:
        with self._lock:
            if status != "reused":
                self._running = max(self._running - 1, 0)
            self._progress.update(self._trajs, advance=1, note=self._note())

    def trajectory_skipped(self, task_id: str, traj_id: str, reason: str) -> None:
        with self._lock:
            self._progress.update(self._trajs, advance=1, note=self._note())

    def spent(self, task_id: str, cost: Cost) -> None:
        with self._lock:
            self._spent = self._spent + cost
            self._progress.update(self._trajs, note=self._note())

    def task_stage(self, task_id: str, stage: str) -> None:
        with self._lock:
            self._progress.update(self._tasks, note=f"{task_id}: {stage}")

    def task_finished(self, task_id: str, status: str) -> None:
        with self._lock:
            self._progress.update(self._tasks, advance=1, note=f"{task_id}: {status}")


class InFlight:
    """A sink that forwards to another and keeps what is in flight: each running task's
    stage and its running trajectories; :meth:`describe` says what a stop waits for."""

    def __init__(self, sink: ProgressSink) -> None:
        import threading

        self.sink = sink
        self._lock = threading.Lock()
        self.stages: dict[str, str] = {}
        self.running: dict[str, int] = {}

    def trajectories_planned(self, task_id: str, count: int) -> None:
        self.sink.trajectories_planned(task_id, count)

    def trajectory_started(self, task_id: str, traj_id: str) -> None:
        with self._lock:
            self.running[task_id] = self.running.get(task_id, 0) + 1
        self.sink.trajectory_started(task_id, traj_id)

    def trajectory_finished(
        self, task_id: str, traj_id: str, status: str, exit_status: str
    ) -> None:
        if status != "reused":  # a reused trajectory never started
            with self._lock:
                self.running[task_id] = max(self.running.get(task_id, 0) - 1, 0)
        self.sink.trajectory_finished(task_id, traj_id, status, exit_status)

    def trajectory_skipped(self, task_id: str, traj_id: str, reason: str) -> None:
        self.sink.trajectory_skipped(task_id, traj_id, reason)

    def spent(self, task_id: str, cost: Cost) -> None:
        self.sink.spent(task_id, cost)

    def task_stage(self, task_id: str, stage: str) -> None:
        with self._lock:
            self.stages[task_id] = stage
        self.sink.task_stage(task_id, stage)

    def task_finished(self, task_id: str, status: str) -> None:
        with self._lock:
            self.stages.pop(task_id, None)
            self.running.pop(task_id, None)
        self.sink.task_finished(task_id, status)

    def describe(self, shown: int = 3) -> str:
        """ "2 tasks in flight: a (explore, 3 trajectories running), b (grade)"."""
        with self._lock:
            stages = dict(self.stages)
            running = dict(self.running)
        if not stages:
            return "nothing in flight"
        parts = []
        for task_id, stage in list(stages.items())[:shown]:
            n = running.get(task_id, 0)
            trajs = f", {n} trajector{'y' if n == 1 else 'ies'} running" if n else ""
            parts.append(f"{task_id} ({stage}{trajs})")
        more = f" and {len(stages) - shown} more" if len(stages) > shown else ""
        noun = "task" if len(stages) == 1 else "tasks"
        return f"{len(stages)} {noun} in flight: {', '.join(parts)}{more}"
