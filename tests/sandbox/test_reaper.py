"""The reaper removes only what this installation made and whose owner is provably gone
on this host: the verdicts on literal labels (pure), then on real containers and
networks of a real engine."""

from __future__ import annotations

import contextlib
import os
import subprocess

import docker.errors
import pytest

from swescale.sandbox.owner import (
    ALIVE,
    FOREIGN,
    GONE,
    UNKNOWN,
    HostIdentity,
    installation_id,
    owner_labels,
    ownership,
    process_start_ticks,
)

HERE = HostIdentity("box", "boot-1", "pid:[4026531836]")


def _labels(**changes: str) -> dict[str, str]:
    labels = {
        "swescale": "1",
        "swescale.install": "inst-a",
        "swescale.owner_host": "box",
        "swescale.owner_boot": "boot-1",
        "swescale.owner_pidns": "pid:[4026531836]",
        "swescale.owner_pid": "4242",
        "swescale.owner_start": "1000",
    }
    labels.update({f"swescale.{k}": v for k, v in changes.items()})
    return {k: v for k, v in labels.items() if v != ""}


def _verdict(labels: dict[str, str], running: dict[int, str]) -> str:
    return ownership(labels, "inst-a", HERE, lambda pid: running.get(pid, ""))[0]


def test_only_a_provably_gone_owner_of_this_installation_is_gone() -> None:
    assert _verdict(_labels(), {}) == GONE
    assert _verdict(_labels(), {4242: "1000"}) == ALIVE
    # The pid now belongs to a process started later: the owner is gone.
    verdict, why = ownership(_labels(), "inst-a", HERE, lambda pid: "2000")
    assert verdict == GONE and "another process's now" in why
    # Another installation's containers are never judged at all.
    assert _verdict(_labels(install="inst-b"), {}) == FOREIGN
    assert _verdict(_labels(install=""), {}) == FOREIGN
    # Another host, another boot, another pid namespace (a job in another container on
    # this host): /proc here says nothing about that owner.
    for other in (
        {"owner_host": "elsewhere"},
        {"owner_boot": "boot-0"},
        {"owner_pidns": "pid:[1]"},
    ):
        assert _verdict(_labels(**other), {}) == UNKNOWN, other
    # What was not recorded cannot prove anything.
    for missing in ("owner_host", "owner_boot", "owner_pidns", "owner_pid", "owner_start"):
        assert _verdict(_labels(**{missing: ""}), {}) == UNKNOWN, missing
    assert _verdict(_labels(owner_pid="x"), {}) == UNKNOWN


def test_this_process_is_named_with_all_of_its_identity() -> None:
    labels = owner_labels()
    here = HostIdentity.here()
    assert labels["swescale.owner_pid"] == str(os.getpid())
    assert labels["swescale.owner_start"] == process_start_ticks(os.getpid()) != ""
    assert labels["swescale.owner_boot"] == here.boot_id != ""
    assert labels["swescale.owner_pidns"] == here.pid_namespace
    assert here.pid_namespace.startswith("pid:[")
    assert labels["swescale.install"] == installation_id() != ""
    assert ownership(labels, installation_id(), here)[0] == ALIVE


def test_the_installation_id_is_kept_and_can_be_given(tmp_path, monkeypatch) -> None:
    from swescale.sandbox.owner import _stored_installation_id

    path = tmp_path / "cache" / "installation-id"
    first = _stored_installation_id(path)
    _stored_installation_id.cache_clear()
    assert _stored_installation_id(path) == first == path.read_text().strip()
    monkeypatch.setenv("SWESCALE_INSTALLATION", "ci-runner-3")
    assert installation_id() == "ci-runner-3"


# -- on a real engine ---------------------------------------------------------------------


def _dead_owner_labels() -> dict[str, str]:
    """Owner labels of a process that has exited (same host, boot and pid namespace)."""
    child = subprocess.Popen(["sleep", "60"])
    labels = {
        **owner_labels(),
        "swescale.owner_pid": str(child.pid),
        "swescale.owner_start": process_start_ticks(child.pid),
    }
    child.kill()
    child.wait()
    return labels


