"""The execution-free judge: P(YES) from logprobs, text fallback, garbage."""

from __future__ import annotations

import math

import pytest

from swescale.agent.models.base import Completion
from swescale.agent.models.scripted import ScriptedModel
from swescale.types import Action, Candidate, Observation, Step, Task
from swescale.verifiers.judge import (
    JudgeVerifier,
    condense_trajectory,
    score_completions,
    text_answer,
    yes_probability,
)

TASK = Task(id="t", repo="o/r", base_commit="abc", problem_statement="parse() drops the last item")


def lp(token, p, tops=()):
    return {
        "token": token,
        "logprob": math.log(p),
        "top_logprobs": [{"token": t, "logprob": math.log(q)} for t, q in tops],
    }


def test_yes_mass_is_normalized_over_case_and_space_variants():
    entries = [
        lp("ANSWER", 0.99),
        lp(":", 0.99),
        lp(" YES", 0.5, [(" YES", 0.5), (" yes", 0.1), ("Yes", 0.1), (" NO", 0.2), ("maybe", 0.1)]),
    ]
    assert yes_probability(entries) == pytest.approx(0.7 / 0.9)


def test_answer_position_is_the_last_yes_no_token():
    entries = [
        lp("No", 0.9, [("No", 0.9), ("Yes", 0.1)]),  # "No doubt, ..." early in the reasoning
        lp(" doubt", 0.9),
        lp(" NO", 0.6, [(" NO", 0.6), (" YES", 0.4)]),
    ]
    assert yes_probability(entries) == pytest.approx(0.4)


def test_only_the_chosen_token_known():
    assert yes_probability([lp("YES", 0.8)]) == pytest.approx(0.8)
    assert yes_probability([lp("no", 0.8)]) == pytest.approx(0.2)
    assert yes_probability([lp("hello", 0.8)]) is None
    assert yes_probability([]) is None


def test_text_fallback_and_garbage_are_flagged():
    assert text_answer("The patch looks right.\nANSWER: YES") == 1.0
    assert text_answer("Yes it compiles, but ANSWER: no") == 0.0
    assert text_answer("**Answer:** NO") == 0.0
    assert text_answer("I cannot tell") is None
    score, details = score_completions([Completion(text="ANSWER: NO")])
    assert score == 0.0 and details["method"] == "text"
    score, details = score_completions([Completion(text="\x00 ???"), Completion(text="")])
    assert score == 0.5 and details["method"] == "garbage"
    score, details = score_completions(
        [
            Completion(text="x", logprobs=[lp("YES", 0.9, [("YES", 0.9), ("NO", 0.1)])]),
            Completion(text="??"),
        ]
    )
    assert score == pytest.approx((0.9 + 0.5) / 2) and details["method"] == "mixed"


def test_judge_verifier_with_the_scripted_model_averages_samples():
    turn = {
        "content": "ANSWER: YES",
        "logprobs": [
            lp("ANSWER", 0.9),
            lp(":", 0.9),
            lp(" YES", 0.75, [(" YES", 0.75), (" NO", 0.25)]),
        ],
    }
    model = ScriptedModel([turn])
    cands = [Candidate(id="c1", task_id="t", patch="--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n")]
    verdicts = JudgeVerifier(model, samples=3).verify(TASK, cands)
    v = verdicts["c1"]
    assert v.verifier == "judge" and v.score == pytest.approx(0.75)
    assert v.details["method"] == "logprobs" and len(v.details["samples"]) == 3
    assert model.calls == 3 and v.cost.tokens_out > 0


def test_judge_model_failure_is_an_infra_error_not_a_no():
    model = ScriptedModel([])  # exhausted at once: raises ScriptExhausted (a ModelError)
    cands = [Candidate(id="c1", task_id="t", patch="p")]
    v = JudgeVerifier(model).verify(TASK, cands)["c1"]
    assert v.infra_error and v.score == 0.5


def test_condensed_trajectory_keeps_the_newest_part():
    steps = [
        Step(
            index=i,
            message={},
            actions=[Action(tool="bash", args={"command": f"cmd{i}"})],
            observations=[Observation(output=f"out{i}\n" * 10)],
        )
        for i in range(200)
    ]
    text = condense_trajectory(steps, max_chars=500)
    assert len(text) <= 505 and "cmd199" in text and "cmd0 " not in text
