"""Run reports: a terminal summary, and a static site in the run directory
(``<run>/report/index.html``) to drill from the overview into tasks, candidates and
trajectories."""

from swescale.report.render import print_summary
from swescale.report.site import (
    SiteResult,
    build_site,
    write_redirect,
    write_report,
    write_run_page,
)
from swescale.report.summary import RunSummary, TaskSummary, load_run, pass_at_k

__all__ = [
    "RunSummary",
    "SiteResult",
    "TaskSummary",
    "build_site",
    "load_run",
    "pass_at_k",
    "print_summary",
    "write_redirect",
    "write_run_page",
    "write_report",
]
