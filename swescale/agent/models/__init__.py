"""Models: one OpenAI-wire client (vLLM, llama.cpp, any endpoint) and a scripted model.

``build_model(cfg)`` is the factory; implementations are imported only when asked for.
A model built for a managed server kind (``llamacpp``/``vllm`` with no ``endpoints``)
starts that server and owns it: call ``close()`` (or use ``with``) to stop it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from swescale.agent.config import ModelConfig
from swescale.agent.models.base import (
    Completion,
    ContextOverflow,
    Model,
    ModelError,
    ScriptExhausted,
    completion_from_message,
    sample_n,
)

if TYPE_CHECKING:
    from swescale.agent.models.openai_client import OpenAIModel
    from swescale.agent.models.scripted import ScriptedModel

__all__ = [
    "Completion",
    "ContextOverflow",
    "Model",
    "ModelError",
    "ScriptExhausted",
    "build_model",
    "close_model",
    "completion_from_message",
    "sample_n",
]


def build_model(cfg: ModelConfig) -> Model:
    """The model ``cfg`` describes. Starts a managed server when one is needed."""
    if cfg.kind == "scripted":
        from swescale.agent.models.scripted import ScriptedModel

        if not cfg.script:
            raise ModelError("model.kind=scripted needs model.script (a turns file or trajectory)")
        model: ScriptedModel | OpenAIModel = ScriptedModel(
            cfg.script, on_exhausted=cfg.on_exhausted, name=cfg.name
        )
        return model
    from swescale.agent.models.openai_client import OpenAIModel

    if cfg.kind == "openai" or cfg.endpoints:
        if not cfg.endpoints:
            raise ModelError("model.kind=openai needs model.endpoints (base URLs)")
        return OpenAIModel(cfg)
    from swescale.agent.models.servers import server_for

    server = server_for(cfg).start()
    try:
        return OpenAIModel(cfg, endpoints=[server.url], server=server)
    except BaseException:
        server.stop()
        raise


def close_model(model: Model) -> None:
    """Release what a model holds (HTTP clients, a managed server); no-op otherwise."""
    close = getattr(model, "close", None)
    if callable(close):
        close()
