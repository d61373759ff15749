"""Instance images from a registry versus built locally, and the disk a node keeps with
and without the cap on pulled images, measured side by side in one run.

Set up in the run, under one temp dir: a registry (Debian's ``docker-registry``) on a
loopback port; the instances' images published there under their official names in the
official layout (what ``swescale images push --official-names`` does); and a second
Docker engine (``dockerd`` with its own data root, no bridge) that stands for a fresh
node: nothing cached.

1. Per instance, in order:
   - **pull**: the fresh node pulls the image (``PulledImages``, as every command),
     with the megabytes it had to fetch: the first image of an environment brings every
     layer, a later one of the same environment (or the same base) only what differs;
   - **instance build**: this engine rebuilds the instance layer under a throwaway tag
     (base and environment present: the cheapest local build);
   - **env + instance build**: the environment layer too (base present: what a node
     without that environment builds; needs the package index).
2. The fresh node pulls the N instances without a cap, then, emptied, with
   ``images.keep_pulled=K``: the disk its engine's images take after each (layers
   counted once, ``docker system df``).

Usage:
  .venv/bin/python benchmarks/bench_registry.py --dataset mini --instances 4 --keep 2
  .venv/bin/python benchmarks/bench_registry.py --dataset FILE --repos-dir DIR -i ID ... --keep 2
Needs root (a second dockerd), docker-registry, and network for the environment builds.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx

from swescale.sandbox import ImagesConfig, build_layer, docker_client
from swescale.sandbox.registry import PulledImages, pull_progress
from swescale.swebench.config import DatasetConfig, GradingConfig
from swescale.swebench.datasets import load_tasks
from swescale.swebench.evaluate import Grader
from swescale.swebench.images import (
    REPO_DIR,
    VENV_ENV,
    official_image_name,
    planned_recipes,
)
from swescale.swebench.publish import publish_task


@contextlib.contextmanager
def registry_server(root: Path) -> Iterator[str]:
    port = _free_port()
    config = root / "registry.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root / 'storage'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\nlog:\n  level: warn\n"
    )
    binary = shutil.which("docker-registry")
    if binary is None:
        raise SystemExit("docker-registry is not installed (apt-get install docker-registry)")
    process = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    address = f"127.0.0.1:{port}"
    try:
        _wait(lambda: httpx.get(f"http://{address}/v2/", timeout=1).status_code == 200)
        yield address
    finally:
        process.terminate()
        process.wait(10)


# The fresh node's own bridge. Never ``--bridge=none``: a daemon started so deletes the
# host's default bridge (docker0), which the host's main engine uses.
NODE_BRIDGE = "swbench0"
NODE_SUBNET = "10.213.77.1/24"


@contextlib.contextmanager
def fresh_engine(root: Path) -> Iterator[tuple[docker.DockerClient, Path]]:
    """A second Docker engine with an empty data root and a bridge of its own: a new
    node (it runs no container here; it pulls)."""
    binary = shutil.which("dockerd")
    if binary is None:
        raise SystemExit("dockerd is not installed")
    socket_path = root / "docker.sock"
    data = root / "data"
    subprocess.run(["ip", "link", "add", NODE_BRIDGE, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", NODE_SUBNET, "dev", NODE_BRIDGE], check=True)
    log = open(root / "dockerd.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            binary,
            f"--data-root={data}",
            f"--exec-root={root / 'exec'}",
            f"--pidfile={root / 'docker.pid'}",
            f"--host=unix://{socket_path}",
            f"--bridge={NODE_BRIDGE}",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(socket_path.exists, seconds=60)
        client = docker.DockerClient(base_url=f"unix://{socket_path}", timeout=600)
        _wait(client.ping)
        yield client, data
    finally:
        process.terminate()
        process.wait(60)
        log.close()
        subprocess.run(["ip", "link", "delete", NODE_BRIDGE], check=False)


def _wait(ready, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.2)
    raise SystemExit("a service did not start in time")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _build(grader: Grader, base: str, recipe, archive: bytes | None = None) -> tuple[str, float]:
    """``recipe`` built on ``base`` under a throwaway tag: (tag, seconds)."""
    tag = f"swescale/bench-registry:{uuid.uuid4().hex[:12]}"
    start = time.monotonic()
    build_layer(
        grader.client,
        base,
        tag,
        list(recipe.commands),
        archives=[("/", archive)] if archive else None,
        files=dict(recipe.files),
        env=VENV_ENV,
        workdir=REPO_DIR,
        pip_config=True,
    )
    return tag, time.monotonic() - start


def time_builds(grader: Grader, task) -> tuple[float, float]:
    """(instance layer rebuilt on the cached environment, environment and instance
    rebuilt on the cached base), in seconds; the throwaway images are removed."""
    base, env, instance = planned_recipes(task, grader.images, grader.grading, grader.repos)
    archive = lambda: grader.repos.checkout_tar(task, root=REPO_DIR.lstrip("/"))  # noqa: E731
    made: list[str] = []
    try:
        start = time.monotonic()
        made.append(_build(grader, env.tag, instance, archive())[0])
        instance_seconds = time.monotonic() - start
        start = time.monotonic()
        made.append(_build(grader, base, env)[0])
        made.append(_build(grader, made[-1], instance, archive())[0])
        both_seconds = time.monotonic() - start
    finally:
        for tag in reversed(made):
            grader.client.images.remove(tag, force=True)
    return instance_seconds, both_seconds


def disk_bytes(client: docker.DockerClient) -> int:
    return int(client.df().get("LayersSize") or 0)


def empty_engine(client: docker.DockerClient) -> None:
    for image in client.images.list():
        client.images.remove(image.id, force=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="mini")
    parser.add_argument("--repos-dir", type=Path, default=None)
    parser.add_argument("-i", "--instance", action="append", default=[])
    parser.add_argument("--instances", type=int, default=4, help="the first N (without -i)")
    parser.add_argument("--keep", type=int, default=2, help="the cap: pulled images kept")
    args = parser.parse_args()
    data = DatasetConfig(name=args.dataset, instance_ids=args.instance, repos_dir=args.repos_dir)
    tasks = load_tasks(data)[: None if args.instance else args.instances]
    client = docker_client()
    images, grading = ImagesConfig(), GradingConfig()
    grader = Grader.for_tasks(client, tasks, images, grading, data)
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        root = Path(tmp)
        (root / "registry").mkdir()
        (root / "node").mkdir()
        with registry_server(root / "registry") as registry, fresh_engine(root / "node") as node:
            fresh, _ = node
            names = {}
            for task in tasks:
                image = grader.image(task)
                if isinstance(image, str):
                    raise SystemExit(f"{task.id}: {image}")
                publish_task(
                    client,
                    task,
                    image,
                    registry=registry,
                    official_names=True,
                    images=images,
                    grading=grading,
                    repos=grader.repos,
                )
                names[task.id] = official_image_name(task, grading, registry)
            print(
                f"{len(tasks)} instance(s) of {args.dataset}; registry {registry} (loopback); "
                "a second engine with an empty data root stands for a fresh node"
            )
            header = (
                f"{'instance':28} {'MB':>6} {'MB got':>7} {'pull':>8} {'inst build':>10} "
                f"{'env+inst':>9} {'inst/pull':>9} {'env+inst/pull':>13}"
            )
            print(header)
            rows = []
            uncapped = PulledImages(fresh, root / "cache-uncapped", keep=0, rate="")
            for task in tasks:
                name = names[task.id]
                transfers: list = []
                start = time.monotonic()
                with pull_progress(transfers.append):
                    uncapped.ensure(name)
                seconds = time.monotonic() - start
                fetched = transfers[-1].total_bytes / 1e6 if transfers else 0.0
                inst, both = time_builds(grader, task)
                size = int(fresh.images.get(name).attrs.get("Size", 0)) / 1e6
                rows.append((seconds, inst, both))
                print(
                    f"{task.id:28} {size:6.0f} {fetched:7.0f} {seconds:7.1f}s {inst:9.1f}s "
                    f"{both:8.1f}s {inst / seconds:8.2f}x {both / seconds:12.2f}x"
                )
            med = [statistics.median(c) for c in zip(*rows, strict=True)]
            print(
                f"{'median':28} {'':6} {'':7} {med[0]:7.1f}s {med[1]:9.1f}s {med[2]:8.1f}s "
                f"{med[1] / med[0]:8.2f}x {med[2] / med[0]:12.2f}x"
            )
            no_cap = disk_bytes(fresh)
            empty_engine(fresh)
            capped = PulledImages(fresh, root / "cache-capped", keep=args.keep, rate="")
            for task in tasks:
                capped.ensure(names[task.id])
            with_cap = disk_bytes(fresh)
            kept = len(fresh.images.list())
            print(
                f"disk of the fresh node's images after pulling {len(tasks)} instances: "
                f"no cap {no_cap / 1e9:.2f} GB ({len(tasks)} images), keep_pulled={args.keep} "
                f"{with_cap / 1e9:.2f} GB ({kept} images) -> cap/no cap = {with_cap / no_cap:.2f}x"
            )
            empty_engine(fresh)


if __name__ == "__main__":
    main()
