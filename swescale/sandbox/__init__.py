"""Docker sandboxes: images built offline, a persistent shell, snapshots, a warm pool.

A :class:`DockerSandbox` composes a :class:`SandboxContainer` (the engine-facing part),
a :class:`ShellSession` (the persistent shell) and a :class:`StateReader` (snapshots and
restores). This module is the package's public API."""

from swescale.sandbox.base import (
    EngineUnavailable,
    ImageNotFound,
    PathRefused,
    Sandbox,
    SandboxError,
)
from swescale.sandbox.config import ImagesConfig, SandboxConfig
from swescale.sandbox.container import SandboxContainer
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
from swescale.sandbox.session import ShellSession
from swescale.sandbox.state_reader import StateReader

__all__ = [
    "DockerSandbox",
    "EngineUnavailable",
    "ImageBuildError",
    "ImageNotFound",
    "ImagesConfig",
    "PathRefused",
    "Sandbox",
    "SandboxConfig",
    "SandboxContainer",
    "SandboxError",
    "ShellSession",
    "StateReader",
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
