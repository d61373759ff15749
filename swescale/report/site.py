"""The run report as a small static site in the run directory (``<run>/report/``): it
opens from ``file://`` with no server and no network (no scripts, no remote assets).

```
report/index.html                         overview: rates, plots, selectors, tasks, cost, failures
report/task/<task>.html                   the pick and why, the candidate pool, trajectories
report/candidate/<task>.<candidate>.html  one patch: producers, verdicts with evidence, truth
report/trajectory/<trajectory>.html       steps: message, tool calls, outputs, repository diff
report/eval.html                          grading results (``swescale eval``), when there are any
report/img/*.svg, report/assets/*.css
```

Built task by task (a task's trajectories are read, their pages written, and dropped), so
memory follows the largest task, not the run. Reading is tolerant throughout: a run that
is still going, was killed, or has damaged records gets a report of what is there, with
the damage listed. The pages live in :mod:`swescale.report.pages` (task, candidate,
trajectory), :mod:`swescale.report.curves` (plots) and :mod:`swescale.report.eval_views`.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swescale.record.layout import SITE_DIR, RunFiles, safe_name
from swescale.record.task import read_grades, read_offline_selections, read_task_record, task_dirs
from swescale.report import curves, plots, pool
from swescale.report.eval_views import graded_elsewhere, run_evaluations
from swescale.report.pages import TrajMeta, task_pages, task_picks
from swescale.report.stats import proportion_interval
from swescale.report.summary import RunSummary, load_run
from swescale.report.web import (
    MachinePaths,
    Writer,
    candidate_url,
    css,
    environment,
    task_url,
    trajectory_url,
)
from swescale.selection.config import OFFLINE_SELECTORS
from swescale.selection.metrics import (
    cross_fitted_calibrations,
    oracle_rows,
    select_all,
    selector_row,
)
from swescale.types import Cost, Selection

__all__ = [
    "SiteResult",
    "build_site",
    "candidate_url",
    "task_url",
    "trajectory_url",
    "write_report",
    "write_run_page",
]


@dataclass
class SiteResult:
    root: Path
    index: Path
    pages: int = 0
    trajectories: int = 0
    seconds: float = 0.0
    plots: bool = False
    problems: list[str] = field(default_factory=list)


def build_site(
    run_dir: str | Path,
    out: str | Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> SiteResult:
    """Write the report site of a run directory; returns where and what it wrote.
    ``progress(done, total, what)`` is called as each task's pages are written.

    Raises FileNotFoundError when ``run_dir`` is not a directory. Everything else a run
    can hold (missing, partial or damaged records) ends up in the pages or in
    ``problems``, never in an exception."""
    started = time.perf_counter()
    run = Path(run_dir)
    summary = load_run(run, comparison=False)
    root = Path(out) if out is not None else RunFiles(run).site
    for sub in ("task", "candidate", "trajectory", "img"):
        shutil.rmtree(root / sub, ignore_errors=True)
    writer = Writer(root, MachinePaths.of(run))
    writer.asset("assets/report.css", css())
    result = SiteResult(root=root, index=root / "index.html", plots=plots.available())
    result.problems = list(summary.problems)

    # Trajectory files are read once, task by task below, and their costs filled in then.
    records = [read_task_record(d, trajectories=False) for d in task_dirs(run)]
    offline = _offline(records)
    by_folder = {r.path.name: r for r in records}
    positions = {id(r): i for i, r in enumerate(records)}
    labelled = any(c.resolved is not None for r in records for c in r.candidates)
    calibrations = [
        cal if cal is not None and _informative(cal) else None
        for cal in (cross_fitted_calibrations(records) if labelled else [None] * len(records))
    ]
    evaluations = run_evaluations(run, root, {t.task_id for t in summary.tasks})
    metas: dict[str, list[TrajMeta]] = {}
    task_rows = []
    for done, task in enumerate(summary.tasks):
        if progress is not None:
            progress(done, len(summary.tasks), task.task_id)
        record = by_folder.get(safe_name(task.task_id))
        picks: list[pool.Pick] = []
        calibration = None
        if record is not None:
            position = positions[id(record)]
            computed = {name: selections[position] for name, selections in offline.items()}
            picks = task_picks(record, computed, read_offline_selections(record.path))
            calibration = calibrations[position]
        folder = run / safe_name(task.task_id)
        grades = read_grades(folder)
        metas[task.task_id] = task_pages(
            writer,
            folder,
            task,
            record,
            picks,
            grades if isinstance(grades, dict) else {},
            graded_elsewhere(evaluations, task.task_id),
            run,
            calibration,
        )
        if record is not None:
            _fill_costs(record, metas[task.task_id])
        own = next((p for p in picks if p.source.startswith("run")), None)
        task_rows.append(_task_row(task, record, metas[task.task_id], own))
    if progress is not None:
        progress(len(summary.tasks), len(summary.tasks), "overview")
    result.trajectories = sum(len(m) for m in metas.values())
    comparison = _comparison(records, offline)

    samples = curves.samples_of(records, metas, summary)
    images = (
        curves.draw(writer, samples, comparison, summary, metas) if result.plots else curves.Plots()
    )
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


def _offline(records: list[Any]) -> dict[str, list[Selection]]:
    """Every offline selector's pick per task: what ``swescale select`` stored for it
    (selection.<name>.json), else the report's own run of it; so the task pages and the
    selector table show the same picks, and a selector once."""
    stored = [read_offline_selections(r.path) for r in records]
    offline = {}
    for name in dict.fromkeys([*OFFLINE_SELECTORS, *(n for s in stored for n in s)]):
        computed = select_all(records, name) if name in OFFLINE_SELECTORS else []
        offline[name] = [
            found.get(name) or (computed[i] if computed else _none(records[i].task_id, name))
            for i, found in enumerate(stored)
        ]
    return offline


# Graded candidates a cross-fitted calibration needs before the pages state P(resolved)
# with it instead of the prior weights.
MIN_FITTED = 20


def _informative(calibration: Any) -> bool:
    """A fit on enough graded candidates of both kinds (a fit on one-sided labels gives
    every candidate the same probability, which says nothing about any of them)."""
    return calibration.fitted_on >= MIN_FITTED and any(calibration.weights)


def _none(task_id: str, name: str) -> Selection:
    return Selection(task_id=task_id, candidate_id=None, selector=name, rationale="not selected")


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


def _task_row(
    task: Any, record: Any, metas: list[TrajMeta], pick: pool.Pick | None
) -> dict[str, Any]:
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
        "pick": pick,
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


def write_run_page(run_dir: str | Path) -> Path:
    """``<run>/report.html``: a real page (no redirect, which headless browsers wait on)
    with the run's headline and a link to the site."""
    target = RunFiles(run_dir).site_link
    summary = load_run(run_dir, comparison=False)
    html = (
        environment()
        .get_template("run_link.html.j2")
        .render(
            summary=summary,
            site=f"{SITE_DIR}/index.html",
            css=f"{SITE_DIR}/assets/report.css",
            done=sum(1 for t in summary.tasks if t.status == "done"),
            resolved=sum(bool(t.resolved) for t in summary.graded),
            machine_paths=MachinePaths.of(Path(run_dir)),
        )
    )
    target.write_text(html, encoding="utf-8")
    return target


# The old name of write_run_page.
write_redirect = write_run_page


def write_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> str:
    """Build the site (and the run's report.html linking to it); returns what to print:
    the index path, or one line saying why there is no report. Never raises: a report is
    the last step of a command whose results are already on disk."""
    import logging

    try:
        result = build_site(run_dir, out, progress)
        if out is None:
            write_run_page(run_dir)
    except Exception as exc:  # noqa: BLE001 - the run's results stand without a report
        logging.getLogger(__name__).warning("the report could not be built", exc_info=True)
        return f"not written ({type(exc).__name__}: {exc})"
    note = "" if result.plots else " (no plots: pip install 'swescale[report]')"
    return f"{result.index}{note}"
