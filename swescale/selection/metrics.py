"""Measuring selection on labelled runs: pass@k, selector accuracy, resolve rate versus
number of samples, cost per resolved task; and the offline re-selection behind
``swescale select``.

A label is ``Candidate.resolved`` (from grading). A *sample* is one trajectory; its label
is its candidate's. Tasks without labels count for nothing in accuracies (and are
reported as unlabelled), never as failures.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from math import comb
from pathlib import Path
from typing import Any

from swescale.record.io import write_text_atomic
from swescale.record.layout import RunFiles
from swescale.record.task import (
    TaskRecord,
    read_offline_selections,
    read_task_record,
    task_dirs,
    write_selection,
)
from swescale.selection.calibration import Calibration, fit_calibration, labelled_rows
from swescale.selection.candidates import merge_foreign, read_foreign_predictions
from swescale.selection.config import OFFLINE_SELECTORS, SelectionConfig
from swescale.selection.selectors import Selector, make_selector
from swescale.types import Candidate, Cost, Selection


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): P(at least one of k of the n samples is right),
    ``c`` of the n being right."""
    if n <= 0 or k <= 0:
        return 0.0
    k = min(k, n)
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def sample_labels(record: TaskRecord) -> tuple[int, int] | None:
    """(samples, resolved samples) of a task; None when no candidate has a label."""
    if not any(c.resolved is not None for c in record.candidates):
        return None
    resolved = sum(len(c.trajectory_ids) + len(c.sources) for c in record.candidates if c.resolved)
    produced = sum(len(c.trajectory_ids) + len(c.sources) for c in record.candidates)
    # Trajectories that left no usable patch are samples too, and wrong ones.
    n = max(produced, len(record.trajectory_ids) + sum(len(c.sources) for c in record.candidates))
    return n, resolved


def is_resolved(selection: Selection, candidates: Sequence[Candidate]) -> bool | None:
    """Whether the pick resolves the task; None when the pick has no label."""
    if selection.candidate_id is None:
        return False
    for cand in candidates:
        if cand.id == selection.candidate_id:
            return cand.resolved
    return None


def verification_cost(candidates: Sequence[Candidate]) -> Cost:
    total = Cost()
    for cand in candidates:
        for verdict in cand.verdicts.values():
            total = total + verdict.cost
    return total


def repository_of(record: TaskRecord) -> str:
    """The group a task belongs to for cross-fitting: its repository (from task.json),
    else the ``owner__name`` prefix of its SWE-bench id."""
    if record.task is not None and record.task.repo:
        return record.task.repo
    return record.task_id.rsplit("-", 1)[0]


def _cross_fitted(records: Sequence[TaskRecord], held_out: int) -> Calibration:
    """A calibration fit on the tasks of every *other* repository whose evidence is of
    the same kind (sandbox evidence or pool signals only, ``evidence_kind``): an honest
    score on the run's own labels (never fit and scored on the same repository, never
    fit on one kind of features and applied to the other). With no such task, the prior."""
    from swescale.selection.calibration import evidence_kind

    group = repository_of(records[held_out])
    kind = evidence_kind(records[held_out].candidates)
    others = [
        r.candidates
        for r in records
        if repository_of(r) != group and evidence_kind(r.candidates) == kind
    ]
    cal = fit_calibration(labelled_rows(others))
    return cal.model_copy(update={"evidence": kind}) if others else cal


def cross_fitted_calibrations(records: Sequence[TaskRecord]) -> list[Calibration]:
    """Per task, the calibration ``calibrated`` uses offline on a labelled run: fit on
    the other repositories' tasks with the same kind of evidence (the prior when there
    are none); one fit per repository and kind. The report states every candidate's
    P(resolved) with it."""
    from swescale.selection.calibration import evidence_kind

    fitted: dict[str, Calibration] = {}
    found = []
    for index, record in enumerate(records):
        key = f"{repository_of(record)} {evidence_kind(record.candidates)}"
        if key not in fitted:
            fitted[key] = _cross_fitted(records, index)
        found.append(fitted[key])
    return found


def select_all(
    records: Sequence[TaskRecord],
    name: str,
    cfg: SelectionConfig | None = None,
    calibration: Calibration | None = None,
) -> list[Selection]:
    """Run one offline selector over every task. ``calibrated`` without a given
    calibration is cross-fitted (fit on the other repositories' tasks), so its accuracy
    is not inflated."""
    cfg = cfg or SelectionConfig()
    selections = []
    fitted: dict[str, Calibration] = {}
    for index, record in enumerate(records):
        cal = calibration
        if name == "calibrated" and cal is None and not cfg.calibration_path:
            from swescale.selection.calibration import evidence_kind

            key = f"{repository_of(record)} {evidence_kind(record.candidates)}"
            if key not in fitted:
                fitted[key] = _cross_fitted(records, index)
            cal = fitted[key]
        selector = make_selector(name, cfg, calibration=cal)
        selections.append(selector.select(record.task_or_stub(), list(record.candidates)))
    return selections


