"""``swescale solve``: a batch of a repository's own issues, end to end.

```
issues   = sources.parse_*(...)                     # export, JSON lines, or one issue
repos    = open_repository(spec)                     # once per repository
tasks    = Task per issue at its start commit, with the repository's own recipe
           (.swescale.yaml, else inferred from its files: the "inferred" spec provider)
image    = instance_image(...) once per (repository, commit, recipe)
suite    = the repository's tests on the untouched checkout -> broken on base
record   = BatchRunner(cfg).run(tasks)                # explore, verify, select; no grading
each     : branch swescale/issue-<n> (checkout untouched), the CI bot's evidence summary
--open-prs: push + POST the pull request (or the comment) with the bot's GitHub client
```

There is no ground truth: nothing is graded, and the summary says the resolve rate is
unknown. Every failure (an unreadable row, a repository that cannot be cloned, an
environment that does not build) is that issue's or repository's, stated with its
stage; the batch goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from swescale.ci.config import CIConfig
from swescale.ci.git_ops import Author, BranchError, commit_patch_to_branch
from swescale.ci.guard import violations
from swescale.ci.payloads import abstention_comment, commit_title, pull_request_payload
from swescale.config import RunConfig
from swescale.record import RunDir, write_json_atomic
from swescale.record.task import read_task_record
from swescale.solve.repository import (
    Repository,
    default_branch,
    open_repository,
    resolve_start,
)
from swescale.solve.sources import Issue
from swescale.swebench.repos import RepoError, RepoSource
from swescale.swebench.specs.inferred import (
    RepoConfigError,
    environment_of,
    with_environment,
    with_inferred_environment,
)
from swescale.types import Cost, Task
from swescale.verifiers.regression import BROKEN_ON_BASE

log = logging.getLogger(__name__)
Say = Callable[[str], None]


@dataclass
class IssueOutcome:
    """What became of one issue. ``status``: proposed | abstained | failed."""

    key: str
    repo: str = ""
    task_id: str = ""
    number: int | None = None
    title: str = ""
    status: str = "failed"
    stage: str = ""
    reason: str = ""
    branch: str = ""
    commit: str = ""
    candidates: int = 0
    trajectories: int = 0
    cost: dict[str, Any] = field(default_factory=dict)
    url: str = ""


@dataclass
class Environment:
    """One (repository, commit) environment: its image, what it was read from, how long
    it took, and the suite's result on the untouched checkout."""

    repo: str
    commit: str
    image: str = ""
    source: str = ""
    build_seconds: float = 0.0
    error: str = ""
    suite_counts: dict[str, int] = field(default_factory=dict)
    broken_on_base: list[str] = field(default_factory=list)
    suite_exit: int | None = None
    suite_log: str = ""
    issues: list[str] = field(default_factory=list)


@dataclass
class SolveReport:
    run_id: str
    run_dir: str
    outcomes: list[IssueOutcome] = field(default_factory=list)
    environments: list[Environment] = field(default_factory=list)
    input_errors: list[str] = field(default_factory=list)
    pull_requests_skipped: int = 0
    interrupted: bool = False

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.outcomes:
            out[o.status] = out.get(o.status, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "resolve_rate": None,
            "resolve_rate_note": "unknown: own issues have no hidden tests, nothing is graded",
            "counts": self.counts(),
            "pull_requests_skipped": self.pull_requests_skipped,
            "input_errors": self.input_errors,
            "interrupted": self.interrupted,
            "issues": [asdict(o) for o in self.outcomes],
            "environments": [asdict(e) for e in self.environments],
        }


@dataclass
class _Prepared:
    issue: Issue
    repository: Repository
    task: Task


def task_for(issue: Issue, repository: Repository, commit: str) -> Task:
    """The task of one issue: the SWE-bench id shape (``owner__name-7``) or the row's id."""
    prefix = repository.name.replace("/", "__")
    task_id = issue.instance_id or (
        f"{prefix}-{issue.number}" if issue.number else f"{prefix}-{issue.key}"
    )
    extra: dict[str, Any] = {"issue_key": issue.key}
    if issue.number:
        extra["issue_number"] = issue.number
    return Task(
        id=task_id,
        repo=repository.name,
        base_commit=commit,
        problem_statement=issue.problem_statement,
        hints=issue.hints,
        gold_patch=issue.patch or None,
        source=issue.url or f"{repository.spec}#{issue.key}",
        extra=extra,
    )


