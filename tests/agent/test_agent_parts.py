"""The agent's pure parts: parsing turns, rebuilding chats, condensing, scripts, prompts."""

from __future__ import annotations

import json

import pytest

from swescale.agent.config import AgentConfig, ModelConfig
from swescale.agent.graph import messages_from_steps, step_messages
from swescale.agent.models import ModelError, build_model
from swescale.agent.models.base import Completion, ScriptExhausted, parse_tool_call, sample_n
from swescale.agent.models.condense import condense, estimate_tokens
from swescale.agent.models.scripted import ScriptedModel, ScriptError
from swescale.agent.prompts import PromptError, render_prompts
from swescale.agent.tools import (
    FORMAT_ERROR_PREFIX,
    FormatError,
    argument_problems,
    call_problem,
    format_observation,
    parse_actions,
    parse_text_action,
    truncate_observation,
    why_not_found,
)
from swescale.record.trajectory import TrajectoryRecorder, make_header
from swescale.types import Action, Observation, Step, Task


# ------------------------------------------------------------------------ text actions
def test_one_bash_block_is_the_action():
    action = parse_text_action("I will look.\n```bash\nls -la /repo\n```\n")
    assert action == Action(tool="bash", args={"command": "ls -la /repo"})


def test_submit_block_is_a_submit():
    assert parse_text_action("Done.\n```bash\nsubmit\n```").tool == "submit"


def test_unlabeled_block_is_accepted_when_it_is_the_only_one():
    assert parse_text_action("```\necho hi\n```").args == {"command": "echo hi"}


def test_python_blocks_are_not_commands():
    text = "Here is code:\n```python\nx = 1\n```\nNow run:\n```bash\npython3 a.py\n```"
    assert parse_text_action(text).args["command"] == "python3 a.py"


@pytest.mark.parametrize(
    "text, message",
    [
        ("I think the bug is in parse().", "had no bash code blocks"),
        ("```bash\nls\n```\n```bash\npwd\n```", "had 2 bash code blocks"),
        ("```bash\nls -la", "opened but not closed"),
        ("```python\nx = 1\n```", r"had no bash code blocks;"),
        ("```bash\n   \n```", "empty"),
        ("", "had no bash code blocks"),
    ],
)
def test_malformed_text_turns_get_a_correction(text, message):
    with pytest.raises(FormatError, match=message):
        parse_text_action(text)


def test_native_turn_without_calls_falls_back_to_a_bash_block():
    turn = Completion(text="```bash\ngrep -rn foo .\n```")
    assert parse_actions(turn, "native") == [
        Action(tool="bash", args={"command": "grep -rn foo ."})
    ]
    with pytest.raises(FormatError, match="called no tool"):
        parse_actions(Completion(text="no idea"), "native")


def test_native_calls_become_actions_and_bad_calls_are_explained():
    good = parse_tool_call("c1", "view", '{"path": "a.py"}')
    bad_json = parse_tool_call("c2", "bash", '{"command": "ls')
    not_object = parse_tool_call("c3", "bash", "[1, 2]")
    unknown = parse_tool_call("c4", "rm_everything", "{}")
    turn = Completion(tool_calls=[good, bad_json, not_object, unknown])
    actions = parse_actions(turn, "native")
    assert [a.tool for a in actions] == ["view", "bash", "bash", "rm_everything"]
    assert actions[0].args == {"path": "a.py"} and actions[0].call_id == "c1"
    assert call_problem(good) is None
    assert "not valid JSON" in call_problem(bad_json)
    assert "must be a JSON object" in call_problem(not_object)
    assert "unknown tool" in call_problem(unknown)
    # The raw arguments survive in the message, so a rebuilt chat is what the model sent.
    assert turn.message()["tool_calls"][1]["function"]["arguments"] == '{"command": "ls'


