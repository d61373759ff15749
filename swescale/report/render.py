"""A run summary as a rich table in the terminal and as a plain HTML page with a small
inline SVG plot (pass@k against the number of samples, with the selector's resolve rate)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from swescale.report.summary import RunSummary, TaskSummary


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


def _exits(task: TaskSummary) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(task.exit_statuses.items())) or "-"


def task_rows(summary: RunSummary) -> list[list[str]]:
    rows = []
    for t in summary.tasks:
        rows.append(
            [
                t.task_id,
                t.status + (f" ({t.reason[:60]})" if t.reason else ""),
                f"{t.finished}/{t.trajectories}",
                _exits(t),
                str(t.candidates),
                t.selected or "-",
                _yes_no(t.resolved),
                "-"
                if t.resolving_trajectories is None
                else f"{t.resolving_trajectories}/{t.finished}",
                _cost_text(t.cost),
            ]
        )
    return rows


HEADERS = [
    "task",
    "status",
    "trajectories",
    "exit statuses",
    "candidates",
    "selected",
    "resolved",
    "resolving trajs",
    "cost",
]


def headline(summary: RunSummary) -> str:
    done = sum(1 for t in summary.tasks if t.status == "done")
    parts = [f"{done}/{len(summary.tasks)} tasks done"]
    rate = summary.resolve_rate
    if rate is not None:
        resolved = sum(bool(t.resolved) for t in summary.graded)
        parts.append(f"resolved {resolved}/{len(summary.graded)} ({rate:.0%})")
    curve = summary.pass_at()
    if curve:
        parts.append(f"pass@{curve[-1][0]} {curve[-1][1]:.0%}")
    exits: dict[str, int] = {}
    for t in summary.tasks:
        for status, count in t.exit_statuses.items():
            exits[status] = exits.get(status, 0) + count
    if exits:
        total = sum(exits.values())
        detail = ", ".join(f"{k} {v}" for k, v in sorted(exits.items(), key=lambda kv: -kv[1]))
        parts.append(f"{total} trajectories ({detail})")
    parts.append(_cost_text(summary.totals))
    parts.append(f"wall {summary.wall_seconds:.0f}s")
    if summary.failures:
        parts.append(f"{len(summary.failures)} failure record(s)")
    return " · ".join(parts)


def print_summary(summary: RunSummary, console: Any = None) -> None:
    """A compact table (fits 80 columns for short task ids), the headline, failures, and
    the selection comparison when there is one."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"run {summary.run_id}", show_lines=False, pad_edge=False)
    for name, justify in (
        ("task", "left"),
        ("status", "left"),
        ("trajs", "right"),
        ("cands", "right"),
        ("selected", "left"),
        ("resolved", "left"),
        ("pass", "right"),
        ("tokens", "right"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for t in summary.tasks:
        tokens = int(t.cost.get("tokens_in", 0) or 0) + int(t.cost.get("tokens_out", 0) or 0)
        table.add_row(
            t.task_id,
            t.status,
            f"{t.finished}/{t.trajectories}",
            str(t.candidates),
            (t.selected or "-")[:8],
            _yes_no(t.resolved),
            "-" if t.resolving_trajectories is None else f"{t.resolving_trajectories}/{t.finished}",
            f"{tokens:,}",
        )
    console.print(table)
    console.print(headline(summary))
    for t in summary.tasks:
        if t.reason:
            console.print(f"[red]{t.task_id}[/red]: {t.reason[:400]}")
    comparison = comparison_rows(summary.comparison)
    if comparison:
        # The terminal gets the columns that answer "which selector picks right";
        # report.html has them all.
        keep = [i for i, name in enumerate(comparison[0]) if name in CONSOLE_COMPARISON] or list(
            range(len(comparison[0]))
        )
        ctable = Table(title="selection comparison", pad_edge=False)
        for i in keep:
            ctable.add_column(str(comparison[0][i]))
        for row in comparison[1:]:
            ctable.add_row(*[str(row[i]) for i in keep])
        console.print(ctable)


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


# ------------------------------------------------------------------------------- HTML


def svg_plot(
    points: list[tuple[int, float]], selected: float | None, width: int = 420, height: int = 240
) -> str:
    """pass@k by number of samples as a polyline, the selector's resolve rate as a dashed
    line; axes 0..100%. Plain SVG, no scripts."""
    if not points:
        return "<p>No graded candidates: run with scaling.grade=all on a labelled dataset for this plot.</p>"
    left, bottom, top, right = 48, 32, 16, 16
    plot_w, plot_h = width - left - right, height - top - bottom
    max_k = max(k for k, _ in points)

    def x(k: float) -> float:
        return left + (plot_w * (k - 1) / (max_k - 1) if max_k > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (1 - v)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        'aria-label="resolve rate versus number of samples">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        parts.append(
            f'<text x="{left - 6}" y="{y(frac) + 4:.1f}" font-size="11" text-anchor="end">{frac:.0%}</text>'
        )
    for k, _ in points:
        parts.append(
            f'<text x="{x(k):.1f}" y="{top + plot_h + 16}" font-size="11" text-anchor="middle">{k}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 2}" font-size="11" text-anchor="middle">samples per task (k)</text>'
    )
    line = " ".join(f"{x(k):.1f},{y(v):.1f}" for k, v in points)
    parts.append(f'<polyline points="{line}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    for k, v in points:
        parts.append(
            f'<circle cx="{x(k):.1f}" cy="{y(v):.1f}" r="3" fill="#1f77b4"><title>pass@{k} = {v:.2f}</title></circle>'
        )
    if selected is not None:
        parts.append(
            f'<line x1="{left}" y1="{y(selected):.1f}" x2="{left + plot_w}" y2="{y(selected):.1f}" '
            'stroke="#d62728" stroke-dasharray="5,4"><title>selected patch resolve rate</title></line>'
        )
    parts.append(
        f'<text x="{left + 6}" y="{top + 12}" font-size="11" fill="#1f77b4">pass@k (any sample resolves)</text>'
    )
    if selected is not None:
        parts.append(
            f'<text x="{left + 6}" y="{top + 26}" font-size="11" fill="#d62728">selected: {selected:.0%}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(summary: RunSummary) -> str:
    """The whole report page as one string (no external files, no scripts)."""
    esc = html.escape
    sections = [
        f"<h1>swescale run {esc(summary.run_id)}</h1>",
        f"<p>{esc(headline(summary))}</p>",
        "<h2>Tasks</h2>",
        _table(HEADERS, task_rows(summary)),
        "<h2>Resolve rate versus number of samples</h2>",
        svg_plot(summary.pass_at(), summary.resolve_rate),
    ]
    comparison = comparison_rows(summary.comparison)
    if comparison:
        sections += [
            "<h2>Selection comparison</h2>",
            _table([str(h) for h in comparison[0]], comparison[1:]),
        ]
    if summary.by_kind:
        rows = [[kind, _cost_text(cost)] for kind, cost in sorted(summary.by_kind.items())]
        sections += ["<h2>Spending by kind</h2>", _table(["kind", "cost"], rows)]
    if summary.failures:
        rows = [
            [str(f.get("task_id", "")), str(f.get("stage", "")), str(f.get("reason", ""))[:300]]
            for f in summary.failures
        ]
        sections += ["<h2>Failures</h2>", _table(["task", "stage", "reason"], rows)]
    meta = [[k, str(v)] for k, v in sorted(summary.versions.items())]
    meta.insert(0, ["config digest", summary.config_digest])
    sections += ["<h2>Versions</h2>", _table(["", ""], meta)]
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:left}"
        "th{background:#f4f4f4}"
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>swescale run {esc(summary.run_id)}</title><style>{style}</style></head><body>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )


def write_html(summary: RunSummary, path: str | Path) -> Path:
    target = Path(path)
    target.write_text(render_html(summary), encoding="utf-8")
    return target
