"""``swescale report RUN_DIR``."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report_command(
        run_dir: Path = typer.Argument(..., help="A run directory (runs/<run_id>)."),
        html: bool = typer.Option(True, "--html/--no-html", help="Write RUN_DIR/report.html."),
    ) -> None:
        """Summarize a run: per task trajectories, candidates, the pick, resolved, cost."""
        from rich.console import Console

        from swescale.report import load_run, print_summary, write_html

        console = Console()
        try:
            summary = load_run(run_dir)
        except FileNotFoundError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
        print_summary(summary, console)
        if html:
            console.print(f"report: {write_html(summary, Path(run_dir) / 'report.html')}")
