"""A small real Ray cluster for the executor tests: a head node that runs no task (it
hosts the driver and the run's actors, as a head node does in production) and two Docker
nodes with one task slot each.

Every "node" is a set of Ray processes on this machine and all of them use this
machine's single Docker engine: that stands for hosts that each have their own engine
(images built by one node are present for the others here, which a real cluster gets
from the registry or by building). Sizes are kept small for a shared 2-core machine: no
CPU for tasks on the head, 100 MB object stores, no dashboard.
"""

from __future__ import annotations

from typing import Any

OBJECT_STORE = 100 * 1024 * 1024
# Faster detection of a dead node than the production defaults (30 s or more).
SYSTEM_CONFIG = {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}


def docker_node_args() -> dict[str, Any]:
    return {"num_cpus": 1, "resources": {"docker": 1}, "object_store_memory": OBJECT_STORE}


def start_cluster(docker_nodes: int = 2) -> Any:
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "object_store_memory": OBJECT_STORE,
            "include_dashboard": False,
            "_system_config": SYSTEM_CONFIG,
        },
    )
    for _ in range(docker_nodes):
        cluster.add_node(**docker_node_args())
    cluster.wait_for_nodes()
    return cluster


def normalized_records(run_dir: Any) -> dict[str, Any]:
    """Every record of a run that must not depend on where it ran: trajectories,
    candidates, verdicts, labels, grades, selections, results and predictions, with
    times, durations and sandbox seconds (which vary run to run on any executor) left
    out, and durations in test logs masked."""
    import json
    import re
    from pathlib import Path

    # Test logs (grading) print how long the tests took.
    durations = re.compile(rb"\b\d+(\.\d+)?s\b")

    volatile = {
        "started_at",
        "finished_at",
        "seconds",
        "sandbox_seconds",
        "model_seconds",
        "time",
        "log_path",
    }

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in volatile}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    root = Path(run_dir)
    records: dict[str, Any] = {}
    for path in sorted(root.glob("*/**/*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        rel = path.relative_to(root).as_posix()
        if path.suffix == ".jsonl":
            lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
            records[rel] = clean(lines)
        elif path.suffix == ".json":
            records[rel] = clean(json.loads(path.read_text()))
        elif path.suffix == ".log":
            records[rel] = durations.sub(b"<seconds>", path.read_bytes())
        else:
            records[rel] = path.read_bytes()
    predictions = root / "predictions.jsonl"
    lines = [json.loads(x) for x in predictions.read_text().splitlines() if x.strip()]
    records["predictions.jsonl"] = sorted(lines, key=lambda p: p["instance_id"])
    return records
