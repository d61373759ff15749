"""The offline local build for a SWE-bench repository spec, end to end, on a small
stand-in repository named ``psf/requests`` (spec 2.4: Python 3.9 -> bullseye base, conda
package "pytest" via pip, non-editable ``pip install .``, the official requests parser).

Slow: it builds the bullseye base image on first use."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from swescale.sandbox import ImagesConfig
from swescale.swebench.config import GradingConfig
from swescale.swebench.evaluate import Grader, validate_task
from swescale.swebench.repos import RepoSource
from swescale.types import Task

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SETUP = (
    "from setuptools import setup\nsetup(name='reqlite', version='2.4', py_modules=['reqlite'])\n"
)
MODULE = "def join(a, b):\n    return a + '/' + b\n"
TESTS = "from reqlite import join\n\n\ndef test_join():\n    assert join('a', 'b') == 'a/b'\n"
# A blank context line in a diff is a single space; written as lines to keep it.
TEST_PATCH = "\n".join(
    [
        "diff --git a/test_requests.py b/test_requests.py",
        "--- a/test_requests.py",
        "+++ b/test_requests.py",
        "@@ -3,3 +3,7 @@ from reqlite import join",
        " ",
        " def test_join():",
        "     assert join('a', 'b') == 'a/b'",
        "+",
        "+",
        "+def test_join_strips_slashes():",
        "+    assert join('a/', '/b') == 'a/b'",
        "",
    ]
)
GOLD = """diff --git a/reqlite.py b/reqlite.py
--- a/reqlite.py
+++ b/reqlite.py
@@ -1,2 +1,2 @@
 def join(a, b):
-    return a + '/' + b
+    return a.rstrip('/') + '/' + b.lstrip('/')
"""


def make_repo(path: Path) -> str:
    path.mkdir(parents=True)
    (path / "setup.py").write_text(SETUP)
    (path / "reqlite.py").write_text(MODULE)
    (path / "test_requests.py").write_text(TESTS)
    env = {
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@b",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@b",
        # fixed dates: the same commit, so the same instance image tag, on every run
        "GIT_AUTHOR_DATE": "2021-01-01T00:00:00+00:00",
        "GIT_COMMITTER_DATE": "2021-01-01T00:00:00+00:00",
        "HOME": str(path),
        "PATH": "/usr/bin:/bin",
    }
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(["git", *cmd], cwd=path, env=env, check=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True
    ).stdout.strip()


def test_local_build_of_a_swebench_spec_grades_like_the_harness(
    docker_client, tmp_path: Path
) -> None:
    sha = make_repo(tmp_path / "requests")
    task = Task(
        id="psf__requests-99999",
        repo="psf/requests",
        version="2.4",
        base_commit=sha,
        problem_statement="join() doubles slashes",
        test_patch=TEST_PATCH,
        gold_patch=GOLD,
        fail_to_pass=["test_requests.py::test_join_strips_slashes"],
        pass_to_pass=["test_requests.py::test_join"],
    )
    repos = RepoSource(tmp_path / "cache", local={"psf/requests": tmp_path / "requests"})
    grader = Grader(
        docker_client,
        ImagesConfig(),
        GradingConfig(timeout=300),
        repos,
        {"run": "pytest-localbuild"},
    )
    image = grader.image(task)
    assert not isinstance(image, str), image
    assert image.notes[0].startswith("venv at /opt/venv")  # differences are recorded
    env_tag = grader.client.images.get(image.tag).attrs["Config"]["Env"]
    assert "VIRTUAL_ENV=/opt/venv" in env_tag
    # the spec asks for Python 3.9: the bullseye base, not the default bookworm one
    version = grader.client.containers.run(
        image.tag,
        ["python", "--version"],
        remove=True,
        labels={"swescale.run": "pytest-localbuild"},
    )
    assert version.decode().startswith("Python 3.9")
    result = validate_task(grader, task)
    assert result.ok, result.problems
    # the reinstall before the tests picks up the candidate in a non-editable install
    gold = grader.grade(task, GOLD)
    assert gold.resolved and "install --no-index --no-build-isolation --no-deps ." in gold.log
    # requests suites call httpbin: a local stand-in serves it on an isolated network
    assert any("httpbin" in n for n in gold.notes)
