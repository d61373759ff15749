"""``swescale eval``, ``swescale validate`` and ``swescale tasks``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

# Problems and errors listed on the terminal before the rest are counted.
SHOWN = 5

DATASET_HELP = (
    "mini, a local parquet/JSON/JSONL file, or a published name (verified, lite, full, owner/name)"
)


def _configs(config: str | None, overrides: list[str]):
    from swescale.config import ConfigError, load_config

    try:
        return load_config(config, overrides)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


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


def _report_evaluation(predictions: Path, eval_dir: Path, run: str, summary) -> str:
    """Link each graded instance to its test output and report: in the run's report when
    the predictions came from a run directory, else in a report beside the results.
    Returns where to look (or why there is nothing); never raises."""
    from swescale.report.cli import write_report
    from swescale.report.evaluations import (
        entry,
        record_evaluation,
        run_dir_of,
        write_eval_site,
    )
    from swescale.swebench.evaluate import instance_dir
    from swescale.swebench.predictions import read_predictions

    try:
        rows, _ = read_predictions(predictions)
        folders = {
            p.instance_id: instance_dir(eval_dir, run, p)
            for p in rows
            if instance_dir(eval_dir, run, p).is_dir()
        }
        data = summary.model_dump(mode="json")
        new = entry(run, data, Path(eval_dir) / run / "report.json", folders)
        run_dir = run_dir_of(predictions)
        if run_dir is not None:
            record_evaluation(run_dir, new)
            return write_report(run_dir)
        return str(write_eval_site(Path(eval_dir) / run / "report", new))
    except Exception as exc:  # noqa: BLE001 - the grading results stand without a report
        return f"no report ({type(exc).__name__}: {exc})"


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_command(
        predictions: Path = typer.Argument(..., help="SWE-bench predictions.jsonl"),
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
        eval_dir: Path = typer.Option(None, "--eval-dir"),
        official_images: bool = typer.Option(
            None, "--official-images/--local-images", help="Pull the official prebuilt images."
        ),
        config: str = typer.Option(None, "--config", "-c"),
        override: list[str] = typer.Option(None, "--set", help="Config override key=value."),
    ) -> None:
        """Grade a predictions file against a dataset; writes an official-style report."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from swescale.logs import LOG_FILE, log_to_file
        from swescale.sandbox import EngineUnavailable
        from swescale.swebench.datasets import DatasetError
        from swescale.swebench.evaluate import evaluate

        cfg = _configs(config, override or [])
        data = _dataset(cfg, dataset, split, instance, None, None, repos_dir)
        updates = {
            "workers": workers,
            "timeout": timeout,
            "eval_dir": eval_dir,
            "use_official_images": official_images,
        }
        grading = cfg.grading.model_copy(update={k: v for k, v in updates.items() if v is not None})
        run = run_id or f"eval-{predictions.stem}"
        columns = (
            TextColumn("[bold]grading"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
        )
        with Progress(*columns, transient=False) as bar:
            job = bar.add_task("", total=None)

            def tick(instance_id: str, result) -> None:
                bar.update(job, advance=1, description=f"{instance_id}: {result.status}")

            try:
                with log_to_file(Path(grading.eval_dir) / run / LOG_FILE):
                    summary = evaluate(predictions, data, grading, cfg.images, run, progress=tick)
            except (DatasetError, EngineUnavailable) as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from exc
        report = Path(grading.eval_dir) / run / "report.json"
        # At most a few lines each; the report has every one of them.
        for problem in summary.input_errors[:SHOWN]:
            typer.echo(f"warning: {problem}", err=True)
        if len(summary.input_errors) > SHOWN:
            typer.echo(
                f"warning: … and {len(summary.input_errors) - SHOWN} more: {report}", err=True
            )
        for iid, why in list(summary.errors.items())[:SHOWN]:
            typer.echo(f"error: {iid}: {(why.splitlines() or [''])[0][:200]}", err=True)
        if len(summary.errors) > SHOWN:
            typer.echo(f"error: … and {len(summary.errors) - SHOWN} more: {report}", err=True)
        typer.echo(
            f"{summary.resolved_instances}/{summary.submitted_instances} resolved, "
            f"{summary.unresolved_instances} unresolved, {summary.empty_patch_instances} empty, "
            f"{summary.error_instances} errors ({summary.graded_now} graded now); report: {report}"
        )
        typer.echo(
            f"per instance: {_report_evaluation(predictions, grading.eval_dir, run, summary)}"
        )

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
        json_out: Path = typer.Option(None, "--json", help="Write the per-task results here."),
        config: str = typer.Option(None, "--config", "-c"),
        override: list[str] = typer.Option(None, "--set"),
    ) -> None:
        """Check tasks: gold resolves, empty does not, the test patch alone fails FAIL_TO_PASS."""
        from swescale.sandbox import EngineUnavailable, docker_client
        from swescale.swebench.datasets import DatasetError, load_tasks
        from swescale.swebench.evaluate import Grader, validate

        cfg = _configs(config, override or [])
        data = _dataset(cfg, dataset, split, instance, regex, slice_, repos_dir)
        grading = (
            cfg.grading if workers is None else cfg.grading.model_copy(update={"workers": workers})
        )
        try:
            tasks = load_tasks(data)
            client = docker_client()
        except (DatasetError, EngineUnavailable) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        if not tasks:
            typer.echo("error: no tasks selected", err=True)
            raise typer.Exit(2)
        grader = Grader.for_tasks(client, tasks, cfg.images, grading, data)
        grader.labels = {"run": "validate"}

        def show(result) -> None:
            mark = "ok  " if result.ok else "FAIL"
            typer.echo(f"{mark} {result.task_id} ({result.seconds:.1f}s)")
            for problem in result.problems:
                typer.echo(f"       {problem}")

        results = validate(grader, tasks, grading.workers, extra_patches, progress=show)
        if json_out:
            json_out.write_text(json.dumps([r.model_dump() for r in results], indent=2))
        failed = [r.task_id for r in results if not r.ok]
        typer.echo(f"{len(results) - len(failed)}/{len(results)} tasks valid")
        if failed:
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
        override: list[str] = typer.Option(None, "--set"),
    ) -> None:
        """List the tasks of a dataset (ids, repositories, versions, test counts, spec problems)."""
        from swescale.swebench.datasets import DatasetError, read_tasks
        from swescale.swebench.specs import spec_problem

        cfg = _configs(config, override or [])
        data = _dataset(cfg, dataset, split, instance, regex, slice_, None)
        try:
            taskset = read_tasks(data)
        except DatasetError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
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
                flag = f"  [{problem}]" if problem else ""
                typer.echo(
                    f"{task.id:45} {task.repo:28} {task.version or '-':6} "
                    f"F2P={len(task.fail_to_pass):<3} P2P={len(task.pass_to_pass):<4}{flag}"
                )
        for error in taskset.errors:
            typer.echo(f"warning: {error}", err=True)
        typer.echo(f"{len(taskset.tasks)} task(s)", err=True)
        if not taskset.tasks and taskset.errors:
            sys.exit(1)
