"""The tiny real model drives the real agent on a real sandbox: whatever it emits, every
trajectory ends with a known exit status and a complete record."""

from __future__ import annotations

import json

import pytest

from swescale.agent.config import AgentConfig
from swescale.agent.graph import EXIT_STATUSES, run_agent
from swescale.agent.models import build_model
from swescale.record import BlobStore
from swescale.record.trajectory import TrajectoryRecorder, load_trajectory, make_header
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


def test_smollm2_constrained_every_action_parses_and_fits_its_tool_schema(
    llama_model_config, fresh_repo_sandbox, tmp_path
):
    """With constrained decoding (llama.cpp: a JSON schema of the union of the tools), the
    tiny model cannot send a malformed turn: every recorded action is a known tool with
    arguments valid against that tool's schema, and no turn is a format error."""
    import jsonschema

    from swescale.agent.tools import TOOL_SCHEMAS, is_format_error

    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in TOOL_SCHEMAS}
    model = build_model(
        llama_model_config.model_copy(update={"max_tokens": 96, "constrained": "auto"})
    )
    assert model.decoding == "json_schema (llama-cpp-python)"
    cfg = AgentConfig(step_limit=5, observation_limit=800, seed=7, temperature=0.9)
    path = tmp_path / "t.jsonl"
    header = make_header("t", TASK.id, seed=7, decoding=model.decoding)
    with TrajectoryRecorder(path, header) as rec:
        result = run_agent(
            TASK,
            fresh_repo_sandbox(),
            model,
            cfg,
            recorder=rec,
            blob_store=BlobStore(tmp_path / "blobs"),
            prompt_variant="agent_minimal",
            tool_mode="native",
        )
    assert result.exit_status in ("submitted", "step_limit", "budget"), result.error
    record = load_trajectory(path)
    assert record.header["decoding"] == "json_schema (llama-cpp-python)"
    assert len(record.steps) == len(result.steps) >= 1
    for step in record.steps:
        assert not any(is_format_error(o) for o in step.observations), step
        assert len(step.actions) == 1
        calls = step.message["tool_calls"]
        assert len(calls) == 1 and calls[0]["function"]["name"] in schemas
        arguments = json.loads(calls[0]["function"]["arguments"])
        jsonschema.validate(arguments, schemas[calls[0]["function"]["name"]])
        assert step.actions[0].args == arguments
