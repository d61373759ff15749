"""``swescale select`` (offline re-selection on a finished run) and ``swescale replay``."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("select")(select_command)
    app.command("replay")(replay_command)


def select_command(
    run: Path = typer.Option(..., "--run", help="A finished run directory (runs/<run_id>)."),
    selector: str = typer.Option(
        "all", "--selector", "-s", help="majority, test_vote, hybrid, calibrated, or all."
    ),
    top_k: int = typer.Option(3, help="Finalists kept by the model score (hybrid)."),
    abstain_below: float = typer.Option(0.0, help="Abstain below this confidence."),
    calibration: Path | None = typer.Option(None, help="Calibration JSON (calibrated)."),
    foreign: list[Path] = typer.Option(
        [], "--foreign", help="Other systems' predictions.jsonl to add as candidates."
    ),
    fit_calibration: Path | None = typer.Option(
        None, "--fit-calibration", help="Fit a calibration on this run's labels, save it here."
    ),
) -> None:
    """Re-run selection offline on a finished run: no agents, only stored verdicts."""
    from rich.console import Console
    from rich.table import Table

    from swescale.selection.config import SelectionConfig
    from swescale.selection.metrics import oracle_rows, run_offline_selection
    from swescale.selection.record import read_task_record, task_dirs
    from swescale.selection.selectors import OFFLINE_SELECTORS

    console = Console()
    try:
        dirs = task_dirs(run)
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    if not dirs:
        console.print(f"[red]{run} holds no task directories with candidates[/red]")
        raise typer.Exit(2)
    if fit_calibration is not None:
        from swescale.selection.metrics import fit_calibration_from_runs

        fitted = fit_calibration_from_runs([run])
        fitted.save(fit_calibration)
        console.print(
            f"calibration fit on {fitted.fitted_on} labelled candidates: {fit_calibration}"
        )
        if not fitted.fitted_on:
            console.print("[yellow]no labelled candidates: the file holds the prior[/yellow]")
    names = list(OFFLINE_SELECTORS) if selector == "all" else [selector]
    unknown = [n for n in names if n not in OFFLINE_SELECTORS]
    if unknown:
        console.print(
            f"[red]unknown or online-only selector {unknown[0]!r}; offline selectors: "
            f"{', '.join(OFFLINE_SELECTORS)}[/red]"
        )
        raise typer.Exit(2)
    cfg = SelectionConfig(
        top_k=top_k,
        abstain_below=abstain_below,
        calibration_path=str(calibration) if calibration else None,
    )
    table = Table(title=f"selection on {run}")
    columns = ("selector", "labelled", "resolved", "accuracy", "abstained", "tokens/resolved")
    for column in (*columns, "sandbox s/resolved"):
        table.add_column(column)
    for row in oracle_rows([read_task_record(d) for d in dirs]):
        table.add_row(
            str(row["selector"]), str(row["labelled"]), "", _pct(row["accuracy"]), "", "", ""
        )
    problems: list[str] = []
    for name in names:
        _, summary = run_offline_selection(run, name, cfg, foreign=foreign)
        problems = problems or list(summary.get("problems", []))
        table.add_row(
            name,
            str(summary["labelled"]),
            str(summary["resolved"]),
            _pct(summary["accuracy"]),
            str(summary["abstained"]),
            _num(summary["tokens_per_resolved"]),
            _num(summary["sandbox_seconds_per_resolved"]),
        )
    console.print(table)
    if foreign and summary.get("foreign_unknown_ids"):
        unknown = summary["foreign_unknown_ids"]
        console.print(
            f"[yellow]{len(unknown)} foreign ids not in this run: {unknown[:10]}[/yellow]"
        )
    for problem in problems[:5]:
        console.print(f"[yellow]skipped: {problem}[/yellow]")
    if len(problems) > 5:
        console.print(f"[yellow]… and {len(problems) - 5} more skipped records[/yellow]")
    console.print(
        f"wrote selection.<selector>.json per task and predictions.<selector>.jsonl in {run}"
    )
    from swescale.report.cli import write_report

    console.print(f"report: {write_report(run)}", highlight=False)


def replay_command(
    trajectory: Path = typer.Argument(..., help="A trajectory record (.jsonl)."),
    image: str | None = typer.Option(None, help="Image to replay in (default: the header's)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Re-execute a recorded trajectory in a fresh sandbox and compare step by step."""
    from swescale.selection.replay import ReplayError, docker_sandbox_factory, replay_trajectory

    try:
        report = replay_trajectory(trajectory, docker_sandbox_factory(image))
    except ReplayError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=1))
    else:
        typer.echo(report.summary())
    raise typer.Exit(0 if report.identical else 1)


def _pct(value: object) -> str:
    return "n/a" if value is None else f"{float(value):.1%}"


def _num(value: object) -> str:
    return "n/a" if value is None else f"{float(value):.0f}"
