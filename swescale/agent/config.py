"""Model and agent configuration."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelConfig(BaseModel):
    """Which model answers, over the OpenAI wire format.

    kind:
      scripted  -- the in-package deterministic model (tests, replay)
      llamacpp  -- llama.cpp's OpenAI server, launched here with SmolLM2-135M by default
      vllm      -- ``vllm serve`` launched as a managed subprocess (GPU)
      openai    -- any running OpenAI-compatible endpoint(s) in ``endpoints``

    For ``llamacpp`` and ``vllm``, a non-empty ``endpoints`` means "use these running
    servers" and nothing is launched.
    """

    # A misspelled key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")

    kind: Literal["scripted", "llamacpp", "vllm", "openai"] = "llamacpp"
    name: str = "smollm2-135m"
    endpoints: list[str] = Field(default_factory=list)
    api_key_env: str = "OPENAI_API_KEY"
    # The OpenAI range; NaN and infinities are refused (a server would reject the request).
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, allow_inf_nan=False)
    top_p: float = 1.0
    max_tokens: int = 512
    context_window: int = 8192
    request_timeout: float = 300.0
    max_retries: int = 4
    # First backoff delay in seconds; doubles per retry, capped by backoff_max.
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    logprobs: bool = False
    top_logprobs: int = 0
    # "native": OpenAI tool calls; "text": a fenced bash block per turn.
    tool_mode: Literal["native", "text"] = "text"
    # Constrained decoding of tool calls (native tool_mode) and fixed-choice answers:
    # "auto" constrains where the server is known to support it (llama.cpp, vLLM; detected
    # once per endpoint), "on" also asks other servers (tool_choice="required"), "off"
    # sends plain requests.
    constrained: Literal["auto", "off", "on"] = "auto"
    # Thinking models: the most reasoning tokens per turn (None: no cap). vLLM and
    # llama-server cap it themselves; other servers are streamed and cut at the budget.
    reasoning_budget: int | None = Field(default=None, ge=0)
    # Send a turn's reasoning back on later turns (in reasoning_content); off by default.
    resend_reasoning: bool = False
    # Dollars per million tokens (in, out); zero for local models, which count seconds.
    price_in: float = 0.0
    price_out: float = 0.0
    # Managed server settings (llamacpp / vllm).
    model_path: str = ""
    host: str = "127.0.0.1"
    port: int = 0
    server_args: list[str] = Field(default_factory=list)
    startup_timeout: float = 600.0
    # Where managed servers write their logs ("" = the system temp directory).
    log_dir: str = ""
    # llama.cpp: threads for generation (0 = let llama.cpp decide).
    n_threads: int = 0
    # vLLM: the parser that turns the model's text into OpenAI tool calls.
    tool_call_parser: str = "hermes"
    # vLLM: the parser that splits a thinking model's reasoning from its answer
    # (e.g. "qwen3", "deepseek_r1"); "" for models that do not think.
    reasoning_parser: str = ""
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    # Scripted model: a JSON/YAML file of planned turns, or a trajectory to replay.
    script: str = ""
    # Scripted model: what to do when the script has no turn left ("error" or "submit").
    on_exhausted: Literal["error", "submit"] = "error"


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step_limit: int = Field(default=30, ge=1)
    prompt_template: str = "prompts/agent.j2"
    prompt_variants: list[str] = Field(default_factory=list)
    # Malformed turns in a row (no action, several actions, bad tool arguments) tolerated
    # before the trajectory ends with exit status "format_error".
    max_format_retries: int = 3
    observation_limit: int = 8000
    # Timeout for one bash command of the agent (None: the sandbox's default).
    command_timeout: float | None = None
    # Sandbox infrastructure failures in a row before the trajectory ends ("sandbox_error").
    max_infra_errors: int = 2
    # Take a snapshot of the repository after every step (the step's ``state``).
    snapshot_steps: bool = True
    # Lines printed by the view tool before it asks for a range.
    view_max_lines: int = 400
    # Matches listed by the search tool.
    search_max_results: int = 100
    # Sampling seed for the model; step i asks with seed + i, so a resumed or branched
    # trajectory asks for step i exactly as the original did. None: the model's default.
    seed: int | None = None
    # Overrides the model config's temperature for this agent (diversity across samples).
    temperature: float | None = Field(default=None, ge=0.0, le=2.0, allow_inf_nan=False)
