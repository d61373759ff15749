"""Reasoning ("thinking") in model replies: where it is, how much it cost, how it is capped.

Servers return a thinking model's reasoning in one of two places: vLLM (with a reasoning
parser) in a separate message field, ``reasoning_content`` (``reasoning`` in recent
versions); llama.cpp in the text itself, as ``<think> ... </think>`` before the answer.
Either way it is split from the answer, recorded, and counted; it is not sent back as
message content on later turns (``model.resend_reasoning`` sends it back in the
``reasoning_content`` field, which chat templates such as Qwen3's read).

A per-turn thinking budget (``model.reasoning_budget``, tokens) is the server's own cap
where it has one (vLLM's ``thinking_token_budget``; llama-server's
``thinking_budget_tokens`` and ``reasoning_budget_tokens``); elsewhere the client streams
the reply and stops reading once the reasoning passes the budget (see ``OpenAIModel``). Internal compute is the
second axis of test-time scaling ("Thinking Longer, Not Larger"), so the ledger counts
reasoning tokens apart from the rest of the output.
"""

from __future__ import annotations

import re
from typing import Any

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
REASONING_FIELDS = ("reasoning_content", "reasoning")
_THINK_BLOCK = re.compile(r"^\s*<think>(.*?)</think>\s*", re.S)

# The request fields that cap reasoning tokens, per server family (see constrained.py).
# llama-server reads thinking_budget_tokens on its chat endpoint and
# reasoning_budget_tokens in its sampling parameters; versions differ, so both go.
BUDGET_FIELDS = {
    "vllm": ("thinking_token_budget",),
    "llama.cpp": ("thinking_budget_tokens", "reasoning_budget_tokens"),
}


def reasoning_field(message: Any) -> str:
    """The reasoning a server put in its own message field ("" when none)."""
    if isinstance(message, dict):
        values = [message.get(name) for name in REASONING_FIELDS]
    else:
        extra = getattr(message, "model_extra", None) or {}
        values = [getattr(message, name, None) or extra.get(name) for name in REASONING_FIELDS]
    return next((str(v) for v in values if v), "")


def split_think(text: str) -> tuple[str, str]:
    """``(reasoning, answer)`` of a reply that may start with a ``<think>`` block. An
    unclosed block (cut off at the token cap) is all reasoning; a reply holding only the
    closing tag (templates that open the block in the prompt) is split at it."""
    if not text:
        return "", ""
    match = _THINK_BLOCK.match(text)
    if match:
        return match.group(1).strip(), text[match.end() :]
    stripped = text.lstrip()
    if stripped.startswith(THINK_OPEN):
        return stripped[len(THINK_OPEN) :].strip(), ""
    if THINK_CLOSE in text:
        before, after = text.split(THINK_CLOSE, 1)
        return before.strip(), after.lstrip()
    return "", text


def split_reasoning(message: Any) -> tuple[str, str]:
    """``(reasoning, content)`` of an assistant message from the wire."""
    content = (
        message.get("content") if isinstance(message, dict) else getattr(message, "content", "")
    ) or ""
    field = reasoning_field(message)
    if field:
        return field, content
    return split_think(content)


def reasoning_tokens(usage: Any, reasoning: str, answer_chars: int, tokens_out: int) -> int:
    """Output tokens spent on reasoning: the server's count when it reports one
    (``usage.completion_tokens_details.reasoning_tokens``), else ``tokens_out`` split in
    proportion to the characters of reasoning and answer."""
    details = getattr(usage, "completion_tokens_details", None)
    reported = getattr(details, "reasoning_tokens", None) if details is not None else None
    if isinstance(reported, int) and reported > 0:
        return reported
    if not reasoning or tokens_out <= 0:
        return 0
    share = len(reasoning) / max(len(reasoning) + answer_chars, 1)
    return max(1, round(tokens_out * share))


def wire_assistant(message: dict[str, Any], resend: bool) -> dict[str, Any]:
    """An assistant message as sent on later turns: its reasoning dropped, or kept in
    ``reasoning_content`` when ``resend``."""
    reasoning = reasoning_field(message)
    out = {k: v for k, v in message.items() if k not in REASONING_FIELDS}
    if resend and reasoning:
        out["reasoning_content"] = reasoning
    return out


class ThinkTracker:
    """Follows a streamed reply chunk by chunk and counts the chunks (one token each on
    llama.cpp and vLLM) spent on reasoning, in a reasoning field or in a ``<think>``
    block opening the text. ``thinking`` says whether the last chunk was reasoning."""

    def __init__(self) -> None:
        self.tokens = 0
        self.text = ""
        self.thinking = False
        self._done = False  # the text is past its <think> block, or never had one

    def feed(self, reasoning_delta: str, content_delta: str) -> None:
        self.thinking = False
        if reasoning_delta:
            self.tokens += 1
            self.thinking = True
            return
        if not content_delta or self._done:
            return
        self.text += content_delta
        head = self.text.lstrip()
        if not head:
            return
        if not (head.startswith(THINK_OPEN) or THINK_OPEN.startswith(head)):
            self._done = True
            return
        self.tokens += 1
        if THINK_CLOSE in self.text:
            self._done = True
        else:
            self.thinking = True