def branch_name(issue: Issue, prefix: str) -> str:
    """``swescale/issue-7``; a row without a number: the prefix's folder and its key."""
    if issue.number:
        return f"{prefix}{issue.number}"
    folder = prefix.rsplit("/", 1)[0] if "/" in prefix else "swescale"
    return f"{folder}/{issue.key}"


class Solver:
    """Runs a batch of issues. ``client``: the Docker client; ``say``: one line of
    progress for the terminal."""

    def __init__(
        self,
        cfg: RunConfig,
        ci: CIConfig,
        rundir: RunDir,
        *,
        client: Any,
        model: Any = None,
        say: Say = print,
        base_suite: bool = True,
        suite_timeout: float = 1800.0,
        progress: Any = None,
    ) -> None:
        self.cfg, self.ci, self.rundir = cfg, ci, rundir
        self.client, self.model, self.say = client, model, say
        self.base_suite, self.suite_timeout = base_suite, suite_timeout
        self.progress = progress
        self.cache_dir = Path(cfg.images.cache_dir) / "solve-repos"
        self._images: dict[tuple[str, str], Any] = {}

    # -- the whole batch -----------------------------------------------------------------

    def run(self, issues: list[Issue], default_repo: str = "") -> SolveReport:
        report = SolveReport(self.rundir.run_id, str(self.rundir.root))
        outcomes: dict[str, IssueOutcome] = {}
        prepared = self._prepare(issues, default_repo, outcomes)
        ready, environments = self._environments(prepared, outcomes)
        report.environments = environments
        if ready:
            report.interrupted = self._explore(ready, outcomes)
        report.outcomes = [outcomes[i.key] for i in issues if i.key in outcomes]
        write_json_atomic(self.rundir.files.solve_summary, report.to_dict())
        return report

    def _prepare(
        self, issues: list[Issue], default_repo: str, outcomes: dict[str, IssueOutcome]
    ) -> list[_Prepared]:
        opened: dict[str, Repository | str] = {}
        out: list[_Prepared] = []
        for issue in issues:
            outcome = outcomes[issue.key] = IssueOutcome(
                key=issue.key, number=issue.number, title=issue.title
            )
            spec = issue.repo or default_repo
            if not spec:
                outcome.stage, outcome.reason = "repository", "no repository: give --repo"
                continue
            if spec not in opened:
                try:
                    opened[spec] = open_repository(spec, self.cache_dir)
                except RepoError as exc:
                    opened[spec] = str(exc)
                    self.say(f"repository {spec}: {exc}")
            repository = opened[spec]
            if isinstance(repository, str):
                outcome.stage, outcome.reason = "repository", repository
                continue
            outcome.repo = repository.name
            try:
                commit = resolve_start(repository, issue.base_commit, issue.branch)
            except RepoError as exc:
                outcome.stage, outcome.reason = "repository", str(exc)
                continue
            task = task_for(issue, repository, commit)
            outcome.task_id = task.id
            out.append(_Prepared(issue, repository, task))
        return out

    def _environments(
        self, prepared: list[_Prepared], outcomes: dict[str, IssueOutcome]
    ) -> tuple[list[_Prepared], list[Environment]]:
        """One environment per (repository, commit): recipe, image and base suite; the
        issues of one that fails are failed with its reason."""
        groups: dict[tuple[str, str], list[_Prepared]] = {}
        for item in prepared:
            groups.setdefault((item.repository.name, item.task.base_commit), []).append(item)
        ready: list[_Prepared] = []
        environments: list[Environment] = []
        for (name, commit), items in groups.items():
            env = Environment(name, commit, issues=[i.issue.key for i in items])
            environments.append(env)
            repos = RepoSource(self.cache_dir, url=None, local={name: items[0].repository.path})
            stage = "environment"
            try:
                first = with_inferred_environment(items[0].task, repos)
                config = environment_of(first)
                env.source = config.source
                self.say(f"{name} at {commit[:12]}: environment {config.source}")
                started = time.monotonic()
                image = self._image(first, repos)
                env.build_seconds = round(time.monotonic() - started, 1)
                env.image = image.tag
                self._images[(name, commit)] = image
                self.say(f"  image {image.tag} ({env.build_seconds:.0f}s)")
                stage = "base suite"
                if self.base_suite:
                    self._run_suite(first, image, env, items[0].repository.path)
            except (RepoError, RepoConfigError) as exc:
                env.error = str(exc)
            except Exception as exc:  # noqa: BLE001 - a build fails in many ways; all end here
                env.error = f"{type(exc).__name__}: {str(exc)[-1500:]}"
            if env.error:
                self.say(f"  {name} at {commit[:12]}: {stage} failed: {env.error[:300]}")
                for item in items:
                    outcome = outcomes[item.issue.key]
                    outcome.stage, outcome.reason = stage, env.error
                    self.rundir.record_failure(item.task.id, stage, env.error)
                continue
            for item in items:
                item.task = with_environment(item.task, config)
                if env.broken_on_base:
                    item.task.extra[BROKEN_ON_BASE] = list(env.broken_on_base)
                ready.append(item)
        return ready, environments

    def _image(self, task: Task, repos: RepoSource) -> Any:
        from swescale.swebench.images import instance_image

        return instance_image(
            self.client, task, images=self.cfg.images, grading=self.cfg.grading, repos=repos
        )

    def _run_suite(self, task: Task, image: Any, env: Environment, path: Path) -> None:
        """The repository's test command on the untouched checkout (as ``ci check``): the
        tests failing there are broken on base for every verifier of these issues."""
        from swescale.sandbox import DockerSandbox, SandboxConfig
        from swescale.swebench.specs import log_parser_for, task_test_command
        from swescale.swebench.specs.infer import suite_paths
        from swescale.swebench.specs.inferred import read_at

        read, _ = read_at(RepoSource(self.cache_dir, url=None, local={task.repo: path}), task)
        command = " ".join([task_test_command(task), *suite_paths(read)])
        self.say(f"  running the suite on the untouched checkout: {command}")
        cfg = image.sandbox_config(SandboxConfig(memory="4g", command_timeout=self.suite_timeout))
        labels = {"run": self.rundir.run_id, "task": task.id}
        with DockerSandbox.create(self.client, image.tag, cfg, labels=labels) as sandbox:
            result = sandbox.exec_once(command, timeout=self.suite_timeout, output_limit=50_000_000)
        statuses = log_parser_for(task)(result.output)
        counts: dict[str, int] = {}
        for status in statuses.values():
            counts[status] = counts.get(status, 0) + 1
        env.suite_counts = counts
        env.suite_exit = result.exit_code
        env.broken_on_base = sorted(t for t, s in statuses.items() if s in ("FAILED", "ERROR"))
        log_path = self.rundir.files.base_suite_log(env.repo, env.commit)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(result.output, errors="replace")
        env.suite_log = str(log_path)
        self.say(
            f"  suite on base: {suite_summary(counts, result.exit_code, result.output)}"
            + (f"; {len(env.broken_on_base)} broken on base" if env.broken_on_base else "")
        )

    # -- trajectories, selection, branches -----------------------------------------------

    def _explore(self, ready: list[_Prepared], outcomes: dict[str, IssueOutcome]) -> bool:
        from swescale.scaling.batch import BatchRunner

        shared = self._images
        runner = BatchRunner(
            self.cfg,
            self.rundir,
            model=self.model,
            client=self.client,
            progress=self.progress,
            image_for=lambda task: shared[(task.repo, task.base_commit)],
        )
        result = runner.run([item.task for item in ready])
        for item in ready:
            record = result.results.get(item.task.id) or {"status": "interrupted"}
            self._conclude(item, record, outcomes[item.issue.key])
        return result.interrupted

    def _conclude(self, item: _Prepared, record: dict[str, Any], outcome: IssueOutcome) -> None:
        """Branch and payload (or the reasons for none), as the CI bot decides them."""
        task, issue = item.task, item.issue
        outcome.trajectories = sum((record.get("trajectories") or {}).values())
        outcome.cost = dict(record.get("cost") or {})
        if record.get("status") != "done":
            outcome.status = "failed" if record.get("status") == "failed" else "interrupted"
            outcome.stage = str(record.get("stage") or record.get("status"))
            outcome.reason = str(record.get("reason") or "")
            return
        tr = read_task_record(self.rundir.task_dir(task.id))
        selection = tr.selection
        chosen = next(
            (c for c in tr.candidates if selection and c.id == selection.candidate_id), None
        )
        outcome.candidates = len(tr.candidates)
        cost = Cost.model_validate(record.get("cost") or {})
        number = issue.number or 0
        reasons: list[str] = []
        if chosen is None:
            reasons = (
                [f"no candidate was selected out of {len(tr.candidates)}"]
                if tr.candidates
                else ["no trajectory produced a patch"]
            )
        else:
            reasons = [
                f"the selected patch breaks a guard rail: {v}"
                for v in violations(chosen.patch, environment_of(task))
            ]
        proposal: dict[str, Any] = {
            "issue": issue.key,
            "task_id": task.id,
            "repository_path": str(item.repository.path),
        }
        if chosen is not None and not reasons:
            branch = branch_name(issue, self.ci.branch_prefix)
            try:
                outcome.commit = commit_patch_to_branch(
                    item.repository.repo(),
                    branch,
                    task.base_commit,
                    chosen.patch,
                    commit_title(number, issue.title) if number else issue.title[:72],
                    Author(self.ci.author_name, self.ci.author_email),
                )
            except BranchError as exc:
                reasons = [f"the branch could not be written: {exc}"]
            else:
                outcome.status, outcome.branch = "proposed", branch
                outcome.reason = f"patch {chosen.id} selected"
                proposal["pull_request"] = pull_request_payload(
                    issue_number=number,
                    issue_title=issue.title,
                    head=branch,
                    base=default_branch(item.repository),
                    selection=selection,
                    chosen=chosen,
                    candidates=tr.candidates,
                    trajectories=outcome.trajectories,
                    cost=cost,
                    run_id=self.rundir.run_id,
                    draft=self.ci.draft,
                )
        if reasons:
            outcome.status, outcome.reason = "abstained", "; ".join(reasons)
            proposal["comment"] = abstention_comment(
                issue_number=number,
                reasons=reasons,
                selection=selection,
                candidates=tr.candidates,
                trajectories=outcome.trajectories,
                cost=cost,
                run_id=self.rundir.run_id,
            )
        proposal.update(status=outcome.status, reason=outcome.reason, branch=outcome.branch)
        write_json_atomic(self.rundir.files.task(task.id).proposal, proposal)


