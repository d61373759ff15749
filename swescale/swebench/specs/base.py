"""The questions every source of task recipes answers (``SpecProvider``), and what all
sources share: the files of a test patch, the log parser a task names, its eval type.

A provider answers for one kind of task what three parts of swescale need:

- the image build (``images``): the Debian suite and interpreter, whether an official
  prebuilt image exists, the environment layer, the repository's set-up steps, the
  repositories it builds locally, and where the repository lives;
- grading (``run``, ``grading``): the test command and its arguments, the commands run
  before it, the eval script, the install step the eval script reruns, the CPUs of a
  grading container, the log parser;
- the regression verifier: the same test command and arguments, for any test file.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from swebench.harness.constants import EvalType
from swebench.harness.log_parsers import PARSER_REGISTRY
from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from swescale.swebench.config import GradingConfig
from swescale.swebench.layers import Recipe
from swescale.swebench.recipes import recipes
from swescale.swebench.repos import RepoSource
from swescale.types import Task

LogParser = Callable[[str], dict[str, str]]
HEREDOC = "EOF_114329324912"  # the official eval scripts' delimiter
# The official ``get_test_directives`` reads a test patch's files with this pattern.
DIFF_PATH = re.compile(r"diff --git a/.* b/(.*)")


class SpecError(LookupError):
    """No usable recipe for a task; the message names the task and the reason."""


@dataclass(frozen=True)
class Interpreter:
    """The base image's Debian ``suite`` and, when the provider reports them, the
    interpreter the environment runs (``python``) and the one the recipe asks for
    (``wanted``); None where the recipe's own interpreter runs."""

    suite: str
    python: str | None = None
    wanted: str | None = None


class SpecProvider(Protocol):
    """What one source of recipes says about its tasks. ``kind`` is its key in the
    registry (``swescale.swebench.specs.PROVIDERS``); ``workdir`` is where the repository
    lives in its instance images. Methods raise ``SpecError`` (or ``ImageError`` for an
    environment that cannot be built) naming the task."""

    kind: str
    workdir: str

    def problem(self, task: Task) -> str | None:
        """None when the task can be graded, else the reason it cannot (never raises)."""
        ...

    # -- the image build ---------------------------------------------------------------

    def repositories(self, tasks: Sequence[Task], cache_dir: Path) -> dict[str, Path]:
        """Git directories of the tasks' repositories this provider makes itself, by
        ``owner/name`` under ``cache_dir``; {} when they come from mirrors or clones."""
        ...

    def interpreter(self, task: Task, grading: GradingConfig, default_suite: str) -> Interpreter:
        """The Debian suite of the task's base image (``default_suite``: the configured
        one) and the interpreter it runs."""
        ...

    def has_official_image(self, task: Task) -> bool:
        """Whether a prebuilt official image exists for the task (used when grading is
        configured for official images)."""
        ...

    def environment(
        self, task: Task, base_tag: str, grading: GradingConfig, repos: RepoSource | None
    ) -> Recipe:
        """The environment layer on ``base_tag``: commands, files, notes and the tag that
        hashes them. ``repos`` is read where the recipe names the repository's files."""
        ...

    def build_requirements(self, task: Task, repos: RepoSource) -> list[str]:
        """Requirements installed after the set-up steps so that the eval script's
        reinstall runs offline ([] when it has none)."""
        ...

    def setup_steps(
        self, task: Task, grading: GradingConfig, build_requires: Sequence[str]
    ) -> list[str]:
        """The repository's set-up commands (pre-install and install steps), run by one
        bash in ``workdir`` with the venv active."""
        ...

    # -- grading and the regression verifier -------------------------------------------

    def test_runner(self, task: Task) -> str:
        """The test command without its arguments ("" when the recipe names none)."""
        ...

    def test_directives(self, task: Task, files: Sequence[str]) -> list[str]:
        """The arguments that make the test command run these test files."""
        ...

    def eval_commands(self, task: Task) -> list[str]:
        """Commands run before the tests (locale settings and the like)."""
        ...

    def eval_lines(self, task: Task, workdir: str) -> tuple[list[str], str]:
        """The eval script's commands (no shebang, no ``set`` line) for a task whose row
        carries no ``eval_script``, and where they come from."""
        ...

    def install_command(self, task: Task) -> str:
        """The install step as it appears in the eval script ("" when it has none)."""
        ...

    def cpus(self, task: Task) -> float | None:
        """CPUs of a grading container the recipe asks for; None: the configured ones."""
        ...

    def log_parser_name(self, task: Task) -> str:
        """The name of the task's parser in ``swebench.harness.log_parsers.PARSER_REGISTRY``."""
        ...


