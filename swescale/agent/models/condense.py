"""Fitting a long conversation into a context window.

The agent keeps its full history; only what is sent is condensed, so every request is
condensed afresh from the same history and the result is deterministic. What survives:
the system message, the first user message (the issue), and the most recent turns. The
turns in between are replaced by a short list of the actions they took, appended to the
first user message (a separate message would break chat templates that require the roles
to alternate).
"""

from __future__ import annotations

import json
from typing import Any

# Characters per token assumed by the estimate. Code and logs tokenize worse than prose,
# so this errs toward overestimating; the client lowers it when a server says otherwise.
DEFAULT_CHARS_PER_TOKEN = 3.0
MESSAGE_OVERHEAD_TOKENS = 6
ELIDED_NOTE = "[... {n} characters elided to fit the context window ...]"


def _content_text(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):  # multi-part content: count the text parts
        content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    text = str(content)
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        text += str(function.get("name", "")) + str(function.get("arguments", ""))
    return text


def estimate_tokens(
    messages: list[dict[str, Any]], chars_per_token: float = DEFAULT_CHARS_PER_TOKEN
) -> int:
    chars = sum(len(_content_text(m)) for m in messages)
    return int(chars / chars_per_token) + MESSAGE_OVERHEAD_TOKENS * len(messages)


def shorten(text: str, limit: int) -> str:
    """Keep the head and the tail of ``text`` within ``limit`` characters."""
    if len(text) <= limit:
        return text
    note = ELIDED_NOTE.format(n=len(text) - limit)
    keep = max(limit - len(note), 0)
    head = keep // 2
    return text[:head] + note + text[len(text) - (keep - head) :]


def _action_summary(message: dict[str, Any]) -> str:
    calls = message.get("tool_calls") or []
    if calls:
        parts = []
        for call in calls:
            function = call.get("function") or {}
            arguments = function.get("arguments", "")
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments)
            parts.append(f"{function.get('name', '?')}({arguments[:120]})")
        return "; ".join(parts)
    text = str(message.get("content") or "").strip()
    start = text.find("```")
    if start >= 0:  # the fenced command is the action
        body = text[start:].split("\n", 1)[-1]
        text = body.split("```", 1)[0].strip()
    return text[:160].replace("\n", " ")


def condense(
    messages: list[dict[str, Any]],
    budget_tokens: int,
    keep_last: int = 6,
    chars_per_token: float = DEFAULT_CHARS_PER_TOKEN,
) -> list[dict[str, Any]]:
    """A copy of ``messages`` estimated to fit ``budget_tokens``.

    Stages, each tried only if the previous one is not enough: shorten the observations
    in the middle; drop the middle turns (listing their actions); keep fewer recent turns;
    shorten every message but the system one.
    """
    if estimate_tokens(messages, chars_per_token) <= budget_tokens:
        return [dict(m) for m in messages]
    head_count = 2 if len(messages) >= 2 and messages[1].get("role") == "user" else 1
    head = [dict(m) for m in messages[:head_count]]
    rest = [dict(m) for m in messages[head_count:]]

    def fits(candidate: list[dict[str, Any]]) -> bool:
        return estimate_tokens(candidate, chars_per_token) <= budget_tokens

    # Stage 1: observations older than the recent turns become their head and tail.
    recent_from = max(len(rest) - keep_last, 0)
    shortened = [
        {**m, "content": shorten(str(m.get("content") or ""), 400)}
        if i < recent_from and m.get("role") in ("tool", "user")
        else m
        for i, m in enumerate(rest)
    ]
    if fits(head + shortened):
        return head + shortened

    # Stage 2+: drop the middle, keeping fewer and fewer recent turns.
    for keep in range(min(keep_last, len(rest)), -1, -1):
        start = len(rest) - keep
        # The kept tail must start at an assistant turn: a tool message without the
        # assistant message that called it is rejected by servers.
        while start < len(rest) and rest[start].get("role") != "assistant":
            start += 1
        dropped, tail = rest[:start], rest[start:]
        actions = [_action_summary(m) for m in dropped if m.get("role") == "assistant"]
        new_head = [dict(m) for m in head]
        if dropped:
            note = (
                f"\n\n[Note: {len(actions)} earlier turns were removed to fit the context "
                "window. Actions taken in them, oldest first:\n"
                + "\n".join(f"- {a}" for a in actions[-40:])
                + "]"
            )
            new_head[-1]["content"] = str(new_head[-1].get("content") or "") + note
        candidate = new_head + tail
        if fits(candidate):
            return candidate

    # Last resort: shorten every non-system message to an equal share of the budget.
    candidate = new_head + tail
    others = [m for m in candidate if m.get("role") != "system"]
    system_tokens = estimate_tokens(
        [m for m in candidate if m.get("role") == "system"], chars_per_token
    )
    share = max(
        int((budget_tokens - system_tokens) * chars_per_token / max(len(others), 1)) - 64, 64
    )
    return [
        m
        if m.get("role") == "system"
        else {**m, "content": shorten(str(m.get("content") or ""), share)}
        for m in candidate
    ]
