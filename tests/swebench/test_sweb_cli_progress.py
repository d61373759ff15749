"""Long steps show progress: grading counts against a known total, and validate says
which images it needed (built, or already there)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from swescale.cli import app

TASK = "swescale-mini__slugkit-1"
pytestmark = [pytest.mark.docker]


def _gold(tmp_path):
    from swescale.swebench.mini import mini_tasks

    task = next(t for t in mini_tasks() if t.id == TASK)
    path = tmp_path / "gold.jsonl"
    row = {"instance_id": task.id, "model_name_or_path": "gold", "model_patch": task.gold_patch}
    path.write_text(json.dumps(row) + "\n")
    return path


def test_grading_counts_against_its_total(tmp_path, docker_client) -> None:
    result = CliRunner().invoke(
        app,
        ["eval", str(_gold(tmp_path)), "-d", "mini", "--eval-dir", str(tmp_path / "e")],
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 0, result.output
    bar = next(line for line in result.output.splitlines() if line.startswith("grading"))
    assert " 1/1 " in bar and "/?" not in bar
    assert "images: 0 built, 2 already there" in result.output or "built in" in result.output


def test_validate_says_which_images_it_needed(tmp_path, docker_client) -> None:
    result = CliRunner().invoke(
        app,
        ["validate", "-d", "mini", "-i", TASK, "--eval-dir", str(tmp_path)],
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 0, result.output
    assert "validating 1 task(s)" in result.output
    tally = next(line for line in result.output.splitlines() if line.startswith("images: "))
    assert "already there" in tally
    assert "1/1 tasks valid" in result.output
