"""A deterministic model: planned turns, or the turns of a recorded trajectory.

The turn returned is chosen by the number of assistant messages already in the chat,
not by a counter inside the model, so one ScriptedModel can serve many trajectories at
once, and resuming or branching at step k gets turn k again.

A planned turn is a string (the assistant's text) or a mapping with ``content`` and/or
``tool_calls`` (``[{"name": ..., "arguments": {...}}]``), optionally ``tokens_in``,
``tokens_out`` and ``logprobs``. A script file is JSON or YAML holding a list of turns
(or ``{"turns": [...]}``); a ``.jsonl`` file is read as a trajectory record and its
steps' messages are replayed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from swescale.agent.models.base import Completion, ModelError, ScriptExhausted, parse_tool_call

SUBMIT_TEXT = "Submitting the current changes.\n\n```bash\nsubmit\n```"


class ScriptError(ModelError):
    """A script that cannot be used (missing file, wrong shape); says which and why."""


def _turn_from_item(item: Any, where: str) -> Completion:
    if isinstance(item, Completion):
        return item
    if isinstance(item, str):
        return Completion(text=item, tokens_out=max(len(item) // 4, 1))
    if not isinstance(item, dict):
        raise ScriptError(
            f"{where}: a turn must be a string or a mapping, got {type(item).__name__}"
        )
    unknown = set(item) - {
        "content",
        "text",
        "tool_calls",
        "tokens_in",
        "tokens_out",
        "logprobs",
        "role",
    }
    if unknown:
        raise ScriptError(f"{where}: unknown keys {sorted(unknown)}")
    calls = []
    for index, call in enumerate(item.get("tool_calls") or []):
        if not isinstance(call, dict):
            raise ScriptError(f"{where}: tool call {index} must be a mapping")
        function = call.get("function") or {}
        name = call.get("name") or function.get("name")
        if not name:
            raise ScriptError(f"{where}: tool call {index} has no name")
        arguments = call.get("arguments", function.get("arguments", {}))
        calls.append(parse_tool_call(call.get("id") or f"call_{index}", name, arguments))
    text = item.get("content", item.get("text")) or ""
    return Completion(
        text=str(text),
        tool_calls=calls,
        tokens_in=int(item.get("tokens_in", 0)),
        tokens_out=int(item.get("tokens_out", max(len(str(text)) // 4, 1))),
        logprobs=list(item.get("logprobs") or []),
    )


def load_script(path: str | Path) -> list[Completion]:
    """Turns from a JSON/YAML script file or a trajectory record (``.jsonl``)."""
    file = Path(path)
    if not file.exists():
        raise ScriptError(f"script file {file} does not exist")
    if file.suffix == ".jsonl":
        from swescale.record.trajectory import load_trajectory

        trajectory = load_trajectory(file)
        return [
            _turn_from_item(
                {k: v for k, v in step.message.items() if k in ("content", "tool_calls")}
                | {"tokens_in": step.tokens_in, "tokens_out": step.tokens_out},
                f"{file} step {step.index}",
            )
            for step in trajectory.steps
        ]
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8-sig"))  # YAML is a superset of JSON
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ScriptError(f"{file}: not valid JSON/YAML: {exc}") from exc
    if isinstance(data, dict) and "turns" in data:
        data = data["turns"]
    if not isinstance(data, list):
        raise ScriptError(f"{file}: expected a list of turns (or a mapping with 'turns')")
    return [_turn_from_item(item, f"{file} turn {i}") for i, item in enumerate(data)]


class ScriptedModel:
    """A :class:`Model` that answers from a script.

    ``on_exhausted="submit"`` answers a submit once the script runs out, instead of
    raising :class:`ScriptExhausted`.
    """

    # What trajectory headers record as the decoding mode: the turns are planned ones.
    decoding = "scripted"

    def __init__(
        self,
        turns: Sequence[Any] | str | Path,
        on_exhausted: str = "error",
        name: str = "scripted",
    ) -> None:
        if isinstance(turns, str | Path):
            self.turns = load_script(turns)
        else:
            self.turns = [_turn_from_item(t, f"turn {i}") for i, t in enumerate(turns)]
        if on_exhausted not in ("error", "submit"):
            raise ValueError("on_exhausted must be 'error' or 'submit'")
        self.on_exhausted = on_exhausted
        self.name = name
        self.calls = 0  # requests served (for benchmarks and tests; never used to choose)

    def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **kw: Any
    ) -> Completion:
        self.calls += 1
        index = sum(1 for m in messages if m.get("role") == "assistant")
        if index < len(self.turns):
            turn = self.turns[index]
        elif self.on_exhausted == "submit":
            if tools:
                turn = Completion(
                    tool_calls=[{"id": "call_submit", "name": "submit", "arguments": {}}]
                )
            else:
                turn = Completion(text=SUBMIT_TEXT)
        else:
            raise ScriptExhausted(
                f"script of {len(self.turns)} turns has no turn {index} "
                f"(the chat already holds {index} assistant messages)"
            )
        tokens_in = turn.tokens_in or sum(len(str(m.get("content") or "")) for m in messages) // 4
        return turn.model_copy(update={"tokens_in": tokens_in, "seconds": 0.0}, deep=True)

    @staticmethod
    def dump(turns: Sequence[Any], path: str | Path) -> Path:
        """Write planned turns as a JSON script file."""
        file = Path(path)
        serialized = [
            t.model_dump(include={"text", "tool_calls", "tokens_out"})
            if isinstance(t, Completion)
            else t
            for t in turns
        ]
        file.write_text(json.dumps(serialized, indent=1))
        return file
