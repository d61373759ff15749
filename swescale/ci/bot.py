"""The bot's straight line: event -> request -> task -> run -> branch + pull request (or a
comment saying why not).

```
request = load_event(event)                     # or Ignored(reason)
task    = build_task(request, base commit, .swescale.yaml)
image   = ci_instance_image(repository at the base commit, install commands)
record  = BatchRunner(cfg).run([task])          # runs/ci-<owner>__<name>-<n>/
patch   = the selected candidate, if it passes the guard rails
branch  = swescale/issue-<n> with the patch committed; pull_request.json (or comment.json)
--push  : git push, then POST the pull request (or the comment) to GitHub
```
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swescale.agent.models.preflight import check_model_reachable
from swescale.ci.config import CIConfig, load_bot_config
from swescale.ci.events import Ignored, IssueRequest, load_event, with_discussion
from swescale.ci.git_ops import Author, commit_patch_to_branch, push_branch
from swescale.ci.guard import violations
from swescale.ci.infer import load_repo_config
from swescale.ci.payloads import (
    abstention_comment,
    commit_title,
    pull_request_payload,
    refusal_comment,
)
from swescale.ci.repo_config import RepoConfig
from swescale.ci.task import build_task, open_checkout, resolve_base_commit, run_id_for
from swescale.config import RunConfig
from swescale.record import RunFiles, read_json, write_json_atomic
from swescale.record.task import read_result, read_task
from swescale.types import Candidate, Cost, Task

log = logging.getLogger(__name__)


class BotError(RuntimeError):
    """The bot cannot do what it was asked (push without a token, ...)."""


@dataclass
class BotOutcome:
    """What the bot did. ``action``: ignored | pull_request | comment | failed."""

    action: str
    reason: str = ""
    request: IssueRequest | None = None
    task_id: str = ""
    run_dir: Path | None = None
    branch: str = ""
    commit: str = ""
    payload: dict[str, Any] | None = None
    pushed: bool = False
    url: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reason": self.reason,
            "request": self.request.to_dict() if self.request else None,
            "task_id": self.task_id,
            "run_dir": str(self.run_dir) if self.run_dir else "",
            "branch": self.branch,
            "commit": self.commit,
            "payload": self.payload,
            "pushed": self.pushed,
            "url": self.url,
            "notes": self.notes,
        }


@dataclass
class Plan:
    """Everything decided before any container starts (``swescale ci parse`` shows it)."""

    request: IssueRequest
    repo_cfg: RepoConfig
    run_cfg: RunConfig
    ci: CIConfig
    task: Task
    run_id: str
    branch: str
    base_branch: str
    overrides: list[str]


def make_plan(
    request: IssueRequest,
    repo_path: str | Path,
    *,
    config: str | Path | None = "ci",
    overrides: list[str] | None = None,
    commit: str = "",
) -> Plan:
    """The run config (bot config < .swescale.yaml ``run:`` < comment < command line), the
    task, and names. Raises ConfigError, RepoConfigError, CheckoutError."""
    _, ci = load_bot_config(config, overrides)
    repo = open_checkout(repo_path)
    base = resolve_base_commit(repo, request.default_branch, commit, ci.remote)
    repo_cfg = load_repo_config(repo_path, base)
    layered = [*repo_cfg.run_overrides(), *request.overrides, *(overrides or [])]
    run_cfg, ci = load_bot_config(config, layered)
    # Sandboxes set their own PATH; the repository's venv must be on it for its tools.
    from swescale.swebench.images import VENV_ENV

    sandbox = run_cfg.sandbox.model_copy(update={"env": {**run_cfg.sandbox.env, **VENV_ENV}})
    run_id = run_id_for(request.repo, request.issue_number)
    run_cfg = run_cfg.model_copy(update={"sandbox": sandbox, "run_id": run_id})
    task = build_task(request, base, repo_cfg, ci.hint_comments)
    base_branch = request.default_branch or _current_branch(repo) or "main"
    return Plan(
        request=request,
        repo_cfg=repo_cfg,
        run_cfg=run_cfg,
        ci=ci,
        task=task,
        run_id=run_id,
        branch=f"{ci.branch_prefix}{request.issue_number}",
        base_branch=base_branch,
        overrides=layered,
    )


def _current_branch(repo: Any) -> str:
    try:
        return "" if repo.head.is_detached else repo.active_branch.name
    except TypeError:
        return ""


def open_run_dir(cfg: RunConfig, run_id: str, task: Task) -> Any:
    """The run directory for this issue. The same request at the same commit with the
    same config resumes it; anything else (or a run that failed on infrastructure) moves
    the old one aside (``.<time>``) so its results are kept but not reused."""
    from swescale.record.run import RunDir

    root = Path(cfg.runs_dir) / run_id
    if root.exists():
        files = RunFiles(root)
        earlier = read_task(files.task(task.id).root)
        same_task = earlier is not None and earlier.model_dump(mode="json") == task.model_dump(
            mode="json"
        )
        run_json = read_json(files.run_json)
        same_config = isinstance(run_json, dict) and run_json.get("config_digest") == cfg.digest()
        result = read_result(files.task(task.id).root) or {}
        # A run whose every trajectory hit a model or sandbox error is tried afresh.
        broken = bool(result) and infra_failed(result)
        if not (same_task and same_config) or broken:
            stamp = time.strftime("%Y%m%dT%H%M%S")
            aside = root.with_name(f"{root.name}.{stamp}")
            count = 1
            while aside.exists():
                count += 1
                aside = root.with_name(f"{root.name}.{stamp}-{count}")
            root.rename(aside)
            log.info("earlier run of this issue moved to %s", aside)
    return RunDir.open(cfg.runs_dir, run_id, cfg)


def run_pipeline(plan: Plan, repo_path: str | Path, client: Any = None) -> tuple[Any, dict]:
    """One task through the batch pipeline; (run dir, the task's result record)."""
    from swescale.ci.image import ci_instance_image
    from swescale.sandbox import ImageBuildError, docker_client
    from swescale.scaling.batch import BatchRunner
    from swescale.scaling.launcher import reap_leftovers, remove_session_containers, run_model

    client = client or docker_client()
    rundir = open_run_dir(plan.run_cfg, plan.run_id, plan.task)
    reap_leftovers(client, rundir.run_id)
    try:
        image = ci_instance_image(
            client,
            plan.request.repo,
            repo_path,
            plan.task.base_commit,
            plan.repo_cfg,
            plan.run_cfg.images,
        )
    except ImageBuildError as exc:
        # Most often the repository's install commands: its maintainers hear about it on
        # the issue like any other failed run; nothing is recorded as done, so a rerun
        # after fixing .swescale.yaml builds again.
        reason = f"building the repository's image failed: {str(exc)[-1500:]}"
        rundir.record_failure(plan.task.id, "image", reason)
        return rundir, {
            "task_id": plan.task.id,
            "status": "failed",
            "stage": "image",
            "reason": reason,
        }
    with run_model(plan.run_cfg) as model:
        runner = BatchRunner(
            plan.run_cfg, rundir, model=model, client=client, image_for=lambda _task: image
        )
        try:
            result = runner.run([plan.task])
        finally:
            remove_session_containers(client, rundir.run_id)
    record = result.results.get(plan.task.id) or {"status": "failed", "reason": "no result"}
    return rundir, record


def _token(ci: CIConfig) -> str:
    return os.environ.get(ci.token_env, "").strip()


def _github(plan_ci: CIConfig, repo: str, api_url: str | None) -> Any:
    from swescale.ci.github import GitHubClient

    return GitHubClient(
        repo, _token(plan_ci), api_url or plan_ci.api_url, timeout=plan_ci.api_timeout
    )


# Exit statuses that say the machinery failed, not that the agent found nothing.
INFRA_EXITS = frozenset({"model_error", "sandbox_error"})


def exit_summary(record: dict[str, Any]) -> str:
    """``"submitted x2, model_error x1"`` from the task's result record."""
    counts: dict[str, int] = {}
    for status in (record.get("exit_statuses") or {}).values():
        counts[str(status)] = counts.get(str(status), 0) + 1
    if not counts:
        return "no trajectory finished"
    return ", ".join(f"{s} x{n}" for s, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def infra_failed(record: dict[str, Any]) -> bool:
    """Every trajectory ended on a model or sandbox error: the run says nothing about the
    issue, and the bot reports a failure rather than an honest "no fix"."""
    if record.get("status") != "done":
        return True
    statuses = list((record.get("exit_statuses") or {}).values())
    return bool(statuses) and all(s in INFRA_EXITS for s in statuses)


def infra_note(record: dict[str, Any]) -> list[str]:
    """A reason line when some trajectories ended on a model or sandbox error: those say
    nothing about the issue, and the comment must not read as if they did."""
    statuses = list((record.get("exit_statuses") or {}).values())
    failed = sum(1 for s in statuses if s in INFRA_EXITS)
    if not failed:
        return []
    return [
        f"{failed} of {len(statuses)} trajectories ended on a model or sandbox error "
        "(the bot's set-up, not the issue)"
    ]


def decide(
    plan: Plan, rundir: Any, record: dict[str, Any]
) -> tuple[Candidate | None, list[str], Any, list[Candidate], int, Cost]:
    """(the candidate to propose or None, reasons not to, selection, candidates,
    trajectories, cost) from the run's record."""
    from swescale.record.task import read_task_record

    trajectories = sum((record.get("trajectories") or {}).values())
    cost = Cost.model_validate(record.get("cost") or {})
    if record.get("status") != "done":
        why = f"the run failed at {record.get('stage', '?')}: {record.get('reason', '?')}"
        return None, [why], None, [], trajectories, cost
    tr = read_task_record(rundir.task_dir(plan.task.id))
    selection = tr.selection
    chosen = next((c for c in tr.candidates if selection and c.id == selection.candidate_id), None)
    if chosen is None:
        if not tr.candidates:
            reasons = [f"no trajectory produced a patch ({exit_summary(record)})"]
        else:
            reasons = [f"no candidate was selected out of {len(tr.candidates)}"]
        return None, reasons + infra_note(record), selection, tr.candidates, trajectories, cost
    broken = violations(chosen.patch, plan.repo_cfg)
    if broken:
        reasons = [f"the selected patch breaks a guard rail: {v}" for v in broken]
        return None, reasons, selection, tr.candidates, trajectories, cost
    return chosen, [], selection, tr.candidates, trajectories, cost


def run_bot(
    event_path: str | Path,
    repo_path: str | Path,
    *,
    config: str | Path | None = "ci",
    overrides: list[str] | None = None,
    push: bool = False,
    api_url: str | None = None,
    commit: str = "",
    event_name: str = "",
    client: Any = None,
) -> BotOutcome:
    """Handle one event end to end. Dry run unless ``push``: the branch is made locally and
    the payload written to the run directory, nothing is sent."""
    _, ci = load_bot_config(config, overrides)
    found = load_event(event_path, ci, event_name)
    if push and not _token(ci):
        raise BotError(f"--push needs a token in ${ci.token_env}")
    if isinstance(found, Ignored):
        outcome = BotOutcome("ignored", found.reason)
        if found.notify and found.issue_number is not None:
            outcome.payload = refusal_comment(found.reason, ci.command)
            if push:
                with _github(ci, found.repo, api_url) as gh:
                    answer = gh.create_issue_comment(found.issue_number, outcome.payload["body"])
                outcome.pushed, outcome.url = True, str(answer.get("html_url", ""))
        return outcome
    notes: list[str] = []
    if push:
        found, note = _add_discussion(found, ci, api_url)
        notes += [note] if note else []
    plan = make_plan(found, repo_path, config=config, overrides=overrides, commit=commit)
    # A missing key or a dead endpoint is the bot's problem, said before any image or
    # trajectory: never a run whose every trajectory failed, read as "no fix".
    check_model_reachable(plan.run_cfg.model)
    rundir, record = run_pipeline(plan, repo_path, client)
    chosen, reasons, selection, candidates, trajectories, cost = decide(plan, rundir, record)
    outcome = BotOutcome(
        "failed" if infra_failed(record) else "comment",
        request=found,
        task_id=plan.task.id,
        run_dir=rundir.root,
        notes=notes,
    )
    if chosen is not None:
        repo = open_checkout(repo_path)
        outcome.commit = commit_patch_to_branch(
            repo,
            plan.branch,
            plan.task.base_commit,
            chosen.patch,
            commit_title(found.issue_number, found.title),
            Author(plan.ci.author_name, plan.ci.author_email),
        )
        outcome.action, outcome.branch = "pull_request", plan.branch
        outcome.payload = pull_request_payload(
            issue_number=found.issue_number,
            issue_title=found.title,
            head=plan.branch,
            base=plan.base_branch,
            selection=selection,
            chosen=chosen,
            candidates=candidates,
            trajectories=trajectories,
            cost=cost,
            run_id=plan.run_id,
            draft=plan.ci.draft,
        )
        outcome.reason = f"patch {chosen.id} selected"
        write_json_atomic(rundir.files.ci_pull_request, outcome.payload)
    else:
        outcome.reason = "; ".join(reasons)
        outcome.payload = abstention_comment(
            issue_number=found.issue_number,
            reasons=reasons,
            selection=selection,
            candidates=candidates,
            trajectories=trajectories,
            cost=cost,
            run_id=plan.run_id,
            failed=outcome.action == "failed",
        )
        write_json_atomic(rundir.files.ci_comment, outcome.payload)
    if push:
        _send(outcome, plan, api_url, repo_path)
    write_json_atomic(rundir.files.ci_outcome, outcome.to_dict())
    return outcome


def _add_discussion(
    request: IssueRequest, ci: CIConfig, api_url: str | None
) -> tuple[IssueRequest, str]:
    """The issue's comments as hints (read with the token). A failure to read them is a
    note, not a stop: the issue text alone is still a task."""
    from swescale.ci.github import GitHubError

    try:
        with _github(ci, request.repo, api_url) as gh:
            listed = gh.list_issue_comments(request.issue_number)
    except GitHubError as exc:
        return request, f"issue comments not read: {exc}"
    return with_discussion(request, listed, ci), ""


def _send(outcome: BotOutcome, plan: Plan, api_url: str | None, repo_path: str | Path) -> None:
    """Push the branch and open the pull request, or post the comment."""
    assert outcome.payload is not None
    with _github(plan.ci, plan.request.repo, api_url) as gh:
        if outcome.action == "pull_request":
            push_branch(open_checkout(repo_path), plan.branch, plan.ci.remote, _token(plan.ci))
            existing = gh.find_open_pull_request(plan.branch)
            if existing is not None:
                outcome.notes.append("an open pull request from this branch was updated")
                answer = existing
            else:
                answer = gh.create_pull_request(outcome.payload)
        else:
            answer = gh.create_issue_comment(plan.request.issue_number, outcome.payload["body"])
    outcome.pushed = True
    outcome.url = str(answer.get("html_url", ""))
