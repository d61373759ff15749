"""Where repositories come from: one cached bare mirror per repository (cloned once, shared
by all its tasks), a local directory of mirrors for air-gapped machines, or explicit local
repositories (the mini benchmark's fixture repos).

``checkout_tar(task)`` is the repository at the task's base commit, ``.git`` included, as a
tar archive to extract in an image. As in the official repository setup
(``make_repo_script_list_py`` of swebench 4.1.0), the checkout keeps the tags whose commit
is not newer than the base commit — projects that take their version from git tags
(setuptools_scm, versioneer: pytest, astropy, xarray, matplotlib) need them — and nothing
newer: no later commit, branch or tag can leak the fix to an agent.

A mirror is any git directory: a ``git clone --mirror``, or a bare directory without a
``config`` file (a snapshot's ``objects``/``refs``/``HEAD``); every command names it with
``--git-dir``. A mirror that lacks objects the base commit needs (large files cut from a
copy) is reported as ``incomplete mirror: <path> missing``.

``swescale.swebench.specs.repo_source_for(tasks, ...)`` makes the RepoSource of a set of
tasks, with the repositories their spec providers build themselves as explicit ones.
"""

from __future__ import annotations

import fcntl
import io
import logging
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import git

from swescale.types import Task

log = logging.getLogger(__name__)

_SHA = re.compile(r"[0-9a-f]{7,40}")
# The branch the checkout's HEAD names; the official images keep the clone's default
# branch, which varies by repository, so a fixed name is as good as any.
CHECKOUT_BRANCH = "main"


class RepoError(RuntimeError):
    """A repository or commit that cannot be provided; the message names the task."""


def repo_dir_name(repo: str) -> str:
    """``owner/name`` -> ``owner__name`` (the SWE-bench instance-id spelling)."""
    return repo.replace("/", "__")


