"""Grading results as the report's pages show them: per evaluation its counts and, per
instance, its status and relative links to the files of its grading (see
:mod:`swescale.report.evaluations` for how they are recorded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swescale.record.io import as_dict, as_list, as_str, read_json
from swescale.record.layout import EVAL_FILES, RunFiles, safe_name
from swescale.report.web import inside, relative_link, task_url


def run_evaluations(run: Path, site: Path, task_ids: set[str]) -> list[dict[str, Any]]:
    """Grading results linked to this run by ``swescale eval`` (evaluations.json; its
    damage is among the run summary's problems)."""
    data = read_json(RunFiles(run).evaluations)
    return evaluation_views(data if isinstance(data, list) else [], site, run, task_ids)


def graded_elsewhere(evaluations: list[dict[str, Any]], task_id: str) -> list[dict[str, Any]]:
    """This task's results in each evaluation: (eval run, model, status, links)."""
    found = []
    for e in evaluations:
        for i in e["instances"]:
            if i["id"] == task_id and i["status"] != "no prediction":
                found.append(
                    {"run_id": e["run_id"], "model": e["model"], "anchor": e["anchor"], **i}
                )
    return found


def evaluation_views(
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
                if target.is_file() and inside(target, within):
                    links[name] = relative_link(target, site)
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
        linked = report is not None and report.is_file() and inside(report, within)
        counts = {
            str(k): v
            for k, v in as_dict(entry.get("summary")).items()
            if isinstance(v, int | float | str) and not isinstance(v, bool)
        }
        evaluations.append(
            {
                "run_id": run_id,
                "model": model,
                "anchor": safe_name(f"{run_id}.{model}" if model else run_id or "eval"),
                "report": relative_link(report, site) if linked and report else "",
                "summary": counts,
                "instances": instances,
            }
        )
    return evaluations
