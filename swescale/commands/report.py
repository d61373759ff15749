"""``swescale report RUN_DIR``."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report_command(
        run_dir: Path = typer.Argument(..., help="A run directory (runs/<run_id>)."),
        site: bool = typer.Option(
            True, "--site/--no-site", "--html/--no-html", help="Write RUN_DIR/report/."
        ),
        out: Path = typer.Option(None, "--out", help="Write the site here instead."),
    ) -> None:
        """Summarize a run in the terminal and write its report site: an overview, a page
        per task (the candidate pool and the selection), per candidate and per trajectory."""
        import logging

        from rich.console import Console

        from swescale.logs import log_to_file, show
        from swescale.record.layout import CONFIG_YAML, RECORD_JSON, RUN_JSON, RunFiles
        from swescale.report import load_run, print_summary
        from swescale.report.render import write_report_shown

        console = Console()
        if not RunFiles(run_dir).written_by_a_run():
            why = "" if run_dir.is_dir() else " (no such directory)"
            show(
                console,
                logging.ERROR,
                f"{run_dir} is not a run directory{why}: it holds no {RUN_JSON}, "
                f"{RECORD_JSON}, {CONFIG_YAML} or task folder",
                markup=False,
            )
            raise typer.Exit(2)
        # What this command shows (damaged records among it) joins the run's own log.
        with log_to_file(RunFiles(run_dir).log):
            print_summary(load_run(run_dir), console)
            if site:
                where = write_report_shown(run_dir, console, out)
                console.print(f"report: {where}", highlight=False, soft_wrap=True)
