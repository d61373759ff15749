"""Ray nodes pull instance images from a registry instead of building them: two mini
tasks' images are published under their official names (``swescale images push
--official-names``) to Debian's ``docker-registry`` on a loopback port, the engine's
copies of those names are removed, and a run with ``grading.use_official_images=true``
and ``images.registry`` on a two-node local cluster pulls them on the nodes, runs the
trajectories in them and grades in them."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the Ray executor needs the ray extra: pip install '.[ray]'")

from ray_cluster import start_cluster  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from swescale.cli import app  # noqa: E402
from swescale.config import load_config  # noqa: E402
from swescale.scaling.launcher import launch  # noqa: E402
from swescale.swebench.config import GradingConfig  # noqa: E402
from swescale.swebench.images import official_image_name  # noqa: E402

pytestmark = [pytest.mark.docker, pytest.mark.ray]

TASKS = ["swescale-mini__slugkit-1", "swescale-mini__confkit-1"]


@pytest.fixture
def ray_cluster(docker_client):
    import ray

    cluster = start_cluster(docker_nodes=2)
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_ray_nodes_pull_official_images_from_the_registry(
    docker_client, base_image, registry, ray_cluster, leak_check, tmp_path: Path
) -> None:
    from swescale.swebench.mini import mini_tasks

    tasks = {t.id: t for t in mini_tasks()}
    args = ["images", "push", "--registry", registry, "--official-names", "--dataset", "mini"]
    pushed = CliRunner().invoke(app, [*args, *(f"-i{i}" for i in TASKS)])
    assert pushed.exit_code == 0, pushed.output
    names = {i: official_image_name(tasks[i], GradingConfig(), registry) for i in TASKS}
    for name in names.values():
        with contextlib.suppress(Exception):  # no local copy of that name
            docker_client.images.remove(name, force=True)
    run_id = f"ray-registry-{tmp_path.name}"[:60]
    leak_check.append(run_id)
    cfg = load_config(
        "scripted",
        [
            f"dataset.instance_ids=[{','.join(TASKS)}]",
            "scaling.n_parallel=2",
            "scaling.ray.placement=spread",
            "grading.use_official_images=true",
            f"images.registry={registry}",
            f"runs_dir={tmp_path / 'runs'}",
            "scaling.executor=ray",
            f"scaling.ray.address={ray_cluster.address}",
        ],
    )
    try:
        outcome = launch(cfg, run_id=run_id, live=False)
        assert not outcome.failed and not outcome.interrupted, outcome.results
        info = json.loads(outcome.run_dir.run_json_path.read_text())
        for task_id, name in names.items():
            # Pulled on the node that ran the task, then used for its trajectories and
            # its grading.
            assert info["tasks"][task_id]["image_source"] == "pulled", info["tasks"][task_id]
            assert info["image_digests"][task_id] == docker_client.images.get(name).id
            grades = json.loads((outcome.run_dir.root / task_id / "grades.json").read_text())
            assert grades and all(g["image"] == name for g in grades.values())
            assert any(g["resolved"] for g in grades.values())
    finally:
        for name in names.values():
            with contextlib.suppress(Exception):  # already gone
                docker_client.images.remove(name, force=True)
