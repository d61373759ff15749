"""The run directory: layout, config digest refusal, predictions, failures, torn lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from swescale.config import load_config
from swescale.record.run import (
    ConfigMismatch,
    RunDir,
    append_jsonl,
    default_run_id,
    read_jsonl,
    safe_name,
    trajectory_id,
)


def test_trajectory_ids_are_deterministic_and_distinct() -> None:
    assert trajectory_id("django__django-1", 0, 3) == trajectory_id("django__django-1", 0, 3)
    ids = {trajectory_id("t", r, i) for r in range(3) for i in range(12)}
    assert len(ids) == 36
    assert "/" not in trajectory_id("owner/repo-1", 1, 2)


def test_safe_name_refuses_empty() -> None:
    assert safe_name("a/b c") == "a_b_c"
    with pytest.raises(Exception, match="empty"):
        safe_name("///")


def test_default_run_id_follows_the_config() -> None:
    a = load_config(None, ["scaling.n_parallel=3"])
    b = load_config(None, ["scaling.n_parallel=4"])
    assert default_run_id("configs/smoke.yaml", a) == default_run_id("configs/smoke.yaml", a)
    assert default_run_id("configs/smoke.yaml", a).startswith("smoke-")
    assert default_run_id("smoke", a) != default_run_id("smoke", b)


def test_open_writes_config_once_and_resumes(tmp_path: Path) -> None:
    cfg = load_config(None, ["scaling.n_parallel=3"])
    first = RunDir.open(tmp_path, "r1", cfg)
    written = first.config_path.read_text()
    assert yaml.safe_load(written)["scaling"]["n_parallel"] == 3
    again = RunDir.open(tmp_path, "r1", cfg)
    assert again.config_path.read_text() == written
    info = again.run_json()
    assert info["sessions"] == 2
    assert info["config_digest"] == cfg.digest()


def test_different_config_is_refused_unless_forced(tmp_path: Path) -> None:
    RunDir.open(tmp_path, "r1", load_config(None, ["scaling.n_parallel=3"]))
    other = load_config(None, ["scaling.n_parallel=5"])
    with pytest.raises(ConfigMismatch, match="--force"):
        RunDir.open(tmp_path, "r1", other)
    forced = RunDir.open(tmp_path, "r1", other, force=True)
    assert yaml.safe_load(forced.config_path.read_text())["scaling"]["n_parallel"] == 5
    assert len(list(forced.root.glob("config.*.yaml"))) == 1
    assert forced.run_json()["config_changes"][0]["to"] == other.digest()


def test_run_dir_paths(tmp_path: Path) -> None:
    rd = RunDir.open(tmp_path, "r1", load_config())
    path = rd.trajectory_path("o/r-1", trajectory_id("o/r-1", 0, 1))
    assert path == tmp_path / "r1" / "o_r-1" / "trajectories" / "o_r-1.r0.t01.jsonl"
    assert rd.blobs_dir("o/r-1").parent == rd.task_dir("o/r-1")
    assert rd.selection_path("x").name == "selection.json"
    assert rd.verdicts_dir("x").name == "verdicts"


def test_predictions_are_written_once_per_task(tmp_path: Path) -> None:
    rd = RunDir.open(tmp_path, "r1", load_config())
    assert rd.add_prediction("t1", "m", "diff --git a/x b/x\n")
    assert not rd.add_prediction("t1", "m", "other")
    assert rd.add_prediction("t2", "m", "")
    rows = read_jsonl(rd.predictions_path)
    assert [r["instance_id"] for r in rows] == ["t1", "t2"]
    assert set(rows[0]) == {"instance_id", "model_name_or_path", "model_patch"}


def test_failures_and_task_state(tmp_path: Path) -> None:
    rd = RunDir.open(tmp_path, "r1", load_config())
    rd.record_failure("t1", "image", "no such repo")
    rd.set_task_state("t1", status="failed", reason="no such repo")
    assert rd.failures()[0]["reason"] == "no such repo"
    assert rd.run_json()["tasks"]["t1"]["status"] == "failed"


def test_read_jsonl_skips_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    append_jsonl(path, {"a": 1})
    append_jsonl(path, {"a": 2})
    with path.open("a") as fh:
        fh.write('{"a": 3, "b"')
    assert [r["a"] for r in read_jsonl(path)] == [1, 2]
    assert json.loads(path.read_text().splitlines()[0]) == {"a": 1}
