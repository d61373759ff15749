"""Running tests against candidates in sandboxes: the shared machinery of the execution
verifiers (reproduction tests, regression tests).

An outcome is one of:
  pass, fail     the test ran and judged the candidate
  not_applied    the candidate patch does not apply: counted as a failure of the candidate
  timeout, infra the run could not judge (hang, dead container, engine error): recorded,
                 never counted against the candidate
Outcomes that judged are cached on disk by (test hash, candidate key); a rerun of the
verifier over the same candidates starts no sandbox for them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from swescale.sandbox.base import Sandbox, SandboxError

log = logging.getLogger(__name__)

SandboxFactory = Callable[[], Sandbox]
JUDGED = ("pass", "fail", "not_applied")
WORK = "/tmp/swescale-verify"
APPLY_COMMANDS = (
    "git apply --verbose",
    "patch --batch --fuzz=5 -p1 -i",
)


class CellResult(BaseModel):
    outcome: str  # pass | fail | not_applied | timeout | infra | error
    exit_code: int | None = None
    seconds: float = 0.0
    output_tail: str = ""
    cached: bool = False

    @property
    def judged(self) -> bool:
        return self.outcome in JUDGED

    @property
    def passed(self) -> bool | None:
        """True/False when the cell judged the candidate; None when it could not."""
        if not self.judged:
            return None
        return self.outcome == "pass"


def content_hash(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogateescape"))
        digest.update(b"\x00")
    return digest.hexdigest()


class ResultCache:
    """Judged cell outcomes on disk, one small JSON file per (test, candidate, context)."""

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory) if directory else None
        self.hits = 0
        self.misses = 0

    def _path(self, test_hash: str, candidate_hash: str) -> Path | None:
        if self.directory is None:
            return None
        key = content_hash(test_hash, candidate_hash)
        return self.directory / key[:2] / f"{key}.json"

    def get(self, test_hash: str, candidate_hash: str) -> CellResult | None:
        path = self._path(test_hash, candidate_hash)
        if path is None or not path.exists():
            self.misses += 1
            return None
        try:
            result = CellResult.model_validate_json(path.read_text())
        except (OSError, ValueError):
            self.misses += 1
            return None  # a damaged entry is a miss, never an error
        self.hits += 1
        return result.model_copy(update={"cached": True})

    def put(self, test_hash: str, candidate_hash: str, result: CellResult) -> None:
        path = self._path(test_hash, candidate_hash)
        if path is None or not result.judged:
            return  # only judgements are worth keeping; infra errors must be retried
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(result.model_dump_json())
        os.replace(tmp, path)


def apply_candidate(sandbox: Sandbox, patch: str, workdir: str) -> tuple[bool, str]:
    """Apply a patch as the graders do (git apply, then patch with fuzz)."""
    if not patch.strip():
        return True, "empty patch"
    data = patch if patch.endswith("\n") else patch + "\n"
    sandbox.execute(f"mkdir -p {WORK}", timeout=30)
    sandbox.write_file(f"{WORK}/candidate.patch", data.encode("utf-8", "surrogateescape"))
    said = []
    for command in APPLY_COMMANDS:
        result = sandbox.execute(
            f"cd {shlex.quote(workdir)} && {command} {WORK}/candidate.patch", timeout=120
        )
        if result.infra_error:
            raise SandboxError(f"applying the patch failed to run: {result.infra_error}")
        said.append(f"$ {command}\n{result.output[-500:]}")
        if result.exit_code == 0:
            return True, "\n".join(said)
        # patch --fuzz may have half-applied: put the tree back before the next attempt
        sandbox.execute(f"cd {shlex.quote(workdir)} && git checkout -q -- . ", timeout=60)
    return False, "\n".join(said)


def classify_run(exit_code: int | None, timed_out: bool, infra_error: str | None) -> str:
    if infra_error:
        return "infra"
    if timed_out:
        return "timeout"
    return "pass" if exit_code == 0 else "fail"


def run_in_fresh_sandbox(
    make_sandbox: SandboxFactory,
    patch: str,
    work: Callable[[Sandbox], dict[str, CellResult]],
    keys: list[str],
) -> dict[str, CellResult]:
    """Start a sandbox, apply ``patch``, call ``work``; any sandbox failure turns every
    key into an ``infra`` result, and a patch that does not apply into ``not_applied``."""
    start = time.monotonic()
    try:
        sandbox = make_sandbox()
    except (SandboxError, OSError, RuntimeError) as exc:
        return {k: CellResult(outcome="infra", output_tail=f"no sandbox: {exc}") for k in keys}
    try:
        applied, said = apply_candidate(sandbox, patch, sandbox.workdir)
        if not applied:
            elapsed = time.monotonic() - start
            tail = said[-800:]
            return {
                k: CellResult(outcome="not_applied", seconds=elapsed, output_tail=tail)
                for k in keys
            }
        return work(sandbox)
    except SandboxError as exc:
        log.warning("sandbox failed during verification: %s", exc)
        return {k: CellResult(outcome="infra", output_tail=str(exc)[-800:]) for k in keys}
    finally:
        sandbox.close()


def summarize(results: dict[str, CellResult]) -> dict[str, Any]:
    judged = [r for r in results.values() if r.judged]
    return {
        "results": {k: r.outcome for k, r in sorted(results.items())},
        "passed": sum(1 for r in judged if r.outcome == "pass"),
        "total": len(judged),
        "unjudged": len(results) - len(judged),
        "applied": not any(r.outcome == "not_applied" for r in results.values()),
    }
