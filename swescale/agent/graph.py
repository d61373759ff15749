"""The agent loop as a LangGraph graph: model node -> tool node -> route.

The model node asks for one turn; the tool node turns it into actions, runs them in the
sandbox, records the step (with the repository state after it) and decides whether the
trajectory ends: submitted, step limit, budget spent, too many malformed turns in a row,
or a failing sandbox. A failing model ends it in the model node.

The chat is rebuilt from recorded steps by :func:`messages_from_steps`, the same function
that extends it while running, so resuming at step k (after a crash, or to branch) sends
the model exactly the messages the original run sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, StateGraph
from pydantic import BaseModel, Field

from swescale.agent.config import AgentConfig
from swescale.agent.models.base import Completion, Model, ModelError
from swescale.agent.prompts import render_prompts
from swescale.agent.snapshots import StateTracker
from swescale.agent.tools import (
    FORMAT_ERROR_PREFIX,
    INFRA_ERROR_PREFIX,
    REPEATED_CALL_NOTE,
    SUBMIT,
    TOOL_SCHEMAS,
    FormatError,
    call_problem,
    format_observation,
    is_format_error,
    is_infra_error,
    parse_actions,
    run_action,
)
from swescale.record.trajectory import RecordError, TrajectoryRecorder
from swescale.sandbox.base import Sandbox, SandboxError
from swescale.types import Action, Cost, Observation, Step, Task

if TYPE_CHECKING:
    from swescale.record.blobs import BlobStore

log = logging.getLogger(__name__)

EXIT_STATUSES = (
    "submitted",
    "step_limit",
    "budget",
    "format_error",
    "model_error",
    "sandbox_error",
)


class AgentResult(BaseModel):
    """How a run ended. ``steps`` holds every step of the trajectory (resumed ones
    included); ``totals`` counts only what this call spent."""

    exit_status: str
    patch: str = ""
    # Set when the patch cannot carry the agent's bytes exactly (see DockerSandbox.diff).
    patch_notes: list[str] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    totals: Cost = Field(default_factory=Cost)
    seconds: float = 0.0
    new_steps: int = 0
    error: str = ""


# ------------------------------------------------------------------------ messages
def step_messages(step: Step) -> list[dict[str, Any]]:
    """The chat messages one step adds: the model's turn, then what it observed (for a
    step of another agent's trajectory, the messages it recorded, as they were)."""
    if step.chat:
        return [dict(m) for m in step.chat]
    assistant = {"role": "assistant", **{k: v for k, v in step.message.items() if k != "role"}}
    messages: list[dict[str, Any]] = [assistant]
    calls = step.message.get("tool_calls") or []
    observations = step.observations
    if calls:
        for index, call in enumerate(calls):
            content = (
                format_observation(observations[index]) if index < len(observations) else "Not run."
            )
            messages.append(
                {"role": "tool", "tool_call_id": call.get("id", ""), "content": content}
            )
        extra = observations[len(calls) :]
    else:
        extra = observations
    if extra or not calls:
        text = "\n\n".join(format_observation(o) for o in extra)
        messages.append({"role": "user", "content": text or "(no output)"})
    return messages


