"""Harvested tests: the tests candidates bring with them, run against every candidate
(CodeMonkeys' test x edit matrix, with tests taken from the pool instead of generated).

Other systems' patches often carry the tests or reproduction scripts their agent wrote:
new or changed test files, and scripts such as ``reproduce.py``. Each one is run on the
base commit and on every candidate, in fresh sandboxes of the task's instance image:

- a test file runs with the task's own test command and official log parser, so each
  test function is one *unit*; a file whose tests cannot be told apart (collection
  error, unknown format) is one unit judged by the command's exit status;
- a script is one unit judged by its exit status.

A unit is kept only when it does not pass on the base commit (it reproduces something).
A candidate's score is the share of kept units it passes among the units harvested from
*other* candidates: a producer passing its own test says nothing. Units that could not
run (timeouts, dead containers) judge nothing.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from swescale.patches import harvestable_paths, new_file_content
from swescale.sandbox.base import Sandbox, SandboxError
from swescale.types import Candidate, Cost, Task, Verdict
from swescale.verifiers.base import HARVEST, pass_rate_verdict
from swescale.verifiers.execution import WORK, SandboxFactory, apply_candidate
from swescale.verifiers.regression import GOOD, directives_for, status_parser, task_test_command

log = logging.getLogger(__name__)

FILE_UNIT = "<file>"
LOG = f"{WORK}/harvest.log"


@dataclass(frozen=True)
class HarvestedTest:
    path: str
    content: str
    kind: str  # "test" (the task's test command, per-test units) or "script" (exit status)
    sources: tuple[str, ...] = ()  # candidate ids whose patch brings it

    @property
    def id(self) -> str:
        digest = hashlib.sha256(f"{self.path}\0{self.content}".encode("utf-8", "replace"))
        return digest.hexdigest()[:12]


@dataclass
class Run:
    """One harvested test run once: per-unit pass/fail, or why it could not judge."""

    units: dict[str, bool] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0
    apply_strategy: str | None = None  # which official apply command applied the candidate


def harvest(
    candidates: Sequence[Candidate], read_changed: Callable[[Candidate, list[str]], dict] | None
) -> list[HarvestedTest]:
    """Distinct tests the candidates bring. Created files come from the patch text;
    changed existing files need ``read_changed(candidate, paths) -> {path: text}`` (read
    after applying the candidate) and are skipped without it."""
    found: dict[tuple[str, str], HarvestedTest] = {}
    for cand in candidates:
        wanted = harvestable_paths(cand.patch)
        texts: dict[str, str] = {}
        changed = [p for p, _, created in wanted if not created]
        if changed and read_changed is not None:
            texts.update(read_changed(cand, changed))
        for path, kind, created in wanted:
            text = new_file_content(cand.patch, path) if created else texts.get(path)
            if not text or not text.strip():
                continue
            key = (path, text)
            old = found.get(key)
            sources = (*(old.sources if old else ()), cand.id)
            found[key] = HarvestedTest(path=path, content=text, kind=kind, sources=sources)
    return sorted(found.values(), key=lambda t: (t.path, t.id))


def merge_tests(*groups: Sequence[HarvestedTest]) -> list[HarvestedTest]:
    """One test per (path, content), its sources the union of every group's."""
    found: dict[tuple[str, str], HarvestedTest] = {}
    for group in groups:
        for test in group:
            key = (test.path, test.content)
            old = found.get(key)
            sources = tuple(dict.fromkeys((*(old.sources if old else ()), *test.sources)))
            found[key] = HarvestedTest(test.path, test.content, test.kind, sources)
    return sorted(found.values(), key=lambda t: (t.path, t.id))


def _command(task: Task, test: HarvestedTest) -> str:
    if test.kind == "script":
        return f"python {shlex.quote(test.path)}"
    cmd, setup = task_test_command(task)
    args = " ".join(shlex.quote(a) for a in directives_for(task, [test.path]))
    return "".join(f"{c}; " for c in setup) + f"{cmd} {args}"


def _run_one(sandbox: Sandbox, task: Task, test: HarvestedTest, timeout: float) -> Run:
    workdir = shlex.quote(sandbox.workdir)
    parse = status_parser(task)
    start = time.monotonic()
    sandbox.write_file(test.path, test.content)
    # The log goes through a file: a long test file's output exceeds what a command's
    # output keeps, and a cut log loses test outcomes.
    run = sandbox.execute(
        f"mkdir -p {WORK}; cd {workdir} && {_command(task, test)} > {LOG} 2>&1", timeout=timeout
    )
    seconds = time.monotonic() - start
    try:
        log_text = sandbox.read_file(LOG).decode("utf-8", "replace")
    except (FileNotFoundError, SandboxError):
        log_text = run.output
    # Back to the candidate's state (committed below) for the next test.
    sandbox.execute(f"cd {workdir} && git reset -q --hard && git clean -qfd", timeout=120)
    if run.infra_error:
        return Run(error=f"infra: {run.infra_error}", seconds=seconds)
    if run.timed_out:
        return Run(error="timeout", seconds=seconds)
    if test.kind == "test":
        # Only this file ran: every status the parser finds belongs to it.
        statuses = parse(log_text)
        if statuses:
            return Run({t: s in GOOD for t, s in statuses.items()}, seconds=seconds)
    return Run({FILE_UNIT: run.exit_code == 0}, seconds=seconds)


