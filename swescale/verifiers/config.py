"""Verifier configuration: one config model per verifier, each building its verifier.

``VerifiersConfig`` is the ``verifiers:`` section of a run config (the names to run, in
order, and settings they share); :meth:`VerifiersConfig.specs` turns it into one
:data:`VerifierSpec` per name, a union discriminated on ``name``, and
:func:`build_verifiers` builds them for a task from a :class:`BuildContext`. ``run`` and
``ensemble`` both build verifiers this way; a name no spec answers to is a config error
when the config is read, never a branch at run time. Implementations are imported in
``build`` (the heavy ones need torch or a model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, field_validator

from swescale.types import Cost, Task


class Unavailable(Exception):
    """A verifier that cannot run here (no model to judge with, no checkpoint); the
    message is the note the run shows."""


@dataclass
class BuildContext:
    """What building a verifier for one task may use.

    ``make_sandbox``: fresh sandboxes from the task's instance image (None: none here);
    ``workers``: sandboxes in parallel; ``model``: the run's shared model (None: none);
    ``charge(cost, kind)``: where a build's own spending goes (test generation);
    ``agent``/``tool_mode``: how a testing agent runs (the repro verifier).
    """

    task: Task | None = None
    make_sandbox: Callable[[], Any] | None = None
    workers: int = 2
    model: Any = None
    charge: Callable[[Cost, str], None] | None = None
    agent: Any = None
    tool_mode: str = "text"
    # Tests the producers wrote along the way (harvest): ``HarvestedTest`` objects.
    extra_tests: list[Any] = field(default_factory=list)

    def sandbox_factory(self, name: str) -> Callable[[], Any]:
        if self.make_sandbox is None:
            raise Unavailable(f"{name}: no sandbox for this task")
        return self.make_sandbox


class _Spec(BaseModel):
    def build(self, ctx: BuildContext) -> Any:  # pragma: no cover - every spec overrides
        raise NotImplementedError


class StaticSpec(_Spec):
    """Applies, compiles, imports, no new undefined names; size and locality."""

    name: Literal["static"] = "static"

    def build(self, ctx: BuildContext) -> Any:
        from swescale.verifiers.static import StaticVerifier

        return StaticVerifier(ctx.sandbox_factory(self.name), workers=ctx.workers)


class RegressionSpec(_Spec):
    """The repository's existing tests related to the change, base against candidate."""

    name: Literal["regression"] = "regression"
    timeout: float = 300.0
    reruns: int = 1
    max_test_files: int = 20

    def build(self, ctx: BuildContext) -> Any:
        from swescale.verifiers.regression import RegressionVerifier

        return RegressionVerifier(
            ctx.sandbox_factory(self.name),
            workers=ctx.workers,
            timeout=self.timeout,
            reruns=self.reruns,
            max_test_files=self.max_test_files,
        )


class HarvestSpec(_Spec):
    """Tests and reproduction scripts the candidates bring, run against every candidate."""

    name: Literal["harvest"] = "harvest"
    timeout: float = 300.0

    def build(self, ctx: BuildContext) -> Any:
        from swescale.verifiers.harvest import HarvestedTestVerifier

        return HarvestedTestVerifier(
            ctx.sandbox_factory(self.name),
            workers=ctx.workers,
            timeout=self.timeout,
            extra_tests=ctx.extra_tests,
        )


class IssueSpec(_Spec):
    """The issue's own reproducers (sessions, scripts, commands, expected values), kept
    when they reproduce on base; candidates scored by the checks they flip."""

    name: Literal["issue"] = "issue"
    timeout: float = 300.0
    per_statement: int = 60

    def build(self, ctx: BuildContext) -> Any:
        from swescale.verifiers.issue import IssueReproVerifier

        return IssueReproVerifier(
            ctx.sandbox_factory(self.name),
            workers=ctx.workers,
            timeout=self.timeout,
            per_statement=self.per_statement,
        )


class DoctestSpec(_Spec):
    """The doctests of the modules candidates change, base against candidate, one
    outcome per docstring."""

    name: Literal["doctest"] = "doctest"
    timeout: float = 300.0

    def build(self, ctx: BuildContext) -> Any:
        from swescale.verifiers.doctests import DoctestVerifier

        return DoctestVerifier(
            ctx.sandbox_factory(self.name), workers=ctx.workers, timeout=self.timeout
        )


class BehaviourSpec(_Spec):
    """Classes of candidates with equal test outcomes (after the execution verifiers)."""

    name: Literal["behaviour"] = "behaviour"

    def build(self, ctx: BuildContext) -> Any:
        from swescale.verifiers.behaviour import BehaviourVerifier

        return BehaviourVerifier()


class ReproSpec(_Spec):
    """Reproduction tests a testing agent writes with the run's model."""

    name: Literal["repro"] = "repro"
    timeout: float = 300.0
    reruns: int = 1

    def build(self, ctx: BuildContext) -> Any:
        if ctx.model is None:
            raise Unavailable("repro: no shared model to write reproduction tests")
        if ctx.task is None:
            raise Unavailable("repro: reproduction tests are written per task")
        from swescale.verifiers.repro import ReproTestVerifier
        from swescale.verifiers.testgen import generate_repro_tests

        make_sandbox = ctx.sandbox_factory(self.name)
        tests, cost = generate_repro_tests(
            ctx.task, make_sandbox, ctx.model, ctx.agent, tool_mode=ctx.tool_mode
        )
        if ctx.charge is not None:
            ctx.charge(cost, "testgen")
        return ReproTestVerifier(
            make_sandbox, tests, workers=ctx.workers, timeout=self.timeout, reruns=self.reruns
        )