def messages_from_steps(
    system: str,
    user: str,
    steps: list[Step],
    prompt_messages: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The chat as it stood after ``steps`` (what the model is sent for the next turn).
    ``prompt_messages``: the messages before the first turn when they were recorded (an
    imported trajectory's own system and task messages) instead of ours."""
    messages: list[dict[str, Any]] = (
        [dict(m) for m in prompt_messages]
        if prompt_messages
        else [{"role": "system", "content": system}, {"role": "user", "content": user}]
    )
    for step in steps:
        messages.extend(step_messages(step))
    return messages


def _submitted(step: Step) -> bool:
    return any(a.tool == SUBMIT for a in step.actions)


def _malformed(step: Step) -> bool:
    return bool(step.observations) and any(is_format_error(o) for o in step.observations)


def _trailing(steps: list[Step], predicate: Callable[[Step], bool]) -> int:
    count = 0
    for step in reversed(steps):
        if not predicate(step):
            break
        count += 1
    return count


# ------------------------------------------------------------------------ the graph
@dataclass
class _Run:
    """What the nodes need besides the state; passed through the graph's config."""

    sandbox: Sandbox
    model: Model
    cfg: AgentConfig
    tool_mode: str
    recorder: TrajectoryRecorder | None
    blob_store: Any
    budget: Callable[[Completion], bool] | None
    tracker: StateTracker | None = None
    model_seconds: float = 0.0
    sandbox_seconds: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    reasoning_tokens: int = 0


class _State(TypedDict, total=False):
    messages: list[dict[str, Any]]
    steps: list[Step]
    completion: Completion | None
    turn_started: float
    over_budget: bool
    exit_status: str
    error: str


def _model_node(state: _State, config: RunnableConfig) -> dict[str, Any]:
    run: _Run = config["configurable"]["run"]  # type: ignore[index]
    steps = state["steps"]
    if len(steps) >= run.cfg.step_limit:
        return {"exit_status": "step_limit"}
    kw: dict[str, Any] = {}
    if run.cfg.seed is not None:
        kw["seed"] = run.cfg.seed + len(steps)
    if run.cfg.temperature is not None:
        kw["temperature"] = run.cfg.temperature
    tools = TOOL_SCHEMAS if run.tool_mode == "native" else None
    if tools is None:
        kw["bash_block"] = True  # a server that can constrain decodes one bash block
    started = time.monotonic()
    try:
        completion = run.model.complete(state["messages"], tools=tools, **kw)
    except ModelError as exc:
        return {"exit_status": "model_error", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a model bug must not take the batch down
        log.exception("model failed")
        return {"exit_status": "model_error", "error": f"{type(exc).__name__}: {exc}"}
    run.model_seconds += completion.seconds or (time.monotonic() - started)
    run.tokens_in += completion.tokens_in
    run.tokens_out += completion.tokens_out
    run.reasoning_tokens += completion.reasoning_tokens
    over_budget = run.budget is not None and not run.budget(completion)
    return {"completion": completion, "turn_started": started, "over_budget": over_budget}


def _act(
    run: _Run, completion: Completion, previous: Step | None = None
) -> tuple[list[Action], list[Observation], str]:
    """Run a turn's actions. Returns the actions, one observation each, and an exit
    status decided by them ("" to go on). An action the previous step already took gets
    a note saying so: small models loop on one call, and the note is what breaks it."""
    try:
        actions = parse_actions(completion, run.tool_mode)
    except FormatError as exc:
        return [], [Observation(output="", error=f"{FORMAT_ERROR_PREFIX}{exc}")], ""
    observations: list[Observation] = []
    status = ""
    problems = [call_problem(c) for c in completion.tool_calls] if run.tool_mode == "native" else []
    for index, action in enumerate(actions):
        if status:
            observations.append(Observation(output="", error="not run: the trajectory ended first"))
            continue
        problem = problems[index] if index < len(problems) else None
        if problem:
            observations.append(
                Observation(output="", error=f"{FORMAT_ERROR_PREFIX}{problem}. Nothing was run.")
            )
            continue
        try:
            observation = run_action(run.sandbox, action, run.cfg)
        except Exception as exc:  # noqa: BLE001 - SandboxError, or the engine's client failing
            if not isinstance(exc, SandboxError):
                log.exception("tool %s failed", action.tool)
            error = f"{INFRA_ERROR_PREFIX}{type(exc).__name__}: {exc}"
            observation, status = Observation(output="", error=error), "sandbox_error"
        run.sandbox_seconds += observation.seconds
        repeated = previous is not None and any(
            a.tool == action.tool and a.args == action.args for a in previous.actions
        )
        if repeated and action.tool != SUBMIT and not status:
            observation = observation.model_copy(
                update={"output": observation.output + REPEATED_CALL_NOTE}
            )
        observations.append(observation)
        if action.tool == SUBMIT and not status:
            status = "submitted"
    return actions, observations, status


def _tools_node(state: _State, config: RunnableConfig) -> dict[str, Any]:
    run: _Run = config["configurable"]["run"]  # type: ignore[index]
    completion = state["completion"]
    assert completion is not None
    steps = list(state["steps"])
    actions, observations, status = _act(run, completion, steps[-1] if steps else None)
    error = next((o.error for o in observations if status == "sandbox_error" and o.error), "")
    ref = None
    if run.tracker is not None:
        try:
            ref = run.tracker.state_after_step()
        except Exception as exc:  # noqa: BLE001 - SandboxError, or the engine's client failing
            status, error = "sandbox_error", f"snapshot failed: {type(exc).__name__}: {exc}"
    step = Step(
        index=len(steps),
        message=completion.message(),
        actions=actions,
        observations=observations,
        state=ref,
        tokens_in=completion.tokens_in,
        tokens_out=completion.tokens_out,
        seconds=time.monotonic() - state["turn_started"],
        logprob=completion.total_logprob,
        reasoning_tokens=completion.reasoning_tokens,
    )
    if run.recorder is not None:
        run.recorder.write_step(step)
    steps.append(step)
    messages = state["messages"] + step_messages(step)
    if not status:
        if _trailing(steps, _malformed) > run.cfg.max_format_retries:
            status = "format_error"
        elif (
            _trailing(steps, lambda s: any(is_infra_error(o) for o in s.observations))
            > run.cfg.max_infra_errors
        ):
            status = "sandbox_error"
        elif state.get("over_budget"):
            status = "budget"
        elif len(steps) >= run.cfg.step_limit:
            status = "step_limit"
    update: dict[str, Any] = {"steps": steps, "messages": messages, "completion": None}
    if status:
        update["exit_status"] = status
    if error:
        update["error"] = error
    return update


def _route(state: _State) -> str:
    return END if state.get("exit_status") else "next"


@lru_cache(maxsize=1)
def agent_graph() -> Any:
    """The compiled graph (built once; per-run objects travel in the config)."""
    graph = StateGraph(_State)
    graph.add_node("model", _model_node)
    graph.add_node("tools", _tools_node)
    graph.set_entry_point("model")
    graph.add_conditional_edges("model", _route, {"next": "tools", END: END})
    graph.add_conditional_edges("tools", _route, {"next": "model", END: END})
    return graph.compile()


# ------------------------------------------------------------------------ entry point
def run_agent(
    task: Task,
    sandbox: Sandbox,
    model: Model,
    cfg: AgentConfig,
    *,
    recorder: TrajectoryRecorder | None = None,
    blob_store: BlobStore | None = None,
    resume_steps: list[Step] | None = None,
    feedback: str = "",
    prompt_variant: str | None = None,
    budget: Callable[[Completion], bool] | None = None,
    tool_mode: str = "text",
    prompt_messages: list[dict[str, Any]] | None = None,
) -> AgentResult:
    """Run (or continue) one trajectory of the agent on ``task`` in ``sandbox``.

    ``resume_steps``: steps already taken; the caller has restored the sandbox to the
    state after the last of them. Steps the recorder's file lacks are written to it first,
    so a branch's file is complete on its own. ``budget(completion)`` is called after every
    model turn and returns False once the budget is spent (that turn's actions still run).
    The recorder gets a footer when the trajectory ends; closing it is the caller's job.
    ``prompt_messages``: the chat before the first turn, when it is another agent's
    (a branch of an imported trajectory goes on from the messages that agent saw).
    """
    if tool_mode not in ("text", "native"):
        raise ValueError(f"tool_mode must be 'text' or 'native', got {tool_mode!r}")
    started = time.monotonic()
    system, user = render_prompts(
        task,
        prompt_variant or cfg.prompt_template,
        workdir=sandbox.workdir,
        tool_mode=tool_mode,
        step_limit=cfg.step_limit,
        feedback=feedback,
    )
    steps = list(resume_steps or [])
    if recorder is not None:
        if recorder.finished:
            raise RecordError(f"{recorder.path} is already finished (it has a footer)")
        if recorder.steps_recorded > len(steps):
            raise ValueError(
                f"{recorder.path} holds {recorder.steps_recorded} steps but only "
                f"{len(steps)} were given to resume from"
            )
        for step in steps[recorder.steps_recorded :]:
            recorder.write_step(step)
    tracker = None
    if cfg.snapshot_steps and (recorder is not None or blob_store is not None):
        tracker = StateTracker(sandbox, blob_store)
    run = _Run(sandbox, model, cfg, tool_mode, recorder, blob_store, budget, tracker)
    state: _State = {
        "messages": messages_from_steps(system, user, steps, prompt_messages),
        "steps": steps,
    }
    if steps and _submitted(steps[-1]):
        state["exit_status"] = "submitted"
    elif len(steps) >= cfg.step_limit:
        state["exit_status"] = "step_limit"
    else:
        remaining = cfg.step_limit - len(steps)
        state = agent_graph().invoke(
            state, config={"configurable": {"run": run}, "recursion_limit": 2 * remaining + 8}
        )
    exit_status = state.get("exit_status") or "step_limit"
    error = state.get("error", "")
    patch_notes: list[str] = []
    try:
        patch = sandbox.diff()
        patch_notes = list(getattr(sandbox, "patch_notes", None) or [])
    except Exception as exc:  # noqa: BLE001 - SandboxError, or the engine's client failing
        patch, exit_status = "", "sandbox_error"
        error = error or f"diff failed: {type(exc).__name__}: {exc}"
    all_steps: list[Step] = state["steps"]
    new_steps = len(all_steps) - len(resume_steps or [])
    price = getattr(model, "cfg", None)
    dollars = 0.0
    if price is not None:
        dollars = (
            run.tokens_in * getattr(price, "price_in", 0.0)
            + run.tokens_out * getattr(price, "price_out", 0.0)
        ) / 1e6
    totals = Cost(
        tokens_in=run.tokens_in,
        tokens_out=run.tokens_out,
        reasoning_tokens=run.reasoning_tokens,
        dollars=dollars,
        model_seconds=run.model_seconds,
        sandbox_seconds=run.sandbox_seconds,
    )
    if recorder is not None:
        recorder.write_footer(
            exit_status,
            patch,
            {
                "steps": len(all_steps),
                "tokens_in": sum(s.tokens_in for s in all_steps),
                "tokens_out": sum(s.tokens_out for s in all_steps),
                "reasoning_tokens": sum(s.reasoning_tokens for s in all_steps),
                "seconds": sum(s.seconds for s in all_steps),
                "this_run": totals.model_dump(),
                "error": error,
            },
            patch_notes=patch_notes,
        )
    return AgentResult(
        exit_status=exit_status,
        patch=patch,
        patch_notes=patch_notes,
        steps=all_steps,
        totals=totals,
        seconds=time.monotonic() - started,
        new_steps=new_steps,
        error=error,
    )
