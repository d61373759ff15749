"""Linking grading results (``swescale eval``) to the report.

When the graded predictions file lies in a run directory, the evaluation is recorded in
``<run>/evaluations.json`` (one entry per eval run id: the summary, and per instance its
status and the folder holding its test output and report) and the run's report gets a
grading page. Predictions from elsewhere get a report of their own beside the results.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from swescale.report.site import EVALUATIONS

# The official run report's lists, and the status each one means for an instance.
STATUS_LISTS = (
    ("resolved_ids", "resolved"),
    ("unresolved_ids", "unresolved"),
    ("empty_patch_ids", "empty patch"),
    ("error_ids", "error"),
    ("incomplete_ids", "no prediction"),
)


def instance_statuses(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """instance id -> {status, resolved, error} from an official-style run report."""
    found: dict[str, dict[str, Any]] = {}
    errors = summary.get("errors") if isinstance(summary.get("errors"), dict) else {}
    for key, status in STATUS_LISTS:
        for iid in summary.get(key) or []:
            found.setdefault(
                str(iid),
                {
                    "status": status,
                    "resolved": True
                    if status == "resolved"
                    else False
                    if status == "unresolved"
                    else None,
                    "error": str(errors.get(iid, "")) if status == "error" else "",
                },
            )
    return found


def entry(
    eval_run_id: str,
    summary: dict[str, Any],
    report_path: Path,
    folders: dict[str, Path],
) -> dict[str, Any]:
    """One evaluation as recorded: ``folders`` maps instance ids to their result folders."""
    instances = instance_statuses(summary)
    for iid, folder in folders.items():
        instances.setdefault(iid, {"status": "", "resolved": None, "error": ""})
        instances[iid]["dir"] = str(Path(folder).resolve())
    keep = {k: v for k, v in summary.items() if not k.endswith("_ids") and k != "errors"}
    return {
        "run_id": eval_run_id,
        "report": str(Path(report_path).resolve()),
        "summary": keep,
        "instances": instances,
    }


def run_dir_of(predictions: Path) -> Path | None:
    """The run directory a predictions file belongs to (it sits beside run.json)."""
    folder = Path(predictions).resolve().parent
    return folder if (folder / "run.json").is_file() else None


def record_evaluation(run_dir: Path, new: dict[str, Any]) -> Path:
    """Add (or replace, by eval run id) an evaluation in ``<run>/evaluations.json``."""
    path = Path(run_dir) / EVALUATIONS
    try:
        existing = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        existing = []
    kept = [e for e in existing if isinstance(e, dict) and e.get("run_id") != new["run_id"]]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps([*kept, new], indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_eval_site(out: Path, new: dict[str, Any]) -> Path:
    """A report of grading results alone (predictions not from a run directory)."""
    from swescale.report.site import _css, _evaluation_views, _Writer

    writer = _Writer(Path(out))
    writer.asset("assets/report.css", _css())
    writer.page(
        "index.html", "eval.html.j2", evaluations=_evaluation_views([new], Path(out)), tasks=False
    )
    return Path(out) / "index.html"
