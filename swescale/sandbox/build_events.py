"""What image builds are doing, for a command's progress display: ``build_layer`` reports
each build (found in the cache, started with its number of steps, each step, finished or
failed) to the listeners that :func:`listening` installed, from whatever thread builds.

Listeners observe only: one that raises is logged and never breaks a build.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

Kind = Literal["found", "started", "step", "finished", "failed"]


@dataclass(frozen=True)
class BuildEvent:
    """One thing a build did: ``tag`` the image; ``step`` of ``steps`` and its
    ``command`` for a step; ``seconds`` since it started for finished and failed."""

    kind: Kind
    tag: str
    step: int = 0
    steps: int = 0
    command: str = ""
    seconds: float = 0.0


Listener = Callable[[BuildEvent], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send every build event to ``listener`` while inside."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)


def report(event: BuildEvent) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(event)
        except Exception:  # noqa: BLE001 - a display must never break a build
            log.debug("a build listener failed", exc_info=True)
