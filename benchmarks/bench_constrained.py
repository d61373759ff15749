"""Constrained against plain decoding of agent turns with the tiny real model, side by side.

The same first turns (the agent's real prompt for a mini-benchmark task, seeds 0..N-1)
are asked of SmolLM2-135M behind llama.cpp in four ways: text mode (one bash block) and
native tool calls, each plain and under constrained decoding (a grammar of one bash
block; a JSON schema of the union of the tools). For each: the share of turns that yield a
valid action (parsed, a known tool, arguments valid against its schema) and the seconds
per turn, printed as ratios to the plain native mode.

Usage: .venv/bin/python benchmarks/bench_constrained.py [--turns 8] [--task slugkit-1]
Absolute times appear only beside ratios (a shared machine makes them noisy).
"""

from __future__ import annotations

import argparse
import time

from swescale.agent.config import ModelConfig
from swescale.agent.models import build_model
from swescale.agent.models.servers import LlamaCppServer
from swescale.agent.prompts import render_prompts
from swescale.agent.tools import TOOL_SCHEMAS, FormatError, call_problem, parse_actions
from swescale.swebench.mini import mini_tasks


def valid_turn(completion, tool_mode: str) -> bool:
    try:
        actions = parse_actions(completion, tool_mode)
    except FormatError:
        return False
    if tool_mode == "native" and completion.tool_calls:
        return len(actions) == 1 and call_problem(completion.tool_calls[0]) is None
    return len(actions) == 1


def measure(url: str, task, mode: str, constrained: str, turns: int, max_tokens: int):
    tool_mode = "text" if mode == "text" else "native"
    cfg = ModelConfig(
        kind="llamacpp",
        endpoints=[url],
        constrained=constrained,
        max_tokens=max_tokens,
        temperature=0.9,
        context_window=4096,
        request_timeout=600,
    )
    model = build_model(cfg)
    system, user = render_prompts(task, "agent", tool_mode=tool_mode, step_limit=4)
    chat = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    tools = TOOL_SCHEMAS if tool_mode == "native" else None
    kw = {"bash_block": True} if tool_mode == "text" else {}
    model.complete(chat, tools=tools, seed=999, max_tokens=1, **kw)  # warm the prompt cache
    valid, seconds, tokens = 0, 0.0, 0
    for seed in range(turns):
        start = time.perf_counter()
        completion = model.complete(chat, tools=tools, seed=seed, **kw)
        seconds += time.perf_counter() - start
        tokens += completion.tokens_out
        valid += valid_turn(completion, tool_mode)
    model.close()
    return valid / turns, seconds / turns, tokens / turns


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--task", default="slugkit-1")
    parser.add_argument("--max-tokens", type=int, default=160)
    args = parser.parse_args()
    task = next(t for t in mini_tasks() if t.id.endswith(args.task))
    cfg = ModelConfig(kind="llamacpp", context_window=4096, n_threads=1, startup_timeout=300)
    rows = {}
    with LlamaCppServer(cfg) as server:
        for name, mode, constrained in [
            ("text, plain", "text", "off"),
            ("text, constrained", "text", "auto"),
            ("native, plain", "native", "off"),
            ("native, constrained", "native", "auto"),
        ]:
            rows[name] = measure(server.url, task, mode, constrained, args.turns, args.max_tokens)
    base = rows["native, plain"]
    print(f"{args.turns} first turns each, max_tokens={args.max_tokens}, task {task.id}")
    print(f"{'mode':22s} {'valid':>6s} {'s/turn':>7s} {'x plain':>8s} {'tokens/turn':>12s}")
    for name, (valid, seconds, tokens) in rows.items():
        print(f"{name:22s} {valid:6.0%} {seconds:7.1f} {seconds / base[1]:8.2f} {tokens:12.1f}")


if __name__ == "__main__":
    main()
