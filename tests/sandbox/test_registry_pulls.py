"""Pulls through a registry: names and settings, retries of transient failures only,
progress, and the cap on pulled images (least recently used first, never one held or
used by a container). The registry is Debian's ``docker-registry`` on a loopback port
(the ``registry`` fixture); images are one-file images made here."""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import tarfile
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from swescale.sandbox import ImagesConfig
from swescale.sandbox.registry import (
    ImageMissing,
    PulledImages,
    RegistryError,
    check_registry,
    pull,
    pull_progress,
    push,
    qualified,
    split_name,
)


def test_registry_addresses_and_names() -> None:
    assert check_registry("127.0.0.1:5000/") == "127.0.0.1:5000"
    assert check_registry("registry.example.org/team") == "registry.example.org/team"
    assert check_registry("") == ""
    for bad in ("http://127.0.0.1:5000", "host:port", "host:5000/UPPER", "a b:1"):
        with pytest.raises(ValueError):
            check_registry(bad)
    assert qualified("r:5000", "swebench/x:latest") == "r:5000/swebench/x:latest"
    assert qualified("", "swebench/x:latest") == "swebench/x:latest"
    assert split_name("r:5000/swebench/x") == ("r:5000/swebench/x", "latest")
    assert split_name("r:5000/swebench/x:1") == ("r:5000/swebench/x", "1")


def test_images_config_checks_registry_and_rate() -> None:
    assert ImagesConfig(registry="127.0.0.1:5000/").registry == "127.0.0.1:5000"
    with pytest.raises(ValidationError, match="without a scheme"):
        ImagesConfig(registry="https://127.0.0.1:5000")
    with pytest.raises(ValidationError, match="pull rate"):
        ImagesConfig(pull_rate="fast")
    with pytest.raises(ValidationError):
        ImagesConfig(keep_pulled=-1)
    assert ImagesConfig(pull_rate="2 per second").pull_rate == "2 per second"


def test_where_images_come_from_is_not_part_of_the_config_digest() -> None:
    from swescale.config import load_config

    plain = load_config("scripted", [])
    pulled = load_config("scripted", ["images.registry=127.0.0.1:5000", "images.keep_pulled=3"])
    assert plain.digest() == pulled.digest()


# -- against a real registry -----------------------------------------------------------


def _tiny_image(client, name: str, size: int = 1) -> str:
    """A one-file image of ``size`` bytes under ``name`` (no base layers)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = uuid.uuid4().bytes * (size // 16 + 1)
        info = tarfile.TarInfo("payload")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    repository, _, tag = name.rpartition(":")
    client.api.import_image_from_data(buffer.getvalue(), repository=repository, tag=tag)
    return name


def _gone(client, *names: str) -> None:
    for name in names:
        with contextlib.suppress(Exception):  # already gone
            client.images.remove(name, force=True)


def _published(client, registry: str, count: int, size: int = 1) -> list[str]:
    """``count`` images pushed to ``registry`` and absent from the engine."""
    nonce = uuid.uuid4().hex[:8]
    names = []
    for i in range(count):
        local = _tiny_image(client, f"swescale/test-pull-{nonce}:{i}", size)
        remote = qualified(registry, f"swebench/sweb.eval.x86_64.test-{nonce}-{i}:latest")
        push(client, local, remote)
        _gone(client, local)
        names.append(remote)
    return names


def _present(client, name: str) -> bool:
    return bool(client.images.list(name=split_name(name)[0]))


@pytest.mark.docker
def test_pull_reports_progress_and_a_missing_image_fails_at_once(
    docker_client, registry, caplog
) -> None:
    (name,) = _published(docker_client, registry, 1, size=3_000_000)
    seen = []
    try:
        with pull_progress(seen.append):
            pull(docker_client, name, retries=3)
        assert _present(docker_client, name)
        assert seen and seen[-1].finished and seen[-1].name == name
        assert seen[-1].total_bytes > 0 and seen[-1].done_bytes == seen[-1].total_bytes
        assert seen[-1].layers == seen[-1].layers_done == 1
        missing = qualified(registry, "swebench/sweb.eval.x86_64.nothing:latest")
        with caplog.at_level(logging.WARNING), pytest.raises(ImageMissing, match="nothing"):
            pull(docker_client, missing, retries=3)
        assert "retrying" not in caplog.text  # not found is not worth another attempt
    finally:
        _gone(docker_client, name)


@pytest.mark.docker
def test_an_unreachable_registry_is_retried_then_named(docker_client, caplog) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    name = f"127.0.0.1:{port}/swebench/sweb.eval.x86_64.x:latest"
    with caplog.at_level(logging.WARNING), pytest.raises(RegistryError) as caught:
        pull(docker_client, name, retries=2)
    assert "after 2 attempt(s)" in str(caught.value) and name in str(caught.value)
    assert "attempt 1 of 2" in caplog.text


@pytest.mark.docker
def test_the_cap_removes_the_least_recently_used_never_one_in_use(
    docker_client, registry, tmp_path: Path
) -> None:
    first, second, third, fourth = names = _published(docker_client, registry, 4)
    pulled = PulledImages(docker_client, tmp_path, keep=1)
    container = None
    try:
        with pulled.hold(first):
            # Held by this command: a pull past the cap leaves it.
            pulled.ensure(second)
            assert _present(docker_client, first) and _present(docker_client, second)
        # Released: the next pull past the cap removes the least recently used (first).
        pulled.ensure(third)
        assert not _present(docker_client, first)
        assert not _present(docker_client, second)
        assert _present(docker_client, third)
        assert [n for n, _ in pulled.listing()] == [third]
        # A container's image (even a stopped container's) stays.
        container = docker_client.containers.create(third, command=["true"])
        pulled.ensure(fourth)
        assert _present(docker_client, third) and _present(docker_client, fourth)
        container.remove()
        container = None
        assert pulled.enforce() == [third]
        # An evicted image comes back when it is held again.
        with pulled.hold(first):
            assert _present(docker_client, first)
    finally:
        if container is not None:
            container.remove(force=True)
        _gone(docker_client, *names)


@pytest.mark.docker
def test_without_a_cap_every_pulled_image_stays(docker_client, registry, tmp_path) -> None:
    names = _published(docker_client, registry, 2)
    pulled = PulledImages(docker_client, tmp_path, keep=0)
    try:
        for name in names:
            pulled.ensure(name)
        assert all(_present(docker_client, n) for n in names)
        assert {n for n, _ in pulled.listing()} == set(names)
    finally:
        _gone(docker_client, *names)
