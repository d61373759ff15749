"""``swescale ci run`` and ``swescale ci parse``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

ci_app = typer.Typer(
    no_args_is_help=True,
    help="The CI bot: a GitHub issue event in, a branch and a pull request out.",
)

EVENT_HELP = "Webhook payload file (in Actions: $GITHUB_EVENT_PATH)."
EVENT_NAME_HELP = "issues | issue_comment (in Actions: $GITHUB_EVENT_NAME); inferred if empty."


def _event_option() -> Path | None:
    return typer.Option(None, "--event", "-e", help=EVENT_HELP)


def _event_path(event: Path | None) -> Path:
    if event is not None:
        return event
    from_env = os.environ.get("GITHUB_EVENT_PATH", "")
    if not from_env:
        raise typer.BadParameter("give --event FILE (or set GITHUB_EVENT_PATH)")
    return Path(from_env)


def _fail(console, what: str, exc: Exception, code: int = 2) -> None:
    console.print(f"[red]{what}:[/red] {exc}")
    raise typer.Exit(code) from exc


@ci_app.command("parse")
def parse_command(
    event: Path | None = _event_option(),
    repo: Path | None = typer.Option(
        None, "--repo", help="Local checkout: also show the task, config and branch."
    ),
    config: str = typer.Option("ci", "--config", "-c", help="Bot config file or preset."),
    override: list[str] = typer.Option([], "--override", "-o", help="key=value, repeatable."),
    commit: str = typer.Option("", "--commit", help="Base commit (default: default branch)."),
    event_name: str = typer.Option(
        os.environ.get("GITHUB_EVENT_NAME", ""), "--event-name", help=EVENT_NAME_HELP
    ),
) -> None:
    """Show what the bot would do with an event, without running anything."""
    from rich.console import Console

    from swescale.ci.bot import make_plan
    from swescale.ci.config import load_bot_config
    from swescale.ci.events import EventError, Ignored, load_event
    from swescale.ci.repo_config import RepoConfigError
    from swescale.ci.task import CheckoutError
    from swescale.config import ConfigError

    console = Console()
    try:
        _, ci = load_bot_config(config, override)
        found = load_event(_event_path(event), ci, event_name)
    except ConfigError as exc:
        _fail(console, "config error", exc)
    except EventError as exc:
        _fail(console, "event error", exc)
    if isinstance(found, Ignored):
        console.print(f"ignored: {found.reason}")
        if found.notify:
            console.print("would answer on the issue with that reason")
        return
    shown: dict = {"request": found.to_dict()}
    if repo is not None:
        try:
            plan = make_plan(found, repo, config=config, overrides=override, commit=commit)
        except (ConfigError, RepoConfigError, CheckoutError) as exc:
            _fail(console, "cannot plan", exc)
        shown.update(
            task_id=plan.task.id,
            base_commit=plan.task.base_commit,
            run_dir=str(Path(plan.run_cfg.runs_dir) / plan.run_id),
            branch=plan.branch,
            base_branch=plan.base_branch,
            repo_config={"source": plan.repo_cfg.source, **plan.repo_cfg.model_dump()},
            overrides=plan.overrides,
            trajectories=plan.run_cfg.scaling.n_parallel * plan.run_cfg.scaling.rounds,
            problem_statement=plan.task.problem_statement,
            hints=plan.task.hints,
        )
    console.print(f"would work on {found.repo}#{found.issue_number} ({found.trigger})")
    console.print_json(json.dumps(shown, default=str))


@ci_app.command("run")
def run_command(
    event: Path | None = _event_option(),
    repo: Path = typer.Option(Path("."), "--repo", help="Local checkout of the repository."),
    config: str = typer.Option("ci", "--config", "-c", help="Bot config file or preset."),
    override: list[str] = typer.Option([], "--override", "-o", help="key=value, repeatable."),
    push: bool = typer.Option(
        False, "--push", help="Push the branch and open the pull request (needs GITHUB_TOKEN)."
    ),
    api_url: str = typer.Option(
        "", "--api-url", help="GitHub API (GitHub Enterprise: https://HOST/api/v3)."
    ),
    commit: str = typer.Option("", "--commit", help="Base commit (default: default branch)."),
    event_name: str = typer.Option(
        os.environ.get("GITHUB_EVENT_NAME", ""), "--event-name", help=EVENT_NAME_HELP
    ),
) -> None:
    """Handle an issue event: run the pipeline, make the branch, and open the pull request
    (with --push) or write pull_request.json and say what would be done (dry run)."""
    from rich.console import Console

    from swescale.agent.models.base import ModelError
    from swescale.ci.bot import BotError, run_bot
    from swescale.ci.events import EventError
    from swescale.ci.git_ops import BranchError
    from swescale.ci.github import GitHubError
    from swescale.ci.repo_config import RepoConfigError
    from swescale.ci.task import CheckoutError
    from swescale.config import ConfigError
    from swescale.sandbox.base import SandboxError

    console = Console()
    try:
        outcome = run_bot(
            _event_path(event),
            repo,
            config=config,
            overrides=override,
            push=push,
            api_url=api_url or None,
            commit=commit,
            event_name=event_name,
        )
    except (ConfigError, RepoConfigError) as exc:
        _fail(console, "config error", exc)
    except EventError as exc:
        _fail(console, "event error", exc)
    except CheckoutError as exc:
        _fail(console, "checkout error", exc)
    except (BotError, BranchError, GitHubError) as exc:
        _fail(console, "cannot publish", exc, 1)
    except (SandboxError, ModelError) as exc:
        _fail(console, "cannot run", exc, 1)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: rerun the same command to resume")
        raise typer.Exit(130) from None
    _print_outcome(console, outcome, push)
    if outcome.action == "failed":
        raise typer.Exit(1)


@ci_app.command("check")
def check_command(
    repo: Path = typer.Option(
        Path("."), "--repo", help="Local checkout (or mirror) of the repository."
    ),
    commit: str = typer.Option("HEAD", "--commit", help="Commit to check (default: HEAD)."),
    name: str = typer.Option(
        "",
        "--name",
        help="owner/name on GitHub (default: $GITHUB_REPOSITORY, else the origin remote's URL).",
    ),
    config: str = typer.Option("ci", "--config", "-c", help="Bot config file or preset."),
    override: list[str] = typer.Option([], "--override", "-o", help="key=value, repeatable."),
    timeout: float = typer.Option(1800, "--timeout", help="Seconds for the test suite."),
) -> None:
    """Build the repository's environment (its .swescale.yaml, or what its own files say)
    as `ci run` builds it (same image tag) and run its test suite on the untouched
    checkout, offline: what every run of the bot stands on. Exits 1 when a test fails or
    the suite does not run."""
    from rich.console import Console

    from swescale.ci.check import check_repository
    from swescale.ci.repo_config import RepoConfigError
    from swescale.config import ConfigError
    from swescale.sandbox.base import SandboxError

    console = Console()

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    from swescale.commands.progress import image_builds

    try:
        with image_builds(console):
            report = check_repository(
                repo,
                commit,
                name=name,
                config=config,
                overrides=override,
                timeout=timeout,
                say=say,
            )
    except (RepoConfigError, ConfigError) as exc:
        _fail(console, "config error", exc)
    except SandboxError as exc:
        _fail(console, "cannot build or run", exc, 1)
    counts = ", ".join(f"{n} {status.lower()}" for status, n in sorted(report.counts.items()))
    say(
        f"{report.repo} at {report.commit[:12]}: {counts or 'no test ran'} "
        f"in {report.seconds:.0f}s (environment: {report.source})"
    )
    if report.failing:
        shown = ", ".join(report.failing[:5])
        more = f" and {len(report.failing) - 5} more" if len(report.failing) > 5 else ""
        say(f"failing: {shown}{more}; full log: {report.log_path}")
    if not report.ok:
        raise typer.Exit(1)


def _print_outcome(console, outcome, push: bool) -> None:
    if outcome.action == "ignored":
        console.print(f"ignored: {outcome.reason}")
        if outcome.payload and not push:
            console.print("would comment:\n" + outcome.payload["body"])
        elif outcome.url:
            console.print(f"commented: {outcome.url}")
        return
    console.print(f"run directory: {outcome.run_dir}")
    if outcome.action == "pull_request":
        console.print(f"branch {outcome.branch} at {outcome.commit[:12]} ({outcome.reason})")
        if push:
            console.print(f"pushed; pull request: {outcome.url}")
        else:
            console.print(
                f"dry run: would push {outcome.branch} and open the pull request "
                f"{outcome.payload['title']!r} ({outcome.run_dir / 'pull_request.json'})"
            )
    else:
        console.print(f"no pull request: {outcome.reason}")
        if push:
            console.print(f"commented: {outcome.url}")
        else:
            console.print(f"dry run: would comment ({outcome.run_dir / 'comment.json'})")
    for note in outcome.notes:
        console.print(f"note: {note}")


def register(app: typer.Typer) -> None:
    app.add_typer(ci_app, name="ci")
