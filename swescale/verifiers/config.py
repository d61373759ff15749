"""Verifier configuration."""

from __future__ import annotations

from pydantic import BaseModel, Field


class VerifiersConfig(BaseModel):
    enabled: list[str] = Field(default_factory=lambda: ["regression"])
    judge_samples: int = 1
    test_timeout: float = 300.0
    reruns_on_disagreement: int = 1
