"""The branch with the fix, made in the local checkout without touching its work tree or
index: the base commit's files are checked out into a temporary directory with an index of
its own, the patch is applied there exactly as grading applies it (``swescale.patches``),
and the commit is written straight to ``refs/heads/<branch>``. Then, when asked, pushed."""

from __future__ import annotations

import base64
import os
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

import git

from swescale.patches import LocalRunner, apply_patch, patch_paths


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
        tree_dir, scratch = Path(tmp) / "tree", Path(tmp) / "apply"
        tree_dir.mkdir()
        scratch.mkdir()
        env = {
            # The base commit's files in a directory of their own, with an index of their
            # own: the checkout's HEAD, index and work tree are never touched.
            "GIT_DIR": str(Path(repo.git_dir).resolve()),
            "GIT_WORK_TREE": str(tree_dir),
            "GIT_INDEX_FILE": str(Path(tmp) / "index"),
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": author.name,
            "GIT_COMMITTER_EMAIL": author.email,
        }
        try:
            repo.git.read_tree(base_commit, env=env)
            repo.git.checkout_index("-a", "-f", env=env)
        except git.GitCommandError as exc:
            raise BranchError(
                f"cannot commit the patch on {base_commit[:12]}: {_git_message(exc)}"
            ) from exc
        # Applied as grading and the verifiers apply it, so the branch holds what they tested.
        runner = LocalRunner(env)
        applied = apply_patch(runner, patch, str(tree_dir), scratch=str(scratch))
        if not applied.applied:
            said = applied.infra_error or _last_error(applied.log)
            raise BranchError(
                f"cannot commit the patch on {base_commit[:12]}: it does not apply ({said})"
            )
        _drop_leftovers(runner, tree_dir, patch)
        added = runner.execute(f"cd {shlex.quote(str(tree_dir))} && git add -A", timeout=600)
        if added.exit_code != 0:
            raise BranchError(f"cannot commit the patch: git add failed: {added.output[-300:]}")
        try:
            tree = repo.git.write_tree(env=env)
            if tree == repo.git.rev_parse(f"{base_commit}^{{tree}}"):
                raise BranchError(
                    f"the patch changes nothing on {base_commit[:12]} (already applied there)"
                )
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


def _last_error(log: str) -> str:
    lines = [line for line in log.splitlines() if line.strip() and not line.startswith("$ ")]
    return lines[-1][-200:] if lines else "no apply command took it"


def _drop_leftovers(runner: LocalRunner, tree_dir: Path, patch: str) -> None:
    """Remove what ``patch`` leaves beside the files (``.orig`` backups, ``.rej``
    rejects) unless the patch itself names them: the branch holds the change only."""
    listed = runner.execute(
        f"cd {shlex.quote(str(tree_dir))} && git ls-files -o --exclude-standard", timeout=300
    )
    named = set(patch_paths(patch))
    for path in listed.output.splitlines():
        if path.endswith((".orig", ".rej")) and path not in named:
            (tree_dir / path).unlink(missing_ok=True)


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
