"""What a task sees of the run while it runs on a cluster node.

The batch code (:class:`~swescale.scaling.batch.BatchRunner`, exploration, verifiers) runs
unchanged on a node; three stand-ins connect it to the driver's :class:`RunStore`:

- :class:`NodeRunDir`: the task directory is local (shipped by a :class:`TaskMirror`), the
  run-level records (run.json, predictions, failures, result.json) go to the store;
- :class:`ClusterLedger`: charges are buffered and shipped in batches; a cap check asks
  the store, whose ledger counts every node's charges, so caps hold for the whole run;
- :class:`ForwardedProgress`: progress events are shipped to the driver's display.

A :class:`NodeSession` ties them to one attempt at one task and ships everything every
``sync_interval`` seconds from a background thread (and at once before the result).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from swescale.record.run import RunDir
from swescale.scaling.cluster.mirror import FileChange, TaskMirror
from swescale.scaling.cluster.store import Charge, Event, StaleAttempt
from swescale.scaling.config import BudgetConfig
from swescale.scaling.ledger import price_cost
from swescale.scaling.progress import NullProgress
from swescale.types import Cost

log = logging.getLogger(__name__)


class StoreClient(Protocol):
    """Calls a :class:`RunStore` method and returns its result (through Ray, or directly
    in tests)."""

    def call(self, method: str, *args: Any) -> Any: ...


class DirectStore:
    """A :class:`StoreClient` over a RunStore in this process (tests, benchmarks)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def call(self, method: str, *args: Any) -> Any:
        return getattr(self.store, method)(*args)


def _has_caps(budget: BudgetConfig) -> bool:
    return any(bool(v) for v in budget.model_dump().values())


class ClusterLedger:
    """The ledger interface batch code uses (``charge``, ``exceeded``, ``task_cost``),
    counting on the driver's ledger. Without caps no check leaves the node."""

    def __init__(
        self,
        store: StoreClient,
        budget: BudgetConfig,
        prices: dict[str, tuple[float, float]] | None = None,
    ) -> None:
        self.store = store
        self.budget = budget
        self.prices = dict(prices or {})
        self._lock = threading.Lock()
        self._pending: list[Charge] = []
        self._checks = _has_caps(budget)

    def charge(
        self, task_id: str, cost: Cost, kind: str = "agent", model: str | None = None
    ) -> Cost:
        if model is not None and model in self.prices:
            cost = price_cost(cost, *self.prices[model])
        with self._lock:
            # Dollars are filled here already; the store must not price them again.
            self._pending.append((task_id, cost.model_dump(), kind, None))
        return cost

    def drain(self) -> list[Charge]:
        with self._lock:
            pending, self._pending = self._pending, []
        return pending

    def exceeded(self, task_id: str | None = None) -> str | None:
        if not self._checks:
            return None
        return self.store.call("check", task_id, self.drain())

    def task_cost(self, task_id: str) -> Cost:
        return Cost.model_validate(self.store.call("task_cost", task_id, self.drain()))


class ForwardedProgress(NullProgress):
    """Progress events kept for shipment to the driver."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []

    def _add(self, name: str, *args: Any) -> None:
        with self._lock:
            self._events.append((name, args))

    def drain(self) -> list[Event]:
        with self._lock:
            events, self._events = self._events, []
        return events

    def trajectories_planned(self, task_id: str, count: int) -> None:
        self._add("trajectories_planned", task_id, count)

    def trajectory_started(self, task_id: str, traj_id: str) -> None:
        self._add("trajectory_started", task_id, traj_id)

    def trajectory_finished(
        self, task_id: str, traj_id: str, status: str, exit_status: str
    ) -> None:
        self._add("trajectory_finished", task_id, traj_id, status, exit_status)

    def trajectory_skipped(self, task_id: str, traj_id: str, reason: str) -> None:
        self._add("trajectory_skipped", task_id, traj_id, reason)

    def spent(self, task_id: str, cost: Cost) -> None:
        self._add("spent", task_id, cost)

    def task_stage(self, task_id: str, stage: str) -> None:
        self._add("task_stage", task_id, stage)

    def task_finished(self, task_id: str, status: str) -> None:
        self._add("task_finished", task_id, status)


def replay_events(events: list[Event], sink: Any) -> None:
    """Play shipped progress events into the driver's sink."""
    for name, args in events:
        method = getattr(sink, name, None)
        if callable(method):
            method(*args)


