"""Testing trajectories: the agent with the testing prompt writes reproduction tests.

Each trajectory runs in its own fresh sandbox; the test files its patch creates are read
back from the sandbox and become ReproTests. Which of them reproduce the issue is decided
later, by running them on the base commit (``repro.filter_on_base``).
"""

from __future__ import annotations

import logging
from typing import Any

from swescale.sandbox.base import SandboxError
from swescale.types import Cost, Task
from swescale.verifiers.execution import SandboxFactory
from swescale.verifiers.repro import ReproTest, new_test_files

log = logging.getLogger(__name__)

TESTING_PROMPT = "prompts/testing.j2"


def generate_repro_tests(
    task: Task,
    make_sandbox: SandboxFactory,
    model: Any,
    agent_cfg: Any = None,
    n: int = 1,
    prompt: str = TESTING_PROMPT,
    tool_mode: str = "text",
) -> tuple[list[ReproTest], Cost]:
    """Run ``n`` testing trajectories; return the distinct test files they wrote and what
    they cost. A trajectory that fails (model or sandbox error) contributes nothing."""
    from swescale.agent.config import AgentConfig
    from swescale.agent.graph import run_agent

    cfg = agent_cfg or AgentConfig()
    tests: dict[str, ReproTest] = {}
    cost = Cost()
    for index in range(n):
        try:
            sandbox = make_sandbox()
        except SandboxError as exc:
            log.warning("%s: no sandbox for testing trajectory %d: %s", task.id, index, exc)
            continue
        try:
            result = run_agent(
                task, sandbox, model, cfg, prompt_variant=prompt, tool_mode=tool_mode
            )
            cost = cost + result.totals
            for path in new_test_files(result.patch):
                try:
                    content = sandbox.read_file(path).decode("utf-8", "replace")
                except (FileNotFoundError, SandboxError) as exc:
                    log.warning("%s: test file %s unreadable: %s", task.id, path, exc)
                    continue
                test = ReproTest(path=path, content=content)
                tests.setdefault(test.hash, test)
        except SandboxError as exc:
            log.warning("%s: testing trajectory %d failed: %s", task.id, index, exc)
        finally:
            sandbox.close()
    return list(tests.values()), cost
