"""One task folder of a run directory: the task, its candidates, verdicts, labels,
selections, grades and result (paths in :mod:`swescale.record.layout`).

Writers replace a file atomically. Readers never raise on damaged content: a bad line or
file is skipped and reported in ``problems``, so one broken task never stops an offline
comparison over a whole run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from swescale.record.io import read_json, write_json_atomic, write_text_atomic
from swescale.record.layout import RunFiles, TaskFiles
from swescale.types import Candidate, Cost, Selection, Task, Verdict

M = TypeVar("M", bound=BaseModel)


@dataclass
class TaskRecord:
    task_id: str
    path: Path
    candidates: list[Candidate]
    selection: Selection | None = None
    task: Task | None = None
    # Samples (trajectories) and their total cost, from the trajectory footers.
    trajectory_ids: list[str] = field(default_factory=list)
    cost: Cost = field(default_factory=Cost)
    problems: list[str] = field(default_factory=list)

    def task_or_stub(self) -> Task:
        return self.task or Task(id=self.task_id, repo="", base_commit="", problem_statement="")


# -- writers -----------------------------------------------------------------------------


def write_task(task_dir: Path, task: Task) -> None:
    """task.json: the task as the run saw it, so selection can be re-run offline."""
    write_json_atomic(TaskFiles(task_dir).task_json, task.model_dump(mode="json"))


def write_candidates(task_dir: Path, candidates: list[Candidate]) -> None:
    """candidates.jsonl: one candidate a line, its verdicts left to verdicts/."""
    lines = [c.model_dump_json(exclude={"verdicts"}) for c in candidates]
    write_text_atomic(TaskFiles(task_dir).candidates, "".join(line + "\n" for line in lines))


def write_verdicts(task_dir: Path, verifier: str, verdicts: dict[str, Verdict]) -> None:
    """verdicts/<verifier>.json: {candidate id: verdict}."""
    data = {cid: v.model_dump(mode="json") for cid, v in sorted(verdicts.items())}
    write_text_atomic(TaskFiles(task_dir).verdict(verifier), json.dumps(data, indent=1))


def read_verdict_file(task_dir: Path, verifier: str) -> dict[str, Any] | None:
    """verdicts/<verifier>.json as stored (None when missing or unreadable)."""
    data = read_json(TaskFiles(task_dir).verdict(verifier))
    return data if isinstance(data, dict) else None


def write_labels(task_dir: Path, labels: dict[str, bool]) -> None:
    """labels.json: {candidate id: resolved}."""
    write_text_atomic(TaskFiles(task_dir).labels, json.dumps(labels, indent=1, sort_keys=True))


def write_selection(task_dir: Path, selection: Selection, name: str | None = None) -> Path:
    """selection.json (the run's own), or selection.<name>.json (offline re-selection)."""
    path = TaskFiles(task_dir).selection(name)
    write_text_atomic(path, selection.model_dump_json(indent=1))
    return path


def write_grades(task_dir: Path, grades: dict[str, Any]) -> None:
    """grades.json: {candidate id: grading report}."""
    write_json_atomic(TaskFiles(task_dir).grades, grades)


def read_grades(task_dir: Path, problems: list[str] | None = None) -> dict[str, Any]:
    data = read_json(TaskFiles(task_dir).grades, problems, Path(task_dir).parent)
    return data if isinstance(data, dict) else {}


def grade_log_path(task_dir: Path, candidate_id: str) -> Path:
    """Where grading keeps a candidate's test output."""
    return TaskFiles(task_dir).grade_log(candidate_id)


def write_result(task_dir: Path, result: dict[str, Any]) -> None:
    """result.json, written last: the task is done."""
    write_json_atomic(TaskFiles(task_dir).result, result)


def read_result(
    task_dir: Path, problems: list[str] | None = None, root: Path | None = None
) -> dict[str, Any] | None:
    data = read_json(TaskFiles(task_dir).result, problems, root)
    return data if isinstance(data, dict) else None


def write_task_info(task_dir: Path, kind: str, info: dict[str, Any]) -> None:
    """A task's side record: ``ensemble`` (ensemble.json) or ``replay`` (replay.json)."""
    files = TaskFiles(task_dir)
    path = {"ensemble": files.ensemble, "replay": files.replay}[kind]
    write_text_atomic(path, json.dumps(info, indent=1))


def read_task_info(task_dir: Path, kind: str) -> dict[str, Any]:
    files = TaskFiles(task_dir)
    path = {"ensemble": files.ensemble, "replay": files.replay}[kind]
    data = read_json(path)
    return data if isinstance(data, dict) else {}


def read_task(task_dir: Path, problems: list[str] | None = None) -> Task | None:
    return _read_model(
        TaskFiles(task_dir).task_json, Task, problems if problems is not None else []
    )


def read_selection(task_dir: Path, name: str | None = None) -> Selection | None:
    return _read_model(TaskFiles(task_dir).selection(name), Selection, [])


def read_offline_selections(task_dir: Path) -> dict[str, Selection]:
    """The selections ``swescale select`` stored (``selection.<name>.json``), by name;
    unreadable ones are left out."""
    found: dict[str, Selection] = {}
    for path in sorted(Path(task_dir).glob("selection.*.json")):
        selection = _read_model(path, Selection, [])
        if selection is not None:
            found[path.name.removeprefix("selection.").removesuffix(".json")] = selection
    return found


# -- readers -----------------------------------------------------------------------------


def read_task_record(task_dir: Path, trajectories: bool = True) -> TaskRecord:
    """Candidates with their verdicts and labels attached, the run's selection, costs.
    ``trajectories=False`` skips reading the trajectory files (ids and cost stay empty),
    for a caller that reads them itself."""
    task_dir = Path(task_dir)
    record = TaskRecord(task_id=task_dir.name, path=task_dir, candidates=[])
    files = TaskFiles(task_dir)
    cand_file = files.candidates
    if cand_file.exists():
        text = cand_file.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record.candidates.append(Candidate.model_validate_json(line))
            except ValidationError as exc:
                record.problems.append(f"{cand_file}:{number}: {exc.errors()[0]['msg']}")
    if record.candidates:
        record.task_id = record.candidates[0].task_id
    by_id = {c.id: c for c in record.candidates}
    for file in files.verdict_files():
        data = _read_json(file, record.problems)
        for cid, raw in (data or {}).items() if isinstance(data, dict) else []:
            if cid not in by_id:
                record.problems.append(f"{file}: verdict for unknown candidate {cid}")
                continue
            try:
                by_id[cid].verdicts[file.stem] = Verdict.model_validate(raw)
            except ValidationError as exc:
                record.problems.append(f"{file} {cid}: {exc.errors()[0]['msg']}")
    labels = _read_json(files.labels, record.problems) if files.labels.exists() else {}
    if labels is not None and not isinstance(labels, dict):
        record.problems.append(f"{files.labels}: not a JSON object; skipped")
    for cid, resolved in labels.items() if isinstance(labels, dict) else []:
        if cid in by_id and isinstance(resolved, bool):
            by_id[cid].resolved = resolved
    record.selection = _read_model(files.selection(), Selection, record.problems)
    record.task = _read_model(files.task_json, Task, record.problems)
    if trajectories:
        _read_trajectory_costs(record)
    return record


def _read_model(path: Path, model: type[M], problems: list[str]) -> M | None:
    """The pydantic ``model`` in a JSON file; None (and a problem) when it is damaged."""
    if not path.exists():
        return None
    try:
        # Bytes that are not UTF-8 are replaced: the model's own validation then decides.
        return model.model_validate_json(path.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        problems.append(f"{path}: {exc}")
    except ValidationError as exc:
        problems.append(f"{path}: {exc.errors()[0]['msg']}")
    return None


def _read_json(path: Path, problems: list[str]) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, json.JSONDecodeError) as exc:
        problems.append(f"{path}: {exc}")
        return None


def _read_trajectory_costs(record: TaskRecord) -> None:
    """Sum tokens and seconds over the trajectory files (the samples of this task)."""
    from swescale.record.trajectory import RecordError, load_trajectory

    for file in TaskFiles(record.path).trajectory_files():
        try:
            traj = load_trajectory(file)
        except RecordError as exc:
            record.problems.append(str(exc))
            continue
        record.trajectory_ids.append(str(traj.header.get("trajectory_id") or file.stem))
        footer = traj.footer or {}
        totals = footer.get("totals") if isinstance(footer.get("totals"), dict) else {}
        step_in = sum(s.tokens_in for s in traj.steps)
        step_out = sum(s.tokens_out for s in traj.steps)
        record.cost = record.cost + Cost(
            tokens_in=int(totals.get("tokens_in", step_in) or 0),
            tokens_out=int(totals.get("tokens_out", step_out) or 0),
            dollars=float(totals.get("dollars", 0.0) or 0.0),
            model_seconds=float(totals.get("model_seconds", 0.0) or 0.0),
            sandbox_seconds=float(totals.get("sandbox_seconds", 0.0) or 0.0),
        )


def task_dirs(run_dir: Path) -> list[Path]:
    """Task folders of a run: those holding candidates, trajectories or a result."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    return [files.root for files in RunFiles(run_dir).task_folders()]
