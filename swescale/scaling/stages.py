"""The per-task stages after exploration, as small functions over the other subpackages:
instance image, verifiers, selection, grading. Kept apart from the batch loop so each one
can be called (and tested) alone, and so the loop reads as the straight line of
architecture.md.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from swescale.config import RunConfig
from swescale.record import RunDir
from swescale.scaling.ledger import BudgetLedger
from swescale.types import Candidate, Cost, Selection, Task

log = logging.getLogger(__name__)


def image_tag(image: Any) -> str:
    """The tag of an instance image (an ``InstanceImage`` or a plain tag)."""
    return str(getattr(image, "tag", image))


def image_workdir(image: Any, default: str = "/repo") -> str:
    return str(getattr(image, "workdir", default) or default)


def open_task_sandbox(client: Any, image: Any, cfg: RunConfig, labels: dict[str, str]) -> Any:
    """A sandbox from a task's instance image, with the image's workdir and environment.

    The base commit is the image's HEAD, not ``task.base_commit``: where a spec's setup
    edits tracked files the image commits them, and a patch must not carry those edits.
    """
    from swescale.sandbox import DockerSandbox

    if hasattr(image, "sandbox_config"):
        sandbox_cfg = image.sandbox_config(cfg.sandbox)
    else:
        sandbox_cfg = cfg.sandbox.model_copy(update={"workdir": image_workdir(image)})
    return DockerSandbox.create(client, image_tag(image), sandbox_cfg, labels=labels)


class ImageProvider:
    """Instance images for a run's tasks, sharing one repository source (the mini
    benchmark's mirrors are built once, on first use)."""

    def __init__(self, client: Any, cfg: RunConfig) -> None:
        self.client = client
        self.cfg = cfg
        self.tasks: list[Task] = []
        self._repos: Any = None
        self._lock = threading.Lock()

    def prepare(self, tasks: list[Task]) -> None:
        """The tasks of the run (which repositories to provide)."""
        self.tasks = list(tasks)

    def repos(self, task: Task) -> Any:
        from pathlib import Path

        from swescale.swebench.specs import repo_source_for

        with self._lock:
            if self._repos is None:
                ds = self.cfg.dataset
                self._repos = repo_source_for(
                    self.tasks or [task],
                    Path(ds.repo_cache_dir or self.cfg.images.cache_dir),
                    repos_dir=ds.repos_dir,
                    url=ds.repo_url,
                    history_depth=ds.history_depth,
                )
            return self._repos

    def __call__(self, task: Task) -> Any:
        from swescale.swebench.images import instance_image

        return instance_image(
            self.client,
            task,
            images=self.cfg.images,
            grading=self.cfg.grading,
            repos=self.repos(task),
        )


def image_digest(client: Any, image: Any) -> str:
    try:
        return str(client.images.get(image_tag(image)).id)
    except Exception:  # noqa: BLE001 - a digest is a record, not a requirement
        return ""


def labels_known(task: Task) -> bool:
    """Whether the task carries what grading needs (the mini benchmark always does)."""
    return bool(task.fail_to_pass) and bool(task.test_patch)


def write_candidates(rundir: RunDir, task_id: str, candidates: list[Candidate]) -> None:
    """candidates.jsonl (verdicts live in verdicts/) and labels.json when graded, in the
    format ``swescale select`` and the selection comparison read."""
    from swescale.record.task import write_candidates as write_lines
    from swescale.record.task import write_labels

    write_lines(rundir.task_dir(task_id), candidates)
    labels = {c.id: c.resolved for c in candidates if c.resolved is not None}
    if labels:
        write_labels(rundir.task_dir(task_id), labels)


def write_task(rundir: RunDir, task: Task) -> None:
    """task.json: the task as the run saw it, so selection can be re-run offline."""
    from swescale.record.task import write_task as write_task_json

    write_task_json(rundir.task_dir(task.id), task)


