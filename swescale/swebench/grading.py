"""Grading a test log, with the official ``swebench`` functions.

Pure functions over literal logs: parse with the task's official log parser, compare with
FAIL_TO_PASS / PASS_TO_PASS through ``swebench.harness.grading.get_eval_tests_report`` and
``get_resolution_status``, and produce the official per-instance report
(``{instance_id: {patch_is_None, patch_exists, patch_successfully_applied, resolved,
tests_status}}``). The marker and bad-code rules mirror ``get_logs_eval``; the tests show
that our reports equal ``get_eval_report`` on the same logs.

Running the tests in a sandbox is in ``swescale.swebench.run``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from swebench.harness.constants import (
    APPLY_PATCH_FAIL,
    END_TEST_OUTPUT,
    FAIL_ONLY_REPOS,
    FAIL_TO_PASS,
    KEY_INSTANCE_ID,
    PASS_TO_PASS,
    RESET_FAILED,
    START_TEST_OUTPUT,
    TESTS_ERROR,
    TESTS_TIMEOUT,
    EvalType,
    ResolvedStatus,
)
from swebench.harness.grading import get_eval_tests_report, get_resolution_status

from swescale.swebench.specs import log_parser_for
from swescale.types import Task

# Lines in a log that mean "no valid test run" to the official grader.
BAD_CODES = (APPLY_PATCH_FAIL, RESET_FAILED, TESTS_ERROR, TESTS_TIMEOUT)

GradeStatus = Literal["resolved", "unresolved", "patch_failed", "empty", "timeout", "error"]


def decode_log(log: str | bytes) -> str:
    """Logs are bytes from a container; invalid UTF-8 becomes U+FFFD, never an error."""
    if isinstance(log, bytes):
        return log.decode("utf-8", errors="replace")
    return log


def status_map_from_log(task: Task, log: str | bytes) -> tuple[dict[str, str], bool]:
    """(test name -> status, whether the log is a valid test run), by the rules of the
    official ``get_logs_eval``: a bad code or a missing marker means no valid run; parse
    between the markers, and the whole log when that finds nothing."""
    content = decode_log(log)
    parse = log_parser_for(task)
    if any(code in content for code in BAD_CODES):
        return {}, False
    if not (START_TEST_OUTPUT in content and END_TEST_OUTPUT in content):
        return {}, False
    between = content.split(START_TEST_OUTPUT)[1].split(END_TEST_OUTPUT)[0]
    status = parse(between)
    if not status:
        status = parse(content)
    return status, True


def eval_type_of(task: Task) -> EvalType:
    if task.repo in FAIL_ONLY_REPOS or task.extra.get("eval_type") == EvalType.FAIL_ONLY.value:
        return EvalType.FAIL_ONLY
    return EvalType.PASS_AND_FAIL


def tests_report(task: Task, status_map: dict[str, str]) -> dict[str, dict[str, list[str]]]:
    """The official FAIL_TO_PASS / PASS_TO_PASS success and failure lists."""
    gold = {
        KEY_INSTANCE_ID: task.id,
        FAIL_TO_PASS: list(task.fail_to_pass),
        PASS_TO_PASS: list(task.pass_to_pass),
    }
    return get_eval_tests_report(status_map, gold, eval_type=eval_type_of(task))


def instance_report(
    task: Task,
    model_patch: str | None,
    log: str | bytes | None,
    include_tests_status: bool = True,
) -> dict[str, dict[str, Any]]:
    """The official per-instance report for a prediction and its evaluation log (what
    ``get_eval_report`` returns), for any task with a log parser, mini tasks included."""
    entry: dict[str, Any] = {
        "patch_is_None": False,
        "patch_exists": False,
        "patch_successfully_applied": False,
        "resolved": False,
    }
    report = {task.id: entry}
    if model_patch is None:
        entry["patch_is_None"] = True
        return report
    entry["patch_exists"] = True
    if log is None:
        return report
    status_map, found = status_map_from_log(task, log)
    if not found:
        return report
    entry["patch_successfully_applied"] = True
    tests = tests_report(task, status_map)
    if get_resolution_status(tests) == ResolvedStatus.FULL.value:
        entry["resolved"] = True
    if include_tests_status:
        entry["tests_status"] = tests
    return report


class GradeResult(BaseModel):
    """One candidate patch graded on one task."""

    instance_id: str
    status: GradeStatus
    resolved: bool = False
    patch_applied: bool = False
    # The official per-instance report: {instance_id: {...}}.
    report: dict[str, Any] = Field(default_factory=dict)
    # The test command's output (between markers and around them), and how applying went.
    log: str = ""
    apply_output: str = ""
    image: str = ""
    seconds: float = 0.0
    # Set when the run could not judge the patch (engine, image build): not a verdict.
    error: str | None = None
    notes: list[str] = Field(default_factory=list)

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
    apply_failed: bool = False,
    timed_out: bool = False,
    apply_output: str = "",
    seconds: float = 0.0,
) -> GradeResult:
    """A GradeResult from a finished run's log (pure)."""
    text = decode_log(log)
    if apply_failed:
        # The official log carries the marker, so the official report says "not applied".
        text = f"{APPLY_PATCH_FAIL}:\n{apply_output}\n{text}"
    report = instance_report(task, patch, text)
    entry = report[task.id]
    resolved = bool(entry["resolved"])
    status: GradeStatus
    if apply_failed:
        status = "patch_failed"
    elif timed_out:
        # A run that hangs fails, whatever it printed before the kill.
        status, resolved = "timeout", False
        entry["resolved"] = False
    elif resolved:
        status = "resolved"
    else:
        status = "unresolved"
    return GradeResult(
        instance_id=task.id,
        status=status,
        resolved=resolved,
        patch_applied=not apply_failed,
        report=report,
        log=text,
        apply_output=apply_output,
        seconds=seconds,
    )


def error_result(task: Task, message: str, seconds: float = 0.0, image: str = "") -> GradeResult:
    """A run that could not judge the patch (the official report of an errored run)."""
    return GradeResult(
        instance_id=task.id,
        status="error",
        report=instance_report(task, "", None),
        error=message,
        seconds=seconds,
        image=image,
    )
