"""The branch with the fix, made in the local checkout without touching its work tree or
index: the patch is applied to a temporary index built from the base commit, and the
commit is written straight to ``refs/heads/<branch>``. Then, when asked, pushed."""

from __future__ import annotations

import base64
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import git


class BranchError(RuntimeError):
    """The branch cannot be made or pushed; the message says why."""


@dataclass(frozen=True)
class Author:
    name: str
    email: str


def _git_message(exc: git.GitCommandError) -> str:
    text = exc.stderr if isinstance(exc.stderr, str) and exc.stderr.strip() else str(exc)
    return " ".join(text.split())[-500:]


def commit_patch_to_branch(
    repo: git.Repo,
    branch: str,
    base_commit: str,
    patch: str,
    message: str,
    author: Author,
) -> str:
    """Commit ``patch`` on top of ``base_commit`` as ``branch`` (created or moved); returns
    the new commit's sha. The checkout's HEAD, index and files are left as they were."""
    if not patch.strip():
        raise BranchError("refusing to commit an empty patch")
    try:
        repo.git.check_ref_format("--branch", branch)
    except git.GitCommandError as exc:
        raise BranchError(f"{branch!r} is not a valid branch name") from exc
    if _checked_out(repo, branch):
        raise BranchError(f"branch {branch} is checked out; cannot move it under the work tree")
    with tempfile.TemporaryDirectory(prefix="swescale-ci-index-") as tmp:
        index = Path(tmp) / "index"
        patch_file = Path(tmp) / "fix.patch"
        patch_file.write_text(patch if patch.endswith("\n") else patch + "\n", encoding="utf-8")
        env = {
            "GIT_INDEX_FILE": str(index),
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": author.name,
            "GIT_COMMITTER_EMAIL": author.email,
        }
        try:
            repo.git.read_tree(base_commit, env=env)
            repo.git.apply("--cached", "--binary", str(patch_file), env=env)
            tree = repo.git.write_tree(env=env)
            existing = _same_commit(repo, branch, tree, base_commit, message)
            if existing:
                # A rerun of the same fix keeps the commit (and what was pushed of it).
                return existing
            sha = repo.git.commit_tree(tree, "-p", base_commit, "-m", message, env=env)
            repo.git.update_ref(f"refs/heads/{branch}", sha, env=env)
        except git.GitCommandError as exc:
            raise BranchError(
                f"cannot commit the patch on {base_commit[:12]}: {_git_message(exc)}"
            ) from exc
    return sha


def _same_commit(repo: git.Repo, branch: str, tree: str, parent: str, message: str) -> str:
    try:
        commit = repo.commit(f"refs/heads/{branch}")
    except (git.BadName, ValueError):
        return ""
    same = (
        commit.tree.hexsha == tree
        and [p.hexsha for p in commit.parents] == [parent]
        and commit.message.strip() == message.strip()
    )
    return commit.hexsha if same else ""


def _checked_out(repo: git.Repo, branch: str) -> bool:
    try:
        return not repo.head.is_detached and repo.active_branch.name == branch
    except TypeError:  # an unborn or detached HEAD
        return False


def push_branch(
    repo: git.Repo,
    branch: str,
    remote: str,
    token: str | None = None,
    force: bool = True,
) -> None:
    """Push ``branch`` to ``remote`` (a remote name, URL or path). With a token, an HTTP
    remote gets it as a basic-auth header for this one command, passed through git's
    environment config (never on the command line, in an error message or in the
    repository's config). The bot owns its branches, so a rerun replaces its old push."""
    refspec = f"{'+' if force else ''}refs/heads/{branch}:refs/heads/{branch}"
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    if token:
        pair = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="http.extraheader",
            GIT_CONFIG_VALUE_0=f"AUTHORIZATION: basic {pair}",
        )
    try:
        repo.git.execute(["git", "push", "--porcelain", remote, refspec], env=env)
    except git.GitCommandError as exc:
        stderr = exc.stderr if isinstance(exc.stderr, str) else ""
        detail = " ".join(stderr.split())[-500:] or f"git exited with {exc.status}"
        if token:
            detail = detail.replace(token, "***")
        raise BranchError(f"cannot push {branch} to {remote}: {detail}") from None
