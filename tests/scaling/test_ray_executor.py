"""The Ray executor on a real local Ray cluster (a head node and two Docker nodes, see
ray_cluster.py): the scripted preset on the mini benchmark gives the same predictions and
records as the local executor; a node killed mid-run loses nothing, does nothing twice,
and leaves no container."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the Ray executor needs the ray extra: pip install '.[ray]'")

from ray_cluster import docker_node_args, normalized_records, start_cluster  # noqa: E402

from swescale.config import load_config  # noqa: E402
from swescale.record.run import read_jsonl
from swescale.record.trajectory import load_trajectory
from swescale.scaling.launcher import launch  # noqa: E402

pytestmark = [pytest.mark.docker, pytest.mark.ray]

SLOW_SCRIPT = [
    "Looking around.\n\n```bash\nls\n```",
    "Thinking.\n\n```bash\nsleep 2 && echo one\n```",
    "Editing.\n\n```bash\necho 'note' > NOTES.txt && sleep 2\n```",
    "Checking.\n\n```bash\nsleep 2 && git status --short\n```",
    "Done.\n\n```bash\nsubmit\n```",
]


@pytest.fixture(scope="module")
def ray_cluster(docker_client):
    import ray

    cluster = start_cluster(docker_nodes=2)
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def _ray_overrides(cluster) -> list[str]:
    return ["scaling.executor=ray", f"scaling.ray.address={cluster.address}"]


@pytest.mark.parametrize(
    "common",
    [
        pytest.param(
            ["dataset.slice=0:2", "scaling.n_parallel=2"],
            id="two-tasks",
        ),
        pytest.param(
            ["dataset.slice=0:4"],
            id="preset",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_ray_run_matches_the_local_run(
    tmp_path: Path, ray_cluster, leak_check, common: list[str]
) -> None:
    """The scripted preset (planned right and wrong trajectories, the regression
    verifier, hybrid selection, every candidate graded) on mini tasks, once in this
    process and once on the cluster: the same predictions and the same records."""
    run_id = f"ray-same-{os.getpid()}"
    leak_check.append(run_id)
    local_cfg = load_config("scripted", [*common, f"runs_dir={tmp_path / 'local'}"])
    ray_cfg = load_config(
        "scripted", [*common, f"runs_dir={tmp_path / 'ray'}", *_ray_overrides(ray_cluster)]
    )
    assert ray_cfg.digest() == local_cfg.digest()  # the executor is not part of the config

    local = launch(local_cfg, run_id=run_id, live=False)
    on_ray = launch(ray_cfg, run_id=run_id, live=False)

    assert not local.failed and not on_ray.failed and not on_ray.interrupted
    assert set(on_ray.results) == set(local.results)
    local_records = normalized_records(local.run_dir.root)
    ray_records = normalized_records(on_ray.run_dir.root)
    assert sorted(ray_records) == sorted(local_records)
    for name, value in local_records.items():
        assert ray_records[name] == value, name
    # The records are complete: every planned trajectory, each finished.
    trajectories = sorted(on_ray.run_dir.root.glob("*/trajectories/*.jsonl"))
    planned = len(on_ray.results) * ray_cfg.scaling.n_parallel
    assert len(trajectories) == planned and all(load_trajectory(p).finished for p in trajectories)
    info = json.loads(on_ray.run_dir.run_json_path.read_text())
    assert info["cluster"]["executor"] == "ray"
    assert {t["status"] for t in info["tasks"].values()} == {"done"}
    # Every charge of every node reached the one ledger.
    local_info = json.loads(local.run_dir.run_json_path.read_text())
    for key in ("tokens_in", "tokens_out"):
        assert info["ledger"]["run"][key] == local_info["ledger"]["run"][key] > 0
    assert info["ledger"]["by_kind"]["grading"]["sandbox_seconds"] > 0


def _steps_on_driver(run_dir: Path, task_id: str) -> int:
    count = 0
    for path in (run_dir / task_id / "trajectories").glob("*.jsonl"):
        count += path.read_text(errors="replace").count('"type": "step"')
    return count


def _orphans(client, run_id: str, wait: float = 15.0) -> set[str]:
    """Names of the run's containers whose owner process is gone (the killed node's
    workers exit once their raylet is gone; give them a moment)."""
    from swescale.sandbox.owner import GONE, LABEL, HostIdentity, installation_id, ownership

    deadline = time.monotonic() + wait
    here, install = HostIdentity.here(), installation_id()
    while True:
        entries = client.api.containers(all=True, filters={"label": [f"{LABEL}.run={run_id}"]})
        dead = {
            e["Names"][0].lstrip("/")
            for e in entries
            if ownership(e["Labels"], install, here)[0] == GONE
        }
        if dead or time.monotonic() > deadline:
            return dead
        time.sleep(0.2)


def test_killed_node_mid_run_completes_elsewhere(
    tmp_path: Path, ray_cluster, docker_client, leak_check
) -> None:
    """Two tasks run on the two Docker nodes; once the first node's task has recorded
    steps, that node is killed (its raylet and workers, SIGKILL). Ray retries the task on
    a node that joins after the kill; it resumes from the steps that reached the driver.
    At the end every trajectory has each step exactly once, the killed worker's
    containers were reaped when the new node started, and none of the run is left."""
    import ray

    from swescale.sandbox import running_sandboxes

    run_id = f"ray-kill-{os.getpid()}"
    leak_check.append(run_id)
    script = tmp_path / "turns.json"
    script.write_text(json.dumps(SLOW_SCRIPT))
    cfg = load_config(
        "scripted",
        [
            "dataset.slice=0:2",
            f"model.script={script}",
            "scaling.n_parallel=2",
            "scaling.grade=none",
            "verifiers.enabled=[]",
            "selection.selector=majority",
            f"runs_dir={tmp_path}",
            "scaling.ray.sync_interval=0.2",
            *_ray_overrides(ray_cluster),
        ],
    )
    run_dir = tmp_path / run_id
    outcome: dict[str, object] = {}

    def drive() -> None:
        try:
            outcome["result"] = launch(cfg, run_id=run_id, live=False)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            outcome["error"] = exc

    driver = threading.Thread(target=drive, name="driver")
    driver.start()

    # Wait until some task has recorded steps on the driver, then kill its node.
    deadline = time.monotonic() + 300
    victim_task = victim_node_id = None
    while time.monotonic() < deadline and driver.is_alive():
        tasks = (json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}).get("tasks", {})  # fmt: skip
        for task_id, state in tasks.items():
            if state.get("node") and _steps_on_driver(run_dir, task_id) >= 3:
                victim_task, victim_node_id = task_id, state["node"]
                break
        if victim_task:
            break
        time.sleep(0.1)
    assert victim_task, f"no task recorded steps in time: {outcome}"
    victim = next(n for n in ray_cluster.worker_nodes if n.node_id == victim_node_id)
    steps_before = _steps_on_driver(run_dir, victim_task)
    ray_cluster.remove_node(victim, allow_graceful=False)
    leaked = _orphans(docker_client, run_id)
    # The node comes back (a new raylet on the same host and engine).
    ray_cluster.add_node(**docker_node_args())
    # The dead worker's containers go while the run is still going (a reaper at node or
    # worker start), not at its end.
    gone_while_running = False
    while driver.is_alive():
        present = {name for name in running_sandboxes(docker_client, run_id) if name in leaked}
        if not present:
            gone_while_running = driver.is_alive()
            break
        time.sleep(0.2)

    driver.join(timeout=600)
    assert not driver.is_alive(), "the run did not finish"
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert not result.failed and not result.interrupted, result.results
    assert {r["status"] for r in result.results.values()} == {"done"}

    files = sorted(run_dir.glob("*/trajectories/*.jsonl"))
    assert len(files) == 4  # 2 tasks x 2 trajectories: nothing lost, nothing extra
    for path in files:
        record = load_trajectory(path)
        assert record.finished, path
        # Each step once, in order: none done twice, none lost.
        assert [s.index for s in record.steps] == list(range(len(SLOW_SCRIPT)))
        assert record.footer["exit_status"] == "submitted"
        assert "NOTES.txt" in record.footer["patch"]
    assert _steps_on_driver(run_dir, victim_task) == 2 * len(SLOW_SCRIPT) >= steps_before
    predictions = read_jsonl(run_dir / "predictions.jsonl")
    assert sorted(p["instance_id"] for p in predictions) == sorted(result.results)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["tasks"][victim_task]["attempts"] == 2
    assert info["tasks"][victim_task]["node"] != victim_node_id
    # The dead worker's containers were removed by a reaper at node (or worker) start
    # (on this shared engine, any swescale process's reaper may have been first: it
    # removes containers of dead owners too), never left for the end-of-run clean-up.
    assert leaked and gone_while_running, leaked
    reaped_at_end = " ".join(
        described
        for entry in info.get("reaped_on_nodes", [])
        if entry["when"] == "end"
        for described in entry["containers"]
    )
    assert not any(f"container {name} (" in reaped_at_end for name in leaked)
    assert running_sandboxes(docker_client, run_id) == []
    assert ray.is_initialized()


def test_shared_storage_writes_records_in_place(tmp_path: Path, ray_cluster, leak_check) -> None:
    """storage=shared: nodes write task records straight into runs_dir (a path every node
    sees); run-level records still go through the driver. Resuming reuses the result."""
    run_id = f"ray-shared-{os.getpid()}"
    leak_check.append(run_id)
    cfg = load_config(
        "scripted",
        [
            "dataset.slice=0:1",
            "model.script=plan:gold",
            "scaling.n_parallel=1",
            "scaling.grade=none",
            "verifiers.enabled=[]",
            "selection.selector=majority",
            f"runs_dir={tmp_path}",
            "scaling.ray.storage=shared",
            *_ray_overrides(ray_cluster),
        ],
    )
    first = launch(cfg, run_id=run_id, live=False)
    (record,) = first.results.values()
    assert record["status"] == "done" and record["trajectories"] == {"ran": 1}
    (path,) = first.run_dir.root.glob("*/trajectories/*.jsonl")
    assert load_trajectory(path).footer["exit_status"] == "submitted"
    again = launch(cfg, run_id=run_id, live=False)
    assert again.results == first.results  # finished tasks are not run again
    assert len(read_jsonl(first.run_dir.predictions_path)) == 1


def test_a_cluster_without_docker_nodes_is_a_clear_error(tmp_path: Path, ray_cluster) -> None:
    from swescale.scaling.cluster import ClusterError

    cfg = load_config(
        "scripted",
        [
            "dataset.slice=0:1",
            f"runs_dir={tmp_path}",
            "scaling.ray.resources_per_task={gpu_docker: 1}",
            *_ray_overrides(ray_cluster),
        ],
    )
    with pytest.raises(ClusterError, match="no alive node .* offers") as info:
        launch(cfg, run_id="no-docker", live=False)
    # What each node offers, and where the recipe for Docker slots is.
    assert f"at {ray_cluster.address}" in str(info.value)
    assert "docker 1" in str(info.value) and "gpu_docker 1" in str(info.value)
    assert 'docs/cluster.md, "On one machine"' in str(info.value)


def test_a_run_says_which_cluster_it_joined(tmp_path: Path, ray_cluster, leak_check) -> None:
    """The terminal and run.json name the cluster: its address, Ray version, and the
    nodes that offer a task's resources."""
    import io

    import ray
    from rich.console import Console

    run_id = f"ray-joined-{os.getpid()}"
    leak_check.append(run_id)
    cfg = load_config(
        "scripted",
        [
            "dataset.slice=0:1",
            "model.script=plan:gold",
            "scaling.n_parallel=1",
            "scaling.grade=none",
            "verifiers.enabled=[]",
            "selection.selector=majority",
            f"runs_dir={tmp_path}",
            *_ray_overrides(ray_cluster),
        ],
    )
    out = io.StringIO()
    result = launch(cfg, run_id=run_id, console=Console(file=out, width=300), live=False)
    assert not result.failed
    info = json.loads(result.run_dir.run_json_path.read_text())
    cluster = info["cluster"]
    assert cluster["address"] == ray_cluster.address and cluster["asked"] == ray_cluster.address
    assert cluster["ray_version"] == ray.__version__
    docker = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("docker")]
    assert len(cluster["nodes"]) == len(docker) >= 2
    assert all(n["docker"] == 1 and n["CPU"] == 1 for n in cluster["nodes"])
    assert info["executor"] == "ray" and info["executors"][-1]["executor"] == "ray"
    line = out.getvalue()
    assert f"joined Ray cluster at {ray_cluster.address}" in line
    assert f"Ray {ray.__version__}" in line and "(docker 1, CPU 1)" in line


