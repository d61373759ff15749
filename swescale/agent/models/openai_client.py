"""One client for every OpenAI-compatible server: vLLM, llama.cpp, hosted APIs.

Several endpoints are balanced by least in-flight requests (ties go round-robin), an
endpoint that just failed cools down before it is chosen again, and transient failures
(429, 5xx, timeouts, refused connections) are retried with exponential backoff. A request
that does not fit the context window is condensed and sent again.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import openai

from swescale.agent.config import ModelConfig
from swescale.agent.models.base import (
    Completion,
    ContextOverflow,
    ModelError,
    parse_tool_call,
    sample_n,
)
from swescale.agent.models.condense import DEFAULT_CHARS_PER_TOKEN, condense, estimate_tokens

log = logging.getLogger(__name__)

_RETRYABLE = (
    openai.RateLimitError,
    openai.InternalServerError,
    openai.APITimeoutError,
    openai.APIConnectionError,
)
_OVERFLOW_WORDS = re.compile(r"context|too long|maximum.{0,20}length|max_tokens|n_ctx", re.I)
_OVERFLOW_NUMBERS = re.compile(r"maximum context length is (\d+).*?requested (\d+)", re.I | re.S)
_ENDPOINT_COOLDOWN = 5.0
_MAX_CONDENSE_ROUNDS = 4


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


def is_context_overflow(exc: Exception) -> bool:
    status = getattr(exc, "status_code", None)
    return status == 400 and bool(_OVERFLOW_WORDS.search(str(exc)))


def _message_for_wire(message: dict[str, Any]) -> dict[str, Any]:
    out = dict(message)
    # llama.cpp's server rejects an assistant message whose content is null (even with
    # tool_calls, which the OpenAI spec allows); an empty string means the same.
    if out.get("content") is None:
        out["content"] = ""
    return out


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
        api_key = os.environ.get(cfg.api_key_env) or "not-needed"
        self._endpoints = [
            _Endpoint(
                u,
                openai.OpenAI(
                    base_url=u, api_key=api_key, max_retries=0, timeout=cfg.request_timeout
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
            choice = kw.get("tool_choice")
            # llama.cpp's server fails on tool_choice="required"; "auto" plus the agent's
            # corrective message for turns without a call gives the same contract.
            if choice == "required" and self.cfg.kind == "llamacpp":
                choice = "auto"
            if choice is not None:
                params["tool_choice"] = choice
        return params

    def _fit(self, messages: list[dict[str, Any]], max_tokens: int, shrink: float) -> list[dict]:
        window = min(self.cfg.context_window, self.server_context or self.cfg.context_window)
        budget = int((window - max_tokens) * shrink)
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
        params = self._request_params(tools, kw)
        wire = [_message_for_wire(m) for m in messages]
        attempts = 0
        shrink = 1.0
        condense_rounds = 0
        delay = self.cfg.backoff_initial
        started = time.monotonic()
        while True:
            sent = self._fit(wire, params["max_tokens"], shrink)
            endpoint = self._acquire()
            attempts += 1
            try:
                response = endpoint.client.chat.completions.create(messages=sent, **params)
            except openai.BadRequestError as exc:
                self._release(endpoint, failed=False)
                if not is_context_overflow(exc):
                    raise ModelError(f"{endpoint.url} rejected the request: {exc}") from exc
                condense_rounds += 1
                if condense_rounds > _MAX_CONDENSE_ROUNDS:
                    raise ContextOverflow(f"still too long after condensing: {exc}") from exc
                self._learn_from_overflow(exc, sent, params["max_tokens"])
                shrink *= 0.85
                log.info(
                    "context overflow at %s; condensing (round %d)", endpoint.url, condense_rounds
                )
                continue
            except _RETRYABLE as exc:
                self._release(endpoint, failed=True)
                if attempts > self.cfg.max_retries:
                    raise ModelError(
                        f"{endpoint.url}: giving up after {attempts} attempts: {exc}"
                    ) from exc
                wait = min(delay, self.cfg.backoff_max) * (0.5 + random.random() / 2)
                log.warning("%s: %s; retrying in %.1fs", endpoint.url, type(exc).__name__, wait)
                time.sleep(wait)
                delay *= 2
                continue
            except openai.APIError as exc:
                self._release(endpoint, failed=True)
                raise ModelError(f"{endpoint.url}: {exc}") from exc
            self._release(endpoint, failed=False)
            return self._to_completion(response, endpoint.url, attempts, started, sent, wire)

    def _to_completion(
        self, response: Any, url: str, attempts: int, started: float, sent: list, wire: list
    ) -> Completion:
        if not getattr(response, "choices", None):
            raise ModelError(f"{url}: response has no choices")
        choice = response.choices[0]
        message = choice.message
        calls = [
            parse_tool_call(
                call.id or f"call_{index}",
                call.function.name if call.function else "",
                call.function.arguments if call.function else "",
            )
            for index, call in enumerate(message.tool_calls or [])
        ]
        usage = getattr(response, "usage", None)
        return Completion(
            text=message.content or "",
            tool_calls=calls,
            tokens_in=int(getattr(usage, "prompt_tokens", 0) or 0),
            tokens_out=int(getattr(usage, "completion_tokens", 0) or 0),
            logprobs=_parse_logprobs(choice),
            seconds=time.monotonic() - started,
            finish_reason=choice.finish_reason,
            endpoint=url,
            attempts=attempts,
            condensed=len(sent) != len(wire) or sent != wire,
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
