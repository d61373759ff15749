"""Wrappers that put every model request and sandbox command of a trajectory on the
ledger, under the run's concurrency limits, and stop them when the run is interrupted.

The agent sees an ordinary Model and Sandbox; the limits and the accounting live here so
the agent loop stays free of them.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from swescale.scaling.ledger import BudgetLedger
from swescale.types import Cost, ExecResult


class RunInterrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error
    """Raised inside a trajectory when the run is stopping (Ctrl-C, batch shutdown).

    A BaseException on purpose: the agent turns errors into a footer ("model_error", ...),
    which would mark the trajectory finished; an interrupted trajectory must stay
    unfinished so a rerun resumes it from its last recorded step.
    """


class MeteredModel:
    """A model whose requests wait for a run-wide slot and are charged to the task on the
    ledger (tokens, model seconds, dollars from the price table)."""

    def __init__(
        self,
        inner: Any,
        *,
        ledger: BudgetLedger,
        task_id: str,
        slots: threading.Semaphore,
        stop: threading.Event,
        model_name: str = "",
        kind: str = "agent",
        on_completion: Any = None,
    ) -> None:
        self.inner = inner
        self.ledger = ledger
        self.task_id = task_id
        self.slots = slots
        self.stop = stop
        self.model_name = model_name
        self.kind = kind
        self.on_completion = on_completion
        self.requests = 0

    def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **kw: Any
    ) -> Any:
        if self.stop.is_set():
            raise RunInterrupted("run stopping")
        self.requests += 1
        with self.slots:
            if self.stop.is_set():
                raise RunInterrupted("run stopping")
            started = time.monotonic()
            completion = self.inner.complete(messages, tools=tools, **kw)
            elapsed = time.monotonic() - started
        seconds = float(getattr(completion, "seconds", 0.0) or elapsed)
        cost = Cost(
            tokens_in=int(getattr(completion, "tokens_in", 0) or 0),
            tokens_out=int(getattr(completion, "tokens_out", 0) or 0),
            reasoning_tokens=int(getattr(completion, "reasoning_tokens", 0) or 0),
            model_seconds=seconds,
        )
        self.ledger.charge(self.task_id, cost, self.kind, model=self.model_name)
        if self.on_completion is not None:
            self.on_completion(cost)
        return completion

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class MeteredSandbox:
    """A sandbox charged to the task for its whole lifetime (sandbox seconds: start-up,
    commands, snapshots, idle time while the model thinks), refused once the run is
    stopping. Command seconds are charged as they happen, so caps apply mid-trajectory;
    the rest of the lifetime is charged at close. Everything else passes through."""

    def __init__(
        self,
        inner: Any,
        *,
        ledger: BudgetLedger,
        task_id: str,
        stop: threading.Event,
        kind: str = "agent",
        opened_at: float | None = None,
    ) -> None:
        self.inner = inner
        self.ledger = ledger
        self.task_id = task_id
        self.stop = stop
        self.kind = kind
        self.opened_at = time.monotonic() if opened_at is None else opened_at
        self.charged = 0.0
        self._closed = False

    def _charge(self, result: ExecResult) -> ExecResult:
        seconds = float(result.seconds or 0.0)
        self.charged += seconds
        self.ledger.charge(self.task_id, Cost(sandbox_seconds=seconds), self.kind)
        return result

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.inner.close()
        finally:
            rest = max(time.monotonic() - self.opened_at - self.charged, 0.0)
            self.ledger.charge(self.task_id, Cost(sandbox_seconds=rest), self.kind)

    def execute(self, command: str, timeout: float | None = None) -> ExecResult:
        if self.stop.is_set():
            raise RunInterrupted("run stopping")
        return self._charge(self.inner.execute(command, timeout=timeout))

    def exec_once(self, command: str, timeout: float | None = None, **kw: Any) -> ExecResult:
        if self.stop.is_set():
            raise RunInterrupted("run stopping")
        return self._charge(self.inner.exec_once(command, timeout=timeout, **kw))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __enter__(self) -> MeteredSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
