"""Static signals: what can be said of a candidate without running the repository's
tests, and what it looks like against the rest of the pool.

Per candidate, in one fresh sandbox of the task's instance image:
  applies      the patch applies as grading applies it (``swescale.patches``: the official
               attempts in order); ``apply_strategy`` names the one that did, and
               ``clean_apply`` is true when plain ``git apply`` did (no 3-way merge, no
               rejected or already-present hunk, no fuzz)
  test set-up  the paths that change how the tests run (``test_setup_changed``:
               conftest.py, pytest settings, test plugins), shown, never scored
  compiles     every changed Python file byte-compiles with the environment's interpreter
  imports      every changed module imports, unless it did not import on base either
  undefined    names pyflakes reports undefined in a changed file after the patch and not
               before it (``pyflakes.messages.UndefinedName``, run here on the files read
               back from the sandbox, so the environment needs no pyflakes)
  source       the patch changes the program: something besides tests, reproduction
               scripts, packaging configuration and prose (``changes_source``)
Pool signals (pure, no sandbox; ``pool_signals``):
  lines        added + removed lines; ``size_ratio`` is lines over the pool's median
  locality     the vote-weighted share of the pool touching the same files (1.0: every
               other producer edited exactly these files)
  Both count what applying the candidate changed when plain ``git apply`` did not apply
  it (``effective_files``, ``effective_lines``): a hunk found already there, as grading
  skips it, changes nothing and counts for nothing.

score 1.0 and ``passed`` when the candidate changes source, applies, compiles, imports
and adds no undefined name; 0.0 otherwise. The pool signals ride along in ``details`` for the
selectors and never decide ``passed``.
"""

from __future__ import annotations

import json
import logging
import shlex
import statistics
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from swescale.patches import (
    changed_test_setup,
    changes_source,
    looks_like_test,
    parse_patch,
    patch_paths,
    votes,
)
from swescale.sandbox.base import Sandbox, SandboxError
from swescale.types import Candidate, Cost, Task, Verdict
from swescale.verifiers.base import STATIC
from swescale.verifiers.execution import WORK, SandboxFactory, apply_candidate
from swescale.verifiers.regression import module_names, task_test_command

log = logging.getLogger(__name__)

# One Python process checks compile and import for all files, printing one JSON line:
# run with the environment's interpreter so the grammar and the packages are the task's.
# Each module is imported in a fresh interpreter: imported one after another in one
# process, a module can import only because an earlier one set up its dependencies (a
# circular import that works in one order), so base and candidate would disagree on the
# same module depending on which other modules the pool changed.
_CHECK = r"""
import json, py_compile, subprocess, sys
files, modules = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = {"compile": {}, "import": {}}
for f in files:
    try:
        py_compile.compile(f, doraise=True)
        out["compile"][f] = ""
    except Exception as exc:
        out["compile"][f] = str(exc)[-300:]
IMPORT = "import importlib, sys; sys.path.insert(0, '.'); importlib.import_module(sys.argv[1])"
for m in modules:
    try:
        run = subprocess.run([sys.executable, "-c", IMPORT, m], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
        lines = [x for x in run.stderr.splitlines() if x.strip()]
        said = lines[-1] if lines else "exit status %d" % run.returncode
        out["import"][m] = "" if run.returncode == 0 else said[-300:]
    except subprocess.TimeoutExpired:
        out["import"][m] = "TimeoutExpired: import took over 120 s"
print("SWESCALE-STATIC " + json.dumps(out))
"""
_MARK = "SWESCALE-STATIC "


def changed_python(patch: str) -> tuple[list[str], list[str]]:
    """(changed .py files that exist after the patch, their importable module names);
    test files are compiled but not imported (importing a test module runs fixtures)."""
    files, modules = [], []
    for fp in parse_patch(patch).files:
        if fp.new_path is None or not fp.new_path.endswith(".py"):
            continue
        files.append(fp.new_path)
        if not looks_like_test(fp.new_path):
            names = module_names(fp.new_path)
            if names:
                modules.append(names[0])
    return sorted(set(files)), sorted(set(modules))


def undefined_names(source: str, filename: str = "<file>") -> set[str] | None:
    """Names pyflakes reports as undefined in ``source``; None when it does not parse."""
    import pyflakes.api
    import pyflakes.messages

    class Collect:
        def __init__(self) -> None:
            self.names: set[str] = set()
            self.broken = False

        def unexpectedError(self, *_: Any) -> None:
            self.broken = True

        def syntaxError(self, *_: Any) -> None:
            self.broken = True

        def flake(self, message: Any) -> None:
            if isinstance(message, pyflakes.messages.UndefinedName):
                self.names.add(str(message.message_args[0]))

    collect = Collect()
    pyflakes.api.check(source, filename, collect)
    return None if collect.broken else collect.names


def patch_size(patch: str) -> int:
    """Added plus removed lines."""
    return sum(
        1
        for fp in parse_patch(patch).files
        for hunk in fp.hunks
        for line in hunk.lines
        if line[:1] in "+-"
    )


