"""The agent: a LangGraph loop over a model and a sandbox, its tools, prompts and models
(the trajectory record it writes lives in :mod:`swescale.record`).

Public API (imported lazily, so ``swescale.agent.config`` stays cheap to import)::

    run_agent, messages_from_steps, AgentResult          swescale.agent.graph
    build_model, Completion, Model, ModelError           swescale.agent.models
    ScriptedModel                                        swescale.agent.models.scripted
    render_prompts                                       swescale.agent.prompts
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run_agent": "swescale.agent.graph",
    "messages_from_steps": "swescale.agent.graph",
    "AgentResult": "swescale.agent.graph",
    "EXIT_STATUSES": "swescale.agent.graph",
    "build_model": "swescale.agent.models",
    "close_model": "swescale.agent.models",
    "sample_n": "swescale.agent.models",
    "Completion": "swescale.agent.models",
    "Model": "swescale.agent.models",
    "ModelError": "swescale.agent.models",
    "ScriptedModel": "swescale.agent.models.scripted",
    "render_prompts": "swescale.agent.prompts",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'swescale.agent' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
