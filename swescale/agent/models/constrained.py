"""Constrained decoding: requests whose reply can only be a valid action.

A small model loses many turns to malformed actions; a server that masks every token
the action's grammar does not allow makes such a turn impossible. Which request
parameters do that depends on the server, detected once per endpoint
(:func:`detect_server`: ``owned_by`` in ``GET /v1/models``, and ``GET /version`` for
vLLM):

================  ==========================================  ============================
server            a tool turn (any of the tools)              a fixed-choice answer
================  ==========================================  ============================
llama.cpp         ``response_format: {"type": "json_object",  ``grammar`` (GBNF)
                  "schema": <union of the tools>}``; the
                  reply is one ``{"name", "arguments"}``
                  object, read back as a tool call
vLLM >= 0.8.3     ``tool_choice: "required"`` (vLLM decodes   ``structured_outputs:
                  the tools' schemas with its structured-     {"choice": [...]}``
                  output backend)                             (``guided_choice`` < 0.10.2)
vLLM < 0.8.3      ``guided_json`` of the union, read back     ``guided_choice``
                  as for llama.cpp
other             ``constrained: on`` only: ``tool_choice:    not constrained
                  "required"`` (the OpenAI parameter)
================  ==========================================  ============================

A text-mode turn (one fenced bash block) is constrained with a grammar (llama.cpp) or a
regular expression (vLLM's ``structured_outputs: {"regex"}``, ``guided_regex`` before
0.10.2) of "a short thought, then exactly one bash block".

llama.cpp's server answers ``tool_choice: "required"`` with a 500 and a named
``tool_choice`` allows one tool only, hence the union schema. The union bounds every
free-text argument (``maxLength``) so that the whole action fits ``max_tokens``: a reply
cut off mid-object would be malformed after all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

# How a request is constrained (recorded in trajectory headers as ``decoding``).
OFF = "off"
JSON_SCHEMA = "json_schema"  # llama.cpp: response_format with the union schema
TOOL_CHOICE_REQUIRED = "tool_choice_required"  # vLLM >= 0.8.3, or any server with "on"
GUIDED_JSON = "guided_json"  # vLLM < 0.8.3: guided_json with the union schema

# Server families told apart by detection.
LLAMA_CPP_PYTHON = "llama-cpp-python"
LLAMA_SERVER = "llama.cpp"
VLLM = "vllm"
UNKNOWN = "unknown"

# Tokens of an action object that are not argument text ({"name": "view", "arguments":
# {"path": ...}}), per character of its skeleton: JSON punctuation and key names merge
# into few tokens; two characters per token errs on the safe side.
_SKELETON_CHARS_PER_TOKEN = 2
_SHORT_FIELDS = {"path", "pattern", "kind"}
_SHORT_FIELD_MAX = 120
_MIN_STRING = 16
# Arguments the tools refuse when empty (an empty new_str or file_text is meaningful).
_NON_EMPTY = {"command", "path", "old_str", "pattern"}


@dataclass(frozen=True)
class ServerInfo:
    """Which server answers at an endpoint (``family``) and its version when known."""

    family: str = UNKNOWN
    version: str = ""


@dataclass(frozen=True)
class Decoding:
    """How requests to one endpoint are constrained."""

    mode: str = OFF
    server: ServerInfo = ServerInfo()

    @property
    def choice_key(self) -> str | None:
        """The request field that restricts an answer to fixed choices, if any."""
        if self.mode == OFF:
            return None
        if self.server.family in (LLAMA_CPP_PYTHON, LLAMA_SERVER):
            return "grammar"
        if self.server.family == VLLM:
            return "structured_outputs" if _at_least(self.server.version, (0, 10, 2)) else "guided"
        return None

    def describe(self) -> str:
        """What trajectory headers record: ``mode`` (``server version``)."""
        server = " ".join(p for p in (self.server.family, self.server.version) if p)
        return f"{self.mode} ({server})" if server else self.mode


def _version_tuple(version: str) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", version.split("+")[0])[:3]
    return tuple(int(n) for n in numbers)


def _at_least(version: str, minimum: tuple[int, ...]) -> bool:
    """Unknown versions count as current (a server recent enough to hide its version)."""
    parsed = _version_tuple(version)
    return not parsed or parsed >= minimum


# ------------------------------------------------------------------------ detection
def detect_server(base_url: str, api_key: str = "", timeout: float = 5.0) -> ServerInfo | None:
    """The server family behind an OpenAI base URL (``.../v1``): :data:`UNKNOWN` when it
    answers without saying, None when it does not answer (ask again later)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        reply = httpx.get(f"{base_url}/models", headers=headers, timeout=timeout)
    except httpx.HTTPError:
        return None
    try:
        models = reply.json().get("data") or [] if reply.status_code == 200 else []
    except (ValueError, AttributeError):
        models = []
    owners = {str(m.get("owned_by", "")).lower() for m in models if isinstance(m, dict)}
    if "vllm" in owners:
        root = base_url.removesuffix("/v1")
        try:
            version = str(httpx.get(f"{root}/version", timeout=timeout).json().get("version", ""))
        except (httpx.HTTPError, ValueError, AttributeError):
            version = ""
        return ServerInfo(VLLM, version)
    if "llamacpp" in owners:
        return ServerInfo(LLAMA_SERVER)
    if "me" in owners:  # llama-cpp-python's server lists its models as owned by "me"
        return ServerInfo(LLAMA_CPP_PYTHON)
    return ServerInfo()


