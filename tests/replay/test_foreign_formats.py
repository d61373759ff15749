"""The trajectory readers on small literal files of each format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swescale.record.foreign import ForeignFormatError, detect_format, read_foreign

PATCH = "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"

MSA_11 = {
    "trajectory_format": "mini-swe-agent-1.1",
    "instance_id": "acme__m-1",
    "info": {
        "exit_status": "Submitted",
        "submission": PATCH,
        "mini_version": "2.2.7",
        "model_stats": {"instance_cost": 0.01, "api_calls": 3},
        "config": {
            "model": {"model_name": "deepseek/deepseek-chat"},
            "environment": {"cwd": "/testbed", "timeout": 60, "env": {"PAGER": "cat"}},
        },
    },
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "<pr_description>fix x</pr_description>"},
        {
            "role": "assistant",
            "content": "Look first.",
            "tool_calls": [{"id": "c1", "function": {"name": "bash", "arguments": "{}"}}],
            "extra": {
                "actions": [{"command": "cat m.py", "tool_call_id": "c1"}],
                "timestamp": 100.0,
                "response": {"usage": {"prompt_tokens": 50, "completion_tokens": 7}},
            },
        },
        {
            "role": "tool",
            "tool_call_id": "c1",
            "content": "<returncode>0</returncode>\n<output>\nx = 1\n</output>",
            "extra": {"raw_output": "x = 1\n", "returncode": 0, "timestamp": 100.5},
        },
        {
            "role": "assistant",
            "content": "Slow one.",
            "extra": {
                "actions": [{"command": "sleep 100", "tool_call_id": "c2"}],
                "timestamp": 103.0,
            },
        },
        {
            "role": "tool",
            "tool_call_id": "c2",
            "content": "<exception>timed out</exception>",
            "extra": {
                "raw_output": "",
                "returncode": -1,
                "timestamp": 163.0,
                "exception_info": "Command 'sleep 100' timed out after 60 seconds",
                "exception_type": "TimeoutExpired",
            },
        },
        {
            "role": "assistant",
            "content": "Done.",
            "extra": {
                "actions": [
                    {
                        "command": "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && git diff",
                        "tool_call_id": "c3",
                    }
                ],
                "timestamp": 170.0,
            },
        },
        {
            "role": "exit",
            "content": PATCH,
            "extra": {"exit_status": "Submitted", "submission": PATCH},
        },
    ],
}

MSA_1 = {
    "info": {
        "exit_status": "Submitted",
        "submission": PATCH,
        "config": {"model": {"model_name": "gpt-4o"}, "environment": {"cwd": "/testbed"}},
    },
    "messages": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "task"},
        {"role": "assistant", "content": "THOUGHT: look\n\n```bash\ncat m.py\n```"},
        {"role": "user", "content": "<returncode>0</returncode>\n<output>\nx = 1\n</output>"},
        {"role": "assistant", "content": "two blocks\n```bash\nls\n```\n```bash\npwd\n```"},
        {
            "role": "user",
            "content": "Please always provide EXACTLY ONE action in triple backticks.",
        },
        {"role": "assistant", "content": "big\n```bash\nseq 100000\n```"},
        {
            "role": "user",
            "content": "<returncode>0</returncode>\n<warning>too long</warning>"
            "<output_head>\n1\n2\n</output_head>\n<elided_chars>\n588885 characters elided\n"
            "</elided_chars>\n<output_tail>\n99999\n100000\n</output_tail>",
        },
        {
            "role": "assistant",
            "content": "```bash\necho MINI_SWE_AGENT_FINAL_OUTPUT && git diff\n```",
        },
    ],
    "trajectory_format": "mini-swe-agent-1",
}

SWE_AGENT = {
    "environment": "swe_main",
    "trajectory": [
        {
            "response": "Let me look.",
            "thought": "Let me look.",
            "action": "ls -F\n",
            "observation": "m.py\n",
            "state": '{"open_file": "n/a", "working_dir": "/acme__m"}',
            "execution_time": 0.2,
        },
        {
            "response": "open it",
            "action": "open m.py",
            "observation": "[File: /acme__m/m.py (1 lines total)]\n1:x = 1",
            "state": {"open_file": "/acme__m/m.py", "working_dir": "/acme__m"},
        },
        {"response": "submit", "action": "submit\n", "observation": PATCH, "state": "{}"},
    ],
    "history": [
        {"role": "system", "content": "SETTING"},
        {"role": "user", "content": "ISSUE"},
        {"role": "assistant", "content": "Let me look."},
    ],
    "info": {
        "submission": PATCH,
        "exit_status": "submitted",
        "model_stats": {"instance_cost": 0.2},
    },
}


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_mini_swe_agent_tool_calls(tmp_path: Path) -> None:
    traj = read_foreign(write(tmp_path, "x.traj.json", MSA_11))
    assert traj.source_format == "mini-swe-agent-1.1"
    assert traj.instance_id == "acme__m-1" and traj.model == "deepseek/deepseek-chat"
    assert [s.actions[0].args["command"] for s in traj.steps][:2] == ["cat m.py", "sleep 100"]
    first = traj.steps[0]
    assert first.observations[0].output == "x = 1\n" and first.observations[0].exit_code == 0
    assert first.tokens_in == 50 and first.tokens_out == 7
    assert first.chat is not None and first.chat[1]["role"] == "tool"
    assert "extra" not in first.chat[0]
    timed_out = traj.steps[1].observations[0]
    assert timed_out.timed_out and timed_out.exit_code == -1 and timed_out.seconds == 60.0
    # The submit action's output is the marker line and the submission.
    assert traj.steps[2].observations[0].output.splitlines()[0].endswith("SUBMIT_FINAL_OUTPUT")
    assert traj.submission == PATCH and traj.exit_status == "Submitted"
    assert (
        traj.shell.kind == "subshell"
        and traj.shell.timeout == 60
        and traj.shell.env == {"PAGER": "cat"}
    )
    assert [m["role"] for m in traj.prompt_messages] == ["system", "user"]


def test_mini_swe_agent_text_actions(tmp_path: Path) -> None:
    traj = read_foreign(write(tmp_path, "acme__m-2.traj.json", MSA_1))
    assert traj.source_format == "mini-swe-agent-1" and traj.instance_id == "acme__m-2"
    assert traj.steps[0].actions[0].args["command"] == "cat m.py"
    assert traj.steps[0].observations[0].output == "x = 1\n"
    # Two blocks: a format error, no action.
    assert traj.steps[1].actions == [] and traj.steps[1].observations[0].error.startswith(
        "format_error"
    )
    elided = traj.steps[2].observations[0]
    assert elided.truncated and "588885 characters elided" in elided.output
    assert traj.steps[3].observations[0].output.startswith("COMPLETE_TASK_AND_SUBMIT")


def test_swe_agent(tmp_path: Path) -> None:
    traj = read_foreign(write(tmp_path, "acme__m-3.traj", SWE_AGENT))
    assert traj.source_format == "swe-agent" and traj.instance_id == "acme__m-3"
    assert traj.shell.kind == "session" and traj.shell.repo_root == "/acme__m"
    ls, open_, submit = traj.steps
    assert ls.actions[0].tool == "bash" and ls.actions[0].args["command"] == "ls -F"
    assert open_.actions[0].tool == "open" and open_.actions[0].args["replayable"] is False
    assert submit.actions[0].tool == "submit"
    assert traj.submission == PATCH and traj.prompt_messages[0]["content"] == "SETTING"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"trajectory_format": "mini-swe-agent-1.1", "messages": [', "truncated"),
        (b"\x00\x01 not json", "not valid JSON"),
        (b'{"hello": 1}', "unknown trajectory format"),
        (b'{"trajectory_format": "mini-swe-agent-9", "messages": []}', "mini-swe-agent-9"),
        (b"[1, 2]", "unknown trajectory format"),
    ],
)
def test_bad_files_are_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.traj.json"
    path.write_bytes(content)
    with pytest.raises(ForeignFormatError, match=message):
        read_foreign(path)


def test_wrong_roles_are_an_error_not_a_crash(tmp_path: Path) -> None:
    data = json.loads(json.dumps(MSA_11))
    data["messages"].insert(3, {"role": "system", "content": "??"})
    with pytest.raises(ForeignFormatError, match="role 'system'"):
        read_foreign(write(tmp_path, "r.traj.json", data))


def test_detect_format() -> None:
    assert detect_format(MSA_11) == "mini-swe-agent-1.1"
    assert detect_format(MSA_1) == "mini-swe-agent-1"
    assert detect_format(SWE_AGENT) == "swe-agent"
    assert detect_format({"type": "header"}) is None