def test_auto_joins_with_a_word_and_refuses_another_ray_version(ray_cluster, monkeypatch) -> None:
    """``address=auto`` joins the cluster this host is part of and says which; a cluster
    whose recorded Ray version differs from the driver's is refused, naming both."""
    import ray
    from ray._common.usage.usage_constants import CLUSTER_METADATA_KEY
    from ray._private.ray_constants import KV_NAMESPACE_CLUSTER
    from ray._raylet import GcsClient

    from swescale.scaling.cluster import ClusterError
    from swescale.scaling.cluster.executor import cluster_line, connected, describe_cluster

    cfg = load_config("scripted", ["scaling.executor=ray", "scaling.ray.address=auto"])
    gcs = GcsClient(address=ray_cluster.address)
    metadata = gcs.internal_kv_get(CLUSTER_METADATA_KEY, namespace=KV_NAMESPACE_CLUSTER)
    ray.shutdown()  # the module's driver connection; this test connects by itself
    monkeypatch.setenv("RAY_ADDRESS", ray_cluster.address)  # what `ray start` leaves a host
    try:
        with connected(cfg) as joined:
            info = describe_cluster(joined, cfg)
        assert not ray.is_initialized()  # connected here, so disconnected here
        assert info["address"] == ray_cluster.address and info["asked"] == "auto"
        assert f"joined Ray cluster at {ray_cluster.address} (asked: auto;" in cluster_line(info)

        other = json.loads(metadata)
        other["ray_version"] = "1.13.0"
        gcs.internal_kv_put(
            CLUSTER_METADATA_KEY, json.dumps(other).encode(), True, namespace=KV_NAMESPACE_CLUSTER
        )
        refusal = "refused the Ray cluster at 'auto'"
        with pytest.raises(ClusterError, match=refusal) as refused, connected(cfg):
            pass
        assert "Ray: 1.13.0" in str(refused.value) and ray.__version__ in str(refused.value)
        assert not ray.is_initialized()
    finally:
        gcs.internal_kv_put(CLUSTER_METADATA_KEY, metadata, True, namespace=KV_NAMESPACE_CLUSTER)
        monkeypatch.delenv("RAY_ADDRESS")
        if not ray.is_initialized():
            ray.init(address=ray_cluster.address, log_to_driver=False)


