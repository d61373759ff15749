"""``swescale replay TRAJECTORY`` (one of swescale's own records, step by step) and
``swescale replay import PATH...`` (other agents' trajectories into a run directory,
replayed faithfully)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click
import typer
from typer.core import TyperGroup

from swescale.logs import show


class _ReplayGroup(TyperGroup):
    """``swescale replay PATH`` keeps meaning "replay this record": an argument that is
    not a subcommand's name goes to ``trajectory``."""

    def resolve_command(self, ctx: click.Context, args: list[str]):  # type: ignore[override]
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["trajectory", *args]
        return super().resolve_command(ctx, args)


replay_app = typer.Typer(
    cls=_ReplayGroup,
    no_args_is_help=True,
    help="Replay trajectories in fresh sandboxes and compare every observation: "
    "`replay TRAJECTORY` (a swescale record) or `replay import PATH...` (other agents').",
)


def register(app: typer.Typer) -> None:
    app.add_typer(replay_app, name="replay")


@replay_app.command("trajectory")
def replay_trajectory_command(
    trajectory: Path = typer.Argument(..., help="A trajectory record (.jsonl)."),
    image: str | None = typer.Option(None, help="Image to replay in (default: the header's)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Re-execute a recorded trajectory in a fresh sandbox and compare step by step."""
    from swescale.replay.own import ReplayError, docker_sandbox_factory, replay_trajectory

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


@replay_app.command("import")
def replay_import_command(
    paths: list[Path] = typer.Argument(
        ...,
        help="Trajectory files (mini-swe-agent *.traj.json, SWE-agent *.traj, swescale "
        "records) or run directories holding them.",
    ),
    dataset: str = typer.Option(..., "--dataset", "-d", help="The instances' dataset."),
    split: str = typer.Option(None, "--split"),
    repos_dir: Path = typer.Option(None, "--repos-dir", help="Folder of repository mirrors."),
    run_id: str = typer.Option(None, "--run-id", help="Default: replay-<first path's name>."),
    labels: list[Path] = typer.Option(
        [],
        "--labels",
        help="Official evaluation results (logs/run_evaluation/<run>/...) grading the "
        "submissions; matched by patch.",
    ),
    workers: int = typer.Option(1, "--workers", "-w", help="Instances replayed at a time."),
    environment: str = typer.Option(
        "auto",
        "--environment",
        help="auto: what the recording says the agent saw (an official image's base env "
        "for mini-swe-agent on official images); image: the instance image's own "
        "environment; official-base: the base view of it.",
    ),
    network: str = typer.Option(
        "index",
        "--network",
        help="index: pip reaches the package index (as of the recording day) through an "
        "allow-listed proxy; none: no network.",
    ),
    config: str = typer.Option(None, "--config", "-c"),
    override: list[str] = typer.Option([], "--set", "--override", "-o"),
) -> None:
    """Import trajectories of other agents into a run directory and replay each one in a
    sandbox of its instance with its agent's shell semantics, comparing every observation
    with the recorded one; the submitted patches become the run's candidates."""
    from rich.console import Console

    from swescale.commands.swebench import _configs, _dataset, _engine, stop_on_signals
    from swescale.logs import log_to_file
    from swescale.record import RunDir, RunDirError, safe_name
    from swescale.scaling import imported
    from swescale.scaling.stages import ImageProvider
    from swescale.swebench.datasets import DatasetError, read_tasks

    console = Console()
    cfg = _configs(config, override)
    data = _dataset(cfg, dataset, split, [], None, None, repos_dir)
    cfg = cfg.model_copy(update={"dataset": data})
    sources, problems = imported.discover(paths)
    for problem in problems:
        show(console, logging.ERROR, f"error: {problem}", markup=False)
    if not sources:
        raise typer.Exit(2)
    run_id = run_id or f"replay-{safe_name(paths[0].resolve().name)}"
    try:
        taskset = read_tasks(data)
    except DatasetError as exc:
        show(console, logging.ERROR, f"error: {exc}", markup=False)
        raise typer.Exit(2) from exc
    tasks = {t.id: t for t in taskset.tasks}
    try:
        rundir = RunDir.open(cfg.runs_dir, run_id, cfg)
    except RunDirError as exc:
        show(console, logging.ERROR, f"error: {exc}", markup=False)
        raise typer.Exit(2) from exc
    grades, label_errors = imported.read_official_grades(labels)
    with log_to_file(rundir.files.log):
        for problem in label_errors:
            show(console, logging.WARNING, f"warning: {problem}", markup=False)
        console.print(f"run [bold]{run_id}[/bold] -> {rundir.root}: {len(sources)} trajectories")
        client = _engine()
        images = ImageProvider(client, cfg)
        images.prepare([tasks[i] for i in tasks])

        try:
            sandboxes = imported.ReplaySandboxes(client, cfg, rundir.run_id, environment, network)
        except ValueError as exc:
            show(console, logging.ERROR, f"error: {exc}", markup=False)
            raise typer.Exit(2) from exc

        def progress(outcome: imported.ImportOutcome) -> None:
            if outcome.status == "error":
                where = str(outcome.source.path)
                # Readers' errors already begin with the file they are about.
                text = (
                    outcome.error
                    if outcome.error.startswith(where)
                    else f"{where}: {outcome.error}"
                )
                show(console, logging.ERROR, text, markup=False)
                return
            replay = outcome.replay
            if replay is None:
                return
            counts = replay.counts()
            console.print(
                f"{outcome.status:8} {outcome.trajectory_id}: {len(replay.step_fidelity)} steps, "
                f"{counts['identical']} identical, {counts['masked']} masked, "
                f"{counts['differs']} differ; patch {replay.patch_fidelity}",
                highlight=False,
            )

        with stop_on_signals(client) as stop:
            importer = imported.Importer(
                rundir,
                tasks,
                image_for=images,
                open_sandbox=sandboxes.open,
                grades=grades,
                stop=stop,
                progress=progress,
            )
            result = importer.run(sources, workers=workers)
        rows = imported.summarize(
            result.outcomes, lambda iid: tasks[iid].repo if iid in tasks else "(not in dataset)"
        )
        _print_table(console, rows)
        errors = [o for o in result.outcomes if o.status == "error"]
        if errors:
            show(
                console,
                logging.WARNING,
                f"{len(errors)} trajectories could not be replayed (reasons in "
                f"{rundir.files.failures})",
                markup=False,
            )
        if result.interrupted:
            show(console, logging.WARNING, "interrupted: rerun the same command to resume")
        console.print(imported.summary_line(rows), highlight=False)
    if result.interrupted:
        raise typer.Exit(130)
    # Nothing imported at all is a failure of the command, not an empty success.
    raise typer.Exit(1 if errors and len(errors) == len(result.outcomes) else 0)


def _print_table(console, rows) -> None:
    """Per repository: steps identical, equal after masking and differing, the share of
    the two first (``same``), patches reproduced, replay and recorded seconds per step;
    fitted to the terminal."""
    from swescale.report.terminal import Column, fit_table, print_table

    columns = [
        Column("repository"),
        Column("traj", "right"),
        Column("steps", "right"),
        Column("identical", "right"),
        Column("masked", "right"),
        Column("differ", "right"),
        Column("same", "right"),
        Column("patches", "right"),
        Column("s/step", "right", optional=2),
        Column("recorded", "right", optional=2),
        Column("not run", "right", optional=3),
    ]
    body = []
    for r in rows:
        per = r.replayed_steps + r.not_replayed
        same = f"{(r.identical + r.masked) / r.steps:.1%}" if r.steps else "-"
        body.append(
            [
                r.repo,
                f"{r.trajectories:,}",
                f"{r.steps:,}",
                f"{r.identical:,}",
                f"{r.masked:,}",
                f"{r.differs:,}",
                same,
                f"{r.patches_reproduced}/{r.trajectories}",
                f"{r.replay_seconds / per:.2f}" if per else "-",
                f"{r.recorded_seconds / per:.2f}" if per else "-",
                f"{r.not_replayed:,}",
            ]
        )
    caption = "same: identical or equal after masking; s/step and recorded: seconds per step"
    table = fit_table(
        columns, body, console.width, title="replay fidelity by repository", caption=caption
    )
    print_table(console, table)
    causes: dict[str, int] = {}
    for r in rows:
        for cause, n in r.causes.items():
            causes[cause] = causes.get(cause, 0) + n
    if causes:
        listed = ", ".join(f"{c} {n}" for c, n in sorted(causes.items(), key=lambda x: -x[1]))
        console.print(f"differences by cause: {listed}", highlight=False)
