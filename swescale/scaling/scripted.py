"""Planned turns for the scripted model when a run has labelled tasks: deterministic
trajectories that look at the repository, apply a fix and submit.

``model.script: "plan:gold"`` makes every trajectory apply the task's gold patch;
``"plan:mixed"`` gives a mix of right and wrong trajectories (gold, a wrong fix -- the task's
own ``extra["wrong_patches"]`` when it has one --, gold, an empty submit, ...) so selection
has something to choose between. ``"plan:hard"`` makes the wrong answer the most frequent
one (two decoys -- fixes that pass the issue's tests but break others, where the task has
them -- a wrong fix, a broken edit that does not even import, one gold and one alternative
correct fix), so majority voting fails and only evidence can pick right; its gold
trajectory also writes a test for the issue (the task's test patch), as agents that test
their fix do, which the harvest verifier runs against every candidate. These exist for
tests, benchmarks and the scripted presets: they read the gold patch, which real models
never see.
Any other script value is a turns file, as the scripted model itself reads it.
"""

from __future__ import annotations

import base64
from typing import Any

from swescale.types import Task

GOLD = "plan:gold"
MIXED = "plan:mixed"
HARD = "plan:hard"
PLANS = (GOLD, MIXED, HARD)

# The patterns of the plans by trajectory index.
MIXED_PATTERN = ("gold", "wrong", "gold", "empty")
HARD_PATTERN = ("decoy", "decoy", "gold_tested", "broken", "wrong", "alt")


def _bash(text: str, command: str) -> str:
    return f"{text}\n\n```bash\n{command}\n```"


def _apply_patch_command(patch: str) -> str:
    # base64 keeps the patch intact whatever it holds (fences, quotes, heredoc markers).
    encoded = base64.b64encode(patch.encode()).decode()
    return (
        f"echo {encoded} | base64 -d > /tmp/fix.patch && git apply /tmp/fix.patch "
        "&& git status --short"
    )


def _first(task: Task, key: str) -> str | None:
    found = [p for p in task.extra.get(key) or [] if isinstance(p, str) and p.strip()]
    return found[0] if found else None


def _gold_files(task: Task) -> list[str]:
    return [
        line.split(" b/", 1)[1]
        for line in (task.gold_patch or "").splitlines()
        if line.startswith("diff --git a/") and " b/" in line
    ]


def planned_turns(task: Task, kind: str) -> list[str]:
    """The turns of one scripted trajectory: ``gold``, ``gold_tested`` (the fix and a test
    for the issue), ``wrong``, ``decoy``, ``alt``, ``broken`` or ``empty``."""
    look = _bash("Let me look at the repository first.", "git status --short && ls")
    submit = _bash("The change is in place; submitting.", "submit")
    if kind == "gold":
        if not task.gold_patch:
            raise ValueError(f"task {task.id} has no gold patch for a plan:gold script")
        fix = _bash("Applying the fix.", _apply_patch_command(task.gold_patch))
        return [look, fix, submit]
    if kind == "gold_tested":
        turns = planned_turns(task, "gold")
        if not task.test_patch:
            return turns
        test = _bash("Adding a test for the issue.", _apply_patch_command(task.test_patch))
        return [*turns[:2], test, turns[2]]
    if kind == "wrong":
        # The task's own known-wrong fix when it has one (the mini benchmark does), else
        # an edit that cannot fix anything.
        known = [p for p in task.extra.get("wrong_patches") or [] if isinstance(p, str)]
        if known:
            wrong = _bash("This should fix it.", _apply_patch_command(known[0]))
        else:
            wrong = _bash(
                "I think documenting the behaviour is enough.",
                "printf 'Known issue: see the tracker.\\n' > KNOWN_ISSUES.txt && git status --short",
            )
        return [look, wrong, submit]
    if kind == "decoy":
        decoy = _first(task, "decoy_patches")
        if decoy is None:
            return planned_turns(task, "wrong")
        return [look, _bash("This handles the reported case.", _apply_patch_command(decoy)), submit]
    if kind == "alt":
        alt = _first(task, "alt_patches") or task.gold_patch
        if not alt:
            raise ValueError(f"task {task.id} has no gold or alternative patch")
        return [look, _bash("Fixing it this way.", _apply_patch_command(alt)), submit]
    if kind == "broken":
        target = (_gold_files(task) or ["broken.py"])[0]
        edit = f"printf '\\ndef broken(:\\n' >> {target} && git status --short"
        return [look, _bash("A quick edit.", edit), submit]
    if kind == "empty":
        return [look, submit]
    raise ValueError(f"unknown planned trajectory kind {kind!r}")


def plan_kind(script: str, index: int) -> str:
    if script == GOLD:
        return "gold"
    if script == MIXED:
        return MIXED_PATTERN[index % len(MIXED_PATTERN)]
    if script == HARD:
        return HARD_PATTERN[index % len(HARD_PATTERN)]
    raise ValueError(f"{script!r} is not a planned script ({', '.join(PLANS)})")


def planned_model(task: Task, script: str, index: int, name: str = "scripted") -> Any:
    """A ScriptedModel playing the planned trajectory ``index`` of ``task``."""
    from swescale.agent.models.scripted import ScriptedModel

    return ScriptedModel(
        planned_turns(task, plan_kind(script, index)), on_exhausted="submit", name=name
    )
