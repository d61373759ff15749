"""What distribution costs: the same batch on the local executor and on the Ray executor,
side by side in one run, as ratios.

The scripted model plays the gold fix on T mini-benchmark tasks with K trajectories each
(no verifiers, no grading: sandboxes, the agent graph and the records are what runs).
The local executor runs S tasks at a time in this process; the Ray executor runs them on
a local Ray cluster of two Docker nodes with S slots in all, this process as the driver.
Measurements are interleaved (local, Ray, local, Ray, ...) so drift in machine load hits
both. Reported:

- wall time of the batch, Ray over local;
- the overhead per task and per trajectory: (Ray wall - local wall) / tasks (or
  trajectories), as a ratio to the local time per task (per trajectory);
- the latency of an empty Ray task and of a call to the run's store actor, as a ratio to
  a trajectory's time -- what each unit of work would pay if it were its own Ray task.

All nodes share this machine's Docker engine and cores, so the Ray side pays for its
own processes (raylets, workers) on the same 2 cores the sandboxes use.

    .venv/bin/python benchmarks/bench_ray.py [--tasks 4] [--trajectories 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

# Object store per Ray node: small, records never go through it.
OBJECT_STORE = 100 * 1024 * 1024


def batch_config(runs: Path, tasks: int, trajectories: int, slots: int, executor: str, address=""):
    from swescale.config import load_config

    overrides = [
        f"dataset.slice=0:{tasks}",
        "model.script=plan:gold",
        f"scaling.n_parallel={trajectories}",
        f"scaling.max_concurrent_sandboxes={trajectories}",
        f"scaling.max_concurrent_tasks={slots}",
        "scaling.grade=none",
        "verifiers.enabled=[]",
        "selection.selector=majority",
        f"runs_dir={runs}",
    ]
    if executor == "ray":
        overrides += ["scaling.executor=ray", f"scaling.ray.address={address}"]
    return load_config("scripted", overrides)


def run_batch(cfg, run_id: str) -> float:
    from swescale.scaling.launcher import launch

    started = time.perf_counter()
    result = launch(cfg, run_id=run_id, live=False)
    elapsed = time.perf_counter() - started
    statuses = {r.get("status") for r in result.results.values()}
    if statuses != {"done"} or result.interrupted:
        raise SystemExit(f"{run_id}: the batch did not complete: {result.results}")
    return elapsed


def call_latencies(ray, root: Path, calls: int = 50) -> tuple[float, float]:
    """Median seconds of an empty Ray task, and of a call to a RunStore actor."""
    from swescale.config import load_config
    from swescale.record.run import RunDir
    from swescale.scaling.cluster.store import RunStore

    @ray.remote(num_cpus=0)
    def empty() -> None:
        return None

    ray.get(empty.remote())  # a worker is ready
    task_times = []
    for _ in range(calls):
        start = time.perf_counter()
        ray.get(empty.remote())
        task_times.append(time.perf_counter() - start)
    rundir = RunDir.open(root, "latency", load_config("scripted"))
    store = ray.remote(RunStore).options(num_cpus=0).remote(str(rundir.root))
    ray.get(store.ping.remote())
    store_times = []
    for _ in range(calls):
        start = time.perf_counter()
        ray.get(store.sync.remote("t", "a", [], [], []))
        store_times.append(time.perf_counter() - start)
    ray.kill(store)
    return statistics.median(task_times), statistics.median(store_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--trajectories", type=int, default=2)
    parser.add_argument("--slots", type=int, default=2, help="tasks at a time, both executors")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    try:
        import ray
        from ray.cluster_utils import Cluster
    except ImportError:
        raise SystemExit("needs the ray extra: pip install -e '.[ray]'") from None

    from swescale.sandbox import docker_client
    from swescale.scaling.stages import ImageProvider
    from swescale.swebench.datasets import load_tasks

    client = docker_client()
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        root = Path(tmp)
        warm = batch_config(root / "warm", args.tasks, 1, args.slots, "local")
        provider = ImageProvider(client, warm)
        tasks = load_tasks(warm.dataset)
        provider.prepare(tasks)
        for task in tasks:
            provider(task)  # images built once, outside the measurement
        cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 0,
                "object_store_memory": OBJECT_STORE,
                "include_dashboard": False,
            },
        )
        per_node = max(args.slots // 2, 1)
        for _ in range(2):
            cluster.add_node(
                num_cpus=per_node, resources={"docker": per_node}, object_store_memory=OBJECT_STORE
            )
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            # Warm-up on both: page cache, worker processes, image layers.
            run_batch(batch_config(root / "w", args.tasks, 1, args.slots, "local"), "warm-local")
            run_batch(
                batch_config(root / "w", args.tasks, 1, args.slots, "ray", cluster.address),
                "warm-ray",
            )
            times: dict[str, list[float]] = {"local": [], "ray": []}
            for repeat in range(args.repeats):
                for executor in ("local", "ray"):
                    cfg = batch_config(
                        root / executor,
                        args.tasks,
                        args.trajectories,
                        args.slots,
                        executor,
                        cluster.address,
                    )
                    times[executor].append(run_batch(cfg, f"{executor}-{repeat}"))
            empty_task, store_call = call_latencies(ray, root / "latency")
        finally:
            ray.shutdown()
            cluster.shutdown()

    local = statistics.median(times["local"])
    on_ray = statistics.median(times["ray"])
    n_traj = args.tasks * args.trajectories
    per_task_local = local / args.tasks
    per_traj_local = local / n_traj
    print(
        f"{args.tasks} mini tasks x {args.trajectories} trajectories, {args.slots} tasks at a "
        f"time, {args.repeats} repeat(s); Ray: 2 Docker nodes of {per_node} slot(s) on this machine"
    )
    print(f"{'':<34} {'local':>9} {'ray':>9} {'ray/local':>10}")
    print(f"{'batch wall (s)':<34} {local:>9.2f} {on_ray:>9.2f} {on_ray / local:>9.2f}x")
    over_task = (on_ray - local) / args.tasks
    over_traj = (on_ray - local) / n_traj
    print(
        f"{'overhead per task (s)':<34} {'':>9} {over_task:>9.2f} "
        f"{over_task / per_task_local:>9.2f}x of a local task ({per_task_local:.2f} s)"
    )
    print(
        f"{'overhead per trajectory (s)':<34} {'':>9} {over_traj:>9.2f} "
        f"{over_traj / per_traj_local:>9.2f}x of a local trajectory ({per_traj_local:.2f} s)"
    )
    print(
        f"{'empty Ray task (ms)':<34} {'':>9} {empty_task * 1000:>9.2f} "
        f"{empty_task / per_traj_local:>9.4f}x of a trajectory"
    )
    print(
        f"{'store actor call (ms)':<34} {'':>9} {store_call * 1000:>9.2f} "
        f"{store_call / per_traj_local:>9.4f}x of a trajectory"
    )


if __name__ == "__main__":
    main()
