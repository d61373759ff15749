"""Image recipes (no Docker): what the local build of a SWE-bench task runs, and tags
that change exactly when the recipe does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from swescale.swebench.config import GradingConfig
from swescale.swebench.images import (
    ImageError,
    env_recipe,
    instance_commands,
    official_image_name,
    requirements_at,
)
from swescale.swebench.repos import RepoSource
from swescale.swebench.run import driver_script, eval_script
from swescale.types import Task


def swe_task(repo: str, version: str, **kw) -> Task:
    return Task(
        id=f"{repo.replace('/', '__')}-1",
        repo=repo,
        base_commit="a" * 40,
        version=version,
        problem_statement="p",
        test_patch="diff --git a/tests/t.py b/tests/t.py\n--- a/tests/t.py\n+++ b/tests/t.py\n@@ -1 +1 @@\n-a\n+b\n",
        **kw,
    )


def test_env_recipe_from_a_spec_with_pip_packages() -> None:
    task = swe_task("astropy/astropy", "4.3")
    recipe = env_recipe(task, "swescale/base:bullseye-x", GradingConfig(), None)
    assert recipe.tag.startswith("swescale/env:astropy__astropy-4.3-")
    assert recipe.commands[0] == "python3 -m venv /opt/venv"
    assert any("'pytest==7.4.0'" in c and "'numpy==1.25.2'" in c for c in recipe.commands)
    assert recipe.suite == "bullseye" and any("venv" in n for n in recipe.notes)
    again = env_recipe(task, "swescale/base:bullseye-x", GradingConfig(), None)
    other_base = env_recipe(task, "swescale/base:bullseye-y", GradingConfig(), None)
    assert again.tag == recipe.tag and other_base.tag != recipe.tag
    steps = instance_commands(task, GradingConfig())
    assert any("pip install -e .[test]" in s for s in steps)
    assert any("sed -i" in s and "pyproject.toml" in s for s in steps)  # the spec's pre_install
    assert all(s.startswith("cd /repo && ") for s in steps)


def test_conda_package_specs_become_pip_installs() -> None:
    task = swe_task("scikit-learn/scikit-learn", "0.20")
    recipe = env_recipe(task, "b", GradingConfig(), None)
    assert any("'numpy==1.19.2'" in c for c in recipe.commands)
    assert any("conda packages" in n for n in recipe.notes)


def test_requirements_read_from_the_repository_with_includes(tmp_path: Path) -> None:
    src = tmp_path / "django"
    (src / "tests" / "requirements").mkdir(parents=True)
    (src / "tests" / "requirements" / "py3.txt").write_text(
        "-r base.txt\n-e .\n# note\nPillow>=6\n"
    )
    (src / "tests" / "requirements" / "base.txt").write_text("sqlparse\n")
    env = {
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@b",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@b",
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "c"]):
        subprocess.run(["git", *cmd], cwd=src, env=env, check=True)
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True
    ).stdout.strip()
    task = swe_task("django/django", "3.0").model_copy(
        update={"base_commit": sha, "environment_setup_commit": sha}
    )
    repos = RepoSource(tmp_path / "cache", local={"django/django": src})
    text = requirements_at(repos, task, sha)
    assert text.splitlines() == ["sqlparse", "Pillow>=6"]
    recipe = env_recipe(task, "b", GradingConfig(), repos)
    assert recipe.files[0][0] == "/root/swescale-requirements.txt"
    assert any("-r /root/swescale-requirements.txt" in c for c in recipe.commands)
    with pytest.raises(ImageError, match="needs the repository"):
        env_recipe(task, "b", GradingConfig(), None)


def test_official_image_names() -> None:
    task = swe_task("psf/requests", "2.4")
    assert (
        official_image_name(task, GradingConfig())
        == "swebench/sweb.eval.x86_64.psf_1776_requests-1:latest"
    )
    row = task.model_copy(update={"extra": {"image": "registry.example/x:1"}})
    assert official_image_name(row, GradingConfig()) == "registry.example/x:1"


def test_eval_and_driver_scripts() -> None:
    task = swe_task("astropy/astropy", "4.3")
    script = eval_script(task)
    assert "git checkout " + "a" * 40 + " tests/t.py" in script
    assert "pytest -rA tests/t.py" in script
    assert "pip install -e .[test] --verbose --no-build-isolation --no-deps" in script
    assert (
        script.index(">>>>> Start Test Output")
        < script.index("pytest -rA")
        < script.index(">>>>> End Test Output")
    )
    official = eval_script(task, "/testbed", official=True)
    assert (
        "conda activate testbed" in official and "git apply -v - <<'EOF_114329324912'" in official
    )
    drive = driver_script(True)
    assert (
        "'git apply --verbose' 'git apply --verbose --reject' 'patch --batch --fuzz=5 -p1 -i'"
        in drive
    )
    assert "exit 97" in drive and "patch.diff" not in driver_script(False)
