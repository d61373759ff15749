"""Loading tasks: the bundled mini benchmark, published SWE-bench datasets, local files.

Rows follow the SWE-bench schema (``instance_id``, ``repo``, ``base_commit``, ``patch``,
``test_patch``, ``problem_statement``, ``hints_text``, ``version``, ``FAIL_TO_PASS``,
``PASS_TO_PASS``, ``environment_setup_commit``, ...). Both the older rows and the v5 rows
(which add ``eval_script``, ``log_parser``, ``eval_type``, ``image``) are accepted; the
extra columns are kept in ``Task.extra``.

A malformed row is reported with its source and row number and skipped, so one bad row
never sinks a batch; ``DatasetConfig.strict`` turns any row error into a failure.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from swescale.swebench.config import DatasetConfig
from swescale.types import Task

log = logging.getLogger(__name__)

# Short names for the published datasets on the Hugging Face hub.
PUBLISHED_DATASETS = {
    "verified": "princeton-nlp/SWE-bench_Verified",
    "lite": "princeton-nlp/SWE-bench_Lite",
    "full": "princeton-nlp/SWE-bench",
    "swe-bench": "princeton-nlp/SWE-bench",
    "swe-bench_verified": "princeton-nlp/SWE-bench_Verified",
    "swe-bench_lite": "princeton-nlp/SWE-bench_Lite",
}
LOCAL_SUFFIXES = (".parquet", ".json", ".jsonl")
# Row columns that become Task fields; every other column goes to Task.extra.
_CORE_COLUMNS = {
    "instance_id",
    "repo",
    "base_commit",
    "problem_statement",
    "hints_text",
    "version",
    "FAIL_TO_PASS",
    "PASS_TO_PASS",
    "test_patch",
    "patch",
    "environment_setup_commit",
}
_REQUIRED_COLUMNS = ("instance_id", "repo", "base_commit", "problem_statement")


class DatasetError(ValueError):
    """A dataset that cannot be loaded at all, or a strict load with bad rows."""


class RowError(BaseModel):
    source: str
    row: int
    instance_id: str | None = None
    message: str

    def __str__(self) -> str:
        who = f" ({self.instance_id})" if self.instance_id else ""
        return f"{self.source} row {self.row}{who}: {self.message}"


class TaskSet(BaseModel):
    tasks: list[Task] = Field(default_factory=list)
    errors: list[RowError] = Field(default_factory=list)


def published_name(name: str) -> str | None:
    """The hub name for a published dataset name or short form, None if ``name`` is not
    one (``"verified"`` -> ``"princeton-nlp/SWE-bench_Verified"``)."""
    key = name.strip().lower()
    if key in PUBLISHED_DATASETS:
        return PUBLISHED_DATASETS[key]
    # Owner/name with no local file of that name: a hub id (SWE-bench/SWE-bench_Lite, ...).
    if re.fullmatch(r"[\w.-]+/[\w.-]+", name) and not name.endswith(LOCAL_SUFFIXES):
        return name
    return None


def task_from_row(row: dict[str, Any], source: str = "") -> Task:
    """One SWE-bench row as a Task; raises ValueError naming the bad field."""
    missing = [c for c in _REQUIRED_COLUMNS if not isinstance(row.get(c), str) or not row[c]]
    if missing:
        raise ValueError(f"missing or empty required field(s): {', '.join(missing)}")
    version = row.get("version")
    # Some copies store versions as floats (0.12 -> "0.12", 3.0 -> "3.0"); the specs
    # are keyed by strings.
    if version is not None and not isinstance(version, str):
        version = str(version)
    extra = {k: _plain(v) for k, v in row.items() if k not in _CORE_COLUMNS}
    try:
        return Task(
            id=row["instance_id"],
            repo=row["repo"],
            base_commit=row["base_commit"],
            problem_statement=row["problem_statement"],
            hints=row.get("hints_text") or "",
            version=version or None,
            fail_to_pass=_plain(row.get("FAIL_TO_PASS")),
            pass_to_pass=_plain(row.get("PASS_TO_PASS")),
            test_patch=row.get("test_patch") or None,
            gold_patch=row.get("patch") or None,
            environment_setup_commit=row.get("environment_setup_commit") or None,
            source=source,
            extra=extra,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(problems) from None


def _plain(value: Any) -> Any:
    """numpy arrays and scalars from parquet as plain Python values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def rows_to_taskset(rows: list[Any], source: str) -> TaskSet:
    out = TaskSet()
    seen: set[str] = set()
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            out.errors.append(
                RowError(source=source, row=index, message=f"not an object: {type(row).__name__}")
            )
            continue
        iid = row.get("instance_id") if isinstance(row.get("instance_id"), str) else None
        try:
            task = task_from_row(row, source)
        except ValueError as exc:
            out.errors.append(RowError(source=source, row=index, instance_id=iid, message=str(exc)))
            continue
        if task.id in seen:
            out.errors.append(
                RowError(source=source, row=index, instance_id=iid, message="duplicate instance_id")
            )
            continue
        seen.add(task.id)
        out.tasks.append(task)
    return out