def run_tests_on(
    make_sandbox: SandboxFactory,
    task: Task,
    patch: str,
    tests: Sequence[HarvestedTest],
    timeout: float,
) -> dict[str, Run]:
    """Every test against one candidate (or the base commit, patch ""), one sandbox."""
    try:
        sandbox = make_sandbox()
    except (SandboxError, OSError, RuntimeError) as exc:
        return {t.id: Run(error=f"infra: no sandbox: {exc}") for t in tests}
    try:
        applied = apply_candidate(sandbox, patch, sandbox.workdir)
        if not applied.applied:
            return {t.id: Run(error="not_applied") for t in tests}
        workdir = shlex.quote(sandbox.workdir)
        sandbox.execute(
            f"cd {workdir} && git add -A >/dev/null 2>&1 && git -c user.name=v -c "
            "user.email=v@v commit -qm candidate --no-verify --allow-empty >/dev/null 2>&1",
            timeout=120,
        )
        runs = {t.id: _run_one(sandbox, task, t, timeout) for t in tests}
        for run in runs.values():
            run.apply_strategy = applied.strategy
        return runs
    except SandboxError as exc:
        return {t.id: Run(error=f"infra: {exc}") for t in tests}
    finally:
        sandbox.close()


def kept_units(base: dict[str, Run]) -> dict[str, list[str]]:
    """test id -> units that do not pass on base (only those reproduce something)."""
    return {
        tid: sorted(u for u, ok in run.units.items() if not ok)
        for tid, run in base.items()
        if not run.error and any(not ok for ok in run.units.values())
    }


def score_row(
    cand_id: str,
    row: dict[str, Run],
    kept: dict[str, list[str]],
    tests: dict[str, HarvestedTest],
) -> dict[str, Any]:
    """Pass counts of one candidate over the kept units of other candidates' tests."""
    cells: dict[str, bool | None] = {}
    passed = total = 0
    for tid, units in kept.items():
        run = row.get(tid)
        own = cand_id in tests[tid].sources
        for unit in units:
            key = f"{tid}:{unit}"
            if run is None or (run.error and run.error != "not_applied"):
                cells[key] = None
                continue
            # A candidate that does not apply passes nothing. A unit the run did not
            # report (the test file errored under this candidate) fails.
            ok = False if run.error == "not_applied" else bool(run.units.get(unit, False))
            if unit != FILE_UNIT and unit not in run.units and FILE_UNIT in run.units:
                ok = run.units[FILE_UNIT]
            cells[key] = ok
            if not own:
                passed += ok
                total += 1
    applied = not row or any(r.error != "not_applied" for r in row.values())
    return {"cells": cells, "passed": passed, "total": total, "applied": applied}


class HarvestedTestVerifier:
    """Scores candidates by the share of other candidates' failing-on-base tests they pass."""

    name = HARVEST

    def __init__(
        self,
        make_sandbox: SandboxFactory,
        workers: int = 2,
        timeout: float = 300.0,
        extra_tests: Sequence[HarvestedTest] = (),
    ) -> None:
        """``extra_tests``: tests and scripts the producers wrote along the way that their
        final patches no longer hold (agents are told to remove them), each with the
        candidates whose producers wrote it as ``sources``."""
        self.make_sandbox = make_sandbox
        self.workers = workers
        self.timeout = timeout
        self.extra_tests = list(extra_tests)
        self.tests: list[HarvestedTest] = []
        self.base: dict[str, Run] = {}

    def _read_changed(self, cand: Candidate, paths: list[str]) -> dict[str, str]:
        try:
            sandbox = self.make_sandbox()
        except (SandboxError, OSError, RuntimeError):
            return {}
        try:
            applied = apply_candidate(sandbox, cand.patch, sandbox.workdir)
            out = {}
            for path in paths if applied.applied else []:
                try:
                    out[path] = sandbox.read_file(path).decode("utf-8", "replace")
                except (FileNotFoundError, SandboxError):
                    continue
            return out
        except SandboxError:
            return {}
        finally:
            sandbox.close()

    def verify(self, task: Task, candidates: list[Candidate]) -> dict[str, Verdict]:
        self.tests = merge_tests(harvest(candidates, self._read_changed), self.extra_tests)
        if not self.tests:
            why = "no candidate brings a test or reproduction script"
            return {
                c.id: Verdict(verifier=self.name, score=0.5, details={"tests": 0}, infra_error=why)
                for c in candidates
            }
        by_id = {t.id: t for t in self.tests}
        self.base = run_tests_on(self.make_sandbox, task, "", self.tests, self.timeout)
        base_seconds = sum(r.seconds for r in self.base.values())
        kept = kept_units(self.base)
        summary = {
            "tests": {
                t.id: {"path": t.path, "kind": t.kind, "from": list(t.sources)} for t in self.tests
            },  # fmt: skip
            "kept_units": sum(len(u) for u in kept.values()),
            "discarded": sorted(t for t, r in self.base.items() if t not in kept and not r.error),
            "base_errors": {t: r.error for t, r in self.base.items() if r.error},
        }
        if not kept:
            why = "no harvested test fails on the base commit"
            return {
                c.id: Verdict(verifier=self.name, score=0.5, details=summary, infra_error=why)
                for c in candidates
            }
        wanted = [by_id[t] for t in kept]
        with ThreadPoolExecutor(max_workers=max(self.workers, 1)) as pool:
            rows = list(
                pool.map(
                    lambda c: run_tests_on(self.make_sandbox, task, c.patch, wanted, self.timeout),
                    candidates,
                )
            )
        verdicts = {}
        share = base_seconds / max(len(candidates), 1)
        for cand, row in zip(candidates, rows, strict=True):
            scored = score_row(cand.id, row, kept, by_id)
            strategy = next((r.apply_strategy for r in row.values() if r.apply_strategy), None)
            details = {**summary, **scored, "apply_strategy": strategy}
            cost = Cost(sandbox_seconds=share + sum(r.seconds for r in row.values()))
            verdicts[cand.id] = pass_rate_verdict(
                self.name,
                scored["passed"],
                scored["total"],
                details,
                cost,
                "no test from another candidate judged this one",
            )
        return verdicts
