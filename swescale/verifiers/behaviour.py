"""Behaviour classes: candidates whose test outcomes are identical behave the same, so
they vote together even when their texts differ.

A candidate's *signature* is what the execution verifiers saw it do: the existing tests
whose outcome it changes against base (``regression`` details ``outcomes``), the
harvested tests it passes and fails (``harvest`` details ``cells``), what it printed or
raised on the inputs the issue shows (``issue`` details ``outputs``), the doctests of
the changed modules whose outcome it changes (``doctest`` details ``outcomes``), and
whether it applies at all. Candidates with equal signatures form one class; a class's weight is the
number of producers (votes) of its members. Majority voting over classes instead of
texts is the execution-based variant of self-consistency (as in AlphaCode's clustering by
outputs and CodeT's dual agreement).

Verdict score: the class's share of all votes in the pool; ``details`` name the class
(``class_id``), its size and votes. Needs no sandbox: it reads the verdicts already
stored, so it runs after ``regression`` and ``harvest``. Without any execution evidence
every candidate is its own class (score = its own vote share) and the verdict says so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from swescale.patches import votes
from swescale.types import Candidate, Task, Verdict
from swescale.verifiers.base import BEHAVIOUR, DOCTEST, HARVEST, ISSUE, REGRESSION, STATIC


def signature(cand: Candidate) -> dict[str, Any] | None:
    """What the candidate did under test; None when no execution evidence judged it."""
    sig: dict[str, Any] = {}
    regression = cand.verdicts.get(REGRESSION)
    if regression is not None and not regression.infra_error:
        if regression.details.get("applied") is False:
            return {"applies": False}
        sig["regression"] = dict(sorted((regression.details.get("outcomes") or {}).items()))
    harvest = cand.verdicts.get(HARVEST)
    if harvest is not None and harvest.details.get("applied") is False:
        return {"applies": False}
    if harvest is not None and harvest.details.get("cells"):
        cells = {k: v for k, v in harvest.details["cells"].items() if v is not None}
        if cells:
            sig["harvest"] = dict(sorted(cells.items()))
    for name in (ISSUE, DOCTEST):
        verdict = cand.verdicts.get(name)
        if verdict is None or verdict.infra_error:
            continue
        if verdict.details.get("applied") is False:
            return {"applies": False}
        # The issue's inputs: what every stable statement printed or raised; doctests:
        # the docstrings whose outcome changed against base.
        seen = verdict.details.get("outputs" if name == ISSUE else "outcomes")
        if seen:
            sig[name] = dict(sorted(seen.items()))
    static = cand.verdicts.get(STATIC)
    if static is not None and static.details.get("applied") is False:
        return {"applies": False}
    return sig or None


def class_id(sig: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(sig, sort_keys=True).encode()).hexdigest()[:12]


def behaviour_classes(candidates: Sequence[Candidate]) -> dict[str, list[str]]:
    """class id -> candidate ids; a candidate without evidence is a class of its own."""
    classes: dict[str, list[str]] = {}
    for cand in candidates:
        sig = signature(cand)
        key = class_id(sig) if sig is not None else f"alone:{cand.id}"
        classes.setdefault(key, []).append(cand.id)
    return classes


class BehaviourVerifier:
    name = BEHAVIOUR

    def verify(self, task: Task, candidates: list[Candidate]) -> dict[str, Verdict]:
        classes = behaviour_classes(candidates)
        weight = {c.id: votes(c) for c in candidates}
        total = sum(weight.values()) or 1
        judged = any(not key.startswith("alone:") for key in classes)
        verdicts = {}
        by_id = {c.id: c for c in candidates}
        for key, members in classes.items():
            class_votes = sum(weight[m] for m in members)
            applies = signature(by_id[members[0]]) != {"applies": False}
            for member in members:
                verdicts[member] = Verdict(
                    verifier=self.name,
                    # Patches that do not apply agree on nothing worth voting for.
                    score=class_votes / total if applies else 0.0,
                    passed=None,
                    details={
                        "class_id": key,
                        "class_size": len(members),
                        "class_votes": class_votes,
                        "classes": len(classes),
                        "applies": applies,
                    },
                    infra_error=None if judged else "no execution evidence: classes are texts",
                )
        return verdicts
