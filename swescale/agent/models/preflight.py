"""Before any trajectory: can the configured model be asked at all?

A missing API key or an endpoint that does not answer would otherwise end every
trajectory with ``model_error`` after minutes of retries, and a run that asked for a fix
would read as if the issue had none. One ``GET /models`` per endpoint (the OpenAI list
call, served by vLLM, llama.cpp and hosted APIs alike) tells these apart up front.
"""

from __future__ import annotations

import os

import httpx

from swescale.agent.config import ModelConfig
from swescale.agent.models.base import ModelError


def endpoint_problem(url: str, key: str, key_env: str, timeout: float = 10.0) -> str:
    """Why ``url`` (an OpenAI base URL ending in ``/v1``) cannot serve requests with
    ``key``, or "" when it answers. Only a refused connection, a timeout or an
    authentication refusal (401, 403) count: any other status (a server without
    ``/models``) still means something answers there."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        reply = httpx.get(f"{url}/models", headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        return f"{url} is not reachable ({type(exc).__name__}: {exc})"
    if reply.status_code in (401, 403):
        if not key:
            return f"{url} needs an API key and ${key_env} is not set (HTTP {reply.status_code})"
        return f"{url} refused the key in ${key_env} (HTTP {reply.status_code})"
    return ""


def check_model_reachable(cfg: ModelConfig, timeout: float = 10.0) -> None:
    """Raise :class:`ModelError` naming every endpoint and why, when none of
    ``cfg.endpoints`` can serve requests. Scripted models and managed servers (no
    endpoints: the run starts the server and fails loudly if it cannot) pass."""
    from swescale.agent.models.openai_client import normalize_endpoint

    if cfg.kind == "scripted" or not cfg.endpoints:
        return
    key = os.environ.get(cfg.api_key_env, "").strip()
    problems = [
        endpoint_problem(normalize_endpoint(u), key, cfg.api_key_env, timeout)
        for u in cfg.endpoints
    ]
    if all(problems):
        raise ModelError(
            f"model {cfg.name!r} cannot be asked: " + "; ".join(problems) + " (model.endpoints, "
            "model.api_key_env)"
        )
