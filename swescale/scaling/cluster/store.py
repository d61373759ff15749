"""The run's single writer on the driver's node during a cluster run.

:class:`RunStore` owns the run directory's run-level files (``run.json``,
``predictions.jsonl``, ``failures.jsonl``, each task's ``result.json``), the budget ledger
every node charges, the stop flag, and the progress events the driver displays. Nodes
reach it as a Ray actor pinned to the driver's node (``ray.remote(RunStore)``); it is a
plain class so it is tested without Ray.

Task directories arrive through :mod:`~swescale.scaling.cluster.mirror`. Each attempt at a
task is *fenced*: :meth:`begin` makes the caller the task's owner, and records from an
older attempt (a node that was declared dead but still runs) are refused, so two attempts
never write the same trajectory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from swescale.record.run import RunDir
from swescale.scaling.cluster.mirror import FileChange, apply_changes, read_task_files
from swescale.scaling.config import BudgetConfig
from swescale.scaling.ledger import BudgetLedger
from swescale.types import Cost

# (task_id, cost as a dict, kind, model name or None)
Charge = tuple[str, dict[str, Any], str, str | None]
# (progress method name, positional arguments)
Event = tuple[str, tuple[Any, ...]]


class StaleAttempt(RuntimeError):  # noqa: N818 - the state, not an error in the caller's code
    """Records from an attempt that is no longer the task's owner."""


class RunStore:
    """Run-level records, ledger, stop flag and progress events of one cluster run."""

    def __init__(
        self,
        root: str,
        budget: BudgetConfig | None = None,
        prices: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self.rundir = RunDir(Path(root))
        self.ledger = BudgetLedger.from_dict(self.rundir.run_json().get("ledger"), budget, prices)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._owners: dict[str, str] = {}
        self._events: list[Event] = []
        self._attempts: dict[str, int] = {}

    # -- attempts -----------------------------------------------------------------------

    def begin(self, task_id: str, attempt: str, node: str = "") -> dict[str, bytes]:
        """Make ``attempt`` the owner of the task; returns the task directory's files
        (empty for a new task) for the node to resume from."""
        with self._lock:
            self._owners[task_id] = attempt
            self._attempts[task_id] = self._attempts.get(task_id, 0) + 1
            count = self._attempts[task_id]
        self.rundir.set_task_state(task_id, attempts=count, node=node)
        return read_task_files(self.rundir.task_dir(task_id))

    def _check_owner(self, task_id: str, attempt: str) -> None:
        with self._lock:
            owner = self._owners.get(task_id)
        if owner != attempt:
            raise StaleAttempt(f"{task_id}: attempt {attempt} was superseded by {owner}")

    def owner(self, task_id: str) -> str | None:
        with self._lock:
            return self._owners.get(task_id)

    # -- the periodic call of a running task ----------------------------------------------

    def sync(
        self,
        task_id: str,
        attempt: str,
        changes: list[FileChange] | None = None,
        charges: list[Charge] | None = None,
        events: list[Event] | None = None,
    ) -> dict[str, Any]:
        """Apply a node's shipment: record changes, charges, progress events. Returns
        ``{"stop": bool, "stale": bool, "resend": [paths]}``; a stale attempt's record
        changes are dropped (its charges still count: the compute was spent)."""
        self.charge_many(charges or [])
        with self._lock:
            self._events.extend(events or [])
            stale = self._owners.get(task_id) != attempt
        resend: list[str] = []
        if changes and not stale:
            resend = apply_changes(self.rundir.task_dir(task_id), changes)
        return {"stop": self._stop.is_set(), "stale": stale, "resend": resend}

    # -- ledger -------------------------------------------------------------------------

    def charge_many(self, charges: list[Charge]) -> None:
        for task_id, cost, kind, model in charges:
            self.ledger.charge(task_id, Cost.model_validate(cost), kind, model=model)

    def check(self, task_id: str | None, charges: list[Charge] | None = None) -> str | None:
        """Charge, then the reason spending must stop for the task (or None)."""
        self.charge_many(charges or [])
        return self.ledger.exceeded(task_id)

    def task_cost(self, task_id: str, charges: list[Charge] | None = None) -> dict[str, Any]:
        self.charge_many(charges or [])
        return self.ledger.task_cost(task_id).model_dump()

    def save_ledger(self) -> dict[str, Any]:
        ledger = self.ledger.to_dict()
        self.rundir.update_run_json(lambda r: r.update(ledger=ledger, totals=ledger["run"]))
        return ledger

    # -- run-level records ------------------------------------------------------------------

    def run_json(self) -> dict[str, Any]:
        return self.rundir.run_json()

    def update_run_json(self, change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
        return self.rundir.update_run_json(change)

    def set_task_state(self, task_id: str, fields: dict[str, Any]) -> None:
        self.rundir.set_task_state(task_id, **fields)

    def record_failure(self, task_id: str, stage: str, reason: str, extra: dict[str, Any]) -> None:
        self.rundir.record_failure(task_id, stage, reason, **extra)

    def add_prediction(self, instance_id: str, model_name: str, patch: str) -> bool:
        return self.rundir.add_prediction(instance_id, model_name, patch)

    def result(self, task_id: str) -> dict[str, Any] | None:
        return self.rundir.result(task_id)

    def write_result(self, task_id: str, attempt: str, result: dict[str, Any]) -> None:
        """The task's result, written last: refused from a superseded attempt."""
        self._check_owner(task_id, attempt)
        self.rundir.write_result(task_id, result)

    # -- the driver's side ------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def stopping(self) -> bool:
        return self._stop.is_set()

    def drain_events(self) -> list[Event]:
        with self._lock:
            events, self._events = self._events, []
        return events

    def ping(self) -> bool:
        return True
