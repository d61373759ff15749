"""Issue reproducers: the programs an issue shows, run on the base commit and on every
candidate; a candidate is scored by the checks it flips. No model.

``issue_text.read_issue`` reads the programs (sessions, scripts, commands) and what the
issue says of each statement. Every Python program of the issue runs in one interpreter,
in order (later snippets use names earlier ones define), each statement as the
interactive interpreter runs it (``compile(..., "single")``: a bare expression shows its
``repr``), each under its own time limit, recording its output, its value's ``repr`` and
``str``, and the exception it raised. Commands run in a scratch directory holding the
files the issue gives. The base commit runs twice: a statement whose record differs
between the two runs is unstable and judges nothing.

A statement becomes a **check** only when it reproduces the bug on base:

- ``raises``: the issue calls the behaviour an error (title or the prose before it) and
  base raises what its traceback shows (a command: prints a traceback); a candidate passes
  when it does not raise (prints none);
- ``expected``: the issue states what it should give and base gives something else; a
  candidate passes when it gives that;
- ``differs``: the issue points at the statement's output (a marker, or the last output
  shown) and base prints exactly that; a candidate passes when its record differs.

Score: the share of checks passed (``pass_rate_verdict``); each check's source text,
what the issue showed and expected, and base's record are in ``details["checks"]``, the
pass/fail cells in ``details["cells"]``, and a digest of every stable statement's record
in ``details["outputs"]``, which the ``behaviour`` verifier compares between candidates
(inputs harvested from the issue: candidates that behave alike on them agree).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shlex
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from swescale.sandbox.base import SandboxError
from swescale.types import Candidate, Cost, Task, Verdict
from swescale.verifiers.base import ISSUE, pass_rate_verdict
from swescale.verifiers.execution import WORK, SandboxFactory, apply_candidate
from swescale.verifiers.issue_text import Program, Statement, normalize, read_issue
from swescale.verifiers.regression import task_test_command

log = logging.getLogger(__name__)

DIR = f"{WORK}/issue"
MARK = "@@swescale-issue@@"
# Exceptions that say the snippet is incomplete (a name the issue left out, a typo, an
# import of the reporter's own module), not that it shows the bug.
INCOMPLETE = ("NameError", "ImportError", "ModuleNotFoundError", "SyntaxError", "Timeout",
              "IndentationError", "KeyboardInterrupt", "SystemExit")  # fmt: skip
# What a session in an issue of these repositories assumes is already imported. The
# package's own names come last: ``sympy.abc`` also names S, N, Q, I, E and O.
PRELUDES = {"sympy/sympy": "from sympy.abc import *\nfrom sympy import *\n"}

# Runs with the environment's interpreter (Python 3.6 and later): no newer syntax here.
HARNESS = r"""
import contextlib, io, json, signal, sys
STATEMENTS = json.loads(%(statements)r)
g = {"__name__": "__main__"}
try:
    exec(compile(%(prelude)r, "<prelude>", "exec"), g)
except BaseException:
    pass
class _Late(BaseException):
    pass
def _alarm(*args):
    raise _Late()
signal.signal(signal.SIGALRM, _alarm)
records = []
for code in STATEMENTS:
    buf = io.StringIO()
    rec = {"exc": None, "msg": None, "repr": None, "str": None}
    def hook(value, rec=rec, buf=buf):
        if value is None:
            return
        g["_"] = value
        try:
            rec["repr"] = repr(value)[:4000]
            rec["str"] = str(value)[:4000]
        except BaseException as exc:
            rec["repr"] = "<repr failed: %%s>" %% type(exc).__name__
        buf.write(rec["repr"] + "\n")
    old = sys.displayhook
    sys.displayhook = hook
    signal.alarm(%(per_statement)d)
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            exec(compile(code + "\n", "<issue>", "single"), g)
    except _Late:
        rec["exc"] = "Timeout"
    except BaseException as exc:
        rec["exc"] = type(exc).__name__
        rec["msg"] = str(exc)[:1000]
    finally:
        signal.alarm(0)
        sys.displayhook = old
    rec["out"] = buf.getvalue()[-4000:]
    records.append(rec)
