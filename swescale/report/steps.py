"""A trajectory's steps as the report shows them: the model's message, each tool call with
what it returned (long outputs folded), whether the step went wrong, and the repository
diff after it (the files whose change differs from the step before).

Steps are the plain dicts of the record, so fields a newer record adds are ignored and
missing ones are empty.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from swescale.report.text import Folded, fold

_FILE_HEADER = re.compile(r"^diff --git ", re.MULTILINE)
# The state of an untouched repository: the empty diff.
EMPTY_STATE = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@dataclass
class Call:
    tool: str
    command: str  # the main argument (a shell command, a path) for the step index
    args: str  # every argument, as JSON when there is more than the command
    output: Folded
    exit_code: int | None
    flags: list[str]


@dataclass
class StepView:
    index: int
    role: str
    message: Folded
    reasoning: Folded | None
    calls: list[Call]
    tokens_in: int
    tokens_out: int
    seconds: float
    problem: str  # why this step is marked (a failed command, a timeout, an error), or ""
    state: str  # short sha of the repository state after the step, "" when not recorded
    changed: bool  # the repository state differs from the step before
    diff_files: list[tuple[str, str]] = field(default_factory=list)  # (path, file diff)
    diff_stat: str = ""
    inherited: bool = False  # copied from the parent trajectory (a branch)


def message_text(message: Any) -> str:
    """The text of a chat message whatever its shape (a string, a list of parts)."""
    if not isinstance(message, dict):
        return str(message or "")
    content = message.get("content")
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                parts.append(str(part.get("text") or part.get("content") or ""))
            else:
                parts.append(str(part))
        return "\n".join(p for p in parts if p)
    return "" if content is None else str(content)


def split_files(diff: str) -> dict[str, str]:
    """A unified diff split per file (path -> that file's part)."""
    starts = [m.start() for m in _FILE_HEADER.finditer(diff)]
    files = {}
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(diff)
        part = diff[start:end]
        first = part.split("\n", 1)[0]
        path = first.split(" b/", 1)[1] if " b/" in first else first[len("diff --git ") :]
        files[path] = part
    return files


def _main_arg(args: dict[str, Any]) -> str:
    for key in ("command", "cmd", "path", "file", "query", "pattern"):
        if key in args and args[key] is not None:
            return str(args[key])
    return json.dumps(args, sort_keys=True, default=str) if args else ""


def _call(action: dict[str, Any], obs: dict[str, Any] | None) -> Call:
    args = action.get("args") if isinstance(action.get("args"), dict) else {}
    command = _main_arg(args)
    extra = {k: v for k, v in args.items() if str(v) != command}
    obs = obs or {}
    flags = []
    exit_code = obs.get("exit_code")
    if isinstance(exit_code, int) and exit_code != 0:
        flags.append(f"exit {exit_code}")
    if obs.get("timed_out"):
        flags.append("timed out")
    if obs.get("truncated"):
        flags.append("output truncated by the agent")
    if obs.get("error"):
        flags.append(f"error: {obs['error']}")
    if not obs:
        flags.append("no observation recorded")
    return Call(
        tool=str(action.get("tool") or "?"),
        command=command,
        args=json.dumps(extra, indent=1, sort_keys=True, default=str) if extra else "",
        output=fold(str(obs.get("output") or "")),
        exit_code=exit_code if isinstance(exit_code, int) else None,
        flags=flags,
    )


def step_views(
    steps: list[dict[str, Any]],
    read_diff: Callable[[Any], str | None],
    inherited_until: int | None = None,
) -> list[StepView]:
    """Views of ``steps`` in order. ``read_diff(state)`` returns the repository diff a
    step's state names (None when it is not stored); only states that changed are read.
    Steps up to ``inherited_until`` are marked as copied from a parent."""
    from swescale.report.text import diffstat

    views = []
    previous_sha = EMPTY_STATE
    previous_files: dict[str, str] = {}
    for position, step in enumerate(steps):
        message = step.get("message") if isinstance(step.get("message"), dict) else {}
        actions = [a for a in _list(step.get("actions")) if isinstance(a, dict)]
        observations = [o for o in _list(step.get("observations")) if isinstance(o, dict)]
        calls = [
            _call(a, observations[i] if i < len(observations) else None)
            for i, a in enumerate(actions)
        ]
        # Observations without an action (a format error reply) still show.
        for obs in observations[len(actions) :]:
            calls.append(_call({"tool": "(no tool call)"}, obs))
        state = step.get("state") if isinstance(step.get("state"), dict) else None
        sha = str((state or {}).get("sha256") or "")
        changed = bool(sha) and sha != previous_sha
        view = StepView(
            index=_int(step.get("index"), position),
            role=str(message.get("role") or ""),
            message=fold(message_text(message), fold_lines=40, fold_chars=6000),
            reasoning=_reasoning(message),
            calls=calls,
            tokens_in=_int(step.get("tokens_in")),
            tokens_out=_int(step.get("tokens_out")),
            seconds=_float(step.get("seconds")),
            problem="; ".join(
                f for c in calls for f in c.flags if f != "output truncated by the agent"
            ),
            state=sha[:12],
            changed=changed,
            inherited=inherited_until is not None and position <= inherited_until,
        )
        if changed:
            diff = read_diff(state)
            if diff is not None:
                files = split_files(diff)
                view.diff_files = [
                    (path, part) for path, part in files.items() if previous_files.get(path) != part
                ]
                view.diff_files += [
                    (path, f"(the change to {path} was undone)\n")
                    for path in previous_files
                    if path not in files
                ]
                view.diff_stat = diffstat(diff).summary
                previous_files = files
            elif sha:
                view.diff_stat = "state not stored"
        if sha:
            previous_sha = sha
        views.append(view)
    return views


def _reasoning(message: dict[str, Any]) -> Folded | None:
    for key in ("reasoning_content", "reasoning", "thinking"):
        value = message.get(key)
        if isinstance(value, str) and value.strip():
            return fold(value, fold_lines=12, fold_chars=2000)
    return None


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return default


def _float(value: Any) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
