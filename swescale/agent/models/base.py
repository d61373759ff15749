"""What every model returns and the errors it raises."""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field


class ModelError(RuntimeError):
    """The model could not produce a turn (after retries); the trajectory ends with
    exit status ``model_error``."""


class ContextOverflow(ModelError):
    """The conversation does not fit the model's context, even condensed."""


class ScriptExhausted(ModelError):
    """A scripted model was asked for a turn its script does not have."""


class Completion(BaseModel):
    """One model turn.

    ``tool_calls`` entries are ``{"id", "name", "arguments": dict}``; when the model's
    arguments are not a JSON object, ``arguments`` is ``{}`` and ``raw_arguments`` keeps the
    text it sent plus ``parse_error`` saying why, so the agent can answer with a correction.
    ``logprobs`` entries are ``{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}``.
    ``reasoning`` is a thinking model's reasoning (split from ``text``), of which
    ``reasoning_tokens`` were spent (counted in ``tokens_out`` too).
    """

    text: str = ""
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    logprobs: list[dict[str, Any]] = Field(default_factory=list)
    seconds: float = 0.0
    finish_reason: str | None = None
    # Which endpoint answered and how many requests it took (retries included).
    endpoint: str = ""
    attempts: int = 1
    # True when the history was condensed to fit the context window.
    condensed: bool = False
    reasoning: str = ""
    reasoning_tokens: int = 0
    # True when the reasoning reached the turn's thinking budget and was cut there.
    reasoning_capped: bool = False
    # How the request was constrained ("off", "json_schema", "tool_choice_required", ...).
    decoding: str = ""

    def message(self) -> dict[str, Any]:
        """The assistant message to append to the chat (OpenAI format)."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.reasoning:
            # Recorded with the turn; the client leaves it out of later requests unless
            # model.resend_reasoning is set.
            message["reasoning_content"] = self.reasoning
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.get("id", ""),
                    "type": "function",
                    "function": {
                        "name": call.get("name", ""),
                        "arguments": call.get("raw_arguments")
                        if "raw_arguments" in call
                        else json.dumps(call.get("arguments", {})),
                    },
                }
                for call in self.tool_calls
            ]
        return message

    @property
    def total_logprob(self) -> float | None:
        if not self.logprobs:
            return None
        return float(sum(entry.get("logprob", 0.0) for entry in self.logprobs))


def parse_tool_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    """Normalize one tool call from the wire (arguments as a JSON string) or a script
    (arguments as a dict)."""
    if isinstance(arguments, dict):
        return {"id": call_id, "name": name, "arguments": arguments}
    text = "" if arguments is None else str(arguments)
    try:
        parsed = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        return {
            "id": call_id,
            "name": name,
            "arguments": {},
            "raw_arguments": text,
            "parse_error": f"arguments are not valid JSON: {exc.msg} at position {exc.pos}",
        }
    if not isinstance(parsed, dict):
        return {
            "id": call_id,
            "name": name,
            "arguments": {},
            "raw_arguments": text,
            "parse_error": f"arguments must be a JSON object, got {type(parsed).__name__}",
        }
    return {"id": call_id, "name": name, "arguments": parsed}


def completion_from_message(message: dict[str, Any], **fields: Any) -> Completion:
    """A Completion carrying an OpenAI-format assistant message (recorded turns)."""
    calls = []
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        calls.append(
            parse_tool_call(
                call.get("id") or f"call_{index}",
                function.get("name", call.get("name", "")),
                function.get("arguments", call.get("arguments")),
            )
        )
    return Completion(text=message.get("content") or "", tool_calls=calls, **fields)


@runtime_checkable
class Model(Protocol):
    """A chat model over the OpenAI message format."""

    def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **kw: Any
    ) -> Completion: ...


def sample_n(
    model: Model,
    messages: list[dict[str, Any]],
    n: int,
    tools: list[dict[str, Any]] | None = None,
    **kw: Any,
) -> list[Completion]:
    """``n`` independent samples as ``n`` requests: servers such as llama.cpp ignore the
    ``n`` parameter, so one request per sample is the portable way. Seeds, when given,
    are spread so the samples differ."""
    seed = kw.pop("seed", None)
    out = []
    for index in range(n):
        extra = dict(kw)
        if seed is not None:
            extra["seed"] = seed + index
        out.append(model.complete(messages, tools=tools, **extra))
    return out
