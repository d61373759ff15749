"""The OpenAI-wire client and the managed servers.

Pure tests build commands and choose endpoints; ``llm`` tests talk to the real llama.cpp
server with SmolLM2-135M: its quirks, retries through a flaky proxy in front of it,
unreachable endpoints, and context overflow.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading

import httpx
import pytest

from swescale.agent.config import ModelConfig
from swescale.agent.models import ModelError, build_model
from swescale.agent.models.openai_client import OpenAIModel, is_context_overflow, normalize_endpoint
from swescale.agent.models.servers import (
    LlamaCppServer,
    ServerError,
    VLLMServer,
    free_port,
    server_for,
    smollm2_gguf_path,
)


# ------------------------------------------------------------------------ pure
def test_vllm_command_has_prefix_caching_and_a_tool_parser():
    cfg = ModelConfig(
        kind="vllm",
        name="coder",
        model_path="Qwen/Qwen2.5-Coder-32B-Instruct",
        port=8123,
        tool_call_parser="hermes",
        tensor_parallel_size=4,
        context_window=32768,
        server_args=["--dtype", "bfloat16"],
    )
    server = server_for(cfg)
    assert isinstance(server, VLLMServer)
    command = server.command()
    assert command[1:3] == ["serve", "Qwen/Qwen2.5-Coder-32B-Instruct"]
    for flag in ("--enable-prefix-caching", "--enable-auto-tool-choice"):
        assert flag in command
    pairs = dict(zip(command, command[1:], strict=False))
    assert pairs["--tool-call-parser"] == "hermes"
    assert pairs["--port"] == "8123" and pairs["--served-model-name"] == "coder"
    assert pairs["--tensor-parallel-size"] == "4" and pairs["--max-model-len"] == "32768"
    assert command[-2:] == ["--dtype", "bfloat16"]
    assert server.url == "http://127.0.0.1:8123/v1"


def test_llamacpp_command_uses_the_bundled_smollm2_file():
    path = smollm2_gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 10_000_000
    server = server_for(ModelConfig(kind="llamacpp", context_window=4096, n_threads=2))
    assert isinstance(server, LlamaCppServer)
    command = server.command()
    assert command[1:3] == ["-m", "llama_cpp.server"]
    pairs = dict(zip(command, command[1:], strict=False))
    assert pairs["--model"] == str(path) and pairs["--n_ctx"] == "4096"
    assert pairs["--n_threads"] == "2" and int(pairs["--port"]) == server.port > 0


def test_servers_refuse_bad_configs():
    with pytest.raises(ServerError, match="does not exist"):
        LlamaCppServer(ModelConfig(model_path="/nope/model.gguf")).command()
    with pytest.raises(ServerError, match="no managed server"):
        server_for(ModelConfig(kind="openai"))
    missing = VLLMServer(ModelConfig(kind="vllm", startup_timeout=5))
    missing.executable = lambda: "/nonexistent/vllm"  # type: ignore[method-assign]
    with pytest.raises(ServerError, match="cannot start vllm server"):
        missing.start()


def test_endpoint_urls_are_normalized():
    assert normalize_endpoint("localhost:8000") == "http://localhost:8000/v1"
    assert normalize_endpoint("http://h:1/v1/") == "http://h:1/v1"
    assert normalize_endpoint("https://api.example.com/v1") == "https://api.example.com/v1"


def test_least_loaded_endpoint_is_chosen_and_ties_rotate():
    model = OpenAIModel(ModelConfig(kind="openai", endpoints=["a:1", "b:2", "c:3"]))
    first = [model._acquire() for _ in range(3)]
    assert sorted(e.url for e in first) == sorted(model.endpoints)  # one each while busy
    busy = first[0]
    for endpoint in first[1:]:
        model._release(endpoint, failed=False)
    chosen = {model._acquire().url for _ in range(2)}
    assert busy.url not in chosen
    model.close()


def test_complete_refuses_n_above_one_without_a_request():
    model = OpenAIModel(ModelConfig(kind="openai", endpoints=["127.0.0.1:9"]))
    with pytest.raises(ValueError, match="complete_n"):
        model.complete([{"role": "user", "content": "hi"}], n=2)


def test_unreachable_endpoint_is_retried_then_a_model_error():
    port = free_port()  # nothing listens there: connection refused
    cfg = ModelConfig(
        kind="openai", endpoints=[f"127.0.0.1:{port}"], max_retries=2, backoff_initial=0.01
    )
    with pytest.raises(ModelError, match="giving up after 3 attempts"):
        build_model(cfg).complete([{"role": "user", "content": "hi"}])


# ------------------------------------------------------------------------ real server
CHAT = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}]


@pytest.mark.llm
def test_llamacpp_quirks_are_handled(llama_model_config):
    model = build_model(llama_model_config)
    with_tool_history = CHAT + [
        {
            "role": "assistant",
            "content": None,  # llama.cpp rejects null content; the client sends ""
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
    done = model.complete(with_tool_history, max_tokens=8)
    assert (
        done.tokens_in > 0
        and done.tokens_out > 0
        and done.finish_reason in ("stop", "length", "tool_calls")
    )
    from swescale.agent.tools import TOOL_SCHEMAS

    forced = model.complete(CHAT, tools=TOOL_SCHEMAS, tool_choice="required", max_tokens=8)
    assert forced.tokens_out > 0
    samples = model.complete_n(CHAT, 3, seed=11, max_tokens=8, temperature=1.0)
    assert len(samples) == 3 and all(s.tokens_out > 0 for s in samples)
    scored = model.complete(CHAT, max_tokens=4, logprobs=True, top_logprobs=3)
    assert 1 <= len(scored.logprobs) <= 4
    # llama.cpp adds the sampled token to the top list when it is not among them.
    assert all(len(e["top_logprobs"]) <= 4 and e["logprob"] <= 0 for e in scored.logprobs)
    assert scored.total_logprob is not None
    model.close()


@pytest.mark.llm
def test_vllm_kind_client_speaks_the_same_wire(llama_model_config):
    cfg = llama_model_config.model_copy(update={"kind": "vllm"})
    model = build_model(cfg)
    assert isinstance(model, OpenAIModel) and model.server is None  # endpoints given: no launch
    assert model.complete(CHAT, max_tokens=4).tokens_out > 0


class _FlakyProxy(http.server.ThreadingHTTPServer):
    """Answers the first ``failures`` POSTs with ``status``, then forwards to ``upstream``."""

    def __init__(self, upstream: str, failures: int, status: int) -> None:
        self.upstream, self.failures, self.status, self.seen = upstream, failures, status, 0
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        server: _FlakyProxy = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        server.seen += 1
        if server.seen <= server.failures:
            payload, status = json.dumps({"error": {"message": "busy"}}).encode(), server.status
        else:
            reply = httpx.post(
                server.upstream + self.path.removeprefix("/v1"),
                content=body,
                headers={"content-type": "application/json"},
                timeout=120,
            )
            payload, status = reply.content, reply.status_code
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.mark.llm
@pytest.mark.parametrize("status", [429, 503])
def test_transient_errors_are_retried_with_backoff(llama_model_config, llama_server, status):
    proxy = _FlakyProxy(llama_server.url, failures=2, status=status)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        cfg = llama_model_config.model_copy(
            update={"endpoints": [f"http://127.0.0.1:{proxy.server_address[1]}"], "max_retries": 3}
        )
        completion = build_model(cfg).complete(CHAT, max_tokens=4)
        assert completion.attempts == 3 and proxy.seen == 3 and completion.tokens_out > 0
        cfg_few = cfg.model_copy(update={"max_retries": 1})
        proxy.seen, proxy.failures = 0, 5
        with pytest.raises(ModelError, match="giving up after 2 attempts"):
            build_model(cfg_few).complete(CHAT, max_tokens=4)
    finally:
        proxy.shutdown()
        proxy.server_close()


@pytest.mark.llm
def test_a_dead_endpoint_is_skipped_for_a_live_one(llama_model_config, llama_server):
    dead = f"http://127.0.0.1:{free_port()}"
    cfg = llama_model_config.model_copy(
        update={"endpoints": [dead, llama_server.url], "max_retries": 3}
    )
    model = build_model(cfg)
    for _ in range(3):
        assert model.complete(CHAT, max_tokens=2).endpoint == llama_server.url.rstrip("/")


def _long_chat(turns: int) -> list[dict]:
    chat = list(CHAT)
    for i in range(turns):
        chat.append({"role": "assistant", "content": f"```bash\ncat module_{i}.py\n```"})
        chat.append({"role": "user", "content": "Exit code: 0\n" + f"line {i} of output\n" * 120})
    return chat


@pytest.fixture(scope="module")
def small_llama_server(tmp_path_factory):
    """A second server with a 512-token context, so overflowing it stays cheap on a CPU."""
    pytest.importorskip("llama_cpp")
    cfg = ModelConfig(
        context_window=512, n_threads=1, log_dir=str(tmp_path_factory.mktemp("small"))
    )
    with LlamaCppServer(cfg) as server:
        yield server


@pytest.mark.llm
def test_context_overflow_is_condensed_by_estimate_and_by_server_error(
    small_llama_server, llama_model_config
):
    chat = _long_chat(8)  # ~17k characters: far beyond the 512-token server context
    cfg = llama_model_config.model_copy(
        update={"endpoints": [small_llama_server.url], "context_window": 512, "max_tokens": 4}
    )
    answer = build_model(cfg).complete(chat)
    assert answer.condensed and answer.attempts == 1 and answer.tokens_in <= 512

    # A config that claims a larger window than the server has: the server's 400 says how
    # large it is, and the client condenses to that and retries.
    lying = build_model(cfg.model_copy(update={"context_window": 32768}))
    answer = lying.complete(chat)
    assert answer.condensed and answer.attempts == 2 and answer.tokens_in <= 512
    assert lying.server_context == 512


def test_overflow_detection_reads_the_servers_message():
    class Fake400(Exception):
        status_code = 400

    assert is_context_overflow(Fake400("This model's maximum context length is 2048 tokens."))
    assert not is_context_overflow(Fake400("invalid role"))


@pytest.mark.llm
def test_managed_server_starts_answers_and_stops_cleanly(tmp_path):
    pytest.importorskip("llama_cpp")
    cfg = ModelConfig(
        kind="llamacpp",
        context_window=512,
        log_dir=str(tmp_path),
        max_tokens=4,
        startup_timeout=120,
    )
    model = build_model(cfg)  # launches its own server
    server = model.server
    assert server is not None and server.healthy()
    assert model.complete(CHAT).tokens_out > 0
    pid = server.process.pid
    model.close()
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", server.port)) != 0
    assert server.log_path.exists()


@pytest.mark.llm
def test_server_that_exits_early_reports_its_log(tmp_path):
    pytest.importorskip("llama_cpp")
    server = LlamaCppServer(
        ModelConfig(server_args=["--no-such-flag"], log_dir=str(tmp_path), startup_timeout=60)
    )
    with pytest.raises(ServerError, match="exited with code"):
        server.start()
    assert server.process is None


def test_vllm_preset_loads_and_builds_its_command():
    from swescale.config import load_config

    cfg = load_config("vllm")
    command = server_for(cfg.model).command()
    assert cfg.model.kind == "vllm" and cfg.model.tool_mode == "native"
    assert "--enable-prefix-caching" in command and "--tool-call-parser" in command


@pytest.mark.llm
def test_serve_command_prints_a_working_url_and_stops_on_sigterm(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    pytest.importorskip("llama_cpp")
    process = subprocess.Popen(
        [sys.executable, "-m", "swescale.cli", "serve", "-o", "model.context_window=512",
         "-o", f"model.log_dir={tmp_path}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        assert httpx.get(url + "/models", timeout=10).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        with pytest.raises(httpx.HTTPError):
            httpx.get(url + "/models", timeout=2)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)


@pytest.mark.parametrize(
    "override, message",
    [("model.kind=openai", "no managed server"), ("model.bogus=1", "invalid config")],
)
def test_serve_refuses_configs_without_a_server(override, message):
    from typer.testing import CliRunner

    from swescale.cli import app

    result = CliRunner().invoke(app, ["serve", "-o", override])
    assert result.exit_code == 2
    assert message in result.output
