"""``ci run`` asks the model's endpoint before anything else: no key, a refused key or an
endpoint that does not answer is said up front, with no image built and no trajectory
run (a loopback server stands for the API; a closed port for a dead one)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swescale.agent.config import ModelConfig
from swescale.agent.models.base import ModelError
from swescale.agent.models.preflight import check_model_reachable
from swescale.ci.bot import run_bot
from swescale.cli import app

from .conftest import comment_event, write_event


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _model(url: str) -> ModelConfig:
    return ModelConfig(kind="openai", name="m", endpoints=[url], api_key_env="SWESCALE_TEST_KEY")


def test_the_reason_a_model_cannot_be_asked(fake_github, monkeypatch) -> None:
    monkeypatch.delenv("SWESCALE_TEST_KEY", raising=False)
    with pytest.raises(ModelError, match=r"needs an API key and \$SWESCALE_TEST_KEY is not set"):
        check_model_reachable(_model(fake_github.url))
    assert fake_github.requests[-1]["path"] == "/v1/models"
    monkeypatch.setenv("SWESCALE_TEST_KEY", "wrong")
    with pytest.raises(ModelError, match=r"refused the key in \$SWESCALE_TEST_KEY \(HTTP 401\)"):
        check_model_reachable(_model(fake_github.url))
    dead = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ModelError, match=f"{dead}/v1 is not reachable"):
        check_model_reachable(_model(dead))
    # The right key passes; one endpoint that answers is enough among several.
    monkeypatch.setenv("SWESCALE_TEST_KEY", "test-token")
    check_model_reachable(_model(fake_github.url))
    check_model_reachable(_model(dead).model_copy(update={"endpoints": [dead, fake_github.url]}))
    # Scripted models and managed servers are not asked.
    check_model_reachable(ModelConfig(kind="scripted", script="x"))
    check_model_reachable(ModelConfig(kind="llamacpp"))


def test_ci_run_without_a_key_says_so_before_any_work(
    calc_repo, tmp_path: Path, fake_github, monkeypatch
) -> None:
    monkeypatch.delenv("SWESCALE_TEST_KEY", raising=False)
    runs = tmp_path / "runs"
    event = write_event(tmp_path / "e.json", comment_event("/swescale"))
    overrides = [
        f"runs_dir={runs}",
        f"model.endpoints=[{fake_github.url}]",
        "model.api_key_env=SWESCALE_TEST_KEY",
    ]
    with pytest.raises(ModelError, match="SWESCALE_TEST_KEY is not set"):
        run_bot(event, calc_repo[0], overrides=overrides)
    assert not runs.exists()  # no run directory, so no image and no trajectory
    args = ["ci", "run", "--event", str(event), "--repo", str(calc_repo[0])]
    for item in overrides:
        args += ["-o", item]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200", "SWESCALE_TEST_KEY": ""})
    assert result.exit_code == 1, result.output
    assert "cannot run" in result.output and "SWESCALE_TEST_KEY is not set" in result.output
    assert not runs.exists()
