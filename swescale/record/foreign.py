"""Other agents' trajectory files, read into swescale's own trajectory record.

Formats read (detected from the content, not the file name):

- ``mini-swe-agent-1``: mini-swe-agent 1.x ``*.traj.json``. Plain chat messages; the
  action is the one fenced block of each assistant message (``action_regex`` of the
  recorded config, default ```` ```bash ````); the observation is the next user message,
  rendered with ``<returncode>``/``<output>`` (or ``<output_head>``/``<output_tail>``
  when the output was longer than 10,000 characters, then the recorded output is
  partial); the final action prints ``MINI_SWE_AGENT_FINAL_OUTPUT``.
- ``mini-swe-agent-1.1``: mini-swe-agent 2.x ``*.traj.json``. Each assistant message
  carries its parsed commands in ``extra.actions``; each observation (``role: tool``, or
  ``user`` for text-based models) its full output in ``extra.raw_output`` and its
  ``extra.returncode``; the run ends with a ``role: exit`` message holding the
  submission. The final action prints ``COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT``.
- ``swe-agent``: SWE-agent ``*.traj`` (0.x and 1.x): a ``trajectory`` list of
  ``{response, thought, action, observation, state, execution_time}`` and
  ``info.submission``. Actions whose first word is one of SWE-agent's own tools
  (``open``, ``edit``, ``str_replace_editor`` ...) are kept but marked not replayable
  (``Action.args["replayable"] = False``); plain shell commands replay in one persistent
  shell, as SWE-agent ran them.

Every reader returns an :class:`ImportedTrajectory`; a file that cannot be read raises
:class:`ForeignFormatError` naming the file and the reason. Nothing here touches a
sandbox: replay lives in :mod:`swescale.replay`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from swescale.types import Action, Observation, Step

SourceFormat = Literal["mini-swe-agent-1", "mini-swe-agent-1.1", "swe-agent", "swescale"]

# The lines mini-swe-agent's final action prints before the submission (1.x, 2.x).
SUBMIT_MARKERS = ("MINI_SWE_AGENT_FINAL_OUTPUT", "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT")
_MSA1_DEFAULT_REGEX = r"```bash\s*\n(.*?)\n```"
_RETURNCODE = re.compile(r"<returncode>(-?\d+)</returncode>")
_OUTPUT = re.compile(r"<output>\n?(.*?)</output>", re.S)
_OUTPUT_HEAD = re.compile(r"<output_head>\n?(.*?)\n?</output_head>", re.S)
_OUTPUT_TAIL = re.compile(r"<output_tail>\n?(.*?)\n?</output_tail>", re.S)
_ELIDED = re.compile(r"<elided_chars>\s*(\d+) characters elided", re.S)
_TIMED_OUT = re.compile(r"timed out and has been killed|timed out after \d+ seconds", re.I)
# SWE-agent's own tools (its bundles: defaults, search, edit_*, str_replace_editor,
# filemap, submit, review_on_submit): not plain shell, so not replayed.
SWE_AGENT_TOOLS = frozenset(
    {
        "open", "goto", "scroll_up", "scroll_down", "create", "edit", "insert", "append",
        "find_file", "search_dir", "search_file", "str_replace_editor", "filemap",
        "submit", "exit_forfeit", "exit_context", "exit_cost", "exit_error", "exit_format",
        "skip", "_state", "_state_anthropic", "view_image",
    }
)  # fmt: skip


class ForeignFormatError(ValueError):
    """A trajectory file that cannot be imported; the message names the file and why."""


class ShellSemantics(BaseModel):
    """How the recorded agent ran its commands, so replay can run them the same way.

    ``subshell``: every command in a fresh ``bash -c`` in ``cwd`` (mini-swe-agent: ``cd``
    and ``export`` do not persist); ``session``: one persistent shell (SWE-agent);
    ``swescale``: swescale's own tools in its persistent session.
    ``timeout`` is seconds per command; ``env`` the variables the agent's environment set.
    ``repo_root`` is where the repository was in the recorded environment (SWE-agent 0.x
    used ``/<owner>__<repo>``), mapped onto the sandbox's working directory on replay.
    """

    kind: Literal["subshell", "session", "swescale"]
    cwd: str = "/testbed"
    timeout: float = 60.0
    env: dict[str, str] = Field(default_factory=dict)
    repo_root: str = "/testbed"
    # Where the commands ran: the image's own environment, or (``official-base``) the
    # base conda env of an official SWE-bench image, which a non-login ``bash -c`` gets
    # (see swescale.swebench.agent_view).
    environment: Literal["image", "official-base"] = "image"
    # When the trajectory was recorded (unix seconds): the package index as of then.
    recorded_at: float | None = None
    # Hex digits git abbreviated object names to in the recorded outputs.
    git_abbrev: int | None = None


class ImportedTrajectory(BaseModel):
    """One foreign trajectory as swescale records it.

    ``steps`` hold the model turns with their actions and the observations as recorded
    (each step's ``chat`` keeps the exact messages the agent saw, for branching);
    ``prompt_messages`` are the system and task messages before the first turn;
    ``submission`` is the patch the agent submitted, byte for byte (None: none recorded).
    """

    source_format: SourceFormat
    source_path: str
    instance_id: str
    model: str = "unknown"
    agent_version: str = ""
    prompt_messages: list[dict[str, Any]] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    exit_status: str = ""
    submission: str | None = None
    shell: ShellSemantics
    # Seconds the recorded agent spent, from its own timestamps (None when not recorded).
    recorded_seconds: float | None = None
    cost_dollars: float = 0.0


# --------------------------------------------------------------------------- entry point


def detect_format(data: Any) -> SourceFormat | None:
    """The format of a parsed trajectory file, or None when it is none of ours."""
    if not isinstance(data, dict):
        return None
    fmt = data.get("trajectory_format")
    if fmt == "mini-swe-agent-1.1":
        return "mini-swe-agent-1.1"
    if fmt == "mini-swe-agent-1" or (
        fmt is None
        and isinstance(data.get("messages"), list)
        and isinstance(data.get("info"), dict)
    ):
        return "mini-swe-agent-1"
    if isinstance(fmt, str) and fmt.startswith("mini-swe-agent"):
        return None  # a newer generation: refuse rather than misread
    if isinstance(data.get("trajectory"), list):
        return "swe-agent"
    return None


def read_foreign(path: str | Path, instance_id: str | None = None) -> ImportedTrajectory:
    """Read a mini-swe-agent or SWE-agent trajectory file, or swescale's own record.

    ``instance_id`` overrides the id found in the file or its name. Raises
    :class:`ForeignFormatError` for an unreadable, truncated or unknown file.
    """
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ForeignFormatError(f"{file}: cannot read: {exc}") from exc
    if _is_own_record(raw):
        return _read_own(file, instance_id)
    try:
        data = json.loads(raw.decode("utf-8-sig", errors="surrogateescape"))
    except json.JSONDecodeError as exc:
        what = "truncated" if exc.pos >= len(raw.rstrip()) - 1 else "not valid JSON"
        raise ForeignFormatError(f"{file}: {what} ({exc.msg} at byte {exc.pos})") from exc
    fmt = detect_format(data)
    if fmt is None:
        fmt_name = data.get("trajectory_format") if isinstance(data, dict) else None
        hint = f" (trajectory_format {fmt_name!r})" if fmt_name else ""
        raise ForeignFormatError(
            f"{file}: unknown trajectory format{hint}; swescale reads mini-swe-agent "
            "*.traj.json (mini-swe-agent-1, mini-swe-agent-1.1), SWE-agent *.traj and its "
            "own trajectory records"
        )
    reader = {
        "mini-swe-agent-1": _read_msa1,
        "mini-swe-agent-1.1": _read_msa11,
        "swe-agent": _read_swe_agent,
    }[fmt]
    try:
        traj = reader(data, file)
    except ForeignFormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ForeignFormatError(f"{file}: malformed {fmt} trajectory: {exc!r}") from exc
    if instance_id:
        traj.instance_id = instance_id
    if not traj.instance_id:
        raise ForeignFormatError(f"{file}: no instance id in the file or its name")
    return traj


def instance_id_from_name(path: Path) -> str:
    """``<id>.traj.json`` / ``<id>.traj`` -> ``<id>``."""
    name = path.name
    for suffix in (".traj.json", ".traj"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


# --------------------------------------------------------------------------- swescale


def _is_own_record(raw: bytes) -> bool:
    first = raw.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0]
    try:
        head = json.loads(first)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(head, dict) and head.get("type") == "header"


def _read_own(file: Path, instance_id: str | None) -> ImportedTrajectory:
    from swescale.record.trajectory import RecordError, load_trajectory

    try:
        record = load_trajectory(file)
    except RecordError as exc:
        raise ForeignFormatError(str(exc)) from exc
    header, footer = record.header, record.footer or {}
    workdir = str(header.get("workdir") or "/testbed")
    return ImportedTrajectory(
        source_format="swescale",
        source_path=str(file),
        instance_id=str(instance_id or header.get("task_id") or ""),
        model=str(header.get("model") or "unknown"),
        steps=record.steps,
        exit_status=str(footer.get("exit_status") or ""),
        submission=footer.get("patch") if record.finished else None,
        shell=ShellSemantics(kind="swescale", cwd=workdir, timeout=120.0, repo_root=workdir),
        recorded_seconds=sum(s.seconds for s in record.steps) or None,
    )


# --------------------------------------------------------------------------- mini-swe-agent


def _msa_shell(
    info: dict[str, Any], messages: list[dict[str, Any]], submission: Any
) -> ShellSemantics:
    env_cfg = ((info.get("config") or {}).get("environment")) or {}
    env = {str(k): str(v) for k, v in (env_cfg.get("env") or {}).items()}
    cwd = str(env_cfg.get("cwd") or "/testbed")
    image = str(env_cfg.get("image") or "")
    interpreter = env_cfg.get("interpreter") or ["bash", "-c"]
    login = any(str(a) in ("-l", "--login", "-lc") for a in interpreter)
    stamps = [
        float(m["extra"]["timestamp"])
        for m in messages
        if isinstance(m.get("extra"), dict) and isinstance(m["extra"].get("timestamp"), int | float)
    ]
    return ShellSemantics(
        kind="subshell",
        cwd=cwd,
        timeout=float(env_cfg.get("timeout") or 60),
        env=env,
        repo_root=cwd,
        environment="official-base" if "sweb.eval" in image and not login else "image",
        recorded_at=min(stamps) if stamps else None,
        git_abbrev=git_abbrev_of(submission if isinstance(submission, str) else ""),
    )


_INDEX_LINE = re.compile(r"(?m)^index ([0-9a-f]{4,40})\.\.([0-9a-f]{4,40})")


def git_abbrev_of(patch: str) -> int | None:
    """The length git abbreviated object names to in ``patch``'s index lines (None when
    the patch has none, or shows whole names)."""
    lengths = {len(x) for m in _INDEX_LINE.finditer(patch) for x in m.groups()}
    if len(lengths) != 1:
        return None
    (length,) = lengths
    return length if length < 40 else None


def _msa_model(info: dict[str, Any]) -> str:
    model_cfg = ((info.get("config") or {}).get("model")) or {}
    return str(model_cfg.get("model_name") or model_cfg.get("name") or "unknown")


def _timestamps_seconds(messages: list[dict[str, Any]]) -> float | None:
    stamps = [
        float(m["extra"]["timestamp"])
        for m in messages
        if isinstance(m.get("extra"), dict) and isinstance(m["extra"].get("timestamp"), int | float)
    ]
    return max(stamps) - min(stamps) if len(stamps) >= 2 else None


def _split_prompt(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The messages before the first assistant turn, and where the turns start."""
    for index, message in enumerate(messages):
        if message.get("role") == "assistant":
            return [_plain(m) for m in messages[:index]], index
    return [_plain(m) for m in messages], len(messages)


