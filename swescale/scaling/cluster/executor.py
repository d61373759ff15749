"""The Ray executor: a batch's tasks as Ray tasks on the cluster's Docker nodes.

The driver (the process of ``swescale run``) connects to the cluster, starts two small
actors pinned to its own node -- the :class:`RunStore` (run directory, ledger, stop flag)
and, for served models, the :class:`LeastLoaded` endpoint counter -- and submits one Ray
task per swescale task, asking for ``scaling.ray.resources_per_task`` (by default one
``docker`` slot: only nodes that declare a Docker engine get tasks). Each runs the local
batch runner's ``run_task`` on its node (:mod:`~swescale.scaling.cluster.worker`).

Semantics are the local executor's:

- resume: tasks with a result are not submitted; a task's trajectories resume from the
  records in the run directory, wherever the task runs next;
- budget: every node charges the one ledger on the driver, so caps hold for the run;
- failure isolation: a task that fails is recorded and the batch goes on; a task whose
  node or worker dies is retried by Ray on another node (``max_task_retries``) and
  resumes from what its first node shipped -- nothing recorded is done twice, because an
  attempt that was superseded can no longer write;
- containers: each Docker node is reaped of containers whose owner process is provably
  gone at the start and the end of the run and when the node first appears (a node that
  comes back after a crash); a live owner's are never touched;
- the cluster: the driver names the cluster it joined (address, Ray version, the nodes
  that can run a task) in the terminal and ``run.json``, and refuses one of another Ray
  version or one where no node offers a task's resources.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import time
from collections.abc import Callable, Iterator
from typing import Any

from swescale.config import RunConfig
from swescale.record.run import RunDir
from swescale.scaling.batch import SAVE_INTERVAL, BatchResult, versions
from swescale.scaling.cluster.node import replay_events
from swescale.scaling.cluster.store import RunStore
from swescale.scaling.cluster.worker import NodeJob, reap_dead_owners, run_task_on_node
from swescale.scaling.progress import NullProgress, ProgressSink
from swescale.types import Task

log = logging.getLogger(__name__)

# Seconds the driver waits for running tasks to stop by themselves after Ctrl-C.
STOP_GRACE = 60.0


class ClusterError(RuntimeError):
    """The cluster cannot run this batch (no Ray, no cluster, no Docker node); says why."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ClusterError(
            "scaling.executor=ray needs Ray: pip install 'swescale[ray]' (on the driver and "
            "on every node)"
        ) from exc
    return ray


