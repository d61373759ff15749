"""Shared data passed between stages: tasks, command results, steps, trajectories,
candidates, verdicts and selections.

Plain pydantic models, no behaviour beyond small derived properties, so every stage can be
tested alone on literal values.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field, field_validator


def _json_list(value: Any) -> list[str]:
    """FAIL_TO_PASS / PASS_TO_PASS arrive as JSON strings in the published data and as
    lists elsewhere; accept both, reject anything else with a clear message."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected a JSON list of test names, got {value[:80]!r}") from exc
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of test names, got {type(value).__name__}")
    return list(value)


class Task(BaseModel):
    """An issue in a repository at a commit, and how to grade a fix for it."""

    id: str
    repo: str
    base_commit: str
    problem_statement: str
    hints: str = ""
    version: str | None = None
    fail_to_pass: list[str] = Field(default_factory=list)
    pass_to_pass: list[str] = Field(default_factory=list)
    # Never shown to agents: the prompt builders only read the fields above.
    test_patch: str | None = None
    gold_patch: str | None = None
    environment_setup_commit: str | None = None
    # Where the task came from and extra fields of its row (eval_script, image, ...).
    source: str = ""
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("fail_to_pass", "pass_to_pass", mode="before")
    @classmethod
    def _test_names(cls, value: Any) -> list[str]:
        return _json_list(value)


class ExecResult(BaseModel):
    """One command's outcome in a sandbox."""

    output: str
    exit_code: int | None
    seconds: float = 0.0
    timed_out: bool = False
    truncated: bool = False
    # Set when the command could not be judged on its own merits: the session died,
    # the container vanished, the engine failed. Verifiers never count these against a
    # candidate.
    infra_error: str | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.infra_error is None


class StateRef(BaseModel):
    """A repository state: the binary diff against the base commit, named by its sha256."""

    sha256: str
    size: int


class Action(BaseModel):
    """One tool call the model asked for."""

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    call_id: str = ""


class Observation(BaseModel):
    """What one action returned to the model."""

    output: str
    exit_code: int | None = None
    timed_out: bool = False
    truncated: bool = False
    error: str | None = None
    seconds: float = 0.0


class Step(BaseModel):
    """One model turn and what it caused."""

    index: int
    message: dict[str, Any]
    actions: list[Action] = Field(default_factory=list)
    observations: list[Observation] = Field(default_factory=list)
    state: StateRef | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    logprob: float | None = None
    # Output tokens of the turn spent on reasoning (included in tokens_out).
    reasoning_tokens: int = 0
    # The exact chat messages this step added (the model's turn, then what it was shown),
    # kept for trajectories of other agents, whose observations were rendered their way;
    # None for swescale's own, which are rendered from ``observations``.
    chat: list[dict[str, Any]] | None = None


class Trajectory(BaseModel):
    """One rollout. ``parent`` is (trajectory id, step) when it branched from another."""

    id: str
    task_id: str
    parent: tuple[str, int] | None = None
    round: int = 0
    seed: int = 0
    steps: list[Step] = Field(default_factory=list)
    exit_status: str = ""
    patch: str = ""


class Cost(BaseModel):
    """What something consumed. Local models count compute seconds instead of dollars."""

    tokens_in: int = 0
    tokens_out: int = 0
    dollars: float = 0.0
    model_seconds: float = 0.0
    sandbox_seconds: float = 0.0
    # The part of tokens_out a thinking model spent reasoning (not an extra charge).
    reasoning_tokens: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            tokens_in=self.tokens_in + other.tokens_in,
            tokens_out=self.tokens_out + other.tokens_out,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            dollars=self.dollars + other.dollars,
            model_seconds=self.model_seconds + other.model_seconds,
            sandbox_seconds=self.sandbox_seconds + other.sandbox_seconds,
        )


class Verdict(BaseModel):
    """One verifier's evidence about one candidate."""

    verifier: str
    score: float
    passed: bool | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    cost: Cost = Field(default_factory=Cost)
    infra_error: str | None = None


class Candidate(BaseModel):
    """A distinct patch (after normalization) and who produced it."""

    id: str
    task_id: str
    patch: str
    trajectory_ids: list[str] = Field(default_factory=list)
    # Other systems' patches imported from their predictions.jsonl.
    sources: list[str] = Field(default_factory=list)
    verdicts: dict[str, Verdict] = Field(default_factory=dict)
    # Filled from grading when labels are known (mini benchmark, graded runs).
    resolved: bool | None = None
    # What its patch text lacks, when it lacks something: bytes a producer's files held
    # that the patch could not carry exactly (see swescale.patches.exact).
    notes: list[str] = Field(default_factory=list)


class Selection(BaseModel):
    """The pick, the ranking, and why. ``candidate_id`` None means abstain.

    ``confidence`` is P(resolved | evidence) of the pick, on one scale for every selector
    (``swescale.selection.calibration``: a fitted calibration when there is one, else its
    prior weights). ``tied``: the candidates the selector's evidence could not tell from
    the pick (the pick among them came from a tie-break); ``decided_by`` names what
    separated the pick from the runner-up ("locality 1.00 vs 0.50", "votes 2 vs 1")."""

    task_id: str
    selector: str = ""
    candidate_id: str | None
    ranking: list[str] = Field(default_factory=list)
    confidence: float = 0.0
    rationale: str = ""
    flagged: bool = False
    tied: list[str] = Field(default_factory=list)
    decided_by: str = ""
