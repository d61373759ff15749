"""One budget ledger for everything a run spends: agents, test generation, judges, selection.

Every stage charges a :class:`~swescale.types.Cost` against a task and a kind
(``"agent"``, ``"testgen"``, ``"judge"``, ``"selection"``, ``"grading"``, ...). The ledger
keeps totals per task, per kind and per run, checks them against the caps of
:class:`BudgetConfig`, and round-trips through ``run.json`` so a resumed run keeps counting
where the killed one stopped.

Dollars come from a price table (dollars per million tokens in and out, per model name).
Local models have no price; they count model seconds (CPU or GPU time of the request)
instead, which the caller passes in ``Cost.model_seconds``.

The ledger counts compute *spent*: work redone after a crash is charged again, because it
was paid for again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from swescale.scaling.config import BudgetConfig
from swescale.types import Cost

KINDS = ("agent", "testgen", "judge", "verifier", "selection", "grading", "other")


def price_cost(cost: Cost, price_in: float, price_out: float) -> Cost:
    """``cost`` with dollars filled from per-million-token prices, unless already set."""
    if cost.dollars or not (price_in or price_out):
        return cost
    dollars = (cost.tokens_in * price_in + cost.tokens_out * price_out) / 1_000_000
    return cost.model_copy(update={"dollars": dollars})


def _cost_from(data: Mapping[str, Any] | None) -> Cost:
    return Cost.model_validate(dict(data or {}))


class BudgetLedger:
    """Thread-safe totals and caps. ``clock`` is injectable so wall-time caps are testable."""

    def __init__(
        self,
        budget: BudgetConfig | None = None,
        prices: Mapping[str, tuple[float, float]] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget or BudgetConfig()
        self.prices = dict(prices or {})
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        # Wall seconds of earlier sessions of the same run (restored from run.json).
        self._wall_before = 0.0
        self._run = Cost()
        self._tasks: dict[str, Cost] = {}
        self._kinds: dict[str, Cost] = {}
        self._task_kinds: dict[str, dict[str, Cost]] = {}
        self._charges = 0

    # -- charging -----------------------------------------------------------------------

    def charge(
        self, task_id: str, cost: Cost, kind: str = "agent", model: str | None = None
    ) -> Cost:
        """Add ``cost`` to the task, the kind and the run; returns the cost as charged
        (with dollars filled from the price table when ``model`` has a price)."""
        if model is not None and model in self.prices:
            cost = price_cost(cost, *self.prices[model])
        with self._lock:
            self._run = self._run + cost
            self._tasks[task_id] = self._tasks.get(task_id, Cost()) + cost
            self._kinds[kind] = self._kinds.get(kind, Cost()) + cost
            per_task = self._task_kinds.setdefault(task_id, {})
            per_task[kind] = per_task.get(kind, Cost()) + cost
            self._charges += 1
        return cost

    # -- reading ------------------------------------------------------------------------

    def wall_seconds(self) -> float:
        return self._wall_before + (self._clock() - self._started)

    def task_cost(self, task_id: str) -> Cost:
        with self._lock:
            return self._tasks.get(task_id, Cost())

    def run_cost(self) -> Cost:
        with self._lock:
            return self._run

    def kind_cost(self, kind: str) -> Cost:
        with self._lock:
            return self._kinds.get(kind, Cost())

    def exceeded(self, task_id: str | None = None) -> str | None:
        """Why spending must stop for this task (or the run when ``task_id`` is None), or
        None when every cap still has room. A cap is reached at equality: a cap of 1000
        tokens allows 1000 tokens, and the next charge is refused."""
        b = self.budget
        with self._lock:
            run = self._run
            task = self._tasks.get(task_id, Cost()) if task_id is not None else None
        wall = self.wall_seconds()
        checks: list[tuple[str, float, float]] = [
            ("run tokens", run.tokens_in + run.tokens_out, b.run_tokens),
            ("run dollars", run.dollars, b.run_dollars),
            ("run sandbox seconds", run.sandbox_seconds, b.run_sandbox_seconds),
            ("run model seconds", run.model_seconds, b.run_model_seconds),
            ("run wall seconds", wall, b.run_wall_seconds),
        ]
        if task is not None:
            checks += [
                ("task tokens", task.tokens_in + task.tokens_out, b.task_tokens),
                ("task dollars", task.dollars, b.task_dollars),
                ("task sandbox seconds", task.sandbox_seconds, b.task_sandbox_seconds),
                ("task model seconds", task.model_seconds, b.task_model_seconds),
            ]
        for name, used, cap in checks:
            if cap and used >= cap:
                return f"budget: {name} {used:.6g} reached the cap {cap:g}"
        return None

    # -- persistence --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The ledger as plain JSON data (for run.json)."""
        with self._lock:
            return {
                "run": self._run.model_dump(),
                "wall_seconds": round(self.wall_seconds(), 3),
                "by_kind": {k: c.model_dump() for k, c in sorted(self._kinds.items())},
                "by_task": {
                    t: {
                        "total": c.model_dump(),
                        "by_kind": {
                            k: kc.model_dump() for k, kc in sorted(self._task_kinds[t].items())
                        },
                    }
                    for t, c in sorted(self._tasks.items())
                },
                "charges": self._charges,
            }

    def restore(self, data: Mapping[str, Any] | None) -> None:
        """Continue from a ledger saved by :meth:`to_dict` (a resumed run)."""
        if not data:
            return
        with self._lock:
            self._run = _cost_from(data.get("run"))
            self._wall_before = float(data.get("wall_seconds", 0.0))
            self._started = self._clock()
            self._kinds = {k: _cost_from(v) for k, v in (data.get("by_kind") or {}).items()}
            self._tasks = {}
            self._task_kinds = {}
            for task_id, entry in (data.get("by_task") or {}).items():
                self._tasks[task_id] = _cost_from(entry.get("total"))
                self._task_kinds[task_id] = {
                    k: _cost_from(v) for k, v in (entry.get("by_kind") or {}).items()
                }
            self._charges = int(data.get("charges", 0))

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any] | None,
        budget: BudgetConfig | None = None,
        prices: Mapping[str, tuple[float, float]] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> BudgetLedger:
        ledger = cls(budget, prices, clock=clock)
        ledger.restore(data)
        return ledger
