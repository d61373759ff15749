"""Fixtures of the scaling tests: a tiny repository image whose ``add`` is wrong, its
task (with gold and test patches, so it can be graded), and a batch-runner factory that
runs planned scripted trajectories against it in real Docker sandboxes."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

CALC_PY = '''"""A tiny calculator."""


def add(a, b):
    return a - b


def mul(a, b):
    return a * b
'''

TEST_CALC_PY = """from calc import add, mul


def test_mul():
    assert mul(2, 3) == 6
"""

GOLD_PATCH = "\n".join(
    [
        "diff --git a/calc.py b/calc.py",
        "--- a/calc.py",
        "+++ b/calc.py",
        "@@ -2,7 +2,7 @@",
        " ",
        " ",
        " def add(a, b):",
        "-    return a - b",
        "+    return a + b",
        " ",
        " ",
        " def mul(a, b):",
        "",
    ]
)

TEST_PATCH = "\n".join(
    [
        "diff --git a/test_calc.py b/test_calc.py",
        "--- a/test_calc.py",
        "+++ b/test_calc.py",
        "@@ -1,5 +1,9 @@",
        " from calc import add, mul",
        " ",
        " ",
        "+def test_add():",
        "+    assert add(2, 3) == 5",
        "+",
        "+",
        " def test_mul():",
        "     assert mul(2, 3) == 6",
        "",
    ]
)

WRONG_PATCH = "\n".join(
    [
        "diff --git a/calc.py b/calc.py",
        "--- a/calc.py",
        "+++ b/calc.py",
        "@@ -2,7 +2,7 @@",
        " ",
        " ",
        " def add(a, b):",
        "-    return a - b",
        "+    return b - a",
        " ",
        " ",
        " def mul(a, b):",
        "",
    ]
)


def _repo_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in (("repo/calc.py", CALC_PY), ("repo/test_calc.py", TEST_CALC_PY)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def calc_image(docker_client, base_image) -> tuple[str, str]:
    """(image tag, base commit) of a small committed repository at /repo."""
    from swescale.sandbox import build_layer, content_tag

    commands = [
        "cd /repo && git init -q -b main && git add -A && GIT_AUTHOR_DATE=2020-01-01T00:00:00Z "
        "GIT_COMMITTER_DATE=2020-01-01T00:00:00Z git -c user.name=t -c user.email=t@example.com "
        "commit -q -m base && git rev-parse HEAD > /tmp/base_commit",
    ]
    tag = content_tag("swescale/test-scaling", "calc", base_image, CALC_PY, TEST_CALC_PY, commands)
    build_layer(
        docker_client, base_image, tag, commands, archives=[("/", _repo_tar())], network=False
    )
    out = docker_client.containers.run(
        tag, ["cat", "/tmp/base_commit"], remove=True, network_mode="none"
    )
    return tag, out.decode().strip()


@pytest.fixture
def calc_task(calc_image):
    from swescale.types import Task

    return Task(
        id="calc__calc-1",
        repo="local/calc",
        base_commit=calc_image[1],
        problem_statement="add(2, 3) returns -1; it should return 5.",
        gold_patch=GOLD_PATCH,
        test_patch=TEST_PATCH,
        fail_to_pass=["test_calc.py::test_add"],
        pass_to_pass=["test_calc.py::test_mul"],
        extra={"wrong_patches": [WRONG_PATCH]},
    )


@pytest.fixture
def leak_check(docker_client):
    """Run ids used by a test; after it, none of their containers may remain."""
    from swescale.sandbox import reap, remove_owned, running_sandboxes

    run_ids: list[str] = []
    yield run_ids
    leaked = {rid: running_sandboxes(docker_client, rid) for rid in run_ids}
    for rid in run_ids:
        # Leaks of this process (its owner is alive) and of killed children.
        remove_owned(docker_client, rid)
        reap(docker_client, run_id=rid)
    assert not any(leaked.values()), f"containers left behind: {leaked}"


@pytest.fixture
def make_runner(docker_client, calc_image, tmp_path: Path, leak_check):
    """Factory of BatchRunners on the calc image (scripted model, real sandboxes)."""
    from swescale.config import load_config
    from swescale.record.run import RunDir
    from swescale.scaling.batch import BatchRunner

    def make(overrides: list[str] = (), run_id: str = "t", image_for=None, **kw):
        cfg = load_config(
            None,
            [
                "model.kind=scripted",
                "model.script=plan:mixed",
                "verifiers.enabled=[]",
                "selection.selector=majority",
                "scaling.grade=none",
                "agent.step_limit=6",
                *overrides,
            ],
        )
        rid = f"{run_id}-{tmp_path.name}"[:60]
        leak_check.append(rid)
        rundir = RunDir.open(tmp_path / "runs", rid, cfg, force=True)
        return BatchRunner(
            cfg,
            rundir,
            client=docker_client,
            image_for=image_for or (lambda task: calc_image[0]),
            **kw,
        )

    return make
