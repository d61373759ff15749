"""Selection configuration: which selector, how cautious, and how branch points are chosen.

Every selector has a config model (a union discriminated on ``name``) whose ``build``
makes it; ``SelectionConfig.spec(name)`` fills one from this section's shared settings.
``run``, ``select``, ``ensemble`` and the report build selectors this way; an unknown
name is a config error when the config is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, field_validator


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


@dataclass
class SelectorContext:
    """What building a selector may use: a fitted ``calibration`` (the calibrated
    selector ranks by it; every selector states its pick's P(resolved) with it, so
    confidences share one scale; else the spec's file, else prior weights) and
    ``agent_factory`` (the selection agent needs a model and sandboxes, which only a run
    has)."""

    calibration: Any = None
    agent_factory: Callable[[], Any] | None = None


class MajoritySpec(BaseModel):
    """The candidate most producers arrived at."""

    name: Literal["majority"] = "majority"

    def build(self, ctx: SelectorContext) -> Any:
        from swescale.selection.selectors import MajorityVoteSelector

        return MajorityVoteSelector(ctx.calibration)


class TestVoteSpec(BaseModel):
    """The candidate passing the most generated and harvested tests (CodeMonkeys)."""

    name: Literal["test_vote"] = "test_vote"

    def build(self, ctx: SelectorContext) -> Any:
        from swescale.selection.selectors import TestVoteSelector

        return TestVoteSelector(ctx.calibration)


class EvidenceSpec(BaseModel):
    """Model-free evidence in a fixed order: static gate, tests, behaviour, locality."""

    name: Literal["evidence"] = "evidence"

    def build(self, ctx: SelectorContext) -> Any:
        from swescale.selection.selectors import EvidenceSelector

        return EvidenceSelector(ctx.calibration)


class HybridSpec(BaseModel):
    """Top-k by the model score, then execution evidence (R2E-Gym)."""

    name: Literal["hybrid"] = "hybrid"
    top_k: int = 3

    def build(self, ctx: SelectorContext) -> Any:
        from swescale.selection.selectors import HybridSelector

        return HybridSelector(top_k=self.top_k, calibration=ctx.calibration)


class CalibratedSpec(BaseModel):
    """P(resolved) from a logistic fit on labelled runs; abstains or flags below a bar."""

    name: Literal["calibrated"] = "calibrated"
    calibration_path: str | None = None
    abstain_below: float = 0.0
    abstain_mode: Literal["abstain", "flag"] = "abstain"
    # When the pick ties on the evidence with other candidates: flag it, abstain, or off.
    on_tie: Literal["flag", "abstain", "off"] = "flag"

    def build(self, ctx: SelectorContext) -> Any:
        from swescale.selection.calibration import Calibration
        from swescale.selection.selectors import CalibratedSelector

        calibration = ctx.calibration
        if calibration is None and self.calibration_path:
            calibration = Calibration.load(self.calibration_path)
        return CalibratedSelector(calibration, self.abstain_below, self.abstain_mode, self.on_tie)


class AgentSpec(BaseModel):
    """A selection trajectory: the run's model compares the finalists in a sandbox."""

    name: Literal["agent"] = "agent"
    finalists: int = 3
    max_steps: int = 30
    top_k: int = 3

    def build(self, ctx: SelectorContext) -> Any:
        if ctx.agent_factory is None:
            raise ValueError("the 'agent' selector needs a model and sandboxes; use it in a run")
        return ctx.agent_factory()


SelectorSpec = Annotated[
    MajoritySpec | TestVoteSpec | EvidenceSpec | HybridSpec | CalibratedSpec | AgentSpec,
    Field(discriminator="name"),
]
_SPEC = TypeAdapter(SelectorSpec)
# Selectors that only read stored verdicts (run offline by ``swescale select``).
OFFLINE_SELECTORS = ("majority", "test_vote", "evidence", "hybrid", "calibrated")
KNOWN_SELECTORS = (*OFFLINE_SELECTORS, "agent")


def parse_selector(data: str | dict[str, Any]) -> Any:
    """A selector spec from its name or ``{"name": ..., **settings}``; ValueError for an
    unknown name."""
    return _SPEC.validate_python({"name": data} if isinstance(data, str) else data)


class SelectionConfig(BaseModel):
    selector: str = "hybrid"
    top_k: int = 3
    # Below this confidence the selector abstains (no patch) or flags its pick.
    abstain_below: float = 0.0
    abstain_mode: Literal["abstain", "flag"] = "abstain"
    # The calibrated selector's pick among candidates the evidence cannot tell apart.
    on_tie: Literal["flag", "abstain", "off"] = "flag"
    # A calibration fit on labelled runs (JSON from Calibration.save); prior weights if unset.
    calibration_path: str | None = None
    # The selection agent: finalists it compares, and its step limit.
    agent_finalists: int = 3
    agent_max_steps: int = 30
    branch: BranchConfig = Field(default_factory=BranchConfig)

    @field_validator("selector")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in KNOWN_SELECTORS:
            raise ValueError(f"unknown selector {name!r}; known: {', '.join(KNOWN_SELECTORS)}")
        return name

    def spec(self, name: str | None = None) -> Any:
        """The spec of selector ``name`` (default: the configured one) with this
        section's settings."""
        name = name or self.selector
        settings: dict[str, dict[str, Any]] = {
            "hybrid": {"top_k": self.top_k},
            "calibrated": {
                "calibration_path": self.calibration_path,
                "abstain_below": self.abstain_below,
                "abstain_mode": self.abstain_mode,
                "on_tie": self.on_tie,
            },
            "agent": {
                "finalists": self.agent_finalists,
                "max_steps": self.agent_max_steps,
                "top_k": self.top_k,
            },
        }
        return parse_selector({"name": name, **settings.get(name, {})})
