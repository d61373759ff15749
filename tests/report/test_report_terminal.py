"""The run summary in the terminal at 80 columns (COLUMNS=80): ids whole on one line,
headers whole, numbers for people, trajectory outcomes in words; and the report's
progress as it writes its pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from evidence_run import make_evidence_run
from typer.testing import CliRunner

from swescale.cli import app
from swescale.report import build_site
from swescale.report.terminal import Column, fit_table, human, trajectory_outcomes


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_evidence_run(tmp_path_factory.mktemp("runs"), run_id="terminal-run")


def test_the_summary_fits_80_columns(run) -> None:
    result = CliRunner().invoke(app, ["report", str(run), "--no-site"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), [x for x in lines if len(x) > 80]
    # Every task id whole on its own row, never folded onto a second line.
    for task in ("why__core-1", "why__util-1"):
        assert sum(task in line for line in lines) == 1
    header = next(line for line in lines if line.startswith("task"))
    assert header.split() == [
        "task",
        "status",
        "trajs",
        "cands",
        "pick",
        "resolved",
        "pass",
        "tokens",
    ]
    text = " ".join(result.output.split())
    assert "7 of 8 trajectories submitted a patch; 1 trajectory hit the step limit" in text
    assert "step_limit" not in text
    comparison = [line for line in lines if line.startswith(("evidence ", "majority "))]
    assert comparison and all("%" in line for line in comparison)
    assert not re.search(r"\d\.\d{3}\b", result.output)  # no 6660.600


def test_numbers_are_written_for_people() -> None:
    assert human(6660.6) == "6,661" and human(12202) == "12,202"
    assert human(8.84) == "8.8" and human(0.254) == "0.25" and human(None) == "-"
    assert trajectory_outcomes({"submitted": 58, "step_limit": 2}) == (
        "58 of 60 trajectories submitted a patch; 2 trajectories hit the step limit"
    )
    # A submission that changed nothing is not counted as a patch.
    assert trajectory_outcomes({"submitted": 6, "submitted_empty": 2}) == (
        "6 of 8 trajectories submitted a patch; 2 trajectories submitted an empty patch"
    )


def test_a_narrow_terminal_leaves_columns_out_and_says_which() -> None:
    from rich.console import Console

    columns = [Column("task"), Column("status"), Column("tokens", "right", optional=1)]
    rows = [["scikit-learn__scikit-learn-13142", "done", "1,234,567"]]
    console = Console(width=42, record=True)
    console.print(fit_table(columns, rows, 42))
    text = console.export_text()
    assert "scikit-learn__scikit-learn-13142" in text and "1,234,567" not in text
    assert "left out to fit 42 columns: tokens" in " ".join(text.split())


def test_the_report_says_how_far_it_is(run) -> None:
    seen: list[tuple[int, int, str]] = []
    build_site(run, progress=lambda done, total, what: seen.append((done, total, what)))
    assert seen[0] == (0, 2, "why__core-1") and seen[-1] == (2, 2, "overview")
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)