def pool_signals(
    candidates: Sequence[Candidate],
    effective: Mapping[str, tuple[set[str], int]] | None = None,
) -> dict[str, dict[str, float]]:
    """Size and locality of each candidate against the pool (pure).

    ``locality``: for each file the candidate touches, the vote share of the *other*
    producers that touch it too, averaged over its files (0 when it is alone).
    ``size_ratio``: its changed lines over the pool's median (1.0 is typical).
    ``effective``: candidate id -> (files, changed lines) of what applying it changed,
    where that differs from its text (a hunk already there changes nothing)."""
    effective = effective or {}
    files = {c.id: {fp.path for fp in parse_patch(c.patch).files if fp.path} for c in candidates}
    sizes = {c.id: patch_size(c.patch) for c in candidates}
    for cid, (changed, lines) in effective.items():
        if cid in files:
            files[cid], sizes[cid] = set(changed), lines
    median = statistics.median(sizes.values()) if sizes else 0
    out = {}
    for cand in candidates:
        others = [c for c in candidates if c.id != cand.id]
        total = sum(votes(c) for c in others)
        shares = [
            sum(votes(c) for c in others if path in files[c.id]) / total if total else 0.0
            for path in files[cand.id]
        ]
        out[cand.id] = {
            "lines": float(sizes[cand.id]),
            "files": float(len(files[cand.id])),
            "size_ratio": sizes[cand.id] / median if median else 1.0,
            "locality": sum(shares) / len(shares) if shares else 0.0,
        }
    return out


def _checks(sandbox: Sandbox, files: list[str], modules: list[str]) -> dict[str, dict[str, str]]:
    workdir = shlex.quote(sandbox.workdir)
    sandbox.execute(f"mkdir -p {WORK}", timeout=30)
    sandbox.write_file(f"{WORK}/static_check.py", _CHECK)
    run = sandbox.execute(
        f"cd {workdir} && python {WORK}/static_check.py "
        f"{shlex.quote(json.dumps(files))} {shlex.quote(json.dumps(modules))} 2>/dev/null "
        f"| grep '^{_MARK}' | tail -1",
        timeout=300,
    )
    if run.infra_error:
        raise SandboxError(run.infra_error)
    line = run.output.strip()
    if not line.startswith(_MARK):
        # The checker itself died (an import that kills the interpreter): say so.
        return {"compile": {}, "import": {m: f"checker died: {run.output[-200:]}" for m in modules}}
    return json.loads(line[len(_MARK) :])


def _contents(sandbox: Sandbox, paths: Sequence[str]) -> str | None:
    """A digest line per path of what the work tree holds there (missing files too);
    None when it could not be read."""
    if not paths:
        return ""
    quoted = " ".join(shlex.quote(p) for p in paths)
    run = sandbox.execute(
        f"cd {shlex.quote(sandbox.workdir)} && sha256sum -- {quoted} 2>&1", timeout=120
    )
    return None if run.infra_error else run.output


def effective_change(sandbox: Sandbox, patch: str) -> tuple[list[str], int] | None:
    """(files, added + removed lines) that applying ``patch`` changed in the sandbox's
    tree, leftovers of ``patch`` (``.orig``, ``.rej``) not counted; None when git could
    not say. Binary files count no lines, as in ``patch_size``."""
    run = sandbox.execute(
        f"cd {shlex.quote(sandbox.workdir)} && git add -A >/dev/null 2>&1 && "
        "git -c core.quotepath=off diff --cached --numstat --no-renames HEAD",
        timeout=300,
    )
    if run.infra_error or run.exit_code != 0:
        return None
    named = set(patch_paths(patch))
    files, lines = [], 0
    for row in run.output.splitlines():
        parts = row.split("\t", 2)
        if len(parts) != 3:
            continue
        added, removed, path = parts
        if path.endswith((".orig", ".rej")) and path not in named:
            continue
        files.append(path)
        lines += sum(int(n) for n in (added, removed) if n.isdigit())
    return sorted(files), lines


def _read(sandbox: Sandbox, path: str) -> str | None:
    try:
        return sandbox.read_file(path).decode("utf-8", "replace")
    except (FileNotFoundError, SandboxError):
        return None