def choose_decoding(setting: str, server: ServerInfo, kind: str = "") -> Decoding:
    """The constraint for ``model.constrained`` = ``setting`` on ``server``. ``kind`` (the
    config's model kind) names the family when detection could not."""
    if setting == OFF:
        return Decoding(OFF, server)
    if server.family == UNKNOWN and kind == "llamacpp":
        server = ServerInfo(LLAMA_CPP_PYTHON)
    elif server.family == UNKNOWN and kind == "vllm":
        server = ServerInfo(VLLM)
    if server.family in (LLAMA_CPP_PYTHON, LLAMA_SERVER):
        return Decoding(JSON_SCHEMA, server)
    if server.family == VLLM:
        if _at_least(server.version, (0, 8, 3)):
            return Decoding(TOOL_CHOICE_REQUIRED, server)
        return Decoding(GUIDED_JSON, server)
    if setting == "on":
        return Decoding(TOOL_CHOICE_REQUIRED, server)
    return Decoding(OFF, server)


# ------------------------------------------------------------------------ the union schema
def _free_strings(parameters: dict[str, Any]) -> list[str]:
    return [
        name
        for name, spec in (parameters.get("properties") or {}).items()
        if spec.get("type") == "string" and "enum" not in spec
    ]


def _skeleton_tokens(name: str, parameters: dict[str, Any]) -> int:
    arguments = {key: "" for key in parameters.get("properties") or {}}
    skeleton = json.dumps({"name": name, "arguments": arguments})
    return len(skeleton) // _SKELETON_CHARS_PER_TOKEN + 1


