"""``swescale eval``, ``swescale validate`` and ``swescale tasks``."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import typer

from swescale.commands.pulls import (
    missing_in_registry,
    registry_option,
    transfer_bars,
    warn_missing,
    with_registry,
)

DATASET_HELP = (
    "mini, a local parquet/JSON/JSONL file, or a published name (verified, lite, full, owner/name)"
)


def _error(line: str) -> None:
    """An error line on stderr, recorded in the command's log file too."""
    from swescale.logs import show

    show(None, logging.ERROR, line, markup=False, soft_wrap=True)


def _warning(line: str) -> None:
    """A warning line on stderr, recorded in the command's log file too."""
    from swescale.logs import show

    show(None, logging.WARNING, line, markup=False, soft_wrap=True)


def _configs(config: str | Path | None, overrides: list[str]):
    from swescale.config import ConfigError, load_config

    try:
        return load_config(config, overrides)
    except ConfigError as exc:
        _error(f"error: {exc}")
        raise typer.Exit(2) from exc


def _eval_config(base: str | Path | None, config: str | None, dataset: str | None, overrides):
    """The config eval grades with; a run's own config.yaml that this version cannot read
    gives way to the defaults when ``--dataset`` says what to grade against."""
    from swescale.config import ConfigError, load_config

    if base is None or config is not None:
        return _configs(base, overrides)
    try:
        return load_config(base, overrides)
    except ConfigError as exc:
        if dataset is None:
            _error(f"error: the run's config cannot be used ({exc}); pass --dataset")
            raise typer.Exit(2) from exc
        _warning(f"warning: the run's config cannot be used ({exc}); grading with the defaults")
        return _configs(None, overrides)


def _dataset(
    cfg,
    dataset: str | None,
    split: str | None,
    instance: list[str],
    regex: str | None,
    slice_: str | None,
    repos_dir: Path | None,
):
    updates = {
        "name": dataset,
        "split": split,
        "instance_ids": instance or None,
        "regex": regex,
        "slice": slice_,
        "repos_dir": repos_dir,
    }
    return cfg.dataset.model_copy(update={k: v for k, v in updates.items() if v is not None})


@contextlib.contextmanager
def stop_on_signals(client) -> Iterator[threading.Event]:
    """Ctrl-C or SIGTERM (a CI job's timeout): stop starting work, remove this process's
    containers of the run at once (runs in flight end within seconds), and let the
    command write the summary of what finished. A second Ctrl-C exits immediately."""
    from swescale.pool import stop_on_signals as signals_stop
    from swescale.sandbox import remove_owned

    def stopping(name: str) -> None:
        _warning(
            f"{name}: stopping: nothing new starts; removing this command's containers (the "
            "work in flight ends with them), then the summary of what finished "
            "(Ctrl-C again quits at once; a rerun does the rest)"
        )
        # Every container of this process: grading runs, and image builds in flight.
        remove_owned(client)

    stop = threading.Event()
    try:
        with signals_stop(stop, on_signal=stopping):
            yield stop
    finally:
        if stop.is_set():
            remove_owned(client)


