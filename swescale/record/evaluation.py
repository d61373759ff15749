"""Grading results on disk, in the official layout of ``swebench.harness.run_evaluation``
(so tools written for the official harness read them unchanged)::

    <eval_dir>/logs/run_evaluation/<run_id>/<model>/<instance_id>/
        report.json  test_output.txt  patch.diff  eval.sh  run_instance.log  result.json
    <eval_dir>/swescale.<run_id>/          what is ours: the log file, a report site

``result.json`` is ours (status, apply strategy, notes, the patch's sha256 that makes a
rerun skip what was already graded). A grading that ended in an error writes no
``report.json``, as officially: a rerun retries it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from swebench.harness.constants import (
    LOG_INSTANCE,
    LOG_REPORT,
    LOG_TEST_OUTPUT,
    RUN_EVALUATION_LOG_DIR,
)

from swescale.record.io import read_json, write_text_atomic
from swescale.record.layout import EVAL_PATCH, EVAL_RESULT, EVAL_SCRIPT, LOG_FILE


def model_dir_name(model: str | None) -> str:
    """The folder of a model's results, as the official harness names it."""
    return (model or "None").replace("/", "__")


def instance_dir(eval_dir: Path | str, run_id: str, model: str | None, instance_id: str) -> Path:
    return Path(eval_dir) / RUN_EVALUATION_LOG_DIR / run_id / model_dir_name(model) / instance_id


def ours_dir(eval_dir: Path | str, run_id: str) -> Path:
    """Where an eval run keeps what is ours: its log file, its report."""
    return Path(eval_dir) / f"swescale.{run_id}"


def ours_log(eval_dir: Path | str, run_id: str) -> Path:
    return ours_dir(eval_dir, run_id) / LOG_FILE


def patch_sha(patch: str | None) -> str:
    return hashlib.sha256((patch or "").encode("utf-8", errors="surrogateescape")).hexdigest()


def cached_result(folder: Path, patch: str | None, instance_id: str) -> dict[str, Any] | None:
    """The stored result of a finished (non-error) grading of the same patch, else None."""
    result = read_json(Path(folder) / EVAL_RESULT)
    report = read_json(Path(folder) / LOG_REPORT)
    if not isinstance(result, dict) or not isinstance(report, dict):
        return None
    if result.get("patch_sha256") != patch_sha(patch) or instance_id not in report:
        return None
    return result


def write_grading(
    folder: Path,
    *,
    patch: str | None,
    script: str,
    test_output: str,
    instance_log: str,
    result: dict[str, Any],
    report: dict[str, Any] | None,
) -> None:
    """One grading's files. ``report`` None (an error) removes an earlier report.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / EVAL_PATCH, (patch or "").encode("utf-8", errors="surrogateescape"))
    if script:
        write_text_atomic(folder / EVAL_SCRIPT, script)
    write_text_atomic(folder / LOG_TEST_OUTPUT, test_output.encode("utf-8", errors="replace"))
    write_text_atomic(folder / LOG_INSTANCE, instance_log)
    write_text_atomic(folder / EVAL_RESULT, json.dumps(result, indent=2))
    if report is None:
        (folder / LOG_REPORT).unlink(missing_ok=True)
    else:
        write_text_atomic(folder / LOG_REPORT, json.dumps(report, indent=4))
