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


def reap(
    client: docker.DockerClient, run_id: str | None = None, dry_run: bool = False
) -> list[str]:
    """Remove swescale containers whose owner process is gone, and, when ``run_id`` is
    given, every container of that run (a run being resumed owns none of them yet)."""
    removed = []
    for container in client.containers.list(all=True, filters={"label": f"{LABEL}=1"}):
        labels = container.labels
        stale = not owner_alive(labels) or (
            run_id is not None and labels.get(f"{LABEL}.run") == run_id
        )
        if not stale:
            continue
        removed.append(container.name)
        if dry_run:
            continue
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            log.warning("could not remove %s: %s", container.name, exc)
    return removed


def running_sandboxes(client: docker.DockerClient, run_id: str | None = None) -> list[str]:
    """Names of swescale containers, optionally of one run (tests check for leaks with it)."""
    flt = [f"{LABEL}=1"] + ([f"{LABEL}.run={run_id}"] if run_id else [])
    return [c.name for c in client.containers.list(all=True, filters={"label": flt})]