class StaticVerifier:
    """Applies, compiles, imports, no new undefined names; plus size and locality."""

    name = STATIC

    def __init__(self, make_sandbox: SandboxFactory, workers: int = 2) -> None:
        self.make_sandbox = make_sandbox
        self.workers = workers

    def _base(self, candidates: Sequence[Candidate]) -> tuple[dict, dict[str, set[str] | None]]:
        """Import results and undefined names of the changed files on the base commit."""
        all_files = sorted({f for c in candidates for f in changed_python(c.patch)[0]})
        all_modules = sorted({m for c in candidates for m in changed_python(c.patch)[1]})
        sandbox = self.make_sandbox()
        try:
            existing = [f for f in all_files if _read(sandbox, f) is not None]
            mods = [m for m in all_modules if any(m in module_names(f) for f in existing)]
            checks = _checks(sandbox, [], mods)
            names = {}
            for f in existing:
                text = _read(sandbox, f)
                names[f] = undefined_names(text, f) if text is not None else None
        finally:
            sandbox.close()
        return checks["import"], names

    def _one(
        self, cand: Candidate, base_imports: dict[str, str], base_names: dict
    ) -> tuple[dict[str, Any], float, str | None]:
        files, modules = changed_python(cand.patch)
        start = time.monotonic()
        try:
            sandbox = self.make_sandbox()
        except (SandboxError, OSError, RuntimeError) as exc:
            return {}, 0.0, f"no sandbox: {exc}"
        try:
            named = sorted(set(patch_paths(cand.patch)))
            before = _contents(sandbox, named)
            applied = apply_candidate(sandbox, cand.patch, sandbox.workdir)
            details: dict[str, Any] = {"applied": applied.applied}
            if not applied.applied:
                details["apply_output"] = applied.log[-600:]
                return details, time.monotonic() - start, None
            details["apply_strategy"] = applied.strategy
            details["clean_apply"] = applied.clean
            if before is not None and _contents(sandbox, named) == before:
                # Every file it names was already as applying it leaves it (an untracked
                # build copy of the package, hunks already there: "already applied", or a
                # 3-way merge of a file that exists): grading tests base's behaviour.
                details["changes_nothing"] = True
            if not applied.clean:
                # What the tree holds may differ from the text: size and locality follow
                # the tree, which is what grading tests.
                changed = effective_change(sandbox, cand.patch)
                if changed is not None:
                    details["effective_files"], details["effective_lines"] = changed
            checks = _checks(sandbox, files, modules)
            details["compile_errors"] = {f: e for f, e in checks["compile"].items() if e}
            details["compiles"] = not details["compile_errors"]
            # A module that did not import on base either (an optional dependency the
            # environment lacks) says nothing about the candidate.
            details["import_errors"] = {
                m: e for m, e in checks["import"].items() if e and not base_imports.get(m)
            }
            details["imports"] = not details["import_errors"]
            new: dict[str, list[str]] = {}
            for f in files:
                text = _read(sandbox, f)
                after = undefined_names(text, f) if text is not None else None
                before = base_names.get(f) or set()
                if after is not None and after - before:
                    new[f] = sorted(after - before)
            details["new_undefined"] = new
            return details, time.monotonic() - start, None
        except SandboxError as exc:
            return {}, time.monotonic() - start, f"sandbox failed: {exc}"
        finally:
            sandbox.close()

    def verify(self, task: Task, candidates: list[Candidate]) -> dict[str, Verdict]:
        start = time.monotonic()
        try:
            base_imports, base_names = self._base(candidates)
        except (SandboxError, OSError, RuntimeError) as exc:
            why = f"base checks failed: {exc}"
            pool = pool_signals(candidates)
            return {
                c.id: Verdict(verifier=self.name, score=0.5, details=pool[c.id], infra_error=why)
                for c in candidates
            }
        base_seconds = time.monotonic() - start
        with ThreadPoolExecutor(max_workers=max(self.workers, 1)) as ex:
            results = list(ex.map(lambda c: self._one(c, base_imports, base_names), candidates))
        pool = pool_signals(
            candidates,
            {
                cand.id: (set(details["effective_files"]), int(details["effective_lines"]))
                for cand, (details, _, _) in zip(candidates, results, strict=True)
                if "effective_files" in details
            },
        )
        verdicts = {}
        for cand, (details, seconds, error) in zip(candidates, results, strict=True):
            details = {**details, **pool[cand.id]}
            cost = Cost(sandbox_seconds=seconds + base_seconds / max(len(candidates), 1))
            if error:
                verdicts[cand.id] = Verdict(
                    verifier=self.name, score=0.5, details=details, cost=cost, infra_error=error
                )
                continue
            details["changes_source"] = changes_source(cand.patch) and not details.get(
                "changes_nothing"
            )
            details["test_setup_changed"] = changed_test_setup(
                cand.patch, task_test_command(task)[0]
            )
            ok = bool(
                details["changes_source"]
                and details.get("applied")
                and details.get("compiles")
                and details.get("imports")
                and not details.get("new_undefined")
            )
            verdicts[cand.id] = Verdict(
                verifier=self.name, score=1.0 if ok else 0.0, passed=ok, details=details, cost=cost
            )
        return verdicts


def pool_only_verdicts(candidates: Sequence[Candidate]) -> dict[str, Verdict]:
    """Static verdicts from the pool signals alone, for tasks with no environment (no
    repository mirror): size and locality are known, the sandbox checks are not."""
    pool = pool_signals(candidates)
    return {
        c.id: Verdict(
            verifier=STATIC,
            score=0.5,
            details={**pool[c.id], "pool_only": True},
            infra_error="no environment: pool signals only",
        )
        for c in candidates
    }
