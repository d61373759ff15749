"""The bundled mini benchmark: every task behaves as its labels say, on real git checkouts
with the host's pytest, graded by the official swebench log parser and grading functions."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import git
import pytest
from swebench.harness.constants import FAIL_TO_PASS, PASS_TO_PASS, ResolvedStatus
from swebench.harness.grading import get_eval_tests_report, get_resolution_status
from swebench.harness.log_parsers.python import parse_log_pytest

from swescale.swebench.mini import (
    KINDS,
    MINI_REPOS,
    MiniBuildError,
    build_mini_repos,
    candidate_patches,
    clone_at,
    mini_tasks,
)
from swescale.swebench.mini.build import _check_spec
from swescale.swebench.mini.loosediff import LooseDiffError, apply_loose_diff
from swescale.swebench.mini.spec import TaskSpec
from swescale.types import Task

TASKS = mini_tasks()

# sha256 over "id base_commit" lines. A change here means every recorded run on the mini
# benchmark points at commits that no longer exist: change fixtures knowingly, then
# update this value.
PINNED_BASE_COMMITS_DIGEST = "b2e53fec79e4b268ca5cdd46fcb23594ddc0593e0b3c7459cd7347f0412f2d67"


@pytest.fixture(scope="module")
def mirrors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_mini_repos(tmp_path_factory.mktemp("mirrors"))


def _run_tests(checkout: Path, test_files: list[str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    # Only pytest itself is needed; the host's other plugins cost seconds per start.
    env.update(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider", *test_files]
    proc = subprocess.run(
        command, cwd=checkout, env=env, capture_output=True, text=True, timeout=120
    )
    return parse_log_pytest(proc.stdout, None)


def _grade(task: Task, status: dict[str, str]) -> dict:
    gold = {FAIL_TO_PASS: task.fail_to_pass, PASS_TO_PASS: task.pass_to_pass}
    report = get_eval_tests_report(status, gold)
    report["resolved"] = get_resolution_status(report) == ResolvedStatus.FULL.value
    return report


class _Checkout:
    """One checkout at the task's base commit, reset between candidate patches."""

    def __init__(self, task: Task, mirror: Path, root: Path) -> None:
        self.task = task
        self.path = clone_at(mirror, task.base_commit, root / "repo")
        self.repo = git.Repo(self.path)
        self.patch_dir = root

    def run(self, *patches: str, whole_suite: bool = False) -> dict[str, str]:
        self.repo.git.reset("--hard", "-q", self.task.base_commit)
        self.repo.git.clean("-fdxq")
        for i, patch in enumerate(patches):
            patch_file = self.patch_dir / f"p{i}.diff"
            patch_file.write_text(patch)
            self.repo.git.apply(str(patch_file))
        # The official harness runs only the test files the test patch touches.
        return _run_tests(self.path, [] if whole_suite else self.task.extra["test_files"])


def test_catalog_has_the_required_mix() -> None:
    assert len(TASKS) >= 8
    assert len({t.repo for t in TASKS}) >= 4
    assert set(MINI_REPOS) == {t.repo for t in TASKS}
    assert len({t.id for t in TASKS}) == len(TASKS)
    covered = {kind for t in TASKS for kind in t.extra["kinds"]}
    assert set(KINDS) <= covered
    for task in TASKS:
        assert task.source == "mini" and task.version == "0.1"
        assert task.repo.startswith("swescale-mini/") and len(task.base_commit) == 40
        assert task.fail_to_pass and task.gold_patch and task.test_patch
        assert task.extra["wrong_patches"], f"{task.id} needs a wrong candidate"
        assert task.extra["test_cmd"] == "pytest -rA -p no:cacheprovider"
        assert task.extra["log_parser"] == "pytest"
        if "decoy" in task.extra["kinds"]:
            assert task.extra["decoy_patches"]
    # Selection tests need right-but-different candidates too.
    assert all(t.extra["alt_patches"] for t in TASKS)


def test_mini_tasks_returns_copies() -> None:
    first = mini_tasks()
    first[0].extra["kinds"].append("changed")
    first[0].fail_to_pass.clear()
    again = mini_tasks()[0]
    assert "changed" not in again.extra["kinds"] and again.fail_to_pass


def test_problem_statements_do_not_leak_the_fix() -> None:
    for task in TASKS:
        added = [
            line[1:].strip()
            for line in task.gold_patch.splitlines()
            if line.startswith("+") and not line.startswith("+++")
        ]
        leaked = [line for line in added if len(line) >= 12 and line in task.problem_statement]
        assert not leaked, f"{task.id} problem statement contains {leaked}"
        assert "diff --git" not in task.problem_statement


def test_base_commits_are_stable_across_builds(tmp_path: Path) -> None:
    first = build_mini_repos(tmp_path / "one")
    second = build_mini_repos(tmp_path / "two")
    for task in TASKS:
        for mirrors in (first, second):
            mirror = git.Repo(mirrors[task.repo])
            assert mirror.bare
            assert mirror.commit(task.base_commit).hexsha == task.base_commit
    heads = [
        {name: git.Repo(path).heads.main.commit.hexsha for name, path in built.items()}
        for built in (first, second)
    ]
    assert heads[0] == heads[1]
    lines = "".join(f"{t.id} {t.base_commit}\n" for t in TASKS)
    assert hashlib.sha256(lines.encode()).hexdigest() == PINNED_BASE_COMMITS_DIGEST


