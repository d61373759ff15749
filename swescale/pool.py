"""One interruptible worker pool: ``job(item)`` for every item, ``workers`` at a time.

``run`` (tasks), ``eval`` (gradings), ``validate`` (tasks) and ``ensemble`` (instances)
all run their items through :func:`run_pool`; it sits at the bottom of the layers
(it imports nothing of swescale) so that every package may use it.

- **Stop.** A stop event ends the pool early. The caller sets it (a policy such as "N
  tasks failed in a row"), or SIGINT / SIGTERM do through :func:`stop_on_signals`. Once it
  is set no new job starts: items not started come back ``not_run``. Jobs in flight are
  not cut: they hold the same event, see it and end when they choose; their outcomes
  come back as usual.
- **Failure isolation.** A job raising an ``Exception`` is that item's failure (outcome
  ``failed``, with the exception); the other items go on. Any other ``BaseException``
  (KeyboardInterrupt, SystemExit), from a job or a callback, sets the stop event and is
  re-raised in the caller's thread at once, without waiting for the jobs in flight: the
  pool never swallows an interrupt.
- **Progress.** ``on_started(item)`` runs in the worker thread just before the job;
  ``on_finished(item, value)`` and ``on_failed(item, error)`` run in the caller's thread
  as outcomes arrive (in completion order), so a display or a stop policy needs no lock.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
Status = Literal["done", "failed", "not_run"]

# How soon the caller's thread sees a stop set elsewhere (seconds); outcomes themselves
# are handled as soon as they arrive.
POLL_SECONDS = 0.5
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    """What became of one item: ``done`` (``value`` is the job's return value),
    ``failed`` (``error`` is what the job raised) or ``not_run`` (the pool stopped first)."""

    item: T
    status: Status
    value: R | None = None
    error: Exception | None = None


@dataclass(frozen=True)
class PoolRun(Generic[T, R]):
    """Every item's outcome, in the order of the items; ``stopped``: the stop event was
    set when the pool ended (some items may not have run)."""

    outcomes: list[Outcome[T, R]]
    stopped: bool

    def items(self, status: Status) -> list[T]:
        return [o.item for o in self.outcomes if o.status == status]

    @property
    def not_run(self) -> list[T]:
        return self.items("not_run")


class _NotRun:
    """A job's place-holder result when the pool stopped before it started."""


_NOT_RUN = _NotRun()


def run_pool(
    job: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int,
    stop: threading.Event | None = None,
    name: str = "pool",
    on_started: Callable[[T], None] | None = None,
    on_finished: Callable[[T, R], None] | None = None,
    on_failed: Callable[[T, Exception], None] | None = None,
) -> PoolRun[T, R]:
    """Run ``job(item)`` for every item on ``max(workers, 1)`` threads (named
    ``<name>_<n>``) and return every item's :class:`Outcome`. ``stop`` is the event
    that ends the pool early (a new one when not given); see the module's docstring for
    what stopping, failures and the callbacks do. Raises only what is not an
    ``Exception`` (KeyboardInterrupt and the like), after setting ``stop``."""
    stop = stop if stop is not None else threading.Event()
    todo: Sequence[T] = list(items)
    outcomes: list[Outcome[T, R] | None] = [None] * len(todo)

    def work(item: T) -> R | _NotRun:
        if stop.is_set():
            return _NOT_RUN
        if on_started is not None:
            on_started(item)
        return job(item)

    executor = ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix=name)
    futures: dict[Future[R | _NotRun], int] = {
        executor.submit(work, item): index for index, item in enumerate(todo)
    }
    pending = set(futures)
    finished_cleanly = False
    try:
        while pending:
            done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=futures.__getitem__):
                index = futures[future]
                outcome = _outcome(todo[index], future, name)
                outcomes[index] = outcome
                if outcome.status == "done" and on_finished is not None:
                    on_finished(outcome.item, outcome.value)  # type: ignore[arg-type]
                elif outcome.status == "failed" and on_failed is not None:
                    on_failed(outcome.item, outcome.error)  # type: ignore[arg-type]
            if stop.is_set():
                for future in pending:
                    future.cancel()  # not started yet; one already running goes on
        finished_cleanly = True
    finally:
        if not finished_cleanly:
            stop.set()
            for future in pending:
                future.cancel()
        # After an interrupt the jobs in flight are left to see the stop event on their
        # own: the interrupt goes up now.
        executor.shutdown(wait=finished_cleanly, cancel_futures=True)
    return PoolRun([o for o in outcomes if o is not None], stop.is_set())


def _outcome(item: T, future: Future[R | _NotRun], name: str) -> Outcome[T, R]:
    if future.cancelled():
        return Outcome(item, "not_run")
    error = future.exception()
    if error is None:
        value = future.result()
        if isinstance(value, _NotRun):
            return Outcome(item, "not_run")
        return Outcome(item, "done", value)
    if not isinstance(error, Exception):
        raise error  # KeyboardInterrupt, SystemExit and the like are never an outcome
    log.debug("%s: a job failed: %s: %s", name, type(error).__name__, error, exc_info=error)
    return Outcome(item, "failed", error=error)


@contextlib.contextmanager
def stop_on_signals(
    stop: threading.Event | None = None,
    on_signal: Callable[[str], None] | None = None,
) -> Iterator[threading.Event]:
    """While inside: SIGINT (Ctrl-C) or SIGTERM (a CI job's timeout, ``kill``) sets
    ``stop`` (a new event when not given) and calls ``on_signal`` with the signal's
    name ("SIGINT"); a signal once ``stop`` is set raises KeyboardInterrupt, so a second
    Ctrl-C ends a slow stop. The previous handlers come back on leaving. Only the main
    thread may handle signals: elsewhere this only yields the event."""
    stop = stop if stop is not None else threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        if on_signal is not None:
            on_signal(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            # None: a handler not installed from Python; the default is the closest.
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
