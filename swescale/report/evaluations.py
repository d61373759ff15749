"""Linking grading results (``swescale eval``) to the report.

``swescale eval`` writes the official layout (``<eval_dir>/logs/run_evaluation/<run_id>/
<model>/<instance_id>/`` and one run report per model). When a graded predictions file
lies in a run directory, each model's evaluation is recorded in
``<run>/evaluations.json`` (the run report's counts, per instance its status and the
folder holding its test output and report) and the run's report gets a grading page.
Predictions from elsewhere get a report of their own in ``<eval_dir>/swescale.<run_id>/``,
beside the official layout rather than inside it (tools walk its folders as models).

A report links only to files inside its own directory (the run directory; the eval
directory for a report of its own): a run's predictions are graded into ``<run>/eval/``
by default, and results kept elsewhere are listed without links.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swescale.record import evaluation
from swescale.record.layout import SITE_DIR, run_dir_of
from swescale.record.run import record_evaluation

# The official run report's lists, and the status each one means for an instance.
STATUS_LISTS = (
    ("resolved_ids", "resolved"),
    ("unresolved_ids", "unresolved"),
    ("empty_patch_ids", "empty patch"),
    ("error_ids", "error"),
    ("incomplete_ids", "no prediction"),
)


def instance_statuses(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """instance id -> {status, resolved, error[, test_setup]} from an official run report
    (``test_setup``: the paths by which the patch changed how the tests run)."""
    reasons = report.get("error_reasons") or report.get("errors") or {}
    reasons = reasons if isinstance(reasons, dict) else {}
    found: dict[str, dict[str, Any]] = {}
    for key, status in STATUS_LISTS:
        for iid in report.get(key) or []:
            resolved = True if status == "resolved" else False if status == "unresolved" else None
            error = reasons.get(iid, "") if status == "error" else ""
            found.setdefault(
                str(iid),
                {"status": status, "resolved": resolved, "error": str(error or "")},
            )
    tampered = report.get("test_setup_changed")
    for iid, paths in (tampered if isinstance(tampered, dict) else {}).items():
        if str(iid) in found and isinstance(paths, list):
            found[str(iid)]["test_setup"] = [str(p) for p in paths]
    return found


def entry(
    eval_run_id: str,
    model: str,
    report: dict[str, Any],
    report_path: Path,
    folders: dict[str, Path],
    base: Path | None = None,
) -> dict[str, Any]:
    """One model's evaluation as recorded; ``folders`` maps instance ids to their result
    folders. Paths inside ``base`` (the run directory) are kept relative to it, so the
    record stays true when the run directory is moved; others are absolute."""
    instances = instance_statuses(report)
    for iid, folder in folders.items():
        instances.setdefault(iid, {"status": "", "resolved": None, "error": ""})
        instances[iid]["dir"] = _stored(Path(folder), base)
    counts = {k: v for k, v in report.items() if not isinstance(v, list | dict)}
    return {
        "run_id": eval_run_id,
        "model": model,
        "report": _stored(Path(report_path), base),
        "summary": counts,
        "instances": instances,
    }


def _stored(path: Path, base: Path | None) -> str:
    resolved = path.resolve()
    if base is not None and resolved.is_relative_to(base.resolve()):
        return resolved.relative_to(base.resolve()).as_posix()
    return str(resolved)


def write_eval_site(out: Path, entries: list[dict[str, Any]], within: Path) -> Path:
    """A report of grading results alone (predictions not from a run directory), linking
    to the files under ``within`` (the eval directory)."""
    from swescale.report.eval_views import evaluation_views
    from swescale.report.web import MachinePaths, Writer, css

    writer = Writer(Path(out), MachinePaths.of(Path(within)))
    writer.asset("assets/report.css", css())
    views = evaluation_views(entries, Path(out), within)
    writer.page("index.html", "eval.html.j2", evaluations=views, tasks=False)
    return Path(out) / "index.html"


def report_evaluation(predictions: list[Path], eval_dir: str | Path, outcome: Any) -> str:
    """After ``swescale eval``: link each graded instance to its test output and report,
    in the report of the run each predictions file came from, and in one report beside
    the results for the others. Returns where to look; never raises (the grading results
    stand without a report)."""
    from swescale.report import write_report
    from swescale.swebench.evaluate import instance_dir
    from swescale.swebench.predictions import read_predictions

    try:
        owner: dict[str, Path | None] = {}  # model -> run directory of its predictions
        folders: dict[str, dict[str, Path]] = {}
        for path in predictions:
            run_dir = run_dir_of(path)
            rows, _ = read_predictions(path)
            for pred in rows:
                model = pred.model_name_or_path or "None"
                owner.setdefault(model, run_dir)
                folder = instance_dir(Path(eval_dir), outcome.run_id, pred)
                if folder.is_dir():
                    folders.setdefault(model, {})[pred.instance_id] = folder
        where: list[str] = []
        alone: list[dict[str, Any]] = []
        for model, report in outcome.reports.items():
            run_dir = owner.get(model)
            new = entry(
                outcome.run_id,
                model,
                report,
                Path(outcome.report_paths.get(model, "")),
                folders.get(model, {}),
                run_dir,
            )
            if run_dir is not None:
                record_evaluation(run_dir, new)
                where.append(write_report(run_dir))
            else:
                alone.append(new)
        if alone:
            target = evaluation.ours_dir(eval_dir, outcome.run_id) / SITE_DIR
            where.append(str(write_eval_site(target, alone, Path(eval_dir))))
        return ", ".join(dict.fromkeys(where)) or "no graded model"
    except Exception as exc:  # noqa: BLE001 - the grading results stand without a report
        return f"no report ({type(exc).__name__}: {exc})"
