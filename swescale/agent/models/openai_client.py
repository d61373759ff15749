"""One client for every OpenAI-compatible server: vLLM, llama.cpp, hosted APIs.

Several endpoints are balanced by least in-flight requests (ties go round-robin), an
endpoint that just failed cools down before it is chosen again, and transient failures
(429, 5xx, timeouts, refused connections) are retried by ``tenacity`` with exponential
backoff and jitter, each attempt free to pick another endpoint. A request that does not
fit the context window is condensed and sent again; any other 400 is the request's own
fault and is reported as the server worded it, after one try.

Tool turns are constrained where the server can do it (``model.constrained``, see
:mod:`~swescale.agent.models.constrained`), detected once per endpoint; reasoning is split
from the answer and capped per turn (:mod:`~swescale.agent.models.reasoning`).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import openai
from openai.lib.streaming.chat import ChatCompletionStreamState
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from swescale.agent.config import ModelConfig
from swescale.agent.models.base import (
    Completion,
    ContextOverflow,
    ModelError,
    parse_tool_call,
    sample_n,
)
from swescale.agent.models.condense import DEFAULT_CHARS_PER_TOKEN, condense, estimate_tokens
from swescale.agent.models.constrained import (
    GUIDED_JSON,
    JSON_SCHEMA,
    OFF,
    ConstrainedRequest,
    Decoding,
    ServerInfo,
    calls_from_json_reply,
    choose_decoding,
    constrain_request,
    detect_server,
    tools_instruction,
    unsupported_by_server,
)
from swescale.agent.models.reasoning import (
    BUDGET_FIELDS,
    ThinkTracker,
    reasoning_field,
    reasoning_tokens,
    split_reasoning,
    wire_assistant,
)

log = logging.getLogger(__name__)

_RETRYABLE = (
    openai.RateLimitError,
    openai.InternalServerError,
    openai.APITimeoutError,
    openai.APIConnectionError,
)
# A 400 is a context overflow when the server says so: by its error code (OpenAI,
# llama.cpp), or in the words vLLM, llama.cpp and hosted APIs use. Mentioning a token
# parameter is not enough: "Unsupported parameter: 'max_tokens'" is no overflow.
_OVERFLOW_CODES = {"context_length_exceeded", "exceed_context_size_error"}
_OVERFLOW_WORDS = re.compile(
    r"maximum context length|context (?:length|window|size)|exceeds? (?:the )?"
    r"(?:available )?context|prompt is too long|too many (?:input |prompt )?tokens",
    re.I,
)
_OVERFLOW_NUMBERS = re.compile(r"maximum context length is (\d+).*?requested (\d+)", re.I | re.S)
_ENDPOINT_COOLDOWN = 5.0
_MAX_CONDENSE_ROUNDS = 4
_BUDGET_SPENT = (
    "Your thinking budget for this turn is spent. Act now: reply with your next action only."
)


def normalize_endpoint(url: str) -> str:
    """``http://h:8000`` and ``http://h:8000/v1/`` both become ``http://h:8000/v1``."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    return url if url.endswith("/v1") else url + "/v1"


@dataclass
class _Endpoint:
    url: str
    client: openai.OpenAI
    in_flight: int = 0
    cooldown_until: float = 0.0
    served: int = field(default=0)
    decoding: Decoding | None = None


def server_message(exc: Exception) -> str:
    """What the server said, without the SDK's "Error code: 400 - {...}" wrapping."""
    message = getattr(exc, "message", None) or str(exc)
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        message = body["message"]
    return str(message)


def is_context_overflow(exc: Exception) -> bool:
    """True for a 400 that says the prompt does not fit the model's context."""
    if getattr(exc, "status_code", None) != 400:
        return False
    body = getattr(exc, "body", None)
    labels = {str(getattr(exc, "code", "") or "")}
    if isinstance(body, dict):
        labels |= {str(body.get("code") or ""), str(body.get("type") or "")}
    if labels & _OVERFLOW_CODES:
        return True
    return bool(_OVERFLOW_WORDS.search(server_message(exc)))


