"""Image recipes and eval scripts (no Docker): what the local build of a SWE-bench task
runs, on literal inputs, and tags that change exactly when the recipe does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from swescale.patches import apply_commands
from swescale.swebench.config import GradingConfig
from swescale.swebench.images import (
    VENV,
    ImageError,
    InstanceImage,
    env_recipe,
    official_image_name,
    setup_script,
)
from swescale.swebench.repos import RepoSource
from swescale.swebench.run import (
    TEST_PATCH_FAILED,
    adapt_eval_script,
    driver_script,
    eval_script,
)
from swescale.swebench.specs import HEREDOC
from swescale.swebench.specs.venv import (
    BASE_SEES_VENV,
    CONSTRAINTS_FILE,
    PIP_PIN,
    VENV_PIP_CONF,
    clean_requirements_text,
    environment_yml_to_pip,
    era_constraints,
    relax_exact_pins,
    requirement_name,
    requirements_at,
)
from swescale.types import Task

GIT_ENV = {
    "GIT_AUTHOR_NAME": "a",
    "GIT_AUTHOR_EMAIL": "a@b",
    "GIT_COMMITTER_NAME": "a",
    "GIT_COMMITTER_EMAIL": "a@b",
    "PATH": "/usr/bin:/bin",
}
TEST_PATCH = "diff --git a/tests/t.py b/tests/t.py\n--- a/tests/t.py\n+++ b/tests/t.py\n@@ -1 +1 @@\n-a\n+b\n"
NEW_FILE_PATCH = (
    "diff --git a/tests/test_new.py b/tests/test_new.py\nnew file mode 100644\n"
    "--- /dev/null\n+++ b/tests/test_new.py\n@@ -0,0 +1 @@\n+def test_x(): pass\n"
)


def swe_task(repo: str, version: str, **kw) -> Task:
    return Task(
        id=f"{repo.replace('/', '__')}-1",
        repo=repo,
        base_commit="a" * 40,
        version=version,
        problem_statement="p",
        test_patch=kw.pop("test_patch", TEST_PATCH),
        **kw,
    )


def git_repo(path: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    env = {**GIT_ENV, "HOME": str(path)}
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "c"]):
        subprocess.run(["git", *cmd], cwd=path, env=env, check=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True
    ).stdout.strip()


def test_env_recipe_from_a_spec_with_pip_packages() -> None:
    task = swe_task("astropy/astropy", "4.3")
    recipe = env_recipe(task, "swescale/base:bullseye-x", GradingConfig(), None)
    assert recipe.tag.startswith("swescale/env:astropy__astropy-4.3-")
    assert recipe.commands[0] == "python3 -m venv /opt/venv"
    # an era-appropriate pip: 25.3 removed --no-use-pep517, which scikit-learn installs use
    assert PIP_PIN in recipe.commands[1] and "--upgrade pip" not in recipe.commands[1]
    assert any("pytest==7.4.0" in c and "numpy==1.25.2" in c for c in recipe.commands)
    assert recipe.suite == "bullseye" and any("venv" in n for n in recipe.notes)
    again = env_recipe(task, "swescale/base:bullseye-x", GradingConfig(), None)
    other_base = env_recipe(task, "swescale/base:bullseye-y", GradingConfig(), None)
    assert again.tag == recipe.tag and other_base.tag != recipe.tag


def test_setup_script_is_one_bash_script_so_steps_share_variables(tmp_path: Path) -> None:
    # matplotlib's pre_install sets QHULL_* in one step and uses them in the next
    task = swe_task("matplotlib/matplotlib", "3.5")
    script = setup_script(task, GradingConfig(), ["setuptools_scm>=7"])
    assert script.startswith("#!/bin/bash\nset -euxo pipefail\ncd /testbed\n")
    assert 'QHULL_TAR="/tmp/qhull-2020-src-8.0.2.tgz"' in script
    assert script.index("QHULL_TAR=") < script.index('wget -O "$QHULL_TAR"')
    assert "pip install -e ." in script or "pip install --no-build-isolation -e ." in script
    assert "'setuptools_scm>=7'" in script
    assert script.rstrip().endswith("git commit --allow-empty -q -m 'SWE-bench setup'")
    # run the same shape with a literal two-step pre_install sharing a variable
    steps = setup_script(swe_task("pylint-dev/astroid", "2.14"), GradingConfig())
    literal = steps.replace("source /opt/venv/bin/activate", ": no venv here")
    literal = literal.replace("cd /testbed", f"cd {tmp_path}")
    body = [
        line for line in literal.splitlines() if "pip install" not in line and "git " not in line
    ]
    body[-1:-1] = ["X=1", 'test "$X" = 1 && touch shared-ok']
    proc = subprocess.run(["bash", "-c", "\n".join(body)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "shared-ok").exists()


def test_requirements_lines_the_official_build_drops_and_includes() -> None:
    text = "-r requirements_test_min.txt\n# pinned\ncoverage==6.4\ntypes-pkg_resources==0.1.3\n"
    included = {"requirements_test_min.txt": "-e .\n.[test]\nastroid==2.11.6\n# c\npytest~=7.1\n"}
    cleaned = clean_requirements_text(text, included.get)
    lines = [line for line in cleaned.splitlines() if line.strip()]
    assert lines == ["astroid==2.11.6", "pytest~=7.1", "coverage==6.4", "types-setuptools"]
    assert "-e ." not in cleaned and ".[test]" not in cleaned


def test_requirements_read_from_the_repository_with_includes(tmp_path: Path) -> None:
    src = tmp_path / "pylint"
    sha = git_repo(
        src,
        {
            "requirements_test.txt": "-r requirements_test_min.txt\npre-commit~=2.19\n",
            "requirements_test_min.txt": "-e .\nastroid==2.11.6\n",
        },
    )
    task = swe_task("pylint-dev/pylint", "2.14").model_copy(
        update={"base_commit": sha, "environment_setup_commit": sha}
    )
    repos = RepoSource(tmp_path / "cache", local={"pylint-dev/pylint": src})
    text = requirements_at(repos, task, sha)
    assert [line for line in text.splitlines() if line] == ["astroid==2.11.6", "pre-commit~=2.19"]
    recipe = env_recipe(task, "b", GradingConfig(), repos)
    assert recipe.files[0][0] == "/root/requirements.txt"
    assert any("-r /root/requirements.txt" in c for c in recipe.commands)
    with pytest.raises(ImageError, match="needs the repository"):
        env_recipe(task, "b", GradingConfig(), None)


def test_environment_yml_conda_names_map_to_pypi_or_are_skipped() -> None:
    yml = """
