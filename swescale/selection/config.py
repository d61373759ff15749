"""Selection configuration: which selector, how cautious, and how branch points are chosen."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class BranchConfig(BaseModel):
    """Weights of ``pick_branch_step``: which step of an archived trajectory to branch at.

    Each step gets a weight; the step is drawn in proportion. Steps after the repository
    was explored (reads, searches) and before the first edit weigh ``explored_weight``;
    earlier steps ``early_weight``; steps at or after the first edit ``after_edit_weight``.
    """

    explored_weight: float = 1.0
    early_weight: float = 0.1
    after_edit_weight: float = 0.05
    # Exploration actions needed before a step counts as "explored".
    min_explore_actions: int = 2


class SelectionConfig(BaseModel):
    selector: str = "hybrid"
    top_k: int = 3
    # Below this confidence the selector abstains (no patch) or flags its pick.
    abstain_below: float = 0.0
    abstain_mode: Literal["abstain", "flag"] = "abstain"
    # A calibration fit on labelled runs (JSON from Calibration.save); prior weights if unset.
    calibration_path: str | None = None
    # The selection agent: finalists it compares, and its step limit.
    agent_finalists: int = 3
    agent_max_steps: int = 30
    branch: BranchConfig = Field(default_factory=BranchConfig)
