"""Running a recorded action the way the agent that recorded it ran it.

- ``subshell`` (mini-swe-agent): every command in a fresh ``bash -c`` in the agent's
  working directory, with its environment variables and its per-command timeout, stdout
  and stderr merged into one stream as ``subprocess.run(..., stderr=STDOUT)`` merges them
  (``exec 2>&1`` in the process itself, so the interleaving is the program's own, not the
  engine's). ``cd`` and ``export`` do not outlive the command.
- ``session`` (SWE-agent): one persistent shell for the whole trajectory, started in the
  repository; its own tools (``edit``, ``open`` ...) are not plain shell and are not run.
- ``swescale``: swescale's own trajectories, every tool run again as the agent ran it.

When the recorded repository root differs from the sandbox's working directory
(SWE-agent 0.x kept repositories at ``/<owner>__<repo>``), commands are rewritten to the
sandbox's path and outputs back to the recorded one, so texts compare as the agent saw
them.
"""

from __future__ import annotations

import shlex
from typing import Any, Protocol

from swescale.record.foreign import ShellSemantics
from swescale.types import Action, ExecResult, Observation

# Replayed outputs are kept whole up to this size (mini-swe-agent recorded whole outputs;
# beyond it both sides are compared on what was kept).
OUTPUT_LIMIT = 8_000_000


class CommandSandbox(Protocol):
    workdir: str

    def execute(self, command: str, timeout: float | None = None) -> ExecResult: ...

    def exec_once(
        self,
        command: str,
        timeout: float | None = None,
        workdir: str | None = None,
        output_limit: int | None = None,
        env: dict[str, str] | None = None,
    ) -> ExecResult: ...


class ActionRunner:
    """Runs the recorded actions of one trajectory in ``sandbox`` with ``semantics``."""

    def __init__(self, sandbox: CommandSandbox, semantics: ShellSemantics) -> None:
        self.sandbox = sandbox
        self.semantics = semantics
        self.workdir = sandbox.workdir
        self._started = False

    def replayable(self, action: Action) -> bool:
        if self.semantics.kind == "swescale":
            return True  # swescale's own tools run again as they ran
        return action.tool == "bash" and action.args.get("replayable", True) is not False

    def run(self, action: Action) -> Observation:
        """The observation the action gives now. A not-replayable action is not run and
        comes back with ``error`` saying so."""
        if not self.replayable(action):
            return Observation(output="", error=f"not replayable: {action.tool}")
        if self.semantics.kind == "swescale":
            from swescale.agent.config import AgentConfig
            from swescale.agent.tools import run_action

            return run_action(self.sandbox, action, AgentConfig())  # type: ignore[arg-type]
        command = self._to_sandbox(str(action.args.get("command", "")))
        if self.semantics.kind == "subshell":
            # stderr joins stdout in the process (not in the engine's stream), and the
            # command runs as `bash -c COMMAND` itself, so bash's messages name the lines
            # the agent's did.
            result = self.sandbox.exec_once(
                "exec 2>&1; exec bash -c " + shlex.quote(command),
                timeout=self.semantics.timeout,
                workdir=self._to_sandbox(self.semantics.cwd),
                output_limit=OUTPUT_LIMIT,
                env=dict(self.semantics.env),
            )
        else:
            if not self._started:
                self.sandbox.execute(f"cd {self.workdir}", timeout=30)
                self._started = True
            result = self.sandbox.execute(command, timeout=self.semantics.timeout)
        return Observation(
            output=self._from_sandbox(result.output),
            exit_code=result.exit_code,
            timed_out=result.timed_out,
            truncated=result.truncated,
            error=result.infra_error,
            seconds=result.seconds,
        )

    def _to_sandbox(self, text: str) -> str:
        root = self.semantics.repo_root
        if not root or root == self.workdir:
            return text
        return text.replace(root, self.workdir)

    def _from_sandbox(self, text: str) -> str:
        root = self.semantics.repo_root
        if not root or root == self.workdir:
            return text
        return text.replace(self.workdir, root)


def describe(semantics: ShellSemantics) -> dict[str, Any]:
    """The semantics as recorded in ``replay.json``."""
    return semantics.model_dump(mode="json")
