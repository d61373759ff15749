"""The provider of SWE-bench rows: the official recipes.

Two releases of the official package meet here (see ``recipes``): the install recipes,
test commands and eval-script generator come from swebench 4.1.0 (the last release that
ships them), the log parsers and the rows' own ``eval_script``/``log_parser`` columns
from the current release's data (5.x), which also grades. Locally the recipe is built as
a venv on Debian (``venv``); with ``grading.use_official_images`` the prebuilt image is
used instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from swescale.swebench.config import GradingConfig
from swescale.swebench.layers import REPO_DIR, Recipe
from swescale.swebench.recipes import recipes
from swescale.swebench.repos import RepoSource
from swescale.swebench.specs.base import Interpreter, SpecError, log_parser_name
from swescale.swebench.specs.tables import env_plan, official_spec
from swescale.swebench.specs.venv import (
    build_requirements,
    venv_environment,
    venv_setup_steps,
)
from swescale.types import Task


class OfficialSpecs:
    """SWE-bench tasks (``kind`` "swebench"): every answer from the official tables of
    the task's (repository, version)."""

    kind = "swebench"
    workdir = REPO_DIR

    def problem(self, task: Task) -> str | None:
        try:
            official_spec(task)
            log_parser_name(task)
        except SpecError as exc:
            return str(exc)
        if not task.test_patch:
            return f"{task.id}: no test patch"
        return None

    # -- the image build ---------------------------------------------------------------

    def repositories(self, tasks: Sequence[Task], cache_dir: Path) -> dict[str, Path]:
        return {}  # mirrors or clones of the real repositories

    def interpreter(self, task: Task, grading: GradingConfig, default_suite: str) -> Interpreter:
        plan = env_plan(task, grading.python_by_suite)
        return Interpreter(plan.suite, plan.python, plan.python_wanted)

    def has_official_image(self, task: Task) -> bool:
        return True

    def environment(
        self, task: Task, base_tag: str, grading: GradingConfig, repos: RepoSource | None
    ) -> Recipe:
        return venv_environment(task, base_tag, grading, repos)

    def build_requirements(self, task: Task, repos: RepoSource) -> list[str]:
        return build_requirements(repos, task)

    def setup_steps(
        self, task: Task, grading: GradingConfig, build_requires: Sequence[str]
    ) -> list[str]:
        return venv_setup_steps(task, grading, build_requires)

    # -- grading and the regression verifier -------------------------------------------

    def test_runner(self, task: Task) -> str:
        command = official_spec(task)["test_cmd"]
        return str(command[-1] if isinstance(command, list) else command)

    def test_directives(self, task: Task, files: Sequence[str]) -> list[str]:
        # ``get_test_directives`` reads a test patch; one made of the files' diff lines
        # gives the same arguments (Django: dotted module names).
        patch = "".join(f"diff --git a/{f} b/{f}\n--- a/{f}\n+++ b/{f}\n" for f in files)
        return recipes().test_directives(task.repo, patch)

    def eval_commands(self, task: Task) -> list[str]:
        return list(official_spec(task).get("eval_commands", []))

    def eval_lines(self, task: Task, workdir: str) -> tuple[list[str], str]:
        instance = {"repo": task.repo, "version": task.version, "test_patch": task.test_patch or ""}
        lines = recipes().eval_script_list(instance, official_spec(task), workdir, task.base_commit)
        return lines, "swebench 4.1.0 make_eval_script_list_py"

    def install_command(self, task: Task) -> str:
        return str(official_spec(task).get("install", "")).strip()

    def cpus(self, task: Task) -> float | None:
        # As the official harness sets its containers' ``nano_cpus``.
        nano = official_spec(task).get("nano_cpus")
        return int(nano) / 1e9 if nano else None

    def log_parser_name(self, task: Task) -> str:
        return log_parser_name(task)
