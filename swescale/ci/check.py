"""``swescale ci check``: the repository's environment, built as the bot builds it, and its
test suite run on the untouched checkout in a sandbox (no network). The bot's verifiers
run the same tests on candidates, so a suite that fails here makes every run doubtful."""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import git
from pydantic import BaseModel, Field

from swescale.ci.config import load_bot_config
from swescale.ci.image import ci_instance_image
from swescale.ci.infer import load_repo_config
from swescale.ci.repo_config import RepoConfig, RepoConfigError
from swescale.sandbox.config import ImagesConfig

# pytest -rA summary lines: "PASSED tests/test_x.py::test_y", "FAILED ... - reason".
_SUMMARY = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+)", re.MULTILINE)


class CheckReport(BaseModel):
    repo: str  # owner/name
    commit: str
    image: str = ""  # the instance image's tag (the one ci run uses)
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


# A hosted remote: https://host/owner/name(.git), ssh://git@host/owner/name, or
# git@host:owner/name (a local path or file:// URL names no GitHub repository).
_HOSTED_URL = re.compile(
    r"^(?:(?:https?|ssh|git)://[^/]+/|[\w.-]+@[\w.-]+:)([^/:]+)/([^/]+?)(?:\.git)?/?$"
)


def repository_name(repo_path: str | Path, given: str = "", remote: str = "origin") -> str:
    """``owner/name`` of the repository the bot serves, as its events name it
    (``repository.full_name``): ``given``, else ``$GITHUB_REPOSITORY`` (set in Actions),
    else the ``remote``'s URL, else a ``owner__name`` directory (the mirrors' layout).
    The image tag is derived from it, so ``ci check`` builds the image ``ci run`` uses.
    Raises RepoConfigError when none of these says."""
    for candidate in (given, os.environ.get("GITHUB_REPOSITORY", "")):
        if candidate:
            if candidate.count("/") != 1 or not all(candidate.split("/")):
                raise RepoConfigError(f"repository name {candidate!r} is not owner/name")
            return candidate
    try:
        urls = list(git.Repo(repo_path).remote(remote).urls)
    except (ValueError, git.GitError):
        urls = []
    for url in urls:
        match = _HOSTED_URL.match(url)
        if match:
            return f"{match.group(1)}/{match.group(2)}"
    folder = Path(repo_path).resolve().name.removesuffix(".git")
    if folder.count("__") == 1 and all(folder.split("__")):
        return folder.replace("__", "/")
    raise RepoConfigError(
        f"cannot tell which GitHub repository {repo_path} is (no --name, no "
        f"$GITHUB_REPOSITORY, no {remote!r} remote): give --name owner/name"
    )


def check_inputs(
    repo_path: str | Path,
    commit: str = "HEAD",
    *,
    name: str = "",
    config: str | Path | None = "ci",
    overrides: list[str] | None = None,
) -> tuple[str, str, RepoConfig, ImagesConfig]:
    """(owner/name, commit sha, repository config, images config) layered exactly as
    :func:`swescale.ci.bot.make_plan` layers them for ``ci run`` (bot config <
    ``.swescale.yaml`` ``run:`` < ``overrides``), so both build the same image tag."""
    _, ci = load_bot_config(config, overrides)
    full_name = repository_name(repo_path, name, ci.remote)
    try:
        sha = git.Repo(repo_path).git.rev_parse("--verify", "-q", f"{commit}^{{commit}}")
    except git.GitError as exc:
        raise RepoConfigError(f"{repo_path}: no commit {commit!r} in a git repository") from exc
    repo_cfg = load_repo_config(repo_path, sha)
    run_cfg, _ = load_bot_config(config, [*repo_cfg.run_overrides(), *(overrides or [])])
    return full_name, sha, repo_cfg, run_cfg.images


def check_repository(
    repo_path: str | Path,
    commit: str = "HEAD",
    *,
    name: str = "",
    config: str | Path | None = "ci",
    overrides: list[str] | None = None,
    timeout: float = 1800.0,
    say: Callable[[str], None] = print,
    client=None,
) -> CheckReport:
    """Build the environment of ``repo_path`` at ``commit`` (the image ``ci run`` uses,
    see :func:`check_inputs`) and run its tests once."""
    from swescale.sandbox import DockerSandbox, SandboxConfig, docker_client

    client = client or docker_client()
    full_name, sha, repo_cfg, images = check_inputs(
        repo_path, commit, name=name, config=config, overrides=overrides
    )
    name = full_name.replace("/", "__")
    say(f"environment of {full_name} at {sha[:12]}: {repo_cfg.source}")
    say(f"  install: {' && '.join(repo_cfg.install)}")
    start = time.monotonic()
    image = ci_instance_image(client, full_name, repo_path, sha, repo_cfg, images)
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
        repo=full_name,
        image=image.tag,
        commit=sha,
        source=repo_cfg.source,
        counts=counts,
        failing=failing,
        exit_code=result.exit_code,
        seconds=time.monotonic() - started,
        log_path=str(log_path),
    )
