"""The code a cluster node runs for one task: the local batch runner's ``run_task`` with
the node's Docker engine, images and model, and records shipped to the driver.

A worker process keeps its engine client, image provider and model between tasks. The
first task a process runs reaps containers whose owner process is gone on this host (a
worker that died, here or in a node that ran before on this host), so a node that comes
back after a crash leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swescale.config import RunConfig
from swescale.scaling.cluster.node import NodeSession, StoreClient
from swescale.scaling.cluster.store import StaleAttempt
from swescale.types import Task

log = logging.getLogger(__name__)


@dataclass
class NodeJob:
    """What every task of a run needs on a node (sent once per task; small)."""

    cfg: RunConfig
    run_id: str
    # The run directory on the driver's node (used as is with storage "shared").
    run_root: str
    store: Any  # a StoreClient
    # Model endpoints shared by all nodes (a managed server's URL, or model.endpoints).
    endpoints: list[str] = field(default_factory=list)
    balancer: Any = None  # (acquire, release) callables, or None


class _ProcessState:
    """Per worker process: built on first use, reused by later tasks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.client: Any = None
        self.reaped = False
        # Containers the first reap removed, reported to the run by the next task.
        self.unreported: list[str] = []
        self.images: dict[str, Any] = {}
        self.models: dict[tuple[str, tuple[str, ...]], Any] = {}

    def docker(self) -> Any:
        with self.lock:
            if self.client is None:
                from swescale.sandbox import docker_client

                self.client = docker_client()
            if not self.reaped:
                self.reaped = True
                self.unreported = reap_dead_owners(self.client)
            return self.client

    def take_unreported(self) -> list[str]:
        with self.lock:
            names, self.unreported = self.unreported, []
        return names

    def image_provider(self, cfg: RunConfig) -> Any:
        from swescale.scaling.cluster.images import NodeImages

        # Where images come from is not part of the digest: part of the key here.
        key = cfg.digest() + cfg.scaling.ray.registry + cfg.images.model_dump_json()
        with self.lock:
            if key not in self.images:
                self.images[key] = NodeImages(self.client, cfg, cfg.scaling.ray.registry)
            return self.images[key]

    def model(self, job: NodeJob) -> Any:
        """The node's shared model; None when trajectories get planned scripted models."""
        from swescale.scaling.scripted import PLANS

        cfg = job.cfg
        if cfg.model.kind == "scripted":
            if cfg.model.script in PLANS:
                return None
            key = (cfg.digest(), ())
            with self.lock:
                if key not in self.models:
                    from swescale.agent.models import build_model

                    self.models[key] = build_model(cfg.model)
                return self.models[key]
        endpoints = list(job.endpoints or cfg.model.endpoints)
        if not endpoints:
            raise RuntimeError(
                "model endpoints unknown on this node: set model.endpoints, or let the "
                "driver start the model server"
            )
        key = (cfg.digest(), tuple(endpoints))
        with self.lock:
            if key not in self.models:
                from swescale.agent.models.openai_client import OpenAIModel
                from swescale.scaling.cluster.balance import BalancedModel

                model_cfg = cfg.model.model_copy(update={"endpoints": endpoints})
                if job.balancer is not None:
                    acquire, release = job.balancer
                    self.models[key] = BalancedModel(model_cfg, endpoints, acquire, release)
                else:
                    self.models[key] = OpenAIModel(model_cfg, endpoints=endpoints)
            return self.models[key]


_STATE = _ProcessState()


def reap_dead_owners(client: Any, run_id: str | None = None) -> list[str]:
    """Remove containers and networks on this engine whose owner process is provably
    gone (of ``run_id`` only, when given); returns their descriptions."""
    from swescale.sandbox import reap

    removed = [r.describe() for r in reap(client, run_id=run_id)]
    if removed:
        log.info("reaped on %s: %s", node_name(), "; ".join(removed))
    return removed


def node_name() -> str:
    return socket.gethostname()


def run_task_on_node(job: NodeJob, task: Task, node_id: str = "") -> dict[str, Any]:
    """Run one task here; returns its result record (as ``BatchRunner.run_task``). A task
    that cannot start on this node (no engine, no model) is a failed task, recorded on
    the driver like any other failure."""
    from swescale.scaling.batch import BatchRunner

    cfg = job.cfg
    store: StoreClient = job.store
    attempt = f"{node_name()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    shared = cfg.scaling.ray.storage == "shared"
    scratch = None if shared else Path(tempfile.mkdtemp(prefix="swescale-node-"))
    root = Path(job.run_root) if shared else scratch / job.run_id  # type: ignore[operator]
    runner_box: dict[str, Any] = {}

    def stop_runner() -> None:
        runner = runner_box.get("runner")
        if runner is not None:
            runner.stop.set()

    session = NodeSession(
        store,
        task.id,
        attempt,
        budget=cfg.budget,
        prices={cfg.model.name: (cfg.model.price_in, cfg.model.price_out)},
        root=root,
        mirror=not shared,
        interval=cfg.scaling.ray.sync_interval,
        on_stop=stop_runner,
        node=node_id or node_name(),
    )
    try:
        with session:
            try:
                client = _STATE.docker()
                images = _STATE.image_provider(cfg)
                model = _STATE.model(job)
            except Exception as exc:  # noqa: BLE001 - a node that cannot run is a failed task
                reason = f"{type(exc).__name__}: {exc}"
                session.rundir.record_failure(task.id, "node", reason, node=session.node)
                session.rundir.set_task_state(task.id, status="failed", stage="node", reason=reason)
                session.progress.task_finished(task.id, "failed")
                return {"task_id": task.id, "status": "failed", "stage": "node", "reason": reason}
            reaped = _STATE.take_unreported()
            if reaped:
                entry = {"node": session.node, "when": "worker start", "containers": reaped}
                session.rundir.update_run_json(
                    lambda r: r.setdefault("reaped_on_nodes", []).append(entry)
                )
            runner = BatchRunner(
                cfg,
                session.rundir,
                model=model,
                client=client,
                ledger=session.ledger,  # type: ignore[arg-type]
                progress=session.progress,
                image_for=images,
            )
            runner_box["runner"] = runner
            if session.stopping:
                runner.stop.set()
            record = runner.run_task(task)
            if task.id in images.how:
                session.rundir.set_task_state(task.id, image_source=images.how[task.id])
            return record
    except StaleAttempt:
        return {"task_id": task.id, "status": "superseded"}
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
