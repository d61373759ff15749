"""Resume bookkeeping: what a trajectory record on disk says about the work left.

A record with a footer is finished (reuse it); one with steps but no footer is resumed
from its last step; a header alone, or an unreadable file, starts over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swescale.types import Step

log = logging.getLogger(__name__)


@dataclass
class RecordedTrajectory:
    path: Path
    header: dict[str, Any]
    steps: list[Step]
    footer: dict[str, Any] | None

    @property
    def finished(self) -> bool:
        return self.footer is not None

    @property
    def trajectory_id(self) -> str:
        return str(self.header.get("trajectory_id") or self.path.stem)

    @property
    def parent(self) -> tuple[str, int] | None:
        parent = self.header.get("parent")
        return (str(parent[0]), int(parent[1])) if parent else None

    @property
    def feedback(self) -> str | None:
        """The feedback text the trajectory was started with (None: not recorded)."""
        value = self.header.get("feedback_text")
        return value if isinstance(value, str) else None

    @property
    def patch(self) -> str:
        return str((self.footer or {}).get("patch") or "")

    @property
    def exit_status(self) -> str:
        return str((self.footer or {}).get("exit_status") or "")


def read_recorded(path: Path) -> RecordedTrajectory | None:
    """The record at ``path``, or None when there is none worth keeping (missing, empty, or
    damaged beyond a torn last line: the trajectory then starts over)."""
    from swescale.record.trajectory import RecordError, load_trajectory

    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        loaded = load_trajectory(path)
    except RecordError as exc:
        log.warning("trajectory record %s is damaged, starting it over: %s", path, exc)
        return None
    return RecordedTrajectory(path, dict(loaded.header), list(loaded.steps), loaded.footer)