def test_tool_arguments_are_checked_against_the_tools_json_schema():
    assert argument_problems("view", {"path": "a.py", "view_range": [1, 5]}) == []
    assert argument_problems("view", {}) == ["'path' is a required property"]
    assert argument_problems("bash", {"command": 3}) == ["command: 3 is not of type 'string'"]
    assert "Additional properties" in argument_problems("bash", {"command": "ls", "x": 1})[0]
    missing = parse_tool_call("c1", "str_replace", '{"path": "a.py", "old_str": "x"}')
    assert call_problem(missing) == "tool call 'str_replace': 'new_str' is a required property"


def test_a_tool_call_written_as_json_text_is_accepted():
    turn = Completion(text='{"name": "view", "arguments": {"path": "calc.py"}}')
    [action] = parse_actions(turn, "native")
    assert action.tool == "view" and action.args == {"path": "calc.py"}
    with pytest.raises(FormatError):
        parse_actions(turn, "text")  # text mode wants a bash block


def test_a_failed_str_replace_says_briefly_why_and_shows_what_was_meant():
    text = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
    literal = why_not_found(text, "def add(a, b):\\n    return a - b")
    assert "\\n" in literal and "real newlines" in literal
    spaced = why_not_found(text, "def add(a, b):\n  return a - b")
    assert "except for whitespace" in spaced and "     2\t    return a - b" in spaced
    close = why_not_found(text, "    return a ^ b")
    assert "lines 2-2" in close and "return a - b" in close and "alike" in close
    assert "Nothing in the file resembles it" in why_not_found(text, "class Zebra(Animal):")


# ------------------------------------------------------------------------ observations
def test_format_observation_shows_exit_code_errors_and_corrections():
    assert format_observation(Observation(output="hi\n", exit_code=0)) == "Exit code: 0\nhi\n"
    assert format_observation(Observation(output="", exit_code=2)) == "Exit code: 2\n(no output)"
    assert format_observation(Observation(output="", exit_code=1, error="boom")) == "Error: boom"
    timed = format_observation(Observation(output="", exit_code=124, timed_out=True))
    assert "timed out" in timed
    correction = Observation(output="", error=FORMAT_ERROR_PREFIX + "Send one block.")
    assert format_observation(correction) == "Send one block."


def test_truncate_observation_keeps_head_and_tail():
    long = "HEAD" + "x" * 10_000 + "TAIL"
    cut = truncate_observation(Observation(output=long, exit_code=0), 500)
    assert cut.truncated and len(cut.output) <= 500
    assert cut.output.startswith("HEAD") and cut.output.endswith("TAIL")
    assert "elided" in cut.output


# ------------------------------------------------------------------------ chat rebuild
def _text_step(index: int, command: str, output: str) -> Step:
    return Step(
        index=index,
        message={"role": "assistant", "content": f"```bash\n{command}\n```"},
        actions=[Action(tool="bash", args={"command": command})],
        observations=[Observation(output=output, exit_code=0)],
    )


def test_messages_from_steps_text_mode():
    steps = [_text_step(0, "ls", "a.py\n"), _text_step(1, "cat a.py", "x = 1\n")]
    messages = messages_from_steps("SYS", "ISSUE", steps)
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert messages[3]["content"] == "Exit code: 0\na.py\n"
    assert messages_from_steps("SYS", "ISSUE", steps[:1]) == messages[:4]


def test_messages_from_steps_native_mode_pairs_each_call_with_a_tool_message():
    turn = Completion(
        tool_calls=[
            {"id": "a", "name": "bash", "arguments": {"command": "ls"}},
            {"id": "b", "name": "submit", "arguments": {}},
        ]
    )
    step = Step(
        index=0,
        message=turn.message(),
        actions=[Action(tool="bash", call_id="a"), Action(tool="submit", call_id="b")],
        observations=[Observation(output="x\n", exit_code=0)],  # the second never ran
    )
    messages = step_messages(step)
    assert [m["role"] for m in messages] == ["assistant", "tool", "tool"]
    assert [m["tool_call_id"] for m in messages[1:]] == ["a", "b"]
    assert messages[2]["content"] == "Not run."
    assert messages[0]["content"] == ""  # never None: llama.cpp rejects null content


