"""The agent's tools and how a model turn becomes actions.

Two ways to act, chosen by ``tool_mode``: ``native`` (OpenAI tool calls: bash, view,
create, str_replace, search, submit) and ``text`` (exactly one fenced bash block per
turn; the command ``submit`` ends the trajectory). A turn that yields no usable action
raises :class:`FormatError`, whose message is the correction sent back to the model.

Tool failures a model can fix (a file that does not exist, an ambiguous edit) come back
as observations with ``error`` set; only the sandbox itself failing ends a trajectory.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Callable
from functools import cache
from typing import Any

import jsonschema

from swescale.agent.config import AgentConfig
from swescale.agent.models.base import Completion, parse_tool_call
from swescale.agent.models.condense import shorten
from swescale.agent.models.constrained import calls_from_json_reply
from swescale.sandbox.base import PathRefused, Sandbox
from swescale.types import Action, Observation

SUBMIT = "submit"
# Marks observations that answer a malformed turn; counted for the bounded retries.
FORMAT_ERROR_PREFIX = "format_error: "
# Marks observations where the sandbox failed (the session died, the engine erred).
INFRA_ERROR_PREFIX = "sandbox_error: "
# Appended to the output of a call identical to one of the previous turn.
REPEATED_CALL_NOTE = (
    "\n[You made this same call in your previous turn; repeating it will not help. "
    "Take a different action.]"
)
_FENCE = re.compile(r"```([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.S)
_SHELL_LANGS = {"bash", "sh", "shell", "console"}


class FormatError(ValueError):
    """A model turn with no usable action; the message tells the model what to send."""


class ToolInputError(ValueError):
    """A tool called with missing or wrongly typed arguments."""


def _fn(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


TOOL_SCHEMAS: list[dict[str, Any]] = [
    _fn(
        "bash",
        "Run a command in a persistent bash shell in the repository (cwd and variables persist).",
        {"command": {"type": "string", "description": "The command to run."}},
        ["command"],
    ),
    _fn(
        "view",
        "Show a file with line numbers (optionally only lines start..end), or list a directory.",
        {
            "path": {"type": "string", "description": "Path, relative to the repository root."},
            "view_range": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "[start, end], 1-based and inclusive; end -1 means the last line.",
            },
        },
        ["path"],
    ),
    _fn(
        "create",
        "Create a new file with the given content (fails if the file exists).",
        {"path": {"type": "string"}, "file_text": {"type": "string"}},
        ["path", "file_text"],
    ),
    _fn(
        "str_replace",
        "Replace the one occurrence of old_str in a file with new_str. old_str must match "
        "exactly once, including whitespace; add surrounding lines to make it unique.",
        {"path": {"type": "string"}, "old_str": {"type": "string"}, "new_str": {"type": "string"}},
        ["path", "old_str", "new_str"],
    ),
    _fn(
        "search",
        "Search file contents for a regular expression (kind=content, the default) or file "
        "names for a glob (kind=filename) under a directory.",
        {
            "pattern": {"type": "string"},
            "path": {
                "type": "string",
                "description": "Directory to search; default the repository.",
            },
            "kind": {"type": "string", "enum": ["content", "filename"]},
        },
        ["pattern"],
    ),
    _fn("submit", "Submit the current changes to the repository as the final answer.", {}, []),
]
TOOL_NAMES = {schema["function"]["name"] for schema in TOOL_SCHEMAS}


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = next(
        s["function"]["parameters"] for s in TOOL_SCHEMAS if s["function"]["name"] == name
    )
    return jsonschema.Draft202012Validator({**schema, "additionalProperties": False})


def argument_problems(name: str, arguments: dict[str, Any]) -> list[str]:
    """Why ``arguments`` do not fit tool ``name``'s JSON schema (empty when they do)."""
    if name not in TOOL_NAMES:
        return [f"unknown tool {name!r}"]
    problems = []
    for error in sorted(_validator(name).iter_errors(arguments), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in error.path)
        problems.append(f"{where}: {error.message}" if where else error.message)
    return problems