def _plain(message: dict[str, Any]) -> dict[str, Any]:
    """A chat message without the agent's bookkeeping (raw API responses are large)."""
    out = {k: v for k, v in message.items() if k not in ("extra", "provider_specific_fields")}
    if out.get("function_call") is None:
        out.pop("function_call", None)
    return out


def _is_submission(command: str) -> bool:
    first = command.strip().splitlines()[0] if command.strip() else ""
    return any(marker in first for marker in SUBMIT_MARKERS)


def _submit_observation(submission: str | None) -> Observation:
    """The final action's output is not recorded as a message: the agent turned it into
    the submission. Recorded as the marker line and the submission, exit status unknown."""
    return Observation(output=f"{SUBMIT_MARKERS[1]}\n{submission or ''}", exit_code=None)


def _read_msa11(data: dict[str, Any], file: Path) -> ImportedTrajectory:
    info = data.get("info") or {}
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise ForeignFormatError(f"{file}: no messages list")
    prompt, start = _split_prompt(messages)
    steps: list[Step] = []
    index = start
    exit_status = str(info.get("exit_status") or "")
    submission = info.get("submission")
    previous_end: Any = None
    while index < len(messages):
        message = messages[index]
        role = message.get("role")
        if role == "exit":
            extra = message.get("extra") or {}
            exit_status = str(extra.get("exit_status") or exit_status)
            if extra.get("submission") is not None:
                submission = extra.get("submission")
            index += 1
            continue
        if role != "assistant":
            raise ForeignFormatError(
                f"{file}: message {index} has role {role!r} where an assistant turn was expected"
            )
        extra = message.get("extra") or {}
        actions = [
            Action(
                tool="bash",
                args={"command": str(a.get("command", ""))},
                call_id=str(a.get("tool_call_id") or ""),
            )
            for a in (extra.get("actions") or [])
        ]
        chat = [_plain(message)]
        observations: list[Observation] = []
        index += 1
        while index < len(messages) and messages[index].get("role") not in ("assistant", "exit"):
            reply = messages[index]
            if reply.get("role") not in ("tool", "user"):
                raise ForeignFormatError(
                    f"{file}: message {index} has role {reply.get('role')!r} where an "
                    "observation was expected"
                )
            chat.append(_plain(reply))
            rextra = reply.get("extra") or {}
            if "raw_output" in rextra or "returncode" in rextra:
                exc_info = str(rextra.get("exception_info") or "")
                observations.append(
                    Observation(
                        output=str(rextra.get("raw_output") or ""),
                        exit_code=_int_or_none(rextra.get("returncode")),
                        timed_out=rextra.get("exception_type") == "TimeoutExpired"
                        or bool(_TIMED_OUT.search(exc_info)),
                        error=exc_info or None,
                        seconds=_elapsed(extra.get("timestamp"), rextra.get("timestamp")),
                    )
                )
            else:  # a format error or another message from the agent loop
                observations.append(
                    Observation(output="", error="format_error: " + _content_text(reply))
                )
            index += 1
        if (
            actions
            and _is_submission(actions[-1].args["command"])
            and len(observations) < len(actions)
        ):
            observations.append(_submit_observation(submission))
        step = _step(len(steps), chat[0], actions, observations, extra, chat)
        # The recorded agent's step time: its model call (from the end of the previous
        # step) and its actions.
        ended = _last_timestamp(messages[start:index]) or extra.get("timestamp")
        step.seconds = (
            _elapsed(previous_end, ended)
            if previous_end is not None
            else sum(o.seconds for o in observations)
        )
        previous_end = ended
        steps.append(step)
    return ImportedTrajectory(
        source_format="mini-swe-agent-1.1",
        source_path=str(file),
        instance_id=str(data.get("instance_id") or instance_id_from_name(file)),
        model=_msa_model(info),
        agent_version=str(info.get("mini_version") or ""),
        prompt_messages=prompt,
        steps=steps,
        exit_status=exit_status,
        submission=submission if isinstance(submission, str) else None,
        shell=_msa_shell(info, messages, submission),
        recorded_seconds=_timestamps_seconds(messages),
        cost_dollars=float((info.get("model_stats") or {}).get("instance_cost") or 0.0),
    )