def _bounded_parameters(name: str, parameters: dict[str, Any], max_tokens: int) -> dict:
    """A tool's parameter schema with every free string bounded so that an action fits
    ``max_tokens`` (one token per character at most, true of ASCII text), the strings a
    tool refuses when empty non-empty, and no properties beyond the declared ones."""
    properties = {k: dict(v) for k, v in (parameters.get("properties") or {}).items()}
    strings = _free_strings(parameters)
    room = max(max_tokens - _skeleton_tokens(name, parameters), _MIN_STRING * len(strings))
    short = [s for s in strings if s in _SHORT_FIELDS]
    long = [s for s in strings if s not in _SHORT_FIELDS]
    share = room // max(len(strings), 1)
    for field in short:
        properties[field]["maxLength"] = max(min(_SHORT_FIELD_MAX, share), _MIN_STRING)
        room -= properties[field]["maxLength"]
    for field in long:
        properties[field]["maxLength"] = max(room // len(long), _MIN_STRING)
    for field in set(strings) & _NON_EMPTY:
        properties[field]["minLength"] = 1
    for spec in properties.values():
        spec.pop("description", None)
        if spec.get("type") == "array" and spec.get("items", {}).get("type") == "integer":
            # view_range: exactly [start, end]
            spec.update(minItems=2, maxItems=2)
    return {
        "type": "object",
        "properties": properties,
        "required": list(parameters.get("required") or []),
        "additionalProperties": False,
    }


def action_schema(tools: list[dict[str, Any]], max_tokens: int) -> dict[str, Any]:
    """One JSON schema for "a call of any of ``tools``": ``{"name": <tool>, "arguments":
    {...}}``, as a union (``anyOf``) of one object per tool."""
    variants = []
    for tool in tools:
        function = tool.get("function") or {}
        name = function.get("name", "")
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        variants.append(
            {
                "type": "object",
                "properties": {
                    "name": {"const": name},
                    "arguments": _bounded_parameters(name, parameters, max_tokens),
                },
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    return {"anyOf": variants}


def choice_grammar(choices: list[str]) -> str:
    """A GBNF grammar (llama.cpp) whose only sentences are ``choices``."""
    return "root ::= " + " | ".join(json.dumps(choice) for choice in choices)


def _bash_block_bounds(max_tokens: int) -> tuple[int, int]:
    """Characters for the thought before the block and for the command, so that the whole
    reply fits ``max_tokens`` (the fence takes about 6 tokens)."""
    room = max(max_tokens - 8, 24)
    thought = room // 4
    return thought, room - thought


def bash_block_grammar(max_tokens: int) -> str:
    """A GBNF grammar (llama.cpp) for a text-mode turn: a short thought without backticks,
    then exactly one ```bash block holding one non-empty command."""
    thought, command = _bash_block_bounds(max_tokens)
    return "\n".join(
        [
            'root ::= (thought "\\n")? "```bash\\n" command "\\n```"',
            f"thought ::= [^`]{{1,{thought}}}",
            f"command ::= [^` \\t\\n] [^`]{{0,{command - 1}}}",
        ]
    )


def bash_block_regex(max_tokens: int) -> str:
    """The same sentences as :func:`bash_block_grammar`, as a regular expression (vLLM)."""
    thought, command = _bash_block_bounds(max_tokens)
    return rf"(?:[^`]{{1,{thought}}}\n)?```bash\n[^` \t\n][^`]{{0,{command - 1}}}\n```"


# ------------------------------------------------------------------------ json-mode wire
def _signature(function: dict[str, Any]) -> str:
    parameters = function.get("parameters") or {}
    required = set(parameters.get("required") or [])
    parts = []
    for name, spec in (parameters.get("properties") or {}).items():
        kind = spec.get("type", "any")
        if "enum" in spec:
            kind = " | ".join(json.dumps(v) for v in spec["enum"])
        elif kind == "array":
            kind = f"[{spec.get('items', {}).get('type', 'any')}, ...]"
        parts.append(f'"{name}"{"" if name in required else "?"}: {kind}')
    return "{" + ", ".join(parts) + "}"


def tools_instruction(tools: list[dict[str, Any]]) -> str:
    """What the ``tools`` field would tell the model, as text: in JSON mode the tools are
    not sent as ``tools`` (the schema replaces them), so the system message lists them."""
    lines = [
        "Reply with exactly one JSON object that calls one tool: "
        '{"name": <tool name>, "arguments": {...}}. The tools:'
    ]
    for tool in tools:
        function = tool.get("function") or {}
        lines.append(
            f"- {function.get('name')} {_signature(function)}: {function.get('description', '')}"
        )
    # No example call: a small model copies an example's arguments turn after turn.
    return "\n".join(lines)


def _call_as_json(call: dict[str, Any]) -> str:
    function = call.get("function") or {}
    arguments = function.get("arguments", "")
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
    except json.JSONDecodeError:
        parsed = arguments
    return json.dumps({"name": function.get("name", ""), "arguments": parsed}, ensure_ascii=False)


def json_mode_messages(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The chat as a model in JSON mode sees it: the tools listed in the system message,
    its earlier tool calls as the JSON objects it wrote, and tool results as user turns
    (consecutive user turns merged, so roles keep alternating)."""
    out: list[dict[str, Any]] = []
    instruction = tools_instruction(tools)
    for message in messages:
        role = message.get("role")
        if role == "system":
            out.append(
                {"role": "system", "content": f"{message.get('content') or ''}\n\n{instruction}"}
            )
            continue
        if role == "assistant" and message.get("tool_calls"):
            text = "\n".join(_call_as_json(call) for call in message["tool_calls"])
            out.append({"role": "assistant", "content": text})
            continue
        if role == "tool":
            message = {"role": "user", "content": message.get("content") or ""}
        else:
            message = {k: v for k, v in message.items() if k in ("role", "content", "name")}
        if out and out[-1]["role"] == "user" and message["role"] == "user":
            out[-1] = {"role": "user", "content": f"{out[-1]['content']}\n\n{message['content']}"}
        else:
            out.append(message)
    if not any(m.get("role") == "system" for m in out):
        out.insert(0, {"role": "system", "content": instruction})
    return out


def calls_from_json_reply(text: str) -> list[dict[str, Any]] | None:
    """The tool call a JSON-mode reply holds (``{"name", "arguments"}``), or None when the
    reply is not such an object (cut off at ``max_tokens``, or unconstrained text)."""
    try:
        # strict=False: llama.cpp's JSON grammar lets raw control characters into strings.
        parsed = json.loads(text, strict=False)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("name"), str):
        return None
    arguments = parsed.get("arguments", {})
    if not isinstance(arguments, dict):
        return None
    return [{"name": parsed["name"], "arguments": json.dumps(arguments, ensure_ascii=False)}]


# ------------------------------------------------------------------------ request params
@dataclass
class ConstrainedRequest:
    """What to send, and how to read the reply: ``json_reply`` says its content is an
    action object (:func:`calls_from_json_reply`); ``applied`` names the constraint sent
    ("off" when none)."""

    params: dict[str, Any]
    messages: list[dict[str, Any]]
    json_reply: bool = False
    applied: str = OFF


def _text_constraint(decoding: Decoding, choices: list[str] | None, max_tokens: int):
    """(extra fields, label) restricting a plain answer to ``choices``, or a text-mode
    turn to one bash block when ``choices`` is None."""
    key = decoding.choice_key
    if key == "grammar":
        grammar = choice_grammar(choices) if choices else bash_block_grammar(max_tokens)
        return {"grammar": grammar}, "grammar"
    if key == "structured_outputs":
        value = {"choice": list(choices)} if choices else {"regex": bash_block_regex(max_tokens)}
        return {"structured_outputs": value}, "structured_outputs"
    if key == "guided":
        if choices:
            return {"guided_choice": list(choices)}, "guided_choice"
        return {"guided_regex": bash_block_regex(max_tokens)}, "guided_regex"
    return {}, OFF


def constrain_request(
    decoding: Decoding,
    params: dict[str, Any],
    messages: list[dict[str, Any]],
    *,
    choices: list[str] | None = None,
    bash_block: bool = False,
) -> ConstrainedRequest:
    """The request under ``decoding``. ``params`` may hold ``tools`` (a tool turn);
    ``choices`` restricts a plain answer to fixed strings; ``bash_block`` asks for a
    text-mode turn (one fenced bash block). Extra fields go in ``extra_body``."""
    params = dict(params)
    extra = dict(params.pop("extra_body", None) or {})
    tools = params.get("tools")
    max_tokens = int(params.get("max_tokens") or 512)
    out = ConstrainedRequest(params, messages)
    if decoding.mode == OFF:
        pass
    elif tools and decoding.mode in (JSON_SCHEMA, GUIDED_JSON):
        schema = action_schema(tools, max_tokens)
        out.messages = json_mode_messages(messages, tools)
        params.pop("tools", None)
        params.pop("tool_choice", None)
        if decoding.mode == JSON_SCHEMA:
            params["response_format"] = {"type": "json_object", "schema": schema}
        else:
            extra["guided_json"] = schema
        out.json_reply, out.applied = True, decoding.mode
    elif tools and decoding.mode == TOOL_CHOICE_REQUIRED:
        params["tool_choice"] = "required"
        out.applied = TOOL_CHOICE_REQUIRED
    elif not tools and (choices or bash_block):
        fields, out.applied = _text_constraint(decoding, choices, max_tokens)
        extra.update(fields)
    if extra:
        params["extra_body"] = extra
    return out


def unsupported_by_server(message: str) -> bool:
    """True when a 4xx/5xx says the constraint itself is what the server cannot do."""
    return bool(
        re.search(
            r"grammar|response_format|json_schema|guided|structured|tool_choice", message, re.I
        )
    )
