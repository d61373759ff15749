"""Connecting to the Docker engine, with errors that say what to do."""

from __future__ import annotations

import os
import socket
from functools import lru_cache

import docker
import docker.errors
import requests.exceptions

from swescale.sandbox.base import EngineUnavailable

LABEL = "swescale"

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


def _process_start_ticks(pid: int) -> str:
    """The start time of a process in clock ticks since boot: with the pid it names a
    process uniquely, so a recycled pid is not mistaken for a live owner."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()
    except (OSError, IndexError):
        return ""


def owner_labels() -> dict[str, str]:
    """Labels naming this process as the owner of a container."""
    return dict(_owner_labels(os.getpid()))


@lru_cache(maxsize=4)
def _owner_labels(pid: int) -> dict[str, str]:
    return {
        LABEL: "1",
        f"{LABEL}.owner_pid": str(pid),
        f"{LABEL}.owner_start": _process_start_ticks(pid),
        f"{LABEL}.owner_host": socket.gethostname(),
    }


def owner_alive(labels: dict[str, str]) -> bool:
    """Whether the process that created a container (by its labels) still runs here.

    A container from another host is treated as alive: we cannot tell, so we leave it.
    """
    if labels.get(f"{LABEL}.owner_host") != socket.gethostname():
        return True
    try:
        pid = int(labels.get(f"{LABEL}.owner_pid", ""))
    except ValueError:
        return False
    start = labels.get(f"{LABEL}.owner_start", "")
    current = _process_start_ticks(pid)
    return bool(current) and (not start or current == start)