def _read_msa1(data: dict[str, Any], file: Path) -> ImportedTrajectory:
    info = data.get("info") or {}
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise ForeignFormatError(f"{file}: no messages list")
    agent_cfg = (info.get("config") or {}).get("agent") or {}
    model_cfg = (info.get("config") or {}).get("model") or {}
    regex = re.compile(
        str(agent_cfg.get("action_regex") or model_cfg.get("action_regex") or _MSA1_DEFAULT_REGEX),
        re.S,
    )
    prompt, start = _split_prompt(messages)
    submission = info.get("submission")
    steps: list[Step] = []
    index = start
    while index < len(messages):
        message = messages[index]
        if message.get("role") != "assistant":
            index += 1  # a stray user message (e.g. a resumed run's note): nothing to replay
            continue
        text = _content_text(message)
        commands = regex.findall(text)
        chat = [_plain(message)]
        reply = messages[index + 1] if index + 1 < len(messages) else None
        observations: list[Observation] = []
        actions: list[Action] = []
        if len(commands) == 1:
            actions = [Action(tool="bash", args={"command": commands[0]})]
        if reply is not None and reply.get("role") != "assistant":
            chat.append(_plain(reply))
            index += 2
            if actions:
                observations.append(_parse_rendered(_content_text(reply)))
            else:
                observations.append(
                    Observation(output="", error="format_error: " + _content_text(reply))
                )
        else:
            index += 1
            if actions and _is_submission(actions[0].args["command"]):
                observations.append(_submit_observation(submission))
        steps.append(
            _step(len(steps), chat[0], actions, observations, message.get("extra") or {}, chat)
        )
    return ImportedTrajectory(
        source_format="mini-swe-agent-1",
        source_path=str(file),
        instance_id=str(data.get("instance_id") or instance_id_from_name(file)),
        model=_msa_model(info),
        agent_version=str(info.get("mini_version") or ""),
        prompt_messages=prompt,
        steps=steps,
        exit_status=str(info.get("exit_status") or ""),
        submission=submission if isinstance(submission, str) else None,
        shell=_msa_shell(info, messages, submission),
        recorded_seconds=_timestamps_seconds(messages),
        cost_dollars=float((info.get("model_stats") or {}).get("instance_cost") or 0.0),
    )


