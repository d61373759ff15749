"""Grading many predictions: ``swescale eval`` and ``swescale validate``.

``Grader`` is the one object later stages need: it finds (or builds, once) the instance
image of a task and grades any number of candidate patches in fresh sandboxes.

``evaluate`` grades a predictions file in parallel and is idempotent by run id: each
instance's result lands in ``<eval_dir>/<run_id>/<model>/<instance_id>/`` (report.json
in the official schema, test_output.txt, patch.diff) and a rerun grades only instances
without a report for the same patch. The summary follows the official run report.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from swescale.sandbox import ImagesConfig
from swescale.swebench.config import DatasetConfig, GradingConfig
from swescale.swebench.datasets import read_tasks
from swescale.swebench.grading import GradeResult, error_result
from swescale.swebench.images import InstanceImage, instance_image
from swescale.swebench.predictions import Prediction, latest_by_instance, read_predictions
from swescale.swebench.repos import RepoSource, repo_source_for
from swescale.swebench.run import grade_patch
from swescale.swebench.specs import spec_problem
from swescale.types import Task

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)
Progress = Callable[[str, GradeResult | None], None]


class Grader:
    """Instance images (built once per task, whatever the number of candidates) and
    grading runs. Thread-safe; every method returns results, none raises for a task."""

    def __init__(
        self,
        client: docker.DockerClient,
        images: ImagesConfig,
        grading: GradingConfig,
        repos: RepoSource,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.client, self.images, self.grading, self.repos = client, images, grading, repos
        self.labels = labels or {}
        self._images: dict[str, InstanceImage | str] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @classmethod
    def for_tasks(
        cls,
        client: docker.DockerClient,
        tasks: list[Task],
        images: ImagesConfig,
        grading: GradingConfig,
        dataset: DatasetConfig | None = None,
    ) -> Grader:
        dataset = dataset or DatasetConfig()
        cache = dataset.repo_cache_dir or images.cache_dir
        repos = repo_source_for(
            tasks, cache, dataset.repos_dir, dataset.repo_url, dataset.history_depth
        )
        return cls(client, images, grading, repos)

    def image(self, task: Task) -> InstanceImage | str:
        """The task's instance image, or the reason there is none (cached either way)."""
        with self._guard:
            lock = self._locks.setdefault(task.id, threading.Lock())
        with lock:
            if task.id not in self._images:
                problem = spec_problem(task)
                if problem:
                    self._images[task.id] = problem
                else:
                    try:
                        self._images[task.id] = instance_image(
                            self.client,
                            task,
                            images=self.images,
                            grading=self.grading,
                            repos=self.repos,
                        )
                    except Exception as exc:  # image builds fail in many ways; all end here
                        log.warning("%s: no instance image: %s", task.id, exc)
                        self._images[task.id] = f"{exc.__class__.__name__}: {exc}"
            return self._images[task.id]

    def grade(self, task: Task, patch: str | None) -> GradeResult:
        start = time.monotonic()
        image = self.image(task)
        if isinstance(image, str):
            return error_result(task, f"no instance image: {image}", time.monotonic() - start)
        return grade_patch(self.client, task, patch, self.grading, image, labels=self.labels)


# -- swescale eval ---------------------------------------------------------------------


def _safe(name: str) -> str:
    return (name or "unknown").replace("/", "__")


def _patch_sha(patch: str | None) -> str:
    return hashlib.sha256((patch or "").encode("utf-8", errors="surrogateescape")).hexdigest()


def instance_dir(eval_dir: Path, run_id: str, pred: Prediction) -> Path:
    return Path(eval_dir) / run_id / _safe(pred.model_name_or_path) / pred.instance_id


