"""Tolerant readers of the run directory for the report site.

The site shows whatever a run left, finished or not: a trajectory record is read line by
line (a damaged line is skipped and noted, never fatal), unknown header and footer fields
are kept and shown as they are, missing ones are empty. Steps stay plain dicts so a record
written by a newer version (extra fields) renders without a schema change here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Header fields with their own place on a trajectory page; every other field is listed
# as recorded.
KNOWN_HEADER = (
    "type",
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
        return _int(self.header.get("round"))

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
        steps_in = sum(_int(s.get("tokens_in")) for s in self.steps)
        steps_out = sum(_int(s.get("tokens_out")) for s in self.steps)
        return {
            "tokens_in": _int(totals.get("tokens_in", steps_in)),
            "tokens_out": _int(totals.get("tokens_out", steps_out)),
            "dollars": _float(totals.get("dollars", this_run.get("dollars"))),
            "model_seconds": _float(totals.get("model_seconds", this_run.get("model_seconds"))),
            "sandbox_seconds": _float(
                totals.get("sandbox_seconds", this_run.get("sandbox_seconds"))
            ),
            "seconds": _float(
                totals.get("seconds", sum(_float(s.get("seconds")) for s in self.steps))
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


def read_blob_diff(blobs_dir: Path, state: Any, limit: int = 400_000) -> str | None:
    """The repository diff a step's ``state`` names (a binary diff against the base
    commit, stored by sha256), as text; None when the blob is missing or unreadable.
    Tolerates other layouts: a ``<sha>.diff`` or ``<sha>.gz`` file beside it."""
    sha = state.get("sha256") if isinstance(state, dict) else None
    if not isinstance(sha, str) or not sha:
        return None
    for candidate in (blobs_dir / sha, blobs_dir / f"{sha}.diff", blobs_dir / f"{sha}.gz"):
        if not candidate.is_file():
            continue
        try:
            data = candidate.read_bytes()
        except OSError:
            return None
        if data[:2] == b"\x1f\x8b":
            import gzip

            try:
                data = gzip.decompress(data)
            except OSError:
                return None
        return data[:limit].decode("utf-8", errors="replace")
    return None


def read_json(path: Path, problems: list[str] | None = None, root: Path | None = None) -> Any:
    """The JSON value in ``path``; None when it is missing or unreadable. With
    ``problems``, an unreadable file that exists is noted there (its path relative to
    ``root``)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        _note(problems, path, root, f"cannot read: {exc}")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8", errors="replace")
        what = f"not valid UTF-8 ({exc.reason} at byte {exc.start}); read with the bytes replaced"
        _note(problems, path, root, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # The parser ran out of text: the file was cut off mid-write.
        cut = exc.msg.startswith("Unterminated string") or exc.pos >= len(text.rstrip())
        what = "cut off" if cut else "not valid JSON"
        _note(problems, path, root, f"{what} ({exc}); skipped")
    return None


def read_jsonl(
    path: Path, problems: list[str] | None = None, root: Path | None = None
) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file; other lines are skipped (and noted in
    ``problems`` when given)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        _note(problems, path, root, f"cannot read: {exc}")
        return []
    rows = []
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("utf-8", errors="replace")
            _note(problems, path, root, "not valid UTF-8; read with the bytes replaced", number)
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            what = "cut off mid-write" if number == len(lines) else "not valid JSON"
            _note(problems, path, root, f"{what}; skipped", number)
            continue
        if isinstance(value, dict):
            rows.append(value)
        else:
            _note(problems, path, root, "not a JSON object; skipped", number)
    return rows


def relative(path: Path, root: Path | None) -> str:
    """``path`` as shown in a report: relative to the run directory when inside it."""
    if root is not None:
        try:
            return Path(path).relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


def _note(
    problems: list[str] | None, path: Path, root: Path | None, what: str, line: int = 0
) -> None:
    """Add "file: what" (or "file:line: what") to ``problems`` when there is a list."""
    if problems is not None:
        where = relative(path, root) + (f":{line}" if line else "")
        problems.append(f"{where}: {what}")


# Typed readings of record fields: a field of the wrong type (a record written by another
# version, or damaged) reads as the type's empty value instead of breaking a page.


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def as_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def as_float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def as_costs(value: Any) -> dict[str, float]:
    """A cost record (tokens_in, tokens_out, dollars, model_seconds, sandbox_seconds, ...)
    with its numeric fields only."""
    return {
        str(k): float(v)
        for k, v in as_dict(value).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def _float(value: Any) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0
