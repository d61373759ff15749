"""Reaping containers that nobody owns any more: their creating process is gone, or they
belong to a run that is being restarted."""

from __future__ import annotations

import logging
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
    given, every container of that run (a run being resumed owns none of them yet)."""
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
    return removed


def running_sandboxes(client: docker.DockerClient, run_id: str | None = None) -> list[str]:
    """Names of swescale containers, optionally of one run (tests check for leaks with it)."""
    labels = [f"{LABEL}=1"] + ([f"{LABEL}.run={run_id}"] if run_id else [])
    return [_name(entry) for entry in _listing(client, labels)]
