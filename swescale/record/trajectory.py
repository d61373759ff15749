"""The trajectory record: one JSON line per step, appended as the trajectory runs.

Line 1 is the header (``type: header``, :data:`HEADER_FIELDS`, ``format_version``), then
one ``type: step`` line per step (a :class:`~swescale.types.Step` with ``state`` naming
the repository state after it), then a ``type: footer`` line once the trajectory ends
(``exit_status``, ``patch``, ``totals``, ``finished_at``). Every line is flushed and
fsynced, so a crash loses at most the line being written; :func:`load_trajectory`
ignores such a torn last line and a recorder reopened on the file cuts it off before
appending. Trajectories imported from other agents add ``source_format``,
``source_path``, ``agent_version``, ``prompt_messages`` and ``shell`` to the header.

Two readers: :func:`load_trajectory` (typed steps; damage before the last line is an
error: resuming and branching need every step) and :func:`read_trajectory` (for
reports: every readable line, damage noted and skipped).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from swescale.record.io import as_float, as_int, as_str
from swescale.record.models import TrajectoryFooter, TrajectoryHeader
from swescale.record.version import FORMAT_VERSION, NewerFormatError, check_version
from swescale.types import Step, Trajectory

# Header fields only trajectories imported from other agents carry.
IMPORTED_FIELDS = ("source_format", "source_path", "agent_version", "prompt_messages", "shell")
HEADER_FIELDS = (
    "format_version",
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
    """A header (:class:`TrajectoryHeader`) as written: every field of swescale's own
    trajectories present (unknown ones None), those of imported ones only when set."""
    values: dict[str, Any] = {"round": 0, "seed": 0, "started_at": utc_now(), **fields}
    values.update(trajectory_id=trajectory_id, task_id=task_id, format_version=FORMAT_VERSION)
    try:
        header = TrajectoryHeader.model_validate(values).model_dump(mode="json")
    except ValidationError as exc:
        raise RecordError(
            f"invalid trajectory header: {exc.errors()[0]['msg']} "
            f"({'.'.join(str(p) for p in exc.errors()[0]['loc'])})"
        ) from exc
    for name in IMPORTED_FIELDS:
        if header.get(name) is None:
            header.pop(name, None)
    header.pop("type")
    header["type"] = "header"  # last, as before
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
            try:
                check_version(entry.get("format_version"), file)
                TrajectoryHeader.model_validate(entry)
            except NewerFormatError as exc:
                raise RecordError(str(exc)) from exc
            except ValidationError as exc:
                raise RecordError(
                    f"{file}:{number}: invalid header: {exc.errors()[0]['msg']}"
                ) from exc
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
            try:
                TrajectoryFooter.model_validate(entry)
            except ValidationError as exc:
                raise RecordError(
                    f"{file}:{number}: invalid footer: {exc.errors()[0]['msg']}"
                ) from exc
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
        footer = TrajectoryFooter(
            exit_status=exit_status,
            patch=patch,
            totals=totals,
            finished_at=utc_now(),
            patch_notes=list(patch_notes) if patch_notes else None,
        ).model_dump(mode="json", exclude_none=True)
        self._append(footer)
        self.finished = True

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> TrajectoryRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- reading for reports: tolerant, line by line ---------------------------------------

# Header fields with their own place on a trajectory page; every other field is listed
# as recorded.
KNOWN_HEADER = (
    "type",
    "format_version",
    "trajectory_id",
    "task_id",
    "parent",
    "round",
    "seed",
    "model",
    "temperature",
    "prompt_variant",
    "started_at",
)


@dataclass
class TrajectoryRecord:
    """One trajectory file as read: header, steps (dicts), footer, and what was wrong."""

    id: str
    task_id: str
    path: Path
    header: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    footer: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.footer is not None

    @property
    def parent(self) -> tuple[str, int] | None:
        parent = self.header.get("parent")
        if isinstance(parent, list | tuple) and len(parent) == 2:
            try:
                return str(parent[0]), int(parent[1])
            except (TypeError, ValueError):
                return None
        return None

    @property
    def round(self) -> int:
        return as_int(self.header.get("round"))

    @property
    def exit_status(self) -> str:
        if self.footer is None:
            return "unfinished"
        return str(self.footer.get("exit_status") or "?")

    @property
    def patch(self) -> str:
        patch = (self.footer or {}).get("patch")
        return patch if isinstance(patch, str) else ""

    @property
    def error(self) -> str:
        totals = (self.footer or {}).get("totals")
        found = (totals or {}).get("error") if isinstance(totals, dict) else ""
        return str(found or (self.footer or {}).get("error") or "")

    def cost(self) -> dict[str, float]:
        """tokens_in, tokens_out, dollars, model_seconds, sandbox_seconds, seconds: the
        footer's totals when there is one (its ``this_run`` part for the resources a
        resumed trajectory spent again), else sums over the recorded steps."""
        totals = (self.footer or {}).get("totals")
        totals = totals if isinstance(totals, dict) else {}
        this_run = totals.get("this_run") if isinstance(totals.get("this_run"), dict) else {}
        steps_in = sum(as_int(s.get("tokens_in")) for s in self.steps)
        steps_out = sum(as_int(s.get("tokens_out")) for s in self.steps)
        return {
            "tokens_in": as_int(totals.get("tokens_in", steps_in)),
            "tokens_out": as_int(totals.get("tokens_out", steps_out)),
            "dollars": as_float(totals.get("dollars", this_run.get("dollars"))),
            "model_seconds": as_float(totals.get("model_seconds", this_run.get("model_seconds"))),
            "sandbox_seconds": as_float(
                totals.get("sandbox_seconds", this_run.get("sandbox_seconds"))
            ),
            "seconds": as_float(
                totals.get("seconds", sum(as_float(s.get("seconds")) for s in self.steps))
            ),
        }

    def extra_header(self) -> dict[str, Any]:
        return {k: v for k, v in self.header.items() if k not in KNOWN_HEADER}


def read_trajectory(path: Path) -> TrajectoryRecord:
    """Read one trajectory file, tolerating damage: lines that are not JSON objects are
    noted in ``problems`` and skipped, a line with bytes that are not UTF-8 is noted and
    kept (those bytes replaced)."""
    record = TrajectoryRecord(id=path.stem, task_id="", path=path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        record.problems.append(f"cannot read: {exc}")
        return record
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        torn = number == len(lines)  # no line end: the write was cut off
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.decode("utf-8", errors="replace")
            record.problems.append(
                f"line {number}: not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                "read with the bytes replaced"
            )
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            record.problems.append(
                f"line {number}: {'cut off mid-write' if torn else 'not valid JSON'}; skipped"
            )
            continue
        if not isinstance(entry, dict):
            record.problems.append(f"line {number}: not a JSON object; skipped")
            continue
        kind = entry.get("type")
        if kind == "header" and not record.header:
            try:
                check_version(entry.get("format_version"), path.name)
            except NewerFormatError as exc:
                record.problems.append(f"{exc}; not read")
                return record
            record.header = entry
        elif kind == "step":
            record.steps.append(entry)
        elif kind == "footer":
            record.footer = entry
        else:
            record.problems.append(f"line {number}: unknown line type {kind!r}; skipped")
    record.id = as_str(record.header.get("trajectory_id")) or path.stem
    record.task_id = as_str(record.header.get("task_id"))
    return record
