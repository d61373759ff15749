"""The repository state of a sandbox behind one interface: :class:`StateReader`.

Three ways compute the same bytes (the binary diff from the base commit to the work
tree, see :mod:`swescale.sandbox.state`), tried in this order by :meth:`StateReader.read`:

1. ``watcher``: the resident state watcher (:mod:`swescale.sandbox.watch`, its program in
   :mod:`swescale.sandbox.state_watcher`), started at the first read, one request and
   one answer, no process started. It hands what it does not handle to the next way and
   is reloaded from the private index that way leaves; after ``WATCHER_TRIES`` failed
   starts or deaths the sandbox keeps to the others.
2. ``session``: the shell function, defined in the persistent session, called by name;
   its bytes come back as the command's raw output (one round trip, a stat walk when
   nothing changed).
3. ``archive``: the same function in a fresh exec, its output written to a file and
   copied out with the engine's archive call: where there is no session, the model broke
   it (a ``PATH`` without git), or the state is over ``STATE_LIMIT``.

One keeper of the state last read (``_last``): when a way answers UNCHANGED, the reader
returns that state's bytes and reference instead of having them sent again; a read that
fails, a restore, or a new base commit forgets it. ``sources`` counts which way served
each read (benchmarks and tests check it).
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import shlex
import threading
from collections import Counter
from dataclasses import dataclass

import docker.errors

from swescale.patches.exact import parse_cat_file_batch
from swescale.sandbox import state
from swescale.sandbox.base import SandboxError
from swescale.sandbox.container import SandboxContainer
from swescale.sandbox.engine import ENGINE_ERRORS
from swescale.sandbox.session import ShellSession
from swescale.sandbox.state_watcher import SHM_OBJECTS
from swescale.sandbox.stream import RawOutput
from swescale.sandbox.watch import StateWatcher, WatcherNeedsShell, WatcherUnavailable
from swescale.types import StateRef

log = logging.getLogger(__name__)

# The state's bytes come back through the session or the watcher up to this size; a
# larger state is written to a file and copied out as an archive instead.
STATE_LIMIT = 64 << 20
WATCHER_TRIES = 3
_SNAP_FILE = "/tmp/.swescale-snapshot.patch"
_OBJECTS_FILE = "/tmp/.swescale-objects.batch"
_REFERENCE_FILE = "/tmp/.swescale-reference.patch"


@dataclass(frozen=True)
class _Read:
    """A state as read: its base commit, reference and bytes."""

    base: str
    ref: StateRef
    blob: bytes


def state_ref(blob: bytes) -> StateRef:
    """The content address of a state: its sha256 and size in bytes."""
    return StateRef(sha256=hashlib.sha256(blob).hexdigest(), size=len(blob))


class StateReader:
    """Reads and restores the repository state at ``box.cfg.workdir`` against
    ``base_commit`` (set it when the base changes; an empty one raises SandboxError).

    ``session``: the sandbox's shell session, None without one (then only the archive
    way). Its ``lock`` serializes the watcher's and the session's calls with the
    sandbox's commands."""

    def __init__(
        self, box: SandboxContainer, session: ShellSession | None, base_commit: str = ""
    ) -> None:
        self.box = box
        self.session = session
        self.workdir = box.cfg.workdir
        self.base_commit = base_commit
        self.lock = session.lock if session is not None else threading.Lock()
        self.sources: Counter[str] = Counter()
        self._last: _Read | None = None
        # The running watcher, the base commit it was started on (kept after it stops:
        # then the session's private index may be older than the state last answered),
        # and how many times one could not start or died.
        self.watcher: StateWatcher | None = None
        self.watcher_base = ""
        self.watcher_failures = 0

    # ---------------------------------------------------------------- the interface
    def read(self) -> tuple[StateRef, bytes]:
        """The state as ``(StateRef, bytes)``, the first way that answers (see the module
        docstring). Raises SandboxError when there is no base commit or every way failed."""
        blob = self._read_blob()
        last = self._last
        if last is not None and last.blob is blob:
            return last.ref, blob
        return state_ref(blob), blob

    def restore(self, blob: bytes) -> None:
        """Apply a state from :meth:`read` onto the base commit: one ``git apply``. The
        bytes go through the session's input as they are (no archive, no encoding),
        else they are copied in and applied in a fresh exec. Raises SandboxError when
        the patch does not apply (a clear message with git's) or there is no base."""
        if not blob:
            return
        self._require_base()
        self._last = None
        path = f"{state.STATE_PREFIX}{self.base_commit}.restore"
        if self.session is not None:
            # Wrapped in a here-document that a shell would skip as data, should one ever
            # parse it; `git apply` skips lines outside the patch.
            end = f"{self.session.token}-END".encode()
            wrapped = b": <<'" + end + b"'\n" + blob + b"\n" + end + b"\n"
            args = ("restore", self.workdir, self.base_commit, path)
            limit = self.box.cfg.output_limit
            code, out = self._call_function(args, limit, upload=(wrapped, path))
            if code == 0:
                return
            if code == state.APPLY_FAILED:
                raise SandboxError(f"restoring the repository state failed: {out.text()[-500:]}")
        parent = posixpath.dirname(path)
        made = self.box.exec_once(f"mkdir -p -- {shlex.quote(parent)}", timeout=30)
        if not made.ok:
            raise SandboxError(f"cannot create {parent}: {made.output.strip()[-300:]}")
        self.box.put_file(path, blob)
        applied = self.box.exec_once(
            state.standalone("restore", self.workdir, self.base_commit, path), timeout=300
        )
        if not applied.ok:
            raise SandboxError(
                f"restoring the repository state failed: {applied.output.strip()[-500:]}"
            )

    def reference(self) -> bytes:
        """The state as the shell function computes it from nothing kept: a fresh exec,
        a private index of its own, nothing shared with the session or the watcher. Slow
        (it rehashes the tree); for checking the fast ways. Raises SandboxError."""
        self._require_base()
        function = state.standalone("snapshot", self.workdir, self.base_commit, "1")
        made = self.box.exec_once(
            "export TMPDIR=$(mktemp -d) && ( "
            + function.replace(state.STATE_PREFIX, "$TMPDIR/s-")
            + f' ) > {_REFERENCE_FILE}; code=$?; rm -rf "$TMPDIR"; exit $code',
            timeout=600,
        )
        if not made.ok:
            raise SandboxError(f"the reference state failed: {made.output[-500:]}")
        blob = state.parse_snapshot(self.box.get_file(_REFERENCE_FILE))
        if blob is None:
            raise SandboxError("the state function said UNCHANGED to a forced snapshot")
        return blob

    def objects(self, oids: list[str]) -> dict[str, bytes]:
        """Blob contents by object id (hex), read with ``git cat-file --batch`` in a fresh
        exec from the repository's objects and the watcher's; missing ones are left out
        (an empty dict when the read fails)."""
        listing = "\n".join(oids) + "\n"
        command = (
            f"cd {shlex.quote(self.workdir)} && alt=; [ -d {SHM_OBJECTS} ] && alt={SHM_OBJECTS}; "
            f"printf %s {shlex.quote(listing)} | GIT_ALTERNATE_OBJECT_DIRECTORIES=$alt "
            f"git cat-file --batch > {_OBJECTS_FILE}"
        )
        made = self.box.exec_once(command, timeout=300)
        if not made.ok:
            log.debug("reading git objects failed: %s", made.output[-300:])
            return {}
        try:
            return parse_cat_file_batch(self.box.get_file(_OBJECTS_FILE))
        except (OSError, SandboxError, docker.errors.APIError) as exc:
            log.debug("reading git objects failed: %s", exc)
            return {}

    def forget(self) -> None:
        """Drop the state last read: the next read has its bytes sent again."""
        self._last = None

    def close(self) -> None:
        """Stop the watcher (it exits when its input closes)."""
        self._drop_watcher(failed=False)

    # ---------------------------------------------------------------- the chain
    def _require_base(self) -> None:
        if not self.base_commit:
            raise SandboxError(f"no git repository with a base commit at {self.workdir}")

    def _read_blob(self) -> bytes:
        self._require_base()
        last = self._last
        if last is not None and last.base != self.base_commit:
            last = None
        self._last = None  # kept again only once this read is known to be complete
        with self.lock:
            watcher, fresh = self._ensure_watcher()
            if watcher is not None and not fresh:
                try:
                    blob = watcher.snapshot(force=last is None, limit=STATE_LIMIT)
                except WatcherNeedsShell as exc:
                    log.debug("state watcher: the shell function takes this one (%s)", exc)
                except WatcherUnavailable as exc:
                    log.debug("state watcher gone: %s", exc)
                    self._drop_watcher(failed=True)
                    # A new one, before the shell function reads the state it starts from.
                    watcher, _ = self._ensure_watcher()
                else:
                    kept = self._keep(blob, last, "watcher")
                    if kept is not None:
                        return kept
        # The shell function, forced whenever a watcher runs or ran on this base: its
        # private index may be older than the state last answered.
        since = last if self.watcher_base != self.base_commit else None
        blob = self._from_session(since)
        if blob is None:
            blob = self._from_archive()
        if watcher is not None:
            with self.lock:
                try:
                    watcher.reload()
                except (WatcherNeedsShell, WatcherUnavailable) as exc:
                    log.debug("state watcher could not reload: %s", exc)
                    self._drop_watcher(failed=True)
        return blob

    def _from_session(self, last: _Read | None) -> bytes | None:
        """The state from the shell function in the session; ``last`` (the state last
        read, when it is still what the function's private index holds) spares sending
        unchanged bytes. None when the session cannot give it."""
        force = "0" if last else "1"
        args = ("snapshot", self.workdir, self.base_commit, force)
        code, out = self._call_function(args, STATE_LIMIT)
        if code == 0:
            try:
                blob = state.parse_snapshot(bytes(out.data))
            except ValueError as exc:
                log.debug("state through the session: %s", exc)
            else:
                return self._keep(blob, last, "session")
        elif code is not None:
            log.debug("state through the session failed (exit %s): %s", code, out.text()[-300:])
        return None

    def _from_archive(self) -> bytes:
        """The state from the shell function in a fresh exec that shares nothing with the
        session, the bytes copied out as an archive. Raises SandboxError."""
        command = state.standalone("snapshot", self.workdir, self.base_commit, "1")
        made = self.box.exec_once(f"{command} > {_SNAP_FILE}", timeout=300)
        if not made.ok:
            raise SandboxError(
                f"reading the repository state failed in {self.workdir}: {made.output[-500:]}"
            )
        try:
            blob = state.parse_snapshot(self.box.get_file(_SNAP_FILE))
        except ValueError as exc:
            raise SandboxError(f"reading the repository state failed: {exc}") from exc
        if blob is None:
            raise SandboxError("the state function said UNCHANGED to a forced snapshot")
        self._keep(blob, None, "archive")
        return blob

    def _call_function(
        self, args: tuple[str, ...], limit: int, upload: tuple[bytes, str] | None = None
    ) -> tuple[int | None, RawOutput]:
        """Call the state function in the session: ``(exit code, output)``, the exit code
        None when there is no usable session (callers then use a fresh exec)."""
        out = RawOutput(limit)
        if self.session is None:
            return None, out
        with self.lock:
            for attempt in range(2):
                out = RawOutput(limit)
                try:
                    result = self.session.run(
                        state.call(*args), timeout=300, out=out, upload=upload
                    )
                    if result.exit_code == state.MISSING and attempt == 0:
                        # The model unset the function, or the shell was replaced.
                        self.session.define(state.FUNCTIONS)
                        continue
                except (SandboxError, *ENGINE_ERRORS) as exc:
                    log.debug("state call through the session failed: %s", exc)
                    return None, out
                break
        if result.infra_error or result.timed_out or out.truncated:
            return None, out
        return result.exit_code, out

    def _keep(self, blob: bytes | None, last: _Read | None, source: str) -> bytes | None:
        """Take a state read ``source``'s way as the last one: its bytes, or the last
        state's when it said UNCHANGED (``blob`` None); None when it said UNCHANGED with
        no last state to return (then read another way)."""
        self.sources[source] += 1
        if blob is None:
            if last is None:
                return None
            self._last = last
            return last.blob
        self._last = _Read(self.base_commit, state_ref(blob), blob)
        return blob

    # ---------------------------------------------------------------- the watcher
    def _ensure_watcher(self) -> tuple[StateWatcher | None, bool]:
        """The running watcher, started when wanted and absent: ``(watcher, just started)``.
        Started before the shell function reads the state, so no change falls between."""
        if self.watcher is not None and self.watcher_base != self.base_commit:
            self._drop_watcher(failed=False)
        if self.watcher is not None:
            return self.watcher, False
        if (
            not self.box.cfg.state_watcher
            or self.session is None
            or self.watcher_failures >= WATCHER_TRIES
        ):
            return None, False
        try:
            self.watcher = StateWatcher(
                self.box.container,
                self.workdir,
                self.base_commit,
                f"{state.STATE_PREFIX}{self.base_commit}.index",
                self.box.cfg.env,
            )
        except WatcherUnavailable as exc:
            log.debug("no state watcher in %s: %s", self.box.short_id, exc)
            self.watcher_failures += 1
            return None, False
        self.watcher_base = self.base_commit
        return self.watcher, True

    def _drop_watcher(self, failed: bool) -> None:
        if self.watcher is not None:
            self.watcher.close()
            self.watcher = None
        self.watcher_failures += int(failed)
