"""A run summary in the terminal: a compact task table (long runs summarized with a
count), one headline, failures stated once with where the detail is, and the selector
comparison. The report site (``swescale.report.site``) has everything else."""

from __future__ import annotations

from logging import ERROR, WARNING
from typing import Any

from swescale.logs import show
from swescale.record.layout import RunFiles
from swescale.report.summary import RunSummary, TaskSummary
from swescale.report.terminal import (
    Column,
    fit_table,
    human,
    percent,
    print_table,
    trajectory_outcomes,
)


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _cost_text(cost: dict[str, Any]) -> str:
    tokens = int(cost.get("tokens_in", 0) or 0) + int(cost.get("tokens_out", 0) or 0)
    dollars = float(cost.get("dollars", 0.0) or 0.0)
    money = (
        f"${dollars:.4f}"
        if dollars
        else f"{float(cost.get('model_seconds', 0.0) or 0.0):.1f} model-s"
    )
    return (
        f"{tokens:,} tok, {money}, {float(cost.get('sandbox_seconds', 0.0) or 0.0):.1f} sandbox-s"
    )


def headline(summary: RunSummary) -> str:
    """Three lines: tasks and what resolved; how the trajectories ended; the cost."""
    done = sum(1 for t in summary.tasks if t.status == "done")
    parts = [f"{done}/{len(summary.tasks)} tasks done"]
    rate = summary.resolve_rate
    if rate is not None:
        resolved = sum(bool(t.resolved) for t in summary.graded)
        parts.append(f"resolved {resolved}/{len(summary.graded)} ({rate:.0%})")
    curve = summary.pass_at()
    if curve:
        parts.append(f"pass@{curve[-1][0]} {curve[-1][1]:.0%}")
    elif summary.ungraded:
        parts.append("resolve rate: unknown (no ground truth)")
    exits: dict[str, int] = {}
    for t in summary.tasks:
        for status, count in t.exit_statuses.items():
            exits[status] = exits.get(status, 0) + count
    lines = [" · ".join(parts)]
    if exits:
        lines.append(trajectory_outcomes(exits))
    lines.append(f"{_cost_text(summary.totals)} · wall {human(summary.wall_seconds)} s")
    return "\n".join(lines)


# Task rows the terminal table shows before it summarizes the rest with a count.
MAX_TASK_ROWS = 20
# Failure reasons the terminal shows before it points at failures.jsonl for the rest.
MAX_FAILURE_LINES = 3
# Damaged record parts the terminal names before it counts the rest.
MAX_PROBLEM_LINES = 5


def _interesting_first(tasks: list[TaskSummary]) -> list[TaskSummary]:
    """Failed and unresolved tasks first (what a reader looks for), then the rest; each
    group in run order."""

    def weight(t: TaskSummary) -> int:
        if t.status == "failed":
            return 0
        if t.resolved is False:
            return 1
        return 2

    return sorted(tasks, key=weight)


def print_summary(summary: RunSummary, console: Any = None, max_rows: int = MAX_TASK_ROWS) -> None:
    """A compact table (fits 80 columns for short task ids; beyond ``max_rows`` tasks the
    failed and unresolved ones are shown and the rest counted), the headline, failures
    once with the path to their detail, and the selection comparison when there is one."""
    from rich.console import Console

    console = console or Console()
    columns = [
        Column("task"),
        Column("status"),
        Column("trajs", "right"),
        Column("cands", "right", optional=2),
        Column("pick", optional=3),
        Column("resolved"),
        Column("pass", "right", optional=1),
        Column("tokens", "right", optional=4),
    ]
    tasks = summary.tasks
    shown = tasks if len(tasks) <= max_rows else _interesting_first(tasks)[:max_rows]
    order = {id(t): i for i, t in enumerate(tasks)}
    rows = []
    for t in sorted(shown, key=lambda t: order[id(t)]):
        tokens = int(t.cost.get("tokens_in", 0) or 0) + int(t.cost.get("tokens_out", 0) or 0)
        rows.append(
            [
                t.task_id,
                t.status,
                f"{t.finished}/{t.trajectories}",
                str(t.candidates),
                (t.selected or "-")[:8],
                _yes_no(t.resolved),
                "-"
                if t.resolving_trajectories is None
                else f"{t.resolving_trajectories}/{t.finished}",
                f"{tokens:,}",
            ]
        )
    more = f"… and {len(tasks) - len(shown)} more tasks (all in the report)"
    print_table(
        console,
        fit_table(
            columns,
            rows,
            console.width,
            title=f"run {summary.run_id}",
            caption=more if len(shown) < len(tasks) else None,
        ),
    )
    console.print(headline(summary), highlight=False)
    failed = [t for t in tasks if t.status == "failed"]
    if failed:
        where = RunFiles(summary.run_dir).failures
        show(console, ERROR, f"[red]{len(failed)} task(s) failed[/red]; every reason is in {where}")
        for t in failed[:MAX_FAILURE_LINES]:
            reason = (t.reason.splitlines() or [""])[0]
            show(console, ERROR, f"  {t.task_id}: {reason[:160]}", markup=False)
        if len(failed) > MAX_FAILURE_LINES:
            show(console, ERROR, f"  … and {len(failed) - MAX_FAILURE_LINES} more", markup=False)
    print_problems(summary.problems, console)
    if _labelled(summary.comparison) and isinstance(summary.comparison, list):
        print_table(console, comparison_table(summary.comparison, console.width))


