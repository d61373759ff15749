"""A sandbox: one disposable container with the repository at ``workdir``, a persistent
shell session, binary-safe file access, and repository snapshots.

Isolation by default: no network, memory/pids/CPU limits, every capability dropped,
no-new-privileges, no host mounts, no Docker socket, and an environment made only of the
config's allow-list (nothing from the host).
"""

from __future__ import annotations

import hashlib
import io
import logging
import posixpath
import shlex
import tarfile
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import docker.errors

from swescale.patches.exact import exact_patch, needed_objects, parse_cat_file_batch
from swescale.sandbox import state
from swescale.sandbox.base import ImageNotFound, PathRefused, SandboxError
from swescale.sandbox.config import SandboxConfig
from swescale.sandbox.engine import ENGINE_ERRORS, LABEL, owner_labels
from swescale.sandbox.shell import ShellSession
from swescale.sandbox.state_watcher import SHM_OBJECTS
from swescale.sandbox.stream import CappedOutput, FrameReader, RawOutput, raw_socket
from swescale.sandbox.watch import StateWatcher, WatcherNeedsShell, WatcherUnavailable
from swescale.types import ExecResult, StateRef

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

log = logging.getLogger(__name__)

# Undo, inside a subshell, what a model's commands may have done to the session that would
# mislead our own git and file commands.
_CLEAN_SUBSHELL = (
    "unset -f git cp mktemp rm mkdir realpath cat command 2>/dev/null; unalias -a 2>/dev/null; "
    "unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_CONFIG_PARAMETERS "
    "GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_NAMESPACE GIT_CEILING_DIRECTORIES;"
)

# The state's bytes come back through the session up to this size; a larger state is
# written to a file and copied out as an archive instead.
_STATE_LIMIT = 64 << 20
_SNAP_FILE = "/tmp/.swescale-snapshot.patch"
_OBJECTS_FILE = "/tmp/.swescale-objects.batch"
_WATCHER_TRIES = 3


