"""The trajectory record: one JSON line per step, appended as the trajectory runs.

Line 1 is the header (``type: header``), then one ``type: step`` line per step (a
``Step`` with ``state`` naming the repository state after it), then a ``type: footer``
line once the trajectory ends. Every line is flushed and fsynced, so a crash loses at
most the line being written; :func:`load_trajectory` ignores such a torn last line and a
recorder reopened on the file cuts it off before appending.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from swescale.types import Step, Trajectory

HEADER_FIELDS = (
    "trajectory_id",
    "task_id",
    "parent",
    "round",
    "seed",
    "config_hash",
    "model",
    "image",
    "image_digest",
    "temperature",
    "prompt_variant",
    "started_at",
)


class RecordError(ValueError):
    """A trajectory file that cannot be read or appended to; says which and why."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def make_header(trajectory_id: str, task_id: str, **fields: Any) -> dict[str, Any]:
    """A header with every field of the record present (unknown ones None)."""
    header: dict[str, Any] = dict.fromkeys(HEADER_FIELDS)
    header.update(round=0, seed=0, started_at=utc_now())
    header.update(fields, trajectory_id=trajectory_id, task_id=task_id)
    if header.get("parent") is not None:
        parent = list(header["parent"])
        if len(parent) != 2:
            raise RecordError(f"parent must be [trajectory_id, step], got {header['parent']!r}")
        header["parent"] = [str(parent[0]), int(parent[1])]
    header["type"] = "header"
    return header


@dataclass
class TrajectoryFile:
    header: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    footer: dict[str, Any] | None = None
    # True when the last line was cut off mid-write (and ignored).
    torn: bool = False
    # Byte length of the valid prefix: where an appender continues.
    valid_bytes: int = 0

    @property
    def finished(self) -> bool:
        return self.footer is not None

    def to_trajectory(self) -> Trajectory:
        parent = self.header.get("parent")
        return Trajectory(
            id=str(self.header.get("trajectory_id", "")),
            task_id=str(self.header.get("task_id", "")),
            parent=(str(parent[0]), int(parent[1])) if parent else None,
            round=int(self.header.get("round") or 0),
            seed=int(self.header.get("seed") or 0),
            steps=self.steps,
            exit_status=(self.footer or {}).get("exit_status", ""),
            patch=(self.footer or {}).get("patch", ""),
        )


def load_trajectory(path: str | Path) -> TrajectoryFile:
    """Read a trajectory record. A torn last line is ignored; damage elsewhere is an error."""
    file = Path(path)
    try:
        data = file.read_bytes().removeprefix(b"\xef\xbb\xbf")
    except OSError as exc:
        raise RecordError(f"cannot read trajectory {file}: {exc}") from exc
    lines = data.split(b"\n")
    result: TrajectoryFile | None = None
    offset = 0
    for number, raw in enumerate(lines, start=1):
        is_last = number == len(lines) or (number == len(lines) - 1 and lines[-1] == b"")
        line_end = offset + len(raw) + (1 if number < len(lines) else 0)
        if not raw.strip():
            offset = line_end
            continue
        try:
            entry = json.loads(raw)
            if not isinstance(entry, dict):
                raise ValueError("not a JSON object")
            # A line without its newline was cut off even if it happens to parse.
            if number == len(lines) and raw:
                raise ValueError("no line end")
        except (ValueError, UnicodeDecodeError) as exc:
            if is_last and result is not None:
                result.torn = True
                break
            raise RecordError(f"{file}:{number}: damaged line ({exc})") from exc
        kind = entry.get("type")
        if result is None:
            if kind != "header":
                raise RecordError(f"{file}:{number}: first line must be the header, got {kind!r}")
            result = TrajectoryFile(header=entry)
        elif kind == "step":
            if result.footer is not None:
                raise RecordError(f"{file}:{number}: step after the footer")
            try:
                step = Step.model_validate({k: v for k, v in entry.items() if k != "type"})
            except ValidationError as exc:
                raise RecordError(f"{file}:{number}: invalid step: {exc}") from exc
            if step.index != len(result.steps):
                raise RecordError(
                    f"{file}:{number}: step index {step.index}, expected {len(result.steps)}"
                )
            result.steps.append(step)
        elif kind == "footer":
            result.footer = entry
        else:
            raise RecordError(f"{file}:{number}: unknown line type {kind!r}")
        offset = line_end
        result.valid_bytes = offset
    if result is None:
        raise RecordError(f"{file}: empty trajectory file (no header)")
    return result


def _has_complete_line(path: Path) -> bool:
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 16):
            if b"\n" in chunk:
                return True
    return False


class TrajectoryRecorder:
    """Appends a trajectory's lines to ``path``.

    A new file gets ``header`` as its first line. An existing file (a rerun after a crash)
    is continued: its torn tail, if any, is cut off, ``steps_recorded`` says how many steps
    it already holds, and ``header`` must name the same trajectory.
    """

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = Path(path)
        if "trajectory_id" not in header or "task_id" not in header:
            raise RecordError("a trajectory header needs trajectory_id and task_id")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.steps_recorded = 0
        self.finished = False
        # A file without one complete line died while writing its header: start over.
        if self.path.exists() and _has_complete_line(self.path):
            existing = load_trajectory(self.path)
            if existing.header.get("trajectory_id") != header["trajectory_id"]:
                raise RecordError(
                    f"{self.path} holds trajectory {existing.header.get('trajectory_id')!r}, "
                    f"not {header['trajectory_id']!r}"
                )
            self.header = existing.header
            self.steps_recorded = len(existing.steps)
            self.finished = existing.finished
            self._file = open(self.path, "r+b")  # noqa: SIM115 - closed in close()
            self._file.truncate(existing.valid_bytes)
            self._file.seek(existing.valid_bytes)
        else:
            self.header = make_header(**header) if header.get("type") != "header" else dict(header)
            self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
            self._append(self.header)

    def _append(self, entry: dict[str, Any]) -> None:
        self._file.write(json.dumps(entry, ensure_ascii=False, default=str).encode() + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def write_step(self, step: Step) -> None:
        if self.finished:
            raise RecordError(f"{self.path}: trajectory already has a footer")
        if step.index != self.steps_recorded:
            raise RecordError(
                f"{self.path}: step index {step.index}, expected {self.steps_recorded}"
            )
        data = step.model_dump(mode="json")
        if data.get("chat") is None:
            data.pop("chat", None)  # swescale's own steps render their chat from the record
        self._append({"type": "step", **data})
        self.steps_recorded += 1

    def write_footer(
        self,
        exit_status: str,
        patch: str,
        totals: dict[str, Any],
        patch_notes: list[str] | None = None,
    ) -> None:
        """The last line. ``patch_notes``: why the patch does not carry the agent's bytes
        exactly, when it does not (written only then)."""
        if self.finished:
            raise RecordError(f"{self.path}: trajectory already has a footer")
        footer: dict[str, Any] = {
            "type": "footer",
            "exit_status": exit_status,
            "patch": patch,
            "totals": totals,
            "finished_at": utc_now(),
        }
        if patch_notes:
            footer["patch_notes"] = list(patch_notes)
        self._append(footer)
        self.finished = True

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> TrajectoryRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
