"""Repositories of a solve batch (real git): opening a clone, a bare mirror, a clone URL
that fails; the start commit; and the branch written without touching the checkout."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from swescale.ci.git_ops import Author, commit_patch_to_branch
from swescale.solve.repository import default_branch, open_repository, resolve_start
from swescale.solve.solver import branch_name, task_for
from swescale.solve.sources import Issue
from swescale.swebench.repos import RepoError

PATCH = (
    "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n"
    "@@ -1 +1 @@\n-def add(a, b): return a - b\n+def add(a, b): return a + b\n"
)


@pytest.fixture
def clone(tmp_path: Path) -> tuple[Path, str]:
    work = tmp_path / "calc"
    repo = git.Repo.init(work, initial_branch="main")
    (work / "calc.py").write_text("def add(a, b): return a - b\n")
    repo.index.add(["calc.py"])
    base = repo.index.commit("base").hexsha
    repo.create_remote("origin", "https://github.com/acme/calc.git")
    return work, base


def test_the_branch_is_written_without_touching_the_checkout(clone) -> None:
    work, base = clone
    (work / "calc.py").write_text("local edit, not committed\n")
    (work / "notes.txt").write_text("untracked\n")
    repo = git.Repo(work)
    repo.git.add("notes.txt")  # staged: the index must stay as it is too
    before = (repo.head.commit.hexsha, repo.git.status("--porcelain"), repo.git.diff("--cached"))
    repository = open_repository(str(work), work.parent / "cache")
    assert repository.name == "acme/calc" and not repository.bare
    assert resolve_start(repository) == base and default_branch(repository) == "main"
    issue = Issue(key="issue-7", title="add subtracts", body="2+2 is 0", number=7)
    task = task_for(issue, repository, base)
    assert task.id == "acme__calc-7" and task.extra["issue_number"] == 7
    branch = branch_name(issue, "swescale/issue-")
    assert branch == "swescale/issue-7"
    sha = commit_patch_to_branch(repo, branch, base, PATCH, "Fix #7", Author("s", "s@x"))
    assert repo.git.show(f"{sha}:calc.py") == "def add(a, b): return a + b"
    assert repo.commit(sha).parents[0].hexsha == base
    after = (repo.head.commit.hexsha, repo.git.status("--porcelain"), repo.git.diff("--cached"))
    assert after == before
    assert (work / "calc.py").read_text() == "local edit, not committed\n"
    row = Issue(key="acme__calc-3", title="t", body="b", instance_id="acme__calc-3")
    assert branch_name(row, "swescale/issue-") == "swescale/acme__calc-3"


def test_bare_mirrors_bad_paths_and_clone_urls_that_fail(clone, tmp_path: Path) -> None:
    work, base = clone
    mirror = tmp_path / "calc.git"
    git.Repo.clone_from(str(work), mirror, mirror=True)
    opened = open_repository(str(mirror), tmp_path / "cache")
    assert opened.bare and resolve_start(opened, branch="main") == base
    with pytest.raises(RepoError, match="no commit"):
        resolve_start(opened, base_commit="f" * 40)
    with pytest.raises(RepoError, match="no branch nosuch"):
        resolve_start(opened, branch="nosuch")
    with pytest.raises(RepoError, match="no such directory"):
        open_repository(str(tmp_path / "missing"), tmp_path / "cache")
    (tmp_path / "plain").mkdir()
    with pytest.raises(RepoError, match="not a git repository"):
        open_repository(str(tmp_path / "plain"), tmp_path / "cache")
    with pytest.raises(RepoError, match="cannot be cloned"):
        open_repository(f"file://{tmp_path}/nowhere.git", tmp_path / "cache")