def selector_row(
    name: str, records: Sequence[TaskRecord], selections: Sequence[Selection]
) -> dict[str, object]:
    """One row of the comparison table."""
    labelled = resolved = abstained = flagged = 0
    for record, sel in zip(records, selections, strict=True):
        outcome = is_resolved(sel, record.candidates)
        abstained += sel.candidate_id is None
        flagged += sel.flagged
        if outcome is None and sel.candidate_id is not None:
            continue
        if sample_labels(record) is None:
            continue
        labelled += 1
        resolved += bool(outcome)
    cost = Cost()
    for record in records:
        cost = cost + record.cost + verification_cost(record.candidates)
    tokens = cost.tokens_in + cost.tokens_out
    return {
        "selector": name,
        "tasks": len(records),
        "labelled": labelled,
        "resolved": resolved,
        "accuracy": resolved / labelled if labelled else None,
        "abstained": abstained,
        "flagged": flagged,
        "tokens_per_resolved": tokens / resolved if resolved else None,
        "dollars_per_resolved": cost.dollars / resolved if resolved else None,
        "sandbox_seconds_per_resolved": cost.sandbox_seconds / resolved if resolved else None,
    }


def score_auc(records: Sequence[TaskRecord], name: str) -> dict[str, float | int] | None:
    """ROC AUC of verifier ``name``'s score for "resolved", over every labelled candidate
    it judged (an infrastructure error judged nothing), pooled across tasks
    (``sklearn.metrics.roc_auc_score``); None without both a resolved and an unresolved
    candidate. 0.5 is a coin; ties between scores count half."""
    from sklearn.metrics import roc_auc_score

    from swescale.selection.ranking import execution_score, usable_score

    ys, xs = [], []
    for record in records:
        for cand in record.candidates:
            if cand.resolved is None:
                continue
            score = execution_score(cand) if name == "execution" else usable_score(cand, name)
            if score is None:
                continue
            ys.append(bool(cand.resolved))
            xs.append(score)
    if not any(ys) or all(ys):
        return None
    return {"auc": float(roc_auc_score(ys, xs)), "candidates": len(ys), "resolved": sum(ys)}


def calibration_error(
    records: Sequence[TaskRecord], selections: Sequence[Selection], bins: int = 5
) -> dict[str, float | int] | None:
    """Expected calibration error of a selector's confidence as P(its pick resolves):
    picks binned by confidence (``bins`` equal-width bins), the count-weighted mean of
    |mean confidence - resolve rate| (Naeini et al. 2015). Abstentions count as
    nothing picked; picks without a label are left out."""
    pairs = []
    for record, sel in zip(records, selections, strict=True):
        outcome = is_resolved(sel, record.candidates)
        if sel.candidate_id is None or outcome is None:
            continue
        pairs.append((min(max(sel.confidence, 0.0), 1.0), bool(outcome)))
    if not pairs:
        return None
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [(p, y) for p, y in pairs if low <= p < high or (b == bins - 1 and p == 1.0)]
        if members:
            mean_p = sum(p for p, _ in members) / len(members)
            rate = sum(y for _, y in members) / len(members)
            total += len(members) / len(pairs) * abs(mean_p - rate)
    return {"ece": total, "picks": len(pairs)}


def oracle_rows(records: Sequence[TaskRecord]) -> list[dict[str, object]]:
    """pass@1 and pass@n (any candidate resolves) over the labelled tasks."""
    labels = [lab for r in records if (lab := sample_labels(r)) is not None]
    if not labels:
        return []
    n_max = max(n for n, _ in labels)
    rows = []
    for k in sorted({1, n_max}):
        value = sum(pass_at_k(n, c, k) for n, c in labels) / len(labels)
        rows.append({"selector": f"pass@{k}", "labelled": len(labels), "accuracy": value})
    return rows


def selection_comparison(
    run_dir: str | Path, selectors: Sequence[str] = OFFLINE_SELECTORS
) -> list[dict[str, object]]:
    """Table rows comparing selectors on a finished run (for ``swescale report``):
    oracle rows (pass@1, pass@n), the run's own selection, then each offline selector."""
    records = [read_task_record(d) for d in task_dirs(Path(run_dir))]
    rows = oracle_rows(records)
    if any(r.selection is not None for r in records):
        own = [
            r.selection or Selection(task_id=r.task_id, candidate_id=None, selector="run")
            for r in records
        ]
        rows.append(selector_row("run", records, own))
    for name in selectors:
        rows.append(selector_row(name, records, select_all(records, name)))
    return rows


