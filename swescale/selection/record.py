"""Reading and writing the selection part of a run directory.

```
runs/<run_id>/<task_id>/candidates.jsonl      one Candidate per line (verdicts may be inline)
runs/<run_id>/<task_id>/verdicts/<name>.json  {candidate_id: Verdict} per verifier
runs/<run_id>/<task_id>/labels.json           optional {candidate_id: resolved} from grading
runs/<run_id>/<task_id>/selection.json        the run's own Selection
runs/<run_id>/<task_id>/selection.<name>.json offline re-selection by ``swescale select``
```

Readers never raise on damaged content: a bad line or file is skipped and reported, so
one broken task never stops an offline comparison over a whole run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from swescale.types import Candidate, Cost, Selection, Task, Verdict

M = TypeVar("M", bound=BaseModel)

CANDIDATES = "candidates.jsonl"
VERDICTS = "verdicts"
LABELS = "labels.json"
SELECTION = "selection.json"


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


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_candidates(task_dir: Path, candidates: list[Candidate]) -> None:
    lines = [c.model_dump_json(exclude={"verdicts"}) for c in candidates]
    _write_atomic(Path(task_dir) / CANDIDATES, "".join(line + "\n" for line in lines))


def write_verdicts(task_dir: Path, verifier: str, verdicts: dict[str, Verdict]) -> None:
    data = {cid: v.model_dump(mode="json") for cid, v in sorted(verdicts.items())}
    _write_atomic(Path(task_dir) / VERDICTS / f"{verifier}.json", json.dumps(data, indent=1))


def write_labels(task_dir: Path, labels: dict[str, bool]) -> None:
    _write_atomic(Path(task_dir) / LABELS, json.dumps(labels, indent=1, sort_keys=True))


def write_selection(task_dir: Path, selection: Selection, name: str | None = None) -> Path:
    path = Path(task_dir) / (f"selection.{name}.json" if name else SELECTION)
    _write_atomic(path, selection.model_dump_json(indent=1))
    return path


def read_task_record(task_dir: Path, trajectories: bool = True) -> TaskRecord:
    """Candidates with their verdicts and labels attached, the run's selection, costs.
    ``trajectories=False`` skips reading the trajectory files (ids and cost stay empty),
    for a caller that reads them itself."""
    task_dir = Path(task_dir)
    record = TaskRecord(task_id=task_dir.name, path=task_dir, candidates=[])
    cand_file = task_dir / CANDIDATES
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
    verdict_dir = task_dir / VERDICTS
    for file in sorted(verdict_dir.glob("*.json")) if verdict_dir.exists() else []:
        data = _read_json(file, record.problems)
        for cid, raw in (data or {}).items() if isinstance(data, dict) else []:
            if cid not in by_id:
                record.problems.append(f"{file}: verdict for unknown candidate {cid}")
                continue
            try:
                by_id[cid].verdicts[file.stem] = Verdict.model_validate(raw)
            except ValidationError as exc:
                record.problems.append(f"{file} {cid}: {exc.errors()[0]['msg']}")
    labels = _read_json(task_dir / LABELS, record.problems) if (task_dir / LABELS).exists() else {}
    if labels is not None and not isinstance(labels, dict):
        record.problems.append(f"{task_dir / LABELS}: not a JSON object; skipped")
    for cid, resolved in labels.items() if isinstance(labels, dict) else []:
        if cid in by_id and isinstance(resolved, bool):
            by_id[cid].resolved = resolved
    record.selection = _read_model(task_dir / SELECTION, Selection, record.problems)
    record.task = _read_model(task_dir / "task.json", Task, record.problems)
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
    from swescale.agent.record import RecordError, load_trajectory

    folder = record.path / "trajectories"
    for file in sorted(folder.glob("*.jsonl")) if folder.exists() else []:
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
    """Task folders of a run: those holding candidates or trajectories."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    return [
        child
        for child in sorted(run_dir.iterdir())
        if child.is_dir() and ((child / CANDIDATES).exists() or (child / "trajectories").exists())
    ]