def _engine():
    from swescale.sandbox import EngineUnavailable, docker_client, reap

    try:
        client = docker_client()
    except EngineUnavailable as exc:
        _error(f"error: {exc}")
        raise typer.Exit(2) from exc
    # Containers and networks an earlier, killed command left behind.
    reaped = reap(client)
    for item in reaped:
        typer.echo(f"removed {item.describe()}, left by a killed command", err=True)
    return client


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_command(
        predictions: list[Path] = typer.Argument(
            ...,
            help="SWE-bench predictions files (JSONL, JSON list or object); several "
            "models in them are graded as separate pools.",
        ),
        dataset: str = typer.Option(None, "--dataset", "-d", help=DATASET_HELP),
        split: str = typer.Option(None, "--split"),
        instance: list[str] = typer.Option(
            None, "--instance", "-i", help="Only these instance ids."
        ),
        run_id: str = typer.Option(
            None,
            "--run-id",
            help="Results are kept per run id; a rerun grades only what is missing.",
        ),
        workers: int = typer.Option(None, "--workers", "-w", help="Grading runs in parallel."),
        timeout: float = typer.Option(None, "--timeout", help="Seconds for one test run."),
        repos_dir: Path = typer.Option(
            None, "--repos-dir", help="Local git mirrors (owner__name.git or owner/name)."
        ),
        eval_dir: Path = typer.Option(
            None, "--eval-dir", help="Where logs/run_evaluation/ and the run reports go."
        ),
        official_images: bool = typer.Option(
            None, "--official-images/--local-images", help="Pull the official prebuilt images."
        ),
        registry: str = registry_option(),
        config: str = typer.Option(None, "--config", "-c"),
        override: list[str] = typer.Option(
            None, "--set", "-o", "--override", help="Config override key=value."
        ),
    ) -> None:
        """Grade predictions against a dataset, in the official run layout and report.

        Predictions of a run (runs/<id>/predictions.jsonl) are graded against the run's
        own config and dataset, into runs/<id>/eval/; others need --dataset."""
        from swescale.logs import log_to_file
        from swescale.record import evaluation
        from swescale.record.layout import RunFiles
        from swescale.swebench import eval_inputs

        folders = [str(p) for p in predictions if p.is_dir()]
        if folders:
            _error(
                f"error: {', '.join(folders)}: a directory, not a predictions file (give its "
                "predictions.jsonl, or the run's predictions.jsonl for a run directory)"
            )
            raise typer.Exit(2)
        missing = [str(p) for p in predictions if not p.is_file()]
        if missing:
            _error(f"error: predictions file not found: {', '.join(missing)}")
            raise typer.Exit(2)
        owner = eval_inputs.owner_run(predictions)
        try:
            base = eval_inputs.config_source(predictions, owner, dataset, config, override or [])
        except eval_inputs.EvalInputError as exc:
            _error(f"error: {exc}")
            raise typer.Exit(2) from exc
        cfg = with_registry(_eval_config(base, config, dataset, override or []), registry)
        data = _dataset(cfg, dataset, split, instance, None, None, repos_dir)
        run = run_id or eval_inputs.default_run_id(predictions)
        if eval_dir is None and owner is not None and cfg.grading.eval_dir == Path("."):
            eval_dir = RunFiles(owner).eval_dir  # a run's grading stays in the run
        updates = {
            "workers": workers,
            "timeout": timeout,
            "eval_dir": eval_dir,
            "use_official_images": official_images,
        }
        grading = cfg.grading.model_copy(update={k: v for k, v in updates.items() if v is not None})
        log_path = (
            RunFiles(owner).log if owner is not None else evaluation.ours_log(grading.eval_dir, run)
        )
        with log_to_file(log_path):
            _grade(predictions, data, grading, cfg, run)

    @app.command("validate")
    def validate_command(
        dataset: str = typer.Option(None, "--dataset", "-d", help=DATASET_HELP),
        split: str = typer.Option(None, "--split"),
        instance: list[str] = typer.Option(None, "--instance", "-i"),
        regex: str = typer.Option(None, "--regex"),
        slice_: str = typer.Option(None, "--slice"),
        workers: int = typer.Option(None, "--workers", "-w"),
        repos_dir: Path = typer.Option(None, "--repos-dir"),
        extra_patches: bool = typer.Option(
            False, "--extra-patches", help="Also check decoy, wrong and alternative patches."
        ),
        json_out: Path = typer.Option(
            None, "--json", help="Write the per-task results (full test lists) here."
        ),
        run_id: str = typer.Option(
            "validate",
            "--run-id",
            help="Logs go to <eval dir>/logs/run_validation/<run id>/<instance>/.",
        ),
        eval_dir: Path = typer.Option(None, "--eval-dir"),
        environment: str = typer.Option(
            "recipe",
            "--environment",
            help="recipe: each task's own recipe (the official SWE-bench one); inferred: "
            "built from the repository's files at the base commit only (.swescale.yaml, "
            "else its packaging files), as for a repository of your own.",
        ),
        official_images: bool = typer.Option(
            None,
            "--official-images/--local-images",
            help="Validate in the official prebuilt images (pulled; see --registry).",
        ),
        registry: str = registry_option(),
        config: str = typer.Option(None, "--config", "-c"),
        override: list[str] = typer.Option(
            None, "--set", "-o", "--override", help="Config override key=value."
        ),
    ) -> None:
        """Check tasks: gold resolves; with the test patch alone FAIL_TO_PASS fails and
        PASS_TO_PASS passes (so the empty patch does not resolve)."""
        if environment not in ("recipe", "inferred"):
            _error(f"error: --environment must be recipe or inferred, not {environment!r}")
            raise typer.Exit(2)
        from swebench.harness.constants import RUN_VALIDATION_LOG_DIR

        from swescale.swebench.datasets import DatasetError, load_tasks
        from swescale.swebench.evaluate import Grader, validate

        cfg = with_registry(_configs(config, override or []), registry)
        data = _dataset(cfg, dataset, split, instance, regex, slice_, repos_dir)
        updates = {"workers": workers, "use_official_images": official_images}
        grading = cfg.grading.model_copy(update={k: v for k, v in updates.items() if v is not None})
        try:
            tasks = load_tasks(data)
        except DatasetError as exc:
            _error(f"error: {exc}")
            raise typer.Exit(2) from exc
        if not tasks:
            _error("error: no tasks selected")
            raise typer.Exit(2)
        client = _engine()
        warn_missing(missing_in_registry(client, tasks, cfg.images, grading), cfg.images, data.name)
        grader = Grader.for_tasks(client, tasks, cfg.images, grading, data)
        grader.labels = {"run": "validate"}

        def show(result) -> None:
            mark = "ok  " if result.ok else "FAIL"
            python = ""
            if result.python and result.python != result.python_wanted:
                python = f", Python {result.python} for {result.python_wanted}"
            typer.echo(
                f"{mark} {result.task_id} (build {result.build_seconds:.0f}s, "
                f"tests {result.test_seconds:.0f}s{python})"
            )
            for problem in result.problems:
                typer.echo(f"       {problem[:400]}")

        from rich.console import Console

        from swescale.commands.progress import image_builds

        log_dir = Path(eval_dir or grading.eval_dir) / RUN_VALIDATION_LOG_DIR / run_id
        prepare = None
        if environment == "inferred":
            from swescale.swebench.specs.inferred import with_inferred_environment

            def prepare(task):
                return with_inferred_environment(task, grader.repos)

        typer.echo(f"validating {len(tasks)} task(s), {grading.workers} at a time")
        with stop_on_signals(client) as stop, transfer_bars(), image_builds(Console()):
            results = validate(
                grader,
                tasks,
                grading.workers,
                extra_patches,
                progress=show,
                stop=stop,
                log_dir=log_dir,
                prepare=prepare,
            )
        if json_out:
            json_out.write_text(
                json.dumps([r.model_dump() | {"seconds": r.seconds} for r in results], indent=2)
            )
        _validation_table(results)
        typer.echo(f"logs and full test lists: {log_dir}")
        failed = [r.task_id for r in results if not r.ok]
        other = [r for r in results if r.python and r.python != r.python_wanted]
        line = f"{len(results) - len(failed)}/{len(results)} tasks valid"
        if other:
            line += f"; {len(other)} ran on another Python than their spec's"
        if len(results) < len(tasks):
            line += f"; {len(tasks) - len(results)} not run (interrupted)"
        typer.echo(line)
        if failed or len(results) < len(tasks):
            raise typer.Exit(1)

    @app.command("tasks")
    def tasks_command(
        dataset: str = typer.Option(None, "--dataset", "-d", help=DATASET_HELP),
        split: str = typer.Option(None, "--split"),
        instance: list[str] = typer.Option(None, "--instance", "-i"),
        regex: str = typer.Option(None, "--regex"),
        slice_: str = typer.Option(None, "--slice"),
        as_json: bool = typer.Option(False, "--json", help="One JSON object a line (no patches)."),
        config: str = typer.Option(None, "--config", "-c"),
        override: list[str] = typer.Option(
            None, "--set", "-o", "--override", help="Config override key=value."
        ),
    ) -> None:
        """List the tasks of a dataset (ids, repositories, versions, test counts, spec problems)."""
        from swescale.swebench.datasets import DatasetError, read_tasks
        from swescale.swebench.specs import spec_problem

        cfg = _configs(config, override or [])
        data = _dataset(cfg, dataset, split, instance, regex, slice_, None)
        try:
            taskset = read_tasks(data)
        except DatasetError as exc:
            _error(f"error: {exc}")
            raise typer.Exit(2) from exc
        rows = []
        for task in taskset.tasks:
            problem = spec_problem(task)
            if as_json:
                row = {
                    "instance_id": task.id,
                    "repo": task.repo,
                    "base_commit": task.base_commit,
                    "version": task.version,
                    "FAIL_TO_PASS": len(task.fail_to_pass),
                    "PASS_TO_PASS": len(task.pass_to_pass),
                    "spec_problem": problem,
                }
                typer.echo(json.dumps(row))
            else:
                rows.append(
                    [
                        task.id,
                        task.repo,
                        task.version or "-",
                        str(len(task.fail_to_pass)),
                        str(len(task.pass_to_pass)),
                        problem or "",
                    ]
                )
        if rows:
            from rich.console import Console

            from swescale.report.terminal import Column, fit_table, print_table

            columns = [
                Column("instance"),
                Column("repository", optional=2),
                Column("version", optional=3),
                Column("F2P", "right"),
                Column("P2P", "right"),
                Column("spec problem", optional=1),
            ]
            if not any(row[-1] for row in rows):
                columns, rows = columns[:-1], [row[:-1] for row in rows]
            out = Console()
            print_table(out, fit_table(columns, rows, out.width))
        for error in taskset.errors:
            _warning(f"warning: {error}")
        typer.echo(f"{len(taskset.tasks)} task(s)", err=True)
        if not taskset.tasks and taskset.errors:
            sys.exit(1)