def test_build_is_idempotent_and_repairs_broken_mirrors(tmp_path: Path) -> None:
    mirrors = build_mini_repos(tmp_path)
    some = next(iter(mirrors.values()))
    marker = some / "swescale-marker"
    marker.write_text("kept when the mirror is current")
    assert build_mini_repos(tmp_path) == mirrors
    assert marker.exists()
    (some / "HEAD").unlink()  # a broken mirror is rebuilt, not trusted
    build_mini_repos(tmp_path)
    assert not marker.exists() and git.Repo(some).heads.main.commit
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("task", TASKS, ids=[t.id for t in TASKS])
def test_task_candidates_grade_as_labelled(
    task: Task, mirrors: dict[str, Path], tmp_path: Path
) -> None:
    checkout = _Checkout(task, mirrors[task.repo], tmp_path)
    # The whole suite, to see that the rest of the repository is healthy too.
    before_all = checkout.run(task.test_patch, whole_suite=True)
    after_all = checkout.run(task.test_patch, task.gold_patch, whole_suite=True)
    outside = {
        t: s for t, s in before_all.items() if t.split("::")[0] not in task.extra["test_files"]
    }
    assert set(outside.values()) <= {"PASSED"} and outside.items() <= after_all.items()

    def in_scope(status: dict[str, str]) -> dict[str, str]:
        return {t: s for t, s in status.items() if t.split("::")[0] in task.extra["test_files"]}

    before, after = in_scope(before_all), in_scope(after_all)  # before is the empty candidate
    passed_before = {t for t, s in before.items() if s == "PASSED"}
    passed_after = {t for t, s in after.items() if s == "PASSED"}
    # The lists are exactly what the official definitions give on these two runs.
    assert set(task.fail_to_pass) == passed_after - passed_before
    assert set(task.pass_to_pass) == passed_after & passed_before
    assert passed_after == set(after), f"gold leaves failures: {after}"
    assert not _grade(task, before)["resolved"]
    assert _grade(task, after)["resolved"]

    for label, patch, resolves in candidate_patches(task):
        if label in ("gold", "empty"):
            continue  # graded above
        report = _grade(task, checkout.run(task.test_patch, patch))
        assert report["resolved"] == resolves, label
        if label.startswith("decoy"):
            # Right on the tests the issue is about, wrong on the ones it must keep.
            assert not report[FAIL_TO_PASS]["failure"], label
            assert report[PASS_TO_PASS]["failure"], label


@pytest.mark.slow
def test_fixture_repos_are_installable_packages(mirrors: dict[str, Path], tmp_path: Path) -> None:
    """``pip install -e .`` needs a buildable project; building a wheel proves it offline."""
    for name, mirror in mirrors.items():
        checkout = clone_at(mirror, "main", tmp_path / name.replace("/", "__"))
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                str(tmp_path / "wheels"),
                str(checkout),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
    short_names = {repo.name for repo in MINI_REPOS.values()}
    wheels = {p.name.split("-")[0] for p in (tmp_path / "wheels").iterdir()}
    assert wheels == short_names


def test_loose_diff_errors_are_clear() -> None:
    tree = {"a.py": "x = 1\ny = 2\nx = 1\n"}
    assert apply_loose_diff(tree, "--- a/a.py\n+++ b/a.py\n@@\n-y = 2\n+y = 3\n") == {
        "a.py": "x = 1\ny = 3\nx = 1\n"
    }
    with pytest.raises(LooseDiffError, match="found 2 times"):
        apply_loose_diff(tree, "--- a/a.py\n+++ b/a.py\n@@\n-x = 1\n+x = 2\n")
    with pytest.raises(LooseDiffError, match="not found"):
        apply_loose_diff(tree, "--- a/a.py\n+++ b/a.py\n@@\n-z = 1\n")
    with pytest.raises(LooseDiffError, match="missing file"):
        apply_loose_diff(tree, "--- a/b.py\n+++ b/b.py\n@@\n-z = 1\n")
    with pytest.raises(LooseDiffError, match="not followed"):
        apply_loose_diff(tree, "--- a/a.py\n@@\n")
    with pytest.raises(LooseDiffError, match="must start with"):
        apply_loose_diff(tree, "--- a/a.py\n+++ b/a.py\n@@\n*x\n")
    assert tree == {"a.py": "x = 1\ny = 2\nx = 1\n"}


def test_task_specs_that_break_the_rules_are_refused() -> None:
    good = "--- a/tests/test_a.py\n+++ b/tests/test_a.py\n@@\n+x\n"
    spec = TaskSpec(
        repo="r",
        number=1,
        base="v1",
        kinds=(),
        problem_statement="p",
        test_patch=good,
        gold_patch="--- a/tests/test_a.py\n+++ b/tests/test_a.py\n@@\n+y\n",
        fail_to_pass=("tests/test_a.py::t",),
        pass_to_pass=(),
    )
    with pytest.raises(MiniBuildError, match="touches tests"):
        _check_spec(spec)
    fix = "--- a/m.py\n+++ b/m.py\n@@\n+y\n"
    with pytest.raises(MiniBuildError, match="outside"):
        _check_spec(replace(spec, gold_patch=fix, pass_to_pass=("tests/test_b.py::t",)))
    with pytest.raises(MiniBuildError, match="tests/ only"):
        _check_spec(replace(spec, gold_patch=fix, test_patch=fix))
    with pytest.raises(MiniBuildError, match="FAIL_TO_PASS is empty"):
        _check_spec(replace(spec, gold_patch=fix, fail_to_pass=()))


def test_bad_destinations_are_clear_errors(mirrors: dict[str, Path], tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(MiniBuildError, match="not a directory"):
        build_mini_repos(a_file)
    mirror = next(iter(mirrors.values()))
    with pytest.raises(MiniBuildError, match="not an empty directory"):
        clone_at(mirror, "main", tmp_path)
    with pytest.raises(MiniBuildError, match="cannot check out 0000000"):
        clone_at(mirror, "0" * 40, tmp_path / "fresh")