def _parse_rendered(text: str) -> Observation:
    """An observation rendered by mini-swe-agent 1.x's templates back into its parts."""
    code = _RETURNCODE.search(text)
    timed_out = bool(_TIMED_OUT.search(text)) and code is None
    full = _OUTPUT.search(text)
    if full:
        return Observation(output=full.group(1), exit_code=_int_or_none(code and code.group(1)))
    head, tail = _OUTPUT_HEAD.search(text), _OUTPUT_TAIL.search(text)
    if head or tail:
        elided = _ELIDED.search(text)
        marker = f"\n<{elided.group(1) if elided else '?'} characters elided>\n"
        output = (head.group(1) if head else "") + marker + (tail.group(1) if tail else "")
        return Observation(
            output=output, exit_code=_int_or_none(code and code.group(1)), truncated=True
        )
    return Observation(
        output=text, exit_code=_int_or_none(code and code.group(1)), timed_out=timed_out
    )


# --------------------------------------------------------------------------- SWE-agent


def _read_swe_agent(data: dict[str, Any], file: Path) -> ImportedTrajectory:
    items = data.get("trajectory")
    if not isinstance(items, list):
        raise ForeignFormatError(f"{file}: no trajectory list")
    info = data.get("info") or {}
    replay_cfg = _json_or_dict(data.get("replay_config"))
    model = str(
        ((replay_cfg.get("agent") or {}).get("model") or {}).get("name")
        or (info.get("model_stats") or {}).get("model")
        or "unknown"
    )
    repo_root = _swe_agent_repo_root(items, replay_cfg)
    steps: list[Step] = []
    for item in items:
        if not isinstance(item, dict):
            raise ForeignFormatError(f"{file}: trajectory entry {len(steps)} is not an object")
        command = str(item.get("action") or "")
        first = command.strip().split(None, 1)[0] if command.strip() else ""
        actions = []
        if command.strip():
            replayable = first not in SWE_AGENT_TOOLS
            tool = "bash" if replayable else first
            args: dict[str, Any] = {"command": command.rstrip("\n")}
            if not replayable:
                args["replayable"] = False
            actions.append(Action(tool=tool, args=args))
        observation = Observation(
            output=str(item.get("observation") or ""),
            exit_code=None,
            seconds=float(item.get("execution_time") or 0.0),
        )
        message = {
            "role": "assistant",
            "content": str(item.get("response") or item.get("thought") or ""),
        }
        steps.append(
            Step(
                index=len(steps),
                message=message,
                actions=actions,
                observations=[observation] if actions else [],
                seconds=float(item.get("execution_time") or 0.0),
            )
        )
    history = data.get("history") or []
    prompt = []
    for entry in history if isinstance(history, list) else []:
        if isinstance(entry, dict) and entry.get("role") == "assistant":
            break
        if isinstance(entry, dict):
            prompt.append({"role": entry.get("role"), "content": _content_text(entry)})
    submission = info.get("submission")
    stats = info.get("model_stats") or {}
    return ImportedTrajectory(
        source_format="swe-agent",
        source_path=str(file),
        instance_id=str(
            ((replay_cfg.get("problem_statement") or {}).get("id")) or instance_id_from_name(file)
        ),
        model=model,
        agent_version=str(info.get("swe_agent_version") or ""),
        prompt_messages=prompt,
        steps=steps,
        exit_status=str(info.get("exit_status") or ""),
        submission=submission if isinstance(submission, str) else None,
        shell=ShellSemantics(kind="session", cwd=repo_root, timeout=1800.0, repo_root=repo_root),
        recorded_seconds=sum(s.seconds for s in steps) or None,
        cost_dollars=float(stats.get("instance_cost") or 0.0),
    )


