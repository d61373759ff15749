"""The execution-free judge: a model reads the issue and a candidate patch (and, when
given, a condensed trajectory) and answers YES or NO; the score is P(YES).

P(YES) comes from the top logprobs at the answer token: the probability mass of every
YES-like token ("YES", " yes", "Yes.") against every NO-like one, normalized over the two.
It is averaged over k samples. Where the server can constrain the answer (llama.cpp,
vLLM), the reply is exactly ``YES`` or ``NO`` (a token or two, however small the
model; the logprobs are the model's own, before the constraint). A reply without logprobs is read as text (score 1 or 0,
flagged ``method: text``); a reply with neither gives 0.5, flagged ``method: garbage``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from swescale.types import Candidate, Cost, Step, Task, Verdict
from swescale.verifiers.base import JUDGE

SYSTEM = (
    "You review patches for a software repository. Given an issue and a candidate patch, "
    "decide whether the patch resolves the issue correctly without breaking other "
    "behaviour. Answer with one word: YES or NO."
)
# The only answers a constrained server lets the judge give (see complete(choices=...)):
# the reply is the answer, so its token's logprobs hold P(YES) against P(NO).
ANSWER_CHOICES = ("YES", "NO")
_YES = {"yes", "y", "true"}
_NO = {"no", "n", "false"}
_ANSWER_LINE = re.compile(r"answer\s*[:=-]?\s*\**\s*(yes|no)\b", re.I)
_LAST_WORD = re.compile(r"\b(yes|no)\b", re.I)


def answer_word(token: str) -> str | None:
    """'yes' / 'no' when a token is one (case, spaces and punctuation ignored)."""
    word = re.sub(r"[^a-z]", "", token.lower())
    if word in _YES:
        return "yes"
    if word in _NO:
        return "no"
    return None


def _position_probability(entry: dict[str, Any]) -> float | None:
    yes = no = 0.0
    seen: set[str] = set()
    alternatives = list(entry.get("top_logprobs") or [])
    alternatives.append({"token": entry.get("token", ""), "logprob": entry.get("logprob")})
    for alt in alternatives:
        token, logprob = alt.get("token"), alt.get("logprob")
        if not isinstance(token, str) or not isinstance(logprob, int | float) or token in seen:
            continue
        seen.add(token)  # the chosen token is usually among the top ones: count it once
        word = answer_word(token)
        if word == "yes":
            yes += math.exp(logprob)
        elif word == "no":
            no += math.exp(logprob)
    if yes + no <= 0:
        return None
    if no == 0 and not entry.get("top_logprobs"):
        # Only the chosen token is known: its own probability is all we can say.
        return min(yes, 1.0)
    if yes == 0 and not entry.get("top_logprobs"):
        return max(0.0, 1.0 - no)
    return yes / (yes + no)


def yes_probability(logprobs: Sequence[dict[str, Any]]) -> float | None:
    """P(YES) at the answer token: the last position whose chosen token is YES/NO-like
    (the answer comes last), else the first position whose alternatives hold one."""
    chosen = [i for i, e in enumerate(logprobs) if answer_word(str(e.get("token", ""))) is not None]
    order = list(reversed(chosen)) + list(range(len(logprobs)))
    for index in order:
        p = _position_probability(logprobs[index])
        if p is not None:
            return p
    return None


def text_answer(text: str) -> float | None:
    """1.0 for YES, 0.0 for NO, None when the text says neither."""
    found = _ANSWER_LINE.findall(text or "")
    if not found:
        found = _LAST_WORD.findall(text or "")
    if not found:
        return None
    return 1.0 if found[-1].lower() == "yes" else 0.0


def score_completions(completions: Sequence[Any]) -> tuple[float, dict[str, Any]]:
    """Mean P(YES) over samples and how each was read (logprobs / text / garbage)."""
    scores, methods = [], []
    for completion in completions:
        p = yes_probability(getattr(completion, "logprobs", None) or [])
        method = "logprobs"
        if p is None:
            p, method = text_answer(getattr(completion, "text", "")), "text"
        if p is None:
            p, method = 0.5, "garbage"
        scores.append(p)
        methods.append(method)
    if not scores:
        return 0.5, {"samples": [], "methods": [], "method": "garbage"}
    overall = "logprobs" if all(m == "logprobs" for m in methods) else sorted(set(methods))[0]
    if "garbage" in methods:
        overall = "garbage" if all(m == "garbage" for m in methods) else "mixed"
    elif "text" in methods:
        overall = "text"
    return sum(scores) / len(scores), {"samples": scores, "methods": methods, "method": overall}


def condense_trajectory(steps: Sequence[Step], max_chars: int = 4000) -> str:
    """The actions and short observations of a trajectory, newest kept when too long."""
    lines = []
    for step in steps:
        for i, action in enumerate(step.actions):
            arg = action.args.get("command") or action.args.get("path") or ""
            lines.append(f"[{step.index}] {action.tool} {str(arg)[:200]}")
            if i < len(step.observations):
                out = step.observations[i].output.strip().splitlines()
                lines += [f"    {line[:160]}" for line in out[:4]]
    text = "\n".join(lines)
    return text if len(text) <= max_chars else "...\n" + text[-max_chars:]


def judge_messages(task: Task, patch: str, trajectory: str = "") -> list[dict[str, str]]:
    user = f"<issue>\n{task.problem_statement}\n</issue>\n\n<patch>\n{patch}\n</patch>\n"
    if trajectory:
        user += f"\n<how_the_patch_was_made>\n{trajectory}\n</how_the_patch_was_made>\n"
    user += "\nDoes this patch resolve the issue? Answer YES or NO."
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


class JudgeVerifier:
    """P(YES) of a model judge per candidate, averaged over ``samples`` requests."""

    name = JUDGE

    def __init__(
        self,
        model: Any,
        samples: int = 1,
        top_logprobs: int = 20,
        max_tokens: int = 256,
        temperature: float = 1.0,
        trajectories: dict[str, Sequence[Step]] | None = None,
        max_patch_chars: int = 20000,
    ) -> None:
        self.model = model
        self.samples = samples
        self.top_logprobs = top_logprobs
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.trajectories = trajectories or {}
        self.max_patch_chars = max_patch_chars

    def verify(self, task: Task, candidates: list[Candidate]) -> dict[str, Verdict]:
        return {c.id: self.judge(task, c) for c in candidates}

    def judge(self, task: Task, cand: Candidate) -> Verdict:
        from swescale.agent.models.base import ModelError

        patch = cand.patch[: self.max_patch_chars]
        steps = next(
            (self.trajectories[t] for t in cand.trajectory_ids if t in self.trajectories), []
        )
        messages = judge_messages(task, patch, condense_trajectory(steps) if steps else "")
        completions, errors = [], []
        for index in range(self.samples):
            try:
                completions.append(
                    self.model.complete(
                        messages,
                        logprobs=True,
                        top_logprobs=self.top_logprobs,
                        max_tokens=self.max_tokens,
                        temperature=self.temperature,
                        seed=index,
                        choices=list(ANSWER_CHOICES),
                    )
                )
            except ModelError as exc:
                errors.append(str(exc))
        cost = Cost(
            tokens_in=sum(c.tokens_in for c in completions),
            tokens_out=sum(c.tokens_out for c in completions),
            reasoning_tokens=sum(getattr(c, "reasoning_tokens", 0) for c in completions),
            model_seconds=sum(c.seconds for c in completions),
        )
        if not completions:
            return Verdict(
                verifier=self.name,
                score=0.5,
                details={"errors": errors},
                cost=cost,
                infra_error=f"judge model failed: {errors[-1] if errors else 'no samples'}",
            )
        score, details = score_completions(completions)
        details["errors"] = errors
        return Verdict(
            verifier=self.name, score=score, passed=score >= 0.5, details=details, cost=cost
        )