# ------------------------------------------------------------------------ condensing
def _long_chat(turns: int, observation_chars: int) -> list[dict]:
    chat = [{"role": "system", "content": "SYS"}, {"role": "user", "content": "THE ISSUE"}]
    for i in range(turns):
        chat.append({"role": "assistant", "content": f"```bash\ncat file{i}.py\n```"})
        chat.append({"role": "user", "content": f"obs{i} " + "y" * observation_chars})
    return chat


def test_condense_keeps_system_issue_and_recent_turns_within_budget():
    chat = _long_chat(30, 3000)
    budget = 2000
    out = condense(chat, budget)
    assert estimate_tokens(out) <= budget
    assert out[0] == chat[0]
    assert out[1]["content"].startswith("THE ISSUE")
    assert out[-1]["content"].startswith("obs29")  # the latest observation survives
    assert out[2]["role"] == "assistant"
    assert "earlier turns were removed" in out[1]["content"]
    assert "cat file0.py" in out[1]["content"]  # the dropped actions are listed


def test_condense_is_identity_when_it_fits_and_deterministic():
    small = _long_chat(2, 10)
    assert condense(small, 10_000) == small
    big = _long_chat(20, 2000)
    assert condense(big, 3000) == condense(big, 3000)


def test_condense_never_starts_the_tail_with_an_orphan_tool_message():
    chat = [{"role": "system", "content": "S"}, {"role": "user", "content": "I"}]
    for i in range(10):
        chat.append(
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": f"c{i}",
                        "type": "function",
                        "function": {"name": "bash", "arguments": "{}"},
                    }
                ],
            }
        )
        chat.append({"role": "tool", "tool_call_id": f"c{i}", "content": "z" * 4000})
    out = condense(chat, 3000)
    assert out[2]["role"] == "assistant"
    ids = {c["id"] for m in out if m["role"] == "assistant" for c in m.get("tool_calls", [])}
    assert all(m["tool_call_id"] in ids for m in out if m["role"] == "tool")


def test_condense_shortens_even_a_single_huge_observation():
    chat = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "I"},
        {"role": "assistant", "content": "```bash\ncat big\n```"},
        {"role": "user", "content": "q" * 100_000},
    ]
    out = condense(chat, 1000)
    assert estimate_tokens(out) <= 1000


# ------------------------------------------------------------------------ scripted model
def test_scripted_turn_follows_the_number_of_assistant_messages():
    model = ScriptedModel(["first", "second", {"content": "", "tool_calls": [{"name": "submit"}]}])
    chat = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    assert model.complete(chat).text == "first"
    assert model.complete(chat).text == "first"  # asking again does not advance
    chat += [{"role": "assistant", "content": "first"}, {"role": "user", "content": "o"}]
    assert model.complete(chat).text == "second"
    chat += [{"role": "assistant", "content": "second"}, {"role": "user", "content": "o"}]
    assert model.complete(chat).tool_calls[0]["name"] == "submit"
    chat += [{"role": "assistant", "content": ""}]
    with pytest.raises(ScriptExhausted, match="has no turn 3"):
        model.complete(chat)


def test_scripted_model_can_submit_when_exhausted():
    model = ScriptedModel([], on_exhausted="submit")
    assert "submit" in model.complete([]).text
    assert model.complete([], tools=[{}]).tool_calls[0]["name"] == "submit"
    assert len(sample_n(model, [], 3, seed=1)) == 3


