"""One way to apply a candidate patch: the official harness's (swebench 5.x ``run_instance``).

The attempts, in order, are ``GIT_APPLY_CMDS`` of ``swebench.harness.run_evaluation``::

    git apply --verbose
    git apply --verbose --3way
    git apply --verbose --reject
    patch --batch --forward --fuzz=5 -p1 -i

The first that exits 0 applied the patch. Before each attempt after the first, the tree
is reset: ``git checkout -- . ; git clean -fd`` as officially, which brings back the tree
as it was when it was clean before the first attempt (a fresh container always is). A tree
that held changes or untracked files before the first attempt gets exactly those back:
they are kept in a tree object (``git add -A`` into a private index) and checked out
again after the official reset. Files outside the work tree (the patch, the log) are never
touched. When every attempt failed, ``git apply --check --reverse`` on the tree *as the last
attempt left it* says whether the patch is there anyway ("already applied"): a patch whose
hunks are partly present already is skipped hunk by hunk by ``patch --forward``, which
exits 1, and the check then finds the whole patch applied. That tree is what the tests see.

Two ways to run the same sequence, generated from the same lines (``apply_lines``): a
bash script that runs in one process (grading's driver script), and ``apply_patch``,
which sends the patch and that script through anything with ``execute`` and
``write_file`` (a sandbox, or ``LocalRunner`` for a directory on this machine) and
reads back which command applied (``ApplyResult.strategy``).
"""

from __future__ import annotations

import functools
import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from typing import Protocol

from swescale.types import ExecResult

ALREADY_APPLIED = "already applied"
NOTHING_TO_APPLY = "nothing to apply"
REVERSE_CHECK = "git apply --check --reverse"
OFFICIAL_RESET = "git checkout -- . ; git clean -fd"
# The last line of the script run by ``apply_patch``: which command applied ("" none).
_MARK = "SWESCALE-APPLIED:"
_LOG_TAIL = 6000  # bytes of the attempts' output that ``apply_patch`` returns


@functools.cache
def apply_commands() -> tuple[str, ...]:
    """The official apply attempts, in order (``GIT_APPLY_CMDS`` of swebench 5.x); each
    takes the patch file as its last argument."""
    from swebench.harness.run_evaluation import GIT_APPLY_CMDS

    return tuple(GIT_APPLY_CMDS)


def is_clean(strategy: str | None) -> bool:
    """Whether ``strategy`` is the first attempt: plain ``git apply``, no 3-way merge, no
    rejected hunk, no fuzz, no hunk found already there."""
    return strategy == apply_commands()[0]


class Runner(Protocol):
    """What ``apply_patch`` needs: a sandbox has both (``swescale.sandbox.base.Sandbox``)."""

    def execute(self, command: str, timeout: float | None = None) -> ExecResult: ...

    def write_file(self, path: str, content: str | bytes) -> None: ...


@dataclass(frozen=True)
class ApplyResult:
    """How applying one patch went.

    ``strategy``: the command that applied it (one of ``apply_commands()``),
    ``ALREADY_APPLIED``, ``NOTHING_TO_APPLY`` (an empty patch), or None (it did not
    apply). ``log``: the attempts' output (its tail). ``infra_error``: the script could
    not run at all (a dead container, a timeout): then nothing is known of the patch."""

    applied: bool
    strategy: str | None
    log: str = ""
    infra_error: str | None = None

    @property
    def clean(self) -> bool:
        return is_clean(self.strategy)


def apply_lines(patch_file: str, log_file: str, scratch: str) -> list[str]:
    """Bash lines that apply ``patch_file`` in the current directory (the top of a git
    work tree) as the official harness does, leaving ``$applied`` set to the command that
    applied it, ``already applied``, or empty; every attempt's output goes to
    ``log_file``. ``scratch``: a directory outside the work tree for the private index
    that keeps a dirty tree's state. No ``set -e``: failures are the point."""
    attempts = " ".join(shlex.quote(c) for c in apply_commands())
    patch, log = shlex.quote(patch_file), shlex.quote(log_file)
    pre_index = shlex.quote(f"{scratch.rstrip('/')}/pre-apply.index")
    return [
        f": > {log}",
        # The tree before the first attempt, when the official reset would not give it
        # back (local changes, untracked files): a tree object of all of it.
        'pre=""',
        'if [ -n "$(git status --porcelain --untracked-files=all 2>/dev/null | head -c 1)" ]; then',
        f'  cp -f "$(git rev-parse --git-path index)" {pre_index} 2>/dev/null',
        f"  pre=$(GIT_INDEX_FILE={pre_index} git add -A . >/dev/null 2>&1 &&"
        f" GIT_INDEX_FILE={pre_index} git write-tree 2>/dev/null)",
        "fi",
        "reset_tree() {",
        f"  {OFFICIAL_RESET} >/dev/null 2>&1",
        '  if [ -n "$pre" ]; then',
        # Only what differs from the earlier tree: files the index has and it had not
        # (deleted before) go, files it had otherwise come back as they were.
        '    git diff-index --cached --name-only -z --no-renames --diff-filter=A "$pre" -- . |'
        " xargs -0 -r rm -f --",
        '    git diff-index --cached --name-only -z --no-renames --diff-filter=DMT "$pre" -- . |'
        f" GIT_INDEX_FILE={pre_index} git checkout-index -f -z --stdin",
        "  fi",
        "}",
        'applied=""',
        "tried=0",
        f"for attempt in {attempts}; do",
        # A failed attempt (--reject above all) leaves partial state behind.
        '  if [ "$tried" = 1 ]; then reset_tree; fi',
        "  tried=1",
        f'  echo "$ $attempt" >> {log}',
        f'  if $attempt {patch} >> {log} 2>&1; then applied="$attempt"; break; fi',
        "done",
        f'if [ -z "$applied" ]; then echo "$ {REVERSE_CHECK}" >> {log};'
        f" if {REVERSE_CHECK} {patch} >> {log} 2>&1; then applied={shlex.quote(ALREADY_APPLIED)};"
        " fi; fi",
    ]


