"""``swescale solve``: a repository's own issues in batch (see ``swescale.solve``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer
from rich.markup import escape

log = logging.getLogger(__name__)


def _read_issues(
    issues_file: Path | None,
    tasks_file: Path | None,
    issue_text: str | None,
    issue_file: Path | None,
    number: int | None,
):
    """The Parsed issues of the one source given; typer.Exit(2) with the reason when the
    source cannot be read at all."""
    from swescale.solve.sources import SourceError, one_issue, parse_issue_export, parse_task_lines

    given = [x for x in (issues_file, tasks_file, issue_text, issue_file) if x is not None]
    if len(given) != 1:
        _fail("give exactly one of --issues, --tasks, --issue or --issue-file")
    try:
        if issue_text is not None:
            return one_issue(issue_text, number)
        path = Path(issues_file or tasks_file or issue_file)  # type: ignore[arg-type]
        text = path.read_text(encoding="utf-8", errors="replace")
        if issue_file is not None:
            return one_issue(text, number)
        if issues_file is not None:
            return parse_issue_export(text, str(path))
        return parse_task_lines(text, str(path))
    except OSError as exc:
        _fail(f"cannot read {exc.filename}: {exc.strerror}")
    except SourceError as exc:
        _fail(str(exc))
    raise AssertionError("unreachable")


def _fail(message: str) -> None:
    from swescale.logs import show

    show(None, logging.ERROR, f"error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(2)


def _batch_digest(cfg, issues, repo: str) -> str:
    """The default run id's digest: the config, ``--repo`` and the issues chosen (keys,
    texts, repositories and starting points), so another batch never resumes this one's
    run."""
    import hashlib
    import json

    rows = sorted(
        (i.key, i.title, i.body, i.repo, i.base_commit, i.branch, str(i.number)) for i in issues
    )
    text = cfg.digest() + json.dumps([str(repo), rows])
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _summary_table(report, console) -> None:
    """One row per issue, fitted to the terminal (ids whole; the repository and cost
    columns go first when it is narrow)."""
    from swescale.report.terminal import Column, fit_table, print_table

    columns = [
        Column("issue"),
        Column("outcome"),
        Column("branch / why"),
        Column("cands", "right", optional=1),
        Column("cost", "right", optional=2),
        Column("repository", optional=3),
    ]
    rows: list[list[str]] = []
    reasons: list[str] = []
    for o in report.outcomes:
        cost = o.cost or {}
        spent = f"{cost.get('tokens_in', 0) + cost.get('tokens_out', 0):,} tok"
        if cost.get("dollars"):
            spent += f", ${cost['dollars']:.2f}"
        spent += f", {cost.get('sandbox_seconds', 0):,.0f} s"
        why = o.branch
        if not why:
            reason = (f"{o.stage}: " if o.stage and o.status == "failed" else "") + o.reason
            reasons.append(f"{o.key}: {' '.join(reason.split())}")
            why = _shorten(reason, 24)
        rows.append([o.key, o.status, escape(why), str(o.candidates), spent, o.repo or "-"])
    print_table(console, fit_table(columns, rows, console.width, title=f"solve {report.run_id}"))
    # Whole reasons below the table, where they may wrap.
    for line in reasons:
        console.print(escape(line), soft_wrap=False)


def _shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def register(app: typer.Typer) -> None:
    @app.command("solve")
    def solve_command(
        issues_file: Path = typer.Option(
            None,
            "--issues",
            help="A GitHub issues export: `gh issue list --json number,title,body,labels,url`"
            " output, or a list of REST API issue objects (pull requests are skipped).",
        ),
        tasks_file: Path = typer.Option(
            None,
            "--tasks",
            help="JSON lines: {instance_id?, repo, base_commit | branch, problem_statement, "
            "hints?} a line (repo: local path, bare mirror or clone URL).",
        ),
        issue_text: str = typer.Option(None, "--issue", help="One issue: first line the title."),
        issue_file: Path = typer.Option(None, "--issue-file", help="One issue from a file."),
        number: int = typer.Option(None, "--number", help="The number of --issue/--issue-file."),
        repo: str = typer.Option(
            "", "--repo", help="The repository of issues that name none (path or clone URL)."
        ),
        label: list[str] = typer.Option([], "--label", help="Only issues with this label."),
        only: list[int] = typer.Option([], "--only", help="Only these issue numbers."),
        limit: int = typer.Option(0, "--limit", help="At most this many issues (0: all)."),
        config: str = typer.Option(
            "default", "--config", "-c", help="YAML file or preset name in configs/."
        ),
        override: list[str] = typer.Option(
            [], "--override", "-o", help="key=value (YAML value), repeatable."
        ),
        run_id: str = typer.Option("", "--run-id", help="Run directory name."),
        force: bool = typer.Option(False, "--force", help="Reuse a run made with another config."),
        base_suite: bool = typer.Option(
            True, "--base-suite/--no-base-suite", help="Run each repository's tests first."
        ),
        suite_timeout: float = typer.Option(1800.0, "--suite-timeout", help="Seconds."),
        open_prs: bool = typer.Option(
            False, "--open-prs", help="Push the branches and open pull requests ($GITHUB_TOKEN)."
        ),
        report: bool = typer.Option(True, "--report/--no-report"),
    ) -> None:
        """Solve a repository's own issues: environment from its files, trajectories,
        verifiers, selection; a branch swescale/issue-<n> per proposed fix.

        Nothing is graded (own issues have no hidden tests): the resolve rate is unknown.
        Without --open-prs nothing leaves the machine."""
        from rich.console import Console

        from swescale.ci.config import CIConfig
        from swescale.config import ConfigError, load_config
        from swescale.logs import log_to_file
        from swescale.record.run import RunDir, RunDirError, safe_name
        from swescale.sandbox import EngineUnavailable, docker_client
        from swescale.scaling.launcher import reap_leftovers, remove_session_containers, run_model
        from swescale.solve.solver import Solver, open_pull_requests
        from swescale.solve.sources import select

        console = Console()
        parsed = _read_issues(issues_file, tasks_file, issue_text, issue_file, number)
        chosen = select(parsed.issues, label, only, limit)
        ci = CIConfig()
        token = os.environ.get(ci.token_env, "").strip()
        if open_prs and not token:
            _fail(f"--open-prs needs a token in ${ci.token_env}")
        try:
            cfg = load_config(config, [*override])
        except ConfigError as exc:
            _fail(f"config error: {exc}")
        # No ground truth: nothing to grade against.
        cfg = cfg.model_copy(update={"scaling": cfg.scaling.model_copy(update={"grade": "none"})})
        run_id = run_id or f"solve-{_batch_digest(cfg, chosen, repo)}"
        cfg = cfg.model_copy(update={"run_id": run_id})
        for error in parsed.errors:
            console.print(f"[yellow]skipped[/yellow]: {escape(error)}")
        if parsed.pull_requests:
            console.print(f"{parsed.pull_requests} pull request(s) in the export skipped")
        console.print(
            f"{len(chosen)} issue(s) to solve (of {len(parsed.issues) + len(parsed.errors)} read"
            + (f", {len(parsed.errors)} skipped" if parsed.errors else "")
            + "); run "
            f"[bold]{run_id}[/bold] -> {Path(cfg.runs_dir) / safe_name(run_id)}"
        )
        if not chosen:
            raise typer.Exit(1 if parsed.errors else 0)
        try:
            client = docker_client()
            rundir = RunDir.open(cfg.runs_dir, run_id, cfg, force=force)
        except (EngineUnavailable, RunDirError) as exc:
            _fail(str(exc))
        with log_to_file(rundir.files.log) as log_path:
            reap_leftovers(client, rundir.run_id)
            say = lambda line: console.print(line, markup=False, highlight=False)  # noqa: E731
            try:
                with run_model(cfg) as model:
                    solver = Solver(
                        cfg,
                        ci,
                        rundir,
                        client=client,
                        model=model,
                        say=say,
                        base_suite=base_suite,
                        suite_timeout=suite_timeout,
                    )
                    result = solver.run(chosen, repo)
            except KeyboardInterrupt:
                console.print("[yellow]interrupted[/yellow]: rerun the same command to resume")
                raise typer.Exit(130) from None
            finally:
                remove_session_containers(client, rundir.run_id)
            result.input_errors = list(parsed.errors)
            result.pull_requests_skipped = parsed.pull_requests
            if open_prs:
                open_pull_requests(result, rundir, ci, token, say)
            else:
                from swescale.record import write_json_atomic

                write_json_atomic(rundir.files.solve_summary, result.to_dict())
            _summary_table(result, console)
            counts = result.counts()
            console.print(
                ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                + " · resolve rate: unknown (no ground truth; nothing was graded)"
            )
            if report:
                from swescale.report import write_report

                console.print(f"report: {write_report(rundir.root)}", highlight=False)
            console.print(
                f"summary: {rundir.files.solve_summary} · log: {log_path}", highlight=False
            )
        if counts.get("failed") or result.interrupted:
            raise typer.Exit(1)