def test_script_files_yaml_json_and_trajectory(tmp_path):
    (tmp_path / "s.yaml").write_text('turns:\n  - "```bash\\nls\\n```"\n  - content: hi\n')
    assert [t.text for t in ScriptedModel(tmp_path / "s.yaml").turns] == ["```bash\nls\n```", "hi"]
    (tmp_path / "s.json").write_text(
        json.dumps([{"tool_calls": [{"name": "bash", "arguments": {"command": "ls"}}]}])
    )
    assert ScriptedModel(tmp_path / "s.json").turns[0].tool_calls[0]["arguments"] == {
        "command": "ls"
    }
    with TrajectoryRecorder(tmp_path / "t.jsonl", make_header("t", "task")) as rec:
        rec.write_step(_text_step(0, "ls", "a\n"))
        rec.write_step(_text_step(1, "pwd", "/repo\n"))
    replay = ScriptedModel(tmp_path / "t.jsonl")
    assert [t.text for t in replay.turns] == ["```bash\nls\n```", "```bash\npwd\n```"]
    built = build_model(ModelConfig(kind="scripted", script=str(tmp_path / "s.yaml")))
    assert isinstance(built, ScriptedModel)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not: [valid", "not valid JSON/YAML"),
        ("42", "expected a list of turns"),
        ("[3]", "must be a string or a mapping"),
        ('[{"contents": "typo"}]', "unknown keys"),
        ('[{"tool_calls": [{"arguments": {}}]}]', "has no name"),
    ],
)
def test_bad_scripts_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ScriptError, match=message):
        ScriptedModel(path)


def test_missing_script_and_missing_endpoints_are_clear_errors(tmp_path):
    with pytest.raises(ScriptError, match="does not exist"):
        ScriptedModel(tmp_path / "none.yaml")
    with pytest.raises(ModelError, match="needs model.script"):
        build_model(ModelConfig(kind="scripted"))
    with pytest.raises(ModelError, match="needs model.endpoints"):
        build_model(ModelConfig(kind="openai"))


# ------------------------------------------------------------------------ prompts
SECRET_TASK = Task(
    id="demo__1",
    repo="demo/calc",
    base_commit="abc",
    problem_statement="add() returns the wrong sign",
    hints="look at calc.py",
    gold_patch="GOLD-PATCH-SECRET",
    test_patch="TEST-PATCH-SECRET",
    fail_to_pass=["tests/test_calc.py::test_SECRET_NAME"],
    pass_to_pass=["tests/test_calc.py::test_OTHER_SECRET"],
)


@pytest.mark.parametrize("variant", ["agent", "agent_minimal", "agent_reproduce_first", "testing"])
@pytest.mark.parametrize("tool_mode", ["text", "native"])
def test_prompts_show_the_issue_and_never_the_answers(variant, tool_mode):
    system, user = render_prompts(SECRET_TASK, variant, tool_mode=tool_mode, feedback="try harder")
    text = system + user
    assert "add() returns the wrong sign" in user and "look at calc.py" in user
    assert "try harder" in user
    assert "SECRET" not in text
    assert ("submit" in system) and system and user


def test_feedback_section_only_when_given_and_marks_cannot_be_faked():
    _, user = render_prompts(SECRET_TASK, "agent")
    assert "feedback_from_earlier_rounds" not in user
    sneaky = SECRET_TASK.model_copy(update={"problem_statement": "x\x1e\x1eINSTANCE\x1e\x1e y"})
    _, user = render_prompts(sneaky, "agent")
    assert "INSTANCE" in user


def test_testing_variant_asks_for_a_failing_test():
    _, user = render_prompts(SECRET_TASK, "testing")
    assert "Do NOT fix the issue" in user and "FAILS on the current code" in user


def test_missing_or_broken_templates_are_clear_errors(tmp_path):
    with pytest.raises(PromptError, match="not found"):
        render_prompts(SECRET_TASK, "no_such_variant")
    broken = tmp_path / "broken.j2"
    broken.write_text("{% block system %}{{ undefined_name }}{% endblock %}")
    with pytest.raises(PromptError, match="undefined_name"):
        render_prompts(SECRET_TASK, str(broken))
    plain = tmp_path / "plain.j2"
    plain.write_text("just text")
    with pytest.raises(PromptError, match="must extend base.j2"):
        render_prompts(SECRET_TASK, str(plain))


def test_agent_config_defaults_are_sane():
    cfg = AgentConfig()
    assert cfg.max_format_retries >= 1 and cfg.observation_limit > 1000


def test_misspelled_config_keys_are_errors():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="step_limt"):
        AgentConfig(step_limt=3)
    with pytest.raises(ValidationError, match="temprature"):
        ModelConfig(temprature=0.1)