def apply_script(workdir: str, patch_file: str, log_file: str, scratch: str) -> str:
    """The script ``apply_patch`` runs: ``apply_lines`` in ``workdir``, the log's tail,
    then one line naming what applied; exit 0 when the patch applied, 1 when not."""
    lines = [
        "#!/bin/bash",
        "set -u",
        f"cd {shlex.quote(workdir)} || exit 2",
        *apply_lines(patch_file, log_file, scratch),
        f"tail -c {_LOG_TAIL} {shlex.quote(log_file)}",
        f'echo; echo "{_MARK}$applied"',
        '[ -n "$applied" ]',
    ]
    return "\n".join(lines) + "\n"


def patch_bytes(patch: str | bytes) -> bytes:
    """The patch file's bytes: verbatim, as the official harness writes it (no newline
    added); a ``str`` holding surrogate escapes gets its original bytes back."""
    if isinstance(patch, bytes):
        return patch
    return patch.encode("utf-8", errors="surrogateescape")


def apply_patch(
    runner: Runner,
    patch: str | bytes,
    workdir: str,
    scratch: str = "/tmp/swescale-apply",
    timeout: float = 600.0,
) -> ApplyResult:
    """Apply ``patch`` in ``workdir`` through ``runner`` (see the module docstring).

    ``scratch`` must lie outside the work tree: the patch, the script and the log go
    there. An empty patch applies as nothing (``NOTHING_TO_APPLY``), as grading takes an
    empty prediction. Never raises for the patch; ``infra_error`` is set when the script
    could not run or finish."""
    data = patch_bytes(patch)
    if not data.strip():
        return ApplyResult(True, NOTHING_TO_APPLY)
    scratch = scratch.rstrip("/")
    patch_file, log_file = f"{scratch}/candidate.patch", f"{scratch}/apply.log"
    script = apply_script(workdir, patch_file, log_file, scratch)
    try:
        made = runner.execute(f"mkdir -p {shlex.quote(scratch)}", timeout=60)
        if made.infra_error or made.exit_code != 0:
            return ApplyResult(False, None, made.output[-500:], made.infra_error or made.output)
        runner.write_file(patch_file, data)
        runner.write_file(f"{scratch}/apply.sh", script)
    except Exception as exc:  # noqa: BLE001 - a runner's own errors (engine, OS) end here
        return ApplyResult(False, None, "", f"{type(exc).__name__}: {exc}")
    run = runner.execute(f"bash {shlex.quote(scratch)}/apply.sh", timeout=timeout)
    if run.infra_error or run.timed_out:
        why = run.infra_error or f"applying the patch took over {timeout:g} s"
        return ApplyResult(False, None, run.output[-_LOG_TAIL:], why)
    text = run.output.rstrip("\n")
    if _MARK not in text:
        why = f"the apply script ended without a result (exit {run.exit_code})"
        return ApplyResult(False, None, text[-_LOG_TAIL:], why)
    body, _, said = text.rpartition(_MARK)
    strategy = said.strip() or None
    return ApplyResult(strategy is not None, strategy, body.rstrip("\n"))


class LocalRunner:
    """``Runner`` for a directory on this machine: commands run with ``bash -c`` and the
    given environment added to this process's (``GIT_DIR`` and ``GIT_WORK_TREE`` point
    git at a work tree that is not a checkout of its own)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = {**os.environ, **(env or {})}

    def execute(self, command: str, timeout: float | None = None) -> ExecResult:
        start = time.monotonic()
        try:
            done = subprocess.run(
                ["bash", "-c", command],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            said = exc.output.decode("utf-8", "replace") if exc.output else ""
            return ExecResult(
                output=said, exit_code=None, seconds=time.monotonic() - start, timed_out=True
            )
        return ExecResult(
            output=done.stdout.decode("utf-8", "replace"),
            exit_code=done.returncode,
            seconds=time.monotonic() - start,
        )

    def write_file(self, path: str, content: str | bytes) -> None:
        data = content.encode("utf-8") if isinstance(content, str) else content
        with open(path, "wb") as out:
            out.write(data)
