"""``swescale select`` (offline re-selection on a finished run) and ``swescale ensemble``
(selection across systems' predictions)."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

import typer

from swescale.commands.pulls import registry_option, with_registry
from swescale.logs import show
from swescale.record.io import write_text_atomic
from swescale.record.layout import RunFiles
from swescale.selection.config import OFFLINE_SELECTORS


def register(app: typer.Typer) -> None:
    app.command("select")(select_command)
    app.command("ensemble")(ensemble_command)


def select_command(
    run: Path = typer.Option(..., "--run", help="A finished run directory (runs/<run_id>)."),
    selector: str = typer.Option(
        "all", "--selector", "-s", help=f"{', '.join(OFFLINE_SELECTORS)}, or all."
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

    from swescale.logs import log_to_file
    from swescale.record.task import task_dirs

    console = Console()
    try:
        dirs = task_dirs(run)
    except FileNotFoundError as exc:
        show(console, logging.ERROR, str(exc), markup=False)
        raise typer.Exit(2) from exc
    with log_to_file(RunFiles(run).log):
        if not dirs:
            show(
                console,
                logging.ERROR,
                f"{run} holds no task directories with candidates",
                markup=False,
            )
            raise typer.Exit(2)
        _select(
            console,
            run,
            dirs,
            selector,
            top_k,
            abstain_below,
            calibration,
            foreign,
            fit_calibration,
        )


def _select(
    console,
    run: Path,
    dirs: list[Path],
    selector: str,
    top_k: int,
    abstain_below: float,
    calibration: Path | None,
    foreign: list[Path],
    fit_calibration: Path | None,
) -> None:
    from swescale.record.task import read_task_record
    from swescale.selection.config import OFFLINE_SELECTORS, SelectionConfig
    from swescale.selection.metrics import oracle_rows, run_offline_selection

    def warn(text: str) -> None:
        show(console, logging.WARNING, text, style="yellow", markup=False)

    if fit_calibration is not None:
        from swescale.selection.metrics import fit_calibration_from_runs

        fitted = fit_calibration_from_runs([run])
        fitted.save(fit_calibration)
        console.print(
            f"calibration fit on {fitted.fitted_on} labelled candidates: {fit_calibration}"
        )
        if not fitted.fitted_on:
            show(
                console,
                logging.WARNING,
                "[yellow]no labelled candidates: the file holds the prior[/yellow]",
            )
    names = list(OFFLINE_SELECTORS) if selector == "all" else [selector]
    unknown = [n for n in names if n not in OFFLINE_SELECTORS]
    if unknown:
        show(
            console,
            logging.ERROR,
            f"unknown or online-only selector {unknown[0]!r}; offline selectors: "
            f"{', '.join(OFFLINE_SELECTORS)}",
            style="red",
            markup=False,
        )
        raise typer.Exit(2)
    cfg = SelectionConfig(
        top_k=top_k,
        abstain_below=abstain_below,
        calibration_path=str(calibration) if calibration else None,
    )
    from swescale.report.render import comparison_table

    rows: list[dict] = list(oracle_rows([read_task_record(d) for d in dirs]))
    problems: list[str] = []
    replaced: list[str] = []
    for name in names:
        _, summary = run_offline_selection(run, name, cfg, foreign=foreign)
        problems = problems or list(summary.get("problems", []))
        rows.append(summary)
        if summary.get("replaced"):
            replaced.append(_replaced(name, summary))
    from swescale.report.terminal import print_table

    print_table(console, comparison_table(rows, console.width, title=f"selection on {run}"))
    if foreign and summary.get("foreign_unknown_ids"):
        unknown = summary["foreign_unknown_ids"]
        warn(f"{len(unknown)} foreign ids not in this run: {unknown[:10]}")
    for problem in problems[:5]:
        warn(f"skipped: {problem}")
    if len(problems) > 5:
        warn(f"… and {len(problems) - 5} more skipped records")
    for line in replaced:
        console.print(line, highlight=False)
    which = names[0] if len(names) == 1 else "<selector>"
    console.print(
        f"wrote selection.{which}.json per task and predictions.{which}.jsonl in {run}",
        highlight=False,
    )
    from swescale.report.render import write_report_shown

    console.print(f"report: {write_report_shown(run, console)}", highlight=False, soft_wrap=True)


def ensemble_command(
    predictions: list[Path] = typer.Argument(
        None, help="Predictions files of any number of systems (model_name_or_path = producer)."
    ),
    dataset: str = typer.Option(None, "--dataset", "-d", help="Dataset of the instances."),
    split: str = typer.Option(None, "--split"),
    instance: list[str] = typer.Option(None, "--instance", "-i", help="Only these instances."),
    regex: str = typer.Option(None, "--regex"),
    slice_: str = typer.Option(None, "--slice"),
    run: list[Path] = typer.Option(
        [], "--run", help="Finished run directories whose candidates join the pools."
    ),
    run_id: str = typer.Option(
        "",
        "--run-id",
        help="Names the output directory and containers; default: ensemble-<first input>-"
        "<hash of the inputs>, so the same inputs resume and others never share it.",
    ),
    out: Path = typer.Option(None, "--out", help="Output directory (default ensembles/<run id>)."),
    selector: str = typer.Option(
        "evidence",
        "--selector",
        "-s",
        help=f"{', '.join(OFFLINE_SELECTORS)}, comma-separated, or all; "
        "the first one writes predictions.jsonl.",
    ),
    verifiers: str = typer.Option(
        "static,regression,harvest,issue,doctest,behaviour",
        "--verifiers",
        help="Model-free verifiers to run.",
    ),
    labels: list[Path] = typer.Option(
        [], "--labels", help="Grades of the pool's patches (JSON lines), for the accuracy table."
    ),
    workers: int = typer.Option(1, "--workers", "-w", help="Instances in parallel."),
    verifier_workers: int = typer.Option(2, help="Sandboxes in parallel within an instance."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds for one test command."),
    regression_files: int = typer.Option(
        4, "--regression-files", help="Existing test files the regression verifier runs, at most."
    ),
    no_sandbox: bool = typer.Option(
        False, "--no-sandbox", help="Only pool signals (votes, size, locality): no images."
    ),
    trajectory_tests: bool = typer.Option(
        True,
        "--trajectory-tests/--no-trajectory-tests",
        help="Harvest the tests and reproduction scripts the --run directories' "
        "trajectories wrote along the way (not only those in the final patches).",
    ),
    repos_dir: Path = typer.Option(None, "--repos-dir", help="Local git mirrors."),
    registry: str = registry_option(),
    calibration: Path | None = typer.Option(None, help="Calibration JSON for 'calibrated'."),
    fit_calibration: Path | None = typer.Option(
        None, "--fit-calibration", help="Fit a calibration on these labelled pools, save it here."
    ),
    abstain_below: float = typer.Option(0.0, help="Abstain (calibrated) below this P(resolved)."),
    judge: bool = typer.Option(
        False,
        "--judge",
        help="Add the model judge (the config's model) to the evidence; without it the "
        "evidence is model-free and the selectors say so.",
    ),
    config: str = typer.Option(None, "--config", "-c"),
    override: list[str] = typer.Option(
        None, "--set", "-o", "--override", help="Config override key=value."
    ),
) -> None:
    """Pick one patch per instance from several systems' predictions, with evidence
    from sandboxes (static checks, regression tests, harvested tests, behaviour classes)."""
    from rich.console import Console

    from swescale.commands.swebench import _configs, _dataset, _engine, stop_on_signals
    from swescale.selection.config import OFFLINE_SELECTORS, SelectionConfig
    from swescale.selection.ensemble import (
        MODEL_FREE_VERIFIERS,
        EnsembleConfig,
        ensemble_report,
        read_labels,
        read_pools,
        read_records,
        run_ensemble,
        select_and_write,
    )
    from swescale.swebench.datasets import DatasetError, read_tasks

    console = Console()

    def fail(message: str) -> typer.Exit:
        console.print(f"[red]error: {message}[/red]")
        return typer.Exit(2)

    names = list(OFFLINE_SELECTORS) if selector == "all" else selector.split(",")
    if selector == "all":
        names.remove("evidence")
        names.insert(0, "evidence")
    bad = [n for n in names if n not in OFFLINE_SELECTORS]
    if bad:
        raise fail(f"unknown selector {bad[0]!r}; known: {', '.join(OFFLINE_SELECTORS)}")
    wanted = [v.strip() for v in verifiers.split(",") if v.strip()]
    bad = [v for v in wanted if v not in MODEL_FREE_VERIFIERS]
    if bad:
        raise fail(f"unknown verifier {bad[0]!r}; known: {', '.join(MODEL_FREE_VERIFIERS)}")
    if not predictions and not run:
        raise fail("give predictions files and/or --run directories")
    cfg = with_registry(_configs(config, override or []), registry)
    data = _dataset(cfg, dataset, split, instance or [], regex, slice_, repos_dir)
    try:
        taskset = read_tasks(data)
    except DatasetError as exc:
        raise fail(str(exc)) from exc
    label_file = read_labels(labels)
    try:
        found = read_pools(
            taskset.tasks, predictions or [], run, label_file.labels, trajectory_tests
        )
    except FileNotFoundError as exc:
        raise fail(str(exc)) from exc
    problems = [str(e) for e in taskset.errors] + found.problems + label_file.errors
    if found.unknown_ids and (instance or regex or slice_):
        console.print(f"{len(found.unknown_ids)} instance(s) outside the selection skipped")
    elif found.unknown_ids:
        problems.append(
            f"{len(found.unknown_ids)} instance id(s) not in the dataset: "
            + ", ".join(found.unknown_ids[:5])
        )
    if not found.pools:
        for problem in problems[:10]:
            console.print(f"[yellow]warning: {problem}[/yellow]")
        raise fail("no candidates: no usable patch for any instance of the dataset")
    tasks = [t for t in taskset.tasks if t.id in found.pools]
    run_id = run_id or _ensemble_id(predictions or [], run, data)
    out_dir = out or Path("ensembles") / run_id
    ecfg = EnsembleConfig(
        verifiers=wanted,
        selectors=names,
        workers=workers,
        verifier_workers=verifier_workers,
        test_timeout=timeout,
        regression_max_files=regression_files,
    )
    along = sum(len(t) for t in found.trajectory_tests.values())
    console.print(
        f"ensemble {run_id}: {len(tasks)} instances, "
        f"{sum(len(p) for p in found.pools.values())} distinct candidates; "
        f"verifiers: {', '.join(wanted)}; output: {out_dir}"
        + (f"; {along} tests written along the way by the trajectories" if along else ""),
        highlight=False,
    )
    if found.label_sources:
        console.print(
            "labels: "
            + ", ".join(f"{n} candidate(s) from {src}" for src, n in found.label_sources.items()),
            highlight=False,
        )
    sandbox_for = None
    client = None
    if not no_sandbox:
        client = _engine()
    model_verifiers = {}
    if judge:
        from swescale.agent.models import ModelError, build_model, close_model
        from swescale.verifiers.config import BuildContext, JudgeSpec

        try:
            model = build_model(cfg.model)
        except ModelError as exc:
            raise fail(f"--judge: {exc}") from exc
        judge_spec = JudgeSpec(
            samples=cfg.verifiers.judge_samples, top_logprobs=cfg.verifiers.judge_top_logprobs
        )
        model_verifiers["judge"] = judge_spec.build(BuildContext(model=model))
        # The judge reads every candidate; behaviour, which reads the others, stays last.
        at = wanted.index("behaviour") if "behaviour" in wanted else len(wanted)
        ecfg.verifiers.insert(at, "judge")
    with contextlib.ExitStack() as stack:
        if judge:
            stack.callback(close_model, model)
        stop = None
        if client is not None:
            from swescale.sandbox import DockerSandbox
            from swescale.sandbox.base import SandboxError
            from swescale.sandbox.registry import PulledImages
            from swescale.swebench.evaluate import Grader

            stop = stack.enter_context(stop_on_signals(client))
            grader = Grader.for_tasks(client, tasks, cfg.images, cfg.grading, data)
            pulled = PulledImages.for_config(client, cfg.images)

            def sandbox_for(task):
                image = grader.image(task)
                if isinstance(image, str):
                    return f"no environment: {image}"
                labels_ = {"run": run_id, "task": task.id, "role": "verifier"}

                def make():
                    if stop.is_set():
                        # Interrupted: verifiers in flight get no new sandboxes, so the
                        # command stops within seconds instead of finishing their loops.
                        raise SandboxError("interrupted")
                    with contextlib.ExitStack() as held:
                        if image.pulled:
                            # Held until its container exists, which then keeps it.
                            held.enter_context(pulled.hold(image.tag))
                        return DockerSandbox.create(
                            client,
                            image.tag,
                            image.sandbox_config(cfg.sandbox, command_timeout=timeout),
                            labels=labels_,
                        )

                return make

        def tick(task_id: str, info: dict) -> None:
            spent = sum((info.get("seconds") or {}).values())
            errs = info.get("errors") or {}
            note = f" [yellow]errors: {', '.join(errs)}[/yellow]" if errs else ""
            env = f" ({info['environment'][:80]})" if info.get("environment") else ""
            console.print(f"{task_id}: {spent:.0f}s{env}{note}")

        run_ensemble(
            tasks,
            found.pools,
            out_dir,
            sandbox_for,
            ecfg,
            stop,
            tick,
            model_verifiers,
            found.trajectory_tests,
        )
    records = read_records(out_dir, [t.id for t in tasks])
    scfg = SelectionConfig(
        abstain_below=abstain_below,
        calibration_path=str(calibration) if calibration else None,
    )
    if fit_calibration is not None:
        from swescale.selection.metrics import fit_calibration_from_runs

        fitted = fit_calibration_from_runs([out_dir])
        fitted.save(fit_calibration)
        cv = fitted.cv or {}
        console.print(
            f"calibration fit on {fitted.fitted_on} labelled candidates of "
            f"{len(fitted.groups)} repositories ({fitted.evidence or 'no'} evidence): "
            f"{fit_calibration}"
            + (
                f"; grouped CV: accuracy {cv['accuracy']:.1%}, Brier {cv['brier']:.3f} "
                f"(base rate {cv['base_rate_brier']:.3f})"
                if cv
                else ""
            )
        )
    # Majority vote is always in the table: it is the baseline selection must beat.
    shown = names + [n for n in ("majority",) if n not in names]
    try:
        selections = select_and_write(out_dir, records, shown, scfg)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    files = RunFiles(out_dir)
    write_text_atomic(files.predictions(), files.predictions(names[0]).read_bytes())
    report = ensemble_report(records, selections)
    report["problems"] = problems
    write_text_atomic(files.report_json, json.dumps(report, indent=1))
    _print_ensemble(console, report)
    for problem in problems[:10]:
        console.print(f"[yellow]warning: {problem}[/yellow]")
    console.print(f"predictions: {files.predictions()}  report: {files.report_json}")


def _ensemble_id(predictions: list[Path], runs: list[Path], data) -> str:
    """``ensemble-<first input>-<8 hex digits of the inputs>``: the same inputs (files,
    run directories, dataset and its filters) get the same id, others never share it."""
    import hashlib

    inputs = [str(Path(p).resolve()) for p in [*predictions, *runs]]
    inputs.append(data.model_dump_json())
    digest = hashlib.sha256("\n".join(inputs).encode("utf-8", "surrogateescape")).hexdigest()
    first = Path((predictions or runs)[0])
    stem = first.name if first.is_dir() else first.stem
    return f"ensemble-{stem}-{digest[:8]}"


def _print_ensemble(console, report: dict) -> None:
    from swescale.report.terminal import Column, fit_table, human, percent, print_table

    spi = report["sandbox_seconds_per_instance"]
    console.print(
        f"{report['instances']} instances, {report['mixed_pools']} mixed pools; sandbox "
        f"s/instance: {_num(spi)} ({report['sandbox_instances']} with sandboxes)",
        highlight=False,
    )
    if report["labelled"]:
        columns = [
            Column("selector"),
            Column("resolved", "right"),
            Column("accuracy", "right"),
            Column("gap closed", "right"),
        ]
        rows = [
            [
                row["selector"],
                human(row["resolved"])
                if isinstance(row["resolved"], int)
                else f"{row['resolved']:.2f}",
                percent(row.get("accuracy")),
                "" if row.get("gap_closed") is None else f"{row['gap_closed']:.0%}",
            ]
            for row in report["rows"]
        ]
        title = f"accuracy on {report['labelled']} labelled instances"
        if report.get("partly_labelled"):
            title += f" ({report['partly_labelled']} labelled in part left out)"
        print_table(console, fit_table(columns, rows, console.width, title=title))
    else:
        partly = report.get("partly_labelled")
        console.print(
            "no accuracy table: no instance has every candidate labelled"
            + (f" ({partly} labelled in part)" if partly else "")
            + "; labels come from --labels, graded --run directories (scaling.grade=all), "
            "or a dataset whose patches carry outcomes (the mini benchmark's)",
            highlight=False,
        )
    judged = report.get("judged") or {}
    if judged:
        console.print(
            "instances with evidence: "
            + ", ".join(f"{name} {count}" for name, count in judged.items())
        )
    if report.get("auc"):
        console.print(
            "AUC for resolved: "
            + ", ".join(f"{name} {v['auc']:.2f}" for name, v in report["auc"].items())
        )
    if report.get("calibration_error"):
        ece = report["calibration_error"]
        console.print(f"calibrated: calibration error {ece['ece']:.3f} over {ece['picks']} picks")
    for task_id, errs in list(report["errors"].items())[:10]:
        console.print(f"[yellow]{task_id}: {errs}[/yellow]")
    for task_id, cands in list((report.get("test_setup_changed") or {}).items())[:10]:
        for cand_id, info in cands.items():
            picked = ", ".join(info["picked_by"]) or "no selector"
            console.print(
                f"[yellow]{task_id}: candidate {cand_id} ({', '.join(info['producers'])}) "
                f"changes the test set-up ({', '.join(info['paths'])}); picked by {picked}"
                "[/yellow]"
            )


def _replaced(name: str, summary: dict) -> str:
    """What a rerun of ``swescale select`` overwrote: how many tasks had a selection of
    this selector, and which picks changed."""
    changed = summary.get("changed") or []
    line = f"{name}: replaced the earlier {name} selection of {summary['replaced']} task(s)"
    if not changed:
        return line + "; the same picks"
    shown = ", ".join(
        f"{task} {old or 'abstain'} → {new or 'abstain'}" for task, old, new in changed[:3]
    )
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    return line + f"; {len(changed)} changed its pick: {shown}{more}"


def _pct(value: object) -> str:
    return "n/a" if value is None else f"{float(value):.1%}"


def _num(value: object) -> str:
    return "n/a" if value is None else f"{float(value):.0f}"
