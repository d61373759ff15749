"""Verifiers: evidence about candidates. Execution (reproduction tests, regression tests)
and model-based (the YES/NO judge, a torch reward model; the latter imported lazily
because torch is an optional extra)."""

from swescale.verifiers.base import (
    JUDGE,
    REGRESSION,
    REPRO,
    REWARD_MODEL,
    Verifier,
    annotate,
)

__all__ = ["JUDGE", "REGRESSION", "REPRO", "REWARD_MODEL", "Verifier", "annotate"]
