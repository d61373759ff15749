"""The run report as a small static site in the run directory (``<run>/report/``): it
opens from ``file://`` with no server and no network (no scripts, no remote assets).

```
report/index.html                         overview: rates, plots, selectors, tasks, cost, failures
report/task/<task>.html                   the candidate pool, the selection and why, trajectories
report/candidate/<task>.<candidate>.html  one patch: producers, verdicts with evidence, truth
report/trajectory/<trajectory>.html       steps: message, tool calls, outputs, repository diff
report/eval.html                          grading results (``swescale eval``), when there are any
report/img/*.svg, report/assets/*.css
```

Built task by task (a task's trajectories are read, their pages written, and dropped), so
memory follows the largest task, not the run. Reading is tolerant throughout: a run that
is still going, was killed, or has damaged records gets a report of what is there, with
the damage listed.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from swescale.record.blobs import read_blob_diff
from swescale.record.io import as_costs, as_dict, as_list, as_str, read_json, relative
from swescale.record.layout import EVAL_FILES, SITE_DIR, RunFiles, TaskFiles, safe_name
from swescale.record.task import (
    grade_log_path,
    read_grades,
    read_offline_selections,
    read_result,
    read_task_record,
    task_dirs,
)
from swescale.record.trajectory import TrajectoryRecord, read_trajectory
from swescale.report import plots, pool
from swescale.report.stats import (
    TaskSamples,
    pass_at_k_curve,
    proportion_interval,
    selector_curve,
)
from swescale.report.summary import RunSummary, load_run, relative_text
from swescale.report.text import diffstat, fold, highlight_diff, pygments_css
from swescale.selection.config import OFFLINE_SELECTORS
from swescale.selection.metrics import oracle_rows, select_all, selector_row
from swescale.types import Cost, Selection

# Steps drawn in a trajectory's strip on the task page (the trajectory page has them all).
STRIP_STEPS = 150


@dataclass
class SiteResult:
    root: Path
    index: Path
    pages: int = 0
    trajectories: int = 0
    seconds: float = 0.0
    plots: bool = False
    problems: list[str] = field(default_factory=list)


@dataclass
class Plots:
    """The overview's plots: each an image path inside the site, "" when not drawn."""

    samples: str = ""
    selectors: str = ""
    cost: str = ""

    def __bool__(self) -> bool:
        return bool(self.samples or self.selectors or self.cost)


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


def _safe(text: str) -> str:
    return safe_name(text)


def task_url(task_id: str) -> str:
    return f"task/{_safe(task_id)}.html"


def candidate_url(task_id: str, candidate_id: str) -> str:
    return f"candidate/{_safe(task_id)}.{_safe(candidate_id)}.html"


def trajectory_url(trajectory_id: str) -> str:
    return f"trajectory/{_safe(trajectory_id)}.html"


# --------------------------------------------------------------------------- formatting


def _pct(value: Any) -> str:
    return "–" if value is None else f"{float(value):.0%}"


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{float(value):,.{digits}f}"


def _tokens(cost: dict[str, Any] | None) -> int:
    cost = cost or {}
    return int(cost.get("tokens_in", 0) or 0) + int(cost.get("tokens_out", 0) or 0)


def _cost(cost: dict[str, Any] | None) -> str:
    cost = cost or {}
    parts = [f"{_tokens(cost):,} tok"]
    if float(cost.get("dollars", 0) or 0):
        parts.append(f"${float(cost['dollars']):.4f}")
    if float(cost.get("model_seconds", 0) or 0):
        parts.append(f"{float(cost['model_seconds']):.1f} model-s")
    parts.append(f"{float(cost.get('sandbox_seconds', 0) or 0):.1f} sandbox-s")
    return " · ".join(parts)


def _yes_no(value: bool | None) -> str:
    return "–" if value is None else ("yes" if value else "no")


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("swescale.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        pct=_pct,
        num=_num,
        cost=_cost,
        tokens=_tokens,
        yes_no=_yes_no,
        short=lambda s: (s or "")[:8],
        diff=highlight_diff,
        diffstat=lambda p: diffstat(p or "").summary,
    )
    env.globals.update(
        task_url=task_url,
        candidate_url=candidate_url,
        trajectory_url=trajectory_url,
    )
    return env