def open_pull_requests(
    report: SolveReport, rundir: RunDir, ci: CIConfig, token: str, say: Say = print
) -> None:
    """Push every proposed branch and open its pull request with the CI bot's GitHub
    client (an open one from the same branch is kept). A failure is that issue's note."""
    from swescale.ci.git_ops import push_branch
    from swescale.ci.github import GitHubClient, GitHubError
    from swescale.record import read_json

    for outcome in report.outcomes:
        if outcome.status != "proposed":
            continue
        proposal = read_json(rundir.files.task(outcome.task_id).proposal, default={}) or {}
        payload = proposal.get("pull_request")
        if not payload:
            continue
        try:
            import git

            repo_path = proposal.get("repository_path") or ""
            push_branch(git.Repo(repo_path), outcome.branch, ci.remote, token)
            with GitHubClient(outcome.repo, token, ci.api_url, timeout=ci.api_timeout) as gh:
                answer = gh.find_open_pull_request(outcome.branch) or gh.create_pull_request(
                    payload
                )
        except (BranchError, GitHubError, Exception) as exc:  # noqa: BLE001 - per issue
            say(f"{outcome.key}: the pull request was not opened: {exc}")
            continue
        outcome.url = str(answer.get("html_url", ""))
        say(f"{outcome.key}: pull request {outcome.url}")
    write_json_atomic(rundir.files.solve_summary, report.to_dict())


def suite_summary(counts: dict[str, int], exit_code: int, output: str) -> str:
    """``"12 passed, 1 failed"`` from a suite's parsed statuses; when nothing was parsed,
    why, if the command failed (``exit 127: ...: pytest: command not found``)."""
    shown = ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()))
    if shown:
        return shown
    last = next((line for line in reversed(output.splitlines()) if line.strip()), "")
    return "no test results" + (f" (exit {exit_code}: {last.strip()[:120]})" if exit_code else "")
