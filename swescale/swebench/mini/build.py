"""Build the mini benchmark's fixture repositories as real git repositories.

Commits carry fixed authors, committers and dates, and git runs with the user's and the
system's configuration shut out, so every machine builds the same commit hashes. The task
patches are computed by git from the trees the loose diffs produce, so they are exactly
what ``git diff`` in a sandbox would print for the same edit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

import git

from swescale.swebench.mini.fixtures import ALL_REPOS, ALL_TASKS
from swescale.swebench.mini.loosediff import FileTree, apply_loose_diff, touched_paths
from swescale.swebench.mini.spec import (
    GITIGNORE,
    INSTALL_CMD,
    MINI_VERSION,
    PIP_PACKAGES,
    PYTHON_VERSION,
    TEST_CMD,
    MiniRepo,
    TaskSpec,
    pyproject_toml,
)
from swescale.types import Task

AUTHOR_NAME = "swescale mini"
AUTHOR_EMAIL = "mini@swescale.invalid"

# The user's global and system git config could sign commits, change the default branch
# or rewrite line endings; any of those would change the hashes.
_ISOLATED_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": AUTHOR_NAME,
    "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
    "GIT_COMMITTER_NAME": AUTHOR_NAME,
    "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
    "GIT_TERMINAL_PROMPT": "0",
}
_CONFIG = ["-c", "core.autocrlf=false", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"]


class MiniBuildError(RuntimeError):
    """A fixture or task spec that does not build, or a build that is not reproducible."""


def _git(git_dir: Path, *args: str, work_tree: Path | None = None, date: str = "") -> str:
    # GIT_DIR and GIT_INDEX_FILE (and GIT_WORK_TREE for non-bare repositories) are set
    # explicitly: inherited values, as inside a git hook, would point git elsewhere.
    env = dict(_ISOLATED_ENV, GIT_DIR=str(git_dir), GIT_INDEX_FILE=str(git_dir / "index"))
    if work_tree is not None:
        env["GIT_WORK_TREE"] = str(work_tree)
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    cwd = work_tree or git_dir
    return git.Git(str(cwd)).execute(
        ["git", *_CONFIG, *args], env=env, strip_newline_in_stdout=False
    )


def _git_date(iso: str) -> str:
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        raise MiniBuildError(f"commit date {iso!r} needs a UTC offset")
    return f"@{int(moment.timestamp())} +0000"


def _write_changes(root: Path, old: FileTree, new: FileTree) -> None:
    for path in old.keys() - new.keys():
        (root / path).unlink()
    for path, content in new.items():
        if old.get(path) != content:
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8", newline="")


def repo_trees(repo: MiniRepo) -> dict[str, FileTree]:
    """The file tree at every tag of ``repo``'s history (pure, no git)."""
    trees: dict[str, FileTree] = {}
    tree: FileTree = {}
    for commit in repo.commits:
        tree = dict(tree)
        tree.update(commit.files)
        try:
            tree = apply_loose_diff(tree, commit.patch) if commit.patch else tree
        except ValueError as exc:
            raise MiniBuildError(f"{repo.name} {commit.tag}: {exc}") from None
        version = commit.tag.removeprefix("v")
        tree["pyproject.toml"] = pyproject_toml(repo.name, version, repo.description)
        tree[".gitignore"] = GITIGNORE
        trees[commit.tag] = tree
    return trees


def _build_history(repo: MiniRepo, work: Path) -> dict[str, str]:
    """Init ``work`` as a git repository holding ``repo``'s history; tag -> commit hash."""
    work.mkdir(parents=True)
    git_dir = work / ".git"
    _git(git_dir, "init", "-q", "-b", "main", work_tree=work)
    shas: dict[str, str] = {}
    previous: FileTree = {}
    for commit, tree in zip(repo.commits, repo_trees(repo).values(), strict=True):
        _write_changes(work, previous, tree)
        _git(git_dir, "add", "-A", work_tree=work)
        date = _git_date(commit.date)
        _git(git_dir, "commit", "-q", "-m", commit.message, work_tree=work, date=date)
        _git(git_dir, "tag", commit.tag, work_tree=work)
        shas[commit.tag] = _git(git_dir, "rev-parse", "HEAD").strip()
        previous = tree
    return shas


