"""Exploration and budget configuration."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class RayConfig(BaseModel):
    """Where and how a run's tasks run on a Ray cluster (``scaling.executor: ray``).

    One Ray task per swescale task: its trajectories share the node's instance image and
    Docker engine (see docs/cluster.md for why this grain and what it costs).
    """

    model_config = ConfigDict(extra="forbid")

    # ``ray.init`` address: "auto" joins the cluster this host belongs to (``ray start``),
    # "host:port" a given head node, "local" starts a private one-node Ray for the run.
    address: str = "auto"
    # Ray resources one task holds while it runs. "docker" is a custom resource that
    # nodes with a Docker engine declare (``ray start --resources='{"docker": 8}'``): its
    # count per node is how many tasks that node runs at once.
    num_cpus_per_task: float = Field(default=1.0, ge=0.0)
    resources_per_task: dict[str, float] = Field(default_factory=lambda: {"docker": 1.0})
    # "pack": fill a node before the next (image reuse); "spread": across nodes first.
    placement: Literal["pack", "spread"] = "pack"
    # Where task records are written while a task runs: "driver" ships them to the run
    # directory on the driver's node as they are written; "shared" writes them in place
    # (runs_dir is the same shared path, e.g. NFS, on every node).
    storage: Literal["driver", "shared"] = "driver"
    # Seconds between shipments of new record lines and charges from a node to the driver.
    sync_interval: float = Field(default=0.5, gt=0.0, le=30.0)
    # Times a task is retried elsewhere after its node or worker died (Ray's max_retries).
    max_task_retries: int = Field(default=3, ge=0)
    # A registry ("host:port[/prefix]") the nodes share images through: the first node
    # that needs an image builds and pushes it, the others pull it. Empty: every node
    # builds what it lacks (content-addressed tags make the builds identical).
    registry: str = ""
    # For address "local": the private Ray's CPUs and "docker" slots (0: max_concurrent_tasks).
    local_slots: int = Field(default=0, ge=0)
    # Object store of a private Ray ("local"), bytes; records never go through it.
    object_store_memory: int = Field(default=200 * 1024 * 1024, ge=80 * 1024 * 1024)
    # Environment variables the worker processes get (Ray runtime_env env_vars).
    env_vars: dict[str, str] = Field(default_factory=dict)

    @field_validator("address")
    @classmethod
    def _no_client(cls, value: str) -> str:
        if value.startswith("ray://"):
            raise ValueError(
                "ray:// (Ray Client) addresses are not supported: the driver writes the run "
                "directory on its own node, so run `swescale run` on a cluster node (or "
                "through `ray job submit`) with address 'auto'"
            )
        return value


class ScalingConfig(BaseModel):
    """How many trajectories a task gets, how they differ, and how they run.

    A task gets ``rounds`` rounds of ``n_parallel`` trajectories each. Round r > 0 sees
    feedback on the best patches of the earlier rounds (EvoScale-style).
    """

    model_config = ConfigDict(extra="forbid")

    n_parallel: int = Field(default=2, ge=1)
    rounds: int = Field(default=1, ge=1)
    # Run-wide limits, shared by all tasks in flight.
    max_concurrent_sandboxes: int = Field(default=2, ge=1)
    max_concurrent_requests: int = Field(default=2, ge=1)
    max_concurrent_tasks: int = Field(default=1, ge=1)
    seed: int = 0
    # Trajectory i samples at temperatures[i % len]; empty: the model config's temperature.
    temperatures: list[Annotated[float, Field(ge=0.0, le=2.0, allow_inf_nan=False)]] = Field(
        default_factory=list
    )
    # Trajectory i uses prompt_variants[i % len] (names of prompt templates); empty: the
    # agent config's variants, else the default prompt.
    prompt_variants: list[str] = Field(default_factory=list)
    # Stop sampling a task once this many trajectories agree on a normalized patch (0: off).
    early_stop_agree: int = Field(default=0, ge=0)
    # Branch from an archived trajectory instead of a fresh start with this probability.
    branch_probability: float = Field(default=0.0, ge=0.0, le=1.0)
    # Other run directories (e.g. a `replay import` of another agent's trajectories)
    # whose trajectories of the same task join the archive branches are drawn from.
    archive_runs: list[str] = Field(default_factory=list)
    # How many of the best earlier patches round r > 0 sees in its prompt.
    feedback_top_k: int = Field(default=2, ge=0)
    # Longest patch text shown as feedback (characters); longer ones are cut.
    feedback_patch_chars: int = Field(default=4000, ge=200)
    # Run the enabled verifiers between rounds so the feedback can name failing tests.
    feedback_verify: bool = True
    # Grade with the task's own tests when labels are known: nothing, the selected patch,
    # or every candidate (gives pass@k and the resolve-rate curve in the report).
    grade: Literal["none", "selected", "all"] = "selected"
    # Stop the batch after this many task failures in a row (0: never); guards against a
    # broken engine turning a long batch into a long list of identical failures.
    max_consecutive_failures: int = Field(default=0, ge=0)
    # Where tasks run: this process (a thread pool) or a Ray cluster. Neither changes the
    # results, so neither is part of the config digest: a run started locally can be
    # resumed on a cluster and the other way round.
    executor: Literal["local", "ray"] = "local"
    ray: RayConfig = Field(default_factory=RayConfig)


class BudgetConfig(BaseModel):
    """Caps; zero means no cap. Task caps apply to each task; run caps to the whole run."""

    model_config = ConfigDict(extra="forbid")

    task_tokens: int = Field(default=0, ge=0)
    task_dollars: float = Field(default=0.0, ge=0.0)
    task_sandbox_seconds: float = Field(default=0.0, ge=0.0)
    task_model_seconds: float = Field(default=0.0, ge=0.0)
    run_tokens: int = Field(default=0, ge=0)
    run_dollars: float = Field(default=0.0, ge=0.0)
    run_sandbox_seconds: float = Field(default=0.0, ge=0.0)
    run_model_seconds: float = Field(default=0.0, ge=0.0)
    run_wall_seconds: float = Field(default=0.0, ge=0.0)
