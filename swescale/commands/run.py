"""``swescale run`` and ``swescale demo``."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import typer
from rich.markup import escape

from swescale.commands.pulls import registry_option

log = logging.getLogger(__name__)

DEMO_TASKS = 3
DEMO_TRAJECTORIES = 3


def _run(
    config: str,
    overrides: list[str],
    run_id: str,
    force: bool,
    report: bool,
    live: bool,
) -> None:
    from rich.console import Console

    from swescale.agent.models.base import ModelError
    from swescale.agent.models.servers import ServerError
    from swescale.config import ConfigError, load_config
    from swescale.logs import log_to_file, show, suppressed_note
    from swescale.record.layout import RunFiles
    from swescale.record.run import RunDirError, default_run_id, safe_name
    from swescale.sandbox.base import SandboxError
    from swescale.scaling.cluster.executor import ClusterError
    from swescale.scaling.launcher import launch

    console = Console(stderr=False)
    try:
        cfg = load_config(config, overrides)
    except ConfigError as exc:
        # A rerun of an existing run with a bad override: its log says why it did not run.
        existing = _existing_run(config, overrides, run_id)
        with log_to_file(RunFiles(existing).log) if existing else contextlib.nullcontext():
            show(console, logging.ERROR, f"[red]config error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    run_id = run_id or cfg.run_id or default_run_id(config, cfg)
    cfg = cfg.model_copy(update={"run_id": run_id})
    run_path = Path(cfg.runs_dir) / safe_name(run_id)
    console.print(f"run [bold]{run_id}[/bold] -> {run_path}")
    with log_to_file(RunFiles(run_path).log) as log_path:
        try:
            result = launch(cfg, run_id=run_id, force=force, console=console, live=live)
        except KeyboardInterrupt:
            show(console, logging.WARNING, f"[yellow]interrupted[/yellow]: {RESUME}")
            raise typer.Exit(130) from None
        except (RunDirError, SandboxError, ClusterError, ValueError) as exc:
            show(
                console,
                logging.ERROR,
                f"[red]cannot run:[/red] {escape(str(exc))} (log: {log_path})",
            )
            raise typer.Exit(2) from exc
        except (ServerError, ModelError) as exc:
            show(
                console,
                logging.ERROR,
                f"[red]the model is not available:[/red] {escape(str(exc))} (log: {log_path})",
            )
            raise typer.Exit(2) from exc
        run_dir = result.run_dir.root
        from swescale.report import load_run, print_summary
        from swescale.report.render import write_report_shown

        print_summary(load_run(run_dir), console)
        where = write_report_shown(run_dir, console) if report else "not written (--no-report)"
        # One path a line, never wrapped inside: each can be copied whole.
        for name, path in (
            ("report", where),
            ("predictions", run_dir / "predictions.jsonl"),
            ("log", log_path),
        ):
            console.print(f"{name}: {path}", highlight=False, soft_wrap=True)
        note = suppressed_note()
        if note:
            console.print(f"[dim]{note}[/dim]", highlight=False)
        if result.interrupted:
            show(
                console,
                logging.WARNING,
                "[yellow]stopped early[/yellow]: rerun the same command to finish",
            )
            raise typer.Exit(130)
    if result.failed:
        raise typer.Exit(1)


RESUME = "rerun the same command to resume"


def _existing_run(config: str, overrides: list[str], run_id: str) -> Path | None:
    """The run directory ``--run-id`` names when it exists, found without a valid config
    (its runs_dir read from the file and the overrides as written); else None."""
    from swescale.config import ConfigError, read_config_file
    from swescale.record.layout import RunFiles, safe_name

    if not run_id:
        return None
    runs_dir: object = "runs"
    with contextlib.suppress(ConfigError):
        runs_dir = read_config_file(config).get("runs_dir", runs_dir)
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() == "runs_dir" and value.strip():
            runs_dir = value.strip()
    folder = Path(str(runs_dir)) / safe_name(run_id)
    return folder if RunFiles(folder).is_run() else None


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_command(
        config: str = typer.Option(
            "default", "--config", "-c", help="YAML file or preset name in configs/."
        ),
        override: list[str] = typer.Option(
            [], "--override", "-o", help="key=value (YAML value), repeatable."
        ),
        run_id: str = typer.Option(
            "", "--run-id", help="Run directory name; default: preset + config digest."
        ),
        force: bool = typer.Option(
            False, "--force", help="Continue a run directory made with another config."
        ),
        report: bool = typer.Option(
            True, "--report/--no-report", help="Write the report site (RUN_DIR/report/) at the end."
        ),
        live: bool = typer.Option(True, "--live/--no-live", help="Live progress display."),
        registry: str = registry_option(),
    ) -> None:
        """Run (or resume) a batch: explore, verify, select, write predictions.jsonl.

        Rerunning the same command after a crash or Ctrl-C finishes the run."""
        if registry is not None:
            # The same as -o images.registry=...; not part of the config digest, so a
            # run resumes with or without it.
            override = [*override, f"images.registry={registry}"]
        _run(config, override, run_id, force, report, live)

    @app.command("demo")
    def demo_command(
        tasks: int = typer.Option(DEMO_TASKS, "--tasks", "-n", help="Mini-benchmark tasks."),
        trajectories: int = typer.Option(
            DEMO_TRAJECTORIES, "--trajectories", "-k", help="Trajectories per task."
        ),
        config: str = typer.Option(
            "default", "--config", "-c", help="Preset (default: SmolLM2 via llama.cpp)."
        ),
        override: list[str] = typer.Option([], "--override", "-o", help="key=value, repeatable."),
        run_id: str = typer.Option("", "--run-id"),
        force: bool = typer.Option(False, "--force"),
    ) -> None:
        """The full loop on a slice of the mini benchmark with the tiny local model.

        Trajectories in Docker sandboxes, candidates, verifiers, selection, grading;
        prints a summary and writes the run directory and its report site."""
        if tasks < 1 or trajectories < 1:
            raise typer.BadParameter("--tasks and --trajectories must be at least 1")
        demo_overrides = [
            "dataset.name=mini",
            f"dataset.slice=0:{tasks}",
            f"scaling.n_parallel={trajectories}",
            *override,
        ]
        _run(config, demo_overrides, run_id, force, True, True)
