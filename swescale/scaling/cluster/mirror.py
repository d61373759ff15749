"""Shipping a task's records from the node that runs it to the run directory.

A task runs on some node of the cluster against a local copy of its directory
(``<run>/<task>/``: trajectories, blobs, feedback, verdicts, ...). :class:`TaskMirror`
scans that copy and turns what changed since the last scan into :class:`FileChange` s:
new lines of an append-only trajectory record (``trajectories/*.jsonl``) travel as appends from the offset the
run directory already has, other files whole, removed files as deletes. Only complete
lines are shipped, so the run directory never holds a torn line from a live writer.
:func:`apply_changes` applies them on the driver's side.

The code that writes records stays the same on a node and on the driver: it writes files
in a task directory, and this module moves the bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from swescale.record.layout import is_append_only

# Bytes before the shipped end compared at each scan: a record rewritten in place (not
# appended to) is then shipped whole, not as a wrong tail.
_GUARD = 64


class MirrorError(ValueError):
    """A change that cannot be applied (a path outside the task directory)."""


@dataclass(frozen=True)
class FileChange:
    """One file's change, by its path relative to the task directory (POSIX form)."""

    path: str
    op: Literal["put", "append", "delete"]
    data: bytes = b""
    offset: int = 0


@dataclass
class _Shipped:
    inode: int
    size: int  # bytes the run directory holds (for appends: up to the last full line)
    mtime_ns: int
    guard: bytes = b""  # the last bytes shipped (append-only records)


def _append_only(rel: str) -> bool:
    """Trajectory records only grow (a torn last line is cut, never shipped)."""
    return is_append_only(rel)


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _visible_files(root: Path) -> dict[str, os.stat_result]:
    """Files under ``root`` except hidden ones (temporary files of atomic writes start
    with a dot and are renamed into place when complete)."""
    found: dict[str, os.stat_result] = {}
    if not root.is_dir():
        return found
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    found[_relative(root, Path(entry.path))] = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed between the listing and the stat
    return found


def _complete_lines(data: bytes) -> bytes:
    """``data`` up to and including its last newline."""
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else b""


class TaskMirror:
    """The node's side: a local task directory whose changes are shipped with ``send``.

    ``send(changes)`` delivers changes and returns the paths whose append did not fit the
    other side (it lacks the bytes before the offset); those are sent again whole. Not
    thread-safe: one thread (the syncer) calls :meth:`flush` at a time.
    """

    def __init__(self, root: Path, send: Callable[[list[FileChange]], list[str]]) -> None:
        self.root = Path(root)
        self.send = send
        self._shipped: dict[str, _Shipped] = {}

    def seed(self, files: dict[str, bytes]) -> None:
        """Write the run directory's copy of the task locally (to resume from it) and
        count it as shipped."""
        for rel, data in files.items():
            target = self.root / _safe_relative(rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            st = target.stat()
            self._shipped[rel] = _Shipped(st.st_ino, len(data), st.st_mtime_ns, data[-_GUARD:])

    def scan(self) -> list[FileChange]:
        """What changed since the last shipment (and marks it shipped)."""
        changes: list[FileChange] = []
        current = _visible_files(self.root)
        for rel in sorted(set(self._shipped) - set(current)):
            changes.append(FileChange(rel, "delete"))
            del self._shipped[rel]
        for rel, st in sorted(current.items()):
            change = self._change_of(rel, st)
            if change is not None:
                changes.append(change)
        return changes

    def _change_of(self, rel: str, st: os.stat_result) -> FileChange | None:
        shipped = self._shipped.get(rel)
        append_only = _append_only(rel)
        if (
            shipped is not None
            and shipped.inode == st.st_ino
            and shipped.mtime_ns == st.st_mtime_ns
            and shipped.size == st.st_size
        ):
            return None
        grown = shipped is not None and shipped.inode == st.st_ino and st.st_size >= shipped.size
        if append_only and grown:
            assert shipped is not None
            start = max(shipped.size - len(shipped.guard), 0)
            with open(self.root / rel, "rb") as fh:
                fh.seek(start)
                data = fh.read(st.st_size - start)
            if data[: shipped.size - start] == shipped.guard:
                tail = _complete_lines(data[shipped.size - start :])
                if not tail:
                    return None
                size = shipped.size + len(tail)
                guard = (shipped.guard + tail)[-_GUARD:]
                self._shipped[rel] = _Shipped(st.st_ino, size, st.st_mtime_ns, guard)
                return FileChange(rel, "append", tail, shipped.size)
        try:
            data = (self.root / rel).read_bytes()
        except FileNotFoundError:
            return None
        if append_only:
            data = _complete_lines(data)
        self._shipped[rel] = _Shipped(st.st_ino, len(data), st.st_mtime_ns, data[-_GUARD:])
        return FileChange(rel, "put", data)

    def flush(self) -> int:
        """Ship what changed; returns the number of changes shipped."""
        changes = self.scan()
        if not changes:
            return 0
        resend = self.send(changes)
        if resend:
            whole = []
            for rel in resend:
                path = self.root / _safe_relative(rel)
                try:
                    st = path.stat()
                    data = path.read_bytes()
                except FileNotFoundError:
                    continue  # gone meanwhile: the next scan ships the delete
                if _append_only(rel):
                    data = _complete_lines(data)
                self._shipped[rel] = _Shipped(st.st_ino, len(data), st.st_mtime_ns, data[-_GUARD:])
                whole.append(FileChange(rel, "put", data))
            if whole:
                self.send(whole)
        return len(changes)


def _safe_relative(rel: str) -> Path:
    """``rel`` as a relative path that stays inside the task directory."""
    pure = PurePosixPath(rel)
    if not rel or pure.is_absolute() or any(part in ("..", "") for part in pure.parts):
        raise MirrorError(f"refusing record path {rel!r}: not inside the task directory")
    return Path(*pure.parts)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.mirror.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def apply_changes(task_dir: Path, changes: list[FileChange]) -> list[str]:
    """Apply ``changes`` to ``task_dir`` (the driver's side); returns the paths whose
    append could not be applied because the file is shorter than the offset (they must
    be sent whole). An append at an offset before the end replaces what follows it, so
    a shipment delivered twice leaves the file as delivered once."""
    resend: list[str] = []
    for change in changes:
        path = Path(task_dir) / _safe_relative(change.path)
        if change.op == "delete":
            path.unlink(missing_ok=True)
        elif change.op == "put":
            _write_atomic(path, change.data)
        elif change.op == "append":
            size = path.stat().st_size if path.exists() else -1
            if size < change.offset:
                resend.append(change.path)
                continue
            with open(path, "r+b") as fh:
                fh.truncate(change.offset)
                fh.seek(change.offset)
                fh.write(change.data)
                fh.flush()
                os.fsync(fh.fileno())
        else:
            raise MirrorError(f"unknown change {change.op!r} for {change.path!r}")
    return resend


def read_task_files(task_dir: Path) -> dict[str, bytes]:
    """Every visible file of a task directory, by relative path (what a node resumes
    from). Append-only records are cut to their last complete line."""
    files = {}
    for rel in sorted(_visible_files(Path(task_dir))):
        data = (Path(task_dir) / rel).read_bytes()
        files[rel] = _complete_lines(data) if _append_only(rel) else data
    return files
