"""Branch-point choice and observation normalization on literal steps."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from swescale.replay.branching import branch_weights, pick_branch_step
from swescale.replay.own import normalize_observation
from swescale.selection.config import BranchConfig
from swescale.types import Action, StateRef, Step


def step(i, tool, size=0, **args):
    return Step(
        index=i,
        message={"role": "assistant", "content": ""},
        actions=[Action(tool=tool, args=args)],
        state=StateRef(sha256=f"s{size}", size=size),
    )


STEPS = [
    step(0, "bash", command="ls"),
    step(1, "search", pattern="def parse"),
    step(2, "view", path="pkg/m.py"),
    step(3, "bash", command="grep -n foo pkg/m.py | head"),
    step(4, "str_replace", size=120, path="pkg/m.py", old_str="a", new_str="b"),
    step(5, "bash", size=120, command="python -m pytest -q"),
    step(6, "submit", size=120),
]


def test_weights_favour_explored_steps_before_the_first_edit():
    w = branch_weights(STEPS)
    assert w[0] == 0.1  # one exploration action so far: not yet explored
    assert w[1] == w[2] == w[3] == 1.0
    assert w[4] == w[5] == 0.05  # at or after the first edit
    assert w[6] == 0.0  # after submit: nothing left to explore


def test_pick_is_deterministic_for_a_seed_and_mostly_in_the_window():
    picks = [pick_branch_step(STEPS, random.Random(seed)) for seed in range(400)]
    assert picks[:20] == [pick_branch_step(STEPS, random.Random(s)) for s in range(20)]
    counts = Counter(picks)
    assert sum(counts[k] for k in (1, 2, 3)) / len(picks) > 0.85
    assert counts[6] == 0


def test_config_changes_the_rule():
    only_after_edit = BranchConfig(explored_weight=0.0, early_weight=0.0, after_edit_weight=1.0)
    picks = {pick_branch_step(STEPS, random.Random(s), only_after_edit) for s in range(50)}
    assert picks == {4, 5}


def test_edit_detected_from_shell_writes_without_state():
    steps = [
        Step(index=0, message={}, actions=[Action(tool="bash", args={"command": "cat a.py"})]),
        Step(index=1, message={}, actions=[Action(tool="view", args={"path": "a.py"})]),
        Step(
            index=2,
            message={},
            actions=[Action(tool="bash", args={"command": "sed -i s/a/b/ a.py"})],
        ),
    ]
    assert branch_weights(steps) == [0.1, 1.0, 0.05]


def test_nothing_to_branch_from_is_a_clear_error():
    with pytest.raises(ValueError, match="no step"):
        pick_branch_step([], random.Random(0))
    with pytest.raises(ValueError):
        pick_branch_step([step(0, "submit")], random.Random(0))


def test_volatile_output_is_masked():
    a = "===== 3 passed in 0.52s =====\nat 0x7f3a2b1c9d40\n2026-11-22 11:02:03 done"
    b = "===== 3 passed in 1.07s =====\nat 0x7f00aa11bb22\n2026-11-23 09:00:00 done  "
    assert normalize_observation(a) == normalize_observation(b)
    assert normalize_observation("3 passed") != normalize_observation("2 passed")
