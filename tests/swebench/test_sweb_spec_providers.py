"""Spec providers: which one answers for a task, and what each answers on literal tasks
(no Docker; the official tables of swebench 4.1.0)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from swebench.harness.constants import END_TEST_OUTPUT, START_TEST_OUTPUT

from swescale.ci.events import IssueRequest
from swescale.ci.repo_config import RepoConfig
from swescale.ci.task import build_task
from swescale.sandbox.images import content_tag
from swescale.swebench.config import GradingConfig
from swescale.swebench.images import instance_recipe, setup_script
from swescale.swebench.layers import REPO_DIR, VENV, Recipe
from swescale.swebench.mini import mini_tasks
from swescale.swebench.repos import RepoSource
from swescale.swebench.run import base_eval_lines, grading_cpus
from swescale.swebench.specs import (
    HEREDOC,
    PROVIDERS,
    Interpreter,
    MiniSpecs,
    OfficialSpecs,
    SpecError,
    provider_for,
    repo_source_for,
    spec_kind,
    spec_problem,
    task_test_command,
)
from swescale.swebench.specs.mini import MINI_INSTALL
from swescale.types import Task
from swescale.verifiers import regression

TEST_PATCH = (
    "diff --git a/tests/test_a.py b/tests/test_a.py\n--- a/tests/test_a.py\n+++ b/tests/test_a.py\n"
    "@@ -1 +1 @@\n-x\n+y\n"
    "diff --git a/tests/data.json b/tests/data.json\n--- a/tests/data.json\n+++ b/tests/data.json\n"
    "@@ -1 +1 @@\n-1\n+2\n"
    "diff --git a/tests/test_new.py b/tests/test_new.py\nnew file mode 100644\n--- /dev/null\n"
    "+++ b/tests/test_new.py\n@@ -0,0 +1 @@\n+z\n"
)


def swe_task(repo: str, version: str, **kw) -> Task:
    return Task(
        id=f"{repo.replace('/', '__')}-1",
        repo=repo,
        base_commit="a" * 40,
        version=version,
        problem_statement="p",
        test_patch=kw.pop("test_patch", TEST_PATCH),
        **kw,
    )


def own_recipe_task(**extra) -> Task:
    return Task(
        id="acme__calc-1",
        repo="acme/calc",
        base_commit="b" * 40,
        problem_statement="p",
        test_patch=TEST_PATCH,
        extra={"test_cmd": "pytest -rA -p no:cacheprovider", "log_parser": "pytest", **extra},
    )


# -- which provider ----------------------------------------------------------------------


def test_the_provider_is_chosen_by_where_the_recipe_comes_from() -> None:
    row = swe_task("pytest-dev/pytest", "5.4")
    assert spec_kind(row) == "swebench" and isinstance(provider_for(row), OfficialSpecs)
    # A task that carries a test command brings its own recipe, whatever its repository.
    own = own_recipe_task()
    assert spec_kind(own) == "mini" and isinstance(provider_for(own), MiniSpecs)
    assert spec_kind(swe_task("pytest-dev/pytest", "5.4", extra={"test_cmd": "x"})) == "mini"
    assert {spec_kind(t) for t in mini_tasks()} == {"mini"}
    # The CI bot's tasks carry the repository's test command.
    request = IssueRequest("acme/calc", 7, "t", "b", "issues.opened")
    ci = build_task(request, "c" * 40, RepoConfig(test_command="pytest -q"))
    assert isinstance(provider_for(ci), MiniSpecs) and task_test_command(ci) == "pytest -q"
    # A row may name its provider; the name wins over what the row carries.
    named = own_recipe_task(spec_provider="swebench")
    assert spec_kind(named) == "swebench" and isinstance(provider_for(named), OfficialSpecs)


def test_an_unknown_provider_is_a_clear_error_never_a_crash(tmp_path: Path) -> None:
    task = own_recipe_task(spec_provider="nosuch")
    with pytest.raises(SpecError, match=r"acme__calc-1: no spec provider 'nosuch' \(known: "):
        provider_for(task)
    problem = spec_problem(task)
    assert problem is not None and "nosuch" in problem and "mini, swebench" in problem
    # The repository source of a batch holding it is still made (its image build fails
    # with the message above, not the batch).
    repos = repo_source_for([task], tmp_path, url=None)
    assert repos.local == {}
    # The regression verifier falls back to the task's own command.
    assert regression.task_test_command(task) == ("pytest -rA -p no:cacheprovider", [])


class RepositoryFileSpecs:
    """A provider of the third kind: the environment written in the repository's own
    files (here fixed literals), with the repository at /repo."""

    kind = "repository"
    workdir = "/repo"

    def problem(self, task: Task) -> str | None:
        return None

    def repositories(self, tasks: Sequence[Task], cache_dir: Path) -> dict[str, Path]:
        return {t.repo: cache_dir / "checkout" for t in tasks}

    def interpreter(self, task: Task, grading: GradingConfig, default_suite: str) -> Interpreter:
        return Interpreter("trixie", "3.13", "3.13")

    def has_official_image(self, task: Task) -> bool:
        return False

    def environment(self, task, base_tag, grading, repos) -> Recipe:
        commands = (f"python3 -m venv {VENV}",)
        return Recipe(base_tag, content_tag("swescale/env", "repo", base_tag, commands), commands)

    def build_requirements(self, task: Task, repos: RepoSource) -> list[str]:
        return []

    def setup_steps(self, task, grading, build_requires) -> list[str]:
        return ["pip install -e '.[tests]'"]

    def test_runner(self, task: Task) -> str:
        return "python -m pytest -q"

    def test_directives(self, task: Task, files: Sequence[str]) -> list[str]:
        return [f"./{f}" for f in files]

    def eval_commands(self, task: Task) -> list[str]:
        return ["export LANG=C.UTF-8"]

    def eval_lines(self, task: Task, workdir: str) -> tuple[list[str], str]:
        return [f"cd {workdir}", "python -m pytest -q"], "the repository's files"

    def install_command(self, task: Task) -> str:
        return "pip install -e '.[tests]'"

    def cpus(self, task: Task) -> float | None:
        return 3.0

    def log_parser_name(self, task: Task) -> str:
        return "parse_log_pytest"


def test_a_registered_provider_answers_every_caller(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(PROVIDERS, "repository", RepositoryFileSpecs())
    task = own_recipe_task(spec_provider="repository")
    assert isinstance(provider_for(task), RepositoryFileSpecs)
    grading = GradingConfig()
    script = setup_script(task, grading)
    assert script.splitlines()[2:5] == [
        "cd /repo",
        f"source {VENV}/bin/activate",
        "pip install -e '.[tests]'",
    ]
    assert (
        task_test_command(task)
        == "python -m pytest -q ./tests/test_a.py ./tests/data.json ./tests/test_new.py"
    )
    assert base_eval_lines(task, "/repo") == (
        ["cd /repo", "python -m pytest -q"],
        "the repository's files",
    )
    assert grading_cpus(task, grading) == 3.0
    assert regression.task_test_command(task) == ("python -m pytest -q", ["export LANG=C.UTF-8"])
    assert regression.directives_for(task, ["t/test_x.py"]) == ["./t/test_x.py"]
    assert repo_source_for([task], tmp_path).local == {"acme/calc": tmp_path / "checkout"}
    # The instance tag hashes the provider's workdir and set-up steps.
    other = RepositoryFileSpecs()
    other.workdir = "/work"
    first = instance_recipe(task, "env", grading, RepoSource(tmp_path))
    monkeypatch.setitem(PROVIDERS, "repository", other)
    assert instance_recipe(task, "env", grading, RepoSource(tmp_path)).tag != first.tag


# -- the official recipes ----------------------------------------------------------------


def test_official_answers_come_from_the_recipe_of_the_repository_and_version() -> None:
    specs = OfficialSpecs()
    task = swe_task("pytest-dev/pytest", "5.4", extra={"created_at": "2020-01-01"})
    assert specs.problem(task) is None
    assert specs.problem(swe_task("pytest-dev/pytest", "5.4", test_patch=None)) == (
        "pytest-dev__pytest-1: no test patch"
    )
    assert "no spec for version '0.0'" in str(specs.problem(swe_task("pytest-dev/pytest", "0.0")))
    assert specs.workdir == REPO_DIR and specs.has_official_image(task)
    assert specs.repositories([task], Path("/nonexistent")) == {}
    # pytest 5.4 asks for Python 3.9: bullseye has it.
    assert specs.interpreter(task, GradingConfig(), "bookworm") == Interpreter(
        "bullseye", "3.9", "3.9"
    )
    assert specs.test_runner(task) == "pytest -rA"
    # Data files are not test arguments; new test files are.
    assert specs.test_directives(task, ["tests/test_a.py", "tests/data.json", "t/test_n.py"]) == [
        "tests/test_a.py",
        "t/test_n.py",
    ]
    assert task_test_command(task) == "pytest -rA tests/test_a.py tests/test_new.py"
    assert specs.install_command(task) == "python -m pip install -e ."
    assert specs.cpus(task) is None and specs.eval_commands(task) == []
    assert specs.log_parser_name(task) == "parse_log_pytest"
    lines, source = specs.eval_lines(task, "/testbed")
    assert source == "swebench 4.1.0 make_eval_script_list_py"
    assert "pytest -rA tests/test_a.py tests/test_new.py" in lines
    assert f"git checkout {'a' * 40} tests/test_a.py tests/data.json" in lines


def test_official_answers_for_django_and_pylint() -> None:
    specs = OfficialSpecs()
    django = swe_task("django/django", "3.0")
    # Django runs module labels through its own runner, after setting a locale.
    assert specs.test_directives(django, ["tests/auth_tests/test_views.py"]) == [
        "auth_tests.test_views"
    ]
    assert "./tests/runtests.py" in specs.test_runner(django)
    assert any("locale-gen" in c for c in specs.eval_commands(django))
    assert specs.log_parser_name(django) == "parse_log_django"
    # pylint 2.14's recipe limits a grading container to two CPUs.
    assert specs.cpus(swe_task("pylint-dev/pylint", "2.14")) == 2.0


# -- a task's own recipe (the mini benchmark) ---------------------------------------------


def test_mini_answers_come_from_the_task_itself() -> None:
    specs = MiniSpecs()
    task = own_recipe_task(pip_packages=["attrs"], eval_commands=["export A=1"])
    grading = GradingConfig()
    assert specs.problem(task) is None and specs.workdir == REPO_DIR
    # The configured base image and its own interpreter, nothing to report.
    assert specs.interpreter(task, grading, "trixie") == Interpreter("trixie", None, None)
    assert not specs.has_official_image(task)
    assert specs.has_official_image(own_recipe_task(image="registry.example/calc:1"))
    recipe = specs.environment(task, "swescale/base:x", grading, None)
    assert recipe.commands == (
        f"python3 -m venv {VENV}",
        f"{VENV}/bin/python -m pip install pytest wheel attrs",
    )
    assert recipe.tag == content_tag("swescale/env", "mini", "swescale/base:x", recipe.commands)
    assert specs.setup_steps(task, grading, ["setuptools>=61"]) == [MINI_INSTALL]
    assert specs.test_runner(task) == "pytest -rA -p no:cacheprovider"
    assert specs.test_directives(task, ["t/test_a.py", "t/a.json", "t/test_a.py"]) == [
        "t/test_a.py"
    ]
    assert specs.eval_commands(task) == ["export A=1"]
    assert specs.install_command(task) == "" and specs.cpus(task) is None
    assert specs.log_parser_name(task) == "parse_log_pytest"
    assert specs.test_runner(own_recipe_task(test_cmd="")) == ""


def test_mini_eval_script_resets_applies_and_runs_between_the_markers() -> None:
    task = own_recipe_task(eval_commands=["export A=1"])
    lines, source = MiniSpecs().eval_lines(task, "/testbed")
    base = "b" * 40
    reset = f"git checkout {base} tests/test_a.py tests/data.json"
    assert source == "the mini task's recipe"
    assert lines == [
        "cd /testbed",
        "export A=1",
        reset,
        f"git apply -v - <<'{HEREDOC}'\n{TEST_PATCH}\n{HEREDOC}",
        f": '{START_TEST_OUTPUT}'",
        "pytest -rA -p no:cacheprovider tests/test_a.py tests/test_new.py",
        f": '{END_TEST_OUTPUT}'",
        reset,
    ]
    # A test patch that only creates files resets nothing.
    new_only = TEST_PATCH[TEST_PATCH.index("diff --git a/tests/test_new.py") :]
    lines, _ = MiniSpecs().eval_lines(task.model_copy(update={"test_patch": new_only}), "/t")
    assert not [line for line in lines if line.startswith("git checkout")]
    assert "pytest -rA -p no:cacheprovider tests/test_new.py" in lines


def test_mini_repositories_are_built_only_for_mini_tasks(tmp_path: Path) -> None:
    specs = MiniSpecs()
    assert specs.repositories([own_recipe_task()], tmp_path) == {}
    assert not (tmp_path / "mini").exists()
    task = mini_tasks()[0]
    mirrors = specs.repositories([task], tmp_path)
    assert mirrors[task.repo] == tmp_path / "mini" / f"{task.repo.replace('/', '__')}.git"
    assert repo_source_for([task], tmp_path).mirror(task.repo) == mirrors[task.repo]
