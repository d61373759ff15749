"""The selection agent (CodeMonkeys' selection trajectory): an agent in a sandbox compares
the top-k finalists, may write and run tests that tell them apart, and names the winner
with its reasons.

Finalists come from a cheaper selector's ranking (hybrid by default). Their patches are
put in the sandbox as ``/tmp/finalists/<LABEL>.patch``; the agent writes
``/tmp/selection.txt`` (``WINNER: <LABEL>`` and reasons) before submitting. When the
agent names no valid finalist, the pre-ranking's first is kept and the pick is flagged.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from swescale.selection.selectors import (
    HybridSelector,
    Selector,
    no_candidates,
    pick_probability,
)
from swescale.types import Candidate, Cost, Selection, Task

log = logging.getLogger(__name__)

PROMPT = str(Path(__file__).resolve().parent / "prompts" / "select.j2")
DECISION_FILE = "/tmp/selection.txt"
FINALISTS_DIR = "/tmp/finalists"
_WINNER = re.compile(r"WINNER\s*[:=]\s*\**\s*([A-Za-z])\b", re.I)


def finalist_labels(n: int) -> list[str]:
    return list(string.ascii_uppercase[:n])


def parse_decision(text: str, labels: Sequence[str]) -> tuple[str | None, str]:
    """(winning label or None, reasons) from the decision text; the last WINNER line
    naming a known label wins (an agent may change its mind)."""
    found = [m for m in _WINNER.finditer(text or "") if m.group(1).upper() in labels]
    if not found:
        return None, (text or "").strip()[:2000]
    last = found[-1]
    reasons = (text[: last.start()] + text[last.end() :]).strip()
    return last.group(1).upper(), reasons[:2000]


def describe_finalists(finalists: Sequence[Candidate], max_chars: int = 6000) -> str:
    parts = []
    for label, cand in zip(finalist_labels(len(finalists)), finalists, strict=False):
        patch = cand.patch if len(cand.patch) <= max_chars else cand.patch[:max_chars] + "\n..."
        parts.append(
            f'<finalist label="{label}" file="{FINALISTS_DIR}/{label}.patch">\n{patch}\n</finalist>'
        )
    return "\n".join(parts)


class SelectionAgent:
    """``Selector`` that runs one selection trajectory over the top-k finalists."""

    name = "agent"

    def __init__(
        self,
        make_sandbox: Any,
        model: Any,
        agent_cfg: Any = None,
        finalists: int = 3,
        pre_selector: Selector | None = None,
        tool_mode: str = "text",
    ) -> None:
        self.make_sandbox = make_sandbox
        self.model = model
        self.agent_cfg = agent_cfg
        self.finalists = finalists
        self.pre_selector = pre_selector or HybridSelector(top_k=finalists)
        self.tool_mode = tool_mode
        self.last_cost = Cost()

    def select(self, task: Task, candidates: list[Candidate]) -> Selection:
        if not candidates:
            return no_candidates(task, self.name)
        pre = self.pre_selector.select(task, candidates)
        by_id = {c.id: c for c in candidates}
        ranked = [by_id[i] for i in pre.ranking if i in by_id] or list(candidates)
        finalists = ranked[: max(self.finalists, 1)]
        members = [pre.candidate_id, *pre.tied] if pre.tied else []
        tie = [by_id[i] for i in members if i in by_id]
        if len(tie) > 1:
            # The evidence could not tell these apart: they are the ones to compare.
            finalists = tie[: max(self.finalists, 2)]
        if len(finalists) == 1:
            return pre.model_copy(
                update={"selector": self.name, "rationale": "one finalist: " + pre.rationale}
            )
        labels = finalist_labels(len(finalists))
        label, reasons, error = self._run(task, finalists, labels)
        rest = [c.id for c in ranked if c not in finalists]
        if label is None:
            why = error or "the selection agent named no finalist"
            return pre.model_copy(
                update={
                    "selector": self.name,
                    "flagged": True,
                    "rationale": f"{why}; kept {pre.selector}'s pick. {reasons[:500]}",
                }
            )
        winner = finalists[labels.index(label)]
        order = [winner.id] + [c.id for c in finalists if c is not winner] + rest
        # Among a tie the evidence could not break, the agent chose.
        broke: dict[str, object] = (
            {"tied": [c.id for c in tie if c is not winner], "decided_by": "selection agent"}
            if len(tie) > 1
            else {}
        )
        return Selection(
            task_id=task.id,
            selector=self.name,
            candidate_id=winner.id,
            ranking=order,
            # The winner's P(resolved), the scale every selector states its pick on.
            confidence=pick_probability(
                winner, candidates, getattr(self.pre_selector, "calibration", None)
            ),
            rationale=f"finalist {label} of {len(finalists)}: {reasons}",
            **broke,
        )

    def _run(
        self, task: Task, finalists: Sequence[Candidate], labels: Sequence[str]
    ) -> tuple[str | None, str, str]:
        from swescale.agent.config import AgentConfig
        from swescale.agent.graph import run_agent
        from swescale.sandbox.base import SandboxError

        cfg = self.agent_cfg or AgentConfig()
        try:
            sandbox = self.make_sandbox()
        except SandboxError as exc:
            return None, "", f"no sandbox for the selection agent: {exc}"
        try:
            sandbox.execute(f"mkdir -p {FINALISTS_DIR}", timeout=30)
            for label, cand in zip(labels, finalists, strict=True):
                patch = cand.patch if cand.patch.endswith("\n") else cand.patch + "\n"
                sandbox.write_file(f"{FINALISTS_DIR}/{label}.patch", patch)
            result = run_agent(
                task,
                sandbox,
                self.model,
                cfg,
                feedback=describe_finalists(finalists),
                prompt_variant=PROMPT,
                tool_mode=self.tool_mode,
            )
            self.last_cost = result.totals
            try:
                decision = sandbox.read_file(DECISION_FILE).decode("utf-8", "replace")
            except (FileNotFoundError, SandboxError):
                # No file: the agent may have said it in its last message instead.
                decision = "\n".join(str(s.message.get("content") or "") for s in result.steps[-3:])
            label, reasons = parse_decision(decision, labels)
            status = result.exit_status
            return (
                label,
                reasons,
                "" if label else f"the selection agent named no finalist ({status})",
            )
        except SandboxError as exc:
            return None, "", f"selection sandbox failed: {exc}"
        finally:
            sandbox.close()
