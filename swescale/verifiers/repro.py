"""Reproduction tests: written by a testing trajectory, kept when they fail on the base
commit, then run against every candidate (a test x candidate matrix).

A test is a file (usually a pytest file) plus the command that runs it. Each candidate
gets a fresh sandbox with its patch applied; the kept tests run there one after the other,
the working tree reset between them so no test sees another's leftovers. Cells run in
parallel across candidates (a thread pool with a limit) and are cached by
(test hash, candidate key). Disagreeing cells (a test that passes on some candidates and
fails on others) are rerun; a cell that changes its mind is flaky and judged nothing.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from swescale.patches import parse_patch, patch_key
from swescale.types import Candidate, Cost, Task, Verdict
from swescale.verifiers.base import REPRO, pass_rate_verdict
from swescale.verifiers.execution import (
    CellResult,
    ResultCache,
    SandboxFactory,
    classify_run,
    content_hash,
    run_in_fresh_sandbox,
    summarize,
)

log = logging.getLogger(__name__)

_TEST_FILE = re.compile(r"(^|/)(test_[^/]*\.py|[^/]*_test\.py)$|(^|/)tests?/[^/]*\.py$")
PYTEST_EXIT_KEEP = (1, 2)  # tests failed / collection error (e.g. imports what the fix adds)


@dataclass(frozen=True)
class ReproTest:
    path: str  # relative to the repository root
    content: str
    command: str = ""  # default: pytest for pytest-style files, python otherwise

    @property
    def id(self) -> str:
        return self.hash[:12]

    @property
    def hash(self) -> str:
        return content_hash(self.path, self.content, self.run_command)

    @property
    def run_command(self) -> str:
        if self.command:
            return self.command
        if re.search(r"^\s*def test_|^\s*class Test", self.content, re.M):
            return f"python -m pytest -q -x -p no:cacheprovider {shlex.quote(self.path)}"
        return f"python {shlex.quote(self.path)}"


@dataclass
class BaseFilter:
    kept: list[ReproTest] = field(default_factory=list)
    # test id -> why it was dropped (passes on base, hangs, crashes the harness)
    discarded: dict[str, str] = field(default_factory=dict)


def is_test_path(path: str) -> bool:
    return bool(_TEST_FILE.search(path))


def tests_from_files(files: dict[str, str]) -> list[ReproTest]:
    """Reproduction tests from file contents (path -> text), test files only."""
    return [ReproTest(p, text) for p, text in sorted(files.items()) if is_test_path(p)]


def _run_tests(sandbox, tests: Sequence[ReproTest], timeout: float) -> dict[str, CellResult]:
    """Run each test in the (already patched) sandbox, resetting the tree between tests."""
    workdir = shlex.quote(sandbox.workdir)
    # Commit the candidate inside the throwaway container so a reset returns to it.
    sandbox.execute(
        f"cd {workdir} && git add -A >/dev/null 2>&1 && git -c user.name=v -c user.email=v@v "
        "commit -qm candidate --no-verify --allow-empty >/dev/null 2>&1",
        timeout=120,
    )
    results: dict[str, CellResult] = {}
    for test in tests:
        sandbox.write_file(test.path, test.content)
        run = sandbox.execute(f"cd {workdir} && {test.run_command}", timeout=timeout)
        outcome = classify_run(run.exit_code, run.timed_out, run.infra_error)
        results[test.id] = CellResult(
            outcome=outcome,
            exit_code=run.exit_code,
            seconds=run.seconds,
            output_tail=run.output[-1500:],
        )
        if outcome == "infra":
            break
        sandbox.execute(f"cd {workdir} && git reset -q --hard && git clean -qfd", timeout=120)
    for test in tests:
        results.setdefault(test.id, CellResult(outcome="infra", output_tail="not run"))
    return results


def filter_on_base(
    tests: Sequence[ReproTest], make_sandbox: SandboxFactory, timeout: float = 120.0
) -> BaseFilter:
    """Keep the tests that fail on the base commit (they reproduce something)."""
    result = BaseFilter()
    if not tests:
        return result
    cells = run_in_fresh_sandbox(
        make_sandbox, "", lambda sb: _run_tests(sb, tests, timeout), [t.id for t in tests]
    )
    for test in tests:
        cell = cells[test.id]
        if cell.outcome == "pass":
            result.discarded[test.id] = "passes on the base commit: reproduces nothing"
        elif cell.outcome == "timeout":
            result.discarded[test.id] = "hangs on the base commit (timeout)"
        elif cell.outcome == "infra":
            result.discarded[test.id] = f"could not run on base: {cell.output_tail[-200:]}"
        elif "pytest" in test.run_command and cell.exit_code not in PYTEST_EXIT_KEEP:
            result.discarded[test.id] = f"pytest exit {cell.exit_code}: no usable test"
        else:
            result.kept.append(test)
    return result


def run_matrix(
    tests: Sequence[ReproTest],
    candidates: Sequence[Candidate],
    make_sandbox: SandboxFactory,
    cache: ResultCache | None = None,
    workers: int = 2,
    timeout: float = 120.0,
    reruns: int = 1,
) -> dict[str, dict[str, CellResult]]:
    """``matrix[candidate_id][test_id]``: every test against every candidate."""
    cache = cache or ResultCache(None)
    keys = {c.id: patch_key(c.patch) or content_hash(c.patch) for c in candidates}
    matrix: dict[str, dict[str, CellResult]] = {c.id: {} for c in candidates}
    todo: dict[str, list[ReproTest]] = {}
    for cand in candidates:
        for test in tests:
            hit = cache.get(test.hash, keys[cand.id])
            if hit is not None:
                matrix[cand.id][test.id] = hit
            else:
                todo.setdefault(cand.id, []).append(test)
    by_id = {c.id: c for c in candidates}

    def work(cid: str, pending: list[ReproTest]) -> tuple[str, dict[str, CellResult]]:
        return cid, run_in_fresh_sandbox(
            make_sandbox,
            by_id[cid].patch,
            lambda sb: _run_tests(sb, pending, timeout),
            [t.id for t in pending],
        )

    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        for cid, cells in pool.map(lambda item: work(*item), todo.items()):
            matrix[cid].update(cells)
    for _ in range(reruns):
        _rerun_disagreements(matrix, tests, by_id, make_sandbox, timeout)
    for cid, cells in matrix.items():
        for test in tests:
            cell = cells.get(test.id)
            if cell is not None and not cell.cached:
                cache.put(test.hash, keys[cid], cell)
    return matrix


def _rerun_disagreements(matrix, tests, by_id, make_sandbox, timeout) -> None:
    """A failing cell of a test that some other candidate passes is run once more; if it
    passes now, the test is flaky on that candidate and the cell judges nothing."""
    for test in tests:
        outcomes = {cid: cells.get(test.id) for cid, cells in matrix.items()}
        if not any(c is not None and c.outcome == "pass" for c in outcomes.values()):
            continue
        for cid, cell in outcomes.items():
            if cell is None or cell.outcome != "fail" or cell.cached:
                continue
            again = run_in_fresh_sandbox(
                make_sandbox,
                by_id[cid].patch,
                lambda sb, t=test: _run_tests(sb, [t], timeout),
                [test.id],
            )[test.id]
            if again.outcome == "pass":
                matrix[cid][test.id] = CellResult(
                    outcome="flaky", output_tail="failed, then passed on rerun"
                )


class ReproTestVerifier:
    """Scores each candidate by the share of kept reproduction tests it passes."""

    name = REPRO

    def __init__(
        self,
        make_sandbox: SandboxFactory,
        tests: Sequence[ReproTest],
        cache_dir: str | Path | None = None,
        workers: int = 2,
        timeout: float = 120.0,
        reruns: int = 1,
        filter_base: bool = True,
    ) -> None:
        self.make_sandbox = make_sandbox
        self.tests = list(tests)
        self.cache = ResultCache(cache_dir)
        self.workers = workers
        self.timeout = timeout
        self.reruns = reruns
        self.filter_base = filter_base
        self.base_filter: BaseFilter | None = None
        self.matrix: dict[str, dict[str, CellResult]] = {}

    def verify(self, task: Task, candidates: list[Candidate]) -> dict[str, Verdict]:
        if self.filter_base:
            # Once per verifier: the tests and the base commit do not change between the
            # rounds that call verify again with new candidates.
            if self.base_filter is None:
                self.base_filter = filter_on_base(self.tests, self.make_sandbox, self.timeout)
            kept = self.base_filter.kept
        else:
            kept = self.tests
        if not kept:
            why = "no reproduction test fails on the base commit"
            return {
                c.id: Verdict(verifier=self.name, score=0.5, infra_error=why) for c in candidates
            }
        self.matrix = run_matrix(
            kept, candidates, self.make_sandbox, self.cache, self.workers, self.timeout, self.reruns
        )
        verdicts = {}
        for cand in candidates:
            cells = self.matrix[cand.id]
            details = summarize(cells)
            details["tests"] = {t.id: t.path for t in kept}
            seconds = sum(c.seconds for c in cells.values() if not c.cached)
            cost = Cost(sandbox_seconds=seconds)
            verdicts[cand.id] = pass_rate_verdict(
                self.name,
                details["passed"],
                details["total"],
                details,
                cost,
                "no test judged this candidate (timeouts or infrastructure)",
            )
        return verdicts


def new_test_files(patch: str) -> list[str]:
    """Test files a testing trajectory's patch creates or changes."""
    return [f.path for f in parse_patch(patch).files if f.new_path and is_test_path(f.path)]
