"""The task, candidate and trajectory pages of the report site.

A task page reads the task's trajectories once (each one's page is written and its
steps dropped), then writes a page per candidate and the task page: the pick and why
(beside the runner-up and the majority's candidate, see :mod:`swescale.report.why`),
what each selector picks (one row per selector: a ``swescale select`` result replaces
the report's own run of the same selector), the candidate pool with P(resolved) on one
scale and the cost of each candidate, the tests x candidates matrices, the trajectories.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swescale.record.blobs import read_blob_diff
from swescale.record.io import as_dict, as_list, as_str, relative
from swescale.record.layout import TaskFiles
from swescale.record.task import grade_log_path, read_result, read_task_info
from swescale.record.trajectory import TrajectoryRecord, read_trajectory
from swescale.report import matrices, pool
from swescale.report.summary import relative_text
from swescale.report.text import fold
from swescale.report.web import (
    Writer,
    candidate_url,
    inside,
    relative_link,
    task_url,
    trajectory_url,
)
from swescale.report.why import explain
from swescale.selection.calibration import Calibration
from swescale.types import Cost, Selection

# Steps drawn in a trajectory's strip on the task page (the trajectory page has them all).
STRIP_STEPS = 150


@dataclass
class TrajMeta:
    """What the task and overview pages need of a trajectory once its page is written."""

    id: str
    url: str
    round: int
    parent: tuple[str, int] | None
    steps: int
    finished: bool
    exit_status: str
    candidate_id: str | None
    cost: dict[str, float]
    problem_steps: int
    error: str
    # One cell per step for the task page's strip: (index, kind, tooltip).
    strip: list[tuple[int, str, str]] = field(default_factory=list)


def task_picks(
    record: Any, offline: dict[str, Selection], stored: dict[str, Selection]
) -> list[pool.Pick]:
    """What each selector picks on this task, one row per selector: the run's own pick;
    then every offline selector, its ``swescale select`` result when there is one (it
    replaces the report's own run of it), else the report's. An offline selector that
    is the run's own and picks the same candidate is the run's row, not a second one."""
    candidates = list(record.candidates)
    picks: list[pool.Pick] = []
    own = record.selection
    if own is not None:
        picks.append(pool.pick(own, candidates, "run"))
    for name in dict.fromkeys([*offline, *stored]):
        selection, source = (
            (stored[name], "swescale select") if name in stored else (offline.get(name), "report")
        )
        if selection is None:
            continue
        if own is not None and own.selector == name and own.candidate_id == selection.candidate_id:
            picks[0].source = f"run; {source} agrees"
            if not own.decided_by:  # a record from before decisions were named
                picks[0].tied, picks[0].decided_by = list(selection.tied), selection.decided_by
            continue
        picks.append(pool.pick(selection, candidates, source))
    return picks


def task_pages(
    writer: Writer,
    folder: Path,
    task: Any,
    record: Any,
    picks: list[pool.Pick],
    grades: dict[str, Any],
    graded: list[dict[str, Any]],
    run: Path,
    calibration: Calibration | None = None,
) -> list[TrajMeta]:
    """Every page of one task; returns what the overview needs of its trajectories.
    ``calibration``: the one P(resolved) of every candidate and pick is computed with
    (the prior weights when None)."""
    from swescale.selection.selectors import pick_probability

    candidates = list(record.candidates) if record is not None else []
    selection = record.selection if record is not None else None
    own = next((p for p in picks if p.source.startswith("run")), None)
    if selection is not None and own is not None and not selection.decided_by:
        selection = selection.model_copy(update={"tied": own.tied, "decided_by": own.decided_by})
    rows = pool.candidate_rows(candidates, selection, grades)
    cand_of = {t: c.id for c in candidates for t in c.trajectory_ids}
    files = TaskFiles(folder).trajectory_files()
    trajectories = [read_trajectory(path) for path in files]
    children: dict[str, list[tuple[str, int]]] = {}
    for traj in trajectories:
        if traj.parent:
            children.setdefault(traj.parent[0], []).append((traj.id, traj.parent[1]))
    metas = []
    truth = {r.candidate.id: r.truth for r in rows}
    replays = as_dict(read_task_info(folder, "replay"))
    problems = [relative_text(p, run) for p in record.problems] if record is not None else []
    for traj in trajectories:
        problems += [f"{traj.path.name}: {p}" for p in traj.problems]
        metas.append(
            _trajectory_page(
                writer,
                run,
                folder,
                traj,
                task,
                cand_of.get(traj.id),
                truth,
                children.get(traj.id, []),
                selection.candidate_id if selection else None,
                replay_view(as_dict(replays.get(traj.id))),
            )
        )
        traj.steps = []  # the page is written: free the memory before the next one
    meta_by_id = {m.id: m for m in metas}
    for row in rows:
        row.probability = pick_probability(row.candidate, candidates, calibration)
        row.cost = _candidate_cost(row.candidate, meta_by_id)
    probability = {r.candidate.id: r.probability for r in rows}
    for p in picks:
        p.probability = probability.get(p.candidate_id) if p.candidate_id else None
    task_info = record.task.model_dump() if record is not None and record.task else {}
    for position, row in enumerate(rows):
        writer.page(
            candidate_url(task.task_id, row.candidate.id),
            "candidate.html.j2",
            task=task,
            task_info=task_info,
            row=row,
            producers=[meta_by_id.get(t) for t in row.candidate.trajectory_ids],
            producer_ids=row.candidate.trajectory_ids,
            previous=rows[position - 1].candidate.id if position > 0 else None,
            following=rows[position + 1].candidate.id if position + 1 < len(rows) else None,
            total=len(rows),
            picked_by=[p for p in picks if p.candidate_id == row.candidate.id],
            log=_grade_log(row.truth.log_path, run, folder, writer.root / "candidate"),
        )
    harvest = matrices.harvest_matrix(rows)
    writer.page(
        task_url(task.task_id),
        "task.html.j2",
        task=task,
        task_info=task_info,
        problem=fold(task_info.get("problem_statement", ""), fold_lines=14, fold_chars=1800),
        rows=rows,
        verifiers=sorted({e.verifier for r in rows for e in r.evidence}),
        selection=selection,
        picks=picks,
        own_pick=own,
        why=explain(selection, rows),
        scale=_scale(calibration),
        truth_matrix=matrices.truth_matrix(rows),
        matrices=[m for m in (harvest, *matrices.verifier_matrices(rows)) if m is not None],
        trajectories=_tree(metas),
        problems=problems,
        verifier_notes=[
            as_str(n) for n in as_list(as_dict(read_result(folder)).get("verifier_notes"))
        ],
        graded=graded,
    )
    return metas


def _scale(calibration: Calibration | None) -> str:
    """What P(resolved) on the page means, in a few words."""
    if calibration is None or not calibration.fitted_on:
        return "prior weights: a ranking of the evidence, not fit on graded candidates"
    return (
        f"fit on {calibration.fitted_on} graded candidates of this run's other "
        "repositories (never on this task's own)"
    )


def _candidate_cost(cand: Any, metas: dict[str, TrajMeta]) -> dict[str, dict[str, float]]:
    """What the candidate cost: its producers' trajectories, and its verdicts."""
    agent = Cost()
    for tid in cand.trajectory_ids:
        meta = metas.get(tid)
        if meta is not None:
            agent = agent + Cost.model_validate(
                {k: v for k, v in meta.cost.items() if k in Cost.model_fields}
            )
    verify = Cost()
    for verdict in cand.verdicts.values():
        verify = verify + verdict.cost
    return {"agent": agent.model_dump(), "verifiers": verify.model_dump()}


@dataclass
class GradeLog:
    """A grading log as a page shows it: a link when the file is inside the run
    directory, else only its name."""

    name: str = ""
    link: str = ""


def _grade_log(path: str, run: Path, folder: Path, page_dir: Path) -> GradeLog:
    """The log a grade record names: its path as written (relative to where the run
    was started, or absolute), else the file of that name in the task's grades/."""
    if not path:
        return GradeLog()
    recorded = Path(path)
    for found in (recorded, grade_log_path(folder, recorded.stem)):
        if found.is_file() and inside(found, run):
            return GradeLog(recorded.name, relative_link(found, page_dir))
    return GradeLog(recorded.name)


def _tree(metas: list[TrajMeta]) -> list[tuple[int, TrajMeta]]:
    """Trajectories in round order with branches under their parents: (depth, meta)."""
    by_parent: dict[str | None, list[TrajMeta]] = {}
    ids = {m.id for m in metas}
    for meta in metas:
        parent = meta.parent[0] if meta.parent and meta.parent[0] in ids else None
        by_parent.setdefault(parent, []).append(meta)
    ordered: list[tuple[int, TrajMeta]] = []

    def walk(parent: str | None, depth: int) -> None:
        for meta in sorted(by_parent.get(parent, []), key=lambda m: (m.round, m.id)):
            ordered.append((depth, meta))
            walk(meta.id, depth + 1)

    walk(None, 0)
    return ordered


def _trajectory_page(
    writer: Writer,
    run: Path,
    folder: Path,
    traj: TrajectoryRecord,
    task: Any,
    candidate_id: str | None,
    truth: dict[str, pool.GradedTruth],
    children: list[tuple[str, int]],
    picked: str | None,
    replay: ReplayView | None = None,
) -> TrajMeta:
    from swescale.report.steps import step_views

    blobs = TaskFiles(folder).blobs
    inherited = traj.parent[1] if traj.parent else None
    views = step_views(traj.steps, lambda state: read_blob_diff(blobs, state), inherited)
    url = trajectory_url(traj.id)
    cost = traj.cost()
    meta = TrajMeta(
        id=traj.id,
        url=url,
        round=traj.round,
        parent=traj.parent,
        steps=len(traj.steps),
        finished=traj.finished,
        exit_status=traj.exit_status,
        candidate_id=candidate_id,
        cost=cost,
        problem_steps=sum(1 for v in views if v.problem and not v.inherited),
        error=traj.error,
        strip=[_cell(v) for v in views[:STRIP_STEPS]],
    )
    header = traj.header
    writer.page(
        url,
        "trajectory.html.j2",
        task=task,
        traj=traj,
        meta=meta,
        header=header,
        extra_header=traj.extra_header(),
        steps=views,
        children=sorted(children, key=lambda c: (c[1], c[0])),
        truth=truth.get(candidate_id) if candidate_id else None,
        patch=traj.patch,
        picked=picked,
        record_path=relative(traj.path, run),
        replay=replay,
    )
    return meta


@dataclass
class ReplayView:
    """How an imported trajectory replayed (``replay.json``), for its page: counts of
    steps by fidelity, each step's fidelity, the differing actions' lines and causes by
    step, the first divergence and the patch's fidelity."""

    counts: dict[str, int]
    step_fidelity: list[str]
    differences: dict[int, list[dict[str, Any]]]
    first_divergence: dict[str, Any] | None
    patch_fidelity: str
    seconds: float
    recorded_seconds: float | None


def replay_view(data: dict[str, Any]) -> ReplayView | None:
    """The page's view of one trajectory's replay record (None when it has none)."""
    fidelity = [as_str(f) for f in as_list(data.get("step_fidelity"))]
    if not fidelity:
        return None
    counts = {k: 0 for k in ("identical", "masked", "differs", "not_replayed")}
    for f in fidelity:
        counts[f] = counts.get(f, 0) + 1
    differences: dict[int, list[dict[str, Any]]] = {}
    for action in as_list(data.get("actions")):
        action = as_dict(action)
        if action.get("fidelity") == "differs" and isinstance(action.get("step"), int):
            differences.setdefault(action["step"], []).append(action)
    first = data.get("first_divergence")
    recorded = data.get("recorded_seconds")
    return ReplayView(
        counts=counts,
        step_fidelity=fidelity,
        differences=differences,
        first_divergence=as_dict(first) if first else None,
        patch_fidelity=as_str(data.get("patch_fidelity")) or "not_derived",
        seconds=float(data.get("seconds") or 0.0),
        recorded_seconds=float(recorded) if isinstance(recorded, int | float) else None,
    )


def _cell(view: Any) -> tuple[int, str, str]:
    """A step as one cell of a trajectory strip: its kind (a colour) and a tooltip."""
    kind = (
        "inherited"
        if view.inherited
        else "fail"
        if view.problem
        else "edit"
        if view.changed
        else "ok"
    )
    first = view.calls[0] if view.calls else None
    action = (
        f"{first.tool}: {first.command.splitlines()[0][:80]}"
        if first and first.command.strip()
        else (first.tool if first else "no tool call")
    )
    note = (
        f" — {view.problem[:80]}"
        if view.problem
        else " — changed the repository"
        if view.changed
        else ""
    )
    return view.index, kind, f"step {view.index}: {action}{note}"