class _Writer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.pages = 0

    def page(self, relative: str, template: str, **context: Any) -> None:
        depth = relative.count("/")
        context.setdefault("root", "../" * depth)
        html = _environment().get_template(template).render(**context)
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html, encoding="utf-8")
        self.pages += 1

    def asset(self, relative: str, text: str) -> None:
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


# ----------------------------------------------------------------------------- building


def build_site(run_dir: str | Path, out: str | Path | None = None) -> SiteResult:
    """Write the report site of a run directory; returns where and what it wrote.

    Raises FileNotFoundError when ``run_dir`` is not a directory. Everything else a run
    can hold (missing, partial or damaged records) ends up in the pages or in
    ``problems``, never in an exception."""
    started = time.perf_counter()
    run = Path(run_dir)
    summary = load_run(run, comparison=False)
    root = Path(out) if out is not None else RunFiles(run).site
    for sub in ("task", "candidate", "trajectory", "img"):
        shutil.rmtree(root / sub, ignore_errors=True)
    writer = _Writer(root)
    writer.asset("assets/report.css", _css())
    result = SiteResult(root=root, index=root / "index.html", plots=plots.available())
    result.problems = list(summary.problems)

    # Trajectory files are read once, task by task below, and their costs filled in then.
    records = [read_task_record(d, trajectories=False) for d in task_dirs(run)]
    offline = {name: select_all(records, name) for name in OFFLINE_SELECTORS}
    by_folder = {r.path.name: r for r in records}
    positions = {id(r): i for i, r in enumerate(records)}
    evaluations = _evaluations(run, root, {t.task_id for t in summary.tasks})
    metas: dict[str, list[TrajMeta]] = {}
    task_rows = []
    for task in summary.tasks:
        record = by_folder.get(_safe(task.task_id))
        picks = []
        if record is not None:
            position = positions[id(record)]
            if record.selection is not None:
                picks.append(pool.pick(record.selection, record.candidates, "run"))
            for selections in offline.values():
                picks.append(pool.pick(selections[position], record.candidates, "offline"))
            picks += _stored_picks(record)
        folder = run / _safe(task.task_id)
        grades = read_grades(folder)
        metas[task.task_id] = _task_pages(
            writer,
            folder,
            task,
            record,
            picks,
            grades if isinstance(grades, dict) else {},
            _graded_elsewhere(evaluations, task.task_id),
            run,
        )
        if record is not None:
            _fill_costs(record, metas[task.task_id])
        task_rows.append(_task_row(task, record, metas[task.task_id]))
    result.trajectories = sum(len(m) for m in metas.values())
    comparison = _comparison(records, offline)

    samples = _samples(records, metas, summary)
    images = _plots(writer, samples, comparison, summary, metas) if result.plots else Plots()
    if evaluations:
        writer.page("eval.html", "eval.html.j2", evaluations=evaluations, tasks=True)
    writer.page(
        "index.html",
        "overview.html.j2",
        summary=summary,
        headline=_headline(summary, comparison, metas),
        tasks=task_rows,
        comparison=comparison,
        images=images,
        plots_available=result.plots,
        exits=_exit_counts(metas),
        failures=_failures_by_stage(summary),
        evaluations=evaluations,
        problems=result.problems,
        per_resolved=_per_resolved(summary),
    )
    result.pages = writer.pages
    result.seconds = time.perf_counter() - started
    return result


def _fill_costs(record: Any, metas: list[TrajMeta]) -> None:
    """The samples and their cost, as ``read_task_record`` would have read them."""
    record.trajectory_ids = [m.id for m in metas]
    total = Cost()
    for meta in metas:
        c = meta.cost
        total = total + Cost(
            tokens_in=int(c["tokens_in"]),
            tokens_out=int(c["tokens_out"]),
            dollars=c["dollars"],
            model_seconds=c["model_seconds"],
            sandbox_seconds=c["sandbox_seconds"],
        )
    record.cost = total