def _grade(predictions: list[Path], data, grading, cfg, run: str) -> None:
    """The grading, its summary on the terminal and the report; every warning and error
    line of it also in the log file (``show``)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from swescale.report.evaluations import report_evaluation
    from swescale.swebench.datasets import DatasetError
    from swescale.swebench.evaluate import evaluate, summarize_names

    warn, fail = _warning, _error
    client = _engine()
    columns = (
        TextColumn("[bold]grading"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    from rich.console import Console

    from swescale.commands.progress import image_builds

    console = Console()
    with (
        Progress(*columns, console=console, transient=False) as bar,
        stop_on_signals(client) as stop,
        image_builds(console, bar),
    ):
        job = bar.add_task("", total=None)
        pulls = contextlib.ExitStack()
        if grading.use_official_images:
            # A long pull shows on the grading bar's line while it lasts.
            pulls.enter_context(transfer_bars(lambda text: bar.update(job, description=text)))

        def total(count: int) -> None:
            bar.update(job, total=count, description=f"{count} to grade")

        def tick(model: str, instance_id: str, result) -> None:
            what = result.status + (f" ({result.error_kind})" if result.error_kind else "")
            bar.update(job, advance=1, description=f"{instance_id}: {what}")

        try:
            if grading.use_official_images and cfg.images.registry:
                wanted = _instances_with_predictions(predictions, data)
                warn_missing(
                    missing_in_registry(client, wanted, cfg.images, grading),
                    cfg.images,
                    data.name,
                )
            with pulls:
                outcome = evaluate(
                    predictions,
                    data,
                    grading,
                    cfg.images,
                    run,
                    client,
                    progress=tick,
                    stop=stop,
                    on_total=total,
                )
        except DatasetError as exc:
            bar.remove_task(job)  # no empty "0/?" bar under the error
            fail(f"error: {exc}")
            raise typer.Exit(2) from exc
    problems = outcome.input_errors
    for problem in problems[:10]:
        warn(f"warning: {problem}")
    if len(problems) > 10:
        warn(f"warning: ... and {len(problems) - 10} more (in the run reports)")
    if outcome.outside_selection:
        typer.echo(
            f"{len(outcome.outside_selection)} prediction(s) for instances outside the "
            "selection skipped"
        )
    for model, report in outcome.reports.items():
        errors = report["error_ids"]
        kinds = ", ".join(
            f"{len(report[key])} {label}"
            for key, label in (
                ("patch_apply_failed_ids", "patch did not apply"),
                ("timeout_ids", "timed out"),
                ("test_patch_failed_ids", "test patch did not apply"),
                ("infra_error_ids", "infrastructure"),
                ("interrupted_ids", "interrupted"),
            )
            if report.get(key)
        )
        typer.echo(
            f"{model}: {report['resolved_instances']}/{report['total_instances']} resolved, "
            f"{report['unresolved_instances']} unresolved, "
            f"{report['empty_patch_instances']} empty, {len(errors)} errors"
            + (f" ({kinds})" if kinds else "")
            + f"; report: {outcome.report_paths[model]}"
        )
        if errors:
            fail(f"  errors: {summarize_names(errors, 5)} (reasons: error_reasons in the report)")
        if report.get("needs_network_ids"):
            warn(
                f"  needs network: {summarize_names(report['needs_network_ids'], 5)}"
                " (tests that call outside hosts; graded offline)"
            )
        tampered = report.get("test_setup_changed") or {}
        if tampered:
            named = "; ".join(f"{i}: {', '.join(p)}" for i, p in sorted(tampered.items())[:5])
            warn(
                f"  test set-up changed by the patch: {named}"
                + (f" (+{len(tampered) - 5} more)" if len(tampered) > 5 else "")
                + " (graded as officially; the outcomes may be the patch's doing)"
            )
    for model, why in outcome.nothing_to_grade.items():
        warn(f"{model}: {why}; no report")
    if not outcome.reports:
        # Nothing gradable at all (empty or unreadable files, no known instance): a
        # CI job fed such input must not pass.
        fail("error: no prediction to grade in the given files")
        raise typer.Exit(2)
    where = report_evaluation(predictions, grading.eval_dir, outcome)
    if where.startswith("no report"):
        warn(f"per instance: {where}")
    else:
        typer.echo(f"per instance: {where}")
    if outcome.interrupted:
        warn("interrupted: rerun the same command to grade the rest")
        raise typer.Exit(130)


def _instances_with_predictions(predictions: list[Path], data) -> list:
    """The selected tasks that have a non-empty prediction in the files (what grading
    will need an image for)."""
    from swescale.swebench.datasets import read_tasks
    from swescale.swebench.predictions import read_predictions

    ids = set()
    for path in predictions:
        rows, _ = read_predictions(path)
        ids |= {row.instance_id for row in rows if not row.is_empty}
    return [t for t in read_tasks(data).tasks if t.id in ids]


def _validation_table(results) -> None:
    """Per repository: instances, valid, build and test seconds (what the table in the
    docs reports)."""
    from rich.console import Console

    from swescale.report.terminal import Column, fit_table, print_table

    if not results:
        return
    by_repo: dict[str, list] = {}
    for r in results:
        by_repo.setdefault(r.repo, []).append(r)
    rows = [
        [
            repo,
            str(len(found)),
            str(sum(r.ok for r in found)),
            f"{round(sum(r.build_seconds for r in found)):,}",
            f"{round(sum(r.test_seconds for r in found)):,}",
        ]
        for repo, found in sorted(by_repo.items())
    ]
    columns = [
        Column("repository"),
        Column("instances", "right"),
        Column("valid", "right"),
        Column("build s", "right"),
        Column("tests s", "right"),
    ]
    out = Console()
    print_table(out, fit_table(columns, rows, out.width, title="validation by repository"))