@pytest.fixture
def make_container(docker_client, base_image):
    """Containers (created, not started: listing and removal is all the reaper needs)
    with the given labels, removed after the test whatever the reaper did."""
    made = []

    def make(run: str, labels: dict[str, str]) -> str:
        container = docker_client.containers.create(
            base_image, command=["sleep", "infinity"], labels={**labels, "swescale.run": run}
        )
        made.append(container.id)
        return container.name

    yield make
    for cid in made:
        # Most were removed by the reaper already.
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_container(cid, force=True)


@pytest.mark.docker
def test_foreign_containers_survive_the_reaper_and_a_dead_owners_goes(
    docker_client, make_container
) -> None:
    from swescale.sandbox import reap, running_sandboxes
    from swescale.sandbox.gc import survey

    run = f"pytest-reaper-{os.getpid()}"
    dead = _dead_owner_labels()
    kept = {
        make_container(run, {**dead, "swescale.install": "someone-else"}): "another installation",
        make_container(run, {**dead, "swescale.owner_host": "other-host"}): "another host",
        make_container(run, {**dead, "swescale.owner_pidns": "pid:[1]"}): "another pid namespace",
        make_container(run, {**dead, "swescale.owner_start": ""}): "start time not recorded",
        make_container(run, owner_labels()): "a live owner of the same run",
        make_container(run, {"swescale": "1"}): "no owner labels",
    }
    gone = make_container(run, dead)
    reused = make_container(run, {**owner_labels(), "swescale.owner_start": "1"})
    verdicts = {item.name: item for item in survey(docker_client, run)}
    assert {n for n, item in verdicts.items() if item.removed} == {gone, reused}
    assert "has exited" in verdicts[gone].why and "another process's" in verdicts[reused].why

    removed = reap(docker_client, run_id=run)
    assert {r.name for r in removed} == {gone, reused}
    assert all(r.kind == "container" and r.run == run for r in removed)
    assert set(running_sandboxes(docker_client, run)) == set(kept)


@pytest.mark.docker
def test_gc_names_what_it_removes_and_its_dry_run_lists_networks(
    docker_client, make_container
) -> None:
    from typer.testing import CliRunner

    from swescale.cli import app

    run = f"pytest-gc-{os.getpid()}"
    dead = {**_dead_owner_labels(), "swescale.run": run}
    gone = make_container(run, dead)
    alive = make_container(run, owner_labels())
    net = docker_client.networks.create(f"{run}-net", internal=True, labels=dead)
    live_net = docker_client.networks.create(
        f"{run}-live", internal=True, labels={**owner_labels(), "swescale.run": run}
    )
    try:
        cli = CliRunner()
        dry = cli.invoke(app, ["gc", "--run-id", run, "--dry-run"], env={"COLUMNS": "300"})
        assert dry.exit_code == 0, dry.output
        assert f"would remove container {gone} (owner pid" in dry.output
        assert f"would remove network {run}-net (owner pid" in dry.output
        assert f"would keep container {alive} (owner pid" in dry.output
        assert f"would keep network {run}-live" in dry.output
        assert "2 to remove, 2 to keep" in dry.output
        assert {n.name for n in docker_client.networks.list(names=[f"{run}-net"])} == {f"{run}-net"}
        done = cli.invoke(app, ["gc", "--run-id", run], env={"COLUMNS": "300"})
        assert done.exit_code == 0, done.output
        assert f"removed container {gone} (owner pid" in done.output
        assert f"removed network {run}-net" in done.output
        assert "removed 1 container(s), 1 network(s)" in done.output
        assert docker_client.networks.list(names=[f"{run}-net"]) == []
    finally:
        for network in (net, live_net):
            with contextlib.suppress(docker.errors.NotFound):
                network.remove()