class JudgeSpec(_Spec):
    """The run's model as a YES/NO judge, scored by its logprobs."""

    name: Literal["judge"] = "judge"
    samples: int = 1
    top_logprobs: int = 20

    def build(self, ctx: BuildContext) -> Any:
        if ctx.model is None:
            raise Unavailable("judge: no shared model to judge with")
        from swescale.verifiers.judge import JudgeVerifier

        return JudgeVerifier(ctx.model, samples=self.samples, top_logprobs=self.top_logprobs)


class RewardModelSpec(_Spec):
    """A torch reward model (a Hugging Face checkpoint) scoring issue and patch."""

    name: Literal["reward_model"] = "reward_model"
    checkpoint: str = ""
    kind: str = "auto"

    def build(self, ctx: BuildContext) -> Any:
        if not self.checkpoint:
            raise Unavailable("reward_model: set verifiers.reward_model to a checkpoint")
        return _reward_model(self.checkpoint, self.kind)


VerifierSpec = Annotated[
    StaticSpec
    | RegressionSpec
    | HarvestSpec
    | IssueSpec
    | DoctestSpec
    | BehaviourSpec
    | ReproSpec
    | JudgeSpec
    | RewardModelSpec,
    Field(discriminator="name"),
]
_SPEC = TypeAdapter(VerifierSpec)
KNOWN_VERIFIERS = (
    "static",
    "regression",
    "harvest",
    "issue",
    "doctest",
    "repro",
    "behaviour",
    "judge",
    "reward_model",
)


def parse_spec(data: str | dict[str, Any]) -> Any:
    """A verifier spec from its name or ``{"name": ..., **settings}``; ValueError for an
    unknown name (pydantic names the known ones)."""
    return _SPEC.validate_python({"name": data} if isinstance(data, str) else data)


class VerifiersConfig(BaseModel):
    # Run in the order given (cheap and decisive first). Model-free: static, regression,
    # harvest (tests the candidates bring), issue (the issue's own reproducers), doctest
    # (the changed modules' doctests), behaviour (classes of equal outcomes; after the
    # execution verifiers). With a model: repro, judge, reward_model.
    enabled: list[str] = Field(default_factory=lambda: ["regression"])
    judge_samples: int = 1
    judge_top_logprobs: int = 20
    # Seconds for one test command (a hanging reproduction test is discarded at this limit).
    test_timeout: float = 300.0
    reruns_on_disagreement: int = 1
    # Testing trajectories that write reproduction tests, per task.
    testgen_trajectories: int = 1
    # Where judged test x candidate cells are cached ("" = no cache).
    cache_dir: str = ""
    # Existing test files run by the regression verifier, at most.
    regression_max_files: int = 20
    # A Hugging Face checkpoint (name or directory) for the reward_model verifier.
    reward_model: str = ""
    reward_model_kind: str = "auto"

    @field_validator("enabled")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if n not in KNOWN_VERIFIERS]
        if unknown:
            raise ValueError(f"unknown verifier(s) {unknown}; known: {', '.join(KNOWN_VERIFIERS)}")
        return names

    def specs(self) -> list[Any]:
        """One spec per enabled name, in order, with this section's shared settings."""
        settings: dict[str, dict[str, Any]] = {
            "regression": {
                "timeout": self.test_timeout,
                "reruns": self.reruns_on_disagreement,
                "max_test_files": self.regression_max_files,
            },
            "harvest": {"timeout": self.test_timeout},
            "issue": {"timeout": self.test_timeout},
            "doctest": {"timeout": self.test_timeout},
            "repro": {"timeout": self.test_timeout, "reruns": self.reruns_on_disagreement},
            "judge": {"samples": self.judge_samples, "top_logprobs": self.judge_top_logprobs},
            "reward_model": {"checkpoint": self.reward_model, "kind": self.reward_model_kind},
        }
        return [parse_spec({"name": n, **settings.get(n, {})}) for n in self.enabled]


def build_verifiers(specs: list[Any], ctx: BuildContext) -> tuple[list[Any], list[str]]:
    """The verifiers ``specs`` describe, in order, and a note for each that cannot run
    here (e.g. a judge without a model)."""
    built, notes = [], []
    for spec in specs:
        try:
            built.append(spec.build(ctx))
        except Unavailable as exc:
            notes.append(str(exc))
    return built, notes


_REWARD_MODELS: dict[tuple[str, str], Any] = {}


def _reward_model(checkpoint: str, kind: str) -> Any:
    """Loaded once per process, not once per task: checkpoints take seconds to load."""
    key = (checkpoint, kind)
    if key not in _REWARD_MODELS:
        from swescale.verifiers.reward_model import RewardModelVerifier

        _REWARD_MODELS.clear()  # one at a time: they are large
        _REWARD_MODELS[key] = RewardModelVerifier(checkpoint, kind=kind)
    return _REWARD_MODELS[key]