def _diff_against(work: Path, base_sha: str, base: FileTree, loose: str, label: str) -> str:
    """The git diff that turns the checkout at ``base_sha`` into ``base`` + ``loose``."""
    git_dir = work / ".git"
    try:
        changed = apply_loose_diff(base, loose)
    except ValueError as exc:
        raise MiniBuildError(f"{label}: {exc}") from None
    _git(git_dir, "checkout", "-q", "-f", "--detach", base_sha, work_tree=work)
    _git(git_dir, "clean", "-qfdx", work_tree=work)
    _write_changes(work, base, changed)
    _git(git_dir, "add", "-A", work_tree=work)
    patch = _git(
        git_dir, "diff", "--cached", "--no-color", "--no-ext-diff", "--no-renames", work_tree=work
    )
    _git(git_dir, "reset", "-q", "--hard", work_tree=work)
    if not patch.strip():
        raise MiniBuildError(f"{label}: the patch changes nothing")
    return patch


def _check_spec(spec: TaskSpec) -> list[str]:
    """Structural rules of a task; returns the test files its test patch touches."""
    where = spec.instance_id
    test_files = touched_paths(spec.test_patch)
    if not test_files or any(not p.startswith("tests/") for p in test_files):
        raise MiniBuildError(f"{where}: the test patch must touch files under tests/ only")
    fixes = [spec.gold_patch, *spec.alt_patches, *spec.wrong_patches, *spec.decoy_patches]
    for patch in fixes:
        if any(p.startswith("tests/") for p in touched_paths(patch)):
            raise MiniBuildError(f"{where}: a fix patch touches tests/")
    if not spec.fail_to_pass:
        raise MiniBuildError(f"{where}: FAIL_TO_PASS is empty")
    for node in (*spec.fail_to_pass, *spec.pass_to_pass):
        if node.split("::")[0] not in test_files:
            # The official harness runs only the test files the test patch touches.
            raise MiniBuildError(f"{where}: {node} is outside the test patch's files")
    if set(spec.fail_to_pass) & set(spec.pass_to_pass):
        raise MiniBuildError(f"{where}: a test is both FAIL_TO_PASS and PASS_TO_PASS")
    return test_files


def _make_tasks(
    repo: MiniRepo, work: Path, shas: dict[str, str], specs: list[TaskSpec]
) -> list[Task]:
    trees = repo_trees(repo)
    dates = {c.tag: c.date for c in repo.commits}
    tasks = []
    for spec in specs:
        test_files = _check_spec(spec)
        if spec.base not in shas:
            raise MiniBuildError(f"{spec.instance_id}: unknown base tag {spec.base!r}")
        sha, tree = shas[spec.base], trees[spec.base]

        def real(
            loose: str,
            label: str,
            sha: str = sha,
            tree: FileTree = tree,
            where: str = spec.instance_id,
        ) -> str:
            return _diff_against(work, sha, tree, loose, f"{where} {label}")

        extra = {
            "decoy_patches": [real(p, f"decoy {i}") for i, p in enumerate(spec.decoy_patches)],
            "alt_patches": [real(p, f"alt {i}") for i, p in enumerate(spec.alt_patches)],
            "wrong_patches": [real(p, f"wrong {i}") for i, p in enumerate(spec.wrong_patches)],
            "test_cmd": TEST_CMD,
            "log_parser": "pytest",
            "install_cmd": INSTALL_CMD,
            "pip_packages": list(PIP_PACKAGES),
            "python": PYTHON_VERSION,
            "kinds": list(spec.kinds),
            "test_files": test_files,
            "base_tag": spec.base,
            "created_at": dates[spec.base],
        }
        tasks.append(
            Task(
                id=spec.instance_id,
                repo=repo.full_name,
                base_commit=sha,
                problem_statement=spec.problem_statement,
                hints=spec.hints,
                version=MINI_VERSION,
                fail_to_pass=list(spec.fail_to_pass),
                pass_to_pass=list(spec.pass_to_pass),
                test_patch=real(spec.test_patch, "test patch"),
                gold_patch=real(spec.gold_patch, "gold patch"),
                source="mini",
                extra=extra,
            )
        )
    return tasks


