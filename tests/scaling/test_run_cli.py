"""The ``run``/``demo``/``report`` commands: argument and config errors are clear exits,
never tracebacks; a changed config cannot silently reuse a run directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from swescale.cli import app
from swescale.config import load_config
from swescale.record.run import RunDir

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


def _log(run_dir: Path) -> str:
    return (run_dir / "swescale.log").read_text(encoding="utf-8")


def test_a_bad_override_on_an_existing_run_is_in_its_log(tmp_path: Path) -> None:
    RunDir.open(tmp_path, "kept", load_config("scripted", [f"runs_dir={tmp_path}"]))
    result = runner.invoke(
        app,
        ["run", "-c", "scripted", "-o", f"runs_dir={tmp_path}", "-o", "scaling.no_such_field=1",
         "--run-id", "kept"],
    )  # fmt: skip
    assert result.exit_code == 2 and "config error" in result.output
    log = _log(tmp_path / "kept")
    assert "ERROR" in log and "config error" in log and "no_such_field" in log


@pytest.mark.docker
def test_a_failed_task_is_in_the_run_log_as_the_terminal_showed_it(
    tmp_path: Path, docker_client
) -> None:
    """A task whose repository cannot be cloned fails; every error line the terminal
    shows about it is in the run's log file too."""
    import json

    dataset = tmp_path / "nowhere.jsonl"
    row = {"instance_id": "nowhere__repo-1", "repo": "nowhere/repo", "base_commit": "0" * 40,
           "problem_statement": "x", "version": "1.0", "FAIL_TO_PASS": ["t.py::test_a"],
           "PASS_TO_PASS": []}  # fmt: skip
    dataset.write_text(json.dumps(row) + "\n")
    result = runner.invoke(
        app,
        ["run", "-c", "scripted", "-o", f"runs_dir={tmp_path / 'runs'}", "--run-id", "failing",
         "-o", f"dataset.name={dataset}", "-o", f"images.cache_dir={tmp_path / 'cache'}",
         "-o", f"dataset.repo_url=file://{tmp_path}/nonexistent/{{repo}}.git",
         "-o", "scaling.grade=none", "-o", "verifiers.enabled=[]", "--no-live", "--no-report"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "1 task(s) failed" in result.output
    log = _log(tmp_path / "runs" / "failing")
    assert "ERROR swescale.terminal" in log and "1 task(s) failed" in log
    assert "nowhere__repo-1: RepoError" in log


@pytest.mark.docker
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_an_interrupted_run_says_so_in_its_log(tmp_path: Path, docker_client, sig) -> None:
    """Ctrl-C (SIGINT) or a job runner's SIGTERM mid-run: the terminal says to rerun, and
    so does the log."""
    import glob
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    from swescale.sandbox import reap

    script = tmp_path / "turns.json"
    script.write_text(json.dumps(
        ["```bash\nls\n```", "```bash\nsleep 2 && echo one\n```",
         "```bash\nsleep 2 && echo two\n```", "```bash\nsubmit\n```"]
    ))  # fmt: skip
    run_id = f"{sig.lower()}-{os.getpid()}"
    command = [
        sys.executable, "-m", "swescale.cli", "run", "-c", "scripted", "--run-id", run_id,
        "-o", "dataset.slice=0:1", "-o", f"model.script={script}", "-o", "scaling.n_parallel=1",
        "-o", "scaling.grade=none", "-o", "verifiers.enabled=[]",
        "-o", "selection.selector=majority", "-o", f"runs_dir={tmp_path / 'runs'}", "--no-live",
    ]  # fmt: skip
    # SIGINT as a terminal sends it, even when this test runs where it is ignored.
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    steps = str(tmp_path / "runs" / run_id / "*" / "trajectories" / "*.jsonl")
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if any('"type": "step"' in Path(p).read_text(errors="replace") for p in glob.glob(steps)):
            break
        time.sleep(0.1)
    proc.send_signal(signal.Signals[sig])
    output, _ = proc.communicate(timeout=120)
    reap(docker_client, run_id=run_id)
    assert proc.returncode == 130, output
    assert "interrupted" in output
    # At once, before anything winds down: that it stops, and what it waits for.
    flat = " ".join(output.split())
    stopping = flat.index(f"{sig}: stopping: no new task starts")
    assert stopping < flat.index("interrupted: rerun the same command")
    assert "waiting for 1 task in flight: swescale-mini__" in flat
    assert "(explore, 1 trajectory running)" in flat
    log = _log(tmp_path / "runs" / run_id)
    assert "WARNING swescale.terminal" in log and "interrupted: rerun the same command" in log
    if sig == "SIGINT":
        # The rerun says what it picks up, then finishes.
        again = subprocess.run(command, capture_output=True, text=True, timeout=600)
        reap(docker_client, run_id=run_id)
        assert again.returncode == 0, again.stdout + again.stderr
        said = " ".join(again.stdout.split())
        assert "resuming: 0 of 1 tasks done (kept), 1 continues from the last recorded step" in said
