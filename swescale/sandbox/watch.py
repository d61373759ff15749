"""Host side of the state watcher (:mod:`swescale.sandbox.state_watcher`): one ``docker
exec`` per sandbox, opened at its first snapshot and kept, through which a snapshot is one
request and one answer, with no process started in the container.

Whatever goes wrong with it (it cannot start, it says FULL, it dies, it answers nonsense)
the sandbox takes the shell function of :mod:`swescale.sandbox.state`, which computes
the same bytes; the watcher is then reloaded from the private index that function keeps.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from swescale.sandbox import state_watcher
from swescale.sandbox.stream import FrameReader, raw_socket

if TYPE_CHECKING:
    from docker.models.containers import Container

SOURCE = Path(state_watcher.__file__).read_text(encoding="utf-8")
# The image's own interpreter, not the task's environment (which the agent may break).
PYTHON = "/usr/bin/python3"
# Bytes of the watcher's own objects in the container's /dev/shm before it empties them.
OBJECT_BUDGET = state_watcher.OBJECT_BUDGET


class WatcherUnavailable(Exception):
    """The watcher cannot serve this sandbox (see its reason); the shell function can."""


class WatcherNeedsShell(Exception):
    """This snapshot needs the shell function; reload the watcher after it."""


class StateWatcher:
    """A running state watcher. Not thread-safe: the state reader holds the session's lock
    around every call.

    Raises :class:`WatcherUnavailable` from the constructor and from any call once the
    process is gone or answered out of protocol (the caller then closes it)."""

    def __init__(
        self,
        container: Container,
        workdir: str,
        base_commit: str,
        index: str,
        env: dict[str, str],
        timeout: float = 300.0,
    ) -> None:
        self.timeout = timeout
        api = container.client.api
        end = "SWX-END-" + secrets.token_hex(8)
        command = [
            PYTHON,
            "-I",
            "-S",
            "-c",
            SOURCE,
            workdir,
            base_commit,
            index,
            end,
            str(OBJECT_BUDGET),
        ]
        try:
            exec_id = api.exec_create(
                container.id,
                command,
                stdin=True,
                stdout=True,
                stderr=False,  # a stray message must never land in the protocol
                tty=False,
                environment=env,
                workdir=workdir,
            )["Id"]
            self.sock = raw_socket(api.exec_start(exec_id, socket=True))
        except Exception as exc:  # noqa: BLE001 - any engine refusal: no watcher
            raise WatcherUnavailable(f"could not start: {exc}") from exc
        self.reader = FrameReader(self.sock)
        self.buffer = bytearray()
        line = self._line()
        if line != b"W":
            self.close()
            raise WatcherUnavailable(line.decode("utf-8", "replace")[2:] or "no answer")

    def snapshot(self, force: bool, limit: int) -> bytes | None:
        """The state's diff; None when unchanged since the last answer (never with
        ``force``). Raises WatcherNeedsShell, WatcherUnavailable."""
        self._send(f"S {int(force)} {limit}\n".encode())
        line = self._line()
        if line == b"U" and not force:
            return None
        if line.startswith(b"P "):
            return self._exact(int(line[2:]))
        return self._other(line)

    def reload(self) -> None:
        """Take the private index the shell function just updated as the state."""
        self._send(b"R\n")
        line = self._line()
        if line != b"OK":
            self._other(line)

    def close(self) -> None:
        """Stop the watcher: it exits when its input closes."""
        with contextlib.suppress(OSError):
            self.sock.close()

    def _other(self, line: bytes) -> NoReturn:
        text = line.decode("utf-8", "replace")
        if line.startswith(b"F "):
            raise WatcherNeedsShell(text[2:])
        raise WatcherUnavailable(text[2:] if line.startswith(b"E ") else f"answered {text!r}")

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise WatcherUnavailable(f"gone: {exc}") from exc

    def _fill(self, deadline: float) -> None:
        chunk = self.reader.read(deadline)
        if chunk is None:
            raise WatcherUnavailable("the process ended")
        if not chunk and time.monotonic() >= deadline:
            raise WatcherUnavailable(f"no answer in {self.timeout:g}s")
        self.buffer += chunk

    def _line(self) -> bytes:
        deadline = time.monotonic() + self.timeout
        while True:
            cut = self.buffer.find(b"\n")
            if cut >= 0:
                line = bytes(self.buffer[:cut])
                del self.buffer[: cut + 1]
                return line
            self._fill(deadline)

    def _exact(self, size: int) -> bytes:
        deadline = time.monotonic() + self.timeout
        while len(self.buffer) < size:
            self._fill(deadline)
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data
