"""Running tests against candidates in sandboxes: the shared machinery of the execution
verifiers (reproduction tests, regression tests).

An outcome is one of:
  pass, fail     the test ran and judged the candidate
  not_applied    the candidate patch does not apply (grading's own apply routine,
                 ``swescale.patches``): counted as a failure of the candidate
  timeout, infra the run could not judge (hang, dead container, engine error): recorded,
                 never counted against the candidate
Outcomes that judged are cached on disk by (test hash, candidate key); a rerun of the
verifier over the same candidates starts no sandbox for them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from swescale.patches import ApplyResult, apply_patch
from swescale.sandbox.base import Sandbox, SandboxError

log = logging.getLogger(__name__)

SandboxFactory = Callable[[], Sandbox]
JUDGED = ("pass", "fail", "not_applied")
WORK = "/tmp/swescale-verify"


class CellResult(BaseModel):
    outcome: str  # pass | fail | not_applied | timeout | infra | error
    exit_code: int | None = None
    seconds: float = 0.0
    output_tail: str = ""
    cached: bool = False
    # Which official apply command applied the candidate (``swescale.patches``).
    apply_strategy: str | None = None

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


def apply_candidate(sandbox: Sandbox, patch: str, workdir: str) -> ApplyResult:
    """Apply a candidate exactly as grading does (``swescale.patches.apply_patch``: the
    official attempts in order, the tree reset between them, the already-applied
    check). Raises SandboxError when the apply could not run at all."""
    result = apply_patch(sandbox, patch, workdir, scratch=f"{WORK}/apply")
    if result.infra_error:
        raise SandboxError(f"applying the patch failed to run: {result.infra_error}")
    return result


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
        applied = apply_candidate(sandbox, patch, sandbox.workdir)
        if not applied.applied:
            elapsed = time.monotonic() - start
            tail = applied.log[-800:]
            return {
                k: CellResult(outcome="not_applied", seconds=elapsed, output_tail=tail)
                for k in keys
            }
        cells = work(sandbox)
        for cell in cells.values():
            cell.apply_strategy = applied.strategy
        return cells
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
        "apply_strategy": next(
            (r.apply_strategy for r in results.values() if r.apply_strategy), None
        ),
    }