class RepoSource:
    """Provides repositories by ``owner/name``.

    Lookup order: ``local`` (explicit paths), ``repos_dir`` (``owner__name.git``,
    ``owner__name``, ``owner/name.git`` or ``owner/name``), then a bare mirror in
    ``cache_dir`` cloned from ``url`` on first use (``None`` forbids cloning)."""

    def __init__(
        self,
        cache_dir: Path,
        repos_dir: Path | None = None,
        url: str | None = "https://github.com/{repo}.git",
        local: dict[str, Path] | None = None,
        history_depth: int = 0,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.repos_dir = Path(repos_dir) if repos_dir else None
        self.url = url
        self.local = {k: Path(v) for k, v in (local or {}).items()}
        self.history_depth = history_depth
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # A clone that failed is not retried by every task of the repository.
        self._clone_failures: dict[str, str] = {}
        # How the last checkout of a task differs from a full one (an incomplete mirror).
        self.notes: dict[str, list[str]] = {}

    # -- finding repositories ----------------------------------------------------------

    def _local_path(self, repo: str) -> Path | None:
        if repo in self.local:
            return self.local[repo]
        if self.repos_dir is None:
            return None
        name = repo_dir_name(repo)
        for candidate in (
            self.repos_dir / f"{name}.git",
            self.repos_dir / name,
            self.repos_dir / f"{repo}.git",
            self.repos_dir / repo,
        ):
            if candidate.is_dir():
                return candidate
        return None

    @contextmanager
    def _repo_lock(self, repo: str) -> Iterator[None]:
        """One clone or fetch per repository at a time, across threads and processes."""
        with self._locks_guard:
            lock = self._locks.setdefault(repo, threading.Lock())
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        lock_file = self.cache_dir / f".{repo_dir_name(repo)}.lock"
        with lock, open(lock_file, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def mirror(self, repo: str) -> Path:
        """A local git directory holding ``repo``'s history (cloned if needed)."""
        found = self._local_path(repo)
        if found is not None:
            return found
        if self.repos_dir is not None and self.url is None:
            raise RepoError(
                f"{repo}: not found in {self.repos_dir} (looked for {repo_dir_name(repo)}.git)"
            )
        target = self.cache_dir / f"{repo_dir_name(repo)}.git"
        with self._repo_lock(repo):
            if (target / "HEAD").exists():
                return target
            if repo in self._clone_failures:
                raise RepoError(self._clone_failures[repo])
            if self.url is None:
                raise RepoError(f"{repo}: no local mirror and cloning is disabled")
            url = self.url.format(repo=repo)
            log.info("cloning %s into %s (once per repository)", url, target)
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            try:
                git.Repo.clone_from(url, partial, mirror=True)
            except git.GitCommandError as exc:
                shutil.rmtree(partial, ignore_errors=True)
                self._clone_failures[repo] = f"{repo}: cloning {url} failed: {_git_message(exc)}"
                raise RepoError(self._clone_failures[repo]) from exc
            partial.rename(target)
        return target

    def _has_commit(self, path: Path, commit: str) -> bool:
        try:
            mirror_git(path).cat_file("-e", f"{commit}^{{commit}}")
            return True
        except git.GitCommandError:
            return False

    def ensure_commit(self, task: Task) -> Path:
        """The mirror of the task's repository, known to contain its base commit (a cached
        mirror is fetched once when the commit is newer than the clone)."""
        if not _SHA.fullmatch(task.base_commit or ""):
            raise RepoError(
                f"task {task.id}: base commit {task.base_commit!r} is not a commit hash"
            )
        path = self.mirror(task.repo)
        if self._has_commit(path, task.base_commit):
            return path
        if path.parent == self.cache_dir and self.url is not None:
            with self._repo_lock(task.repo):
                try:
                    mirror_git(path).fetch("--prune", "origin")
                except git.GitCommandError as exc:
                    log.warning("%s: fetching %s failed: %s", task.id, task.repo, _git_message(exc))
            if self._has_commit(path, task.base_commit):
                return path
        raise RepoError(
            f"task {task.id}: base commit {task.base_commit} is not in {task.repo} ({path})"
        )

    # -- checkouts ---------------------------------------------------------------------

    def checkout(self, task: Task, dest: Path) -> Path:
        """A fresh repository at ``dest`` whose HEAD is the base commit, with the history
        up to it and the tags not newer than it (no remotes, no later objects).

        A mirror that lacks objects: missing in the base commit's tree is an error
        (``incomplete mirror: <path> missing``); missing only in older history or in a
        tag's, what the mirror has is copied and ``notes[task.id]`` says what is not."""
        source = self.ensure_commit(task)
        self.notes.pop(task.id, None)
        shutil.rmtree(dest, ignore_errors=True)
        try:
            if self.history_depth > 0:
                self._fetch_into(
                    task, dest, f"file://{source.resolve()}", self.history_depth, False
                )
            else:
                self._fetch_into(task, dest, str(source.resolve()), 0, True)
        except git.GitCommandError as exc:
            if self.history_depth:
                raise RepoError(
                    f"task {task.id}: cannot check out {task.base_commit} of {task.repo}: "
                    f"{_git_message(exc)}"
                ) from exc
            missing = missing_paths(source, task.base_commit)
            if missing:
                shown = ", ".join(missing[:5]) + (
                    f" and {len(missing) - 5} more" if len(missing) > 5 else ""
                )
                raise RepoError(
                    f"task {task.id}: incomplete mirror: {shown} missing at {task.base_commit[:12]} "
                    f"in {source} (objects cut from the copy; use a complete mirror)"
                ) from exc
            # Only older history (or a tag's) lacks objects: copy what there is.
            shutil.rmtree(dest, ignore_errors=True)
            try:
                lost = self._copy_tolerant(task, source, dest)
            except (git.GitCommandError, subprocess.CalledProcessError) as again:
                raise RepoError(
                    f"task {task.id}: cannot check out {task.base_commit} of {task.repo}: "
                    f"{_git_message(exc)}"
                ) from again
            self.notes[task.id] = [
                f"incomplete mirror: {len(lost)} object(s) of older commits or tags missing "
                f"({', '.join(lost[:3])}); the base commit's tree is whole"
            ]
        # FETCH_HEAD names the mirror's path on this host; it is no business of the image.
        (dest / ".git" / "FETCH_HEAD").unlink(missing_ok=True)
        head = git.Repo(dest).head.commit.hexsha
        if not head.startswith(task.base_commit) and head != task.base_commit:
            raise RepoError(f"task {task.id}: HEAD is {head}, expected {task.base_commit}")
        return dest

    def _copy_tolerant(self, task: Task, source: Path, dest: Path) -> list[str]:
        """What a fetch would bring (the base commit's history and the tags), packed from
        the mirror with the objects it lacks left out; returns those (paths or ids)."""
        lost = missing_in_history(source, task.base_commit)
        tags = tags_not_newer_than(source, task.base_commit)
        refs = [task.base_commit, *(f"refs/tags/{t}" for t in tags)]
        repo = git.Repo.init(dest, initial_branch=CHECKOUT_BRANCH)
        gd = f"--git-dir={git_dir(source)}"
        listing = subprocess.run(
            ["git", gd, "rev-list", "--objects", "--missing=allow-any", *refs],
            capture_output=True,
            check=True,
        ).stdout
        pack = subprocess.run(
            ["git", gd, "pack-objects", "--stdout", "-q", "--missing=allow-any"],
            input=listing,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(
            ["git", "index-pack", "--stdin"], cwd=dest, input=pack, capture_output=True, check=True
        )
        peeled = mirror_git(source).rev_parse(*(f"refs/tags/{t}" for t in tags)) if tags else ""
        for tag, sha in zip(tags, peeled.split(), strict=True):
            repo.git.update_ref(f"refs/tags/{tag}", sha)
        repo.git.checkout("--quiet", "-B", CHECKOUT_BRANCH, task.base_commit)
        return lost or ["objects of tags' history"]

    def _fetch_into(self, task: Task, dest: Path, url: str, depth: int, with_tags: bool) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        repo = git.Repo.init(dest, initial_branch=CHECKOUT_BRANCH)
        args = ["--quiet", "--no-tags", *([f"--depth={depth}"] if depth else [])]
        tags = tags_not_newer_than(self.mirror(task.repo), task.base_commit) if with_tags else []
        refspecs = [task.base_commit, *(f"refs/tags/{t}:refs/tags/{t}" for t in tags)]
        for chunk in _chunks(refspecs, 500):
            repo.git.fetch(*args, url, *chunk)
        repo.git.checkout("--quiet", "-B", CHECKOUT_BRANCH, task.base_commit)

    def checkout_tar(self, task: Task, root: str = "") -> bytes:
        """The checkout as a tar archive (members under ``root``/ when given, so the
        archive can be extracted at ``/`` to make ``/root``)."""
        with tempfile.TemporaryDirectory(prefix="swescale-checkout-") as tmp:
            work = self.checkout(task, Path(tmp) / "repo")
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                tar.add(work, arcname=root or ".", filter=_normalize_member)
            return buf.getvalue()


def mirror_git(path: Path) -> git.Git:
    """Git commands on a mirror by ``--git-dir``: works for a bare directory without a
    ``config`` file too, where GitPython's ``Repo`` guesses a work tree and fails."""
    handle = git.Git()
    handle.update_environment(GIT_DIR=str(git_dir(path)))
    return handle


def git_dir(path: Path) -> Path:
    """The git directory of a mirror (itself) or of a repository with a work tree."""
    path = Path(path).resolve()
    return path / ".git" if (path / ".git").exists() else path


def tags_not_newer_than(mirror: Path, commit: str) -> list[str]:
    """Tags whose commit's committer date is not after ``commit``'s: the tags the official
    repository setup keeps (it deletes those whose ``%ci`` is later than the base's)."""
    handle = mirror_git(mirror)
    base_time = int(handle.show("-s", "--format=%ct", commit).strip())
    listing = handle.for_each_ref(
        "--format=%(refname:strip=2) %(objecttype) %(committerdate:unix) %(*committerdate:unix)",
        "refs/tags",
    )
    keep = []
    for line in listing.splitlines():
        name, kind, direct, peeled = (line.split(" ") + ["", "", ""])[:4]
        stamp = peeled if kind == "tag" else direct
        if stamp.isdigit() and int(stamp) <= base_time:
            keep.append(name)
    return keep


def missing_paths(mirror: Path, commit: str) -> list[str]:
    """Paths of ``commit``'s tree whose objects the mirror lacks (empty when the tree is
    whole or cannot be read at all)."""
    handle = mirror_git(mirror)
    try:
        listing = handle.ls_tree("-r", "--full-tree", commit)
    except git.GitCommandError:
        return []
    by_object: dict[str, str] = {}
    for line in listing.splitlines():
        meta, _, path = line.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob":
            by_object.setdefault(parts[2], path)
    if not by_object:
        return []
    proc = subprocess.run(
        ["git", f"--git-dir={git_dir(mirror)}", "cat-file", "--batch-check"],
        input="\n".join(by_object) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    return sorted(
        by_object[line.split()[0]]
        for line in proc.stdout.splitlines()
        if line.endswith(" missing") and line.split()[0] in by_object
    )


def missing_in_history(mirror: Path, commit: str) -> list[str]:
    """Paths (or object ids where no path is known) of objects that ``commit``'s history
    needs and the mirror lacks."""
    proc = subprocess.run(
        ["git", f"--git-dir={git_dir(mirror)}", "rev-list", "--objects", "--missing=print", commit],
        capture_output=True,
        text=True,
        check=False,
    )
    missing = {line[1:].strip() for line in proc.stdout.splitlines() if line.startswith("?")}
    if not missing:
        return []
    raw = subprocess.run(
        ["git", f"--git-dir={git_dir(mirror)}", "log", "--raw", "--no-abbrev", "--format=", commit],
        capture_output=True,
        text=True,
        check=False,
    )
    paths: dict[str, str] = {}
    for line in raw.stdout.splitlines():
        meta, _, path = line.partition("\t")
        parts = meta.split()
        if len(parts) >= 4 and parts[3] in missing:
            paths.setdefault(parts[3], path.split("\t")[-1])
    return sorted(paths.get(sha, sha) for sha in missing)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _normalize_member(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Owned by root in the image, whoever ran the checkout on the host.
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _git_message(exc: git.GitCommandError) -> str:
    text = (exc.stderr or str(exc)).strip()
    return " ".join(text.split())[-400:]