def _read_local_rows(path: Path) -> tuple[list[Any], list[RowError]]:
    source = str(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist(), []
        except Exception as exc:  # pyarrow raises several unrelated types
            raise DatasetError(f"{path}: not a readable parquet file: {exc}") from exc
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    stripped = text.lstrip()
    if path.suffix == ".json" and stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}: not valid JSON: {exc}") from exc
        return data, []
    # JSONL (or a .json file with one object a line): a bad line is a row error.
    rows: list[Any] = []
    errors: list[RowError] = []
    for number, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            errors.append(RowError(source=source, row=number, message=f"not valid JSON: {exc.msg}"))
            rows.append(None)  # keeps row numbers aligned with lines
    # Placeholders for unparsable lines are dropped, their errors already recorded.
    return [r for r in rows if r is not None], errors


def _load_published(name: str, split: str) -> list[dict[str, Any]]:
    import datasets

    try:
        data = datasets.load_dataset(name, split=split)
    except Exception as exc:  # network, auth, unknown split: all end the load the same way
        raise DatasetError(
            f"cannot load published dataset {name!r} (split {split!r}): "
            f"{type(exc).__name__}: {exc}. Without network access, pass a local "
            f"parquet/JSON/JSONL copy of the dataset instead."
        ) from exc
    return [dict(r) for r in data]


def _load_mini() -> TaskSet:
    try:
        from swescale.swebench.mini import mini_tasks
    except ImportError as exc:
        raise DatasetError(f"the bundled mini benchmark is not available: {exc}") from exc
    return TaskSet(tasks=list(mini_tasks()))


def parse_slice(text: str) -> slice:
    """``"0:10"`` -> slice(0, 10); ``"3"`` -> slice(3, 4) (one task)."""
    parts = text.strip().split(":")
    try:
        numbers = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise DatasetError(f"slice {text!r}: expected start:stop[:step] integers") from None
    if len(numbers) == 1 and numbers[0] is not None:
        start = numbers[0]
        return slice(start, start + 1 if start != -1 else None)
    if not 2 <= len(numbers) <= 3 or numbers[2:] == [0]:
        raise DatasetError(f"slice {text!r}: expected start:stop[:step] with a nonzero step")
    return slice(*numbers)


def filter_tasks(tasks: list[Task], cfg: DatasetConfig) -> tuple[list[Task], list[str]]:
    """Instance ids, then regex, then slice. Returns the tasks and warnings (ids asked
    for that are not in the dataset)."""
    warnings: list[str] = []
    if cfg.instance_ids:
        wanted = set(cfg.instance_ids)
        known = {t.id for t in tasks}
        warnings += [
            f"instance id {i!r} is not in the dataset" for i in cfg.instance_ids if i not in known
        ]
        tasks = [t for t in tasks if t.id in wanted]
    if cfg.regex:
        try:
            pattern = re.compile(cfg.regex)
        except re.error as exc:
            raise DatasetError(f"regex {cfg.regex!r}: {exc}") from exc
        tasks = [t for t in tasks if pattern.search(t.id)]
    if cfg.slice:
        tasks = tasks[parse_slice(cfg.slice)]
    return tasks, warnings


def read_tasks(cfg: DatasetConfig) -> TaskSet:
    """Every task of the dataset that parses, filtered, and one RowError per bad row.

    Raises DatasetError only when the dataset as a whole cannot be read."""
    name = cfg.name
    if name == "mini":
        taskset = _load_mini()
    else:
        path = Path(name).expanduser()
        if path.exists():
            if path.is_dir() or path.suffix not in LOCAL_SUFFIXES:
                raise DatasetError(f"{path}: expected a .parquet, .json or .jsonl file")
            rows, errors = _read_local_rows(path)
            taskset = rows_to_taskset(rows, str(path))
            taskset.errors = errors + taskset.errors
        else:
            hub = published_name(name)
            if hub is None:
                raise DatasetError(
                    f"dataset {name!r}: no such file, and not a published dataset name "
                    f"(use 'mini', {', '.join(sorted(PUBLISHED_DATASETS))}, or owner/name)"
                )
            taskset = rows_to_taskset(_load_published(hub, cfg.split), f"{hub}:{cfg.split}")
    tasks, warnings = filter_tasks(taskset.tasks, cfg)
    for warning in warnings:
        taskset.errors.append(RowError(source=name, row=-1, message=warning))
    taskset.tasks = tasks
    return taskset


def load_tasks(cfg: DatasetConfig) -> list[Task]:
    """The tasks of ``cfg``; bad rows are logged and skipped, or (``cfg.strict``) raise
    one DatasetError listing every bad row."""
    taskset = read_tasks(cfg)
    if taskset.errors and cfg.strict:
        listing = "\n".join(f"  {e}" for e in taskset.errors)
        raise DatasetError(f"{len(taskset.errors)} bad row(s) in {cfg.name}:\n{listing}")
    for error in taskset.errors:
        log.warning("skipped: %s", error)
    return taskset.tasks