# ------------------------------------------------------------------------ parsing turns
def parse_text_action(text: str) -> Action:
    """The one shell block of a text-mode turn, as a bash or submit action."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text or "")]
    shell = [body for lang, body in blocks if lang in _SHELL_LANGS]
    if not shell:
        shell = [body for lang, body in blocks if lang == ""]
    if len(shell) != 1:
        found = "no" if not shell else f"{len(shell)}"
        unterminated = (text or "").count("```") % 2 == 1
        hint = " (a ``` fence was opened but not closed)" if unterminated else ""
        raise FormatError(
            f"Your reply had {found} bash code blocks{hint}; it must contain exactly one, like:\n"
            "```bash\nls -la\n```\nWhen you are done, reply with a block containing only "
            "the command `submit`."
        )
    command = shell[0].strip()
    if not command:
        raise FormatError("Your bash block was empty; put exactly one command in it.")
    if command == SUBMIT:
        return Action(tool=SUBMIT)
    return Action(tool="bash", args={"command": command})


def parse_actions(completion: Completion, tool_mode: str) -> list[Action]:
    """The actions a turn asks for. Native turns without tool calls fall back to a bash
    block in their text (small models often write one instead of calling a tool)."""
    if tool_mode == "native" and completion.tool_calls:
        return [
            Action(
                tool=str(call.get("name") or ""),
                args=dict(call.get("arguments") or {}),
                call_id=str(call.get("id") or ""),
            )
            for call in completion.tool_calls
        ]
    try:
        return [parse_text_action(completion.text)]
    except FormatError as exc:
        written = calls_from_json_reply(completion.text.strip()) if tool_mode == "native" else None
        if written:
            # A tool call written as the JSON object {"name", "arguments"} in the text.
            call = parse_tool_call("call_text", written[0]["name"], written[0]["arguments"])
            return [Action(tool=call["name"], args=call["arguments"], call_id=call["id"])]
        if tool_mode == "native":
            raise FormatError(
                "Your reply called no tool. Call exactly one of the tools "
                f"({', '.join(sorted(TOOL_NAMES))}); call `submit` when you are done."
            ) from exc
        raise


def call_problem(call: dict[str, Any]) -> str | None:
    """Why a native tool call cannot be run as sent, or None."""
    if call.get("parse_error"):
        return f"tool call {call.get('name')!r}: {call['parse_error']}"
    if call.get("name") not in TOOL_NAMES:
        return f"unknown tool {call.get('name')!r}; available: {', '.join(sorted(TOOL_NAMES))}"
    problems = argument_problems(call["name"], dict(call.get("arguments") or {}))
    if problems:
        return f"tool call {call['name']!r}: " + "; ".join(problems[:3])
    return None


# ------------------------------------------------------------------------ running tools
def _str_arg(args: dict[str, Any], name: str, default: str | None = None) -> str:
    value = args.get(name, default)
    if value is None:
        raise ToolInputError(f"missing required argument {name!r}")
    if not isinstance(value, str):
        raise ToolInputError(f"argument {name!r} must be a string, got {type(value).__name__}")
    return value


def _numbered(lines: list[str], first: int) -> str:
    return "\n".join(f"{first + i:6d}\t{line}" for i, line in enumerate(lines))


def _read_text(sandbox: Sandbox, path: str) -> str:
    data = sandbox.read_file(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolInputError(
            f"{path} is not UTF-8 text ({exc.reason}); use bash to inspect it"
        ) from exc


def _infra(message: str | None) -> str | None:
    return f"{INFRA_ERROR_PREFIX}{message}" if message else None


def is_infra_error(observation: Observation) -> bool:
    return bool(observation.error and observation.error.startswith(INFRA_ERROR_PREFIX))


def is_format_error(observation: Observation) -> bool:
    return bool(observation.error and observation.error.startswith(FORMAT_ERROR_PREFIX))


def _subshell(sandbox: Sandbox, command: str, cfg: AgentConfig) -> Observation:
    # A subshell keeps the session's cwd and variables as the model left them.
    result = sandbox.execute(
        f"( cd {shlex.quote(sandbox.workdir)} && {command} )", timeout=cfg.command_timeout
    )
    return Observation(
        output=result.output, exit_code=result.exit_code, timed_out=result.timed_out,
        truncated=result.truncated, error=_infra(result.infra_error), seconds=result.seconds,
    )  # fmt: skip


def tool_bash(sandbox: Sandbox, args: dict[str, Any], cfg: AgentConfig) -> Observation:
    command = _str_arg(args, "command")
    if not command.strip():
        raise ToolInputError("the command is empty")
    result = sandbox.execute(command, timeout=cfg.command_timeout)
    return Observation(
        output=result.output, exit_code=result.exit_code, timed_out=result.timed_out,
        truncated=result.truncated, error=_infra(result.infra_error), seconds=result.seconds,
    )  # fmt: skip


def tool_view(sandbox: Sandbox, args: dict[str, Any], cfg: AgentConfig) -> Observation:
    path = _str_arg(args, "path")
    view_range = args.get("view_range")
    try:
        text = _read_text(sandbox, path)
    except IsADirectoryError:
        listing = _subshell(
            sandbox,
            f"find {shlex.quote(path)} -maxdepth 2 -not -path '*/.git*' | sort | head -n 300",
            cfg,
        )
        return listing
    lines = text.splitlines()
    start, end = 1, len(lines)
    if view_range is not None:
        if (
            not isinstance(view_range, list | tuple)
            or len(view_range) != 2
            or not all(isinstance(v, int) for v in view_range)
        ):
            raise ToolInputError("view_range must be two integers [start, end]")
        start, end = view_range
        end = len(lines) if end == -1 else end
        if not 1 <= start <= max(len(lines), 1) or end < start:
            raise ToolInputError(
                f"view_range {list(view_range)} is outside the file's {len(lines)} lines"
            )
    elif len(lines) > cfg.view_max_lines:
        end = cfg.view_max_lines
    body = _numbered(lines[start - 1 : end], start)
    if end < len(lines) and view_range is None:
        body += f"\n[file has {len(lines)} lines; pass view_range to see the rest]"
    return Observation(output=body, exit_code=0)


def tool_create(sandbox: Sandbox, args: dict[str, Any], cfg: AgentConfig) -> Observation:
    path = _str_arg(args, "path")
    text = _str_arg(args, "file_text")
    try:
        sandbox.read_file(path)
    except FileNotFoundError:
        sandbox.write_file(path, text)
        return Observation(output=f"Created {path} ({len(text.splitlines())} lines).", exit_code=0)
    except IsADirectoryError as exc:
        raise ToolInputError(f"{path} is a directory") from exc
    raise ToolInputError(f"{path} already exists; edit it with str_replace (or bash)")


def tool_str_replace(sandbox: Sandbox, args: dict[str, Any], cfg: AgentConfig) -> Observation:
    path = _str_arg(args, "path")
    old = _str_arg(args, "old_str")
    new = _str_arg(args, "new_str", "")
    if not old:
        raise ToolInputError("old_str is empty; it must be text that occurs once in the file")
    text = _read_text(sandbox, path)
    count = text.count(old)
    if count == 0:
        raise ToolInputError(
            f"old_str was not found in {path}; nothing was changed. {why_not_found(text, old)}"
        )
    if count > 1:
        lines = [text[: m.start()].count("\n") + 1 for m in re.finditer(re.escape(old), text)]
        raise ToolInputError(
            f"old_str occurs {count} times in {path} (lines {', '.join(map(str, lines[:10]))}); "
            "nothing was changed. Include more surrounding lines so it matches exactly once."
        )
    at = text.index(old)
    updated = text[:at] + new + text[at + len(old) :]
    sandbox.write_file(path, updated)
    first = updated[:at].count("\n") + 1
    lines = updated.splitlines()
    lo, hi = max(first - 4, 1), min(first + new.count("\n") + 4, len(lines))
    return Observation(
        output=f"Edited {path}. Lines {lo}-{hi} now read:\n" + _numbered(lines[lo - 1 : hi], lo),
        exit_code=0,
    )


def _lines_text(lines: list[str], first: int, last: int) -> str:
    return _numbered(lines[first - 1 : last], first)


def why_not_found(text: str, old: str, max_chars: int = 600) -> str:
    """Why ``old`` is not in ``text``, briefly, and the text the model probably meant:
    literal backslash-n where the file has line breaks, a difference in whitespace only,
    or the most similar lines (difflib ratio)."""
    if "\\n" in old and old.replace("\\n", "\n") in text:
        return "Your old_str holds the two characters \\n where the file has line breaks; send real newlines."
    lines = text.splitlines()
    wanted = [line for line in old.splitlines() if line.strip()] or [old]
    size = len(wanted)
    squash = [" ".join(w.split()) for w in wanted]
    best, best_ratio = 0, 0.0
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2("\n".join(squash))
    for start in range(max(len(lines) - size + 1, 1)):
        window = [" ".join(line.split()) for line in lines[start : start + size]]
        if window == squash:
            shown = _lines_text(lines, start + 1, start + size)
            return (
                f"Lines {start + 1}-{start + size} match it except for whitespace "
                f"(indentation, spaces or tabs); copy them exactly:\n{shown[:max_chars]}"
            )
        matcher.set_seq1("\n".join(window))
        if matcher.real_quick_ratio() > best_ratio and matcher.ratio() > best_ratio:
            best, best_ratio = start, matcher.ratio()
    if best_ratio < 0.5 or not lines:
        return "Nothing in the file resembles it; view the file and copy the exact text."
    shown = _lines_text(lines, best + 1, min(best + size, len(lines)))
    return (
        f"The most similar text (lines {best + 1}-{min(best + size, len(lines))}, "
        f"{best_ratio:.0%} alike) is:\n{shown[:max_chars]}"
    )


def tool_search(sandbox: Sandbox, args: dict[str, Any], cfg: AgentConfig) -> Observation:
    pattern = _str_arg(args, "pattern")
    path = _str_arg(args, "path", ".") or "."
    kind = _str_arg(args, "kind", "content")
    limit = cfg.search_max_results
    if kind == "filename":
        command = f"find {shlex.quote(path)} -name {shlex.quote(pattern)} -not -path '*/.git/*' | sort | head -n {limit}"
    elif kind == "content":
        command = f"grep -rnIE --exclude-dir=.git -e {shlex.quote(pattern)} -- {shlex.quote(path)} | head -n {limit}"
    else:
        raise ToolInputError("kind must be 'content' or 'filename'")
    result = _subshell(sandbox, command, cfg)
    if result.error is None and not result.output.strip():
        result.output = f"No matches for {pattern!r} under {path}."
    return result


def tool_submit(sandbox: Sandbox, args: dict[str, Any], cfg: AgentConfig) -> Observation:
    return Observation(output="Submitted.", exit_code=0)


TOOLS: dict[str, Callable[[Sandbox, dict[str, Any], AgentConfig], Observation]] = {
    "bash": tool_bash,
    "view": tool_view,
    "create": tool_create,
    "str_replace": tool_str_replace,
    "search": tool_search,
    SUBMIT: tool_submit,
}


def run_action(sandbox: Sandbox, action: Action, cfg: AgentConfig) -> Observation:
    """Run one action. Mistakes the model can fix become observations with ``error``; a
    failing sandbox raises :class:`~swescale.sandbox.base.SandboxError` (except refused
    paths, which are the model's mistake)."""
    tool = TOOLS.get(action.tool)
    if tool is None:
        return Observation(output="", error=f"{FORMAT_ERROR_PREFIX}unknown tool {action.tool!r}")
    try:
        observation = tool(sandbox, action.args, cfg)
    except ToolInputError as exc:
        return Observation(output="", exit_code=1, error=str(exc))
    except (FileNotFoundError, IsADirectoryError, PathRefused) as exc:
        return Observation(output="", exit_code=1, error=str(exc))
    return truncate_observation(observation, cfg.observation_limit)


def truncate_observation(observation: Observation, limit: int) -> Observation:
    if len(observation.output) <= limit:
        return observation
    return observation.model_copy(
        update={"output": shorten(observation.output, limit), "truncated": True}
    )


def format_observation(observation: Observation) -> str:
    """What the model reads for one observation (a pure function of the record)."""
    if observation.error and observation.error.startswith(FORMAT_ERROR_PREFIX):
        return observation.error[len(FORMAT_ERROR_PREFIX) :]
    parts = []
    if observation.error:
        parts.append(f"Error: {observation.error}")
    if observation.timed_out:
        parts.append("The command timed out and was stopped.")
    if observation.output or not parts:
        if observation.exit_code is not None:
            parts.append(f"Exit code: {observation.exit_code}")
        parts.append(observation.output or "(no output)")
    if observation.truncated:
        parts.append("[output truncated]")
    return "\n".join(parts)
