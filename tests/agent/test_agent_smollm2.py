"""The tiny real model drives the real agent on a real sandbox: whatever it emits, every
trajectory ends with a known exit status and a complete record."""

from __future__ import annotations

import pytest

from swescale.agent.config import AgentConfig
from swescale.agent.graph import EXIT_STATUSES, run_agent
from swescale.agent.models import build_model
from swescale.agent.record import TrajectoryRecorder, load_trajectory, make_header
from swescale.sandbox import BlobStore
from swescale.types import Task

pytestmark = [pytest.mark.llm, pytest.mark.docker]

TASK = Task(
    id="calc__1",
    repo="demo/calc",
    base_commit="",
    problem_statement="add(2, 3) in calc.py returns -1 instead of 5.",
)


@pytest.mark.parametrize(
    "tool_mode, variant, seed",
    [("text", "agent_minimal", 1), ("native", "agent_minimal", 2)],
)
def test_smollm2_trajectories_end_cleanly(
    llama_model_config, fresh_repo_sandbox, tmp_path, tool_mode, variant, seed
):
    model = build_model(llama_model_config.model_copy(update={"max_tokens": 48}))
    cfg = AgentConfig(step_limit=4, observation_limit=800, seed=seed, temperature=0.8)
    path = tmp_path / "t.jsonl"
    with TrajectoryRecorder(
        path, make_header("t", TASK.id, seed=seed, prompt_variant=variant)
    ) as rec:
        result = run_agent(
            TASK,
            fresh_repo_sandbox(),
            model,
            cfg,
            recorder=rec,
            blob_store=BlobStore(tmp_path / "blobs"),
            prompt_variant=variant,
            tool_mode=tool_mode,
        )
    assert result.exit_status in EXIT_STATUSES
    assert result.exit_status != "model_error", result.error
    assert 1 <= len(result.steps) <= 4
    assert result.totals.tokens_in > 0 and result.totals.tokens_out > 0
    record = load_trajectory(path)
    assert record.footer["exit_status"] == result.exit_status
    assert len(record.steps) == len(result.steps)
    assert all(step.state is not None for step in record.steps)