def run_verifiers(
    verifiers: list[Any],
    task: Task,
    candidates: list[Candidate],
    rundir: RunDir,
    ledger: BudgetLedger,
) -> list[str]:
    """Annotate candidates with each verifier's verdicts (in place), write
    ``verdicts/<name>.json``, charge verdict costs; returns failure notes (a verifier that
    crashes is recorded and skipped: selection then works with less evidence)."""
    from swescale.verifiers.base import annotate

    notes = []
    for verifier in verifiers:
        name = getattr(verifier, "name", type(verifier).__name__)
        if ledger.exceeded(task.id):
            notes.append(f"{name}: skipped ({ledger.exceeded(task.id)})")
            continue
        try:
            verdicts = annotate(task, candidates, verifier)
        except Exception as exc:  # noqa: BLE001 - one verifier failing never stops the task
            notes.append(f"{name}: {type(exc).__name__}: {exc}")
            rundir.record_failure(task.id, f"verifier:{name}", f"{type(exc).__name__}: {exc}")
            continue
        spent = Cost()
        for verdict in verdicts.values():
            spent = spent + verdict.cost
        ledger.charge(task.id, spent, _verifier_kind(name))
        from swescale.record.task import write_verdicts

        write_verdicts(rundir.task_dir(task.id), name, verdicts)
    return notes


def _verifier_kind(name: str) -> str:
    """The ledger's bucket for a verifier's cost."""
    if name in ("judge", "reward_model"):
        return "judge"
    if name == "repro":
        return "testgen"
    return "verifier"


def select(selector: Any, task: Task, candidates: list[Candidate], rundir: RunDir) -> Selection:
    from swescale.selection.selectors import no_candidates

    name = getattr(selector, "name", type(selector).__name__)
    from swescale.record.task import write_selection

    selection = no_candidates(task, name) if not candidates else selector.select(task, candidates)
    write_selection(rundir.task_dir(task.id), selection)
    return selection


def grade(
    client: Any,
    task: Task,
    patch: str,
    image: Any,
    cfg: RunConfig,
    ledger: BudgetLedger,
    run_id: str = "",
    log_path: Path | None = None,
) -> tuple[bool | None, dict[str, Any]]:
    """Grade one patch with the task's own tests: (resolved, report). Never raises: an
    infrastructure failure gives (None, report with "error"). With ``log_path`` the test
    output is kept there and the report names it (``log_path``)."""
    from swescale.swebench.run import grade_patch

    labels = {"run": run_id} if run_id else None
    try:
        result = grade_patch(client, task, patch, cfg.grading, image, labels=labels)
    except Exception as exc:  # noqa: BLE001 - grading is a record, never a crash
        return None, {"error": f"{type(exc).__name__}: {exc}"}
    data = result.model_dump(mode="json", exclude={"log"})
    if log_path is not None and result.log:
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text(result.log, encoding="utf-8", errors="replace")
            data["log_path"] = str(log_path)
        except OSError as exc:  # the verdict stands without its log
            data["log_error"] = f"{type(exc).__name__}: {exc}"
    ledger.charge(task.id, Cost(sandbox_seconds=float(result.seconds or 0.0)), "grading")
    # A patch that does not apply, or hangs the tests, does not resolve the task; an
    # engine or environment failure says nothing about it.
    return result.verdict, data


def verifier_sandbox_factory(
    client: Any, image: Any, cfg: RunConfig, task: Task, run_id: str
) -> Any:
    """Fresh sandboxes for verifiers, labelled with the run so a rerun reaps leftovers."""

    def make() -> Any:
        labels = {"run": run_id, "task": task.id, "role": "verifier"}
        return open_task_sandbox(client, image, cfg, labels)

    return make


def build_verifiers(
    cfg: RunConfig,
    task: Task,
    *,
    client: Any,
    image: Any,
    model: Any,
    ledger: BudgetLedger,
    run_id: str,
) -> tuple[list[Any], list[str]]:
    """The verifiers ``cfg.verifiers.enabled`` names, for one task, in order; and notes
    on the ones that cannot run here (e.g. a judge without a model)."""
    from swescale.verifiers.config import BuildContext
    from swescale.verifiers.config import build_verifiers as build

    context = BuildContext(
        task=task,
        make_sandbox=verifier_sandbox_factory(client, image, cfg, task, run_id),
        workers=max(1, min(cfg.scaling.max_concurrent_sandboxes, 4)),
        model=model,
        charge=lambda cost, kind: ledger.charge(task.id, cost, kind, model=cfg.model.name),
        agent=cfg.agent,
        tool_mode=cfg.model.tool_mode,
    )
    return build(cfg.verifiers.specs(), context)
