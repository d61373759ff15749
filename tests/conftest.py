"""Shared fixtures: a Docker client and the base image (built once, then found by tag)."""

from __future__ import annotations

import os

import pytest


def _engine_or_fail():
    from swescale.sandbox import EngineUnavailable, docker_client

    try:
        return docker_client()
    except EngineUnavailable as exc:
        # In CI the engine must be there: a missing engine is a failure, not a skip.
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def docker_client():
    return _engine_or_fail()


@pytest.fixture(scope="session")
def base_image(docker_client):
    from swescale.sandbox import ensure_base_image

    return ensure_base_image(docker_client)


@pytest.fixture
def make_sandbox(docker_client, base_image):
    """Factory of sandboxes from the base image, all destroyed at the end of the test."""
    from swescale.sandbox import DockerSandbox, SandboxConfig

    made = []

    def make(image: str | None = None, cfg: SandboxConfig | None = None, **kw):
        sb = DockerSandbox.create(
            docker_client,
            image or base_image,
            cfg or SandboxConfig(),
            labels={"run": "pytest"},
            **kw,
        )
        made.append(sb)
        return sb

    yield make
    for sb in made:
        sb.close()


@pytest.fixture
def git_sandbox(make_sandbox):
    """A sandbox with a small committed git repository at /repo."""
    sb = make_sandbox(base_commit="")
    setup = (
        "cd /repo && git init -q && printf 'def add(a, b):\\n    return a + b\\n' > calc.py"
        " && mkdir -p pkg && echo 'x = 1' > pkg/mod.py && printf '\\x00\\x01\\x02' > data.bin"
        " && git add -A && git commit -q -m base && git rev-parse HEAD"
    )
    result = sb.exec_once(setup)
    assert result.exit_code == 0, result.output
    sb.base_commit = result.output.strip().splitlines()[-1]
    return sb
