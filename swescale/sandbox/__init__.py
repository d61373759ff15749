"""Docker sandboxes: images built offline, a persistent shell, snapshots, a warm pool."""

from swescale.sandbox.base import (
    EngineUnavailable,
    ImageNotFound,
    PathRefused,
    Sandbox,
    SandboxError,
)
from swescale.sandbox.config import ImagesConfig, SandboxConfig
from swescale.sandbox.docker_sandbox import DockerSandbox
from swescale.sandbox.engine import docker_client
from swescale.sandbox.gc import reap, remove_owned, running_sandboxes
from swescale.sandbox.images import (
    ImageBuildError,
    build_layer,
    content_tag,
    ensure_base_image,
    host_apt_mirror,
)
from swescale.sandbox.pool import WarmPool

__all__ = [
    "DockerSandbox",
    "EngineUnavailable",
    "ImageBuildError",
    "ImageNotFound",
    "ImagesConfig",
    "PathRefused",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "WarmPool",
    "build_layer",
    "content_tag",
    "docker_client",
    "ensure_base_image",
    "host_apt_mirror",
    "reap",
    "remove_owned",
    "running_sandboxes",
]
