"""Connecting to the Docker engine, with errors that say what to do."""

from __future__ import annotations

import os

import docker
import docker.errors
import requests.exceptions

from swescale.sandbox.base import EngineUnavailable
from swescale.sandbox.owner import LABEL, owner_labels

__all__ = ["ENGINE_ERRORS", "LABEL", "docker_client", "owner_labels"]

# What a call to the engine may raise when the engine or the container is gone.
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


def docker_client(timeout: float = 120.0) -> docker.DockerClient:
    """A client for the engine named by DOCKER_HOST (default: the local socket), checked alive."""
    try:
        # Many trajectories share one client from threads: a pool large enough for all of them.
        client = docker.from_env(timeout=int(timeout), max_pool_size=64)
        client.ping()
    except (docker.errors.DockerException, OSError) as exc:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise EngineUnavailable(
            f"the Docker engine at {where} does not answer ({exc.__class__.__name__}: {exc}). "
            "Start it with `bash scripts/setup.sh` (installs docker.io and starts dockerd) "
            "or point DOCKER_HOST at a running engine."
        ) from exc
    return client
