"""Grading literal logs: our reports equal the official ``get_eval_report`` on the same logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from swebench.harness.grading import get_eval_report

from swescale.swebench.config import DatasetConfig
from swescale.swebench.datasets import load_tasks
from swescale.swebench.grading import (
    empty_result,
    error_result,
    grade_log,
    instance_report,
    status_map_from_log,
)
from swescale.swebench.specs import official_test_spec
from swescale.types import Task

DATA = Path("/work/shared/data/swebench/SWE-bench_Verified-test.parquet")
pytestmark = pytest.mark.skipif(
    not DATA.exists(), reason="shared SWE-bench parquet files not present"
)
START, END = "+ : '>>>>> Start Test Output'", "+ : '>>>>> End Test Output'"


@pytest.fixture(scope="module")
def tasks() -> dict[str, Task]:
    ids = [
        "astropy__astropy-12907",
        "django__django-11099",
        "sympy__sympy-20590",
        "psf__requests-2317",
    ]
    return {t.id: t for t in load_tasks(DatasetConfig(name=str(DATA), instance_ids=ids))}


def pytest_log(
    task: Task,
    failing: set[str] = frozenset(),
    missing: set[str] = frozenset(),
    skipped: set[str] = frozenset(),
    exit_code: int | None = None,
) -> str:
    lines = [
        "+ git apply -v -",
        "Applied patch cleanly.",
        START,
        "============ test session starts =====",
    ]
    for name in task.fail_to_pass + task.pass_to_pass:
        if name in missing:
            continue
        status = "FAILED" if name in failing else "SKIPPED" if name in skipped else "PASSED"
        lines.append(f"{status} {name}" + (" - AssertionError" if name in failing else ""))
    lines += ["===== 3 passed in 0.1s =====", END]
    if exit_code is not None:
        lines.append(f">>>>> Test Exit Code: {exit_code}")
    lines.append("+ git checkout ...")
    return "\n".join(lines) + "\n"


def django_log(task: Task, failing: set[str] = frozenset()) -> str:
    lines = [START]
    for name in task.fail_to_pass + task.pass_to_pass:
        lines.append(f"{name} ... {'FAIL' if name in failing else 'ok'}")
    lines += ["", "Ran 20 tests in 0.1s", END]
    return "\n".join(lines) + "\n"


def sympy_log(task: Task, failing: set[str] = frozenset()) -> str:
    lines = [START, "============ test process starts ====="]
    for name in task.fail_to_pass + task.pass_to_pass:
        lines.append(f"{name} {'F' if name in failing else 'ok'}")
    lines += ["=== tests finished ===", END]
    return "\n".join(lines) + "\n"


def official(task: Task, patch: str | None, log: str, tmp_path: Path) -> dict:
    path = tmp_path / f"{task.id}.log"
    path.write_text(log, encoding="utf-8")
    pred = {"instance_id": task.id, "model_name_or_path": "m", "model_patch": patch}
    return get_eval_report(official_test_spec(task), pred, str(path), include_tests_status=True)


def cases(tasks: dict[str, Task]) -> list[tuple[Task, str]]:
    astropy, django = tasks["astropy__astropy-12907"], tasks["django__django-11099"]
    sympy, requests = tasks["sympy__sympy-20590"], tasks["psf__requests-2317"]
    f2p = astropy.fail_to_pass[0]
    return [
        (astropy, pytest_log(astropy)),  # resolved
        (astropy, pytest_log(astropy, failing={f2p})),  # partial: not resolved
        (astropy, pytest_log(astropy, missing={f2p})),  # a missing F2P test fails
        (astropy, pytest_log(astropy, failing={astropy.pass_to_pass[0]})),  # broke a P2P test
        (astropy, pytest_log(astropy).replace(END, "")),  # truncated: no end marker
        (astropy, pytest_log(astropy).replace(START, "")),
        (astropy, ">>>>> Patch Apply Failed:\nerror: patch failed\n" + pytest_log(astropy)),
        (astropy, pytest_log(astropy) + "\n>>>>> Tests Timed Out\n"),
        (astropy, ""),
        # nothing between the markers: the official grader parses the whole log
        (
            astropy,
            f"{START}\n{END}\n"
            + "".join(f"PASSED {n}\n" for n in astropy.fail_to_pass + astropy.pass_to_pass),
        ),
        (django, django_log(django)),
        (django, django_log(django, failing={django.fail_to_pass[1]})),
        (sympy, sympy_log(sympy)),
        (sympy, sympy_log(sympy, failing={sympy.pass_to_pass[3]})),
        (requests, pytest_log(requests)),
        (requests, pytest_log(requests, failing={requests.fail_to_pass[-1]})),
        # 5.x rules: a skipped FAIL_TO_PASS test is not a pass ...
        (astropy, pytest_log(astropy, skipped={f2p})),
        # ... a skipped PASS_TO_PASS test is not a regression ...
        (astropy, pytest_log(astropy, skipped={astropy.pass_to_pass[0]})),
        # ... a log of passes from a run whose test command exited non-zero is invalid ...
        (astropy, pytest_log(astropy, exit_code=1)),
        (astropy, pytest_log(astropy, exit_code=0)),
        # ... and nothing parsed with no sign that the suite ran is invalid.
        (astropy, f"{START}\nImportError while loading conftest\n{END}\n"),
    ]


RESOLVED = [True, False, False, False, False, False, False, False, False, True, True, False]
RESOLVED += [True, False, True, False, False, True, False, True, False]


def test_reports_equal_the_official_function_on_literal_logs(
    tasks: dict[str, Task], tmp_path: Path
) -> None:
    resolved = []
    for task, log in cases(tasks):
        for patch in ("diff --git a/x b/x\n", None, ""):
            ours = instance_report(task, patch, log)
            assert ours == official(task, patch, log, tmp_path), (task.id, log[:200])
            graded = grade_log(task, patch, log)
            assert graded.report == ours and graded.resolved == ours[task.id]["resolved"]
        resolved.append(instance_report(task, "x", log)[task.id]["resolved"])
    # the cases exercise both outcomes and both validity branches
    assert resolved == RESOLVED


def test_5x_rules_that_differ_from_4x(tasks: dict[str, Task]) -> None:
    astropy = tasks["astropy__astropy-12907"]
    f2p = astropy.fail_to_pass[0]
    # a patch that makes the FAIL_TO_PASS test skip does not resolve
    skipped = grade_log(astropy, "p", pytest_log(astropy, skipped={f2p}))
    assert not skipped.resolved and skipped.failing() == [f2p]
    # a conftest that prints PASSED lines while the test command fails: invalid
    faked = grade_log(astropy, "p", pytest_log(astropy, exit_code=1))
    assert not faked.resolved and not faked.report[astropy.id]["patch_successfully_applied"]
    status, valid = status_map_from_log(astropy, pytest_log(astropy, exit_code=1))
    assert (status, valid) == ({}, False)
    # no parsed test and no sign the suite ran: invalid, not "all tests absent"
    assert status_map_from_log(astropy, f"{START}\nboom\n{END}\n") == ({}, False)


def test_truncated_parametrized_ids_match_by_prefix() -> None:
    task = Task(
        id="swescale-mini__x-1",
        repo="swescale-mini/x",
        base_commit="a" * 40,
        problem_statement="p",
        fail_to_pass=["tests/test_x.py::test_grammar[log(photon"],
        pass_to_pass=["tests/test_x.py::test_ok"],
        extra={"test_cmd": "pytest -rA", "log_parser": "pytest"},
    )
    log = (
        f"{START}\nPASSED tests/test_x.py::test_grammar[log(photon/cm2)]\n"
        f"PASSED tests/test_x.py::test_ok\n{END}\n"
    )
    assert grade_log(task, "p", log).resolved
    failing = log.replace(
        "PASSED tests/test_x.py::test_grammar", "FAILED tests/test_x.py::test_grammar"
    )
    assert not grade_log(task, "p", failing).resolved


def test_invalid_utf8_is_replaced_and_grades_like_the_decoded_text(
    tasks: dict[str, Task], tmp_path: Path
) -> None:
    task = tasks["astropy__astropy-12907"]
    text = pytest_log(task)
    raw = text.encode().replace(b"starts", b"starts \xff\xfe\x80")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    ours = instance_report(task, "p", raw)
    decoded = raw.decode("utf-8", errors="replace")
    assert ours == official(task, "p", decoded, tmp_path)
    assert ours[task.id]["resolved"] is True
    result = grade_log(task, "p", raw)
    assert result.status == "resolved" and "\ufffd" in result.log


def test_grade_results_and_their_verdicts(tasks: dict[str, Task]) -> None:
    task = tasks["astropy__astropy-12907"]
    good = grade_log(task, "p", pytest_log(task))
    assert good.status == "resolved" and good.verdict is True
    bad = grade_log(task, "p", pytest_log(task, failing={task.fail_to_pass[0]}))
    assert bad.status == "unresolved" and bad.verdict is False
    assert bad.failing() == [task.fail_to_pass[0]] and bad.passing() == task.fail_to_pass[1:]
    # errors carry no report; some still say "not resolved", others say nothing
    for kind, verdict in (
        ("patch_apply_failed", False),
        ("timeout", False),
        ("test_patch_failed", None),
        ("infra", None),
    ):
        err = error_result(task, "x", kind=kind)
        assert err.status == "error" and err.report == {} and err.verdict is verdict
    assert empty_result(task).verdict is False
    assert grade_log(task, None, "").report[task.id]["patch_is_None"] is True


def test_status_map_of_a_mini_task() -> None:
    task = Task(
        id="swescale-mini__slugkit-1",
        repo="swescale-mini/slugkit",
        base_commit="a" * 40,
        problem_statement="p",
        fail_to_pass=["tests/test_s.py::test_a"],
        pass_to_pass=["tests/test_s.py::test_b"],
        extra={"test_cmd": "pytest -rA", "log_parser": "pytest"},
    )
    log = f"{START}\nPASSED tests/test_s.py::test_a\nFAILED tests/test_s.py::test_b - assert 1 == 2\n{END}\n"
    status, found = status_map_from_log(task, log)
    assert found and status == {
        "tests/test_s.py::test_a": "PASSED",
        "tests/test_s.py::test_b": "FAILED",
    }
    assert grade_log(task, "p", log).status == "unresolved"
    assert grade_log(
        task,
        "p",
        log.replace(
            "FAILED tests/test_s.py::test_b - assert 1 == 2", "PASSED tests/test_s.py::test_b"
        ),
    ).resolved
