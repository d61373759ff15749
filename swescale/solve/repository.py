"""The repositories of a ``swescale solve`` batch: a local clone, a bare mirror or a
clone URL, each opened once and named ``owner/name`` as GitHub names it.

A clone URL is mirrored once into the cache (``git clone --mirror``), and the branches
with fixes are written there; a local clone or mirror gets them itself. Nothing is ever
pushed from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import git

from swescale.ci.check import repository_name
from swescale.ci.repo_config import RepoConfigError
from swescale.swebench.repos import RepoError, RepoSource


@dataclass(frozen=True)
class Repository:
    """An opened repository: ``name`` (owner/name), ``path`` (its git directory or work
    tree), ``bare`` (no work tree), ``spec`` (as the input gave it)."""

    spec: str
    name: str
    path: Path
    bare: bool

    def repo(self) -> git.Repo:
        return git.Repo(self.path)


_URL = re.compile(r"^(?:[a-z+]+://|[\w.-]+@[\w.-]+:)")


def is_url(spec: str) -> bool:
    return bool(_URL.match(spec))


def open_repository(spec: str, cache_dir: Path, name: str = "") -> Repository:
    """The repository ``spec`` names (a directory or a clone URL). Raises RepoError with
    what went wrong (no such directory, not a git repository, the clone failed)."""
    if is_url(spec):
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "__", spec.split("://", 1)[-1]).strip("_")
        source = RepoSource(Path(cache_dir), url=spec)
        try:
            path = source.mirror(slug.removesuffix(".git"))
        except RepoError as exc:
            raise RepoError(f"{spec}: cannot be cloned: {exc}") from exc
        guessed = _name_from_url(spec)
        return Repository(spec, name or guessed, path, True)
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise RepoError(f"{spec}: no such directory")
    try:
        repo = git.Repo(folder)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise RepoError(f"{spec}: not a git repository") from exc
    try:
        found = repository_name(folder, name)
    except RepoConfigError:
        found = f"local/{folder.resolve().name.removesuffix('.git')}"
    return Repository(spec, found, folder.resolve(), repo.bare)


def _name_from_url(url: str) -> str:
    tail = url.rstrip("/").removesuffix(".git")
    parts = re.split(r"[/:]", tail)
    return f"{parts[-2]}/{parts[-1]}" if len(parts) >= 2 else f"local/{parts[-1]}"


def resolve_start(repository: Repository, base_commit: str = "", branch: str = "") -> str:
    """The full sha to start from: ``base_commit``, the tip of ``branch`` (local, then
    any remote's), else HEAD. Raises RepoError naming what is not there."""
    repo = repository.repo()
    if base_commit:
        refs = [base_commit]
    elif branch:
        refs = [f"refs/heads/{branch}", *(f"{r}/{branch}" for r in _remotes(repo))]
    else:
        refs = ["HEAD"]
    for ref in refs:
        try:
            return repo.git.rev_parse("--verify", "-q", f"{ref}^{{commit}}")
        except git.GitCommandError:
            continue
    what = f"commit {base_commit}" if base_commit else f"branch {branch}" if branch else "HEAD"
    raise RepoError(f"{repository.spec}: no {what}")


def _remotes(repo: git.Repo) -> list[str]:
    try:
        return [f"refs/remotes/{r.name}" for r in repo.remotes]
    except (ValueError, git.GitError):
        return []


def default_branch(repository: Repository) -> str:
    """The branch a pull request goes into: the one HEAD names (a clone's current branch,
    a mirror's default), else "main"."""
    try:
        ref = repository.repo().git.symbolic_ref("-q", "--short", "HEAD").strip()
    except git.GitCommandError:
        return "main"
    return ref or "main"
