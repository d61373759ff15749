"""Specs, test commands and log parsers for every shared Verified and Lite record: the
install recipes of swebench 4.1.0 and the parsers of the installed (5.x) package."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from swebench.harness.log_parsers import PARSER_REGISTRY

from swescale.swebench.config import DatasetConfig
from swescale.swebench.datasets import load_tasks
from swescale.swebench.recipes import RECIPES_RELEASE, recipes
from swescale.swebench.specs import (
    SpecError,
    conda_to_pip,
    env_plan,
    files_of_test_patch,
    log_parser_for,
    nearest_python,
    official_spec,
    spec_problem,
    task_test_command,
    task_test_files,
)
from swescale.types import Task

DATA = Path("/work/shared/data/swebench")
PARQUETS = sorted(DATA.glob("*.parquet"))
pytestmark = pytest.mark.skipif(not PARQUETS, reason="shared SWE-bench parquet files not present")


@pytest.fixture(scope="module")
def shared_tasks() -> list[Task]:
    tasks: list[Task] = []
    for path in PARQUETS:
        tasks += load_tasks(DatasetConfig(name=str(path), strict=True))
    return tasks


def _official_test_command(eval_script: str) -> str:
    match = re.search(
        r": '>>>>> Start Test Output'\n(.*?)\n: '>>>>> End Test Output'", eval_script, re.S
    )
    assert match, "v5 eval_script without markers"
    return match.group(1)


def test_every_record_resolves_to_a_spec_and_a_parser(shared_tasks: list[Task]) -> None:
    problems = {t.id: spec_problem(t) for t in shared_tasks}
    assert {k: v for k, v in problems.items() if v} == {}
    assert len(shared_tasks) == 823


def test_test_command_equals_the_official_eval_script_for_every_record(
    shared_tasks: list[Task],
) -> None:
    mismatched = [
        t.id
        for t in shared_tasks
        if task_test_command(t) != _official_test_command(t.extra["eval_script"])
    ]
    assert mismatched == []


def test_test_files_are_the_ones_the_official_script_resets(shared_tasks: list[Task]) -> None:
    # The v5 scripts also name files the test patch creates or renames to (a `git
    # checkout` of those fails as a whole); we reset the existing ones and remove the
    # created ones, so the two lists together are exactly what the script names.
    differ = 0
    for task in shared_tasks:
        files = files_of_test_patch(task.test_patch or "")
        (line,) = set(
            re.findall(rf"git checkout {task.base_commit} (.*)", task.extra["eval_script"])
        )
        named = set(line.split())
        assert named <= set(files.existing) | set(files.created), task.id
        if set(files.existing) != named:
            differ += 1
            assert files.created, task.id  # only new files and renames make a difference
        assert task_test_files(task) == list(files.existing)
    assert 0 < differ < len(shared_tasks) // 4


def test_row_log_parser_is_the_repository_parser(shared_tasks: list[Task]) -> None:
    # A row without the column (older data) gets the parser the recipes name for its
    # repository, which parses like the one a v5 row names (some are aliases).
    sample = "PASSED a.py::t\nFAILED b.py::u - boom\n"
    names = recipes().parser_names
    for task in shared_tasks:
        bare = task.model_copy(update={"extra": {}})
        assert log_parser_for(bare)(sample) == log_parser_for(task)(sample), task.id
        assert names[task.repo] in PARSER_REGISTRY


def test_recipes_are_the_official_4x_release_and_5x_stays_importable() -> None:
    import swebench

    assert swebench.__version__.startswith("5.")
    found = recipes()
    assert found.specs["pytest-dev/pytest"]["5.4"]["test_cmd"] == "pytest -rA"
    assert found.module.__file__.endswith("swebench/harness/test_spec/python.py")
    assert f"swebench-{RECIPES_RELEASE}" in found.module.__file__
    # loading the 4.x recipes did not replace the installed package
    assert swebench.__version__.startswith("5.")
    from swebench.harness.grading import get_logs_eval

    assert "SUITE_RAN" in get_logs_eval.__globals__


def test_python_mapping_onto_debian_suites() -> None:
    assert nearest_python("3.5") == ("bullseye", "3.9")
    assert nearest_python("3.6") == ("bullseye", "3.9")
    assert nearest_python("3.9") == ("bullseye", "3.9")
    assert nearest_python("3.10") == ("bookworm", "3.11")  # tie goes to the newer
    assert nearest_python("3.11") == ("bookworm", "3.11")
    assert nearest_python("3.12") == ("trixie", "3.13")
    assert nearest_python("3.8", {"bookworm": "3.11"}) == ("bookworm", "3.11")


def test_env_plans_record_how_they_differ_from_conda(shared_tasks: list[Task]) -> None:
    suites: Counter[str] = Counter()
    for task in shared_tasks:
        plan = env_plan(task)
        suites[plan.suite] += 1
        assert plan.unsupported is None
        assert plan.notes[0].startswith("venv at /opt/venv")
        if plan.python != plan.python_wanted:
            assert any(f"instead of {plan.python_wanted}" in n for n in plan.notes), task.id
    assert set(suites) <= {"bullseye", "bookworm"}
    django = next(t for t in shared_tasks if t.id == "django__django-11099")
    assert env_plan(django).python_wanted == "3.6" and env_plan(django).suite == "bullseye"


def test_unknown_repo_or_version_is_a_clear_spec_error() -> None:
    task = Task(
        id="x__y-1", repo="x/y", base_commit="a" * 40, problem_statement="p", test_patch="d"
    )
    with pytest.raises(SpecError, match="x__y-1: repository 'x/y' has no spec"):
        official_spec(task)
    assert "has no spec" in (spec_problem(task) or "")
    old = task.model_copy(update={"repo": "django/django", "version": "0.1"})
    assert "no spec for version '0.1'" in (spec_problem(old) or "")
    weird = old.model_copy(update={"version": "3.0", "extra": {"log_parser": "parse_log_nope"}})
    assert "unknown log parser" in (spec_problem(weird) or "")


def test_mini_style_tasks_use_their_own_recipe() -> None:
    patch = (
        "diff --git a/tests/test_a.py b/tests/test_a.py\n--- a/tests/test_a.py\n+++ b/tests/test_a.py\n"
        "@@ -1 +1 @@\n-x\n+y\n"
        "diff --git a/tests/test_new.py b/tests/test_new.py\nnew file mode 100644\n--- /dev/null\n"
        "+++ b/tests/test_new.py\n@@ -0,0 +1 @@\n+z\n"
    )
    task = Task(
        id="swescale-mini__slugkit-1",
        repo="swescale-mini/slugkit",
        base_commit="a" * 40,
        problem_statement="p",
        test_patch=patch,
        extra={"test_cmd": "pytest -rA -p no:cacheprovider", "log_parser": "pytest"},
    )
    assert spec_problem(task) is None
    assert (
        task_test_command(task)
        == "pytest -rA -p no:cacheprovider tests/test_a.py tests/test_new.py"
    )
    assert task_test_files(task) == ["tests/test_a.py"]  # new files are not reset
    assert log_parser_for(task)("PASSED tests/test_a.py::t\n") == {"tests/test_a.py::t": "PASSED"}


def test_conda_package_lists_as_pip_requirements() -> None:
    assert conda_to_pip("'numpy==1.19.2' 'scipy==1.5.2' cython") == [
        "numpy==1.19.2",
        "scipy==1.5.2",
        "cython",
    ]
    assert conda_to_pip("numpy=1.19 pytest") == ["numpy==1.19.*", "pytest"]
    assert conda_to_pip("requirements.txt") == []


def test_loading_the_recipes_never_hides_the_installed_package_from_other_threads() -> None:
    # In a fresh interpreter: threads import the installed (5.x) harness the whole time
    # the 4.x recipes load; every one of their imports must see 5.x.
    import subprocess
    import sys

    code = """
import sys, threading
stop, errors = threading.Event(), []
def hammer():
    while not stop.is_set():
        try:
            import swebench
            from swebench.harness.grading import SUITE_RAN
            assert swebench.__version__.startswith("5."), swebench.__version__
        except Exception as exc:
            errors.append(repr(exc))
threads = [threading.Thread(target=hammer) for _ in range(4)]
for t in threads: t.start()
from swescale.swebench.recipes import recipes
found = recipes()
stop.set()
for t in threads: t.join()
assert not errors, errors[:3]
assert found.specs["pytest-dev/pytest"]["5.4"]["test_cmd"] == "pytest -rA"
assert sys.modules["swebench"].__version__.startswith("5.")
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
