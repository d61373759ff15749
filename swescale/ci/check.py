"""``swescale ci check``: the repository's environment, built as the bot builds it, and its
test suite run on the untouched checkout in a sandbox (no network). The bot's verifiers
run the same tests on candidates, so a suite that fails here makes every run doubtful."""

from __future__ import annotations

import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import git
from pydantic import BaseModel, Field

from swescale.ci.image import ci_instance_image
from swescale.ci.repo_config import load_repo_config

# pytest -rA summary lines: "PASSED tests/test_x.py::test_y", "FAILED ... - reason".
_SUMMARY = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+)", re.MULTILINE)


class CheckReport(BaseModel):
    repo: str
    commit: str
    source: str
    counts: dict[str, int] = Field(default_factory=dict)
    failing: list[str] = Field(default_factory=list)
    exit_code: int | None = None
    seconds: float = 0.0
    log_path: str = ""

    @property
    def ok(self) -> bool:
        ran = sum(self.counts.values()) > 0
        return ran and not self.failing and self.exit_code == 0


def summarize_pytest_log(text: str) -> tuple[dict[str, int], list[str]]:
    """(status -> count, failing test ids) from a ``pytest -rA`` log."""
    seen: dict[str, str] = {}
    for status, name in _SUMMARY.findall(text):
        seen[name] = status
    counts = Counter(seen.values())
    failing = sorted(n for n, s in seen.items() if s in ("FAILED", "ERROR"))
    return dict(counts), failing


def check_repository(
    repo_path: str | Path,
    commit: str = "HEAD",
    *,
    timeout: float = 1800.0,
    say: Callable[[str], None] = print,
    client=None,
) -> CheckReport:
    """Build the environment of ``repo_path`` at ``commit`` and run its tests once."""
    from swescale.sandbox import DockerSandbox, ImagesConfig, SandboxConfig, docker_client

    client = client or docker_client()
    sha = git.Repo(repo_path).git.rev_parse(f"{commit}^{{commit}}")
    repo_cfg = load_repo_config(repo_path, sha)
    name = Path(repo_path).resolve().name.removesuffix(".git")
    say(f"environment of {name} at {sha[:12]}: {repo_cfg.source}")
    say(f"  install: {' && '.join(repo_cfg.install)}")
    start = time.monotonic()
    image = ci_instance_image(client, name, repo_path, sha, repo_cfg, ImagesConfig())
    say(
        f"  image {image.tag} ready ({time.monotonic() - start:.0f}s); running {repo_cfg.test_command}"
    )
    cfg = image.sandbox_config(SandboxConfig(memory="4g", command_timeout=timeout))
    started = time.monotonic()
    with DockerSandbox.create(client, image.tag, cfg, labels={"run": f"ci-check-{name}"}) as sb:
        result = sb.exec_once(repo_cfg.test_command, timeout=timeout, output_limit=50_000_000)
    counts, failing = summarize_pytest_log(result.output)
    log_path = Path(tempfile.gettempdir()) / f"swescale-ci-check-{name}-{sha[:12]}.log"
    log_path.write_text(result.output, errors="replace")
    return CheckReport(
        repo=name,
        commit=sha,
        source=repo_cfg.source,
        counts=counts,
        failing=failing,
        exit_code=result.exit_code,
        seconds=time.monotonic() - started,
        log_path=str(log_path),
    )
