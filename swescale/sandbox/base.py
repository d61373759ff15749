"""What every sandbox offers, and the errors it raises."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from swescale.types import ExecResult, StateRef


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the command run in it)."""


class EngineUnavailable(SandboxError):
    """The Docker engine does not answer."""


class ImageNotFound(SandboxError):
    """The requested image is neither local nor pullable."""


class PathRefused(SandboxError):
    """A read or write outside the repository that the config does not allow."""


@runtime_checkable
class Sandbox(Protocol):
    """One disposable, isolated checkout at a base commit, with a persistent shell."""

    workdir: str
    base_commit: str

    def execute(self, command: str, timeout: float | None = None) -> ExecResult:
        """Run in the persistent shell session: cwd and environment persist."""
        ...

    def exec_once(
        self, command: str, timeout: float | None = None, workdir: str | None = None
    ) -> ExecResult:
        """Run in a fresh process that shares no shell state with the session."""
        ...

    def read_file(self, path: str) -> bytes: ...

    def write_file(self, path: str, content: str | bytes) -> None: ...

    def diff(self) -> str:
        """The patch against the base commit, new and binary files included, junk excluded."""
        ...

    def snapshot(self) -> tuple[StateRef, bytes]:
        """The repository state as a content-addressed blob (a binary diff)."""
        ...

    def restore(self, blob: bytes) -> None:
        """Put a state from ``snapshot()`` into this (fresh) sandbox."""
        ...

    def close(self) -> None: ...
