"""A sandbox: one disposable container with the repository at ``workdir``, a persistent
shell session, binary-safe file access, and repository snapshots.

It composes three parts, each in its own module:

- the container (:mod:`swescale.sandbox.container`): start with the limits and isolation
  of the config, fresh-process commands, files in and out, removal;
- the shell session (:mod:`swescale.sandbox.session`): one long-lived bash, commands and
  their streams, timeouts, kills;
- the state reader (:mod:`swescale.sandbox.state_reader`): snapshots and restores, from
  the state watcher, the shell function in the session, or a fresh exec and an archive.
"""

from __future__ import annotations

import logging
import posixpath
import shlex
from collections import Counter
from typing import TYPE_CHECKING

from swescale.patches.exact import exact_patch, needed_objects
from swescale.sandbox import state
from swescale.sandbox.base import PathRefused, SandboxError
from swescale.sandbox.config import SandboxConfig
from swescale.sandbox.container import SandboxContainer, start_container
from swescale.sandbox.engine import ENGINE_ERRORS
from swescale.sandbox.session import CLEAN_SUBSHELL, ShellSession
from swescale.sandbox.state_reader import StateReader
from swescale.types import ExecResult, StateRef

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

log = logging.getLogger(__name__)


class DockerSandbox:
    """See the module docstring. Create with :meth:`create`; use as a context manager.

    Parts: ``box`` (the container), ``session`` (None with ``start_session=False``),
    ``states`` (the state reader); ``container`` and ``client`` are the engine's objects."""

    def __init__(
        self, client: docker.DockerClient, container: Container, cfg: SandboxConfig
    ) -> None:
        self.client = client
        self.container = container
        self.cfg = cfg
        self.workdir = cfg.workdir
        self.box = SandboxContainer(client, container, cfg)
        self.image = self.box.image
        self.session: ShellSession | None = None
        self.states = StateReader(self.box, None)
        self._closed = False
        self._oom_seen = 0
        # What the last diff() could not carry exactly (see diff()); empty when exact.
        self.patch_notes: list[str] = []

    # ---------------------------------------------------------------- lifecycle
    @classmethod
    def create(
        cls,
        client: docker.DockerClient,
        image: str,
        cfg: SandboxConfig | None = None,
        labels: dict[str, str] | None = None,
        base_commit: str | None = None,
        start_session: bool = True,
    ) -> DockerSandbox:
        """Start a container from ``image`` and its shell session. ``labels``: extra
        ``swescale.<key>`` labels (``run``, ``task``); ``base_commit``: None to take the
        repository's HEAD, "" for none. Raises ImageNotFound, SandboxError (nothing is
        left running then)."""
        cfg = cfg or SandboxConfig()
        sandbox = cls(client, start_container(client, image, cfg, labels), cfg)
        try:
            sandbox.attach(base_commit=base_commit, start_session=start_session)
        except BaseException:
            sandbox.close()
            raise
        return sandbox

    def attach(self, base_commit: str | None = None, start_session: bool = True) -> None:
        """Start the shell session and learn the base commit (HEAD of the repository)."""
        if start_session:
            # The state function is defined in every shell the session starts, so that a
            # snapshot calls it by name instead of sending its text each time.
            self.session = ShellSession(
                self.container,
                self.workdir,
                self.cfg.env,
                self.cfg.output_limit,
                prelude=state.FUNCTIONS,
                exact_env=self.cfg.exact_env,
            )
        self.states = StateReader(self.box, self.session, self.states.base_commit)
        if base_commit is not None:
            self.base_commit = base_commit
        else:
            # Through the session when there is one: a millisecond instead of an exec.
            head = self._quick(f"cd {shlex.quote(self.workdir)} && git rev-parse --verify -q HEAD")
            self.base_commit = head.output.strip() if head.exit_code == 0 else ""

    def close(self) -> None:
        """Destroy the container. Safe to call twice; never raises."""
        if self._closed:
            return
        self._closed = True
        self.states.close()
        if self.session:
            self.session.close()
        self.box.remove()

    def __enter__(self) -> DockerSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def id(self) -> str:
        return self.container.id

    @property
    def base_commit(self) -> str:
        """The commit states are taken against ("" when there is no repository); kept by
        the state reader, settable (a test or benchmark that makes its repository later)."""
        return self.states.base_commit

    @base_commit.setter
    def base_commit(self, commit: str) -> None:
        self.states.base_commit = commit

    @property
    def state_sources(self) -> Counter[str]:
        """Which way each state was read: watcher, session, archive (benchmarks, tests)."""
        return self.states.sources

    # ---------------------------------------------------------------- commands
    def execute(self, command: str, timeout: float | None = None) -> ExecResult:
        """Run in the persistent session; cwd and environment persist between commands.
        ``timeout`` in seconds (default: the config's). A failure of the sandbox itself
        is ``exit_code=None, infra_error``; raises SandboxError only without a session."""
        if self.session is None:
            raise SandboxError("this sandbox has no shell session (start_session=False)")
        with self.session.lock:
            try:
                result = self.session.run(command, timeout or self.cfg.command_timeout)
            except (SandboxError, *ENGINE_ERRORS) as exc:
                # The container vanished or the engine failed: the command cannot be judged.
                return ExecResult(output="", exit_code=None, infra_error=f"sandbox failed: {exc}")
        if result.exit_code == 137 and not result.timed_out:
            kills = self.box.oom_kills()
            if kills > self._oom_seen:
                self._oom_seen = kills
                result.note = (
                    result.note + f" killed: out of memory (sandbox limit {self.cfg.memory})"
                ).strip()
            else:
                result.note = (result.note + " killed by SIGKILL").strip()
        return result

    def exec_once(
        self,
        command: str,
        timeout: float | None = None,
        workdir: str | None = None,
        output_limit: int | None = None,
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        """Run ``command`` with ``bash -c`` in a fresh process: no state shared with the
        session (see :meth:`SandboxContainer.exec_once`)."""
        return self.box.exec_once(command, timeout, workdir, output_limit, env)

    def _quick(self, command: str, timeout: float = 30) -> ExecResult:
        """A small internal command: through the session when there is one (about a
        millisecond), in a subshell so the session's state is kept and with whatever the
        model may have set there (git variables, shell functions) cleared. Any failure is
        retried in a fresh exec, which shares nothing with the session."""
        if self.session is not None:
            result = self.execute(f"( {CLEAN_SUBSHELL} {command} )", timeout=timeout)
            if result.ok:
                return result
        return self.box.exec_once(command, timeout=timeout)

    # ---------------------------------------------------------------- files
    def resolve_path(self, path: str) -> str:
        """The absolute path in the container, refused outside the repository and the
        allowed paths. Symlinks are resolved inside the container, so a link pointing out
        of the repository does not open a way out. Raises PathRefused."""
        joined = posixpath.normpath(posixpath.join(self.workdir, path))
        real = self._quick(f"realpath -m -- {shlex.quote(joined)}").output.strip() or joined
        roots = [self.workdir, *self.cfg.allowed_paths]
        for candidate in (joined, real):
            if not any(candidate == r or candidate.startswith(r.rstrip("/") + "/") for r in roots):
                raise PathRefused(f"path {path!r} resolves to {candidate!r}, outside {roots}")
        return real

    def read_file(self, path: str) -> bytes:
        """The file's bytes (``path`` relative to the repository, or absolute). Raises
        PathRefused, FileNotFoundError, IsADirectoryError."""
        try:
            return self.box.get_file(self.resolve_path(path))
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{path}: no such file in the sandbox") from exc
        except IsADirectoryError as exc:
            raise IsADirectoryError(f"{path}: not a regular file") from exc

    def write_file(self, path: str, content: str | bytes, mode: int = 0o644) -> None:
        """Write ``content`` (text as UTF-8) with file ``mode``, making its directories.
        Raises PathRefused, SandboxError."""
        real = self.resolve_path(path)
        parent = posixpath.dirname(real)
        made = self._quick(f"mkdir -p -- {shlex.quote(parent)}")
        if not made.ok:
            raise SandboxError(f"cannot create {parent}: {made.output.strip()[-300:]}")
        data = content.encode("utf-8") if isinstance(content, str) else content
        self.box.put_file(real, data, mode)

    # ---------------------------------------------------------------- repository state
    def snapshot(self) -> tuple[StateRef, bytes]:
        """The state as ``(StateRef, bytes)``: a binary diff against the base commit, named
        by its sha256. See :mod:`swescale.sandbox.state` for what it holds, and
        :mod:`swescale.sandbox.state_reader` for the ways it is read (a snapshot after a
        small change costs a few round trips). Raises SandboxError."""
        return self.states.read()

    def restore(self, blob: bytes) -> None:
        """Apply a snapshot onto this sandbox's base commit: one ``git apply``, so the cost
        depends on the size of the change, not on how many steps produced it. Raises
        SandboxError when it does not apply."""
        self.states.restore(blob)

    def reference_state(self) -> bytes:
        """The state computed from nothing kept, in a fresh exec (slow; for checking the
        fast ways): :meth:`StateReader.reference`. Raises SandboxError."""
        return self.states.reference()

    def diff(self) -> str:
        """The patch against the base commit (new and binary files included, junk
        excluded) as text that carries the files' bytes exactly: the state's bytes, with
        the files whose bytes are not UTF-8 written as git binary patches
        (:mod:`swescale.patches.exact`). ``patch_notes`` says afterwards when that was
        impossible for some file (its git objects unreadable). Raises SandboxError."""
        _, blob = self.states.read()
        wanted = needed_objects(blob)
        result = exact_patch(blob, self.states.objects(wanted) if wanted else {})
        self.patch_notes = [result.note()] if result.inexact else []
        if result.inexact:
            log.warning("%s: %s", self.box.short_id, result.note())
        return result.text
