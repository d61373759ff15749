"""What the official tables say about a SWE-bench task: its install recipe and test
command (``MAP_REPO_VERSION_TO_SPECS`` of swebench 4.1.0, through ``recipes``), and how
our offline Debian images differ from it.

Offline we build a venv at /opt/venv on a Debian base image whose system Python is the
nearest one available (bullseye 3.9, bookworm 3.11, trixie 3.13). ``EnvPlan.notes``
records every way a plan differs from the official recipe, so a reader of a grading
report knows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from swescale.swebench.recipes import recipes
from swescale.swebench.specs.base import SpecError
from swescale.types import Task

DEFAULT_PYTHON_BY_SUITE = {"bullseye": "3.9", "bookworm": "3.11", "trixie": "3.13"}


def official_spec(task: Task) -> dict[str, Any]:
    """The official install/test spec of the task's (repo, version)."""
    by_version = recipes().specs.get(task.repo)
    if by_version is None:
        raise SpecError(f"{task.id}: repository {task.repo!r} has no spec in swebench")
    if task.version is None:
        raise SpecError(f"{task.id}: no version, so no spec can be chosen for {task.repo}")
    spec = by_version.get(task.version)
    if spec is None:
        known = ", ".join(sorted(by_version)[:12])
        raise SpecError(
            f"{task.id}: {task.repo} has no spec for version {task.version!r} (known: {known}, ...)"
        )
    return spec


# -- Python versions -------------------------------------------------------------------


def _version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def nearest_python(wanted: str, available: dict[str, str] | None = None) -> tuple[str, str]:
    """(suite, python) of the base image whose Python is nearest to ``wanted``.

    Ties go to the newer Python: code written for 3.10 may use 3.10 syntax, which 3.11
    runs and 3.9 does not."""
    suites = available or DEFAULT_PYTHON_BY_SUITE
    target = _version_tuple(wanted)

    def distance(item: tuple[str, str]) -> tuple[int, int]:
        have = _version_tuple(item[1])
        gap = abs((have[0] - target[0]) * 100 + have[1] - target[1])
        return gap, -have[1]

    suite, python = min(suites.items(), key=distance)
    return suite, python


# -- Environment plans -----------------------------------------------------------------


@dataclass(frozen=True)
class EnvPlan:
    """How to build a task's environment on our base images, and how it differs from
    the official conda recipe (``notes``). ``unsupported`` is set when we know the local
    build cannot work."""

    repo: str
    version: str
    python_wanted: str
    suite: str
    python: str
    conda_packages: str = ""
    pip_packages: tuple[str, ...] = ()
    pre_install: tuple[str, ...] = ()
    install: str = ""
    notes: tuple[str, ...] = ()
    unsupported: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def other_python(self) -> bool:
        """Whether the interpreter differs from the spec's (the report says so)."""
        return self.python != self.python_wanted


def env_plan(task: Task, python_by_suite: dict[str, str] | None = None) -> EnvPlan:
    """The local-build plan for a SWE-bench task (raises SpecError without a spec)."""
    spec = official_spec(task)
    assert task.version is not None
    wanted = str(spec.get("python", "3.9"))
    notes: list[str] = ["venv at /opt/venv on Debian instead of a conda env on Ubuntu"]
    unsupported = None
    if recipes().repo_ext.get(task.repo, "py") != "py":
        unsupported = f"{task.repo} is not a Python repository; only the official image fits"
        suite, python = "bookworm", "3.11"
    else:
        suite, python = nearest_python(wanted, python_by_suite)
        if python != wanted:
            notes.append(f"Python {python} ({suite}) instead of {wanted}")
    packages = str(spec.get("packages", "") or "")
    if packages == "environment.yml":
        notes.append("environment.yml dependencies installed with pip (conda names mapped)")
    elif packages == "requirements.txt":
        notes.append("requirements read from the repository at the environment setup commit")
    elif packages:
        notes.append(f"conda packages {packages!r} installed with pip")
    for key in ("execute_test_as_nonroot", "nano_cpus", "docker_specs", "apt-pkgs", "build"):
        if key in spec:
            notes.append(f"spec key {key!r} not reproduced")
    return EnvPlan(
        repo=task.repo,
        version=task.version,
        python_wanted=wanted,
        suite=suite,
        python=python,
        conda_packages=packages,
        pip_packages=tuple(spec.get("pip_packages", [])),
        pre_install=tuple(spec.get("pre_install", [])),
        install=str(spec.get("install", "")),
        notes=tuple(notes),
        unsupported=unsupported,
    )


def conda_to_pip(packages: str) -> list[str]:
    """A conda package list as pip requirements: quotes dropped, ``name=1.2`` (conda's
    prefix match) as ``name==1.2.*``; ``requirements.txt``/``environment.yml`` are not
    package lists and give nothing."""
    if packages in ("requirements.txt", "environment.yml", ""):
        return []
    out = []
    for item in packages.split():
        item = item.strip("'\"")
        if re.fullmatch(r"[A-Za-z0-9_.-]+=[^=<>!].*", item):
            name, _, ver = item.partition("=")
            item = f"{name}=={ver}" if ver.count(".") >= 2 else f"{name}=={ver}.*"
        out.append(item)
    return out