def _swe_agent_repo_root(items: list[Any], replay_cfg: dict[str, Any]) -> str:
    for item in items:
        state = _json_or_dict(item.get("state") if isinstance(item, dict) else None)
        if state.get("working_dir"):
            return str(state["working_dir"])
    repo = (replay_cfg.get("env") or {}).get("repo") or {}
    name = repo.get("repo_name") if isinstance(repo, dict) else None
    return f"/{name}" if name else "/testbed"


# --------------------------------------------------------------------------- helpers


def _step(
    index: int,
    message: dict[str, Any],
    actions: list[Action],
    observations: list[Observation],
    extra: dict[str, Any],
    chat: list[dict[str, Any]],
) -> Step:
    usage = ((extra.get("response") or {}).get("usage")) or {}
    return Step(
        index=index,
        message=message,
        actions=actions,
        observations=observations,
        tokens_in=int(usage.get("prompt_tokens") or 0),
        tokens_out=int(usage.get("completion_tokens") or 0),
        chat=chat,
    )


def _content_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal parts
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _elapsed(start: Any, end: Any) -> float:
    """Seconds between two recorded timestamps (0 when either is missing): the time the
    recorded agent spent running an action."""
    if isinstance(start, int | float) and isinstance(end, int | float) and end >= start:
        return float(end) - float(start)
    return 0.0


def _last_timestamp(messages: list[dict[str, Any]]) -> float | None:
    for message in reversed(messages):
        stamp = (message.get("extra") or {}).get("timestamp")
        if isinstance(stamp, int | float):
            return float(stamp)
    return None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _json_or_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            loaded = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return {}
