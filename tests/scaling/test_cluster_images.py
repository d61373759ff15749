"""Images on cluster nodes: the tag a task needs is known before building (so nodes agree
on it), a present image is never rebuilt, and with a registry one node builds and pushes
while the others pull. The registry is Debian's ``docker-registry`` (the CNCF
distribution registry) on a loopback port, which the engine uses without TLS."""

from __future__ import annotations

import contextlib
import socket
import uuid
from pathlib import Path

import httpx
import pytest

from swescale.config import load_config
from swescale.scaling.cluster.images import (
    BUILT,
    PRESENT,
    PULLED,
    NodeImages,
    ensure_image,
    planned_instance_tag,
    registry_name,
)

pytestmark = pytest.mark.docker


def test_the_planned_tag_is_the_built_tag(docker_client, tmp_path: Path) -> None:
    from swescale.scaling.stages import ImageProvider
    from swescale.swebench.datasets import load_tasks

    cfg = load_config("scripted", ["dataset.slice=0:1"])
    (task,) = load_tasks(cfg.dataset)
    local = ImageProvider(docker_client, cfg)
    built = local(task)  # builds it when missing, as the local executor does
    assert planned_instance_tag(task, cfg, local.repos(task)) == built.tag
    node = NodeImages(docker_client, cfg)
    image = node(task)
    assert node.how[task.id] == PRESENT  # present: not rebuilt
    assert image == built  # described exactly as the local provider does


def test_ensure_image_never_rebuilds_a_present_image(docker_client, tmp_path: Path) -> None:
    from swescale.sandbox import ensure_base_image

    base = ensure_base_image(docker_client)

    def must_not_build() -> str:
        raise AssertionError("a present image was rebuilt")

    assert ensure_image(docker_client, base, must_not_build, lock_dir=tmp_path) == PRESENT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tiny_image(client, tag: str, content: bytes) -> str:
    """A one-file image (no base layers, so pushing and pulling it takes a moment)."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("built.txt")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    repository, version = tag.rsplit(":", 1)
    client.api.import_image_from_data(buffer.getvalue(), repository=repository, tag=version)
    return tag


def test_one_node_builds_and_pushes_the_others_pull(docker_client, registry, tmp_path) -> None:
    """The image and the layer it is built on (as base and environment images are) go
    to the registry together, and come back together."""
    nonce = uuid.uuid4().hex[:12]
    tag = f"swescale/test-registry:{nonce}"
    layer = f"swescale/test-registry-layer:{nonce}"
    builds: list[str] = []

    def build() -> str:
        builds.append(tag)
        _tiny_image(docker_client, layer, f"layer {nonce}".encode())
        return _tiny_image(docker_client, tag, f"built {nonce}".encode())

    def ensure() -> str:
        return ensure_image(
            docker_client, tag, build, registry=registry, lock_dir=tmp_path, layers=(layer,)
        )

    try:
        # Node A: nothing anywhere yet -> builds, and pushes to the registry.
        assert ensure() == BUILT
        ids = {name: docker_client.images.get(name).id for name in (tag, layer)}
        for name in (tag, layer):
            repository, version = registry_name(registry, name).split("/", 1)[1].rsplit(":", 1)
            listed = httpx.get(f"http://{registry}/v2/{repository}/tags/list", timeout=5).json()
            assert listed["tags"] == [version]
        assert not any(  # the push's temporary names are not left behind
            registry in t for image in docker_client.images.list() for t in image.tags
        )
        # Node B: its engine lacks both -> pulls them (the same images), no build.
        for name in (tag, layer):
            docker_client.images.remove(name)
        assert ensure() == PULLED
        assert {name: docker_client.images.get(name).id for name in (tag, layer)} == ids
        # And once present, neither.
        assert ensure() == PRESENT
        assert builds == [tag]
    finally:
        for name in (tag, layer, registry_name(registry, tag), registry_name(registry, layer)):
            with contextlib.suppress(Exception):  # already gone
                docker_client.images.remove(name, force=True)


def test_an_unreachable_registry_falls_back_to_building(docker_client, tmp_path) -> None:
    tag = f"swescale/test-registry:{uuid.uuid4().hex[:12]}"
    nowhere = f"127.0.0.1:{_free_port()}"
    try:
        result = ensure_image(
            docker_client,
            tag,
            lambda: _tiny_image(docker_client, tag, b"x"),
            registry=nowhere,
            lock_dir=tmp_path,
        )
        assert result == BUILT  # the failed push is logged, not raised
    finally:
        with contextlib.suppress(Exception):  # already gone
            docker_client.images.remove(tag, force=True)
