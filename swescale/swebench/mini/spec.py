"""The plain data a fixture repository and its tasks are written in.

Patches here are loose diffs (see ``loosediff``); the builder turns them into real git
diffs against real commits.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

MINI_OWNER = "swescale-mini"
MINI_VERSION = "0.1"
TEST_CMD = "pytest -rA -p no:cacheprovider"
# What an environment for any mini repository needs: no other dependencies, no network
# once pytest is installed.
INSTALL_CMD = "pip install -e ."
PIP_PACKAGES = ("pytest",)
PYTHON_VERSION = "3.11"

# The required mix of the benchmark; every task names the kinds it covers.
KINDS = ("one-line", "multi-file", "new-function", "decoy", "misleading")


def text(block: str) -> str:
    """A block of text written indented in a module, without its indentation and with
    exactly one final newline."""
    return textwrap.dedent(block).strip("\n") + "\n"


def nodes(test_file: str, *names: str) -> tuple[str, ...]:
    """pytest node ids as ``pytest -rA`` prints them: ``tests/test_x.py::test_name``."""
    return tuple(f"{test_file}::{name}" for name in names)


def diff(block: str) -> str:
    """A loose diff written flush left in a module; only the first newline is dropped."""
    return block[1:] if block.startswith("\n") else block


@dataclass(frozen=True)
class Commit:
    """One commit of a fixture repository's history.

    ``files`` are written whole (added or replaced), then ``patch`` is applied. The
    builder adds ``pyproject.toml`` (version from the tag) and ``.gitignore`` itself.
    """

    tag: str
    message: str
    date: str  # ISO 8601 with offset, e.g. "2024-03-02T10:00:00+00:00"
    files: dict[str, str] = field(default_factory=dict)
    patch: str = ""


@dataclass(frozen=True)
class MiniRepo:
    name: str
    description: str
    commits: tuple[Commit, ...]

    @property
    def full_name(self) -> str:
        return f"{MINI_OWNER}/{self.name}"

    @property
    def mirror_dirname(self) -> str:
        """The directory name of its bare mirror, as local mirror directories expect."""
        return f"{MINI_OWNER}__{self.name}.git"


@dataclass(frozen=True)
class TaskSpec:
    """One task before its patches are made real. Patches are loose diffs against the
    tree at ``base`` (a tag of the repository's history)."""

    repo: str
    number: int
    base: str
    kinds: tuple[str, ...]
    problem_statement: str
    test_patch: str
    gold_patch: str
    fail_to_pass: tuple[str, ...]
    pass_to_pass: tuple[str, ...]
    wrong_patches: tuple[str, ...] = ()
    decoy_patches: tuple[str, ...] = ()
    alt_patches: tuple[str, ...] = ()
    hints: str = ""

    @property
    def instance_id(self) -> str:
        return f"{MINI_OWNER}__{self.repo}-{self.number}"


def pyproject_toml(name: str, version: str, description: str) -> str:
    """The fixture's packaging: setuptools only, so ``pip install -e .`` works, and a pytest
    config that also runs from a plain checkout."""
    return text(
        f"""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "{version}"
        description = "{description}"
        requires-python = ">=3.9"

        [project.optional-dependencies]
        test = ["pytest"]

        [tool.setuptools]
        packages = ["{name}"]

        [tool.pytest.ini_options]
        testpaths = ["tests"]
        pythonpath = ["."]
        """
    )


GITIGNORE = "__pycache__/\n*.py[cod]\n*.egg-info/\n.pytest_cache/\nbuild/\ndist/\n"
