"""Verifier configuration."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

KNOWN_VERIFIERS = (
    "static",
    "regression",
    "harvest",
    "repro",
    "behaviour",
    "judge",
    "reward_model",
)


class VerifiersConfig(BaseModel):
    # Run in the order given (cheap and decisive first). Model-free: static, regression,
    # harvest (tests the candidates bring), behaviour (classes of equal test outcomes;
    # after the execution verifiers). With a model: repro, judge, reward_model.
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
