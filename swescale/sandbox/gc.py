"""Reaping containers that nobody owns any more: their creating process is gone, or they
belong to a run that is being restarted."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from typing import TYPE_CHECKING

import docker.errors

from swescale.sandbox.engine import LABEL, owner_alive

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)


def _listing(client: docker.DockerClient, labels: list[str]) -> list[dict]:
    """Containers with these labels in one call, without inspecting each (the high-level
    ``containers.list`` inspects every container and fails if another process removes one
    in between)."""
    return client.api.containers(all=True, filters={"label": labels})


def _name(entry: dict) -> str:
    names = entry.get("Names") or [entry["Id"][:12]]
    return names[0].lstrip("/")


def reap(
    client: docker.DockerClient, run_id: str | None = None, dry_run: bool = False
) -> list[str]:
    """Remove swescale containers whose owner process is gone, and, when ``run_id`` is
    given, every container of that run (a run being resumed owns none of them yet); then
    networks whose owner is gone."""
    removed = []
    for entry in _listing(client, [f"{LABEL}=1"]):
        labels = entry.get("Labels") or {}
        stale = not owner_alive(labels) or (
            run_id is not None and labels.get(f"{LABEL}.run") == run_id
        )
        if not stale:
            continue
        removed.append(_name(entry))
        if dry_run:
            continue
        try:
            client.api.remove_container(entry["Id"], force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            log.warning("could not remove %s: %s", _name(entry), exc)
    # Networks (grading runs make one each) go after their containers.
    for net in client.api.networks(filters={"label": [f"{LABEL}=1"]}):
        if owner_alive(net.get("Labels") or {}) or dry_run:
            continue
        with contextlib.suppress(docker.errors.DockerException):
            client.api.remove_network(net["Id"])
            removed.append(net.get("Name", net["Id"][:12]))
    return removed


def remove_owned(client: docker.DockerClient, run_id: str | None = None) -> list[str]:
    """Remove the containers this process created (of one run, when given) and then its
    networks: what an interrupted command cleans up before it exits."""
    me = str(os.getpid())
    labels = [f"{LABEL}=1", f"{LABEL}.owner_pid={me}"]
    if run_id:
        labels.append(f"{LABEL}.run={run_id}")
    removed = []
    for entry in _listing(client, labels):
        if (entry.get("Labels") or {}).get(f"{LABEL}.owner_host") != socket.gethostname():
            continue
        removed.append(_name(entry))
        with contextlib.suppress(docker.errors.DockerException):
            client.api.remove_container(entry["Id"], force=True, v=True)
    for net in client.api.networks(filters={"label": [f"{LABEL}=1", f"{LABEL}.owner_pid={me}"]}):
        with contextlib.suppress(docker.errors.DockerException):
            client.api.remove_network(net["Id"])
    return removed


def running_sandboxes(client: docker.DockerClient, run_id: str | None = None) -> list[str]:
    """Names of swescale containers, optionally of one run (tests check for leaks with it)."""
    labels = [f"{LABEL}=1"] + ([f"{LABEL}.run={run_id}"] if run_id else [])
    return [_name(entry) for entry in _listing(client, labels)]
