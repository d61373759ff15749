"""What a run directory says, gathered into one summary: per task (trajectories,
candidates, the pick, whether it resolved, what it cost) and per run (totals, resolve
rate, pass@k by number of samples).

Reading only: a report never changes the run it describes, and a half-finished or
damaged run still gets a report of what is there.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
    failures: list[dict[str, Any]] = field(default_factory=list)
    comparison: Any = None

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


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
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


def _trajectory_footers(folder: Path) -> tuple[int, list[dict[str, Any]]]:
    """(records on disk, footers of finished ones); read line by line, tolerant."""
    files = sorted(folder.glob("*.jsonl")) if folder.exists() else []
    footers = []
    for path in files:
        for row in _read_jsonl(path):
            if row.get("type") == "footer":
                row = dict(row, trajectory_id=path.stem)
                footers.append(row)
    return len(files), footers


def _task_summary(
    task_dir: Path, state: dict[str, Any], ledger_task: dict[str, Any]
) -> TaskSummary:
    summary = TaskSummary(task_id=state.get("task_id") or task_dir.name)
    result = _read_json(task_dir / "result.json") or {}
    summary.task_id = result.get("task_id", summary.task_id)
    summary.status = result.get("status") or state.get("status") or "pending"
    summary.reason = state.get("reason", "") if summary.status == "failed" else ""
    summary.trajectories, footers = _trajectory_footers(task_dir / "trajectories")
    summary.finished = len(footers)
    for footer in footers:
        status = str(footer.get("exit_status") or "?")
        summary.exit_statuses[status] = summary.exit_statuses.get(status, 0) + 1
    candidates = _read_jsonl(task_dir / "candidates.jsonl")
    summary.candidates = len(candidates)
    selection = _read_json(task_dir / "selection.json") or {}
    summary.selected = selection.get("candidate_id")
    summary.selector = selection.get("selector", "")
    summary.confidence = selection.get("confidence")
    summary.resolved = result.get("resolved")
    if candidates and all(c.get("resolved") is not None for c in candidates):
        resolving = {
            t for c in candidates if c.get("resolved") for t in c.get("trajectory_ids", [])
        }
        summary.resolving_trajectories = sum(1 for f in footers if f["trajectory_id"] in resolving)
    elif summary.status == "done" and not candidates and footers:
        summary.resolving_trajectories = 0  # no candidate at all: nothing resolves
    summary.cost = dict((ledger_task or {}).get("total") or result.get("cost") or {})
    return summary


def load_run(run_dir: str | Path, comparison: bool = True) -> RunSummary:
    """Summarize a run directory (finished, running or killed); ``comparison=False``
    skips the selector comparison (the report site computes its own)."""
    root = Path(run_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a run directory")
    info = _read_json(root / "run.json") or {}
    ledger = info.get("ledger") or {}
    summary = RunSummary(
        run_dir=root,
        run_id=info.get("run_id", root.name),
        config_digest=info.get("config_digest", ""),
        versions=info.get("versions") or {},
        totals=dict(ledger.get("run") or info.get("totals") or {}),
        wall_seconds=float(ledger.get("wall_seconds") or 0.0),
        by_kind=ledger.get("by_kind") or {},
        failures=_read_jsonl(root / "failures.jsonl"),
    )
    states: dict[str, dict[str, Any]] = info.get("tasks") or {}
    by_dir: dict[str, tuple[Path, dict[str, Any]]] = {}
    for task_id, state in states.items():
        by_dir[_safe(task_id)] = (root / _safe(task_id), dict(state, task_id=task_id))
    for child in sorted(root.iterdir()):
        if (
            child.is_dir()
            and child.name not in by_dir
            and child.name != "report"  # the report site, not a task
            and ((child / "trajectories").exists() or (child / "result.json").exists())
        ):
            by_dir[child.name] = (child, {})
    ledger_tasks = ledger.get("by_task") or {}
    for _name, (folder, state) in sorted(by_dir.items()):
        task = _task_summary(folder, state, ledger_tasks.get(state.get("task_id", ""), {}))
        summary.tasks.append(task)
    summary.comparison = _comparison(root) if comparison else None
    return summary


def _safe(task_id: str) -> str:
    from swescale.scaling.rundir import safe_name

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
