"""Progress of the long steps a command waits on: image builds (``validate``, ``ci
check``, ``eval``) and grading.

On a terminal each build in flight is a live row (its step, of how many, and the
command); elsewhere (a CI log, a pipe) one line when a build starts and one when it ends.
Either way the command ends with a count: images built, found ready, failed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BuildTally:
    """Distinct images a command needed: built, found ready, failed to build."""

    built: set[str] = field(default_factory=set)
    found: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    seconds: float = 0.0

    def line(self) -> str:
        found = self.found - self.built - self.failed
        parts = [f"{len(self.built)} built" + (f" in {self.seconds:,.0f} s" if self.built else "")]
        parts.append(f"{len(found)} already there")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return "images: " + ", ".join(parts)


@contextlib.contextmanager
def image_builds(console: Any, bar: Any = None) -> Iterator[BuildTally]:
    """Show the image builds that happen while inside on ``console`` (see the module);
    print the tally at the end when any image was needed. ``bar``: a rich Progress
    already live on the console (one live display at a time) to add the rows to."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from swescale.sandbox.build_events import BuildEvent, listening

    tally = BuildTally()
    lock = threading.Lock()
    live = console.is_terminal
    own = bar is None
    bar = bar or Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    rows: dict[str, Any] = {}

    def said(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    def listener(event: BuildEvent) -> None:
        with lock:
            if event.kind == "found":
                tally.found.add(event.tag)
            elif event.kind == "started":
                if live:
                    rows[event.tag] = bar.add_task(f"building {event.tag}", total=event.steps)
                else:
                    said(f"building {event.tag} ({event.steps} steps)")
            elif event.kind == "step" and live and event.tag in rows:
                command = " ".join(event.command.split())[:60]
                bar.update(
                    rows[event.tag],
                    completed=event.step - 1,
                    description=f"building {event.tag}: step {event.step}/{event.steps} {command}",
                )
            elif event.kind in ("finished", "failed"):
                if event.tag in rows:
                    bar.remove_task(rows.pop(event.tag))
                if event.kind == "finished":
                    tally.built.add(event.tag)
                    tally.seconds += event.seconds
                    said(f"built {event.tag} in {event.seconds:,.0f} s")
                else:
                    tally.failed.add(event.tag)
                    said(f"building {event.tag} failed after {event.seconds:,.0f} s")

    with bar if live and own else contextlib.nullcontext(), listening(listener):
        yield tally
    if tally.built or tally.found or tally.failed:
        said(tally.line())