def fit_calibration_from_runs(run_dirs: Sequence[str | Path]) -> Calibration:
    """A calibration fit on every labelled candidate of the given finished runs (or
    ensemble directories), with its grouped cross-validation report (``cv``: folds by
    repository, Brier score, reliability table, accuracy)."""
    from swescale.selection.calibration import LabelledPool, fit_grouped

    records = [read_task_record(d) for run in run_dirs for d in task_dirs(Path(run))]
    pools = [
        LabelledPool(task_id=r.task_id, group=repository_of(r), candidates=r.candidates)
        for r in records
    ]
    return fit_grouped(pools)


def resolve_rate_vs_samples(
    records: Sequence[TaskRecord],
    selector_factory: Callable[[], Selector],
    sizes: Sequence[int],
    repeats: int = 5,
    seed: int = 0,
) -> list[tuple[int, float]]:
    """Mean resolve rate when only ``m`` of each task's trajectories had been sampled,
    for each m in ``sizes``; subsets drawn ``repeats`` times with a fixed seed."""
    rng = random.Random(seed)
    labelled = [r for r in records if sample_labels(r) is not None]
    curve = []
    for m in sizes:
        wins = trials = 0
        for record in labelled:
            trajs = sorted({t for c in record.candidates for t in c.trajectory_ids})
            for _ in range(repeats):
                chosen = set(rng.sample(trajs, min(m, len(trajs))))
                subset = []
                for cand in record.candidates:
                    kept = [t for t in cand.trajectory_ids if t in chosen]
                    if kept:
                        subset.append(cand.model_copy(update={"trajectory_ids": kept}))
                sel = selector_factory().select(record.task_or_stub(), subset)
                wins += bool(is_resolved(sel, subset))
                trials += 1
        curve.append((m, wins / trials if trials else 0.0))
    return curve


def write_selections(
    out_dir: Path,
    records: Sequence[TaskRecord],
    selections: Sequence[Selection],
    name: str,
    model_name: str,
    reasons: bool = False,
) -> None:
    """Each task's ``selection.<name>.json`` and ``<out_dir>/predictions.<name>.jsonl`` (one
    row per task, ``model_name`` as ``model_name_or_path``; with ``reasons`` each row
    carries the pick's selector, producers, confidence and rationale under ``swescale``)."""
    lines = []
    for record, sel in zip(records, selections, strict=True):
        write_selection(record.path, sel, name)
        chosen = next((c for c in record.candidates if c.id == sel.candidate_id), None)
        row: dict[str, Any] = {
            "instance_id": record.task_id,
            "model_name_or_path": model_name,
            "model_patch": chosen.patch if chosen else "",
        }
        if reasons:
            row["swescale"] = {
                "selector": name,
                "candidate_id": sel.candidate_id,
                "producers": list(chosen.sources) if chosen else [],
                "confidence": round(sel.confidence, 4),
                "flagged": sel.flagged,
                "rationale": sel.rationale,
                "tied": sel.tied,
                "decided_by": sel.decided_by,
            }
        lines.append(json.dumps(row))
    write_text_atomic(RunFiles(out_dir).predictions(name), "".join(line + "\n" for line in lines))


def run_offline_selection(
    run_dir: str | Path,
    name: str,
    cfg: SelectionConfig | None = None,
    foreign: Sequence[str | Path] = (),
) -> tuple[list[Selection], dict[str, object]]:
    """Re-run one selector over a finished run; writes ``<task>/selection.<name>.json``,
    ``predictions.<name>.jsonl`` and ``selection.<name>.summary.json`` in the run dir.
    ``foreign``: other systems' predictions files whose patches join the candidates
    (unknown instance ids and bad rows are reported in the summary, not fatal)."""
    run_dir = Path(run_dir)
    records = [read_task_record(d) for d in task_dirs(run_dir)]
    imported = None
    if foreign:
        imported = read_foreign_predictions(foreign, [r.task_id for r in records])
        for record in records:
            record.candidates = merge_foreign(record.candidates, imported.for_task(record.task_id))
    selections = select_all(records, name, cfg)
    earlier = [read_offline_selections(r.path).get(name) for r in records]
    write_selections(run_dir, records, selections, name, f"swescale-{name}")
    summary = selector_row(name, records, selections)
    # What this replaced: an earlier `swescale select` of the same selector is overwritten.
    summary["replaced"] = sum(e is not None for e in earlier)
    summary["changed"] = [
        [r.task_id, e.candidate_id, s.candidate_id]
        for r, e, s in zip(records, earlier, selections, strict=True)
        if e is not None and e.candidate_id != s.candidate_id
    ]
    summary["problems"] = [p for r in records for p in r.problems]
    if imported is not None:
        summary["foreign_unknown_ids"] = imported.unknown_ids
        summary["problems"] += imported.errors
    write_text_atomic(RunFiles(run_dir).selection_summary(name), json.dumps(summary, indent=1))
    return selections, summary
