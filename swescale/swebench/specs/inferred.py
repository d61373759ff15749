"""The provider of environments written in a repository's own files (``kind``
"inferred"): its ``.swescale.yaml`` when it has one, else what ``infer`` reads from its
packaging files at the base commit. No recipe table is consulted: this is how any
repository's issues get an environment, and how ``swescale validate --environment
inferred`` measures that on SWE-bench rows.

```python
task = with_inferred_environment(task, repos)   # reads the files once, at the base commit
provider_for(task)                               # InferredSpecs (task.extra["spec_provider"])
```

The recipe travels in the task (``extra["environment"]``, a ``RepoConfig``, and
``extra["environment_source"]``, what it was read from), so every later stage (image
build, regression tests, grading) answers from the same recipe without the repository.

Images: the environment layer is a venv with the recipe's bootstrap packages (shared by
every repository on the same interpreter); the instance layer is the repository at the
base commit with the recipe's install commands run in it. All issues of a repository at
one commit share that image.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import git
from swebench.harness.constants import NON_TEST_EXTS

from swescale.sandbox.images import content_tag
from swescale.swebench.config import GradingConfig
from swescale.swebench.layers import REPO_DIR, VENV, Recipe
from swescale.swebench.repos import RepoSource, mirror_git
from swescale.swebench.specs.base import (
    Interpreter,
    SpecError,
    diff_paths,
    own_eval_lines,
)
from swescale.swebench.specs.base import log_parser_name as row_log_parser
from swescale.swebench.specs.infer import infer_repo_config
from swescale.swebench.specs.repo_config import (
    REPO_CONFIG_FILE,
    RepoConfig,
    RepoConfigError,
    parse_repo_config,
)
from swescale.types import Task

KIND = "inferred"
ENVIRONMENT = "environment"
ENVIRONMENT_SOURCE = "environment_source"
# What the install leaves in the work tree (build outputs, egg-info, pytest's cache) is
# kept out of every candidate's diff: untracked files then are excluded, and so is the
# cache a test run writes later.
HIDE_UNTRACKED = (
    "{ git ls-files --others --exclude-standard --directory | sed 's|^|/|'; "
    "echo /.pytest_cache/; } >> .git/info/exclude"
)
# pytest before 3.0 installs only ``py.test``; test commands written for any later pytest
# (a SWE-bench row's eval script, a user's ``pytest -x``) call ``pytest``. A dated
# requirements file can pin such a pytest (requests' ``pytest==2.8.7``).
PYTEST_SCRIPT = (
    f"if [ ! -e {VENV}/bin/pytest ] && [ -e {VENV}/bin/py.test ]; "
    f"then ln -s py.test {VENV}/bin/pytest; fi"
)


def read_at(repos: RepoSource, task: Task) -> tuple[Any, str]:
    """(reader of a file's text at the task's base commit or None, the commit's date
    YYYY-MM-DD). Raises RepoError when the repository or commit cannot be had."""
    handle = mirror_git(repos.ensure_commit(task))

    def read(path: str) -> str | None:
        try:
            return handle.show(f"{task.base_commit}:{path}")
        except git.GitCommandError:
            return None

    day = handle.show("-s", "--format=%cs", task.base_commit).strip()
    return read, day


def repo_config_at(read: Any, day: str | None, where: str) -> RepoConfig:
    """The repository's ``.swescale.yaml`` (``where`` names it in errors), else what its
    files say (``infer_repo_config``). Raises RepoConfigError for a broken file."""
    text = read(REPO_CONFIG_FILE)
    if text is None:
        return infer_repo_config(read, day)
    return parse_repo_config(text, f"{REPO_CONFIG_FILE} at {where}")


def with_environment(task: Task, config: RepoConfig) -> Task:
    """The task with ``config`` as its recipe, answered by this provider."""
    extra = {
        **task.extra,
        "spec_provider": KIND,
        ENVIRONMENT: config.model_dump(mode="json"),
        ENVIRONMENT_SOURCE: config.source,
    }
    return task.model_copy(update={"extra": extra})


def with_inferred_environment(task: Task, repos: RepoSource) -> Task:
    """The task with its repository's recipe at the base commit. Raises RepoError (no
    repository or commit) or RepoConfigError (a ``.swescale.yaml`` that cannot be used)."""
    read, day = read_at(repos, task)
    return with_environment(task, repo_config_at(read, day, task.base_commit[:12]))


def environment_of(task: Task) -> RepoConfig:
    """The recipe the task carries; SpecError when it carries none."""
    data = task.extra.get(ENVIRONMENT)
    if not isinstance(data, dict):
        raise SpecError(f"{task.id}: no environment inferred from the repository yet")
    try:
        config = RepoConfig.model_validate(data)
    except ValueError as exc:
        raise SpecError(f"{task.id}: unusable environment: {exc}") from exc
    config.source = str(task.extra.get(ENVIRONMENT_SOURCE) or "")
    return config


def env_commands(config: RepoConfig) -> tuple[str, ...]:
    """The environment layer: a venv with the recipe's first packages."""
    commands = [f"python3 -m venv {VENV}"]
    if config.python_packages:
        quoted = " ".join(shlex.quote(p) for p in config.python_packages)
        commands.append(f"{VENV}/bin/python -m pip install {quoted}")
    return tuple(commands)