def _comparison(records: list[Any], offline: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The selector table: pass@1 and pass@n, the run's own pick, each offline selector;
    with a Wilson interval on each accuracy."""
    rows = [dict(r, kind="oracle") for r in oracle_rows(records)]
    if any(r.selection is not None for r in records):
        own = [
            r.selection or Selection(task_id=r.task_id, candidate_id=None, selector="run")
            for r in records
        ]
        rows.append(dict(selector_row("run", records, own), kind="run"))
    for name, selections in offline.items():
        rows.append(dict(selector_row(name, records, selections), kind="offline"))
    for row in rows:
        interval = None
        if row["kind"] != "oracle" and row.get("labelled"):
            interval = proportion_interval(int(row["resolved"]), int(row["labelled"]))
        row["low"], row["high"] = interval if interval else (None, None)
    return rows


def _stored_picks(record: Any) -> list[pool.Pick]:
    """Offline selections a user made with ``swescale select`` (selection.<name>.json)."""
    return [
        pool.pick(selection, record.candidates, "swescale select")
        for selection in read_offline_selections(record.path).values()
    ]


def _task_pages(
    writer: _Writer,
    folder: Path,
    task: Any,
    record: Any,
    picks: list[pool.Pick],
    grades: dict[str, Any],
    graded: list[dict[str, Any]],
    run: Path,
) -> list[TrajMeta]:
    candidates = list(record.candidates) if record is not None else []
    selection = record.selection if record is not None else None
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
            )
        )
        traj.steps = []  # the page is written: free the memory before the next one
    meta_by_id = {m.id: m for m in metas}
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
        truth_matrix=pool.truth_matrix(rows),
        matrices=pool.verifier_matrices(rows),
        trajectories=_tree(metas),
        problems=problems,
        verifier_notes=[
            as_str(n)
            for n in as_list(as_dict(read_result(folder)).get("verifier_notes"))
        ],
        graded=graded,
    )
    return metas


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
        if found.is_file() and _inside(found, run):
            return GradeLog(recorded.name, _relative(found, page_dir))
    return GradeLog(recorded.name)


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


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
    writer: _Writer,
    run: Path,
    folder: Path,
    traj: TrajectoryRecord,
    task: Any,
    candidate_id: str | None,
    truth: dict[str, pool.GradedTruth],
    children: list[tuple[str, int]],
    picked: str | None,
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
    )
    return meta


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


def _task_row(task: Any, record: Any, metas: list[TrajMeta]) -> dict[str, Any]:
    candidates = list(record.candidates) if record is not None else []
    chosen = next((c for c in candidates if c.id == task.selected), None)
    labels = [c.resolved for c in candidates if c.resolved is not None]
    finished = [m for m in metas if m.finished]
    return {
        "task": task,
        "candidates": len(candidates),
        "chosen": chosen,
        "chosen_votes": len(chosen.trajectory_ids) if chosen else 0,
        "finished": len(finished),
        "trajectories": len(metas),
        "oracle": any(labels) if labels else None,
        "miss": bool(labels) and any(labels) and task.resolved is False,
        "exits": _exit_counts({task.task_id: metas}),
        "problem_steps": sum(m.problem_steps for m in metas),
    }


def _exit_counts(metas: dict[str, list[TrajMeta]]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for items in metas.values():
        for meta in items:
            counts[meta.exit_status] = counts.get(meta.exit_status, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _failures_by_stage(summary: RunSummary) -> list[dict[str, Any]]:
    stages: dict[str, list[dict[str, Any]]] = {}
    for failure in summary.failures:
        stages.setdefault(str(failure.get("stage") or "?"), []).append(failure)
    return [
        {"stage": stage, "count": len(items), "items": items}
        for stage, items in sorted(stages.items(), key=lambda kv: -len(kv[1]))
    ]


def _per_resolved(summary: RunSummary) -> dict[str, float] | None:
    resolved = sum(bool(t.resolved) for t in summary.tasks)
    if not resolved:
        return None
    return {k: float(v or 0) / resolved for k, v in summary.totals.items()}


def _headline(
    summary: RunSummary, comparison: list[dict[str, Any]], metas: dict[str, list[TrajMeta]]
) -> dict[str, Any]:
    graded = summary.graded
    resolved = sum(bool(t.resolved) for t in graded)
    oracle = [r for r in comparison if r.get("kind") == "oracle"]
    return {
        "tasks": len(summary.tasks),
        "done": sum(1 for t in summary.tasks if t.status == "done"),
        "failed": sum(1 for t in summary.tasks if t.status == "failed"),
        "graded": len(graded),
        "resolved": resolved,
        "rate": summary.resolve_rate,
        "interval": proportion_interval(resolved, len(graded)) if graded else None,
        "oracle": oracle[-1] if oracle else None,
        "trajectories": sum(len(m) for m in metas.values()),
        "candidates": sum(t.candidates for t in summary.tasks),
    }


def _samples(
    records: list[Any], metas: dict[str, list[TrajMeta]], summary: RunSummary
) -> list[TaskSamples]:
    by_folder = {_safe(t.task_id): t.task_id for t in summary.tasks}
    samples = []
    for record in records:
        if not any(c.resolved is not None for c in record.candidates):
            continue
        task_id = by_folder.get(record.path.name, record.task_id)
        finished = [m.id for m in metas.get(task_id, []) if m.finished]
        produced = [t for c in record.candidates for t in c.trajectory_ids]
        ids = finished or produced
        samples.append(TaskSamples(record.task_or_stub(), list(record.candidates), ids))
    return samples


def _plots(
    writer: _Writer,
    samples: list[TaskSamples],
    comparison: list[dict[str, Any]],
    summary: RunSummary,
    metas: dict[str, list[TrajMeta]],
) -> Plots:
    from swescale.selection.selectors import make_selector

    images = Plots()
    oracle = pass_at_k_curve(samples)
    run_selector = _run_selector(summary)
    names = [n for n in dict.fromkeys([run_selector, "majority"]) if n in OFFLINE_SELECTORS]
    curves = {
        name: selector_curve(samples, lambda name=name: make_selector(name)) for name in names
    }
    svg = plots.samples_plot(oracle, curves)
    if svg:
        writer.asset("img/resolve-vs-samples.svg", svg)
        images.samples = "img/resolve-vs-samples.svg"
    oracle_rows = [r for r in comparison if r.get("kind") == "oracle"]
    n = int(str(oracle_rows[-1]["selector"]).split("@")[1]) if oracle_rows else 0
    svg = plots.selectors_plot(
        [r for r in comparison if r.get("kind") != "oracle"],
        oracle_rows[0]["accuracy"] if oracle_rows else None,
        oracle_rows[-1]["accuracy"] if oracle_rows else None,
        n,
    )
    if svg:
        writer.asset("img/selectors.svg", svg)
        images.selectors = "img/selectors.svg"
    per_sample, label = _cost_per_sample(summary, metas, {s.task.id for s in samples})
    if per_sample is not None:
        series = {"pass@k (oracle)": [(per_sample * p.k, p.value, p.k) for p in oracle]}
        for name, curve in curves.items():
            series[name] = [(per_sample * p.k, p.value, p.k) for p in curve]
        svg = plots.cost_plot(series, label)
        if svg:
            writer.asset("img/resolve-vs-cost.svg", svg)
            images.cost = "img/resolve-vs-cost.svg"
    return images


def _run_selector(summary: RunSummary) -> str:
    names = [t.selector for t in summary.tasks if t.selector]
    return max(set(names), key=names.count) if names else "hybrid"


def _cost_per_sample(
    summary: RunSummary, metas: dict[str, list[TrajMeta]], labelled: set[str]
) -> tuple[float | None, str]:
    """Mean cost of one sample on the labelled tasks: everything a task spent except
    grading (agent turns, verification, selection), over its finished trajectories."""
    ledger = as_dict(as_dict(read_json(RunFiles(summary.run_dir).run_json)).get("ledger"))
    by_task = as_dict(ledger.get("by_task"))
    dollars = summary.totals.get("dollars", 0.0) > 0
    values = []
    for task_id in labelled:
        entry = as_dict(by_task.get(task_id))
        total = as_costs(entry.get("total"))
        grading = as_costs(as_dict(entry.get("by_kind")).get("grading"))
        n = sum(1 for m in metas.get(task_id, []) if m.finished)
        if not total or not n:
            continue
        if dollars:
            spent = float(total.get("dollars", 0) or 0) - float(grading.get("dollars", 0) or 0)
        else:
            spent = _tokens(total) - _tokens(grading)
        values.append(spent / n)
    if not values:
        return None, ""
    label = "dollars per task" if dollars else "tokens per task (agent, verifiers, selection)"
    return sum(values) / len(values), label


def _evaluations(run: Path, site: Path, task_ids: set[str]) -> list[dict[str, Any]]:
    """Grading results linked to this run by ``swescale eval`` (evaluations.json; its
    damage is among the run summary's problems)."""
    data = read_json(RunFiles(run).evaluations)
    return _evaluation_views(data if isinstance(data, list) else [], site, run, task_ids)


def _graded_elsewhere(evaluations: list[dict[str, Any]], task_id: str) -> list[dict[str, Any]]:
    """This task's results in each evaluation: (eval run, model, status, links)."""
    found = []
    for e in evaluations:
        for i in e["instances"]:
            if i["id"] == task_id and i["status"] != "no prediction":
                found.append(
                    {"run_id": e["run_id"], "model": e["model"], "anchor": e["anchor"], **i}
                )
    return found


def _evaluation_views(
    entries: list[Any],
    site: Path,
    within: Path,
    task_ids: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[dict[str, Any]]:
    """Each evaluation with, per instance, relative links from the site root to its test
    output, report and patch (whichever of them exist inside ``within``: a report links
    only to what its own directory holds), and to its task page when the site has one
    (``task_ids``). Relative paths in the record are relative to ``within``."""
    evaluations = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        instances = []
        for iid, info in sorted(as_dict(entry.get("instances")).items()):
            info = as_dict(info)
            links = {}
            folder = as_str(info.get("dir"))
            for name in EVAL_FILES if folder else ():
                target = within / folder / name  # an absolute dir stays as it is
                if target.is_file() and _inside(target, within):
                    links[name] = _relative(target, site)
            resolved = info.get("resolved")
            instances.append(
                {
                    "id": str(iid),
                    "page": task_url(iid) if iid in task_ids else "",
                    "status": as_str(info.get("status")),
                    "resolved": resolved if isinstance(resolved, bool) else None,
                    "error": as_str(info.get("error")),
                    "test_setup": as_list(info.get("test_setup")),
                    "links": links,
                }
            )
        report = within / as_str(entry.get("report")) if entry.get("report") else None
        run_id, model = as_str(entry.get("run_id")), as_str(entry.get("model"))
        linked = report is not None and report.is_file() and _inside(report, within)
        counts = {
            str(k): v
            for k, v in as_dict(entry.get("summary")).items()
            if isinstance(v, int | float | str) and not isinstance(v, bool)
        }
        evaluations.append(
            {
                "run_id": run_id,
                "model": model,
                "anchor": _safe(f"{run_id}.{model}" if model else run_id or "eval"),
                "report": _relative(report, site) if linked and report else "",
                "summary": counts,
                "instances": instances,
            }
        )
    return evaluations


def _relative(target: Path, site: Path) -> str:
    return Path(os.path.relpath(target.resolve(), site.resolve())).as_posix()


def _css() -> str:
    from importlib.resources import files

    base = files("swescale.report").joinpath("assets", "report.css").read_text(encoding="utf-8")
    return base + "\n/* Pygments (diffs) */\n" + pygments_css()


def write_redirect(run_dir: str | Path) -> Path:
    """``<run>/report.html``: a one-line page that opens the site (the old single page)."""
    target = RunFiles(run_dir).site_link
    target.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0; url={SITE_DIR}/index.html">'
        "<title>swescale report</title></head><body>"
        f'<a href="{SITE_DIR}/index.html">The report is in {SITE_DIR}/index.html</a>'
        "</body></html>\n",
        encoding="utf-8",
    )
    return target


def write_report(run_dir: str | Path, out: str | Path | None = None) -> str:
    """Build the site (and the run's report.html pointing at it); returns what to print:
    the index path, or one line saying why there is no report. Never raises: a report is
    the last step of a command whose results are already on disk."""
    import logging

    try:
        result = build_site(run_dir, out)
        if out is None:
            write_redirect(run_dir)
    except Exception as exc:  # noqa: BLE001 - the run's results stand without a report
        logging.getLogger(__name__).warning("the report could not be built", exc_info=True)
        return f"not written ({type(exc).__name__}: {exc})"
    note = "" if result.plots else " (no plots: pip install 'swescale[report]')"
    return f"{result.index}{note}"