def cached_result(folder: Path, pred: Prediction) -> dict[str, Any] | None:
    """The stored result of a finished grading of the same patch, else None."""
    try:
        result = json.loads((folder / "result.json").read_text())
        report = json.loads((folder / "report.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if result.get("patch_sha256") != _patch_sha(pred.model_patch) or pred.instance_id not in report:
        return None
    return result


def store_result(folder: Path, pred: Prediction, result: GradeResult) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "patch.diff").write_text(
        pred.model_patch or "", encoding="utf-8", errors="surrogateescape"
    )
    (folder / "test_output.txt").write_text(result.log, encoding="utf-8", errors="replace")
    summary = result.model_dump(exclude={"log"})
    summary["patch_sha256"] = _patch_sha(pred.model_patch)
    (folder / "result.json").write_text(json.dumps(summary, indent=2))
    report_path = folder / "report.json"
    if result.status == "error":
        # As in the official harness: no report means "error", and a rerun retries it.
        report_path.unlink(missing_ok=True)
    else:
        report_path.write_text(json.dumps(result.report, indent=4))
    return summary


class EvalSummary(BaseModel):
    """The official run report fields, plus what this harness adds."""

    total_instances: int = 0
    submitted_instances: int = 0
    completed_instances: int = 0
    resolved_instances: int = 0
    unresolved_instances: int = 0
    empty_patch_instances: int = 0
    error_instances: int = 0
    completed_ids: list[str] = Field(default_factory=list)
    incomplete_ids: list[str] = Field(default_factory=list)
    empty_patch_ids: list[str] = Field(default_factory=list)
    submitted_ids: list[str] = Field(default_factory=list)
    resolved_ids: list[str] = Field(default_factory=list)
    unresolved_ids: list[str] = Field(default_factory=list)
    error_ids: list[str] = Field(default_factory=list)
    schema_version: int = 2
    # Ours: why instances errored, unusable input, and what was regraded this time.
    run_id: str = ""
    timeout_ids: list[str] = Field(default_factory=list)
    patch_failed_ids: list[str] = Field(default_factory=list)
    unknown_ids: list[str] = Field(default_factory=list)
    errors: dict[str, str] = Field(default_factory=dict)
    input_errors: list[str] = Field(default_factory=list)
    graded_now: int = 0


def summarize(
    tasks: list[Task],
    preds: dict[str, Prediction],
    results: dict[str, dict[str, Any]],
    run_id: str,
    input_errors: list[str],
    unknown: list[str],
    graded_now: int,
) -> EvalSummary:
    s = EvalSummary(
        run_id=run_id,
        total_instances=len(tasks),
        input_errors=input_errors,
        unknown_ids=sorted(unknown),
        graded_now=graded_now,
    )
    s.submitted_ids = sorted(preds)
    s.submitted_instances = len(preds)
    for task in tasks:
        pred = preds.get(task.id)
        if pred is None:
            s.incomplete_ids.append(task.id)
        elif pred.is_empty:
            s.empty_patch_ids.append(task.id)
        elif task.id not in results or results[task.id]["status"] == "error":
            s.error_ids.append(task.id)
            s.errors[task.id] = (results.get(task.id) or {}).get("error") or "not graded"
        else:
            s.completed_ids.append(task.id)
            status = results[task.id]["status"]
            (s.resolved_ids if results[task.id]["resolved"] else s.unresolved_ids).append(task.id)
            if status == "timeout":
                s.timeout_ids.append(task.id)
            elif status == "patch_failed":
                s.patch_failed_ids.append(task.id)
    for name in ("completed", "resolved", "unresolved", "empty_patch", "error"):
        setattr(s, f"{name}_instances", len(getattr(s, f"{name}_ids")))
    for name in (
        "completed_ids",
        "incomplete_ids",
        "empty_patch_ids",
        "resolved_ids",
        "unresolved_ids",
        "error_ids",
        "timeout_ids",
        "patch_failed_ids",
    ):
        setattr(s, name, sorted(getattr(s, name)))
    return s


def evaluate(
    predictions_path: Path,
    dataset: DatasetConfig,
    grading: GradingConfig,
    images: ImagesConfig,
    run_id: str,
    client: docker.DockerClient | None = None,
    progress: Progress | None = None,
) -> EvalSummary:
    """Grade every prediction of a known task that has no stored result yet; write and
    return the summary (``<eval_dir>/<run_id>/report.json``)."""
    rows, input_errors = read_predictions(predictions_path)
    by_id = latest_by_instance(rows)
    if len(by_id) < len(rows):
        input_errors.append(
            f"{len(rows) - len(by_id)} duplicate prediction(s): the last one of each id is graded"
        )
    taskset = read_tasks(dataset)
    input_errors += [str(e) for e in taskset.errors]
    tasks = taskset.tasks
    known = {t.id: t for t in tasks}
    unknown = [i for i in by_id if i not in known]
    input_errors += [f"prediction for unknown instance {i!r}" for i in unknown]
    if not dataset.instance_ids and not dataset.regex and not dataset.slice:
        # As the official harness: the instances graded are the ones predicted.
        tasks = [t for t in tasks if t.id in by_id]
    preds = {i: p for i, p in by_id.items() if i in known}
    results: dict[str, dict[str, Any]] = {}
    todo: list[tuple[Task, Prediction, Path]] = []
    for task in tasks:
        pred = preds.get(task.id)
        if pred is None or pred.is_empty:
            continue
        folder = instance_dir(grading.eval_dir, run_id, pred)
        cached = cached_result(folder, pred)
        if cached is not None:
            results[task.id] = cached
        else:
            todo.append((task, pred, folder))
    if todo:
        if client is None:
            from swescale.sandbox import docker_client

            client = docker_client()
        grader = Grader.for_tasks(client, [t for t, _, _ in todo], images, grading, dataset)
        grader.labels = {"run": run_id}
        with ThreadPoolExecutor(max_workers=max(1, grading.workers)) as pool:
            futures = {
                pool.submit(grader.grade, task, pred.model_patch): (task, pred, folder)
                for task, pred, folder in todo
            }
            for future in as_completed(futures):
                task, pred, folder = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # grade() never raises; this guards the guard
                    result = error_result(task, f"{exc.__class__.__name__}: {exc}")
                results[task.id] = store_result(folder, pred, result)
                if progress:
                    progress(task.id, result)
    summary = summarize(tasks, preds, results, run_id, input_errors, unknown, len(todo))
    out = Path(grading.eval_dir) / run_id / "report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(summary.model_dump_json(indent=2))
    return summary


# -- swescale validate -----------------------------------------------------------------


class TaskValidation(BaseModel):
    task_id: str
    ok: bool
    checks: dict[str, bool] = Field(default_factory=dict)
    problems: list[str] = Field(default_factory=list)
    seconds: float = 0.0


def validate_task(grader: Grader, task: Task, extra_patches: bool = False) -> TaskValidation:
    """Gold resolves; the empty patch does not; with the test patch alone every
    FAIL_TO_PASS test fails and every PASS_TO_PASS test passes. With ``extra_patches``,
    the task's decoy and wrong patches (mini tasks) must not resolve and its alternative
    fixes must."""
    start = time.monotonic()
    out = TaskValidation(task_id=task.id, ok=False)
    gold = grader.grade(task, task.gold_patch or "")
    empty = grader.grade(task, "")
    for name, result in (("gold", gold), ("empty", empty)):
        if result.status == "error":
            out.problems.append(f"{name} run errored: {result.error}")
    out.checks["gold_resolves"] = gold.resolved
    if not gold.resolved and gold.status != "error":
        out.problems.append(
            f"gold patch: {gold.status}; failing {gold.failing()} {gold.failing('PASS_TO_PASS')}"
        )
    out.checks["empty_does_not_resolve"] = empty.status != "error" and not empty.resolved
    still_passing = empty.passing()
    out.checks["fail_to_pass_fail_without_fix"] = empty.status != "error" and not still_passing
    if still_passing:
        out.problems.append(f"FAIL_TO_PASS tests pass without the fix: {still_passing}")
    broken = empty.failing("PASS_TO_PASS")
    out.checks["pass_to_pass_pass_without_fix"] = empty.status != "error" and not broken
    if broken:
        out.problems.append(f"PASS_TO_PASS tests fail without the fix: {broken}")
    if extra_patches:
        for kind, must_resolve in (
            ("decoy_patches", False),
            ("wrong_patches", False),
            ("alt_patches", True),
        ):
            for index, patch in enumerate(task.extra.get(kind, [])):
                result = grader.grade(task, patch)
                good = result.status != "error" and result.resolved == must_resolve
                out.checks[f"{kind}[{index}]"] = good
                if not good:
                    out.problems.append(
                        f"{kind}[{index}]: {result.status} {result.error or ''}".strip()
                    )
    out.ok = all(out.checks.values())
    out.seconds = time.monotonic() - start
    return out


def validate(
    grader: Grader,
    tasks: list[Task],
    workers: int = 2,
    extra_patches: bool = False,
    progress: Callable[[TaskValidation], None] | None = None,
) -> list[TaskValidation]:
    results: list[TaskValidation] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(validate_task, grader, t, extra_patches) for t in tasks]
        for future in as_completed(futures):
            results.append(future.result())
            if progress:
                progress(results[-1])
    order = {t.id: i for i, t in enumerate(tasks)}
    return sorted(results, key=lambda r: order[r.task_id])