class InferredSpecs:
    """Tasks whose recipe is the repository's own (``kind`` "inferred")."""

    kind = KIND
    workdir = REPO_DIR

    def problem(self, task: Task) -> str | None:
        try:
            environment_of(task)
        except SpecError as exc:
            return str(exc)
        return None

    # -- the image build ---------------------------------------------------------------

    def repositories(self, tasks: Sequence[Task], cache_dir: Path) -> dict[str, Path]:
        return {}  # mirrors, clones or the user's own checkout

    def interpreter(self, task: Task, grading: GradingConfig, default_suite: str) -> Interpreter:
        config = environment_of(task)
        return Interpreter(config.debian_suite, config.python, config.python)

    def has_official_image(self, task: Task) -> bool:
        return False

    def environment(
        self, task: Task, base_tag: str, grading: GradingConfig, repos: RepoSource | None
    ) -> Recipe:
        config = environment_of(task)
        commands = env_commands(config)
        tag = content_tag("swescale/env", f"inferred-{config.debian_suite}", base_tag, commands)
        notes = (f"environment {config.source}",) if config.source else ()
        return Recipe(base_tag, tag, commands, (), notes, config.debian_suite)

    def build_requirements(self, task: Task, repos: RepoSource) -> list[str]:
        return []  # the eval script reinstalls nothing

    def setup_steps(
        self, task: Task, grading: GradingConfig, build_requires: Sequence[str]
    ) -> list[str]:
        return [*environment_of(task).install, PYTEST_SCRIPT, HIDE_UNTRACKED]

    # -- grading and the regression verifier -------------------------------------------

    def test_runner(self, task: Task) -> str:
        return environment_of(task).test_command

    def test_directives(self, task: Task, files: Sequence[str]) -> list[str]:
        # The official rule for pytest repositories: every file, minus data files.
        return [f for f in dict.fromkeys(files) if not any(f.endswith(e) for e in NON_TEST_EXTS)]

    def eval_commands(self, task: Task) -> list[str]:
        return []

    def eval_lines(self, task: Task, workdir: str) -> tuple[list[str], str]:
        command = " ".join(
            [self.test_runner(task), *self.test_directives(task, diff_paths(task.test_patch or ""))]
        )
        return own_eval_lines(task, workdir, command, []), "the repository's own files"

    def install_command(self, task: Task) -> str:
        return ""

    def cpus(self, task: Task) -> float | None:
        # The machine's cores as an explicit quota. Without one, a suite that counts CPUs
        # from the cgroup (pylint's ``_query_cpu`` reads cgroup v1's ``cpu.shares``, 1024
        # = one core) sees a single core and skips its multiprocessing tests, as it would
        # not on the project's own CI.
        return float(len(os.sched_getaffinity(0)))

    def log_parser_name(self, task: Task) -> str:
        # A row that names its parser (a SWE-bench row: how its test lists were read)
        # keeps it; any other task's pytest output is read by the pytest parser.
        if task.extra.get("log_parser"):
            return row_log_parser(task)
        return "parse_log_pytest"


__all__ = [
    "ENVIRONMENT",
    "ENVIRONMENT_SOURCE",
    "KIND",
    "InferredSpecs",
    "RepoConfigError",
    "environment_of",
    "read_at",
    "repo_config_at",
    "with_environment",
    "with_inferred_environment",
]