class RayStore:
    """A :class:`~swescale.scaling.cluster.node.StoreClient` over the RunStore actor."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def call(self, method: str, *args: Any) -> Any:
        import ray

        return ray.get(getattr(self.handle, method).remote(*args))


class ActorMethod:
    """A picklable callable for one actor method (``wait=False``: fire and forget)."""

    def __init__(self, handle: Any, method: str, wait: bool = True) -> None:
        self.handle = handle
        self.method = method
        self.wait = wait

    def __call__(self, *args: Any) -> Any:
        import ray

        ref = getattr(self.handle, self.method).remote(*args)
        return ray.get(ref) if self.wait else None


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast when nothing listens at a ``host:port`` head address (Ray itself retries
    for minutes before it gives up)."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and other forms Ray resolves itself
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ClusterError(
            f"no Ray head node answers at {address} ({exc}); start one with "
            "`ray start --head --port=6379` there, or fix scaling.ray.address"
        ) from exc


@contextlib.contextmanager
def connected(cfg: RunConfig) -> Iterator[Any]:
    """Ray, connected as ``scaling.ray`` says (kept as is when already connected, e.g. by
    a test or an enclosing program); disconnected at the end when connected here."""
    ray = import_ray()
    rcfg = cfg.scaling.ray
    if ray.is_initialized():
        yield ray
        return
    runtime_env = {"env_vars": dict(rcfg.env_vars)} if rcfg.env_vars else None
    try:
        if rcfg.address == "local":
            slots = rcfg.local_slots or cfg.scaling.max_concurrent_tasks
            ray.init(
                num_cpus=slots,
                resources={"docker": float(slots)},
                object_store_memory=rcfg.object_store_memory,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env=runtime_env,
            )
        else:
            check_reachable(rcfg.address)
            ray.init(address=rcfg.address, log_to_driver=False, runtime_env=runtime_env)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        with contextlib.suppress(Exception):
            ray.shutdown()  # whatever part of the connection was made
        if "Version mismatch" in str(exc):
            # Ray compares this process with the cluster's metadata when it connects.
            raise ClusterError(
                f"refused the Ray cluster at {rcfg.address!r}: its Ray or Python version "
                f"differs from this driver's (Ray {ray.__version__}, Python "
                f"{platform.python_version()}): {' '.join(str(exc).split())}. The driver and "
                "every node need the same versions; install them here, or point "
                "scaling.ray.address at a cluster started with this Ray"
            ) from exc
        raise ClusterError(
            f"cannot connect to the Ray cluster at {rcfg.address!r}: {exc}. Start one with "
            "`ray start --head` (see docs/cluster.md), or use scaling.ray.address=local"
        ) from exc
    try:
        yield ray
    finally:
        ray.shutdown()


def describe_cluster(ray: Any, cfg: RunConfig) -> dict[str, Any]:
    """The cluster this driver joined, for the terminal and ``run.json``: its address,
    Ray and Python versions (a connected driver matches the cluster: Ray refuses it
    otherwise), and the alive nodes that can run a task, with their task resources."""
    nodes = [
        {
            "address": n.get("NodeManagerAddress", ""),
            "hostname": n.get("NodeManagerHostname", ""),
            **{k: (n.get("Resources") or {}).get(k, 0) for k in task_resources(cfg)},
        }
        for n in docker_nodes(ray, cfg)
    ]
    alive = sum(1 for n in ray.nodes() if n.get("Alive"))
    return {
        "executor": "ray",
        "address": ray.get_runtime_context().gcs_address,
        "asked": cfg.scaling.ray.address,
        "ray_version": ray.__version__,
        "python_version": platform.python_version(),
        "alive_nodes": alive,
        "nodes": nodes,
        "resources_per_task": dict(cfg.scaling.ray.resources_per_task),
    }


def cluster_line(info: dict[str, Any]) -> str:
    """``joined Ray cluster at 10.0.0.1:6379 (asked: auto; Ray 2.60.0, Python 3.11.2): 2
    of 3 alive nodes run tasks: 10.0.0.2 (docker 4), 10.0.0.3 (docker 8)``"""
    shown = ", ".join(
        n["address"]
        + " ("
        + ", ".join(f"{k} {v:g}" for k, v in n.items() if k not in ("address", "hostname"))
        + ")"
        for n in info["nodes"]
    )
    return (
        f"joined Ray cluster at {info['address']} (asked: {info['asked']}; Ray "
        f"{info['ray_version']}, Python {info['python_version']}): {len(info['nodes'])} of "
        f"{info['alive_nodes']} alive nodes run tasks: {shown or 'none'}"
    )


def task_resources(cfg: RunConfig) -> dict[str, float]:
    """What one task asks of a node (custom resources, and CPUs when it asks for any)."""
    rcfg = cfg.scaling.ray
    needed = dict(rcfg.resources_per_task)
    if rcfg.num_cpus_per_task:
        needed["CPU"] = rcfg.num_cpus_per_task
    return needed


def no_task_node_error(ray: Any, cfg: RunConfig) -> ClusterError:
    """Why no node can run a task: what a task asks, what each node offers, and how to
    declare Docker hosts (the single-machine recipe in docs/cluster.md)."""
    needed = task_resources(cfg)
    offered = "; ".join(
        f"{n.get('NodeManagerAddress', '?')}: "
        + (
            ", ".join(
                f"{k} {v:g}"
                for k, v in sorted((n.get("Resources") or {}).items())
                if not k.startswith("node:") and "memory" not in k
            )
            or "nothing"
        )
        for n in ray.nodes()
        if n.get("Alive")
    )
    asked = ", ".join(f"{k} {v:g}" for k, v in needed.items())
    return ClusterError(
        f"no alive node of the Ray cluster at {ray.get_runtime_context().gcs_address} offers "
        f"what a task asks for ({asked}); the nodes offer: {offered or 'no alive node'}. "
        "Nodes with a Docker engine declare task slots as the custom resource 'docker': "
        "`ray start --address=<head>:6379 --resources='{\"docker\": 4}'`; on one machine, "
        "`ray start --head --resources='{\"docker\": 2}'` or scaling.ray.address=local "
        '(docs/cluster.md, "On one machine")'
    )


def docker_nodes(ray: Any, cfg: RunConfig) -> list[dict[str, Any]]:
    """Alive nodes that can run a task (they offer every resource a task asks for)."""
    needed = task_resources(cfg)
    nodes = []
    for node in ray.nodes():
        offered = node.get("Resources") or {}
        if node.get("Alive") and all(offered.get(k, 0) >= v for k, v in needed.items()):
            nodes.append(node)
    return nodes


def _reap_here(run_id: str | None) -> tuple[str, list[str]]:
    from swescale.sandbox import docker_client

    return run_id or "", reap_dead_owners(docker_client(), run_id)


def reap_nodes(ray: Any, nodes: list[dict[str, Any]], run_id: str | None) -> dict[str, list[str]]:
    """Run the container reaper on each node: containers and networks whose owner process
    is provably gone (of ``run_id`` only, when given); node id -> what was removed."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    reaper = ray.remote(_reap_here)
    refs = {
        node["NodeID"]: reaper.options(
            num_cpus=0,
            max_retries=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
        ).remote(run_id)
        for node in nodes
    }
    removed: dict[str, list[str]] = {}
    for node_id, ref in refs.items():
        try:
            _, names = ray.get(ref, timeout=120)
        except Exception as exc:  # noqa: BLE001 - a node that cannot reap is reported, not fatal
            log.warning("reaper on node %s failed: %s", node_id[:12], exc)
            continue
        if names:
            removed[node_id] = names
    return removed


