"""Doctests of the changed code: the examples in the docstrings of every module a
candidate changes, run on the base commit and on each candidate, one outcome per
docstring (the standard library's ``doctest``: ``DocTestFinder`` and ``DocTestRunner``
with ``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``).

The regression verifier runs the test files related to a change; doctests are the
repository's own tests of the same code written next to it, and they often exercise the
exact function an issue is about. As with regression tests: a docstring whose examples
pass on base and fail with the candidate is broken (score = 1 - broken / passing on
base), and the docstrings whose outcome changes are recorded (``details["outcomes"]``)
for ``behaviour``, which compares candidates on them.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from swescale.patches import changed_paths, is_packaging_or_prose, is_script, looks_like_test
from swescale.sandbox.base import SandboxError
from swescale.types import Candidate, Cost, Task, Verdict
from swescale.verifiers.base import DOCTEST
from swescale.verifiers.execution import WORK, SandboxFactory, apply_candidate
from swescale.verifiers.regression import module_names, task_test_command

MARK = "@@swescale-doctest@@"

# Runs with the environment's interpreter (Python 3.6 and later).
HARNESS = r"""
import doctest, importlib, json, os, signal, sys
sys.path.insert(0, os.getcwd())  # the checkout, as the interpreter started there sees it
CHOICES = json.loads(%(choices)r)
class _Late(BaseException):
    pass
def _alarm(*args):
    raise _Late()
signal.signal(signal.SIGALRM, _alarm)
out = {}
flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
for names in CHOICES:
    module = None
    for name in names:
        try:
            module = importlib.import_module(name)
            break
        except BaseException as exc:
            error = type(exc).__name__
    if module is None:
        out["<import> " + names[0]] = "fail"
        continue
    try:
        tests = doctest.DocTestFinder(exclude_empty=True).find(module)
    except BaseException:
        continue
    for test in tests:
        if not test.examples:
            continue
        runner = doctest.DocTestRunner(optionflags=flags, verbose=False)
        signal.alarm(%(per_test)d)
        try:
            result = runner.run(test, out=lambda text: None, clear_globs=True)
            out[test.name] = "pass" if result.failed == 0 else "fail"
        except _Late:
            out[test.name] = "timeout"
        except BaseException:
            out[test.name] = "fail"
        finally:
            signal.alarm(0)
sys.stdout.write("\n%(mark)s" + json.dumps(out) + "\n")
"""


def changed_modules(candidates: Sequence[Candidate]) -> list[list[str]]:
    """Per changed source file, the dotted names it may be imported as (tests, scripts,
    packaging and prose are not)."""
    paths = sorted({p for c in candidates for p in changed_paths(c.patch)})
    out = []
    for path in paths:
        if looks_like_test(path) or is_script(path) or is_packaging_or_prose(path):
            continue
        names = module_names(path)
        if names:
            out.append(names)
    return out


def compare(base: dict[str, str], cand: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """(docstrings passing on base that do not pass with the candidate, every docstring
    whose outcome differs: name -> "pass"/"fail"); a timeout judges nothing."""
    broken, outcomes = [], {}
    for name in sorted(set(base) | set(cand)):
        before, after = base.get(name), cand.get(name)
        if "timeout" in (before, after):
            continue
        if (before == "pass") != (after == "pass"):
            outcomes[name] = "pass" if after == "pass" else "fail"
            if before == "pass":
                broken.append(name)
    return broken, outcomes


class DoctestVerifier:
    name = DOCTEST

    def __init__(
        self, make_sandbox: SandboxFactory, workers: int = 2, timeout: float = 300.0,
        per_test: int = 60,
    ) -> None:  # fmt: skip
        self.make_sandbox = make_sandbox
        self.workers = workers
        self.timeout = timeout
        self.per_test = per_test

    def _run(
        self, task: Task, patch: str, choices: list[list[str]]
    ) -> tuple[dict | None, float, str | None]:
        try:
            sandbox = self.make_sandbox()
        except (SandboxError, OSError, RuntimeError) as exc:
            return None, 0.0, f"infra: no sandbox: {exc}"
        try:
            applied = apply_candidate(sandbox, patch, sandbox.workdir)
            if not applied.applied:
                return None, 0.0, "not_applied"
            _, setup = task_test_command(task)
            prefix = "".join(f"{c}; " for c in setup)
            script = HARNESS % {
                "choices": json.dumps(choices),
                "per_test": self.per_test,
                "mark": MARK,
            }
            sandbox.execute(f"mkdir -p {WORK}", timeout=60)
            sandbox.write_file(f"{WORK}/doctests.py", script)
            run = sandbox.execute(
                f"{prefix}cd {shlex.quote(sandbox.workdir)} && python {WORK}/doctests.py 2>&1 "
                "| tail -c 400000",
                timeout=self.timeout,
            )
            if run.infra_error or run.timed_out:
                return (
                    None,
                    run.seconds,
                    "timeout" if run.timed_out else f"infra: {run.infra_error}",
                )
            found = run.output.rsplit(MARK, 1)
            if len(found) != 2:
                return None, run.seconds, "the doctest run reported nothing"
            return json.loads(found[1].strip().splitlines()[0]), run.seconds, None
        except (SandboxError, ValueError, IndexError) as exc:
            return None, 0.0, f"infra: {exc}"
        finally:
            sandbox.close()

    def verify(self, task: Task, candidates: list[Candidate]) -> dict[str, Verdict]:
        choices = changed_modules(candidates)
        if not choices:
            return self._nothing(candidates, {}, "no changed source module")
        base, base_seconds, error = self._run(task, "", choices)
        summary: dict[str, Any] = {"modules": [c[0] for c in choices]}
        if base is None:
            return self._nothing(candidates, summary, f"base run failed: {error}")
        passing = sum(v == "pass" for v in base.values())
        summary.update(docstrings=len(base), base_passing=passing)
        # With no doctest on base the candidates are still run: one may add docstrings
        # whose examples fail, which behaviour compares.
        with ThreadPoolExecutor(max_workers=max(self.workers, 1)) as pool:
            rows = list(pool.map(lambda c: self._run(task, c.patch, choices), candidates))
        share = base_seconds / max(len(candidates), 1)
        verdicts = {}
        for cand, (result, seconds, err) in zip(candidates, rows, strict=True):
            cost = Cost(sandbox_seconds=share + seconds)
            if err == "not_applied":
                verdicts[cand.id] = Verdict(verifier=self.name, score=0.0, passed=False,
                                            details={**summary, "applied": False}, cost=cost)  # fmt: skip
                continue
            if result is None:
                verdicts[cand.id] = Verdict(verifier=self.name, score=0.5, details=summary,
                                            cost=cost, infra_error=err)  # fmt: skip
                continue
            broken, outcomes = compare(base, result)
            details = {**summary, "applied": True, "broken": broken, "outcomes": outcomes}
            verdicts[cand.id] = Verdict(
                verifier=self.name,
                score=1.0 - len(broken) / max(passing, 1),
                passed=not broken,
                details=details,
                cost=cost,
            )
        return verdicts

    def _nothing(self, candidates, details, why) -> dict[str, Verdict]:
        return {
            c.id: Verdict(verifier=self.name, score=1.0, details=details, infra_error=why)
            for c in candidates
        }
