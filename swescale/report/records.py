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
    """Read one trajectory file, tolerating damage: lines that are not JSON objects and
    steps out of order are noted in ``problems`` and skipped."""
    record = TrajectoryRecord(id=path.stem, task_id="", path=path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        record.problems.append(f"cannot read {path}: {exc}")
        return record
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            torn = number == len(lines)
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
    record.id = str(record.header.get("trajectory_id") or path.stem)
    record.task_id = str(record.header.get("task_id") or "")
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


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, json.JSONDecodeError):
        return None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            rows.append(value)
    return rows


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0
