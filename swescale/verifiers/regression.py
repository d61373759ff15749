"""Regression tests: the repository's existing tests related to what a candidate changes,
run on the base commit and on each candidate; breaking a test that passes on base costs.

Related tests are found by path (``test_<module>.py`` and friends) and by imports (test
files importing a changed module), read with ``git grep`` inside the sandbox. The test
command is the task's (mini benchmark ``test_cmd``, or the official spec's), its
arguments built by the official ``get_test_directives`` (Django wants module labels, not
paths), and the log read by the task's official log parser.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import PurePosixPath

from swescale.patches import (
    changed_paths,
    is_packaging_or_prose,
    is_script,
    is_test_module,
    looks_like_test,
)
from swescale.types import Candidate, Cost, Task, Verdict
from swescale.verifiers.base import REGRESSION
from swescale.verifiers.execution import CellResult, SandboxFactory, run_in_fresh_sandbox

log = logging.getLogger(__name__)

GOOD = ("PASSED", "XFAIL")
# The task's list of tests that fail on the untouched checkout (``Task.extra``).
BROKEN_ON_BASE = "broken_on_base"
DEFAULT_TEST_COMMAND = "python -m pytest -rA -p no:cacheprovider"
LOG_FILE = "/tmp/swescale-verify/regression.log"
IMPORTS_FILE = "/tmp/swescale-verify/test-imports.txt"
_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\s+(.*)|import\s+(.*))$")
_RA_LINE = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED)\s+(\S+)")


def module_names(path: str) -> list[str]:
    """Dotted names a source file may be imported as (``src/pkg/m.py`` -> pkg.m, src.pkg.m)."""
    p = PurePosixPath(path)
    if p.suffix != ".py":
        return []
    parts = list(p.with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    names = []
    for start in range(len(parts)):
        if start and parts[start - 1] not in ("src", "lib", "python"):
            continue
        if parts[start:]:
            names.append(".".join(parts[start:]))
    return names


def parse_imports(grep_output: str) -> dict[str, set[str]]:
    """``git grep`` lines (``path:import line``) -> path -> imported dotted names."""
    imports: dict[str, set[str]] = {}
    for line in grep_output.splitlines():
        path, sep, code = line.partition(":")
        if not sep:
            continue
        m = _IMPORT.match(code)
        if not m:
            continue
        names = imports.setdefault(path, set())
        if m.group(1):
            base = m.group(1)
            names.add(base)
            for item in m.group(2).strip("()\\ ").split(","):
                leaf = item.strip().split(" as ")[0].strip("() ")
                if leaf.isidentifier():
                    names.add(f"{base}.{leaf}")
        else:
            for item in m.group(3).split(","):
                name = item.strip().split(" as ")[0].strip()
                if name:
                    names.add(name)
    return imports


def related_tests(
    changed: Sequence[str],
    test_files: Iterable[str],
    imports: dict[str, set[str]],
    limit: int = 20,
) -> list[str]:
    """Test files related to the changed source files, best first: path matches
    (``test_<module>.py``), then files importing a changed module, then files importing
    a package that holds one (``from slugkit import slugify`` for ``slugkit/core.py``:
    packages re-export), the deepest package and the nearest directory first; with path
    matches, one importing file at most joins them. Test files a candidate changed stay
    in: they run at their base version (see ``_command``), so no candidate grades itself
    with its own edit of a test, as the official eval resets test files. Only test
    modules run (a suite's fixture files are not tests); changed
    reproduction scripts and packaging files relate to no test."""
    changed_src = [
        p
        for p in changed
        if p.endswith(".py")
        and not looks_like_test(p)
        and not is_script(p)
        and not is_packaging_or_prose(p)
    ]
    stems = {PurePosixPath(p).stem for p in changed_src} - {"__init__", "conftest"}
    modules = {m for p in changed_src for m in module_names(p)}
    packages = {m.rsplit(".", k)[0] for m in modules for k in range(1, m.count(".") + 1)}
    dirs = [PurePosixPath(p).parent.parts for p in changed_src]
    by_path, by_import, by_package = [], [], []
    for test in sorted(t for t in set(test_files) if is_test_module(t)):
        name = PurePosixPath(test).stem
        core = name.removeprefix("tests_").removeprefix("test_").removesuffix("_test")
        names = imports.get(test, ())
        if core in stems or any(core.startswith(f"{s}_") for s in stems):
            by_path.append(test)
        elif any(n == m or n.startswith(m + ".") for n in names for m in modules):
            by_import.append(test)
        else:
            depth = max((n.count(".") + 1 for n in names if n in packages), default=0)
            if depth:
                parts = PurePosixPath(test).parent.parts
                near = max((_common(parts, d) for d in dirs), default=0)
                by_package.append((-depth, -near, test))
    by_package_sorted = [t for *_, t in sorted(by_package)]
    if by_path:
        # The tests named after the changed modules are the ones that exercise them; a
        # file that merely imports them (sympy's test_args imports everything) adds run
        # time more than evidence: one such file at most.
        return (by_path + (by_import + by_package_sorted)[:1])[:limit]
    return (by_import + by_package_sorted)[:limit]


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def parse_ra_log(log_text: str) -> dict[str, str]:
    """pytest ``-rA`` summary lines -> test name -> status (fallback parser)."""
    status = {}
    for line in log_text.splitlines():
        m = _RA_LINE.match(line.strip())
        if m:
            status[m.group(2)] = m.group(1)
    return status


def changed_outcomes(base: dict[str, str], candidate: dict[str, str]) -> dict[str, str]:
    """Tests whose outcome differs from base: test -> "pass" / "fail" (absent counts as
    fail). What two candidates share here is what makes them behave alike."""
    out = {}
    for test in sorted(set(base) | set(candidate)):
        before, after = base.get(test) in GOOD, candidate.get(test) in GOOD
        if before != after:
            out[test] = "pass" if after else "fail"
    return out


def broken_tests(base: dict[str, str], candidate: dict[str, str]) -> list[str]:
    """Tests passing on base that do not pass with the candidate (missing counts: the
    candidate may have broken their import)."""
    return sorted(t for t, s in base.items() if s in GOOD and candidate.get(t) not in GOOD)


def task_test_command(task: Task, fallback: str = DEFAULT_TEST_COMMAND) -> tuple[str, list[str]]:
    """(test command, setup commands) for the task, from its spec provider when it has
    one (``fallback`` when its recipe names no command)."""
    try:
        from swescale.swebench.specs import provider_for

        specs = provider_for(task)
        return specs.test_runner(task) or fallback, specs.eval_commands(task)
    except Exception:  # noqa: BLE001 - any spec trouble: the generic command still works
        return str(task.extra.get("test_cmd") or fallback), []


def directives_for(task: Task, files: Sequence[str]) -> list[str]:
    """Arguments for the test command that run ``files``, as the task's spec provider
    names them (official directives: Django module labels)."""
    try:
        from swescale.swebench.specs import provider_for

        return provider_for(task).test_directives(task, files)
    except Exception:  # noqa: BLE001 - no recipes: the files themselves still work
        return list(files)


def status_parser(task: Task) -> Callable[[str], dict[str, str]]:
    try:
        from swescale.swebench.specs import log_parser_for

        official = log_parser_for(task)
    except Exception:  # noqa: BLE001 - unknown repository: read pytest's summary
        return parse_ra_log

    def parse(text: str) -> dict[str, str]:
        return official(text) or parse_ra_log(text)

    return parse


class RegressionVerifier:
    name = REGRESSION

    def __init__(
        self,
        make_sandbox: SandboxFactory,
        workers: int = 2,
        timeout: float = 600.0,
        reruns: int = 1,
        max_test_files: int = 20,
        test_command: str | None = None,
    ) -> None:
        self.make_sandbox = make_sandbox
        self.workers = workers
        self.timeout = timeout
        self.reruns = reruns
        self.max_test_files = max_test_files
        self.test_command = test_command

    def _command(self, task: Task, files: Sequence[str]) -> str:
        cmd, setup = task_test_command(task)
        cmd = self.test_command or cmd
        args = " ".join(shlex.quote(a) for a in directives_for(task, files))
        prefix = "".join(f"{c}; " for c in setup)
        # The existing tests as they are at the base commit, whatever a candidate did to
        # them (the files exist there: they were found in the base tree).
        reset = "git checkout -q HEAD -- " + " ".join(shlex.quote(f) for f in files)
        return (
            f"mkdir -p /tmp/swescale-verify; {prefix}cd {{workdir}} && {reset} && "
            f"{cmd} {args} > {LOG_FILE} 2>&1"
        )

    def _run(self, patch: str, command: str) -> CellResult:
        def work(sandbox) -> dict[str, CellResult]:
            run = sandbox.execute(
                command.format(workdir=shlex.quote(sandbox.workdir)), timeout=self.timeout
            )
            if run.infra_error or run.timed_out:
                outcome = "infra" if run.infra_error else "timeout"
                return {"run": CellResult(outcome=outcome, seconds=run.seconds)}
            text = sandbox.read_file(LOG_FILE).decode("utf-8", "replace")
            return {
                "run": CellResult(
                    outcome="pass", exit_code=run.exit_code, seconds=run.seconds, output_tail=text
                )
            }

        return run_in_fresh_sandbox(self.make_sandbox, patch, work, ["run"])["run"]

    def find_tests(self, candidates: Sequence[Candidate]) -> list[str]:
        changed = sorted({p for c in candidates for p in changed_paths(c.patch)})
        if not changed:
            return []

        def work(sandbox) -> dict[str, CellResult]:
            # Through a file: a real suite's import lines (sympy: ~4000) exceed what a
            # command's output keeps, and a cut listing silently loses test files.
            sandbox.execute(
                f"mkdir -p /tmp/swescale-verify; cd {shlex.quote(sandbox.workdir)} && git grep -E "
                "'^\\s*(from\\s+\\S+\\s+import|import)\\s' -- '*test*.py' '*/tests/*.py' "
                f"> {IMPORTS_FILE}",
                timeout=120,
            )
            text = sandbox.read_file(IMPORTS_FILE).decode("utf-8", "replace")
            return {"grep": CellResult(outcome="pass", output_tail=text)}

        grep = run_in_fresh_sandbox(self.make_sandbox, "", work, ["grep"])["grep"].output_tail
        imports = parse_imports(grep)
        return related_tests(changed, imports.keys(), imports, self.max_test_files)

    def verify(self, task: Task, candidates: list[Candidate]) -> dict[str, Verdict]:
        files = self.find_tests(candidates)
        if not files:
            return {
                c.id: Verdict(
                    verifier=self.name,
                    score=1.0,
                    details={"tests": [], "note": "no related existing tests found"},
                    infra_error="no related tests",
                )
                for c in candidates
            }
        parse = status_parser(task)
        # Real suites are slow and fragile: when the related files do not finish on base
        # within the timeout, or the runner reports nothing (sympy's runner crashes when
        # one of several files fails to import), keep the better half (path matches come
        # first) and try again, so every candidate run fits what the base run proved.
        base_seconds = 0.0
        while True:
            command = self._command(task, files)
            base_run = self._run("", command)
            base_seconds += base_run.seconds
            base = parse(base_run.output_tail) if base_run.judged else {}
            if base or base_run.outcome == "infra" or len(files) == 1:
                break
            files = files[: len(files) // 2]
        if not base:
            why = (
                f"base run failed ({base_run.outcome})"
                if not base_run.judged
                else "the base run reported no test outcomes"
            )
            return {
                c.id: Verdict(
                    verifier=self.name,
                    score=0.5,
                    details={"tests": files},
                    cost=Cost(sandbox_seconds=base_seconds / len(candidates)),
                    infra_error=why,
                )
                for c in candidates
            }
        # Tests the repository's own suite fails on the untouched checkout (``swescale
        # solve`` runs it first) are broken on base: no candidate is held to them, even
        # when this run happened to see them pass.
        known_broken = set(task.extra.get(BROKEN_ON_BASE) or [])
        base = {t: s for t, s in base.items() if t not in known_broken}
        with ThreadPoolExecutor(max_workers=max(self.workers, 1)) as pool:
            runs = list(pool.map(lambda c: self._run(c.patch, command), candidates))
        verdicts = {}
        for cand, run in zip(candidates, runs, strict=True):
            verdict = self._verdict(cand, run, base, parse, command, files)
            verdict.cost = verdict.cost + Cost(sandbox_seconds=base_seconds / len(candidates))
            verdicts[cand.id] = verdict
        return verdicts

    def _verdict(self, cand, run, base, parse, command, files) -> Verdict:
        cost = Cost(sandbox_seconds=run.seconds)
        details: dict = {"tests": files, "base_passing": sum(s in GOOD for s in base.values())}
        if run.outcome == "not_applied":
            details["applied"] = False
            return Verdict(verifier=self.name, score=0.0, passed=False, details=details, cost=cost)
        if not run.judged:
            return Verdict(
                verifier=self.name, score=0.5, details=details, cost=cost, infra_error=run.outcome
            )
        statuses = parse(run.output_tail)
        broken = broken_tests(base, statuses)
        details["outcomes"] = changed_outcomes(base, statuses)
        for _ in range(self.reruns if broken else 0):
            again = self._run(cand.patch, command)
            if again.judged:
                still = set(broken_tests(base, parse(again.output_tail)))
                details["flaky"] = sorted(set(broken) - still)
                broken = [t for t in broken if t in still]
                for test in details["flaky"]:
                    details["outcomes"].pop(test, None)
        base_passing = max(details["base_passing"], 1)
        details.update(applied=True, broken=broken, apply_strategy=run.apply_strategy)
        return Verdict(
            verifier=self.name,
            score=1.0 - len(broken) / base_passing,
            passed=not broken,
            details=details,
            cost=cost,
        )
