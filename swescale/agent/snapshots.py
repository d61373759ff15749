"""The repository state after each step, without a full snapshot when nothing changed.

A snapshot diffs the whole work tree against the base commit and copies the result out
of the container, which costs far more than a command in the persistent shell. Most agent
steps only read (ls, cat, grep). So a stamp file is touched just before each snapshot,
and after the next step one ``find -cnewer`` in the shell asks whether anything in the
work tree (``.git`` aside) changed since: writes, deletions, renames and mode changes all
move a change time (ctime), which no unprivileged program can set back. Nothing newer
means the previous state is reused. Any doubt (a missing stamp, a failing command, an
unexpected answer) falls back to a full snapshot.
"""

from __future__ import annotations

import shlex
from typing import Any

from swescale.sandbox.base import Sandbox
from swescale.types import StateRef

STAMP = "/tmp/.swescale-state-stamp"
UNCHANGED = "SWESCALE-UNCHANGED"


def touch_command() -> str:
    return f"( command -p touch {STAMP} )"


def unchanged_command(workdir: str) -> str:
    # `command -p` ignores the model's PATH, aliases and functions; the subshell keeps
    # the session's state. The new stamp is taken before looking, so a change made while
    # `find` runs is newer than it and is seen next time.
    repo = shlex.quote(workdir.rstrip("/") or "/")
    return (
        f"( [ -f {STAMP} ] || exit 3; command -p touch {STAMP}.new || exit 3; "
        f"out=$(command -p find {repo} -path {repo}/.git -prune -o -cnewer {STAMP} -print -quit) "
        f"|| exit 3; command -p mv -f {STAMP}.new {STAMP}; "
        f'[ -z "$out" ] && echo {UNCHANGED}; exit 0 )'
    )


class StateTracker:
    """Gives each step its StateRef, storing blobs in ``blob_store`` when given."""

    def __init__(self, sandbox: Sandbox, blob_store: Any = None) -> None:
        self.sandbox = sandbox
        self.blob_store = blob_store
        self.last_ref: StateRef | None = None
        self.snapshots = 0
        self.reused = 0

    def unchanged(self) -> bool:
        """True only when the shell says for sure that nothing changed since the stamp."""
        result = self.sandbox.execute(unchanged_command(self.sandbox.workdir), timeout=60)
        return (
            result.exit_code == 0
            and result.infra_error is None
            and result.output.strip() == UNCHANGED
        )

    def state_after_step(self) -> StateRef:
        """The state now. Raises SandboxError when the snapshot itself fails."""
        if self.last_ref is not None and self.unchanged():
            self.reused += 1
            return self.last_ref
        stamped = self.sandbox.execute(touch_command(), timeout=60)
        ref, blob = self.sandbox.snapshot()
        if self.blob_store is not None:
            self.blob_store.put(blob)
        self.snapshots += 1
        # Without a stamp the next step cannot be checked: keep no reference to reuse.
        self.last_ref = ref if stamped.exit_code == 0 and stamped.infra_error is None else None
        return ref
