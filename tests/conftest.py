"""Shared fixtures: a Docker client, the base image (built once, then found by tag), and
a registry on a loopback port."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_registry(root: Path) -> Iterator[str]:
    """Debian's ``docker-registry`` (the Distribution project's server) on a free loopback
    port, its config and storage under ``root``; yields its address. The engine talks
    plain HTTP to 127.0.0.0/8 registries without being told (its default
    insecure-registries)."""
    import httpx

    binary = shutil.which("docker-registry")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("docker-registry is missing (scripts/test.sh installs it)")
        pytest.skip("docker-registry not installed (apt-get install docker-registry)")
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    config = root / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'storage'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        "log:\n  level: warn\n"
    )
    process = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://{address}/v2/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the registry did not start"
            assert process.poll() is None, "the registry exited"
            time.sleep(0.2)
        yield address
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """A registry on a free loopback port for this test, removed after it."""
    with running_registry(tmp_path / "registry") as address:
        yield address


@pytest.fixture(scope="module")
def module_registry(tmp_path_factory) -> Iterator[str]:
    """A registry shared by the tests of one module."""
    with running_registry(tmp_path_factory.mktemp("registry")) as address:
        yield address
