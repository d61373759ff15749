"""Planning trajectories, feedback text and scripted plans: pure functions, literal inputs."""

from __future__ import annotations

import base64
import re

import pytest

from swescale.config import load_config
from swescale.scaling.explore import agreement, derive_seed, plan_round
from swescale.scaling.feedback import build_feedback, rank_for_feedback
from swescale.scaling.scripted import MIXED, plan_kind, planned_turns
from swescale.types import Candidate, Task, Verdict

PATCH_A = "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"
PATCH_A_SPACED = "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-x = 1\n+x  =  2\n"
PATCH_B = "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-x = 1\n+x = 3\n"


def test_seeds_are_stable_and_distinct() -> None:
    assert derive_seed(0, "t", 0, 1) == derive_seed(0, "t", 0, 1)
    seeds = {derive_seed(0, "t", r, i) for r in range(3) for i in range(10)}
    assert len(seeds) == 30
    assert derive_seed(1, "t", 0, 0) != derive_seed(0, "t", 0, 0)
    assert all(0 <= s < 2**31 for s in seeds)


def test_plan_round_cycles_temperatures_and_variants() -> None:
    cfg = load_config(
        None,
        [
            "scaling.n_parallel=5",
            "scaling.temperatures=[0.2, 0.8]",
            "scaling.prompt_variants=[agent, agent_minimal, agent_reproduce_first]",
        ],
    )
    specs = plan_round("owner__repo-1", cfg, 1)
    assert [s.index for s in specs] == [0, 1, 2, 3, 4]
    assert [s.temperature for s in specs] == [0.2, 0.8, 0.2, 0.8, 0.2]
    assert [s.prompt_variant for s in specs][:4] == [
        "agent",
        "agent_minimal",
        "agent_reproduce_first",
        "agent",
    ]
    assert len({s.traj_id for s in specs}) == 5
    assert all(".r1." in s.traj_id for s in specs)
    assert plan_round("owner__repo-1", cfg, 1) == specs


def test_plan_round_defaults_leave_sampling_to_the_model() -> None:
    specs = plan_round("t", load_config(None, ["scaling.n_parallel=2"]), 0)
    assert [s.temperature for s in specs] == [None, None]
    assert [s.prompt_variant for s in specs] == [None, None]


def test_agreement_counts_normalized_patches() -> None:
    assert agreement("t", {}) == 0
    assert agreement("t", {"a": "", "b": ""}) == 0
    assert agreement("t", {"a": PATCH_A, "b": PATCH_A_SPACED, "c": PATCH_B}) == 2


def _cand(
    cid: str, patch: str, trajs: list[str], verdicts: dict[str, Verdict] | None = None
) -> Candidate:
    return Candidate(
        id=cid, task_id="t", patch=patch, trajectory_ids=trajs, verdicts=verdicts or {}
    )


def test_feedback_ranks_by_score_then_votes() -> None:
    low = _cand(
        "low",
        PATCH_A,
        ["t1", "t2", "t3"],
        {"regression": Verdict(verifier="regression", score=0.2)},
    )
    high = _cand("high", PATCH_B, ["t4"], {"regression": Verdict(verifier="regression", score=0.9)})
    unscored = _cand("none", PATCH_B, ["t5", "t6"])
    assert [c.id for c in rank_for_feedback([low, unscored, high])] == ["high", "low", "none"]


def test_feedback_text_shows_patches_and_failing_tests() -> None:
    verdict = Verdict(
        verifier="regression",
        score=0.5,
        passed=False,
        details={"failing": [f"tests/test_m.py::test_{i}" for i in range(10)]},
    )
    text = build_feedback([_cand("c1", PATCH_A, ["t1"], {"regression": verdict})], top_k=2)
    assert "Attempt 1" in text and "1 trajectory" in text
    assert "+x = 2" in text
    assert "tests/test_m.py::test_0" in text and "2 more" in text
    assert "regression: failed" in text


def test_feedback_empty_and_cut() -> None:
    assert build_feedback([], top_k=2) == ""
    assert build_feedback([_cand("c", PATCH_A, ["t"])], top_k=0) == ""
    long = PATCH_A + "+" + "y" * 5000 + "\n"
    text = build_feedback([_cand("c", long, ["t"])], top_k=1, patch_chars=300)
    assert "more characters cut" in text and len(text) < 1200


def _task(**extra: object) -> Task:
    return Task(
        id="t",
        repo="o/r",
        base_commit="abc",
        problem_statement="x is wrong",
        gold_patch=PATCH_A,
        extra=dict(extra),
    )


def _commands(turns: list[str]) -> list[str]:
    return [re.search(r"```bash\n(.*?)\n```", t, re.S).group(1) for t in turns]  # type: ignore[union-attr]


def test_gold_plan_applies_the_gold_patch_then_submits() -> None:
    commands = _commands(planned_turns(_task(), "gold"))
    assert commands[-1] == "submit"
    encoded = re.search(r"echo (\S+) \| base64 -d", commands[1]).group(1)  # type: ignore[union-attr]
    assert base64.b64decode(encoded).decode() == PATCH_A


def test_wrong_plan_prefers_the_tasks_known_wrong_patch() -> None:
    commands = _commands(planned_turns(_task(wrong_patches=[PATCH_B]), "wrong"))
    encoded = re.search(r"echo (\S+) \| base64 -d", commands[1]).group(1)  # type: ignore[union-attr]
    assert base64.b64decode(encoded).decode() == PATCH_B
    fallback = _commands(planned_turns(_task(), "wrong"))
    assert "KNOWN_ISSUES.txt" in fallback[1]


def test_mixed_pattern_and_bad_plans() -> None:
    assert [plan_kind(MIXED, i) for i in range(5)] == ["gold", "wrong", "gold", "empty", "gold"]
    assert _commands(planned_turns(_task(), "empty")) == ["git status --short && ls", "submit"]
    with pytest.raises(ValueError):
        plan_kind("turns.yaml", 0)
    with pytest.raises(ValueError, match="gold patch"):
        planned_turns(Task(id="t", repo="r", base_commit="a", problem_statement="p"), "gold")


def test_hard_plan_makes_the_wrong_answer_the_most_frequent():
    from swescale.scaling.scripted import HARD, plan_kind, planned_turns
    from swescale.swebench.mini import mini_tasks

    kinds = [plan_kind(HARD, i) for i in range(6)]
    assert kinds.count("gold_tested") + kinds.count("alt") == 2 and kinds.count("decoy") == 2
    task = next(t for t in mini_tasks() if t.extra.get("decoy_patches"))
    turns = {kind: "\n".join(planned_turns(task, kind)) for kind in set(kinds)}
    assert turns["decoy"] != turns["gold_tested"] != turns["alt"]
    # The gold trajectory also writes the test, as agents that test their fix do.
    assert "Adding a test for the issue." in turns["gold_tested"]
    assert turns["gold_tested"].startswith("\n".join(planned_turns(task, "gold")[:2]))
    assert "def broken(" in turns["broken"] and turns["broken"].endswith("submit\n```")
    # A task without decoys falls back to its known-wrong fix.
    plain = next(t for t in mini_tasks() if not t.extra.get("decoy_patches"))
    assert planned_turns(plain, "decoy") == planned_turns(plain, "wrong")