def _run_task_entry(job: NodeJob, task: Task) -> dict[str, Any]:
    import ray

    return run_task_on_node(job, task, node_id=ray.get_runtime_context().get_node_id())


class RayExecutor:
    """Runs a batch on a Ray cluster; see the module docstring."""

    def __init__(
        self,
        cfg: RunConfig,
        rundir: RunDir,
        *,
        progress: ProgressSink | None = None,
        endpoints: list[str] | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.rundir = rundir
        self.progress = progress or NullProgress()
        self.say = say or log.info
        self.endpoints = list(endpoints or [])
        self.store: RayStore | None = None
        self._actors: list[Any] = []
        self._seen_nodes: set[str] = set()

    def run(self, tasks: list[Task]) -> BatchResult:
        with connected(self.cfg) as ray:
            try:
                return self._run(ray, tasks)
            finally:
                for actor in self._actors:
                    with contextlib.suppress(Exception):
                        ray.kill(actor)
                self._actors = []

    # -- set-up -------------------------------------------------------------------------

    def _start_actors(self, ray: Any) -> NodeJob:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        cfg = self.cfg
        # Pinned to the driver's node: the run directory is on this node's disk.
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        prices = {cfg.model.name: (cfg.model.price_in, cfg.model.price_out)}
        store = (
            ray.remote(RunStore)
            .options(num_cpus=0, max_concurrency=64, scheduling_strategy=here)
            .remote(str(self.rundir.root.resolve()), cfg.budget, prices)
        )
        self._actors.append(store)
        self.store = RayStore(store)
        balancer = None
        if self.endpoints and cfg.model.kind != "scripted":
            from swescale.scaling.cluster.balance import LeastLoaded

            counter = (
                ray.remote(LeastLoaded)
                .options(num_cpus=0, max_concurrency=64, scheduling_strategy=here)
                .remote(len(self.endpoints))
            )
            self._actors.append(counter)
            balancer = (ActorMethod(counter, "acquire"), ActorMethod(counter, "release", False))
        return NodeJob(
            cfg=cfg,
            run_id=self.rundir.run_id,
            run_root=str(self.rundir.root.resolve()),
            store=self.store,
            endpoints=self.endpoints,
            balancer=balancer,
        )

    def _reap(self, ray: Any, nodes: list[dict[str, Any]], run_id: str | None, when: str) -> None:
        removed = reap_nodes(ray, nodes, run_id)
        if removed and self.store is not None:
            entries = [
                {"node": node_id, "when": when, "containers": names}
                for node_id, names in removed.items()
            ]
            self.store.call(
                "update_run_json", lambda r: r.setdefault("reaped_on_nodes", []).extend(entries)
            )

    def _new_nodes(self, ray: Any) -> list[dict[str, Any]]:
        fresh = [n for n in docker_nodes(ray, self.cfg) if n["NodeID"] not in self._seen_nodes]
        self._seen_nodes.update(n["NodeID"] for n in fresh)
        return fresh

    # -- the run ------------------------------------------------------------------------

    def _run(self, ray: Any, tasks: list[Task]) -> BatchResult:
        rcfg = self.cfg.scaling.ray
        nodes = self._new_nodes(ray)
        if not nodes:
            raise no_task_node_error(ray, self.cfg)
        # Never a silent join (address "auto" takes whatever cluster this host is in).
        info = describe_cluster(ray, self.cfg)
        self.say(cluster_line(info))
        job = self._start_actors(ray)
        assert self.store is not None
        self.store.call(
            "update_run_json",
            lambda r: r.update(versions=versions(), total_tasks=len(tasks), cluster=info),
        )
        # What a killed session left on the nodes (its workers are gone); a live session's
        # containers, even of this run, are kept.
        self._reap(ray, nodes, None, "start")
        result = BatchResult(self.rundir)
        remote = ray.remote(_run_task_entry).options(
            num_cpus=rcfg.num_cpus_per_task,
            resources=dict(rcfg.resources_per_task),
            max_retries=rcfg.max_task_retries,
            retry_exceptions=False,
            scheduling_strategy="SPREAD" if rcfg.placement == "spread" else "DEFAULT",
        )
        job_ref = ray.put(job)
        pending: dict[Any, Task] = {}
        for task in tasks:
            existing = self.rundir.result(task.id)
            if existing is not None and existing.get("status") == "done":
                self.progress.task_finished(task.id, "reused")
                result.results[task.id] = existing
                continue
            pending[remote.remote(job_ref, task)] = task
        try:
            self._wait(ray, pending, result)
        except KeyboardInterrupt:
            result.interrupted = True
            self._stop_all(ray, pending, result)
            raise
        finally:
            self._finish(ray)
        if self.store is not None and self.store.call("stopping"):
            result.interrupted = True
        return result

    def _wait(self, ray: Any, pending: dict[Any, Task], result: BatchResult) -> None:
        consecutive_failures = 0
        limit = self.cfg.scaling.max_consecutive_failures
        last_save = time.monotonic()
        assert self.store is not None
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in done:
                task = pending.pop(ref)
                outcome = self._outcome(ray, ref, task)
                result.results[task.id] = outcome
                failed = outcome.get("status") == "failed"
                consecutive_failures = consecutive_failures + 1 if failed else 0
                if limit and consecutive_failures >= limit:
                    log.error("%d tasks failed in a row; stopping the batch", limit)
                    self.store.call("stop")
            replay_events(self.store.call("drain_events"), self.progress)
            if time.monotonic() - last_save >= SAVE_INTERVAL:
                last_save = time.monotonic()
                self.store.handle.save_ledger.remote()
                fresh = self._new_nodes(ray)
                if fresh:
                    # A node that joined (or came back): remove what dead workers left.
                    self._reap(ray, fresh, None, "node joined")

    def _outcome(self, ray: Any, ref: Any, task: Task) -> dict[str, Any]:
        """The task's result record; a task Ray could not finish (its retries used up, an
        unexpected error on the node) is recorded as failed."""
        assert self.store is not None
        try:
            return ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            return {"task_id": task.id, "status": "interrupted"}
        except ray.exceptions.RayError as exc:
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:500]}"
            log.warning("task %s failed on the cluster: %s", task.id, reason)
            self.store.call("record_failure", task.id, "cluster", reason, {})
            self.store.call(
                "set_task_state",
                task.id,
                {"status": "failed", "stage": "cluster", "reason": reason},
            )
            self.progress.task_finished(task.id, "failed")
            return {"task_id": task.id, "status": "failed", "stage": "cluster", "reason": reason}

    def _stop_all(self, ray: Any, pending: dict[Any, Task], result: BatchResult) -> None:
        """Ctrl-C: tell every node to stop (trajectories stop at their next request and
        keep their records), wait a while for them, then cancel what is left."""
        assert self.store is not None
        self.store.call("stop")
        deadline = time.monotonic() + STOP_GRACE
        while pending and time.monotonic() < deadline:
            done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=1.0)
            for ref in done:
                task = pending.pop(ref)
                result.results[task.id] = self._outcome(ray, ref, task)
        for ref in pending:
            ray.cancel(ref, force=True)

    def _finish(self, ray: Any) -> None:
        """Last progress events and ledger; on every node, this run's containers whose
        owner is gone (workers of cancelled tasks are killed) removed."""
        if self.store is None:
            return
        with contextlib.suppress(Exception):
            replay_events(self.store.call("drain_events"), self.progress)
        with contextlib.suppress(Exception):
            self.store.call("save_ledger")
        nodes = docker_nodes(ray, self.cfg)
        self._reap(ray, nodes, self.rundir.run_id, "end")


def run_on_ray(
    cfg: RunConfig,
    rundir: RunDir,
    tasks: list[Task],
    *,
    progress: ProgressSink | None = None,
    endpoints: list[str] | None = None,
    say: Callable[[str], None] | None = None,
) -> BatchResult:
    """Run (or resume) the batch on the Ray cluster ``cfg.scaling.ray`` names; ``say``
    gets the line naming the cluster joined (default: the log)."""
    return RayExecutor(cfg, rundir, progress=progress, endpoints=endpoints, say=say).run(tasks)
