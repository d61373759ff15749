"""Grading a test log with the official ``swebench`` (5.x) functions.

Pure functions over literal logs. ``instance_report`` is the official ``get_eval_report``
itself, called on the log: the task's official parser, ``get_logs_eval``'s validity rules
(both markers, no bad code, evidence that the suite ran, the recorded test exit status
agreeing with the log), FAIL_TO_PASS / PASS_TO_PASS through ``get_eval_tests_report``
(a skipped FAIL_TO_PASS test is a failure, a truncated parametrized id matches by prefix)
and ``get_resolution_status``.

A run that cannot be graded is an error, as in the official harness, never an
"unresolved" verdict: the candidate patch did not apply (``patch_apply_failed``), the tests
ran past the timeout (``timeout``), the test patch did not apply (``test_patch_failed``),
or the machinery failed (``infra``: engine, image build). Errors write no report.json, so
a rerun retries them.

Running the tests in a sandbox is in ``swescale.swebench.run``.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Literal

from pydantic import BaseModel, Field
from swebench.harness.constants import FAIL_TO_PASS, PASS_TO_PASS
from swebench.harness.grading import get_eval_report, get_logs_eval

from swescale.swebench.specs import official_test_spec
from swescale.types import Task

GradeStatus = Literal["resolved", "unresolved", "empty", "error"]
ErrorKind = Literal["patch_apply_failed", "timeout", "test_patch_failed", "infra"]
# Errors that still say the patch does not resolve the task (a verdict for labels and
# pass@k); the others say nothing about the patch.
VERDICT_ERRORS: tuple[str, ...] = ("patch_apply_failed", "timeout")


def decode_log(log: str | bytes) -> str:
    """Logs are bytes from a container; invalid UTF-8 becomes U+FFFD, never an error (as
    the official ``exec_run_with_timeout`` decodes)."""
    if isinstance(log, bytes):
        return log.decode("utf-8", errors="replace")
    return log


class _LogFile:
    """The official functions read logs from a path: a temporary file holding ``text``."""

    def __init__(self, text: str) -> None:
        handle, self.path = tempfile.mkstemp(prefix="swescale-log-", suffix=".txt")
        with os.fdopen(handle, "w", encoding="utf-8", errors="surrogateescape") as out:
            out.write(text)

    def __enter__(self) -> str:
        return self.path

    def __exit__(self, *exc: object) -> None:
        os.unlink(self.path)


def status_map_from_log(task: Task, log: str | bytes) -> tuple[dict[str, str], bool]:
    """(test name -> status, whether the log is a valid test run): the official
    ``get_logs_eval``."""
    with _LogFile(decode_log(log)) as path:
        return get_logs_eval(official_test_spec(task), path)


def instance_report(
    task: Task,
    model_patch: str | None,
    log: str | bytes | None,
    include_tests_status: bool = True,
) -> dict[str, dict[str, Any]]:
    """The official per-instance report of a prediction and its test log: the official
    ``get_eval_report`` (``{instance_id: {patch_is_None, patch_exists,
    patch_successfully_applied, resolved, infra_failure, tests_status}}``)."""
    prediction = {"instance_id": task.id, "model_name_or_path": "", "model_patch": model_patch}
    with _LogFile(decode_log(log or "")) as path:
        return get_eval_report(official_test_spec(task), prediction, path, include_tests_status)


class GradeResult(BaseModel):
    """One candidate patch graded on one task."""

    instance_id: str
    status: GradeStatus
    resolved: bool = False
    patch_applied: bool = False
    # The official per-instance report: {instance_id: {...}}; empty for errors.
    report: dict[str, Any] = Field(default_factory=dict)
    # The eval script's output, and how applying the candidate went.
    log: str = ""
    apply_output: str = ""
    # Which of the official apply commands applied the candidate (None: none did).
    apply_strategy: str | None = None
    # Paths of the candidate that change how the tests run (conftest.py, pytest settings,
    # test plugins: ``swescale.patches.changed_test_setup``). Graded all the same, as the
    # official harness grades them; a note says so.
    test_setup_changed: list[str] = Field(default_factory=list)
    image: str = ""
    seconds: float = 0.0
    # Set when the run could not be graded; ``error_kind`` says why.
    error: str | None = None
    error_kind: ErrorKind | None = None
    notes: list[str] = Field(default_factory=list)
    # How the eval script differs from the official one (local images, safety).
    adaptations: list[str] = Field(default_factory=list)
    # The interpreter the tests ran on and the one the spec asks for (local builds).
    python: str | None = None
    python_wanted: str | None = None
    # With grading.package_index=proxy: the proxy, the allowed hosts, and the hosts pip
    # reached and was refused through it (None: no package index in this run).
    package_index: dict[str, Any] | None = None

    @property
    def verdict(self) -> bool | None:
        """Resolved or not where the run says so (a patch that does not apply, or makes
        the tests hang, does not resolve the task); None where it says nothing."""
        if self.status in ("resolved", "unresolved", "empty"):
            return self.resolved
        return False if self.error_kind in VERDICT_ERRORS else None

    @property
    def tests_status(self) -> dict[str, Any]:
        return self.report.get(self.instance_id, {}).get("tests_status", {})

    def failing(self, kind: str = FAIL_TO_PASS) -> list[str]:
        return list(self.tests_status.get(kind, {}).get("failure", []))

    def passing(self, kind: str = FAIL_TO_PASS) -> list[str]:
        return list(self.tests_status.get(kind, {}).get("success", []))


def grade_log(
    task: Task,
    patch: str | None,
    log: str | bytes,
    *,
    apply_output: str = "",
    apply_strategy: str | None = None,
    seconds: float = 0.0,
) -> GradeResult:
    """A GradeResult from a finished run's log (pure): the official report decides."""
    text = decode_log(log)
    report = instance_report(task, patch, text)
    entry = report[task.id]
    resolved = bool(entry["resolved"])
    status: GradeStatus = "resolved" if resolved else "unresolved"
    return GradeResult(
        instance_id=task.id,
        status=status,
        resolved=resolved,
        patch_applied=patch is not None,
        report=report,
        log=text,
        apply_output=apply_output,
        apply_strategy=apply_strategy,
        seconds=seconds,
    )


def empty_result(task: Task) -> GradeResult:
    """An empty prediction: not run, not resolved (the official ``empty_patch_ids``)."""
    return GradeResult(instance_id=task.id, status="empty")


def error_result(
    task: Task,
    message: str,
    seconds: float = 0.0,
    image: str = "",
    kind: ErrorKind = "infra",
    log: str = "",
    apply_output: str = "",
) -> GradeResult:
    """A run that could not be graded: no report, as in the official harness."""
    return GradeResult(
        instance_id=task.id,
        status="error",
        error=message,
        error_kind=kind,
        seconds=seconds,
        image=image,
        log=log,
        apply_output=apply_output,
    )


__all__ = [
    "FAIL_TO_PASS",
    "PASS_TO_PASS",
    "ErrorKind",
    "GradeResult",
    "GradeStatus",
    "decode_log",
    "empty_result",
    "error_result",
    "grade_log",
    "instance_report",
    "status_map_from_log",
]
