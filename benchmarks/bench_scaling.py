"""Throughput of 1, 2, 4 and 8 concurrent trajectories, as ratios to 1, in one run.

The scripted model plays the same planned trajectory (look, apply the gold fix, submit)
8 times on one mini-benchmark task, in real Docker sandboxes through the real agent graph
and the real run record; only ``scaling.max_concurrent_sandboxes`` changes between
measurements. Model time is nil, so this measures what the engine adds around sandboxes:
container start-up, the persistent shell, snapshots and the trajectory record.

    .venv/bin/python benchmarks/bench_scaling.py [--trajectories 8] [--repeats 1]

Prints trajectories per second relative to concurrency 1 (absolute times are shown only
beside their ratio; on a shared 2-core machine they mean little alone).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def measure(concurrency: int, trajectories: int, task, image, client, root: Path) -> float:
    from swescale.config import load_config
    from swescale.record.run import RunDir
    from swescale.scaling.batch import BatchRunner

    cfg = load_config(
        "scripted",
        [
            "model.script=plan:gold",
            f"scaling.n_parallel={trajectories}",
            f"scaling.max_concurrent_sandboxes={concurrency}",
            f"scaling.max_concurrent_requests={concurrency}",
            "scaling.grade=none",
            "verifiers.enabled=[]",
            "selection.selector=majority",
        ],
    )
    run_id = f"bench-c{concurrency}-{time.monotonic_ns()}"
    rundir = RunDir.open(root, run_id, cfg)
    runner = BatchRunner(cfg, rundir, client=client, image_for=lambda _task: image)
    started = time.perf_counter()
    result = runner.run([task])
    elapsed = time.perf_counter() - started
    record = result.results[task.id]
    if record.get("status") != "done" or record["trajectories"].get("ran") != trajectories:
        raise SystemExit(f"concurrency {concurrency}: run did not complete: {record}")
    return trajectories / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trajectories", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--levels", default="1,2,4,8")
    args = parser.parse_args()

    from swescale.config import load_config
    from swescale.sandbox import docker_client, remove_owned
    from swescale.scaling.stages import ImageProvider
    from swescale.swebench.datasets import load_tasks

    client = docker_client()
    cfg = load_config("scripted", ["dataset.slice=0:1"])
    (task,) = load_tasks(cfg.dataset)
    provider = ImageProvider(client, cfg)
    provider.prepare([task])
    image = provider(task)  # built once, outside the measurement
    levels = [int(x) for x in args.levels.split(",")]
    rates: dict[int, list[float]] = {level: [] for level in levels}
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        measure(1, 1, task, image, client, Path(tmp))  # warm-up: page cache, image layers
        for _ in range(args.repeats):
            for level in levels:  # interleaved, so drift in machine load hits every level
                rates[level].append(
                    measure(level, args.trajectories, task, image, client, Path(tmp))
                )
        for entry in client.api.containers(all=True, filters={"label": "swescale.run"}):
            run = entry.get("Labels", {}).get("swescale.run", "")
            if run.startswith("bench-c"):
                remove_owned(client, run)
    base = statistics.median(rates[levels[0]])
    print(
        f"task {task.id}, {args.trajectories} trajectories per measurement, {args.repeats} repeat(s)"
    )
    print(f"{'concurrent':>10} {'traj/s':>8} {'ratio vs ' + str(levels[0]):>12}")
    for level in levels:
        rate = statistics.median(rates[level])
        print(f"{level:>10} {rate:>8.3f} {rate / base:>12.2f}x")


if __name__ == "__main__":
    main()
