"""A persistent bash session inside a container: one long-lived shell, commands written to
its stdin, each command's output and exit code framed by a per-session random sentinel.

Why not one ``docker exec`` per command: each exec is an HTTP round trip plus a process
start in the container (tens of milliseconds), and loses ``cd`` and ``export`` between
commands. A session keeps both, like a terminal, at about a millisecond per command.

How a command is framed, so that no command text can break the framing:
    IFS= read -r -d '' __swx_cmd <<'SENTINEL'   # the command text, literally
    ...command...
    SENTINEL
    { eval "$__swx_cmd"; } </dev/null 2>&1; { builtin printf '\\nSENTINEL %d %s\\n' $? "$PWD"; } 2>/dev/null
An unclosed quote or a syntax error becomes an ``eval`` error (exit 2), not a hung parser;
``</dev/null`` keeps commands from eating the session's own input; ``builtin printf``
frames even when a command defined a function named ``printf``, and is not traced under
a model's ``set -x``. (The first line is left as it is: after a syntax error in ``eval``
bash may not take a ``{`` that starts the next line as a reserved word.)
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import shlex
import threading
import time
from typing import TYPE_CHECKING

from swescale.sandbox.base import SandboxError
from swescale.sandbox.config import BASE_PATH as _BASE_PATH
from swescale.sandbox.stream import CappedOutput, FrameReader, RawOutput, raw_socket
from swescale.types import ExecResult

if TYPE_CHECKING:
    from docker.models.containers import Container

log = logging.getLogger(__name__)

# Sends SIGKILL to every descendant of the session's shell (not the shell itself): stops
# the command and whatever it spawned, keeps cwd and environment. Two passes: a process
# that forked between the listing and the kill is caught by the second.
_KILL_TREE = r"""
kt() { for c in $(cat /proc/$1/task/*/children 2>/dev/null); do kt "$c"; done; kill -9 "$1" 2>/dev/null; }
for pass in 1 2; do for c in $(cat /proc/{pid}/task/*/children 2>/dev/null); do kt "$c"; done; done
"""


# Undo, inside a subshell, what a model's commands may have done to the session that would
# mislead our own git and file commands run there.
CLEAN_SUBSHELL = (
    "unset -f git cp mktemp rm mkdir realpath cat command 2>/dev/null; unalias -a 2>/dev/null; "
    "unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_CONFIG_PARAMETERS "
    "GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_NAMESPACE GIT_CEILING_DIRECTORIES;"
)


class ShellSession:
    """One long-lived bash in a container. Not thread-safe: callers hold ``lock`` around
    every call (the sandbox's commands, and its state reads, which must not fall in the
    middle of a command; the state watcher's calls take it too).

    ``prelude``: shell code run at the start of every shell (the first and any restarted
    one), e.g. function definitions that internal commands call by a short name instead
    of sending their text each time (bash reads a command's text a byte at a time).
    """

    def __init__(
        self,
        container: Container,
        workdir: str,
        env: dict[str, str],
        output_limit: int,
        prelude: str = "",
        exact_env: bool = False,
    ) -> None:
        self.container = container
        self.api = container.client.api
        self.env = env
        self.exact_env = exact_env
        self.output_limit = output_limit
        self.prelude = prelude
        self.cwd = workdir
        self.token = "__SWX_" + secrets.token_hex(8)
        self._sentinel = re.compile(re.escape(self.token).encode() + rb" (-?\d+) ([^\n]*)\n")
        self._ready = re.compile(re.escape(self.token).encode() + rb"-(READY|NOTREADY)\n")
        self.pid: int | None = None
        self.lock = threading.Lock()
        self._start()

    def _start(self) -> None:
        shell = ["/bin/bash", "--noprofile", "--norc"]
        if self.exact_env:
            # Only the session's variables, not the ones the image declares.
            shell = ["env", "-i", *(f"{k}={v}" for k, v in self.env.items()), *shell]
        self.exec_id = exec_id = self.api.exec_create(
            self.container.id,
            shell,
            stdin=True,
            stdout=True,
            stderr=True,
            tty=False,
            environment=self.env,
            workdir=self.cwd,
        )["Id"]
        self._exec_socket = self.api.exec_start(exec_id, socket=True)
        self.sock = raw_socket(self._exec_socket)
        self.reader = FrameReader(self.sock)
        # The shell's own messages (traces of `set -x`, `set -v` echoes, its errors) join
        # the command output in one stream: two streams would interleave in any order.
        self._send(b"exec 2>&1\n")
        hello = self._run_framed("echo $$", timeout=30.0, kill_on_timeout=False)
        if hello.exit_code != 0 or not hello.output.strip().isdigit():
            raise SandboxError(f"shell session did not start: {hello.output[-500:]!r}")
        self.pid = int(hello.output.strip())
        if self.prelude:
            self.define(self.prelude)

    def define(self, code: str) -> None:
        """Run ``code`` (definitions) in the session's shell itself, not in a subshell."""
        done = self._run_framed(code, timeout=30.0, kill_on_timeout=True)
        if done.exit_code != 0:
            raise SandboxError(f"the session's prelude failed: {done.output[-500:]!r}")

    def run(
        self,
        command: str,
        timeout: float,
        *,
        out: CappedOutput | RawOutput | None = None,
        upload: tuple[bytes, str] | None = None,
    ) -> ExecResult:
        """Run ``command`` in the session. On timeout the command's processes are killed and
        the session stays usable; if the shell itself is stuck or gone it is restarted.

        ``out``: where the output goes (default: capped to ``output_limit`` and returned
        as text). With a :class:`RawOutput` the bytes stay exact and ``output`` is empty.
        ``upload``: ``(payload, path)``, written to ``path`` in the container before the
        command runs, in large reads (not through bash's byte-at-a-time parser); the
        command sees ``$__swx_up`` = 0 when the file was written.

        ``timeout`` in seconds. Raises SandboxError when ``command`` holds the session's
        sentinel or a replacement shell cannot start, and the engine's errors
        (:data:`swescale.sandbox.engine.ENGINE_ERRORS`) when the container is gone."""
        result = self._run_framed(
            command, timeout=timeout, kill_on_timeout=True, out=out, upload=upload
        )
        if result.infra_error and "session ended" in result.infra_error:
            # `exit`, `exec`, `set -e` + failure, or a killed shell: start a new one where
            # the old one was. Variables set in the old shell are gone; say so.
            self.restart()
            result.infra_error = None
            result.note = (
                result.note + " the shell exited; a new session was started in "
                f"{self.cwd} (shell variables were reset)"
            ).strip()
        return result

    def restart(self) -> None:
        self.close()
        self._start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise SandboxError(f"shell session lost: {exc}") from exc

    def _upload_line(self, size: int, path: str) -> str:
        """A line that opens ``path``, says READY, and then lets ``head`` read exactly
        ``size`` bytes of the shell's own input into it. READY comes only once the file is
        open and ``head`` exists, so the payload is never sent to a shell that would parse
        it as commands; NOTREADY says the upload did not happen."""
        t = self.token
        return (
            f"( PATH={_BASE_PATH}; \\exec 3>{shlex.quote(path)} || \\exit 1; "
            "\\command -v head >/dev/null || \\exit 1; "
            f"builtin printf '%s\\n' '{t}-READY'; \\exec head -c {size} >&3 ); __swx_up=$?; "
            f"[ $__swx_up = 0 ] || builtin printf '%s\\n' '{t}-NOTREADY'\n"
        )

    def _await_ready(self, out: CappedOutput | RawOutput, deadline: float) -> bool | None:
        """True on READY, False on NOTREADY, None if neither came before ``deadline``."""
        window = bytearray()
        while True:
            chunk = self.reader.read(deadline)
            if not chunk:
                out.add(bytes(window))
                return None
            window += chunk
            match = self._ready.search(window)
            if match:
                out.add(bytes(window[: match.start()]))
                # Nothing else can follow READY until the payload is sent.
                return match.group(1) == b"READY"

    def _run_framed(
        self,
        command: str,
        timeout: float,
        kill_on_timeout: bool,
        out: CappedOutput | RawOutput | None = None,
        upload: tuple[bytes, str] | None = None,
    ) -> ExecResult:
        token = self.token
        if f"\n{token}" in f"\n{command}":
            raise SandboxError("command contains the session sentinel")
        head = f"IFS= read -r -d '' __swx_cmd <<'{token}'\n{command}\n{token}\n"
        tail = (
            f'{{ eval "$__swx_cmd"; }} </dev/null 2>&1; '
            f"{{ builtin printf '\\n{token} %d %s\\n' $? \"$PWD\"; }} 2>/dev/null\n"
        )
        out = out if out is not None else CappedOutput(self.output_limit)
        start = time.monotonic()
        deadline = start + timeout
        try:
            if upload is None:
                self._send((head + tail).encode("utf-8", errors="surrogateescape"))
            else:
                payload, path = upload
                line = self._upload_line(len(payload), path)
                self._send((head + line).encode("utf-8", errors="surrogateescape"))
                ready = self._await_ready(out, deadline)
                if ready is None:
                    self._kill_shell()
                    return ExecResult(
                        output=out.text() if isinstance(out, CappedOutput) else "",
                        exit_code=None,
                        seconds=time.monotonic() - start,
                        timed_out=True,
                        infra_error="session ended (no answer to an upload)",
                    )
                self._send((payload if ready else b"") + tail.encode())
        except SandboxError as exc:
            return ExecResult(output="", exit_code=None, infra_error=f"session ended: {exc}")
        window = bytearray()  # bytes not yet known to be output rather than the sentinel
        keep = len(token) + 4096
        timed_out = False

        def text() -> str:
            return out.text() if isinstance(out, CappedOutput) else ""

        while True:
            chunk = self.reader.read(deadline)
            if chunk is None:
                out.add(bytes(window))
                return ExecResult(
                    output=text(),
                    exit_code=self._shell_exit_code(),
                    seconds=time.monotonic() - start,
                    timed_out=timed_out,
                    truncated=out.truncated,
                    infra_error="session ended (the shell exited)",
                )
            if chunk:
                window += chunk
                match = self._sentinel.search(window)
                if match:
                    body = bytes(window[: match.start()])
                    # The framing printf starts with a newline; drop exactly that one.
                    out.add(body[:-1] if body.endswith(b"\n") else body)
                    self.cwd = match.group(2).decode("utf-8", errors="replace") or self.cwd
                    code = int(match.group(1))
                    # Whatever arrived after the sentinel belongs to background jobs of this
                    # command; it is output too.
                    out.add(bytes(window[match.end() :]))
                    return ExecResult(
                        output=text(),
                        exit_code=code,
                        seconds=time.monotonic() - start,
                        timed_out=timed_out,
                        truncated=out.truncated,
                        note=f"timed out after {timeout:g}s; killed" if timed_out else "",
                    )
                if len(window) > keep:
                    out.add(bytes(window[:-keep]))
                    del window[:-keep]
                continue
            # Deadline passed with no sentinel.
            if timed_out or not kill_on_timeout:
                # The kill did not bring the shell back: it is stuck in a builtin loop or
                # cannot fork. Replace it.
                out.add(bytes(window))
                self._kill_shell()
                return ExecResult(
                    output=text(),
                    exit_code=None,
                    seconds=time.monotonic() - start,
                    timed_out=True,
                    truncated=out.truncated,
                    infra_error="session ended (killed after timeout)",
                )
            timed_out = True
            self._kill_descendants()
            deadline = time.monotonic() + 5.0

    def _shell_exit_code(self) -> int | None:
        try:
            return self.api.exec_inspect(self.exec_id).get("ExitCode")
        except Exception:  # noqa: BLE001 - the container may be gone
            return None

    def _kill_descendants(self) -> None:
        try:
            self.container.exec_run(["/bin/sh", "-c", _KILL_TREE.replace("{pid}", str(self.pid))])
        except Exception as exc:  # noqa: BLE001 - the engine may refuse under a pids limit
            log.warning("could not kill the timed-out command: %s", exc)

    def _kill_shell(self) -> None:
        try:
            self.container.exec_run(["/bin/kill", "-9", str(self.pid)])
        except Exception as exc:  # noqa: BLE001
            log.warning("could not kill the stuck shell: %s", exc)