@dataclass(frozen=True)
class _Catalog:
    shas: dict[str, dict[str, str]]  # repo full name -> tag -> commit
    tasks: tuple[Task, ...]


@cache
def catalog() -> _Catalog:
    """Build every repository once in a temporary directory; cached for the process."""
    ids = [spec.instance_id for spec in ALL_TASKS]
    if len(ids) != len(set(ids)):
        raise MiniBuildError("duplicate mini task ids")
    shas: dict[str, dict[str, str]] = {}
    tasks: list[Task] = []
    with tempfile.TemporaryDirectory(prefix="swescale-mini-") as tmp:
        for repo in ALL_REPOS:
            work = Path(tmp) / repo.name
            shas[repo.full_name] = _build_history(repo, work)
            specs = [s for s in ALL_TASKS if s.repo == repo.name]
            tasks.extend(_make_tasks(repo, work, shas[repo.full_name], specs))
    return _Catalog(shas=shas, tasks=tuple(tasks))


def _mirror_is_current(mirror: Path, tags: dict[str, str], head: str) -> bool:
    if not (mirror / "HEAD").is_file():
        return False
    try:
        if _git(mirror, "rev-parse", "--verify", "-q", "refs/heads/main").strip() != head:
            return False
        for tag, sha in tags.items():
            if _git(mirror, "rev-parse", "--verify", "-q", f"refs/tags/{tag}").strip() != sha:
                return False
    except git.GitCommandError:
        return False
    return True


def build_mini_repos(dest: Path) -> dict[str, Path]:
    """Build every fixture repository as a bare mirror ``dest/swescale-mini__<name>.git``
    (branch ``main``, one tag per release, every task's base commit reachable).

    Idempotent: a mirror that already holds the expected commits is left alone; a stale or
    broken one is replaced. Returns repository name ("swescale-mini/slugkit") -> path.
    """
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise MiniBuildError(f"cannot build the mini repositories in {dest}: not a directory")
    dest.mkdir(parents=True, exist_ok=True)
    expected = catalog().shas
    mirrors: dict[str, Path] = {}
    for repo in ALL_REPOS:
        target = dest / repo.mirror_dirname
        tags = expected[repo.full_name]
        head = tags[repo.commits[-1].tag]
        mirrors[repo.full_name] = target
        if _mirror_is_current(target, tags, head):
            continue
        # Build beside the target and rename, so a reader never sees half a mirror.
        with tempfile.TemporaryDirectory(prefix=f".{repo.name}-", dir=dest) as tmp:
            work = Path(tmp) / "work"
            if _build_history(repo, work) != tags:
                raise MiniBuildError(f"{repo.full_name}: rebuilt commits differ from the catalog")
            fresh = Path(tmp) / repo.mirror_dirname
            fresh.mkdir()
            _git(fresh, "init", "-q", "--bare", "-b", "main")
            _git(fresh, "fetch", "-q", "--no-tags", str(work), "+refs/*:refs/*")
            if target.exists() and not _mirror_is_current(target, tags, head):
                shutil.rmtree(target)
            try:
                os.replace(fresh, target)
            except OSError:
                # Another process built the same mirror meanwhile; keep theirs if it is good.
                if not _mirror_is_current(target, tags, head):
                    raise
    return mirrors


def clone_at(mirror: Path, commit: str, dest: Path) -> Path:
    """A working checkout of ``mirror`` at ``commit`` (detached HEAD) in ``dest``, which
    must be missing or empty."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise MiniBuildError(f"cannot check out into {dest}: not an empty directory")
    dest.mkdir(parents=True, exist_ok=True)
    git_dir = dest / ".git"
    try:
        _git(git_dir, "init", "-q", "-b", "main", work_tree=dest)
        refs = ("+refs/*:refs/*",)
        _git(
            git_dir,
            "fetch",
            "-q",
            "--no-tags",
            "--update-head-ok",
            str(mirror),
            *refs,
            work_tree=dest,
        )
        _git(git_dir, "checkout", "-q", "--detach", commit, work_tree=dest)
    except git.GitCommandError as exc:
        raise MiniBuildError(
            f"cannot check out {commit} of {mirror}: {exc.stderr.strip()}"
        ) from None
    return dest