sys.stdout.write("\n%(mark)s" + json.dumps(records) + "\n")
"""


@dataclass
class Check:
    id: str
    kind: str  # raises | expected | differs
    program: str
    index: int
    source: str
    shown: str | None
    expected: list[str]
    base: dict[str, Any]


def unit_key(program: Program, index: int) -> str:
    return f"{program.id}:{index}"


def _matches(text: str | None, record: dict[str, Any]) -> bool:
    """The issue's text equals what the run printed, its value's repr or its str."""
    want = normalize(text)
    if not want:
        return False
    got = [record.get("out"), record.get("repr"), record.get("str")]
    return any(want == normalize(g) for g in got if g)


def _contains(text: str, record: dict[str, Any]) -> bool:
    out = normalize(record.get("out"))
    lines = [normalize(x) for x in text.splitlines() if x.strip()]
    return bool(lines) and all(line in out for line in lines)


def _digest(record: dict[str, Any] | None) -> str | None:
    if record is None:
        return None
    key = [record.get("exc"), normalize(record.get("out")), record.get("exit")]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:10]


def derive_checks(
    programs: Sequence[Program],
    base: dict[str, dict[str, Any]],
    again: dict[str, dict[str, Any]],
) -> list[Check]:
    """The statements that reproduce the bug on base (see the module docstring); ``base``
    and ``again`` are two base runs' records by :func:`unit_key`."""
    checks = []
    for program in programs:
        for index, stmt in enumerate(program.statements):
            key = unit_key(program, index)
            record = base.get(key)
            if record is None or _digest(record) != _digest(again.get(key)):
                continue
            kind = _check_kind(program, stmt, record)
            if kind:
                checks.append(Check(key, kind, program.id, index, stmt.code, stmt.shown,
                                    list(stmt.expected), record))  # fmt: skip
    return checks


def _check_kind(program: Program, stmt: Statement, record: dict[str, Any]) -> str | None:
    if program.kind == "command":
        out = record.get("out") or ""
        if stmt.expected:
            return None if any(_contains(e, record) for e in stmt.expected) else "expected"
        if program.bug_words and "Traceback" in (stmt.shown or "") and "Traceback (most" in out:
            return "raises"
        if stmt.marked and stmt.shown and _contains(stmt.shown, record):
            return "differs"
        return None
    exc = record.get("exc")
    if exc in INCOMPLETE:
        return None
    if exc:
        shown_match = exc in stmt.raises if stmt.raises else stmt.marked and stmt.shown is None
        return "raises" if program.bug_words and shown_match else None
    if stmt.expected:
        return None if any(_matches(e, record) for e in stmt.expected) else "expected"
    if stmt.marked and stmt.shown and not stmt.raises and _matches(stmt.shown, record):
        return "differs"
    return None


def passes(check: Check, record: dict[str, Any] | None) -> bool | None:
    """Whether a candidate's record flips the check; None when it could not run."""
    if record is None or record.get("exc") == "Timeout":
        return None
    if check.kind == "raises":
        if "exit" in record:
            return "Traceback (most recent call last)" not in (record.get("out") or "")
        return record.get("exc") is None
    if check.kind == "expected":
        if "exit" in record:
            return any(_contains(e, record) for e in check.expected)
        return record.get("exc") is None and any(_matches(e, record) for e in check.expected)
    return _digest(record) != _digest(check.base)


