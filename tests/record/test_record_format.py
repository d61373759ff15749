"""The record's format version: a directory or trajectory of the previous release is
read, one of a newer release is refused with a message naming both versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swescale.record import (
    FORMAT_VERSION,
    NewerFormatError,
    RecordError,
    RunDir,
    RunDirError,
    load_trajectory,
    read_trajectory,
)
from swescale.record.models import RunInfo
from swescale.record.version import directory_version, mark_directory
from swescale.report import load_run

# A task folder as the release before record versions wrote it (no record.json, no
# format_version in the header).
OLD_HEADER = {
    "type": "header", "trajectory_id": "t.r0.t00", "task_id": "acme__m-1", "parent": None,
    "round": 0, "seed": 0, "config_hash": "abc", "model": "scripted", "image": "img",
    "image_digest": None, "temperature": 0.0, "prompt_variant": None,
    "started_at": "2026-01-01T00:00:00+00:00",
}  # fmt: skip
OLD_STEP = {
    "type": "step", "index": 0, "message": {"role": "assistant", "content": "ls"},
    "actions": [{"tool": "bash", "args": {"command": "ls"}, "call_id": ""}],
    "observations": [{"output": "m.py\n", "exit_code": 0}], "state": None,
    "tokens_in": 10, "tokens_out": 2, "seconds": 0.5,
}  # fmt: skip
OLD_FOOTER = {"type": "footer", "exit_status": "submitted", "patch": "", "totals": {"steps": 1}}


def old_run(root: Path) -> Path:
    task = root / "acme__m-1"
    (task / "trajectories").mkdir(parents=True)
    lines = [OLD_HEADER, OLD_STEP, OLD_FOOTER]
    (task / "trajectories" / "t.r0.t00.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in lines)
    )
    (task / "result.json").write_text(json.dumps({"task_id": "acme__m-1", "status": "done"}))
    (root / "run.json").write_text(json.dumps({"run_id": "old", "config_digest": "abc"}))
    return root


def test_previous_release_is_read(tmp_path: Path) -> None:
    root = old_run(tmp_path / "old")
    assert directory_version(root) == 1
    traj = load_trajectory(root / "acme__m-1" / "trajectories" / "t.r0.t00.jsonl")
    assert traj.finished and traj.steps[0].observations[0].output == "m.py\n"
    summary = load_run(root)
    assert summary.run_id == "old" and summary.tasks[0].finished == 1
    assert not summary.problems


def test_newer_directory_is_refused(tmp_path: Path) -> None:
    root = old_run(tmp_path / "new")
    (root / "record.json").write_text(
        json.dumps({"format": "swescale-record", "format_version": FORMAT_VERSION + 1})
    )
    with pytest.raises(NewerFormatError, match=f"format {FORMAT_VERSION + 1}"):
        directory_version(root)
    summary = load_run(root)  # the report still says what it can, and why not more
    assert any("newer swescale" in p for p in summary.problems)

    class Cfg:
        def digest(self) -> str:
            return "abc"

        def model_dump(self, mode: str = "json") -> dict:
            return {}

    with pytest.raises(RunDirError, match="newer swescale"):
        RunDir.open(tmp_path, "new", Cfg())


def test_newer_trajectory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    header = dict(OLD_HEADER, format_version=FORMAT_VERSION + 5)
    path.write_text(json.dumps(header) + "\n" + json.dumps(OLD_STEP) + "\n")
    with pytest.raises(RecordError, match="newer swescale"):
        load_trajectory(path)
    tolerant = read_trajectory(path)
    assert tolerant.steps == [] and "newer swescale" in tolerant.problems[0]


def test_marker_written_once_and_kept(tmp_path: Path) -> None:
    mark_directory(tmp_path, "ensemble")
    first = (tmp_path / "record.json").read_text()
    mark_directory(tmp_path, "run")
    assert (tmp_path / "record.json").read_text() == first
    assert json.loads(first)["format_version"] == FORMAT_VERSION == directory_version(tmp_path)


def test_run_info_keeps_what_it_can(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "run.json").write_text(json.dumps({"run_id": "r", "sessions": "two", "x": 1}))
    info = RunDir(root).info()
    assert isinstance(info, RunInfo) and info.run_id == "r" and info.sessions == 0
