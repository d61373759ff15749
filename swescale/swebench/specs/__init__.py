"""What a task's image build, grading and regression tests need, from the provider of
its recipes.

```python
from swescale.swebench.specs import provider_for, task_test_command
specs = provider_for(task)            # OfficialSpecs or MiniSpecs (a SpecProvider)
specs.interpreter(task, grading, "bookworm").suite
specs.eval_lines(task, "/testbed")    # the eval script's commands and their source
task_test_command(task)               # "pytest -rA tests/test_x.py"
```

Each source of tasks has one provider (``base.SpecProvider``), kept in ``PROVIDERS`` by
its ``kind``; ``spec_kind(task)`` is the one rule that picks it:

- ``"swebench"`` (``official.OfficialSpecs``): SWE-bench rows, from the official recipes
  of swebench 4.1.0 and the rows' 5.x columns;
- ``"mini"`` (``mini.MiniSpecs``): tasks that carry their own recipe in ``Task.extra``
  (``test_cmd``): the bundled mini benchmark, task files that bring one, the CI bot's
  tasks;
- ``"inferred"`` (``inferred.InferredSpecs``): the repository's own files, its
  ``.swescale.yaml`` or what ``infer`` reads from its packaging files at the base commit
  (``with_inferred_environment`` puts the recipe in the task): any repository's issues
  (``swescale solve``), and SWE-bench rows under ``validate --environment inferred``;
- a row names its provider in ``extra["spec_provider"]``; others are registered with
  ``register_provider``.

Callers ask the provider; none of them branches on the kind of task.
"""

from __future__ import annotations

from pathlib import Path

from swebench.harness.log_parsers import PARSER_REGISTRY
from swebench.types import TestSpec

from swescale.swebench.repos import RepoSource
from swescale.swebench.specs.base import (
    HEREDOC,
    Interpreter,
    LogParser,
    PathsOfTestPatch,
    SpecError,
    SpecProvider,
    diff_paths,
    eval_type_of,
    files_of_test_patch,
    task_test_files,
)
from swescale.swebench.specs.inferred import InferredSpecs
from swescale.swebench.specs.mini import MiniSpecs
from swescale.swebench.specs.official import OfficialSpecs
from swescale.swebench.specs.tables import (
    DEFAULT_PYTHON_BY_SUITE,
    EnvPlan,
    conda_to_pip,
    env_plan,
    nearest_python,
    official_spec,
)
from swescale.types import Task

SWEBENCH = OfficialSpecs.kind
MINI = MiniSpecs.kind
INFERRED = InferredSpecs.kind
# The column of a row that names its provider.
PROVIDER_FIELD = "spec_provider"
PROVIDERS: dict[str, SpecProvider] = {
    SWEBENCH: OfficialSpecs(),
    MINI: MiniSpecs(),
    INFERRED: InferredSpecs(),
}


def register_provider(provider: SpecProvider) -> None:
    """Make ``provider`` answer for the tasks whose ``spec_kind`` is its ``kind``."""
    PROVIDERS[provider.kind] = provider


def spec_kind(task: Task) -> str:
    """The key of the task's provider: the one its row names (``extra["spec_provider"]``),
    else "mini" for a task that carries its own recipe (``extra["test_cmd"]``), else
    "swebench" (a row of the official datasets)."""
    named = task.extra.get(PROVIDER_FIELD)
    if isinstance(named, str) and named:
        return named
    return MINI if "test_cmd" in task.extra else SWEBENCH


def provider_for(task: Task) -> SpecProvider:
    """The provider of the task's recipes; SpecError for a kind nobody registered."""
    kind = spec_kind(task)
    provider = PROVIDERS.get(kind)
    if provider is None:
        known = ", ".join(sorted(PROVIDERS))
        raise SpecError(f"{task.id}: no spec provider {kind!r} (known: {known})")
    return provider


def spec_problem(task: Task) -> str | None:
    """None when the task can be graded, else the reason it cannot (never raises)."""
    try:
        return provider_for(task).problem(task)
    except SpecError as exc:
        return str(exc)


def task_test_directives(task: Task) -> list[str]:
    """The test arguments the official harness appends to the spec's command: the test
    patch's files as its provider names them."""
    return provider_for(task).test_directives(task, diff_paths(task.test_patch or ""))


def task_test_command(task: Task) -> str:
    """The command whose output is graded: the spec's ``test_cmd`` plus the test files
    of the test patch, exactly as the official harness composes it."""
    return " ".join([provider_for(task).test_runner(task), *task_test_directives(task)])


def eval_commands(task: Task) -> list[str]:
    """Commands the spec runs before the tests (locale settings and the like)."""
    return provider_for(task).eval_commands(task)


def log_parser_name(task: Task) -> str:
    """The name of the task's parser in ``swebench.harness.log_parsers.PARSER_REGISTRY``."""
    return provider_for(task).log_parser_name(task)


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


def repo_source_for(
    tasks: list[Task],
    cache_dir: Path,
    repos_dir: Path | None = None,
    url: str | None = "https://github.com/{repo}.git",
    history_depth: int = 0,
) -> RepoSource:
    """A RepoSource for ``tasks``: the repositories their providers make themselves (the
    mini benchmark's, built under ``cache_dir``/mini, idempotent), every other one from
    ``repos_dir`` or a cached mirror under ``cache_dir``/repos. A task of an unknown kind
    gets no local repository here; its image build names the problem."""
    local: dict[str, Path] = {}
    by_kind: dict[str, list[Task]] = {}
    for task in tasks:
        by_kind.setdefault(spec_kind(task), []).append(task)
    for kind, group in by_kind.items():
        if kind in PROVIDERS:
            local.update(PROVIDERS[kind].repositories(group, Path(cache_dir)))
    return RepoSource(
        Path(cache_dir) / "repos",
        repos_dir=repos_dir,
        url=url,
        local=local,
        history_depth=history_depth,
    )


__all__ = [
    "DEFAULT_PYTHON_BY_SUITE",
    "HEREDOC",
    "INFERRED",
    "MINI",
    "PROVIDERS",
    "PROVIDER_FIELD",
    "SWEBENCH",
    "EnvPlan",
    "InferredSpecs",
    "Interpreter",
    "LogParser",
    "MiniSpecs",
    "OfficialSpecs",
    "PathsOfTestPatch",
    "SpecError",
    "SpecProvider",
    "conda_to_pip",
    "diff_paths",
    "env_plan",
    "eval_commands",
    "eval_type_of",
    "files_of_test_patch",
    "log_parser_for",
    "log_parser_name",
    "nearest_python",
    "official_spec",
    "official_test_spec",
    "provider_for",
    "register_provider",
    "repo_source_for",
    "spec_kind",
    "spec_problem",
    "task_test_command",
    "task_test_directives",
    "task_test_files",
]
