"""Reading Docker's multiplexed exec stream with a deadline and a bounded memory footprint."""

from __future__ import annotations

import select
import socket
import struct
import time

_HEADER = struct.Struct(">BxxxL")


class CappedOutput:
    """Keeps the first and last ``limit // 2`` bytes of a stream and counts the rest.

    Memory stays bounded however much a command prints (``yes`` runs until its timeout).
    """

    def __init__(self, limit: int) -> None:
        self.half = max(limit // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > 2 * self.half:
                del self.tail[: len(self.tail) - self.half]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + min(len(self.tail), self.half)

    def text(self) -> str:
        """The kept output as text; undecodable bytes are replaced, never an error."""
        tail = bytes(self.tail[-self.half :]) if self.tail else b""
        head = bytes(self.head)
        if not self.truncated:
            return (head + tail).decode("utf-8", errors="replace")
        cut = self.total - len(head) - len(tail)
        marker = f"\n[... {cut} bytes of output cut ...]\n"
        return (
            head.decode("utf-8", errors="replace") + marker + tail.decode("utf-8", errors="replace")
        )


class RawOutput:
    """Keeps a stream's bytes exactly, up to ``limit``; past it, counts and drops them and
    says so (``truncated``), so a caller can take another way instead of using a cut copy."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.limit - len(self.data)
        if room > 0:
            self.data += data[:room]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.data)

    def text(self) -> str:
        return bytes(self.data).decode("utf-8", errors="replace")


class FrameReader:
    """Demultiplexes ``docker exec`` frames (8-byte header: stream id, size) from a socket.

    stdout and stderr payloads are returned in arrival order, as a terminal shows them.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.eof = False

    def read(self, deadline: float) -> bytes | None:
        """Payload bytes available before ``deadline`` (b"" if none yet); None at end of stream."""
        out = bytearray()
        while True:
            out += self._take_frames()
            if out:
                return bytes(out)
            if self.eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return b""
            ready, _, _ = select.select([self.sock], [], [], remaining)
            if not ready:
                return b""
            try:
                chunk = self.sock.recv(1 << 16)
            except (ConnectionResetError, OSError):
                chunk = b""
            if not chunk:
                self.eof = True
            else:
                self.buffer += chunk

    def _take_frames(self) -> bytes:
        out = bytearray()
        while len(self.buffer) >= _HEADER.size:
            _, size = _HEADER.unpack_from(self.buffer)
            end = _HEADER.size + size
            if len(self.buffer) < end:
                break
            out += self.buffer[_HEADER.size : end]
            del self.buffer[:end]
        return bytes(out)


def raw_socket(exec_socket: object) -> socket.socket:
    """The plain socket behind the SDK's exec socket wrapper."""
    sock = getattr(exec_socket, "_sock", exec_socket)
    assert isinstance(sock, socket.socket), f"unexpected exec socket {type(exec_socket)!r}"
    return sock
