"""The repository state after each step of a trajectory.

Every step gets a snapshot: the sandbox's state watcher keeps the state current from
file-system events, so a step that only read files costs about one round trip and returns
the previous state's reference, and an editing step costs a few (see
:mod:`swescale.sandbox.state_watcher`, and :mod:`swescale.sandbox.state` for the shell
function that computes the same bytes where the watcher cannot). Blobs go to the store
only when new.
"""

from __future__ import annotations

from typing import Any

from swescale.sandbox.base import Sandbox
from swescale.types import StateRef


class StateTracker:
    """Gives each step its StateRef, storing blobs in ``blob_store`` when given."""

    def __init__(self, sandbox: Sandbox, blob_store: Any = None) -> None:
        self.sandbox = sandbox
        self.blob_store = blob_store
        self.last_ref: StateRef | None = None
        self.snapshots = 0
        self.reused = 0  # steps whose state equals the previous step's

    def state_after_step(self) -> StateRef:
        """The state now. Raises SandboxError when the snapshot itself fails."""
        ref, blob = self.sandbox.snapshot()
        self.snapshots += 1
        if ref == self.last_ref:
            self.reused += 1
        elif self.blob_store is not None:
            self.blob_store.put(blob)
        self.last_ref = ref
        return ref
