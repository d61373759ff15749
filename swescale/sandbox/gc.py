"""Reaping containers and networks that nobody owns any more.

Only what this installation made and whose owner process is provably gone on this host
is removed (:func:`swescale.sandbox.owner.ownership`): a shared engine also runs other
installations' and other hosts' jobs, and a run being resumed by another live session
still owns its containers.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import docker.errors

from swescale.sandbox.owner import (
    GONE,
    LABEL,
    HostIdentity,
    installation_id,
    label_filters,
    owned_by_this_process,
    ownership,
)

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reaped:
    """One container or network the reaper looked at. ``removed``: removed (or, in a dry
    run, would be); otherwise ``why`` says why it was left alone."""

    kind: str  # "container" | "network"
    name: str
    run: str
    why: str
    removed: bool
    ref: str = ""  # the engine's id

    def describe(self) -> str:
        run = f", run {self.run}" if self.run else ""
        return f"{self.kind} {self.name} ({self.why}{run})"


def _listing(client: docker.DockerClient, labels: list[str]) -> list[dict]:
    """Containers with these labels in one call, without inspecting each (the high-level
    ``containers.list`` inspects every container and fails if another process removes one
    in between)."""
    return client.api.containers(all=True, filters={"label": labels})


def _name(entry: dict) -> str:
    names = entry.get("Names") or [entry["Id"][:12]]
    return names[0].lstrip("/")


def survey(client: docker.DockerClient, run_id: str | None = None) -> list[Reaped]:
    """Every swescale container (of one run, when given) and network on the engine, each
    with the reaper's verdict; removes nothing."""
    install, here = installation_id(), HostIdentity.here()
    found = []
    filters = label_filters(run_id)
    for entry in _listing(client, filters):
        labels = entry.get("Labels") or {}
        verdict, why = ownership(labels, install, here)
        run = labels.get(f"{LABEL}.run", "")
        found.append(Reaped("container", _name(entry), run, why, verdict == GONE, entry["Id"]))
    for net in client.api.networks(filters={"label": filters}):
        labels = net.get("Labels") or {}
        verdict, why = ownership(labels, install, here)
        name, run = net.get("Name", net["Id"][:12]), labels.get(f"{LABEL}.run", "")
        found.append(Reaped("network", name, run, why, verdict == GONE, net["Id"]))
    return found


def reap(
    client: docker.DockerClient, run_id: str | None = None, dry_run: bool = False
) -> list[Reaped]:
    """Remove the containers whose owner is provably gone (of one run, when ``run_id`` is
    given), then such networks. Returns what was removed (or would be, with
    ``dry_run``); a container of ``run_id`` whose owner still runs is never removed."""
    removed = []
    found = [r for r in survey(client, run_id) if r.removed]
    # Networks go after their containers (a network with endpoints cannot be removed).
    for item in sorted(found, key=lambda r: r.kind != "container"):
        if not dry_run and not _remove(client, item):
            continue
        removed.append(item)
    return removed


def _remove(client: docker.DockerClient, item: Reaped) -> bool:
    try:
        if item.kind == "container":
            client.api.remove_container(item.ref, force=True, v=True)
        else:
            client.api.remove_network(item.ref)
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as exc:
        log.warning("could not remove %s %s: %s", item.kind, item.name, exc)
        return False
    return True


def remove_owned(client: docker.DockerClient, run_id: str | None = None) -> list[str]:
    """Remove the containers this process created (of one run, when given) and then its
    networks: what an interrupted command, or a run at its end, cleans up."""
    labels = label_filters(run_id, owner_pid=str(os.getpid()))
    removed = []
    for entry in _listing(client, labels):
        if not owned_by_this_process(entry.get("Labels") or {}):
            continue
        removed.append(_name(entry))
        with contextlib.suppress(docker.errors.DockerException):
            client.api.remove_container(entry["Id"], force=True, v=True)
    for net in client.api.networks(filters={"label": labels}):
        if owned_by_this_process(net.get("Labels") or {}):
            with contextlib.suppress(docker.errors.DockerException):
                client.api.remove_network(net["Id"])
    return removed


def running_sandboxes(client: docker.DockerClient, run_id: str | None = None) -> list[str]:
    """Names of swescale containers, optionally of one run (tests check for leaks with it)."""
    return [_name(entry) for entry in _listing(client, label_filters(run_id))]
