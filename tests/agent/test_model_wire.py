"""What the client sends and how it reads replies, against a tiny local server speaking the
OpenAI wire format (recorded requests; no GPU, no mock of the client): vLLM's
constrained-decoding parameters, llama.cpp's JSON mode, errors that must not be retried,
and reasoning (recorded, counted, not resent, capped)."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
from wire_server import WireServer, chat_response, stream_chunks

from swescale.agent.config import ModelConfig
from swescale.agent.models import ContextOverflow, ModelError, build_model
from swescale.agent.models.constrained import (
    GUIDED_JSON,
    JSON_SCHEMA,
    OFF,
    TOOL_CHOICE_REQUIRED,
    action_schema,
    calls_from_json_reply,
    json_mode_messages,
)
from swescale.agent.models.openai_client import is_context_overflow
from swescale.agent.models.reasoning import split_think
from swescale.agent.tools import TOOL_SCHEMAS

CHAT = [
    {"role": "system", "content": "You fix bugs."},
    {"role": "user", "content": "add() is wrong."},
]


def _model(server: WireServer, **update):
    fields = {"max_retries": 0, "backoff_initial": 0.01, "max_tokens": 64, **update}
    return build_model(ModelConfig(kind="openai", name="m", endpoints=[server.url], **fields))


# ------------------------------------------------------------------------ vLLM
def test_vllm_tool_turn_sends_tool_choice_required_and_reads_reasoning():
    reply = chat_response(
        None,
        [{"name": "view", "arguments": {"path": "calc.py"}}],
        reasoning="The bug is in calc.py; look at it first.",
        reasoning_tokens=9,
        completion_tokens=20,
        finish_reason="tool_calls",
    )
    with WireServer([(200, reply)], owned_by="vllm", version="0.11.0") as server:
        model = _model(server, reasoning_budget=256)
        turn = model.complete(CHAT, tools=TOOL_SCHEMAS)
        assert model.decoding == "tool_choice_required (vllm 0.11.0)"
    sent = server.requests[0]
    assert sent["tool_choice"] == "required"
    assert [t["function"]["name"] for t in sent["tools"]] == [
        t["function"]["name"] for t in TOOL_SCHEMAS
    ]
    assert sent["thinking_token_budget"] == 256  # vLLM's own per-request cap
    assert "response_format" not in sent and "structured_outputs" not in sent
    assert turn.tool_calls == [
        {"id": "chatcmpl-tool-0", "name": "view", "arguments": {"path": "calc.py"}}
    ]
    assert turn.reasoning.startswith("The bug is in calc.py")
    assert turn.reasoning_tokens == 9 and turn.tokens_out == 20
    assert turn.decoding == TOOL_CHOICE_REQUIRED
    # Recorded with the turn, never resent as content (nor at all, by default).
    message = turn.message()
    assert message["reasoning_content"] == turn.reasoning and message["content"] == ""


def test_vllm_choice_answers_use_structured_outputs_or_guided_choice_by_version():
    for version, key, value in [
        ("0.11.0", "structured_outputs", {"choice": ["YES", "NO"]}),
        ("0.8.5", "guided_choice", ["YES", "NO"]),
    ]:
        with WireServer([(200, chat_response("YES"))], version=version) as server:
            answer = _model(server).complete(CHAT, choices=["YES", "NO"])
        assert answer.text == "YES"
        assert server.requests[0][key] == value, version
        assert "/version" in server.gets


def test_old_vllm_gets_guided_json_of_the_tool_union_and_its_reply_becomes_a_call():
    action = {"name": "str_replace", "arguments": {"path": "a.py", "old_str": "-", "new_str": "+"}}
    with WireServer([(200, chat_response(json.dumps(action)))], version="0.6.3") as server:
        model = _model(server)
        turn = model.complete(CHAT, tools=TOOL_SCHEMAS)
        assert model.decoding.startswith(GUIDED_JSON)
    sent = server.requests[0]
    assert "tools" not in sent and "tool_choice" not in sent
    schema = sent["guided_json"]
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(action, schema)
    assert turn.tool_calls[0]["name"] == "str_replace" and turn.text == ""
    assert "str_replace" in sent["messages"][0]["content"]  # the tools, listed as text


def test_reasoning_is_not_resent_unless_configured():
    history = CHAT + [
        {"role": "assistant", "content": "```bash\nls\n```", "reasoning_content": "Look first."},
        {"role": "user", "content": "calc.py"},
    ]
    for resend in (False, True):
        with WireServer([(200, chat_response("ok"))]) as server:
            _model(server, resend_reasoning=resend, constrained="off").complete(history)
        assistant = server.requests[0]["messages"][2]
        assert assistant["content"] == "```bash\nls\n```"
        assert ("reasoning_content" in assistant) is resend


# ------------------------------------------------------------------------ llama.cpp
def test_llamacpp_tool_turn_is_a_json_schema_union_with_the_history_as_json():
    history = CHAT + [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "bash", "arguments": '{"command": "ls"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "calc.py"},
    ]
    action = {"name": "submit", "arguments": {}}
    with WireServer([(200, chat_response(json.dumps(action)))], owned_by="me") as server:
        model = _model(server)
        turn = model.complete(history, tools=TOOL_SCHEMAS)
        assert model.decoding == "json_schema (llama-cpp-python)"
    sent = server.requests[0]
    assert sent["response_format"]["type"] == "json_object"
    assert "tools" not in sent and "tool_choice" not in sent
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert json.loads(sent["messages"][2]["content"]) == {
        "name": "bash",
        "arguments": {"command": "ls"},
    }
    assert turn.tool_calls[0]["name"] == "submit" and turn.decoding == JSON_SCHEMA


def test_action_schema_bounds_every_free_string_to_fit_max_tokens():
    schema = action_schema(TOOL_SCHEMAS, 192)
    jsonschema.Draft202012Validator.check_schema(schema)
    by_name = {v["properties"]["name"]["const"]: v for v in schema["anyOf"]}
    assert set(by_name) == {t["function"]["name"] for t in TOOL_SCHEMAS}
    for name, variant in by_name.items():
        arguments = variant["properties"]["arguments"]
        assert arguments["additionalProperties"] is False
        strings = [p for p in arguments["properties"].values() if p.get("type") == "string"]
        free = [p["maxLength"] for p in strings if "enum" not in p]
        assert sum(free) <= 192, name
    # A valid action passes, a malformed one does not.
    jsonschema.validate({"name": "bash", "arguments": {"command": "ls"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "bash", "arguments": {"cmd": "ls"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "bash", "arguments": {"command": "x" * 500}}, schema)


def test_json_replies_are_read_back_and_merged_user_turns_alternate():
    assert calls_from_json_reply('{"name": "bash", "arguments": {"command": "a\nb"}}') == [
        {"name": "bash", "arguments": '{"command": "a\\nb"}'}
    ]
    assert calls_from_json_reply('{"name": "bash", "arguments": {"comm') is None
    assert calls_from_json_reply("ls -la") is None
    messages = json_mode_messages(
        [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], TOOL_SCHEMAS
    )
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"] == "a\n\nb"


def test_unknown_servers_get_plain_requests_unless_constrained_is_on():
    with WireServer([(200, chat_response("hi"))] * 2, owned_by="openai") as server:
        _model(server).complete(CHAT, tools=TOOL_SCHEMAS)
        _model(server, constrained="on").complete(CHAT, tools=TOOL_SCHEMAS)
    assert "tool_choice" not in server.requests[0]
    assert server.requests[1]["tool_choice"] == "required"


def test_auto_falls_back_to_plain_requests_when_the_server_refuses_the_constraint():
    refusal = (400, {"error": {"message": "response_format json_object is not supported"}})
    replies = [refusal, (200, chat_response("```bash\nls\n```")), (200, chat_response("ok"))]
    with WireServer(replies, owned_by="me") as server:
        model = _model(server)
        turn = model.complete(CHAT, tools=TOOL_SCHEMAS)
        assert turn.text.startswith("```bash") and turn.decoding == OFF
        model.complete(CHAT, tools=TOOL_SCHEMAS)
    assert "response_format" in server.requests[0]
    assert all("response_format" not in r for r in server.requests[1:])


# ------------------------------------------------------------------------ errors
def test_a_400_that_is_not_an_overflow_is_sent_once_and_reported_as_the_server_said():
    words = (
        "Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens' instead."
    )
    body = {
        "error": {
            "message": words,
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "unsupported_parameter",
        }
    }
    with WireServer([(400, body)] * 6, owned_by="openai") as server:
        model = _model(server, max_retries=4)
        with pytest.raises(ModelError) as raised:
            model.complete(CHAT)
    assert len(server.requests) == 1
    message = str(raised.value)
    assert words in message and "sent once" in message and "max_tokens" in message
    assert "too long" not in message and not isinstance(raised.value, ContextOverflow)


def test_a_context_overflow_400_is_condensed_and_resent():
    overflow = {
        "error": {
            "message": "This model's maximum context length is 512 tokens. However, you "
            "requested 900 tokens (836 in the messages, 64 in the completion).",
            "code": "context_length_exceeded",
        }
    }
    long_chat = CHAT + [
        m
        for i in range(6)
        for m in (
            {"role": "assistant", "content": f"```bash\ncat f{i}.py\n```"},
            {"role": "user", "content": "x = 1\n" * 200},
        )
    ]
    with WireServer([(400, overflow), (200, chat_response("ok"))], owned_by="openai") as server:
        model = _model(server, context_window=32768)
        answer = model.complete(long_chat)
    assert len(server.requests) == 2 and answer.condensed and answer.attempts == 2
    assert model.server_context == 512
    assert len(json.dumps(server.requests[1]["messages"])) < len(
        json.dumps(server.requests[0]["messages"])
    )


@pytest.mark.parametrize(
    "body, overflow",
    [
        ({"message": "anything", "code": "context_length_exceeded"}, True),
        ({"message": "Requested tokens (5000) exceed context window of 4096"}, True),
        ({"message": "the request exceeds the available context size"}, True),
        ({"message": "prompt is too long: 210000 tokens > 200000 maximum"}, True),
        (
            {"message": "Unsupported parameter: 'max_tokens'", "code": "unsupported_parameter"},
            False,
        ),
        ({"message": "invalid role 'bot'"}, False),
    ],
)
def test_overflow_is_classified_by_code_and_the_servers_own_words(body, overflow):
    class Fake400(Exception):
        status_code = 400

        def __init__(self, body):
            super().__init__(body["message"])
            self.body, self.code, self.message = body, body.get("code"), body["message"]

    assert is_context_overflow(Fake400(body)) is overflow


def test_transient_errors_are_retried_by_tenacity_then_reported():
    busy = (503, {"error": {"message": "busy"}})
    with WireServer([busy, busy, (200, chat_response("ok"))], owned_by="openai") as server:
        answer = _model(server, max_retries=3).complete(CHAT)
        assert answer.attempts == 3 and len(server.requests) == 3
    with WireServer([busy] * 5, owned_by="openai") as server:
        with pytest.raises(ModelError, match="giving up after 2 attempts"):
            _model(server, max_retries=1).complete(CHAT)
        assert len(server.requests) == 2


# ------------------------------------------------------------------------ reasoning
def test_think_blocks_are_split_from_the_answer():
    assert split_think("<think>\nhmm\n</think>\n```bash\nls\n```") == ("hmm", "```bash\nls\n```")
    assert split_think("<think>still going") == ("still going", "")
    assert split_think("opened in the prompt</think>answer") == ("opened in the prompt", "answer")
    assert split_think("no thinking") == ("", "no thinking")


def test_reasoning_budget_cuts_a_streamed_reply_and_forces_an_action():
    thinking = stream_chunks([("content", "<think>")] + [("content", " hmm")] * 400)
    action = stream_chunks([("content", "```bash\nls\n```")])
    with WireServer(
        [("stream", thinking), ("stream", action)], owned_by="openai", chunk_delay=0.002
    ) as server:
        turn = _model(server, reasoning_budget=10, constrained="off").complete(CHAT)
        written = server.chunks_written
    assert turn.reasoning_capped and turn.text == "```bash\nls\n```"
    assert turn.reasoning.count("hmm") <= 11
    assert 10 <= turn.reasoning_tokens <= 13
    assert written < 400  # the client hung up: generation stopped near the budget
    forced = server.requests[1]["messages"]
    assert forced[-2]["role"] == "assistant" and forced[-2]["content"].startswith("<think>")
    assert "budget" in forced[-1]["content"]
    assert all(r["stream"] for r in server.requests)


def test_reasoning_under_budget_streams_through_unchanged():
    reply = stream_chunks(
        [("reasoning_content", "short "), ("reasoning_content", "thought"), ("content", "done")]
    )
    with WireServer([("stream", reply)], owned_by="openai") as server:
        turn = _model(server, reasoning_budget=50, constrained="off").complete(CHAT)
    assert not turn.reasoning_capped and turn.text == "done"
    assert turn.reasoning == "short thought" and len(server.requests) == 1


def test_text_mode_turns_are_constrained_to_one_bash_block():
    block = "Look first.\n```bash\nls\n```"
    with WireServer([(200, chat_response(block))], owned_by="me") as server:
        turn = _model(server).complete(CHAT, bash_block=True)
    grammar = server.requests[0]["grammar"]
    assert grammar.startswith('root ::= (thought "\\n")? "```bash\\n" command "\\n```"')
    assert turn.text == block and turn.decoding == "grammar"
    with WireServer([(200, chat_response(block))], version="0.11.0") as server:
        _model(server).complete(CHAT, bash_block=True)
    regex = server.requests[0]["structured_outputs"]["regex"]
    assert re.fullmatch(regex, block) and not re.fullmatch(regex, block + "\n```bash\npwd\n```")


def test_the_ledger_counts_reasoning_tokens_apart():
    import threading

    from swescale.scaling.ledger import BudgetLedger
    from swescale.scaling.metered import MeteredModel

    reply = chat_response(
        "```bash\nls\n```", reasoning="Think.", reasoning_tokens=30, completion_tokens=42
    )
    ledger = BudgetLedger()
    with WireServer([(200, reply)]) as server:
        metered = MeteredModel(
            _model(server),
            ledger=ledger,
            task_id="t",
            slots=threading.Semaphore(1),
            stop=threading.Event(),
        )
        metered.complete(CHAT)
    spent = ledger.to_dict()["by_task"]["t"]["by_kind"]["agent"]
    assert spent["reasoning_tokens"] == 30 and spent["tokens_out"] == 42


def test_llama_server_gets_its_own_thinking_budget_fields():
    reply = chat_response("<think>short</think>```bash\nls\n```", completion_tokens=12)
    with WireServer([(200, reply)], owned_by="llamacpp") as server:
        model = _model(server, reasoning_budget=64)
        turn = model.complete(CHAT, bash_block=True)
        assert model.decoding == "json_schema (llama.cpp)"
    sent = server.requests[0]
    assert sent["thinking_budget_tokens"] == 64 and sent["reasoning_budget_tokens"] == 64
    assert "stream" not in sent or not sent["stream"]  # the server caps it: no streaming
    assert turn.reasoning == "short" and turn.text == "```bash\nls\n```"
    assert 1 <= turn.reasoning_tokens < 12