# -- what every provider shares --------------------------------------------------------


@dataclass(frozen=True)
class PathsOfTestPatch:
    """Paths a test patch touches: ``existing`` ones (reset to the base commit before it
    is applied, as the official script does) and ``created`` ones (new files and rename
    targets, removed before it is applied, so a candidate cannot plant them)."""

    existing: tuple[str, ...]
    created: tuple[str, ...]


def files_of_test_patch(patch: str) -> PathsOfTestPatch:
    """The files of a test patch, read with ``unidiff`` as the official
    ``get_modified_files`` does (existing = every source path that is not /dev/null); a
    patch unidiff rejects falls back to its ``---``/``+++`` headers."""
    try:
        pairs = [(f.source_file, f.target_file) for f in PatchSet(patch)]
    except UnidiffParseError:
        pairs = re.findall(r"^--- (\S+).*\n\+\+\+ (\S+)", patch, re.MULTILINE)
    existing: list[str] = []
    created: list[str] = []
    for source, target in pairs:
        old = source[2:] if source.startswith("a/") else None
        new = target[2:] if target.startswith("b/") else None
        if old:
            existing.append(old)
        if new and new != old:
            created.append(new)
    return PathsOfTestPatch(tuple(dict.fromkeys(existing)), tuple(dict.fromkeys(created)))


def task_test_files(task: Task) -> list[str]:
    """Files the test patch touches that exist before it: the official harness resets
    exactly these to the base commit before applying the test patch (and after the run)."""
    return list(files_of_test_patch(task.test_patch or "").existing)


def diff_paths(patch: str) -> list[str]:
    """Every path of a patch's ``diff --git`` lines, in order, as the official
    ``get_test_directives`` reads them (repeats kept)."""
    return DIFF_PATH.findall(patch)


def own_eval_lines(task: Task, workdir: str, command: str, before: Sequence[str]) -> list[str]:
    """An eval script of the official shape for a recipe of our own: ``before`` (locale
    settings and the like), reset the test patch's files to the base commit, apply the
    test patch, run ``command`` between the official markers, reset the files again."""
    from swebench.harness.constants import END_TEST_OUTPUT, START_TEST_OUTPUT

    test_patch = task.test_patch or ""
    files = " ".join(shlex.quote(f) for f in files_of_test_patch(test_patch).existing)
    lines = [f"cd {workdir}", *before]
    if files:
        lines.append(f"git checkout {task.base_commit} {files}")
    if test_patch:
        lines.append(f"git apply -v - <<'{HEREDOC}'\n{test_patch}\n{HEREDOC}")
    lines += [f": '{START_TEST_OUTPUT}'", command, f": '{END_TEST_OUTPUT}'"]
    if files:
        lines.append(f"git checkout {task.base_commit} {files}")
    return lines


def log_parser_name(task: Task) -> str:
    """The row's ``log_parser`` (v5 rows, mini tasks), else the official parser of the
    task's repository (``MAP_REPO_TO_PARSER``)."""
    name = task.extra.get("log_parser")
    if isinstance(name, str) and name:
        short = name if name.startswith("parse_log_") else f"parse_log_{name}"
        if short not in PARSER_REGISTRY:
            raise SpecError(
                f"{task.id}: unknown log parser {name!r} in swebench.harness.log_parsers"
            )
        return short
    found = recipes().parser_names.get(task.repo)
    if found is None or found not in PARSER_REGISTRY:
        raise SpecError(f"{task.id}: no official log parser for {task.repo!r}")
    return found


def eval_type_of(task: Task) -> str:
    """``pass_and_fail`` or ``fail_only`` (the row's ``eval_type``, else the official
    default for the repository)."""
    from swebench.harness.constants import FAIL_ONLY_REPOS

    given = task.extra.get("eval_type")
    if given in (EvalType.PASS_AND_FAIL.value, EvalType.FAIL_ONLY.value):
        return str(given)
    return (EvalType.FAIL_ONLY if task.repo in FAIL_ONLY_REPOS else EvalType.PASS_AND_FAIL).value
