"""The judge against the tiny real model over the OpenAI wire (llama.cpp server)."""

from __future__ import annotations

import pytest
from conftest_llm import llama_model_config, llama_server  # noqa: F401

from swescale.types import Candidate, Task
from swescale.verifiers.judge import JudgeVerifier

pytestmark = pytest.mark.llm


def test_judge_reads_real_logprobs(llama_model_config):  # noqa: F811
    from swescale.agent.models import build_model

    model = build_model(llama_model_config)
    task = Task(id="t", repo="o/r", base_commit="x", problem_statement="add(2, 3) returns -1")
    cands = [
        Candidate(
            id="c1",
            task_id="t",
            patch="--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n"
            "-    return a - b\n+    return a + b\n",
        )
    ]
    verdict = JudgeVerifier(model, samples=2, max_tokens=8).verify(task, cands)["c1"]
    assert 0.0 <= verdict.score <= 1.0
    assert len(verdict.details["samples"]) == 2 and verdict.cost.tokens_in > 0
    # Whatever the small model says, the reading is named: logprobs, text or garbage.
    assert verdict.details["method"] in ("logprobs", "text", "garbage", "mixed")
