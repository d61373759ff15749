"""The one apply routine, on real git repositories on this machine (``LocalRunner``): the
official attempts in order, the already-applied check, resets that give back the tree,
and grading's driver script running the very same lines."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from swebench.harness.run_evaluation import GIT_APPLY_CMDS

from swescale.patches import (
    ALREADY_APPLIED,
    NOTHING_TO_APPLY,
    LocalRunner,
    apply_commands,
    apply_lines,
    apply_patch,
)
from swescale.swebench.run import APPLY_LOG, PATCH_FILE, WORK, driver_script

INIT = '"""Tools."""\n\nfrom pkg.core import area\n\n__all__ = ["area"]\n'
CORE = (
    "def area(w, h):\n    return w + h\n\n\n"
    "def perimeter(w, h):\n    return 2 * (w + h)\n\n\n"
    "def square(s):\n    return area(s, s)\n"
)
FIXED = CORE.replace("return w + h", "return w * h")
# A hunk that "adds" the import, as a patch made against a tree without it would: the
# line is already there (a stale hunk).
STALE_INIT = "\n".join(
    [
        "diff --git a/pkg/__init__.py b/pkg/__init__.py",
        "--- a/pkg/__init__.py",
        "+++ b/pkg/__init__.py",
        "@@ -1,4 +1,5 @@",
        ' """Tools."""',
        " ",
        "+from pkg.core import area",
        " ",
        ' __all__ = ["area"]',
        "",
    ]
)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    work = tmp_path / "repo"
    (work / "pkg").mkdir(parents=True)
    (work / "pkg" / "__init__.py").write_text(INIT)
    (work / "pkg" / "core.py").write_text(CORE)
    git(work, "init", "-q")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "base")
    return work


def fix_patch(repo: Path, index: bool = True) -> str:
    """The fix as git writes it; without its ``index`` line --3way cannot use it."""
    (repo / "pkg" / "core.py").write_text(FIXED)
    patch = git(repo, "diff")
    git(repo, "checkout", "--", ".")
    if not index:
        patch = "".join(x for x in patch.splitlines(True) if not x.startswith("index "))
    return patch


def move_context(repo: Path) -> None:
    """Change a context line of the fix: git refuses the fix, ``patch`` takes it with fuzz."""
    core = repo / "pkg" / "core.py"
    core.write_text(core.read_text().replace("def area(w, h):", "def area(w, h):  # moved"))


def apply(repo: Path, patch: str, tmp_path: Path):
    return apply_patch(LocalRunner(), patch, str(repo), scratch=str(tmp_path / "scratch"))


def test_the_attempts_are_the_official_ones_in_order() -> None:
    assert apply_commands() == tuple(GIT_APPLY_CMDS)
    assert apply_commands()[-1] == "patch --batch --forward --fuzz=5 -p1 -i"


def test_a_clean_patch_applies_with_the_first_attempt(repo: Path, tmp_path: Path) -> None:
    result = apply(repo, fix_patch(repo), tmp_path)
    assert result.applied and result.strategy == "git apply --verbose" and result.clean
    assert (repo / "pkg" / "core.py").read_text() == FIXED
    assert result.infra_error is None


def test_a_stale_hunk_is_skipped_and_the_patch_counts_as_applied(
    repo: Path, tmp_path: Path
) -> None:
    """SWE-bench #383: ``patch --forward`` skips the hunk whose line is already there
    (without --forward it would reverse it and delete the import), then the reverse
    check finds the whole patch in the tree."""
    result = apply(repo, fix_patch(repo) + STALE_INIT, tmp_path)
    assert result.applied and result.strategy == ALREADY_APPLIED and not result.clean
    assert (repo / "pkg" / "core.py").read_text() == FIXED
    assert (repo / "pkg" / "__init__.py").read_text() == INIT  # the import kept
    assert "Reversed (or previously applied) patch detected!  Skipping patch." in result.log


def test_fuzz_applies_with_patch_after_every_git_attempt(repo: Path, tmp_path: Path) -> None:
    patch = fix_patch(repo, index=False)
    move_context(repo)
    result = apply(repo, patch, tmp_path)
    assert result.strategy == "patch --batch --forward --fuzz=5 -p1 -i"
    assert "return w * h" in (repo / "pkg" / "core.py").read_text()
    assert [line for line in result.log.splitlines() if line.startswith("$ ")] == [
        f"$ {c}" for c in apply_commands()
    ]
    # --reject's partial work was reset before ``patch`` ran.
    assert not (repo / "pkg" / "core.py.rej").exists()


def test_resets_give_back_a_dirty_tree_between_attempts(repo: Path, tmp_path: Path) -> None:
    """A tree with a local change, a deleted file and an untracked file, and a patch only
    the last attempt takes: every reset restores exactly that tree (the official reset
    alone would give back the base), and nothing outside the work tree is touched."""
    patch = fix_patch(repo, index=False)
    move_context(repo)
    (repo / "pkg" / "__init__.py").unlink()
    (repo / "pkg" / "extra.py").write_text("X = 1\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("kept\n")
    result = apply(repo, patch, tmp_path)
    assert result.strategy == "patch --batch --forward --fuzz=5 -p1 -i"
    assert (repo / "pkg" / "extra.py").read_text() == "X = 1\n"
    assert not (repo / "pkg" / "__init__.py").exists()
    text = (repo / "pkg" / "core.py").read_text()
    assert "return w * h" in text and "def area(w, h):  # moved" in text
    assert outside.read_text() == "kept\n"


def test_a_patch_that_does_not_apply_says_so(repo: Path, tmp_path: Path) -> None:
    wrong = fix_patch(repo).replace("-    return w + h", "-    return w - h")
    result = apply(repo, wrong, tmp_path)
    assert not result.applied and result.strategy is None and result.infra_error is None
    assert result.log.splitlines()[-1].startswith("error:")
    assert "$ git apply --check --reverse" in result.log


def test_an_empty_patch_is_nothing_to_apply(repo: Path, tmp_path: Path) -> None:
    result = apply(repo, "  \n", tmp_path)
    assert result.applied and result.strategy == NOTHING_TO_APPLY


def test_grading_drives_the_same_lines() -> None:
    drive = driver_script(True, "/testbed")
    for line in apply_lines(PATCH_FILE, APPLY_LOG, WORK):
        assert line in drive
    assert "git checkout -- . ; git clean -fd" in drive
    assert "'patch --batch --forward --fuzz=5 -p1 -i'" in drive


def test_grading_driver_and_verifier_function_agree(repo: Path, tmp_path: Path) -> None:
    """The driver's apply part, run by bash as grading runs it, picks the same command
    as ``apply_patch`` on the same stale patch, and leaves the same files."""
    patch = fix_patch(repo) + STALE_INIT
    other = tmp_path / "other"
    subprocess.run(["cp", "-a", str(repo), str(other)], check=True)
    work = tmp_path / "grade"
    work.mkdir()
    (work / "patch.diff").write_text(patch)
    head = driver_script(True, str(other)).split('echo "$applied" >')[0]
    script = head.replace(WORK, str(work)) + 'echo "STRATEGY=$applied"\n'
    graded = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
    ours = apply(repo, patch, tmp_path)
    assert ours.strategy == ALREADY_APPLIED
    assert f"STRATEGY={ours.strategy}" in graded.stdout
    for name in ("core.py", "__init__.py"):
        assert (other / "pkg" / name).read_text() == (repo / "pkg" / name).read_text()