name: xarray-tests
channels: [conda-forge]
dependencies:
  - python=3.10
  - pip
  - dask-core
  - matplotlib-base
  - hdf5
  - cdms2
  - c-compiler
  - numpy=1.23
  - python-dateutil
  - iris
  - pip:
    - numbagg
"""
    found, skipped = environment_yml_to_pip(yml)
    assert found == [
        "dask",
        "matplotlib",
        "numpy==1.23.*",
        "python-dateutil",
        "scitools-iris",
        "numbagg",
    ]
    assert skipped == ["hdf5", "cdms2", "c-compiler"]


def test_official_image_names() -> None:
    task = swe_task("psf/requests", "2.4")
    assert (
        official_image_name(task, GradingConfig())
        == "swebench/sweb.eval.x86_64.psf_1776_requests-1:latest"
    )
    row = task.model_copy(update={"extra": {"image": "registry.example/x:1"}})
    assert official_image_name(row, GradingConfig()) == "registry.example/x:1"


def test_local_eval_script_is_the_official_one_adapted() -> None:
    task = swe_task("astropy/astropy", "4.3")
    local = eval_script(task, InstanceImage("t"))
    text = local.text
    assert "git checkout " + "a" * 40 + " tests/t.py" in text
    assert "pytest -rA tests/t.py" in text
    assert "conda activate" not in text and "source /opt/venv/bin/activate" in text
    assert "pip install --no-index --no-build-isolation --no-deps -e .[test] --verbose" in text
    assert f"git apply -v - <<'{HEREDOC}' || {{ echo '{TEST_PATCH_FAILED}'; exit 1; }}" in text
    # the test command's exit status is recorded after the end marker (5.x)
    assert text.index(": '>>>>> End Test Output'") < text.index(">>>>> Test Exit Code")
    assert any("venv" in a for a in local.adaptations)
    official = eval_script(task, InstanceImage("t", official=True)).text
    assert "conda activate testbed" in official and "pip install -e .[test] --verbose" in official


def test_files_a_test_patch_creates_are_removed_before_it_is_applied() -> None:
    task = swe_task("pytest-dev/pytest", "5.4", test_patch=TEST_PATCH + NEW_FILE_PATCH)
    # the official v5 script names the new file in its reset, which fails as a whole
    row = [
        "cd /testbed",
        f"git checkout {'a' * 40} tests/t.py tests/test_new.py",
        f"git apply -v - <<'{HEREDOC}'\n{task.test_patch}\n{HEREDOC}",
        ": '>>>>> Start Test Output'",
        "pytest -rA tests/t.py tests/test_new.py",
        ": '>>>>> End Test Output'",
        f"git checkout {'a' * 40} tests/t.py tests/test_new.py",
    ]
    lines, notes = adapt_eval_script(row, task, official_image=True)
    assert lines[1] == f"git checkout {'a' * 40} tests/t.py"
    assert lines[2] == "rm -rf -- tests/test_new.py"
    assert lines[3].startswith(f"git apply -v - <<'{HEREDOC}' || {{ echo")
    assert lines[-1] == f"git checkout {'a' * 40} tests/t.py"
    assert len(notes) == 2


def test_driver_script_follows_the_5x_apply_chain() -> None:
    assert apply_commands() == (
        "git apply --verbose",
        "git apply --verbose --3way",
        "git apply --verbose --reject",
        "patch --batch --forward --fuzz=5 -p1 -i",
    )
    drive = driver_script(True, "/testbed")
    assert "'patch --batch --forward --fuzz=5 -p1 -i'" in drive
    assert "git checkout -- . ; git clean -fd" in drive
    assert "git apply --check --reverse" in drive
    assert "exit 97" in drive and "patch.diff" not in driver_script(False, "/testbed")


def _constraints(recipe) -> str:
    files = dict(recipe.files)
    if CONSTRAINTS_FILE not in files:
        return ""
    assert files[VENV_PIP_CONF] == f"[global]\nconstraint = {CONSTRAINTS_FILE}\n".encode()
    return files[CONSTRAINTS_FILE].decode()


def test_era_caps_are_venv_constraints_for_instances_older_than_the_breaking_release() -> None:
    old = swe_task("pydicom/pydicom", "1.3", extra={"created_at": "2019-07-27T00:18:11Z"})
    recipe = env_recipe(old, "b", GradingConfig(), None)
    # Constraints, not rewritten lines: they also reach what setup.py pulls in (numpy).
    assert _constraints(recipe).split() == [
        "pytest<8",
        "numpy<2",
        "cython<3",
        "docutils<0.22",
        "zarr<3",
    ]
    assert any("older than these releases: pytest<8, numpy<2" in n for n in recipe.notes)
    new = swe_task("pydicom/pydicom", "1.3", extra={"created_at": "2024-03-01T00:00:00Z"})
    assert _constraints(env_recipe(new, "b", GradingConfig(), None)).split() == [
        "numpy<2",
        "docutils<0.22",
        "zarr<3",
    ]
    newest = swe_task("pydicom/pydicom", "1.3", extra={"created_at": "2025-09-01T00:00:00Z"})
    assert _constraints(env_recipe(newest, "b", GradingConfig(), None)) == ""


def test_era_caps_leave_names_the_requirements_pin_alone() -> None:
    old = swe_task("x/y", "1", extra={"created_at": "2020-01-01"})
    lines, why = era_constraints(old, ["numpy==1.19.2", "'cython>=0.29'", "pytest", "# numpy"])
    assert lines == ["pytest<8", "docutils<0.22", "zarr<3"] and len(why) == 3
    assert era_constraints(swe_task("x/y", "1"), ["pytest"]) == ([], [])
    # The task's own package is what it installs, whatever its age.
    own = swe_task("pytest-dev/pytest", "7.4", extra={"created_at": "2023-06-01"})
    assert "pytest<8" not in era_constraints(own, [])[0]
    assert requirement_name("-e .") is None and requirement_name("git+https://x/y") is None
    assert requirement_name("Scikit_Learn[alldeps]>=0.2 ; python_version<'4'") == (
        "scikit-learn",
        True,
    )


def test_exact_pins_are_relaxed_to_the_minor_only_for_another_interpreter() -> None:
    assert relax_exact_pins(["numpy==1.19.2", "scipy==1.5", "cython", "a>=1.0.0"]) == (
        ["numpy==1.19.*", "scipy==1.5", "cython", "a>=1.0.0"],
        ["numpy==1.19.2 as numpy==1.19.*"],
    )
    old = swe_task("scikit-learn/scikit-learn", "0.21", extra={"created_at": "2019-03-01"})
    recipe = env_recipe(old, "b", GradingConfig(), None)
    assert any("'numpy==1.19.*'" in c and "'scipy==1.5.*'" in c for c in recipe.commands)
    assert any("exact pins relaxed" in n for n in recipe.notes)
    # Python 3.9 as the spec asks: the conda list's pins are relaxed all the same.
    same = env_recipe(
        swe_task("scikit-learn/scikit-learn", "1.3", extra={"created_at": "2023-09-01"}),
        "b",
        GradingConfig(),
        None,
    )
    assert any("'numpy==1.19.*'" in c and "'cython==3.0.*'" in c for c in same.commands)


def test_grading_cpus_follow_the_spec_else_no_limit() -> None:
    from swescale.swebench.run import grading_cpus

    assert grading_cpus(swe_task("pylint-dev/pylint", "2.14"), GradingConfig()) == 2.0
    assert grading_cpus(swe_task("pytest-dev/pytest", "5.4"), GradingConfig()) == 0.0
    assert grading_cpus(swe_task("pytest-dev/pytest", "5.4"), GradingConfig(cpus=1.5)) == 1.5


def test_tox_current_env_suites_get_the_venv_on_the_base_interpreter() -> None:
    sphinx = swe_task("sphinx-doc/sphinx", "3.5", extra={"created_at": "2021-01-01"})
    recipe = env_recipe(sphinx, "b", GradingConfig(), None)
    assert BASE_SEES_VENV in recipe.commands
    assert any("--current-env" in n for n in recipe.notes)
    other = swe_task("pydicom/pydicom", "1.3", extra={"created_at": "2021-01-01"})
    assert BASE_SEES_VENV not in env_recipe(other, "b", GradingConfig(), None).commands


@pytest.mark.docker
def test_an_interpreter_linked_from_elsewhere_sees_the_venv(make_sandbox) -> None:
    # What `tox --current-env` does: link the venv's python into .tox/<env>/bin.
    sb = make_sandbox()
    script = (
        f"python3 -m venv --without-pip {VENV} && "
        f"d=$({VENV}/bin/python -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])')"
        " && echo 'X = 7' > $d/venv_only.py && mkdir -p /tmp/tox/bin && "
        f"ln -s {VENV}/bin/python /tmp/tox/bin/python && "
        "/tmp/tox/bin/python -c 'import venv_only' 2>/dev/null && echo UNEXPECTED; "
        f"{BASE_SEES_VENV} && /tmp/tox/bin/python -c 'import venv_only; print(venv_only.X)'"
    )
    result = sb.exec_once(script)
    assert result.exit_code == 0, result.output
    assert "UNEXPECTED" not in result.output and result.output.strip().endswith("7")
