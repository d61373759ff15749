"""The verifier interface and the names verdicts are stored under.

A verifier looks at all candidates of a task at once (the good ones compare candidates:
a test x candidate matrix) and returns one Verdict per candidate id. ``annotate`` stores
them on the candidates under the verifier's name, which is what selectors read.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from swescale.types import Candidate, Cost, Task, Verdict

# Names under which verdicts are stored in Candidate.verdicts; selectors read these.
REPRO = "repro"  # reproduction tests: score = fraction of kept tests passed
REGRESSION = "regression"  # existing tests: score = 1 - fraction of base-passing tests broken
JUDGE = "judge"  # execution-free judge: score = P(YES)
REWARD_MODEL = "reward_model"  # torch reward model: score = P(good)
# Model-free evidence for pools of any origin (other systems' patches included):
STATIC = "static"  # applies, compiles, imports, no new undefined names; size and locality
HARVEST = "harvest"  # tests the candidates themselves add, run against every candidate
BEHAVIOUR = "behaviour"  # candidates with identical test outcomes form one class
ISSUE = "issue"  # the issue's own reproducers (snippets, commands): checks flipped
DOCTEST = "doctest"  # the changed modules' doctests, base against candidate
MODEL_VERIFIERS = (JUDGE, REWARD_MODEL)
EXECUTION_VERIFIERS = (REPRO, REGRESSION, HARVEST, ISSUE, DOCTEST)


@runtime_checkable
class Verifier(Protocol):
    name: str

    def verify(self, task: Task, candidates: list[Candidate]) -> dict[str, Verdict]: ...


def annotate(task: Task, candidates: list[Candidate], verifier: Verifier) -> dict[str, Verdict]:
    """Run one verifier and store its verdicts on the candidates (in place)."""
    verdicts = verifier.verify(task, candidates)
    for cand in candidates:
        if cand.id in verdicts:
            cand.verdicts[verifier.name] = verdicts[cand.id]
    return verdicts


def pass_rate_verdict(
    name: str, passed: int, total: int, details: dict, cost: Cost, nothing_judged: str
) -> Verdict:
    """A test x candidate verifier's verdict: the share of its tests a candidate passes
    (``passed`` of ``total``), or neutral 0.5 with ``nothing_judged`` as the infrastructure
    reason when no test judged it (selectors then treat the evidence as missing)."""
    if total == 0:
        return Verdict(
            verifier=name, score=0.5, details=details, cost=cost, infra_error=nothing_judged
        )
    return Verdict(
        verifier=name, score=passed / total, passed=passed == total, details=details, cost=cost
    )
