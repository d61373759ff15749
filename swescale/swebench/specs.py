"""What the official ``swebench`` package says about a task: its install recipe, its test
command, its log parser — and where our offline Debian images differ from it.

Two releases of the official package meet here (see ``recipes``): the install recipes and
test commands come from swebench 4.1.0 (the last release that ships them), the log
parsers from the current release (5.x), which also grades.

Offline we build a venv at /opt/venv on a Debian base image whose system Python is the
nearest one available (bullseye 3.9, bookworm 3.11, trixie 3.13). ``EnvPlan.notes``
records every way a plan differs from the official recipe, so a reader of a grading
report knows.

Mini-benchmark tasks carry their recipe in ``Task.extra`` (``test_cmd``, ``log_parser``)
and have no entry in the official tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from swebench.harness.constants import NON_TEST_EXTS, EvalType
from swebench.harness.log_parsers import PARSER_REGISTRY
from swebench.types import TestSpec
from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from swescale.swebench.recipes import recipes
from swescale.types import Task

DEFAULT_PYTHON_BY_SUITE = {"bullseye": "3.9", "bookworm": "3.11", "trixie": "3.13"}
LogParser = Callable[[str], dict[str, str]]


class SpecError(LookupError):
    """No usable recipe for a task; the message names the task and the reason."""


def is_mini(task: Task) -> bool:
    """Tasks that bring their own recipe (the bundled benchmark, or any custom task)."""
    return "test_cmd" in task.extra


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


def spec_problem(task: Task) -> str | None:
    """None when the task can be graded, else the reason it cannot (never raises)."""
    if is_mini(task):
        return None
    try:
        official_spec(task)
        log_parser_name(task)
    except SpecError as exc:
        return str(exc)
    if not task.test_patch:
        return f"{task.id}: no test patch"
    return None


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


# -- Test files and commands -----------------------------------------------------------


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


def task_test_directives(task: Task) -> list[str]:
    """The test arguments the official harness appends to the spec's command."""
    if is_mini(task):
        # Same rule as the official one for pytest repositories: every file the test
        # patch touches, minus data files.
        paths = re.findall(r"diff --git a/.* b/(.*)", task.test_patch or "")
        return [p for p in dict.fromkeys(paths) if not any(p.endswith(e) for e in NON_TEST_EXTS)]
    return recipes().test_directives(task.repo, task.test_patch or "")


def task_test_command(task: Task) -> str:
    """The command whose output is graded: the spec's ``test_cmd`` plus the test files
    of the test patch, exactly as the official harness composes it."""
    if is_mini(task):
        base = str(task.extra["test_cmd"])
    else:
        base = official_spec(task)["test_cmd"]
        if isinstance(base, list):
            base = base[-1]
    return " ".join([base, *task_test_directives(task)])


def eval_commands(task: Task) -> list[str]:
    """Commands the spec runs before the tests (locale settings and the like)."""
    if is_mini(task):
        return list(task.extra.get("eval_commands", []))
    return list(official_spec(task).get("eval_commands", []))


# -- Log parsers -----------------------------------------------------------------------


def log_parser_name(task: Task) -> str:
    """The name of the task's parser in ``swebench.harness.log_parsers.PARSER_REGISTRY``:
    the row's ``log_parser`` (v5 rows, mini tasks), else the repository's parser."""
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


def official_test_spec(task: Task, eval_script_list: list[str] | None = None) -> TestSpec:
    """The official 5.x TestSpec of a task: what its grading functions read."""
    return TestSpec(
        instance_id=task.id,
        image=str(task.extra.get("image") or ""),
        eval_script_list=list(eval_script_list or []),
        repo=task.repo,
        version=task.version or "",
        FAIL_TO_PASS=list(task.fail_to_pass),
        PASS_TO_PASS=list(task.pass_to_pass),
        log_parser=log_parser_name(task),
        eval_type=eval_type_of(task),
    )


def log_parser_for(task: Task) -> LogParser:
    """The official parser for the task, as a function of the log text alone."""
    spec = official_test_spec(task)
    parser = PARSER_REGISTRY[spec.log_parser]
    return lambda log: parser(log, spec)


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