def comparison_table(rows: list[dict[str, Any]], width: int, title: str = "selection comparison"):
    """The columns that answer "which selector picks right" (the report has them all):
    accuracies in percent, costs in whole tokens and seconds."""
    columns = [
        Column("selector"),
        Column("labelled", "right"),
        Column("resolved", "right"),
        Column("accuracy", "right"),
        Column("abstained", "right", optional=2),
        Column("tok/resolved", "right", optional=1),
        Column("sandbox s/resolved", "right", optional=3),
    ]
    body = [
        [
            str(r.get("selector", "?")),
            human(r.get("labelled")),
            human(r.get("resolved")),
            percent(r.get("accuracy")),
            human(r.get("abstained")),
            human(r.get("tokens_per_resolved")),
            human(r.get("sandbox_seconds_per_resolved")),
        ]
        for r in rows
        if isinstance(r, dict)
    ]
    return fit_table(columns, body, width, title=title)


def print_problems(problems: list[str], console: Any, shown: int = MAX_PROBLEM_LINES) -> None:
    """Damaged, missing or unreadable record parts: a count and the first few, as
    warnings (the report's overview lists them all)."""
    if not problems:
        return
    show(
        console,
        WARNING,
        f"[yellow]{len(problems)} damaged, missing or unreadable record part(s)[/yellow], "
        "left out of the summary (all on the report's overview):",
    )
    for problem in problems[:shown]:
        show(console, WARNING, f"  {problem}", markup=False, soft_wrap=True)
    if len(problems) > shown:
        show(console, WARNING, f"  … and {len(problems) - shown} more", markup=False)


def _labelled(comparison: Any) -> bool:
    """Whether a selector comparison has any labelled task (else it is a table of dashes,
    not worth a terminal screen)."""
    if isinstance(comparison, list):
        return any(isinstance(r, dict) and (r.get("labelled") or 0) for r in comparison)
    return comparison is not None


CONSOLE_COMPARISON = (
    "selector",
    "labelled",
    "resolved",
    "accuracy",
    "abstained",
    "tokens_per_resolved",
)


def comparison_rows(comparison: Any) -> list[list[str]]:
    """The selection comparison as a header row plus rows, whatever shape it came in
    (a pydantic model, a dict of selector -> metrics, or a list of row dicts)."""
    if comparison is None:
        return []
    if hasattr(comparison, "model_dump"):
        comparison = comparison.model_dump(mode="json")
    if (
        isinstance(comparison, dict)
        and "rows" in comparison
        and isinstance(comparison["rows"], list)
    ):
        comparison = comparison["rows"]
    if isinstance(comparison, list) and comparison and all(isinstance(r, dict) for r in comparison):
        keys: list[str] = []
        for row in comparison:
            keys += [k for k in row if k not in keys]
        return [keys] + [[_fmt(row.get(k)) for k in keys] for row in comparison]
    if isinstance(comparison, dict):
        if all(isinstance(v, dict) for v in comparison.values()) and comparison:
            keys = []
            for value in comparison.values():
                keys += [k for k in value if k not in keys]
            return [["selector", *keys]] + [
                [str(name), *[_fmt(v.get(k)) for k in keys]] for name, v in comparison.items()
            ]
        return [["key", "value"]] + [[str(k), _fmt(v)] for k, v in comparison.items()]
    return [["value"], [_fmt(comparison)]]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if value is None:
        return "-"
    return str(value)


def write_report_shown(run_dir: Any, console: Any, out: Any = None) -> str:
    """``write_report`` with a progress bar on ``console`` (tasks whose pages are
    written, of all), gone once the site is written; returns what to print."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from swescale.report.site import write_report

    if not console.is_terminal:  # a log or a pipe: the bar would leave an empty line
        return write_report(run_dir, out)

    columns = (
        TextColumn("[bold]report"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        job = bar.add_task("", total=None)

        def progress(done: int, total: int, what: str) -> None:
            bar.update(job, completed=done, total=total, description=what)

        return write_report(run_dir, out, progress)
