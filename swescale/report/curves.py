"""The overview's plots from the run's records: the labelled tasks as samples, the
resolve-rate curves (oracle and selectors from the same subsets,
:func:`swescale.report.stats.sample_curves`), and the cost of one sample."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swescale.record.io import as_costs, as_dict, read_json
from swescale.record.layout import RunFiles, safe_name
from swescale.report import plots
from swescale.report.pages import TrajMeta
from swescale.report.stats import ORACLE, TaskSamples, sample_curves
from swescale.report.summary import RunSummary
from swescale.report.web import Writer, tokens
from swescale.selection.config import OFFLINE_SELECTORS


@dataclass
class Plots:
    """The overview's plots: each an image path inside the site, "" when not drawn."""

    samples: str = ""
    selectors: str = ""
    cost: str = ""

    def __bool__(self) -> bool:
        return bool(self.samples or self.selectors or self.cost)


def samples_of(
    records: list[Any], metas: dict[str, list[TrajMeta]], summary: RunSummary
) -> list[TaskSamples]:
    by_folder = {safe_name(t.task_id): t.task_id for t in summary.tasks}
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


def draw(
    writer: Writer,
    samples: list[TaskSamples],
    comparison: list[dict[str, Any]],
    summary: RunSummary,
    metas: dict[str, list[TrajMeta]],
) -> Plots:
    from swescale.selection.selectors import make_selector

    images = Plots()
    run_selector = _run_selector(summary)
    names = [n for n in dict.fromkeys([run_selector, "majority"]) if n in OFFLINE_SELECTORS]
    everything = sample_curves(
        samples, {name: (lambda name=name: make_selector(name)) for name in names}
    )
    oracle = everything.pop(ORACLE)
    curves = everything
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
            spent = tokens(total) - tokens(grading)
        values.append(spent / n)
    if not values:
        return None, ""
    label = "dollars per task" if dollars else "tokens per task (agent, verifiers, selection)"
    return sum(values) / len(values), label
