"""Where to branch from an archived trajectory (SWE-Replay).

A new trajectory may restart from the recorded state after step k of an earlier one;
``pick_branch_step`` chooses k, favouring steps after the repository was explored and
before the first edit (exploration that paid off, not yet committed to a fix).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from swescale.selection.config import BranchConfig
from swescale.types import Step

EXPLORE_TOOLS = {"view", "search"}
EDIT_TOOLS = {"create", "str_replace"}
# Shell commands that only look around (the first word of each part of a pipeline).
_READ_ONLY = {
    "ls", "cat", "head", "tail", "grep", "rg", "find", "tree", "wc", "less", "more", "file",
    "pwd", "echo", "nl", "awk", "stat", "du", "which", "python", "python3", "pytest",
}  # fmt: skip
_WRITES = re.compile(
    r"(^|[^>&2])>(?!&)|\bsed\s+-i|\btee\b|\bpatch\b|\bgit\s+(apply|checkout|am|stash|reset)"
    r"|\bmv\b|\brm\b|\bcp\b|\btouch\b|\bpip\s+install|\bpython\b.*\bopen\("
)


def writes_files(command: str) -> bool:
    """Whether a shell command looks like it changes files (redirections, ``sed -i``,
    ``git apply``, ``pip install`` ...): after one that diverged, later differences may be
    its consequence."""
    return bool(_WRITES.search(command))


def _is_edit(step: Step) -> bool:
    if step.state is not None and step.state.size > 0:
        return True
    for action in step.actions:
        if action.tool in EDIT_TOOLS:
            return True
        if action.tool == "bash" and _WRITES.search(str(action.args.get("command", ""))):
            return True
    return False


def _explore_count(step: Step) -> int:
    count = 0
    for action in step.actions:
        if action.tool in EXPLORE_TOOLS:
            count += 1
        elif action.tool == "bash":
            command = str(action.args.get("command", "")).strip()
            words = [part.strip().split(" ")[0] for part in re.split(r"\||&&|;", command)]
            if words and all(w in _READ_ONLY or w == "" for w in words):
                count += 1
    return count


def branch_weights(steps: Sequence[Step], cfg: BranchConfig | None = None) -> list[float]:
    """Weight of branching after each step (see BranchConfig). Steps that submit get 0:
    continuing after the final answer explores nothing."""
    cfg = cfg or BranchConfig()
    weights: list[float] = []
    explored = 0
    edited = False
    for step in steps:
        explored += _explore_count(step)
        edited = edited or _is_edit(step)
        if any(a.tool == "submit" for a in step.actions):
            weights.append(0.0)
        elif edited:
            weights.append(cfg.after_edit_weight)
        elif explored >= cfg.min_explore_actions:
            weights.append(cfg.explored_weight)
        else:
            weights.append(cfg.early_weight)
    return weights


def pick_branch_step(
    steps: Sequence[Step], rng: random.Random, cfg: BranchConfig | None = None
) -> int:
    """Index k of the step after which to branch (restore its state, keep messages
    0..k). Drawn in proportion to ``branch_weights``; ValueError when no step can be used."""
    weights = branch_weights(steps, cfg)
    if not weights or sum(weights) <= 0:
        raise ValueError("no step to branch from (empty trajectory, or only a submit)")
    return rng.choices(range(len(weights)), weights=weights, k=1)[0]
