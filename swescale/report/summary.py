"""What a run directory says, gathered into one summary: per task (trajectories,
candidates, the pick, whether it resolved, what it cost) and per run (totals, resolve
rate, pass@k by number of samples).

Reading only: a report never changes the run it describes, and a half-finished or
damaged run still gets a report of what is there.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swescale.record.io import (
    as_bool,
    as_costs,
    as_dict,
    as_float_or_none,
    as_str,
    read_json,
    read_jsonl,
    relative,
)
from swescale.record.layout import RunFiles, TaskFiles
from swescale.record.version import NewerFormatError, directory_version


@dataclass
class TaskSummary:
    task_id: str
    status: str = "pending"  # done | failed | interrupted | running | pending
    trajectories: int = 0  # records on disk
    finished: int = 0  # records with a footer
    exit_statuses: dict[str, int] = field(default_factory=dict)
    candidates: int = 0
    selected: str | None = None
    selector: str = ""
    confidence: float | None = None
    resolved: bool | None = None
    # Trajectories whose patch resolves (graded candidates only) out of finished ones.
    resolving_trajectories: int | None = None
    cost: dict[str, float] = field(default_factory=dict)
    reason: str = ""


@dataclass
class RunSummary:
    run_dir: Path
    run_id: str
    config_digest: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0
    by_kind: dict[str, dict[str, float]] = field(default_factory=dict)
    tasks: list[TaskSummary] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    comparison: Any = None
    # Damaged, missing or unreadable record parts, one line each ("<file>[:line]: what"),
    # paths inside the run directory.
    problems: list[str] = field(default_factory=list)
    # No ground truth (scaling.grade none, as `solve` runs): the resolve rate is unknown.
    ungraded: bool = False

    @property
    def graded(self) -> list[TaskSummary]:
        return [t for t in self.tasks if t.resolved is not None]

    @property
    def resolve_rate(self) -> float | None:
        graded = self.graded
        return sum(bool(t.resolved) for t in graded) / len(graded) if graded else None

    def pass_at(self) -> list[tuple[int, float]]:
        """(k, mean pass@k) over tasks whose candidates were all graded."""
        counted = [
            (t.finished, t.resolving_trajectories)
            for t in self.tasks
            if t.resolving_trajectories is not None and t.finished > 0
        ]
        if not counted:
            return []
        top = max(n for n, _ in counted)
        curve = []
        for k in range(1, top + 1):
            values = [pass_at_k(n, c, k) for n, c in counted if n >= k]
            if values:
                curve.append((k, sum(values) / len(values)))
        return curve


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _task_summary(
    root: Path,
    task_dir: Path,
    state: dict[str, Any],
    ledger_task: dict[str, Any],
    problems: list[str],
    graded_run: bool = True,
) -> TaskSummary:
    """One task from its folder: result.json, the selection records, the trajectory
    files (read tolerantly); what is damaged is added to ``problems``."""
    from swescale.record.task import read_result, read_task_record
    from swescale.record.trajectory import read_trajectory

    summary = TaskSummary(task_id=as_str(state.get("task_id")) or task_dir.name)
    result = as_dict(read_result(task_dir, problems, root))
    summary.task_id = as_str(result.get("task_id")) or summary.task_id
    summary.status = as_str(result.get("status")) or as_str(state.get("status")) or "pending"
    if summary.status == "failed":
        summary.reason = as_str(result.get("reason")) or as_str(state.get("reason"))
    files = TaskFiles(task_dir).trajectory_files()
    summary.trajectories = len(files)
    finished: list[str] = []
    for path in files:
        traj = read_trajectory(path)
        where = relative(path, root)
        problems.extend(_at(where, p) for p in traj.problems)
        if traj.footer is None:
            if summary.status == "done":
                # A finished task's trajectories all end in a footer; this one was cut.
                problems.append(f"{where}: no footer although the task is done; unfinished")
            continue
        finished.append(traj.id)
        status = traj.exit_status
        if status == "submitted" and not str(traj.footer.get("patch") or "").strip():
            status = "submitted_empty"  # it ended by submitting, but changed nothing
        summary.exit_statuses[status] = summary.exit_statuses.get(status, 0) + 1
    summary.finished = len(finished)
    record = read_task_record(task_dir, trajectories=False)
    problems.extend(relative_text(p, root) for p in record.problems)
    candidates = record.candidates
    summary.candidates = len(candidates)
    if record.selection is not None:
        summary.selected = record.selection.candidate_id
        summary.selector = record.selection.selector
        summary.confidence = record.selection.confidence
    summary.resolved = as_bool(result.get("resolved"))
    if candidates and all(c.resolved is not None for c in candidates):
        resolving = {t for c in candidates if c.resolved for t in c.trajectory_ids}
        summary.resolving_trajectories = sum(1 for t in finished if t in resolving)
    elif summary.status == "done" and not candidates and finished and graded_run:
        summary.resolving_trajectories = 0  # no candidate at all: nothing resolves
    summary.cost = as_costs(ledger_task.get("total")) or as_costs(result.get("cost"))
    return summary


def _grade_setting(config: Path) -> str:
    """``scaling.grade`` of a run's config.yaml ("" when it cannot be read)."""
    import yaml

    from swescale.config import load_yaml

    try:
        data = load_yaml(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return ""
    scaling = data.get("scaling") if isinstance(data, dict) else None
    return str(scaling.get("grade") or "") if isinstance(scaling, dict) else ""


def load_run(run_dir: str | Path, comparison: bool = True) -> RunSummary:
    """Summarize a run directory (finished, running or killed); ``comparison=False``
    skips the selector comparison (the report site computes its own). Raises
    FileNotFoundError when ``run_dir`` is not a directory; whatever else is missing or
    damaged is left out and named in ``problems``."""
    root = Path(run_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a run directory")
    problems: list[str] = []
    files = RunFiles(root)
    try:
        directory_version(root)
    except NewerFormatError as exc:
        problems.append(f"{exc}; read as far as this release understands it")
    info = read_json(files.run_json, problems, root)
    if not isinstance(info, dict):
        # A damaged run.json was named by read_json; say what its absence costs.
        what = "missing" if not files.run_json.exists() else "unusable"
        problems.append(f"run.json: {what}; the run's ledger, versions and task states are unknown")
    info = as_dict(info)
    ledger = as_dict(info.get("ledger"))
    summary = RunSummary(
        run_dir=root,
        run_id=as_str(info.get("run_id")) or root.name,
        config_digest=as_str(info.get("config_digest")),
        versions={str(k): as_str(v) for k, v in as_dict(info.get("versions")).items()},
        totals=as_costs(ledger.get("run")) or as_costs(info.get("totals")),
        wall_seconds=as_float_or_none(ledger.get("wall_seconds")) or 0.0,
        by_kind={str(k): as_costs(v) for k, v in as_dict(ledger.get("by_kind")).items()},
        failures=[_failure(f) for f in read_jsonl(files.failures, problems, root)],
    )
    by_dir: dict[str, tuple[Path, dict[str, Any]]] = {}
    for task_id, state in as_dict(info.get("tasks")).items():
        by_dir[_safe(task_id)] = (root / _safe(task_id), dict(as_dict(state), task_id=task_id))
    for task_files in files.task_folders():
        if task_files.root.name not in by_dir:
            by_dir[task_files.root.name] = (task_files.root, {})
    ledger_tasks = as_dict(ledger.get("by_task"))
    # A run without ground truth (`solve`, scaling.grade none) knows of no resolve at all.
    graded = _grade_setting(files.config) != "none"
    summary.ungraded = not graded
    for _name, (folder, state) in sorted(by_dir.items()):
        ledger_task = as_dict(ledger_tasks.get(as_str(state.get("task_id"))))
        summary.tasks.append(
            _task_summary(root, folder, state, ledger_task, problems, graded_run=graded)
        )
    evaluations = read_json(files.evaluations, problems, root)
    if evaluations is not None and not isinstance(evaluations, list):
        problems.append("evaluations.json: not a JSON list; skipped")
    summary.problems = problems
    summary.comparison = _comparison(root) if comparison else None
    return summary


def _failure(row: dict[str, Any]) -> dict[str, str]:
    """A failures.jsonl line with its fields as text (time, task_id, stage and reason
    always there, empty when missing)."""
    known = ("time", "task_id", "stage", "reason")
    return {str(k): as_str(v) for k, v in row.items()} | {k: as_str(row.get(k)) for k in known}


def _at(where: str, problem: str) -> str:
    """A trajectory's problem with its file: "line 4: what" becomes "file:4: what"."""
    found = re.match(r"line (\d+): ", problem)
    return f"{where}:{found[1]}: {problem[found.end() :]}" if found else f"{where}: {problem}"


def relative_text(text: str, root: Path) -> str:
    """A message naming files under ``root`` by their path inside it."""
    prefix = str(root).rstrip("/") + "/"
    return text.replace(prefix, "")


def _safe(task_id: str) -> str:
    from swescale.record.run import safe_name

    return safe_name(task_id)


def _comparison(root: Path) -> Any:
    """The comparison of selectors on this run (swescale.selection.metrics), when the run
    has labelled candidates; None otherwise."""
    try:
        from swescale.selection.metrics import selection_comparison
    except ImportError:
        return None
    try:
        rows = selection_comparison(root)
    except Exception as exc:  # noqa: BLE001 - a report shows what it can
        return [{"selector": "error", "note": f"{type(exc).__name__}: {exc}"}]
    return rows or None