class NodeRunDir(RunDir):
    """A run directory whose task directories are local to this node and whose run-level
    records live on the driver."""

    def __init__(self, root: Path, session: NodeSession) -> None:
        super().__init__(root)
        self.session = session

    def run_json(self) -> dict[str, Any]:
        return self.session.store.call("run_json")

    def update_run_json(self, change: Any) -> dict[str, Any]:
        return self.session.store.call("update_run_json", change)

    def set_task_state(self, task_id: str, **fields: Any) -> None:
        self.session.store.call("set_task_state", task_id, fields)

    def record_failure(self, task_id: str, stage: str, reason: str, **extra: Any) -> None:
        self.session.store.call("record_failure", task_id, stage, reason, extra)

    def failures(self) -> list[dict[str, Any]]:
        raise NotImplementedError("failures are read on the driver")

    def add_prediction(self, instance_id: str, model_name: str, patch: str) -> bool:
        return self.session.store.call("add_prediction", instance_id, model_name, patch)

    def result(self, task_id: str) -> dict[str, Any] | None:
        return self.session.store.call("result", task_id)

    def write_result(self, task_id: str, result: dict[str, Any]) -> None:
        # Everything the result speaks of reaches the driver before the result does: a
        # result.json on the driver means the task's records are complete there.
        self.session.flush()
        if self.session.stale:
            raise StaleAttempt(f"{task_id}: this attempt was superseded")
        self.session.store.call("write_result", task_id, self.session.attempt, result)


class NodeSession:
    """One attempt at one task on this node: its local records, ledger and progress,
    and the thread that ships them.

    ``mirror_root`` is the local run directory whose task directory is mirrored; None
    means the records are written in place on a shared path (only charges and events
    are shipped).
    """

    def __init__(
        self,
        store: StoreClient,
        task_id: str,
        attempt: str,
        *,
        budget: BudgetConfig,
        prices: dict[str, tuple[float, float]] | None = None,
        root: Path,
        mirror: bool = True,
        interval: float = 0.5,
        on_stop: Callable[[], None] | None = None,
        node: str = "",
    ) -> None:
        self.store = store
        self.task_id = task_id
        self.attempt = attempt
        self.ledger = ClusterLedger(store, budget, prices)
        self.progress = ForwardedProgress()
        self.rundir = NodeRunDir(root, self)
        self.interval = interval
        self.on_stop = on_stop
        self.node = node
        self.stale = False
        self.stopping = False
        self._mirror = TaskMirror(self.rundir.task_dir(task_id), self._send) if mirror else None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    # -- shipping -----------------------------------------------------------------------

    def _send(self, changes: list[FileChange]) -> list[str]:
        reply = self.store.call(
            "sync",
            self.task_id,
            self.attempt,
            changes,
            self.ledger.drain(),
            self.progress.drain(),
        )
        if reply.get("stale") and not self.stale:
            log.warning("%s: attempt %s superseded; stopping it", self.task_id, self.attempt)
            self.stale = True
        if (reply.get("stop") or reply.get("stale")) and not self.stopping:
            self.stopping = True
            if self.on_stop is not None:
                self.on_stop()
        return list(reply.get("resend") or [])

    def flush(self) -> None:
        """Ship record changes, charges and events now."""
        with self._lock:
            if self._mirror is not None:
                if self._mirror.flush() == 0:
                    self._send([])
            else:
                self._send([])

    def begin(self) -> None:
        """Become the task's owner and fetch its records (to resume from them)."""
        files = self.store.call("begin", self.task_id, self.attempt, self.node)
        if self._mirror is not None:
            self._mirror.seed(files)

    def start(self) -> None:
        def loop() -> None:
            while not self._done.wait(self.interval):
                try:
                    self.flush()
                except Exception as exc:  # noqa: BLE001 - the next round tries again
                    log.warning("%s: shipping records failed: %s", self.task_id, exc)

        self._thread = threading.Thread(target=loop, name=f"sync-{self.task_id[:20]}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the shipping thread and ship what is left."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()

    def __enter__(self) -> NodeSession:
        self.begin()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
