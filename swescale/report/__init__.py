"""Run reports: a terminal summary and a plain HTML page for a run directory."""

from swescale.report.render import print_summary, render_html, svg_plot, write_html
from swescale.report.summary import RunSummary, TaskSummary, load_run, pass_at_k

__all__ = [
    "RunSummary",
    "TaskSummary",
    "load_run",
    "pass_at_k",
    "print_summary",
    "render_html",
    "svg_plot",
    "write_html",
]