def _parse_logprobs(choice: Any) -> list[dict[str, Any]]:
    content = getattr(getattr(choice, "logprobs", None), "content", None) or []
    return [
        {
            "token": entry.token,
            "logprob": float(entry.logprob),
            "top_logprobs": [
                {"token": top.token, "logprob": float(top.logprob)}
                for top in (entry.top_logprobs or [])
            ],
        }
        for entry in content
    ]


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning("model request failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, wait)


@dataclass
class _Request:
    """One complete() call: what is asked, and what its attempts have done so far."""

    params: dict[str, Any]
    wire: list[dict[str, Any]]
    choices: list[str] | None
    bash_block: bool
    budget: int | None
    started: float
    requests: int = 0
    last_url: str = ""


@dataclass(frozen=True)
class _Reply:
    """How to read one reply: its content is an action object (JSON mode), the history
    was condensed to fit, and the decoding mode it was sent under."""

    json_action: bool
    condensed: bool
    decoding: str


class OpenAIModel:
    """A :class:`Model` over one or several OpenAI-compatible endpoints."""

    def __init__(
        self, cfg: ModelConfig, endpoints: list[str] | None = None, server: Any = None
    ) -> None:
        urls = [normalize_endpoint(u) for u in (endpoints or cfg.endpoints)]
        if not urls:
            raise ModelError(f"model {cfg.name!r}: no endpoints configured")
        self.cfg = cfg
        self.server = server  # a managed server this model owns and stops on close()
        self._api_key = os.environ.get(cfg.api_key_env) or "not-needed"
        self._endpoints = [
            _Endpoint(
                u,
                openai.OpenAI(
                    base_url=u, api_key=self._api_key, max_retries=0, timeout=cfg.request_timeout
                ),
            )
            for u in urls
        ]
        self._lock = threading.Lock()
        self._turn = 0
        self.chars_per_token = DEFAULT_CHARS_PER_TOKEN
        # The context size a server reported when it refused a request (it wins over the
        # config when smaller).
        self.server_context: int | None = None

    @property
    def endpoints(self) -> list[str]:
        return [e.url for e in self._endpoints]

    # -- constrained decoding ----------------------------------------------------------
    def _decoding(self, endpoint: _Endpoint) -> Decoding:
        """How requests to ``endpoint`` are constrained: detected on first use, and kept
        once the endpoint has answered (until then the config's kind decides)."""
        if endpoint.decoding is not None:
            return endpoint.decoding
        wanted = self.cfg.constrained != OFF or self.cfg.reasoning_budget is not None
        server = detect_server(endpoint.url, self._api_key) if wanted else ServerInfo()
        decoding = choose_decoding(self.cfg.constrained, server or ServerInfo(), self.cfg.kind)
        if server is None:
            return decoding
        with self._lock:
            if endpoint.decoding is None:
                endpoint.decoding = decoding
                log.info("%s: constrained decoding %s", endpoint.url, decoding.describe())
        return endpoint.decoding

    @property
    def decoding(self) -> str:
        """How tool turns are constrained, for trajectory headers: one description, or
        ``url: description`` per endpoint when they differ."""
        described = {e.url: self._decoding(e).describe() for e in self._endpoints}
        if len(set(described.values())) == 1:
            return next(iter(described.values()))
        return "; ".join(f"{url}: {mode}" for url, mode in described.items())

    # -- endpoint choice -------------------------------------------------------------
    def _acquire(self) -> _Endpoint:
        with self._lock:
            now = time.monotonic()
            ready = [e for e in self._endpoints if e.cooldown_until <= now] or self._endpoints
            self._turn += 1
            n = len(self._endpoints)
            # Least in-flight first; among equals, rotate the starting point.
            chosen = min(
                ready,
                key=lambda e: (e.in_flight, (self._endpoints.index(e) - self._turn) % n),
            )
            chosen.in_flight += 1
            return chosen

    def _release(self, endpoint: _Endpoint, failed: bool) -> None:
        with self._lock:
            endpoint.in_flight -= 1
            if failed:
                endpoint.cooldown_until = time.monotonic() + _ENDPOINT_COOLDOWN
            else:
                endpoint.served += 1

    # -- request ---------------------------------------------------------------------
    def _request_params(self, tools: list[dict[str, Any]] | None, kw: dict[str, Any]) -> dict:
        if kw.get("n", 1) != 1:
            raise ValueError("complete() returns one sample; use complete_n() for n > 1")
        params: dict[str, Any] = {
            "model": kw.get("model", self.cfg.name),
            "temperature": kw.get("temperature", self.cfg.temperature),
            "top_p": kw.get("top_p", self.cfg.top_p),
            "max_tokens": kw.get("max_tokens", self.cfg.max_tokens),
        }
        for key in ("seed", "stop", "presence_penalty", "frequency_penalty"):
            if kw.get(key) is not None:
                params[key] = kw[key]
        top_logprobs = kw.get("top_logprobs", self.cfg.top_logprobs)
        if kw.get("logprobs", self.cfg.logprobs) or top_logprobs:
            params["logprobs"] = True
            if top_logprobs:
                params["top_logprobs"] = int(top_logprobs)
        if tools:
            params["tools"] = tools
            if kw.get("tool_choice") is not None:
                params["tool_choice"] = kw["tool_choice"]
        return params

    def _wire_message(self, message: dict[str, Any]) -> dict[str, Any]:
        out = dict(message)
        if out.get("role") == "assistant":
            out = wire_assistant(out, self.cfg.resend_reasoning)
        # llama.cpp's server rejects an assistant message whose content is null (even with
        # tool_calls, which the OpenAI spec allows); an empty string means the same.
        if out.get("content") is None:
            out["content"] = ""
        return out

    def _fit(
        self, messages: list[dict[str, Any]], max_tokens: int, shrink: float, reserve: int = 0
    ) -> list[dict]:
        """``messages`` condensed to leave ``max_tokens`` for the reply and ``reserve`` for
        what the request adds on the wire (JSON mode's list of tools)."""
        window = min(self.cfg.context_window, self.server_context or self.cfg.context_window)
        budget = int((window - max_tokens - reserve) * shrink)
        if budget <= 0:
            raise ContextOverflow(
                f"max_tokens={max_tokens} leaves no room in context_window="
                f"{self.cfg.context_window}"
            )
        return condense(messages, budget, chars_per_token=self.chars_per_token)

    def _learn_from_overflow(
        self, exc: Exception, sent: list[dict[str, Any]], max_tokens: int
    ) -> None:
        """The server told us the true prompt size: calibrate the estimate with it."""
        match = _OVERFLOW_NUMBERS.search(str(exc))
        if not match:
            return
        self.server_context = int(match.group(1))
        requested = int(match.group(2))
        prompt_tokens = max(requested - max_tokens, 1)
        estimated = estimate_tokens(sent, self.chars_per_token)
        if prompt_tokens > estimated:
            self.chars_per_token = max(self.chars_per_token * estimated / prompt_tokens, 1.0)

    def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **kw: Any
    ) -> Completion:
        """One turn. Besides the OpenAI parameters, ``choices`` (a list of strings) asks
        for an answer that is exactly one of them, ``bash_block=True`` for a text-mode
        action (one fenced bash block), and ``reasoning_budget`` overrides
        ``model.reasoning_budget`` for this turn; the first two are constrained where the
        server can do it (``model.constrained``).

        Raises :class:`ModelError` after ``max_retries`` retries of transient failures or
        on a rejected request, :class:`ContextOverflow` when condensing cannot help.
        """
        request = _Request(
            params=self._request_params(tools, kw),
            wire=[self._wire_message(m) for m in messages],
            choices=list(kw["choices"]) if kw.get("choices") else None,
            bash_block=bool(kw.get("bash_block")),
            budget=kw.get("reasoning_budget", self.cfg.reasoning_budget),
            started=time.monotonic(),
        )
        retrying = Retrying(
            retry=retry_if_exception_type(_RETRYABLE),
            stop=stop_after_attempt(self.cfg.max_retries + 1),
            # Doubling from backoff_initial up to backoff_max, plus up to one initial
            # delay of jitter so that clients failing together do not retry together.
            wait=wait_exponential(multiplier=self.cfg.backoff_initial, max=self.cfg.backoff_max)
            + wait_random(0, self.cfg.backoff_initial),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._attempt(request)
        except _RETRYABLE as exc:
            raise ModelError(
                f"{request.last_url}: giving up after {request.requests} attempts: {exc}"
            ) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _prepare(
        self, request: _Request, decoding: Decoding, shrink: float
    ) -> tuple[list[dict[str, Any]], ConstrainedRequest, _Reply, int | None]:
        """What one send carries: the history fitted to the window, the request under
        ``decoding`` with its thinking cap, how to read the reply, and the budget the
        client enforces itself by streaming (None when the server caps or none is set)."""
        reserve = 0
        if request.params.get("tools") and decoding.mode in (JSON_SCHEMA, GUIDED_JSON):
            instruction = tools_instruction(request.params["tools"])
            reserve = estimate_tokens([{"content": instruction}], self.chars_per_token)
        sent = self._fit(request.wire, request.params["max_tokens"], shrink, reserve)
        constrained = constrain_request(
            decoding, request.params, sent, choices=request.choices, bash_block=request.bash_block
        )
        params = constrained.params
        # llama.cpp's server fails on tool_choice="required"; unconstrained, "auto" plus the
        # agent's corrective message for turns without a call stands in.
        llamacpp_off = decoding.mode == OFF and self.cfg.kind == "llamacpp"
        if llamacpp_off and params.get("tool_choice") == "required":
            params["tool_choice"] = "auto"
        stream_budget = None
        if request.budget is not None:
            budget_fields = BUDGET_FIELDS.get(decoding.server.family, ())
            for name in budget_fields:
                params.setdefault("extra_body", {})[name] = int(request.budget)
            if not budget_fields and constrained.applied == OFF:
                stream_budget = int(request.budget)
        reply = _Reply(constrained.json_reply, sent != request.wire, constrained.applied)
        return sent, constrained, reply, stream_budget

    def _attempt(self, request: _Request) -> Completion:
        """One attempt on one endpoint: condensing on overflow, falling back to plain
        decoding when ``constrained: auto`` meets a server that refuses the constraint."""
        endpoint = self._acquire()
        request.last_url = endpoint.url
        failed = False
        try:
            decoding = self._decoding(endpoint)
            shrink, condense_rounds = 1.0, 0
            while True:
                sent, constrained, reply, stream_budget = self._prepare(request, decoding, shrink)
                params = constrained.params
                request.requests += 1
                try:
                    return self._send(
                        endpoint, request, params, constrained.messages, reply, stream_budget
                    )
                except openai.BadRequestError as exc:
                    if is_context_overflow(exc):
                        condense_rounds += 1
                        if condense_rounds > _MAX_CONDENSE_ROUNDS:
                            raise ContextOverflow(
                                f"{endpoint.url}: still too long after condensing "
                                f"{_MAX_CONDENSE_ROUNDS} times: {server_message(exc)}"
                            ) from exc
                        self._learn_from_overflow(exc, sent, request.params["max_tokens"])
                        shrink *= 0.85
                        log.info("context overflow at %s; condensing", endpoint.url)
                        continue
                    if self._fall_back(endpoint, decoding, exc):
                        decoding = self._decoding(endpoint)
                        continue
                    fields = {"messages", *params, *params.get("extra_body", {})} - {"extra_body"}
                    raise ModelError(
                        f"{endpoint.url} rejected the request (HTTP 400, sent once with "
                        f"{', '.join(sorted(fields))}): {server_message(exc)}"
                    ) from exc
                except openai.InternalServerError as exc:
                    if self._fall_back(endpoint, decoding, exc):
                        decoding = self._decoding(endpoint)
                        continue
                    raise
        except _RETRYABLE:
            failed = True
            raise
        except openai.APIError as exc:
            failed = True
            raise ModelError(f"{endpoint.url}: {server_message(exc)}") from exc
        finally:
            self._release(endpoint, failed)

    def _fall_back(self, endpoint: _Endpoint, decoding: Decoding, exc: Exception) -> bool:
        """With ``constrained: auto``, a server that refuses the constraint's parameters
        gets plain requests from now on (True: send again)."""
        if self.cfg.constrained != "auto" or decoding.mode == OFF:
            return False
        if not unsupported_by_server(server_message(exc)):
            return False
        log.warning(
            "%s refused constrained decoding (%s): %s; sending plain requests to it",
            endpoint.url,
            decoding.mode,
            server_message(exc),
        )
        with self._lock:
            endpoint.decoding = Decoding(OFF, decoding.server)
        return True

    def _send(
        self,
        endpoint: _Endpoint,
        request: _Request,
        params: dict[str, Any],
        wire: list[dict[str, Any]],
        reply: _Reply,
        stream_budget: int | None,
    ) -> Completion:
        if stream_budget is None:
            response = endpoint.client.chat.completions.create(messages=wire, **params)
            return self._to_completion(response, endpoint.url, request, wire, reply)
        first, chunks, cut = self._stream_capped(endpoint, params, wire, stream_budget)
        turn = self._to_completion(first, endpoint.url, request, wire, reply, chunks)
        if not cut:
            return turn
        # Budget forcing: the reasoning so far goes back to the model, which must act now;
        # thinking again in that second request is cut at once.
        forced = wire + [
            {"role": "assistant", "content": f"<think>\n{turn.reasoning}\n</think>"},
            {"role": "user", "content": _BUDGET_SPENT},
        ]
        request.requests += 1
        second, chunks, _ = self._stream_capped(endpoint, params, forced, 0)
        answer = self._to_completion(second, endpoint.url, request, forced, reply, chunks)
        return answer.model_copy(
            update={
                "reasoning": turn.reasoning,
                "reasoning_tokens": turn.reasoning_tokens + answer.reasoning_tokens,
                "tokens_in": turn.tokens_in + answer.tokens_in,
                "tokens_out": turn.tokens_out + answer.tokens_out,
                "reasoning_capped": True,
            }
        )

    def _stream_capped(
        self, endpoint: _Endpoint, params: dict[str, Any], wire: list[dict[str, Any]], budget: int
    ) -> tuple[Any, int, bool]:
        """A streamed request read until its reasoning passes ``budget`` tokens (then the
        connection is closed, which stops generation). Returns the reply so far, the
        chunks read, and whether it was cut."""
        state: ChatCompletionStreamState = ChatCompletionStreamState()
        tracker = ThinkTracker()
        chunks, cut = 0, False
        stream = endpoint.client.chat.completions.create(
            messages=wire, stream=True, stream_options={"include_usage": True}, **params
        )
        try:
            for chunk in stream:
                state.handle_chunk(chunk)
                if not chunk.choices:
                    continue
                chunks += 1
                delta = chunk.choices[0].delta
                tracker.feed(reasoning_field(delta), delta.content or "")
                if tracker.thinking and tracker.tokens > budget:
                    cut = True
                    break
        finally:
            stream.close()
        return state.current_completion_snapshot, chunks, cut

    def _to_completion(
        self,
        response: Any,
        url: str,
        request: _Request,
        sent: list[dict[str, Any]],
        reply: _Reply,
        streamed_chunks: int = 0,
    ) -> Completion:
        if not getattr(response, "choices", None):
            raise ModelError(f"{url}: response has no choices")
        choice = response.choices[0]
        message = choice.message
        reasoning, text = split_reasoning(message)
        raw_calls = [
            (
                call.id or f"call_{index}",
                call.function.name if call.function else "",
                call.function.arguments if call.function else "",
            )
            for index, call in enumerate(message.tool_calls or [])
        ]
        if reply.json_action and not raw_calls:
            parsed = calls_from_json_reply(text)
            if parsed is not None:
                raw_calls = [
                    (f"call_{request.requests}", c["name"], c["arguments"]) for c in parsed
                ]
                text = ""
        usage = getattr(response, "usage", None)
        # Servers that send no usage while streaming: one chunk is one token.
        tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0) or estimate_tokens(
            sent, self.chars_per_token
        )
        tokens_out = int(getattr(usage, "completion_tokens", 0) or 0) or max(streamed_chunks, 1)
        answer_chars = len(text) + sum(len(str(c[2])) for c in raw_calls)
        cut = choice.finish_reason is None and streamed_chunks > 0
        return Completion(
            text=text,
            tool_calls=[parse_tool_call(*call) for call in raw_calls],
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            reasoning=reasoning,
            reasoning_tokens=reasoning_tokens(usage, reasoning, answer_chars, tokens_out),
            logprobs=_parse_logprobs(choice),
            seconds=time.monotonic() - request.started,
            finish_reason="length" if cut else choice.finish_reason,
            endpoint=url,
            attempts=request.requests,
            condensed=reply.condensed,
            decoding=reply.decoding,
        )

    def complete_n(
        self,
        messages: list[dict[str, Any]],
        n: int,
        tools: list[dict[str, Any]] | None = None,
        **kw: Any,
    ) -> list[Completion]:
        return sample_n(self, messages, n, tools=tools, **kw)

    def close(self) -> None:
        for endpoint in self._endpoints:
            endpoint.client.close()
        if self.server is not None:
            self.server.stop()
            self.server = None

    def __enter__(self) -> OpenAIModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
