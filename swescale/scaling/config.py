"""Exploration and budget configuration."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
    temperatures: list[float] = Field(default_factory=list)
    # Trajectory i uses prompt_variants[i % len] (names of prompt templates); empty: the
    # agent config's variants, else the default prompt.
    prompt_variants: list[str] = Field(default_factory=list)
    # Stop sampling a task once this many trajectories agree on a normalized patch (0: off).
    early_stop_agree: int = Field(default=0, ge=0)
    # Branch from an archived trajectory instead of a fresh start with this probability.
    branch_probability: float = Field(default=0.0, ge=0.0, le=1.0)
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
