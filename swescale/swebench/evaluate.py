"""Grading many predictions: ``swescale eval`` and ``swescale validate``.

``Grader`` is the one object later stages need: it finds (or builds, once) the instance
image of a task and grades any number of candidate patches in fresh sandboxes.

``evaluate`` grades predictions files in parallel in the official run layout, so tools
written for the official harness read the output unchanged:

    <eval_dir>/logs/run_evaluation/<run_id>/<model>/<instance_id>/
        report.json  test_output.txt  patch.diff  eval.sh  run_instance.log  (+ result.json)
    <eval_dir>/<model>.<run_id>.json          the run report (official make_run_report)

Several models (a pool of systems' patches for the same instances, told apart by
``model_name_or_path``) are graded per (model, instance), each model with its own report.
A rerun grades only what has no report.json yet (errors are retried) or whose patch
changed.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from swebench.harness.constants import (
    FAIL_TO_PASS,
    LOG_TEST_OUTPUT,
    PASS_TO_PASS,
)
from swebench.harness.reporting import make_run_report

from swescale.pool import run_pool
from swescale.record import evaluation
from swescale.sandbox import ImagesConfig
from swescale.sandbox.registry import PulledImages, RegistryError
from swescale.swebench.config import DatasetConfig, GradingConfig
from swescale.swebench.datasets import read_tasks
from swescale.swebench.grading import GradeResult, empty_result, error_result
from swescale.swebench.images import InstanceImage, instance_image
from swescale.swebench.predictions import Prediction, read_predictions
from swescale.swebench.repos import RepoSource
from swescale.swebench.run import eval_script, grade_patch, grade_test_patch_alone
from swescale.swebench.specs import repo_source_for, spec_problem
from swescale.types import Task

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)
Progress = Callable[[str, str, GradeResult], None]
# Signatures of a test run that needed the internet (names that did not resolve,
# connections refused or timed out towards outside hosts, a dependency the offline
# reinstall could not fetch).
NETWORK_SIGNS = (
    "No matching distribution found for",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Could not resolve host",
    "NewConnectionError",
    "Max retries exceeded with url",
    "Network is unreachable",
)


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
        self.build_seconds: dict[str, float] = {}
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
                start = time.monotonic()
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
                        log.debug("%s: no instance image: %s", task.id, exc)
                        self._images[task.id] = f"{exc.__class__.__name__}: {exc}"
                self.build_seconds[task.id] = time.monotonic() - start
            return self._images[task.id]

    def grade(self, task: Task, patch: str | None) -> GradeResult:
        """Grade one candidate patch (None or "": the official empty patch)."""
        if not patch:
            return empty_result(task)
        return self._in_image(
            task,
            lambda image: grade_patch(
                self.client,
                task,
                patch,
                self.grading,
                image,
                labels=self.labels,
                images=self.images,
            ),
        )

    def grade_alone(self, task: Task) -> GradeResult:
        """The test patch alone, no candidate (validation)."""
        return self._in_image(
            task,
            lambda image: grade_test_patch_alone(
                self.client, task, self.grading, image, labels=self.labels, images=self.images
            ),
        )

    def _in_image(self, task: Task, run: Callable[[InstanceImage], GradeResult]) -> GradeResult:
        """``run`` in the task's image; a pulled image is held meanwhile (the cap on
        pulled images never removes it under the run, and one removed since it was
        pulled is pulled again)."""
        image = self.image(task)
        if isinstance(image, str):
            return error_result(task, f"no instance image: {image}")
        if not image.pulled:
            return run(image)
        try:
            with PulledImages.for_config(self.client, self.images).hold(image.tag):
                return run(image)
        except RegistryError as exc:
            return error_result(task, f"no instance image: {exc}")


# -- the official run layout ------------------------------------------------------------


def instance_dir(eval_dir: Path, run_id: str, pred: Prediction) -> Path:
    return evaluation.instance_dir(eval_dir, run_id, pred.model_name_or_path, pred.instance_id)


def cached_result(folder: Path, pred: Prediction) -> dict[str, Any] | None:
    """The stored result of a finished (non-error) grading of the same patch, else None."""
    return evaluation.cached_result(folder, pred.model_patch, pred.instance_id)


def store_result(
    folder: Path, pred: Prediction, result: GradeResult, script: str = ""
) -> dict[str, Any]:
    """Write one grading's files; an error writes no report.json (as officially: a rerun
    retries it, the run report counts it in ``error_ids``)."""
    summary = result.model_dump(exclude={"log"})
    summary["patch_sha256"] = evaluation.patch_sha(pred.model_patch)
    summary["model_name_or_path"] = pred.model_name_or_path
    report = None
    if result.status != "error":
        report = json.loads(json.dumps(result.report))
        entry = report.get(pred.instance_id)
        if entry is not None and result.python and result.python != result.python_wanted:
            # Beside the official keys: the tests ran on another interpreter.
            entry["python"] = {"ran": result.python, "spec": result.python_wanted}
    evaluation.write_grading(
        folder,
        patch=pred.model_patch,
        script=script,
        test_output=result.log,
        instance_log=_instance_log(pred, result),
        result=summary,
        report=report,
    )
    return summary


def _instance_log(pred: Prediction, result: GradeResult) -> str:
    lines = [
        f"instance: {pred.instance_id}",
        f"model: {pred.model_name_or_path}",
        f"image: {result.image}",
        f"status: {result.status}" + (f" ({result.error_kind})" if result.error_kind else ""),
        f"seconds: {result.seconds:.1f}",
    ]
    if result.apply_strategy:
        lines.append(f">>>>> Applied Patch ({result.apply_strategy})")
    if result.error:
        lines.append(f"error: {result.error}")
    lines += [f"note: {n}" for n in result.notes]
    lines += [f"adaptation: {a}" for a in result.adaptations]
    if result.apply_output:
        lines += ["", "apply output:", result.apply_output]
    return "\n".join(lines) + "\n"


def needs_network(result: GradeResult | dict[str, Any], log_text: str) -> bool:
    """Whether a run that did not resolve shows signs of tests that need the internet."""
    resolved = result.resolved if isinstance(result, GradeResult) else result.get("resolved")
    return not resolved and any(sign in log_text for sign in NETWORK_SIGNS)


# -- swescale eval ---------------------------------------------------------------------


class EvalOutcome(BaseModel):
    """What ``evaluate`` did: one official run report per model, plus our extra keys."""

    run_id: str
    reports: dict[str, dict[str, Any]] = Field(default_factory=dict)
    report_paths: dict[str, str] = Field(default_factory=dict)
    # Models none of whose predictions is for a selected instance: no report, and why.
    nothing_to_grade: dict[str, str] = Field(default_factory=dict)
    # Predictions for instances the dataset has but the selection (--instance, regex,
    # slice) leaves out: not graded, not an input error.
    outside_selection: list[str] = Field(default_factory=list)
    input_errors: list[str] = Field(default_factory=list)
    graded_now: int = 0
    interrupted: bool = False


def _pools(rows: Iterable[Prediction], input_errors: list[str]) -> dict[str, dict[str, Prediction]]:
    """model -> instance -> prediction; within one model the last duplicate wins."""
    pools: dict[str, dict[str, Prediction]] = {}
    duplicates: dict[str, int] = {}
    for pred in rows:
        model = pred.model_name_or_path or "None"
        by_id = pools.setdefault(model, {})
        if pred.instance_id in by_id:
            duplicates[model] = duplicates.get(model, 0) + 1
        by_id[pred.instance_id] = pred
    for model, count in duplicates.items():
        input_errors.append(
            f"{count} duplicate prediction(s) of model {model!r}: the last one of each id is graded"
        )
    return pools


def write_run_report(
    eval_dir: Path,
    run_id: str,
    model: str,
    preds: dict[str, Prediction],
    tasks: list[Task],
    extra: dict[str, Any],
) -> tuple[Path, dict[str, Any]]:
    """The official run report of one model (``make_run_report`` of swebench 5.x, which
    reads the report files under ``logs/run_evaluation``), with our extra keys added."""
    eval_dir = Path(eval_dir)
    eval_dir.mkdir(parents=True, exist_ok=True)
    predictions = {
        i: {"instance_id": i, "model_name_or_path": model, "model_patch": p.model_patch}
        for i, p in preds.items()
    }
    dataset = [{"instance_id": t.id} for t in tasks]
    # The official function reads and writes relative to the working directory and
    # prints its counts: run it in the eval directory, quietly.
    with contextlib.chdir(eval_dir), contextlib.redirect_stdout(io.StringIO()):
        path = make_run_report(predictions, dataset, run_id, client=None, report_dir=".")
    path = eval_dir / path
    report = json.loads(path.read_text())
    report.update(extra)
    path.write_text(json.dumps(report, indent=4))
    return path, report


def evaluate(
    predictions_paths: Path | list[Path],
    dataset: DatasetConfig,
    grading: GradingConfig,
    images: ImagesConfig,
    run_id: str,
    client: docker.DockerClient | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    on_total: Callable[[int], None] | None = None,
) -> EvalOutcome:
    """Grade every prediction of a known task that has no stored result yet, per model;
    write and return the run reports. ``on_total(n)``: how many gradings there are to do
    (the results already stored are not among them), once known. ``stop`` set: no new
    grading starts, runs in flight are abandoned (their containers are the caller's to
    remove) and reports are written for what finished."""
    stop = stop or threading.Event()
    paths = [predictions_paths] if isinstance(predictions_paths, Path) else predictions_paths
    outcome = EvalOutcome(run_id=run_id)
    rows: list[Prediction] = []
    for path in paths:
        found, errors = read_predictions(path)
        rows += found
        outcome.input_errors += errors
    if not rows and not outcome.input_errors:
        outcome.input_errors.append(
            f"no predictions in {', '.join(str(p) for p in paths)} (empty file?)"
        )
    pools = _pools(rows, outcome.input_errors)
    taskset = read_tasks(dataset)
    outcome.input_errors += [str(e) for e in taskset.errors]
    tasks = taskset.tasks
    known = {t.id: t for t in tasks}
    unknown = sorted({i for pool in pools.values() for i in pool if i not in known})
    if unknown and _filtered(dataset):
        # Which of them the dataset has is known only unfiltered: read it once more.
        everything = {t.id for t in read_tasks(_unfiltered(dataset)).tasks}
        outcome.outside_selection = [i for i in unknown if i in everything]
    outcome.input_errors += [
        f"prediction for unknown instance {i!r}"
        for i in unknown
        if i not in outcome.outside_selection
    ]
    results: dict[tuple[str, str], dict[str, Any]] = {}
    todo: list[tuple[Task, Prediction, Path]] = []
    for model, pool in pools.items():
        for iid, pred in pool.items():
            if iid not in known or pred.is_empty:
                continue
            folder = instance_dir(grading.eval_dir, run_id, pred)
            cached = cached_result(folder, pred)
            if cached is not None:
                results[(model, iid)] = cached
            else:
                todo.append((known[iid], pred, folder))
    interrupted: set[tuple[str, str]] = set()
    if on_total is not None:
        on_total(len(todo))
    if todo and not stop.is_set():
        if client is None:
            from swescale.sandbox import docker_client

            client = docker_client()
        grader = Grader.for_tasks(client, [t for t, _, _ in todo], images, grading, dataset)
        grader.labels = {"run": run_id}

        def key(entry: tuple[Task, Prediction, Path]) -> tuple[str, str]:
            return entry[1].model_name_or_path or "None", entry[0].id

        def graded(entry: tuple[Task, Prediction, Path], result: GradeResult) -> None:
            task, pred, folder = entry
            if stop.is_set():
                # A run that ends after the stop had its container removed under it:
                # not a verdict; a rerun grades it.
                interrupted.add(key(entry))
                return
            image = grader.image(task)
            script = eval_script(task, image).text if not isinstance(image, str) else ""
            results[key(entry)] = store_result(folder, pred, result, script)
            outcome.graded_now += 1
            if progress:
                progress(key(entry)[0], task.id, result)

        def crashed(entry: tuple[Task, Prediction, Path], exc: Exception) -> None:
            # grade() never raises; this guards the guard.
            graded(entry, error_result(entry[0], f"{exc.__class__.__name__}: {exc}"))

        ran = run_pool(
            lambda entry: grader.grade(entry[0], entry[1].model_patch),
            todo,
            workers=grading.workers,
            stop=stop,
            name="grading",
            on_finished=graded,
            on_failed=crashed,
        )
        interrupted.update(key(entry) for entry in ran.not_run)
    outcome.interrupted = stop.is_set()
    for model, pool in pools.items():
        # The official report counts the dataset's instances only (the official harness
        # refuses unknown ids); ours are listed under unknown_ids.
        graded = {i: p for i, p in pool.items() if i in known}
        if not graded:
            outcome.nothing_to_grade[model] = _nothing_to_grade(pool, outcome.outside_selection)
            continue
        extra = _extra_keys(model, pool, results, interrupted, unknown, outcome, grading, run_id)
        path, report = write_run_report(grading.eval_dir, run_id, model, graded, tasks, extra)
        outcome.reports[model], outcome.report_paths[model] = report, str(path)
    return outcome


def _filtered(dataset: DatasetConfig) -> bool:
    return bool(dataset.instance_ids or dataset.regex or dataset.slice)


def _unfiltered(dataset: DatasetConfig) -> DatasetConfig:
    return dataset.model_copy(update={"instance_ids": [], "regex": "", "slice": ""})


def _nothing_to_grade(pool: dict[str, Prediction], outside: list[str]) -> str:
    """Why a model gets no report: its predictions' instances are all left out by the
    selection, or unknown to the dataset."""
    left_out = sum(1 for i in pool if i in outside)
    parts = []
    if left_out:
        parts.append(f"{left_out} outside the selected instances")
    if len(pool) - left_out:
        parts.append(f"{len(pool) - left_out} for instances the dataset does not have")
    return f"nothing to grade among the selected instances ({len(pool)} prediction(s): " + (
        ", ".join(parts) + ")"
    )


def _extra_keys(
    model: str,
    pool: dict[str, Prediction],
    results: dict[tuple[str, str], dict[str, Any]],
    interrupted: set[tuple[str, str]],
    unknown: list[str],
    outcome: EvalOutcome,
    grading: GradingConfig,
    run_id: str,
) -> dict[str, Any]:
    """Our keys beside the official ones: why instances errored, which ran differently."""
    mine = {iid: r for (m, iid), r in results.items() if m == model}
    by_kind: dict[str, list[str]] = {}
    reasons: dict[str, str] = {}
    other_python: dict[str, str] = {}
    network: list[str] = []
    test_setup: dict[str, list[str]] = {}
    for iid, result in sorted(mine.items()):
        if result.get("test_setup_changed"):
            test_setup[iid] = list(result["test_setup_changed"])
        if result.get("status") == "error":
            by_kind.setdefault(str(result.get("error_kind") or "infra"), []).append(iid)
            reasons[iid] = str(result.get("error") or "")
        if result.get("python") and result.get("python") != result.get("python_wanted"):
            other_python[iid] = f"Python {result['python']} instead of {result['python_wanted']}"
        folder = instance_dir(grading.eval_dir, run_id, pool[iid])
        with contextlib.suppress(OSError):
            if needs_network(result, (folder / LOG_TEST_OUTPUT).read_text(errors="replace")):
                network.append(iid)
    extra: dict[str, Any] = {}
    if grading.package_index != "off":
        # Grading had a package index: say so, and which instances' pip used it.
        used = {
            iid: r["package_index"]["reached"]
            for iid, r in sorted(mine.items())
            if (r.get("package_index") or {}).get("reached")
        }
        extra["package_index"] = {
            "mode": grading.package_index,
            "url": grading.package_index_url,
            "allowed_hosts": list(grading.package_index_hosts),
            "used_by": used,
        }
    return {
        **extra,
        "run_id": run_id,
        "patch_apply_failed_ids": by_kind.get("patch_apply_failed", []),
        "timeout_ids": by_kind.get("timeout", []),
        "test_patch_failed_ids": by_kind.get("test_patch_failed", []),
        "infra_error_ids": by_kind.get("infra", []),
        "error_reasons": reasons,
        "interrupted_ids": sorted(i for m, i in interrupted if m == model),
        "needs_network_ids": sorted(network),
        "other_python": other_python,
        # Graded as officially, but the patch changes how the tests run (conftest.py,
        # pytest settings, test plugins): instance -> those paths.
        "test_setup_changed": test_setup,
        "unknown_ids": [i for i in unknown if i in pool and i not in outcome.outside_selection],
        "outside_selection_ids": [i for i in outcome.outside_selection if i in pool],
        "input_errors": outcome.input_errors,
    }


# -- swescale validate -----------------------------------------------------------------


def summarize_names(names: list[str], shown: int = 3) -> str:
    """A long list as its first few names and a count: "a, b, c and 74 more"."""
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


class TaskValidation(BaseModel):
    task_id: str
    repo: str = ""
    ok: bool
    checks: dict[str, bool] = Field(default_factory=dict)
    # One short line per problem; the full test lists are in ``failing``.
    problems: list[str] = Field(default_factory=list)
    failing: dict[str, dict[str, list[str]]] = Field(default_factory=dict)
    build_seconds: float = 0.0
    test_seconds: float = 0.0
    python: str | None = None
    python_wanted: str | None = None
    notes: list[str] = Field(default_factory=list)
    needs_network: bool = False
    # Where the environment came from when it was inferred from the repository's files.
    environment: str = ""

    @property
    def seconds(self) -> float:
        return self.build_seconds + self.test_seconds


def validate_task(
    grader: Grader, task: Task, extra_patches: bool = False, log_dir: Path | None = None
) -> TaskValidation:
    """Gold resolves; with the test patch alone (the empty prediction) every
    FAIL_TO_PASS test fails and every PASS_TO_PASS test passes, so the empty patch does
    not resolve. With ``extra_patches``, the task's decoy and wrong patches (mini tasks)
    must not resolve and its alternative fixes must."""
    out = TaskValidation(
        task_id=task.id,
        repo=task.repo,
        ok=False,
        environment=str(task.extra.get("environment_source") or ""),
    )
    image = grader.image(task)
    out.build_seconds = grader.build_seconds.get(task.id, 0.0)
    if isinstance(image, InstanceImage):
        out.python, out.python_wanted = image.python, image.python_wanted
    gold = grader.grade(task, task.gold_patch or "")
    alone = grader.grade_alone(task)
    out.test_seconds = gold.seconds + alone.seconds
    if log_dir is not None:
        # As the official validation: logs/run_validation/<run_id>/<instance>/<run>/.
        for name, result, patch in (("gold", gold, task.gold_patch), ("no_patch", alone, "")):
            pred = Prediction(instance_id=task.id, model_name_or_path=name, model_patch=patch)
            store_result(Path(log_dir) / task.id / name, pred, result)
    out.notes = list(dict.fromkeys([*gold.notes]))
    for name, result in (("gold", gold), ("test patch alone", alone)):
        if result.status == "error":
            out.problems.append(f"{name}: error ({result.error_kind}): {result.error}")
        out.needs_network |= needs_network(result, result.log)
    out.checks["gold_resolves"] = gold.resolved
    gold_failing = {k: gold.failing(k) for k in (FAIL_TO_PASS, PASS_TO_PASS)}
    if gold.status not in ("error",) and not gold.resolved:
        out.failing["gold"] = gold_failing
        out.problems.append("gold: " + _failing_line(gold_failing))
    out.checks["empty_does_not_resolve"] = alone.status != "error" and not alone.resolved
    still_passing = alone.passing(FAIL_TO_PASS)
    broken = alone.failing(PASS_TO_PASS)
    out.checks["fail_to_pass_fail_without_fix"] = alone.status != "error" and not still_passing
    out.checks["pass_to_pass_pass_without_fix"] = alone.status != "error" and not broken
    if alone.status != "error" and (still_passing or broken):
        out.failing["test_patch_alone"] = {
            "FAIL_TO_PASS passing": still_passing,
            PASS_TO_PASS: broken,
        }
        if still_passing:
            out.problems.append(
                f"FAIL_TO_PASS passing without the fix ({len(still_passing)}): "
                + summarize_names(still_passing)
            )
        if broken:
            out.problems.append(
                f"PASS_TO_PASS failing without the fix ({len(broken)}): " + summarize_names(broken)
            )
    if extra_patches:
        for kind, must_resolve in (
            ("decoy_patches", False),
            ("wrong_patches", False),
            ("alt_patches", True),
        ):
            for index, patch in enumerate(task.extra.get(kind, [])):
                result = grader.grade(task, patch)
                good = result.verdict is not None and result.verdict == must_resolve
                out.checks[f"{kind}[{index}]"] = good
                if not good:
                    out.problems.append(
                        f"{kind}[{index}]: {result.status} {result.error or ''}".strip()
                    )
    out.ok = all(out.checks.values())
    return out


def _failing_line(failing: dict[str, list[str]]) -> str:
    parts = [
        f"{kind} failing ({len(names)}): {summarize_names(names)}"
        for kind, names in failing.items()
        if names
    ]
    return "; ".join(parts) or "not resolved"


def validate(
    grader: Grader,
    tasks: list[Task],
    workers: int = 2,
    extra_patches: bool = False,
    progress: Callable[[TaskValidation], None] | None = None,
    stop: threading.Event | None = None,
    log_dir: Path | None = None,
    prepare: Callable[[Task], Task] | None = None,
) -> list[TaskValidation]:
    """Validate tasks in parallel (in the order given); ``stop`` set: no new task starts.
    With ``log_dir``, each run's files (report, test output, result) are kept there.
    ``prepare`` turns a task into the one validated (an environment inferred from its
    repository); its error is that task's failure."""
    stop = stop or threading.Event()
    results: list[TaskValidation] = []

    def validated(task: Task, found: TaskValidation) -> None:
        if stop.is_set() and not found.ok:
            return  # its runs were cut short by the stop: not a verdict
        results.append(found)
        if progress:
            progress(found)

    def crashed(task: Task, exc: Exception) -> None:
        problem = f"validation failed: {type(exc).__name__}: {exc}"
        validated(
            task, TaskValidation(task_id=task.id, repo=task.repo, ok=False, problems=[problem])
        )

    def job(task: Task) -> TaskValidation:
        return validate_task(grader, prepare(task) if prepare else task, extra_patches, log_dir)

    run_pool(
        job,
        tasks,
        workers=workers,
        stop=stop,
        name="validate",
        on_finished=validated,
        on_failed=crashed,
    )
    order = {t.id: i for i, t in enumerate(tasks)}
    return sorted(results, key=lambda r: order[r.task_id])
