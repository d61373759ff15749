"""The base view's details that come from the repository itself, on small literal
repositories: which directories git created at the official image's reset, and the
bytecode the official install left at the top level."""

from __future__ import annotations

import subprocess
import sys

import git

from swescale.swebench.agent_view import _SETUP_IMPORTS, _official_checkout, fresh_directories


def _commit(repo: git.Repo, files: dict[str, str], message: str) -> str:
    root = repo.working_tree_dir
    for path, text in files.items():
        target = f"{root}/{path}"
        subprocess.run(["mkdir", "-p", target.rsplit("/", 1)[0]], check=True)
        with open(target, "w") as handle:
            handle.write(text)
    repo.git.add("-A")
    return repo.index.commit(message).hexsha


def test_directories_the_default_branch_lacks_are_the_ones_git_created(tmp_path) -> None:
    repo = git.Repo.init(tmp_path / "r")
    base = _commit(
        repo,
        {"pkg/core.py": "", "pkg/data/x.txt": "", "source/conf.py": "", "doc/index.rst": ""},
        "base",
    )
    # Later the package moves under src/ and source/ goes away; doc/ stays.
    repo.git.mv("pkg", "src")
    repo.git.rm("-r", "source")
    repo.index.commit("move")
    assert fresh_directories(repo.git, base) == ("pkg", "pkg/data", "source")
    assert fresh_directories(repo.git, "0" * 40) == ()  # git fails: no detail, no error


def test_the_checkout_keeps_755_for_fresh_directories_only_when_named() -> None:
    plain = _official_checkout()
    assert not any("chmod 755" in c for c in plain)
    named = _official_checkout(("pkg", "it's"))
    line = next(c for c in named if "chmod 755" in c)
    assert "pkg" in line and "'it'\"'\"'s'" in line


def test_top_level_modules_setup_py_imports_are_byte_compiled(tmp_path) -> None:
    (tmp_path / "setup.py").write_text(
        "import os\nimport versioneer\nfrom dicom import x\nfrom .rel import y\n"
        "setup(version=versioneer.get_version())\n"
    )
    for name in ("versioneer", "dicom", "rel", "unused"):
        (tmp_path / f"{name}.py").write_text("x = 1\n")
    subprocess.run([sys.executable, "-c", _SETUP_IMPORTS], cwd=tmp_path, check=True)
    compiled = sorted(p.name.split(".")[0] for p in (tmp_path / "__pycache__").iterdir())
    assert compiled == ["dicom", "versioneer"]


def test_no_setup_py_or_a_broken_one_compiles_nothing(tmp_path) -> None:
    subprocess.run([sys.executable, "-c", _SETUP_IMPORTS], cwd=tmp_path, check=True)
    (tmp_path / "setup.py").write_text("print 'python 2'\n")
    (tmp_path / "print.py").write_text("")
    subprocess.run([sys.executable, "-c", _SETUP_IMPORTS], cwd=tmp_path, check=True)
    assert not (tmp_path / "__pycache__").exists()
