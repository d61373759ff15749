"""The provider of tasks that carry their own recipe in ``Task.extra``: the bundled mini
benchmark (``swescale.swebench.mini``), and any task file whose rows bring a
``test_cmd`` (the CI bot's tasks do, until a provider of their own reads the repository).

The recipe is small: ``test_cmd`` and ``log_parser`` (the official parser's name),
optionally ``pip_packages`` and ``eval_commands``; every such task shares one environment
image (base + venv + pytest), and each instance image adds the repository and an
editable install. Such tasks have no official image unless their row names one
(``image``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from swebench.harness.constants import NON_TEST_EXTS

from swescale.sandbox.images import content_tag
from swescale.swebench.config import GradingConfig
from swescale.swebench.layers import REPO_DIR, VENV, Recipe
from swescale.swebench.repos import RepoSource
from swescale.swebench.specs.base import (
    Interpreter,
    diff_paths,
    log_parser_name,
    own_eval_lines,
)
from swescale.types import Task

# Installs the repository only when it is a package; works without network for plain
# setuptools projects because the venv already has setuptools.
MINI_INSTALL = (
    "if [ -f setup.py ] || [ -f pyproject.toml ]; then "
    f"{VENV}/bin/python -m pip install --no-build-isolation -e .; fi"
)


class MiniSpecs:
    """Tasks with their own recipe (``kind`` "mini"): every answer from ``Task.extra``."""

    kind = "mini"
    workdir = REPO_DIR

    def problem(self, task: Task) -> str | None:
        return None

    # -- the image build ---------------------------------------------------------------

    def repositories(self, tasks: Sequence[Task], cache_dir: Path) -> dict[str, Path]:
        """The mini benchmark's fixture repositories, built under ``cache_dir``/mini
        (idempotent) when a task needs one."""
        from swescale.swebench.mini import MINI_OWNER, build_mini_repos

        if any(t.repo.startswith(f"{MINI_OWNER}/") for t in tasks):
            return build_mini_repos(Path(cache_dir) / "mini")
        return {}

    def interpreter(self, task: Task, grading: GradingConfig, default_suite: str) -> Interpreter:
        # The configured base image's own Python; nothing to report against.
        return Interpreter(default_suite)

    def has_official_image(self, task: Task) -> bool:
        return bool(task.extra.get("image"))

    def environment(
        self, task: Task, base_tag: str, grading: GradingConfig, repos: RepoSource | None
    ) -> Recipe:
        packages = ["pytest", "wheel", *task.extra.get("pip_packages", [])]
        commands = (
            f"python3 -m venv {VENV}",
            f"{VENV}/bin/python -m pip install " + " ".join(packages),
        )
        return Recipe(base_tag, content_tag("swescale/env", "mini", base_tag, commands), commands)

    def build_requirements(self, task: Task, repos: RepoSource) -> list[str]:
        return []  # the eval script reinstalls nothing

    def setup_steps(
        self, task: Task, grading: GradingConfig, build_requires: Sequence[str]
    ) -> list[str]:
        return [MINI_INSTALL]

    # -- grading and the regression verifier -------------------------------------------

    def test_runner(self, task: Task) -> str:
        return str(task.extra.get("test_cmd") or "")

    def test_directives(self, task: Task, files: Sequence[str]) -> list[str]:
        # The official rule for pytest repositories: every file, minus data files.
        return [f for f in dict.fromkeys(files) if not any(f.endswith(e) for e in NON_TEST_EXTS)]

    def eval_commands(self, task: Task) -> list[str]:
        return list(task.extra.get("eval_commands", []))

    def eval_lines(self, task: Task, workdir: str) -> tuple[list[str], str]:
        """The official eval script's shape: reset the test files, apply the test patch,
        run the tests between the official markers, reset the test files again."""
        command = " ".join(
            [self.test_runner(task), *self.test_directives(task, diff_paths(task.test_patch or ""))]
        )
        lines = own_eval_lines(task, workdir, command, self.eval_commands(task))
        return lines, "the mini task's recipe"

    def install_command(self, task: Task) -> str:
        return ""  # the eval script has no install step

    def cpus(self, task: Task) -> float | None:
        return None

    def log_parser_name(self, task: Task) -> str:
        return log_parser_name(task)