@pytest.mark.slow
def test_driver_killed_then_rerun_resumes_on_the_cluster(
    tmp_path: Path, ray_cluster, docker_client, leak_check
) -> None:
    """``swescale run`` with the Ray executor killed with SIGKILL mid-run (Ray then stops
    its tasks), then rerun: the run completes with nothing lost, nothing done twice, and
    no container left, as with the local executor."""
    import signal
    import subprocess
    import sys

    from swescale.sandbox import running_sandboxes

    run_id = f"ray-driver-kill-{os.getpid()}"
    leak_check.append(run_id)
    script = tmp_path / "turns.json"
    script.write_text(json.dumps(SLOW_SCRIPT))
    runs = tmp_path / "runs"
    run_dir = runs / run_id
    command = [
        sys.executable, "-m", "swescale.cli", "run", "-c", "scripted",
        "-o", "dataset.slice=0:2",
        "-o", f"model.script={script}",
        "-o", "scaling.n_parallel=2",
        "-o", "scaling.grade=none",
        "-o", "verifiers.enabled=[]",
        "-o", "selection.selector=majority",
        "-o", f"runs_dir={runs}",
        "-o", "scaling.ray.sync_interval=0.2",
        *[x for o in _ray_overrides(ray_cluster) for x in ("-o", o)],
        "--run-id", run_id, "--no-live", "--no-report",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and first.poll() is None:
        steps = sum(
            p.read_text(errors="replace").count('"type": "step"')
            for p in run_dir.glob("*/trajectories/*.jsonl")
        )
        if steps >= 3:
            break
        time.sleep(0.1)
    assert first.poll() is None, first.stdout.read().decode()[-3000:]
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    unfinished = [
        p for p in run_dir.glob("*/trajectories/*.jsonl") if not load_trajectory(p).finished
    ]
    assert unfinished, "the kill came too late to leave unfinished trajectories"

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    files = sorted(run_dir.glob("*/trajectories/*.jsonl"))
    assert len(files) == 4
    for path in files:
        record = load_trajectory(path)
        assert record.finished, path
        assert [s.index for s in record.steps] == list(range(len(SLOW_SCRIPT)))
    predictions = read_jsonl(run_dir / "predictions.jsonl")
    assert len({p["instance_id"] for p in predictions}) == len(predictions) == 2
    info = json.loads((run_dir / "run.json").read_text())
    assert info["sessions"] == 2
    assert all(t["status"] == "done" for t in info["tasks"].values())
    assert running_sandboxes(docker_client, run_id) == []


def test_endpoint_counter_is_shared_by_tasks_on_different_nodes(ray_cluster) -> None:
    """The LeastLoaded actor as the executor starts it: two Ray tasks on the two Docker
    nodes each hold a request; they get different endpoints, and releases reach it."""
    import ray

    from swescale.scaling.cluster.balance import LeastLoaded
    from swescale.scaling.cluster.executor import ActorMethod

    counter = ray.remote(LeastLoaded).options(num_cpus=0, max_concurrency=8).remote(2)
    acquire, release = ActorMethod(counter, "acquire"), ActorMethod(counter, "release", False)

    @ray.remote(num_cpus=1, resources={"docker": 1}, scheduling_strategy="SPREAD")
    def hold(acquire, seconds: float) -> tuple[str, int]:
        index = acquire([0, 1])
        time.sleep(seconds)
        return ray.get_runtime_context().get_node_id(), index

    try:
        (node_a, first), (node_b, second) = ray.get(
            [hold.remote(acquire, 3), hold.remote(acquire, 3)]
        )
        assert node_a != node_b and {first, second} == {0, 1}
        assert ray.get(counter.counts.remote())["in_flight"] == [1, 1]
        release(first)
        release(second)
        deadline = time.monotonic() + 10
        while ray.get(counter.counts.remote())["in_flight"] != [0, 0]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        ray.kill(counter)