class DockerSandbox:
    """See the module docstring. Create with :meth:`create`; use as a context manager."""

    def __init__(
        self, client: docker.DockerClient, container: Container, cfg: SandboxConfig
    ) -> None:
        self.client = client
        self.container = container
        self.cfg = cfg
        self.workdir = cfg.workdir
        self.base_commit = ""
        self.image = container.attrs.get("Config", {}).get("Image", "")
        self._lock = threading.Lock()
        self._session: ShellSession | None = None
        self._closed = False
        self._oom_seen = 0
        # The last state read, per base commit: a snapshot whose step changed nothing
        # reuses it (the container says UNCHANGED instead of sending the bytes again).
        self._last_state: tuple[str, StateRef, bytes] | None = None
        # The resident state watcher (see swescale/sandbox/watch.py), its base commit, and
        # how many times it could not start or died: past _WATCHER_TRIES, the shell only.
        self._watcher: StateWatcher | None = None
        self._watcher_base = ""
        self._watcher_failures = 0
        # Which way each state was read: watcher, session, archive (benchmarks, tests).
        self.state_sources: Counter[str] = Counter()
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
        """Start a container from ``image`` and its shell session."""
        cfg = cfg or SandboxConfig()
        container = start_container(client, image, cfg, labels)
        sandbox = cls(client, container, cfg)
        try:
            sandbox.attach(base_commit=base_commit, start_session=start_session)
        except BaseException:
            sandbox.close()
            raise
        return sandbox

    def attach(self, base_commit: str | None = None, start_session: bool = True) -> None:
        """Start the shell session and learn the base commit (HEAD of the repository)."""
        if start_session:
            self._session = ShellSession(
                self.container,
                self.workdir,
                self.cfg.env,
                self.cfg.output_limit,
                prelude=state.FUNCTIONS,
            )
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
        self._drop_watcher(failed=False)
        if self._session:
            self._session.close()
        try:
            self.container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            # 409: someone else (an interrupt handler, the reaper) is removing it already.
            if exc.status_code != 409:
                log.warning("could not remove container %s: %s", self.container.short_id, exc)
        except Exception as exc:  # noqa: BLE001 - closing must not mask the caller's error
            log.warning("could not remove container %s: %s", self.container.short_id, exc)

    def __enter__(self) -> DockerSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def id(self) -> str:
        return self.container.id

    # ---------------------------------------------------------------- commands
    def execute(self, command: str, timeout: float | None = None) -> ExecResult:
        """Run in the persistent session; cwd and environment persist between commands."""
        if self._session is None:
            raise SandboxError("this sandbox has no shell session (start_session=False)")
        with self._lock:
            try:
                result = self._session.run(command, timeout or self.cfg.command_timeout)
            except (SandboxError, *ENGINE_ERRORS) as exc:
                # The container vanished or the engine failed: the command cannot be judged.
                return ExecResult(output="", exit_code=None, infra_error=f"sandbox failed: {exc}")
        if result.exit_code == 137 and not result.timed_out:
            kills = self._oom_kills()
            if kills > self._oom_seen:
                self._oom_seen = kills
                result.note = (
                    result.note + f" killed: out of memory (sandbox limit {self.cfg.memory})"
                ).strip()
            else:
                result.note = (result.note + " killed by SIGKILL").strip()
        return result

    def _oom_kills(self) -> int:
        """The cgroup's count of out-of-memory kills (cgroup v2 or v1)."""
        probe = self.exec_once(
            "cat /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null"
            " | awk '/^oom_kill /{print $2; exit}'",
            timeout=15,
        )
        try:
            return int(probe.output.strip() or 0)
        except ValueError:
            return 0

    def exec_once(
        self,
        command: str,
        timeout: float | None = None,
        workdir: str | None = None,
        output_limit: int | None = None,
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        """Run ``command`` with ``bash -c`` in a fresh process: no state shared with the
        session. On timeout its whole process group is killed (coreutils ``timeout``)."""
        timeout = timeout or self.cfg.command_timeout
        argv = ["timeout", "-k", "5", f"{timeout:.3f}", "bash", "-c", command]
        start = time.monotonic()
        try:
            exec_id = self.client.api.exec_create(
                self.container.id,
                argv,
                stdout=True,
                stderr=True,
                stdin=False,
                tty=False,
                environment={**self.cfg.env, **(env or {})},
                workdir=workdir or self.workdir,
            )["Id"]
            sock = self.client.api.exec_start(exec_id, socket=True)
        except ENGINE_ERRORS as exc:
            return ExecResult(output="", exit_code=None, infra_error=f"exec failed: {exc}")
        out = CappedOutput(output_limit or self.cfg.output_limit)
        reader = FrameReader(raw_socket(sock))
        # Our own deadline backs up `timeout` (which cannot fork under an exhausted pids limit).
        deadline = start + timeout + 15
        infra = None
        try:
            while (chunk := reader.read(deadline)) is not None:
                if chunk == b"" and time.monotonic() >= deadline:
                    infra = "command did not end after its timeout"
                    break
                out.add(chunk)
        finally:
            sock.close()
        try:
            code = None if infra else self.client.api.exec_inspect(exec_id).get("ExitCode")
        except ENGINE_ERRORS as exc:
            code, infra = None, f"exec failed: {exc}"
        # coreutils timeout: 124 on TERM, 137 (128+9) when it had to KILL.
        timed_out = code in (124, 137) and time.monotonic() - start >= timeout
        return ExecResult(
            output=out.text(),
            exit_code=code,
            seconds=time.monotonic() - start,
            timed_out=timed_out,
            truncated=out.truncated,
            infra_error=infra,
        )

    def _quick(self, command: str, timeout: float = 30) -> ExecResult:
        """A small internal command: through the session when there is one (about a
        millisecond), in a subshell so the session's state is kept and with whatever the
        model may have set there (git variables, shell functions) cleared. Any failure is
        retried in a fresh exec, which shares nothing with the session."""
        if self._session is not None:
            result = self.execute(f"( {_CLEAN_SUBSHELL} {command} )", timeout=timeout)
            if result.ok:
                return result
        return self.exec_once(command, timeout=timeout)

    # ---------------------------------------------------------------- files
    def resolve_path(self, path: str) -> str:
        """The absolute path in the container, refused outside the repository and the
        allowed paths. Symlinks are resolved inside the container, so a link pointing out
        of the repository does not open a way out."""
        joined = posixpath.normpath(posixpath.join(self.workdir, path))
        real = self._quick(f"realpath -m -- {shlex.quote(joined)}").output.strip() or joined
        roots = [self.workdir, *self.cfg.allowed_paths]
        for candidate in (joined, real):
            if not any(candidate == r or candidate.startswith(r.rstrip("/") + "/") for r in roots):
                raise PathRefused(f"path {path!r} resolves to {candidate!r}, outside {roots}")
        return real

    def read_file(self, path: str) -> bytes:
        try:
            return self._get_bytes(self.resolve_path(path))
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{path}: no such file in the sandbox") from exc
        except IsADirectoryError as exc:
            raise IsADirectoryError(f"{path}: not a regular file") from exc

    def write_file(self, path: str, content: str | bytes, mode: int = 0o644) -> None:
        real = self.resolve_path(path)
        data = content.encode("utf-8") if isinstance(content, str) else content
        self._put_bytes(real, data, mode)

    def _put_bytes(self, real: str, data: bytes, mode: int = 0o644) -> None:
        parent = posixpath.dirname(real)
        made = self._quick(f"mkdir -p -- {shlex.quote(parent)}")
        if not made.ok:
            raise SandboxError(f"cannot create {parent}: {made.output.strip()[-300:]}")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(posixpath.basename(real))
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        if not self.container.put_archive(parent, buf.getvalue()):
            raise SandboxError(f"writing {real} failed")

    # ---------------------------------------------------------------- repository state
    def _get_bytes(self, real: str) -> bytes:
        try:
            stream, _ = self.container.get_archive(real)
        except docker.errors.NotFound as exc:
            raise FileNotFoundError(f"{real}: no such file in the sandbox") from exc
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.next()
            if member is None or not member.isfile():
                raise IsADirectoryError(f"{real}: not a regular file")
            handle = tar.extractfile(member)
            assert handle is not None
            return handle.read()

    def _state_call(
        self, args: tuple[str, ...], limit: int, upload: tuple[bytes, str] | None = None
    ) -> tuple[int | None, RawOutput]:
        """Call the state function in the session: ``(exit code, output)``, the exit code
        None when there is no usable session (callers then use a fresh exec)."""
        out = RawOutput(limit)
        if self._session is None:
            return None, out
        with self._lock:
            for attempt in range(2):
                out = RawOutput(limit)
                try:
                    result = self._session.run(
                        state.call(*args), timeout=300, out=out, upload=upload
                    )
                    if result.exit_code == state.MISSING and attempt == 0:
                        # The model unset the function, or the shell was replaced.
                        self._session.define(state.FUNCTIONS)
                        continue
                except (SandboxError, *ENGINE_ERRORS) as exc:
                    log.debug("state call through the session failed: %s", exc)
                    return None, out
                break
        if result.infra_error or result.timed_out or out.truncated:
            return None, out
        return result.exit_code, out

    def _state_blob(self) -> bytes:
        """The state's bytes: from the state watcher when it runs (one request, no process
        started), else through the session (one round trip; nothing but a stat walk when
        nothing changed), else a fresh exec and an archive copy."""
        if not self.base_commit:
            raise SandboxError(f"no git repository with a base commit at {self.workdir}")
        last = self._last_state
        if last is not None and last[0] != self.base_commit:
            last = None
        self._last_state = None  # kept again only once this read is known to be complete
        with self._lock:
            watcher, fresh = self._ensure_watcher()
            if watcher is not None and not fresh:
                try:
                    blob = watcher.snapshot(force=last is None, limit=_STATE_LIMIT)
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
        # The shell function, forced whenever a watcher runs or ran: its private index
        # may be older than the state last answered.
        blob = self._shell_state(last if self._watcher_base != self.base_commit else None)
        if watcher is not None:
            with self._lock:
                try:
                    watcher.reload()
                except (WatcherNeedsShell, WatcherUnavailable) as exc:
                    log.debug("state watcher could not reload: %s", exc)
                    self._drop_watcher(failed=True)
        return blob

    def _ensure_watcher(self) -> tuple[StateWatcher | None, bool]:
        """The running watcher, started when wanted and absent: ``(watcher, just started)``.
        Started before the shell function reads the state, so no change falls between."""
        if self._watcher is not None and self._watcher_base != self.base_commit:
            self._drop_watcher(failed=False)
        if self._watcher is not None:
            return self._watcher, False
        if (
            not self.cfg.state_watcher
            or self._session is None
            or self._watcher_failures >= _WATCHER_TRIES
        ):
            return None, False
        try:
            self._watcher = StateWatcher(
                self.container,
                self.workdir,
                self.base_commit,
                f"{state.STATE_PREFIX}{self.base_commit}.index",
                self.cfg.env,
            )
        except WatcherUnavailable as exc:
            log.debug("no state watcher in %s: %s", self.container.short_id, exc)
            self._watcher_failures += 1
            return None, False
        self._watcher_base = self.base_commit
        return self._watcher, True

    def _drop_watcher(self, failed: bool) -> None:
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
        self._watcher_failures += int(failed)

    def _shell_state(self, last: tuple[str, StateRef, bytes] | None) -> bytes:
        """The state from the shell function; ``last`` (the state last read, when it is
        still what the function's private index holds) spares sending unchanged bytes."""
        force = "0" if last else "1"
        code, out = self._state_call(
            ("snapshot", self.workdir, self.base_commit, force), _STATE_LIMIT
        )
        if code == 0:
            try:
                blob = state.parse_snapshot(bytes(out.data))
            except ValueError as exc:
                log.debug("state through the session: %s", exc)
            else:
                kept = self._keep(blob, last, "session")
                if kept is not None:
                    return kept
        elif code is not None:
            log.debug("state through the session failed (exit %s): %s", code, out.text()[-300:])
        # No session, a failure in it (a model's PATH without git, say), or a state too
        # large for it: a fresh exec that shares nothing with the session, the bytes
        # copied out as an archive.
        command = state.standalone("snapshot", self.workdir, self.base_commit, "1")
        made = self.exec_once(f"{command} > {_SNAP_FILE}", timeout=300)
        if not made.ok:
            raise SandboxError(
                f"reading the repository state failed in {self.workdir}: {made.output[-500:]}"
            )
        try:
            blob = state.parse_snapshot(self._get_bytes(_SNAP_FILE))
        except ValueError as exc:
            raise SandboxError(f"reading the repository state failed: {exc}") from exc
        if blob is None:
            raise SandboxError("the state function said UNCHANGED to a forced snapshot")
        self._keep(blob, None, "archive")
        return blob

    def _keep(
        self, blob: bytes | None, last: tuple[str, StateRef, bytes] | None, source: str
    ) -> bytes | None:
        """Take a state read ``source``'s way (watcher, session, archive) as the last one:
        its bytes, or the last state's when it said UNCHANGED (``blob`` None); None when
        it said UNCHANGED with no last state to return (then read another way)."""
        self.state_sources[source] += 1
        if blob is None:
            if last is None:
                return None
            self._last_state = last
            return last[2]
        self._last_state = (self.base_commit, _ref(blob), blob)
        return blob

    def reference_state(self) -> bytes:
        """The state as the shell function computes it from nothing kept: a fresh exec,
        a private index of its own, nothing shared with the session or the watcher. Slow
        (it rehashes the tree); for checking the fast ways. Raises SandboxError."""
        if not self.base_commit:
            raise SandboxError(f"no git repository with a base commit at {self.workdir}")
        function = state.standalone("snapshot", self.workdir, self.base_commit, "1")
        path = "/tmp/.swescale-reference.patch"
        made = self.exec_once(
            "export TMPDIR=$(mktemp -d) && ( "
            + function.replace(state.STATE_PREFIX, "$TMPDIR/s-")
            + f' ) > {path}; code=$?; rm -rf "$TMPDIR"; exit $code',
            timeout=600,
        )
        if not made.ok:
            raise SandboxError(f"the reference state failed: {made.output[-500:]}")
        blob = state.parse_snapshot(self._get_bytes(path))
        if blob is None:
            raise SandboxError("the state function said UNCHANGED to a forced snapshot")
        return blob

    def diff(self) -> str:
        """The patch against the base commit (new and binary files included, junk
        excluded) as text that carries the files' bytes exactly: the state's bytes, with
        the files whose bytes are not UTF-8 written as git binary patches
        (:mod:`swescale.patches.exact`). ``patch_notes`` says afterwards when that was
        impossible for some file (its git objects unreadable)."""
        blob = self._state_blob()
        wanted = needed_objects(blob)
        result = exact_patch(blob, self._git_objects(wanted) if wanted else {})
        self.patch_notes = [result.note()] if result.inexact else []
        if result.inexact:
            log.warning("%s: %s", self.container.short_id, result.note())
        return result.text

    def _git_objects(self, oids: list[str]) -> dict[str, bytes]:
        """Blob contents by object id, read with ``git cat-file --batch`` in a fresh exec
        (the repository's objects and the state watcher's); missing ones are left out."""
        listing = "\n".join(oids) + "\n"
        command = (
            f"cd {shlex.quote(self.workdir)} && alt=; [ -d {SHM_OBJECTS} ] && alt={SHM_OBJECTS}; "
            f"printf %s {shlex.quote(listing)} | GIT_ALTERNATE_OBJECT_DIRECTORIES=$alt "
            f"git cat-file --batch > {_OBJECTS_FILE}"
        )
        made = self.exec_once(command, timeout=300)
        if not made.ok:
            log.debug("reading git objects failed: %s", made.output[-300:])
            return {}
        try:
            return parse_cat_file_batch(self._get_bytes(_OBJECTS_FILE))
        except (OSError, SandboxError, docker.errors.APIError) as exc:
            log.debug("reading git objects failed: %s", exc)
            return {}

    def snapshot(self) -> tuple[StateRef, bytes]:
        """The state as ``(StateRef, bytes)``: a binary diff against the base commit, named
        by its sha256. See :mod:`swescale.sandbox.state` for what it holds, and
        :mod:`swescale.sandbox.state_watcher` for why a snapshot after a small change
        costs a few round trips (the shell function's stat walk where it cannot run)."""
        blob = self._state_blob()
        last = self._last_state
        if last is not None and last[2] is blob:
            return last[1], blob
        return _ref(blob), blob

    def restore(self, blob: bytes) -> None:
        """Apply a snapshot onto this sandbox's base commit: one ``git apply``, so the cost
        depends on the size of the change, not on how many steps produced it. The bytes
        go through the session as they are (no archive, no encoding)."""
        if not blob:
            return
        if not self.base_commit:
            raise SandboxError(f"no git repository with a base commit at {self.workdir}")
        self._last_state = None
        path = f"{state.STATE_PREFIX}{self.base_commit}.restore"
        if self._session is not None:
            # Wrapped in a here-document that a shell would skip as data, should one ever
            # parse it; `git apply` skips lines outside the patch.
            end = f"{self._session.token}-END".encode()
            wrapped = b": <<'" + end + b"'\n" + blob + b"\n" + end + b"\n"
            args = ("restore", self.workdir, self.base_commit, path)
            code, out = self._state_call(args, self.cfg.output_limit, upload=(wrapped, path))
            if code == 0:
                return
            if code == state.APPLY_FAILED:
                raise SandboxError(f"restoring the repository state failed: {out.text()[-500:]}")
        self._put_bytes(path, blob)
        applied = self.exec_once(
            state.standalone("restore", self.workdir, self.base_commit, path), timeout=300
        )
        if not applied.ok:
            raise SandboxError(
                f"restoring the repository state failed: {applied.output.strip()[-500:]}"
            )


def _ref(blob: bytes) -> StateRef:
    return StateRef(sha256=hashlib.sha256(blob).hexdigest(), size=len(blob))


def start_container(
    client: docker.DockerClient,
    image: str,
    cfg: SandboxConfig,
    labels: dict[str, str] | None = None,
) -> Container:
    """Run a locked-down container that idles until commands arrive."""
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        try:
            client.images.pull(image)
        except docker.errors.DockerException as exc:
            raise ImageNotFound(
                f"image {image!r} is not on this engine and could not be pulled ({exc}). "
                "Build it first (`swescale images build` for base images)."
            ) from exc
    all_labels = {**owner_labels(), **{f"{LABEL}.{k}": str(v) for k, v in (labels or {}).items()}}
    kwargs: dict[str, Any] = dict(
        command=["sleep", "infinity"],
        detach=True,
        init=True,  # reaps zombies left by killed commands
        labels=all_labels,
        environment=cfg.env,
        working_dir=cfg.workdir,
        mem_limit=cfg.memory,
        memswap_limit=cfg.memory,  # no swap: a memory hog is killed, not slowed down
        pids_limit=cfg.pids_limit,
        nano_cpus=int(cfg.cpus * 1e9),
        network_mode=cfg.network_name or ("bridge" if cfg.network else "none"),
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        privileged=False,
        hostname="sandbox",
    )
    if cfg.network_name:
        # Names outside the network resolve to nothing at once instead of after the
        # resolver's default 5 s x 2 attempts.
        kwargs["dns_opt"] = ["timeout:1", "attempts:1"]
    try:
        return client.containers.run(image, **kwargs)
    except docker.errors.DockerException as exc:
        raise SandboxError(f"could not start a container from {image!r}: {exc}") from exc
