"""The bundled mini benchmark: small fixture libraries with real bugs, built as git
repositories with stable commit hashes, and SWE-bench style tasks on them.

```python
from swescale.swebench.mini import mini_tasks, build_mini_repos, clone_at
tasks = mini_tasks()                       # list[Task], base commits filled in
mirrors = build_mini_repos(Path("repos"))  # {"swescale-mini/slugkit": repos/swescale-mini__slugkit.git}
clone_at(mirrors[task.repo], task.base_commit, Path("work"))   # a checkout to test in
```

``build_mini_repos`` makes bare mirrors named ``owner__name.git`` (the layout local mirror
directories use). Tasks follow the official conventions: FAIL_TO_PASS / PASS_TO_PASS are
pytest node ids as ``pytest -rA`` prints them, all inside the test files the test patch
touches (``extra["test_files"]``, which the official harness runs), graded with the
"pytest" log parser after ``extra["test_cmd"]``. Every fixture installs with
``pip install -e .`` and needs only pytest.

Each task's ``extra`` also holds candidate patches with known outcomes for verifier and
selection tests: ``alt_patches`` (resolve the task, written differently from the gold
patch), ``wrong_patches`` (do not resolve it) and ``decoy_patches`` (make FAIL_TO_PASS
pass but break PASS_TO_PASS); ``candidate_patches(task)`` lists them all with labels.
``extra["kinds"]`` names what a task exercises: one-line, multi-file, new-function,
decoy, misleading.
"""

from __future__ import annotations

from swescale.swebench.mini.build import MiniBuildError, build_mini_repos, catalog, clone_at
from swescale.swebench.mini.fixtures import ALL_REPOS
from swescale.swebench.mini.spec import KINDS, MINI_OWNER, MiniRepo
from swescale.types import Task

# Repository name ("swescale-mini/slugkit") -> its fixture spec.
MINI_REPOS: dict[str, MiniRepo] = {repo.full_name: repo for repo in ALL_REPOS}


def mini_tasks() -> list[Task]:
    """Every mini-benchmark task with its stable base commit. The repositories are built
    once per process in a temporary directory to learn the hashes (well under a second
    per repository); callers get fresh copies they may change."""
    return [task.model_copy(deep=True) for task in catalog().tasks]


def candidate_patches(task: Task) -> list[tuple[str, str, bool]]:
    """Every shipped patch of a mini task as (label, patch, resolves the task): "gold",
    "alt-N", "wrong-N", "decoy-N" and "empty", for verifier and selection tests."""
    labelled = [("gold", task.gold_patch or "", True)]
    for kind, resolves in (("alt", True), ("wrong", False), ("decoy", False)):
        for i, patch in enumerate(task.extra.get(f"{kind}_patches", [])):
            labelled.append((f"{kind}-{i}", patch, resolves))
    labelled.append(("empty", "", False))
    return labelled


__all__ = [
    "candidate_patches",
    "KINDS",
    "MINI_OWNER",
    "MINI_REPOS",
    "MiniBuildError",
    "MiniRepo",
    "build_mini_repos",
    "clone_at",
    "mini_tasks",
]
