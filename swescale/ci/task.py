"""A Task from an issue request and a local checkout."""

from __future__ import annotations

from pathlib import Path

import git

from swescale.ci.events import Comment, IssueRequest
from swescale.ci.repo_config import RepoConfig
from swescale.record.run import safe_name
from swescale.types import Task


class CheckoutError(ValueError):
    """The local checkout cannot be used; the message says which path or commit and why."""


def task_id_for(repo: str, issue_number: int) -> str:
    """``owner/name`` and 7 -> ``owner__name-7`` (the SWE-bench id shape)."""
    return f"{repo.replace('/', '__')}-{issue_number}"


def run_id_for(repo: str, issue_number: int) -> str:
    """The run directory's name: ``ci-owner__name-7``."""
    return safe_name(f"ci-{task_id_for(repo, issue_number)}")


def open_checkout(path: str | Path) -> git.Repo:
    folder = Path(path)
    if not folder.is_dir():
        raise CheckoutError(f"--repo {folder}: no such directory")
    try:
        repo = git.Repo(folder)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise CheckoutError(f"--repo {folder}: not a git repository") from exc
    if repo.bare:
        raise CheckoutError(f"--repo {folder}: a bare repository has no checkout to work on")
    return repo


def resolve_base_commit(
    repo: git.Repo, default_branch: str = "", commit: str = "", remote: str = "origin"
) -> str:
    """``commit`` when given; else the tip of the default branch (local branch, then the
    remote's); else HEAD. Always a full sha."""
    if commit:
        candidates = [commit]
    elif default_branch:
        candidates = [f"refs/heads/{default_branch}", f"refs/remotes/{remote}/{default_branch}"]
    else:
        candidates = []
    candidates.append("HEAD")
    for ref in candidates:
        try:
            return repo.git.rev_parse("--verify", "-q", f"{ref}^{{commit}}")
        except git.GitCommandError:
            if ref == commit:
                raise CheckoutError(f"commit {commit!r} is not in {repo.working_dir}") from None
            continue
    raise CheckoutError(f"{repo.working_dir} has no commits")


def hints_from(comments: tuple[Comment, ...] | list[Comment], limit: int) -> str:
    """The newest ``limit`` comments as hint text, one block per comment."""
    if limit <= 0:
        return ""
    chosen = [c for c in comments if c.body.strip()][-limit:]
    return "\n\n".join(f"{c.author or 'someone'} wrote:\n{c.body.strip()}" for c in chosen)


def problem_statement(title: str, body: str) -> str:
    body = body.strip()
    return f"{title.strip()}\n\n{body}\n" if body else f"{title.strip()}\n"


def build_task(
    request: IssueRequest,
    base_commit: str,
    repo_cfg: RepoConfig,
    hint_comments: int = 10,
) -> Task:
    """The task the pipeline runs: the issue as problem statement, the repository's test
    command as its recipe (so verifiers run the repository's own tests)."""
    extra = {
        "test_cmd": repo_cfg.test_command,
        "install": list(repo_cfg.install),
        "python_packages": list(repo_cfg.python_packages),
        "suite": repo_cfg.debian_suite,
        "issue_number": request.issue_number,
        "trigger": request.trigger,
    }
    if "pytest" in repo_cfg.test_command:
        extra["log_parser"] = "pytest"
    return Task(
        id=task_id_for(request.repo, request.issue_number),
        repo=request.repo,
        base_commit=base_commit,
        problem_statement=problem_statement(request.title, request.body),
        hints=hints_from(request.comments, hint_comments),
        source=f"github:{request.repo}#{request.issue_number}",
        extra=extra,
    )