class IssueReproVerifier:
    """Scores candidates by the issue's own reproducers they flip (see the module)."""

    name = ISSUE

    def __init__(
        self,
        make_sandbox: SandboxFactory,
        workers: int = 2,
        timeout: float = 300.0,
        per_statement: int = 60,
    ) -> None:
        self.make_sandbox = make_sandbox
        self.workers = workers
        self.timeout = timeout
        self.per_statement = per_statement

    def programs(self, task: Task) -> list[Program]:
        """What is run: every Python program, and the commands the issue says something
        about (a version listing in a shell block is not a reproducer)."""
        return [
            p
            for p in read_issue(task.problem_statement)
            if p.kind == "python" or any(s.shown or s.expected for s in p.statements)
        ]

    def run(self, task: Task, patch: str, programs: Sequence[Program], times: int = 1
            ) -> tuple[list[dict[str, dict[str, Any]]], float, str | None]:  # fmt: skip
        """Records by unit key, ``times`` runs in one sandbox with ``patch`` applied;
        ([], seconds, "not_applied") when it does not apply, ([], s, "infra: ...") when
        the sandbox failed."""
        try:
            sandbox = self.make_sandbox()
        except (SandboxError, OSError, RuntimeError) as exc:
            return [], 0.0, f"infra: no sandbox: {exc}"
        seconds = 0.0
        try:
            applied = apply_candidate(sandbox, patch, sandbox.workdir)
            if not applied.applied:
                return [], 0.0, "not_applied"
            runs = []
            for _ in range(times):
                records, spent = self._run_all(sandbox, task, programs)
                runs.append(records)
                seconds += spent
            return runs, seconds, None
        except SandboxError as exc:
            return [], seconds, f"infra: {exc}"
        finally:
            sandbox.close()

    def _run_all(self, sandbox, task: Task, programs: Sequence[Program]
                 ) -> tuple[dict[str, dict[str, Any]], float]:  # fmt: skip
        _, setup = task_test_command(task)
        prefix = "".join(f"{c}; " for c in setup)
        records: dict[str, dict[str, Any]] = {}
        seconds = 0.0
        python = [p for p in programs if p.kind == "python"]
        if python:
            statements = [s.code for p in python for s in p.statements]
            keys = [unit_key(p, i) for p in python for i in range(len(p.statements))]
            script = HARNESS % {
                "statements": json.dumps(statements),
                "prelude": PRELUDES.get(task.repo, _default_prelude(task.repo)),
                "per_statement": self.per_statement,
                "mark": MARK,
            }
            sandbox.execute(f"mkdir -p {DIR}", timeout=60)
            sandbox.write_file(f"{DIR}/harness.py", script)
            run = sandbox.execute(
                f"{prefix}cd {DIR} && python harness.py 2>&1 | tail -c 200000", timeout=self.timeout
            )
            seconds += run.seconds
            if run.infra_error:
                raise SandboxError(run.infra_error)
            found = run.output.rsplit(MARK, 1)
            if len(found) == 2:
                try:
                    for key, rec in zip(
                        keys, json.loads(found[1].strip().splitlines()[0]), strict=False
                    ):
                        records[key] = rec
                except (ValueError, IndexError):
                    log.warning("%s: unreadable issue harness output", task.id)
        for program in programs:
            if program.kind != "command":
                continue
            scratch = f"{DIR}/{program.id}"
            sandbox.execute(f"mkdir -p {scratch}", timeout=60)
            for name, content in program.files.items():
                sandbox.write_file(f"{scratch}/{name}", content)
            command = program.statements[0].code
            run = sandbox.execute(
                f"{prefix}cd {scratch} && timeout {self.per_statement} bash -c "
                f"{shlex.quote(command)} 2>&1 | tail -c 20000; exit ${{PIPESTATUS[0]}}",
                timeout=self.timeout,
            )
            seconds += run.seconds
            if run.infra_error:
                raise SandboxError(run.infra_error)
            records[unit_key(program, 0)] = {
                "out": run.output,
                "exit": run.exit_code,
                "exc": "Timeout" if run.timed_out or run.exit_code == 124 else None,
            }
        return records, seconds

    def verify(self, task: Task, candidates: list[Candidate]) -> dict[str, Verdict]:
        programs = self.programs(task)
        if not programs:
            return self._nothing(candidates, {"programs": 0}, "the issue shows no reproducer")
        runs, base_seconds, error = self.run(task, "", programs, times=2)
        summary: dict[str, Any] = {"programs": len(programs)}
        if error or len(runs) < 2:
            return self._nothing(candidates, summary, f"base run failed: {error}")
        checks = derive_checks(programs, runs[0], runs[1])
        stable = [k for k in runs[0] if _digest(runs[0][k]) == _digest(runs[1].get(k))]
        summary["checks"] = [
            {"id": c.id, "kind": c.kind, "source": c.source, "shown": c.shown,
             "expected": c.expected, "base": _brief(c.base)}
            for c in checks
        ]  # fmt: skip
        summary["stable_units"] = len(stable)
        with ThreadPoolExecutor(max_workers=max(self.workers, 1)) as pool:
            rows = list(pool.map(lambda c: self.run(task, c.patch, programs), candidates))
        share = base_seconds / max(len(candidates), 1)
        verdicts = {}
        for cand, (cand_runs, seconds, err) in zip(candidates, rows, strict=True):
            cost = Cost(sandbox_seconds=share + seconds)
            if err == "not_applied":
                details = {**summary, "applied": False, "cells": {c.id: False for c in checks}}
                verdicts[cand.id] = Verdict(verifier=self.name, score=0.0, passed=False,
                                            details=details, cost=cost)  # fmt: skip
                continue
            if err or not cand_runs:
                verdicts[cand.id] = Verdict(verifier=self.name, score=0.5, details=summary,
                                            cost=cost, infra_error=err or "no run")  # fmt: skip
                continue
            records = cand_runs[0]
            cells = {c.id: passes(c, records.get(c.id)) for c in checks}
            judged = [v for v in cells.values() if v is not None]
            details = {
                **summary,
                "applied": True,
                "cells": cells,
                "outputs": {k: _digest(records.get(k)) for k in stable},
                "records": {c.id: _brief(records.get(c.id)) for c in checks},
            }
            verdicts[cand.id] = pass_rate_verdict(
                self.name, sum(judged), len(judged), details, cost,
                "no issue reproducer reproduces on base" if not checks else "no check judged it",
            )  # fmt: skip
        return verdicts

    def _nothing(self, candidates, details, why) -> dict[str, Verdict]:
        return {
            c.id: Verdict(verifier=self.name, score=0.5, details=details, infra_error=why)
            for c in candidates
        }


def _default_prelude(repo: str) -> str:
    """``from <package> import *`` for the repository's package, when it imports."""
    package = repo.rsplit("/", 1)[-1].replace("-", "_")
    return (
        f"try:\n    from {package} import *\nexcept BaseException:\n    pass\n"
        if package.isidentifier()
        else ""
    )


def _brief(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {k: (v[:600] if isinstance(v, str) else v) for k, v in record.items() if k != "str"}
