"""The ``run``/``demo``/``report`` commands: argument and config errors are clear exits,
never tracebacks; a changed config cannot silently reuse a run directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from swescale.cli import app
from swescale.config import load_config
from swescale.scaling.rundir import RunDir

runner = CliRunner()


def test_run_refuses_a_run_directory_made_with_another_config(tmp_path: Path) -> None:
    RunDir.open(tmp_path, "same", load_config("scripted", [f"runs_dir={tmp_path}"]))
    result = runner.invoke(
        app,
        [
            "run",
            "-c",
            "scripted",
            "-o",
            f"runs_dir={tmp_path}",
            "-o",
            "scaling.n_parallel=7",
            "--run-id",
            "same",
        ],
    )
    assert result.exit_code == 2
    assert (
        "--force" in result.output
        and "different" not in result.output.lower()
        or "config" in result.output
    )


def test_run_reports_a_bad_override(tmp_path: Path) -> None:
    for bad in ("scaling.no_such_field=1", "budget.task_tokens=-5", "no_such_section=1"):
        result = runner.invoke(
            app, ["run", "-c", "scripted", "-o", f"runs_dir={tmp_path}", "-o", bad]
        )
        assert result.exit_code == 2, (bad, result.output)
        assert "config error" in result.output


def test_run_reports_a_missing_config_file() -> None:
    result = runner.invoke(app, ["run", "-c", "does/not/exist.yaml"])
    assert result.exit_code == 2
    assert "not found" in result.output


def test_demo_rejects_zero_tasks() -> None:
    result = runner.invoke(app, ["demo", "--tasks", "0"])
    assert result.exit_code != 0


def test_report_on_a_missing_directory(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert result.exit_code == 2


def test_presets_load() -> None:
    for name in ("default", "smoke", "scripted"):
        cfg = load_config(name)
        assert cfg.dataset.name == "mini"
    assert load_config("scripted").model.kind == "scripted"
    assert load_config("default").model.kind == "llamacpp"


@pytest.mark.docker
def test_run_reports_a_model_that_cannot_start(tmp_path: Path, docker_client) -> None:
    result = runner.invoke(
        app,
        [
            "run", "-c", "default", "-o", f"runs_dir={tmp_path}", "-o", "dataset.slice=0:1",
            "-o", f"model.model_path={tmp_path / 'missing.gguf'}", "--no-live",
        ],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "model is not available" in result.output and "missing.gguf" in result.output
