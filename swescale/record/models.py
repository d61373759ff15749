"""The typed shapes of the record's files that are not already core types.

Steps, candidates, verdicts and selections are :mod:`swescale.types` models. Here: the
trajectory header and footer, a task's ``result.json`` and the run's ``run.json``. Every
model allows fields it does not name (a record written by a newer release of the same
format keeps them), and every field has a default, so a partial record still reads.
Writers build these models; strict readers validate with them; the report reads the same
files tolerantly, field by field (:mod:`swescale.record.io`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TrajectoryHeader(_Open):
    """Line 1 of a trajectory record.

    ``parent``: (trajectory id, step) it branched from; ``config_hash``: the run config's
    digest; ``image``/``image_digest``: the instance image it ran in. For trajectories of
    other agents: ``source_format`` (``mini-swe-agent-1``, ``mini-swe-agent-1.1``,
    ``swe-agent``), ``source_path``, ``agent_version``, ``prompt_messages`` (the chat
    before the first turn) and ``shell`` (how its commands ran, for replay).
    """

    type: Literal["header"] = "header"
    format_version: int = 1
    trajectory_id: str = ""
    task_id: str = ""
    parent: tuple[str, int] | None = None
    round: int = 0
    seed: int = 0
    config_hash: str | None = None
    model: str | None = None
    image: str | None = None
    image_digest: str | None = None
    temperature: float | None = None
    prompt_variant: str | None = None
    started_at: str | None = None
    source_format: str | None = None
    source_path: str | None = None
    agent_version: str | None = None
    prompt_messages: list[dict[str, Any]] | None = None
    shell: dict[str, Any] | None = None


class TrajectoryFooter(_Open):
    """The last line: how the trajectory ended and the patch it left.

    ``totals``: steps, tokens, seconds and what this session spent (``this_run``);
    ``patch_notes``: why the patch does not carry the agent's bytes exactly, when not.
    """

    type: Literal["footer"] = "footer"
    exit_status: str = ""
    patch: str = ""
    totals: dict[str, Any] = Field(default_factory=dict)
    finished_at: str | None = None
    patch_notes: list[str] | None = None


class TaskResult(_Open):
    """``<task>/result.json``: written last, when the task is done (or failed).

    ``trajectories``: count by outcome; ``exit_statuses``: trajectory id -> how it ended;
    ``selected``: the picked candidate's id (None: abstained); ``resolved``: the pick's
    grade (None: not graded); ``seconds``: wall time; ``cost``: a Cost as a dict.
    """

    task_id: str = ""
    status: str = ""
    stage: str | None = None
    reason: str | None = None
    trajectories: dict[str, int] = Field(default_factory=dict)
    exit_statuses: dict[str, str] = Field(default_factory=dict)
    stop_reason: str | None = None
    candidates: int = 0
    selected: str | None = None
    selector: str = ""
    confidence: float | None = None
    resolved: bool | None = None
    any_resolved: bool | None = None
    verifier_notes: list[str] = Field(default_factory=list)
    seconds: float | None = None
    cost: dict[str, Any] = Field(default_factory=dict)


class RunInfo(_Open):
    """``<run>/run.json``: what the run is and where it stands.

    ``tasks``: task id -> state (status, stage, reason, resolved); ``ledger``: the budget
    ledger (tokens, dollars, seconds by task and kind); ``sessions``: how many times the
    run was started; ``config_changes``: digests a forced rerun changed from and to.
    """

    run_id: str = ""
    created: str | None = None
    updated: str | None = None
    config_digest: str = ""
    sessions: int = 0
    total_tasks: int | None = None
    tasks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    image_digests: dict[str, str] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    ledger: dict[str, Any] = Field(default_factory=dict)
    totals: dict[str, Any] = Field(default_factory=dict)
    config_changes: list[dict[str, Any]] = Field(default_factory=list)
